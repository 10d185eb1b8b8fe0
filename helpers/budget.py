"""The training budget, defined once: every run config (classification, detection, segmentation), every
profile part and the engine's :class:`helpers.train.TrainConfig` hold or extend this one dataclass."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class TrainBudget:
    """How much optimisation a run gets and how it stops: written once here, held by every run config
    (classification, detection, segmentation) and by :class:`TrainConfig`, which is a budget plus the
    optimiser and runtime settings.

    The budget is counted in optimizer steps, not epochs, so runs on 12 and on 1,200 training images
    get the same amount of optimisation (batches are drawn from reshuffled passes over the training
    set, as many passes as the steps need). The rate decays per step: times the recipe's ``lr_decay`` every
    ``decay_steps`` steps (the paper's 0.95 per epoch, with an epoch fixed at ``decay_steps`` steps
    whatever the data size). Validation runs every ``eval_every`` steps from the start and after the
    last step; training stops when ``patience`` steps have passed without a better validation AUC
    (never before ``min_steps``), and the best weights are restored.

    ``bn_mode`` says how BatchNorm layers of the *tuned* stages behave (frozen stages always keep
    their statistics): ``frozen`` keeps the running statistics as they are (ImageNet's) and normalises
    with them in training too; ``recalibrate`` trains with batch statistics and recomputes the running
    statistics on the run's training images before every validation and test evaluation; ``train`` is
    plain PyTorch (running statistics follow the batches with momentum 0.1). ``auto`` (default), resolved
    by :func:`resolve_bn_mode`: ``frozen`` for a pretrained model (a careful practitioner's choice on small
    sets: a handful of images gives a noisy estimate of a population's statistics, and ImageNet's are
    kept), ``recalibrate`` for a model trained from scratch (which has no statistics worth keeping).
    :attr:`TrainResult.bn_mode` records the mode a run used.
    """

    steps: int = 200
    batch_size: int = 32
    patience: int | None = 100        # steps without a better validation score before stopping (None: never)
    min_steps: int = 0                # no early stop before this many steps
    eval_every: int = 20              # steps between validation checks (the convergence curve)
    decay_steps: int = 20             # the rate is multiplied by the recipe's decay every this many steps
    bn_mode: str = "auto"
    augment: bool = False

    def scaled(self, factor: int) -> "TrainBudget":
        """The same budget with ``factor`` times the steps (minimum steps and patience scaled alike)."""
        return replace(self, steps=factor * self.steps, min_steps=factor * self.min_steps,
                       patience=None if self.patience is None else factor * self.patience)


BUDGET_FIELDS = tuple(f.name for f in fields(TrainBudget))
"""The names of a budget's fields (a run config's flat view and its result row carry them as columns)."""


def budget_of(settings) -> TrainBudget:
    """The :class:`TrainBudget` part of anything that has its fields (a :class:`TrainConfig`, a row)."""
    get = settings.get if isinstance(settings, dict) else (lambda k: getattr(settings, k))
    return TrainBudget(**{k: get(k) for k in BUDGET_FIELDS})
