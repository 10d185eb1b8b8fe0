"""The paper's training recipe, written once: every run of the suite (classification and detection) and
every notebook takes its numbers from here.

Tajbakhsh et al. (2016) trained with SGD and momentum 0.9, multiplied the rate by 0.95 per epoch, gave
biases twice their layer's rate, and gave the new last layer of a fine-tuned network ten times the rate
of the layers it tunes (0.01 vs 0.001); weight decay 0.0005 as in Caffe's reference models. A scratch
run has no "new" layer, so its head multiplier is 1; its untuned default rate is 0.01 (sweeps tune
every arm's rate on validation data instead, see :func:`helpers.runner.run_sweep`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import SCRATCH, STATISTICS

__all__ = ["Recipe", "PAPER", "default_rate", "head_multiplier", "rate_family"]


WHOLE_NETWORK = (SCRATCH, STATISTICS)
"""Strategies that train every layer from weights that carry no features: ``scratch`` (random) and
``statistics`` (each layer redrawn with its pretrained mean and standard deviation, Raghu et al. 2019):
no new head to speed up, the scratch rate grid, and BatchNorm statistics recalibrated."""


@dataclass(frozen=True)
class Recipe:
    """The fixed parts of the optimisation recipe (the rate itself is tuned or defaulted per strategy)."""

    optimizer: str = "sgd"
    momentum: float = 0.9
    lr_decay: float = 0.95        # the rate is multiplied by this once per "epoch" of ``decay_steps`` steps
    head_lr_mult: float = 10.0    # the new head's rate vs the tuned layers' (fine-tuning only)
    bias_lr_mult: float = 2.0     # a bias's rate vs its layer's
    weight_decay: float = 5e-4
    finetune_lr: float = 0.001    # the paper's rate for fine-tuned layers
    scratch_lr: float = 0.01      # the untuned default for scratch training

    def fixed_parts(self) -> dict[str, float | str]:
        """The parts every run shares, as they enter a run's hash (the default rates do not)."""
        return {"optimizer": self.optimizer, "momentum": self.momentum, "lr_decay": self.lr_decay,
                "head_lr_mult": self.head_lr_mult, "bias_lr_mult": self.bias_lr_mult,
                "weight_decay": self.weight_decay}

    def head_multiplier(self, strategy: str) -> float:
        """The new head's rate multiple: ``head_lr_mult`` when fine-tuning, 1 when every layer starts
        without features (scratch, and the statistics-only control)."""
        return 1.0 if strategy in WHOLE_NETWORK else self.head_lr_mult

    def default_rate(self, strategy: str) -> float:
        """The rate a run gets when nobody tuned one."""
        return self.scratch_lr if strategy in WHOLE_NETWORK else self.finetune_lr


PAPER = Recipe()


def head_multiplier(strategy: str) -> float:
    """The paper's head multiple for ``strategy`` (10x when fine-tuning, 1x from scratch)."""
    return PAPER.head_multiplier(strategy)


def default_rate(strategy: str) -> float:
    """The untuned rate for ``strategy``: 0.01 from scratch, the paper's 0.001 for fine-tuning."""
    return PAPER.default_rate(strategy)


def rate_family(strategy: str) -> str:
    """Which learning-rate grid a strategy draws from: ``scratch`` (every layer trained from weights without
    features: scratch, statistics) or ``finetune``."""
    return "scratch" if strategy in WHOLE_NETWORK else "finetune"
