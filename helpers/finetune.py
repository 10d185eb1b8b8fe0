"""Depth ladders, freezing and the per-stage parameter groups (rates from :mod:`helpers.recipe`).

A *level* tunes the top ``index + 1`` stages of an :class:`~helpers.models.FTModel` and freezes the
rest: level 0 is "only the new last layer" (the paper's ``fc8``), the last level is "all layers"
(``conv1-fc8``). Frozen stages get no gradients, no optimizer state, and stay in eval mode so their
BatchNorm running statistics are kept.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from .models import FTModel, count_parameters
from .recipe import PAPER

LEVEL_ALIASES = ("last", "middle", "all")


@dataclass(frozen=True)
class Level:
    """One rung of the ladder: its name (``conv4-fc8``), index (0 = last layer only) and stages."""

    name: str
    index: int
    tuned: tuple[str, ...]
    frozen: tuple[str, ...]


def ladder(model: FTModel) -> list[Level]:
    """Every level, from the new head alone (index 0) down to all layers."""
    names = [n for n in model.stage_names if n != "input"]
    head = names[-1]
    levels = []
    for index in range(len(names)):
        tuned = tuple(names[len(names) - 1 - index:])
        label = head if index == 0 else f"{tuned[0]}-{head}"
        levels.append(Level(label, index, tuned, ("input", *names[: len(names) - 1 - index])))
    return levels


def resolve_level(model: FTModel, level: str | int | Level) -> Level:
    """A :class:`Level` from its name, its index, or ``last`` / ``middle`` / ``all``."""
    if isinstance(level, Level):
        return level
    rungs = ladder(model)
    aliases = {"last": 0, "middle": (len(rungs) - 1) // 2, "all": len(rungs) - 1}
    if isinstance(level, str) and level in aliases:
        level = aliases[level]
    if isinstance(level, int) and not isinstance(level, bool):
        if not 0 <= level < len(rungs):
            raise ValueError(f"Level index {level} is out of range 0..{len(rungs) - 1} for {model.arch}.")
        return rungs[level]
    for rung in rungs:
        if rung.name == level:
            return rung
    raise ValueError(f"Unknown level {level!r} for {model.arch}; choose one of "
                     f"{[r.name for r in rungs]} or {LEVEL_ALIASES}.")


def set_level(model: FTModel, level: str | int | Level) -> Level:
    """Freeze every stage below the level and unfreeze the tuned ones; returns the level."""
    rung = resolve_level(model, level)
    for name, stage in model.stages.items():
        stage.requires_grad_(name in rung.tuned)
    model.frozen = set(rung.frozen)
    model.train(model.training)
    return rung


def first_tuned_stage(model: FTModel) -> int:
    """Index (in ``model.stage_names``) of the first stage with a trainable parameter."""
    for i, stage in enumerate(model.stages.values()):
        if any(p.requires_grad for p in stage.parameters()):
            return i
    raise ValueError("Every parameter of the model is frozen: nothing would be trained.")


def ladder_table(model: FTModel) -> pd.DataFrame:
    """The ladder as a table: level, index, tuned stages, trainable parameters."""
    rows = []
    for rung in ladder(model):
        trainable = sum(count_parameters(model.stages[s]) for s in rung.tuned)
        rows.append({"level": rung.name, "index": rung.index, "tuned stages": ", ".join(rung.tuned),
                     "trainable parameters": trainable})
    return pd.DataFrame(rows)


def param_groups(model: FTModel, base_lr: float, head_lr_mult: float = PAPER.head_lr_mult,
                 bias_lr_mult: float = PAPER.bias_lr_mult, layer_decay: float | None = None,
                 weight_decay: float = PAPER.weight_decay) -> list[dict]:
    """Optimizer groups for the trainable stages, the paper's recipe.

    The new head gets ``head_lr_mult`` times the base rate (10x: 0.01 vs 0.001 for AlexNet; pass 1 for
    scratch training), biases ``bias_lr_mult`` times their layer's rate (2x) and no weight decay.
    ``layer_decay`` (e.g. 0.7) optionally multiplies the rate once more per stage below the head
    (discriminative rates). Frozen parameters are left out, so they get no optimizer state.
    """
    if base_lr <= 0:
        raise ValueError(f"The learning rate must be positive; got {base_lr}.")
    names = [n for n in model.stage_names if n != "input"]
    groups = []
    for depth, name in enumerate(reversed(names)):
        stage_lr = base_lr * (head_lr_mult if depth == 0 else 1.0) * (layer_decay ** depth if layer_decay else 1.0)
        weights, biases = _split_params(model.stages[name])
        if weights:
            groups.append({"params": weights, "lr": stage_lr, "weight_decay": weight_decay, "stage": name})
        if biases:
            groups.append({"params": biases, "lr": stage_lr * bias_lr_mult, "weight_decay": 0.0, "stage": name})
    if not groups:
        raise ValueError("Every parameter of the model is frozen: nothing would be trained.")
    return groups


def _split_params(stage: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """Trainable parameters of a stage: (weights, biases and 1-d BatchNorm parameters)."""
    weights, biases = [], []
    for p in stage.parameters():
        if p.requires_grad:
            (weights if p.ndim > 1 else biases).append(p)
    return weights, biases


def frozen_state(model: FTModel) -> dict[str, "torch.Tensor"]:
    """A copy of every parameter and buffer of the frozen stages (to prove they did not change)."""
    return {f"{name}.{k}": v.detach().clone() for name in model.frozen if name in model.stages
            for k, v in model.stages[name].state_dict().items()}


def changed_entries(model: FTModel, snapshot: dict[str, "torch.Tensor"]) -> list[str]:
    """Names of snapshot entries that are no longer bit-identical in ``model``."""
    current = {f"{name}.{k}": v for name in model.stages for k, v in model.stages[name].state_dict().items()}
    return [k for k, v in snapshot.items() if not torch.equal(current[k].detach().cpu(), v.cpu())]


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The network's first convolution (whose filters look at pixels)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError("The model has no convolution.")
