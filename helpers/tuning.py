"""Procedures that loop over :func:`helpers.train.fit`: fit then test, the learning-rate search, and the
paper's practical scheme (auto-depth: deepen the tuned range while validation AUC rises).

Only validation data decide anything here; test data are scored once, after the choice.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from torch import nn
from .progress import tqdm

from .datasets import DataSet
from .env import seed_everything
from .finetune import ladder, set_level
from .metrics import is_collapsed
from .models import FTModel, count_parameters
from .train import TrainConfig, TrainResult, evaluate, fit


@dataclass
class Outcome:
    """A trained model's training record, test metrics (with CIs) and test probabilities."""
    label: str
    result: TrainResult
    metrics: dict[str, float]
    scores: np.ndarray


def fit_and_test(label: str, model: nn.Module, data: DataSet, config: TrainConfig | None = None,
                 n_boot: int = 1000, **overrides) -> Outcome:
    """:func:`fit` then :func:`evaluate` on the test split, packaged as an :class:`Outcome`."""
    result = fit(model, data, config, **overrides)
    seed = overrides.get("seed", config.seed if config else 0)
    metrics, scores = evaluate(model, data.test, n_boot=n_boot, seed=seed, device=result.device)
    return Outcome(label, result, metrics, scores)


@dataclass
class RateSearch:
    """A learning rate chosen on validation data: every rate tried, the choice, and its trained model."""
    table: pd.DataFrame   # one row per rate: lr, val_auc, val_loss, best_step, steps, diverged, seconds
    lr: float
    model: nn.Module
    result: TrainResult


def choose_rate(table: pd.DataFrame, score: str = "val_auc") -> float:
    """The rate with the best validation score (column ``score``: the engine's validation AUC in a rate search's
    table, a sweep row's ``val_score``), then the lower validation loss, then the smaller rate.

    Diverged rates and rates without a finite validation AUC are never chosen; nor is a rate whose
    model gave every validation image the same score (``val_collapsed``: its AUC is rounding noise),
    unless every rate's model did.
    """
    ok = table[~table["diverged"].astype(bool) & np.isfinite(table[score].astype(float))]
    if ok.empty:
        raise ValueError(f"Every learning rate tried ({', '.join(f'{r:g}' for r in table['lr'])}) diverged; "
                         "add smaller rates to the grid.")
    if "val_collapsed" in ok and not ok["val_collapsed"].fillna(False).astype(bool).all():
        ok = ok[~ok["val_collapsed"].fillna(False).astype(bool)]
    ranked = ok.assign(neg_score=-ok[score].astype(float)).sort_values(["neg_score", "val_loss", "lr"])
    return float(ranked["lr"].iloc[0])


def tune_lr(build: Callable[[], nn.Module], data: DataSet, grid: Sequence[float], config: TrainConfig | None = None,
            label: str = "model", **overrides) -> RateSearch:
    """Train a fresh model at every rate of ``grid`` (same data, seed, initial weights and step budget);
    keep the one with the best validation AUC.

    ``build`` makes the fresh model (after seeding, so every rate starts from the same weights) with its
    fine-tuning level already set. A rate whose loss explodes or becomes NaN is recorded as diverged
    and never chosen. Test data are never looked at. Unless the config is ``quiet``, a bar over the rates
    shows (above each run's own bar over steps).
    """
    config = replace(config or TrainConfig(), **overrides)
    rows, best = [], None
    for lr in tqdm(list(grid), desc=f"rates for {label}", disable=config.quiet, leave=False):
        seed_everything(config.seed, config.threads)
        model = build()
        try:
            result = fit(model, data, config, lr=float(lr))
        except FloatingPointError as err:   # TrainingDivergedError included
            rows.append({"model": label, "lr": float(lr), "val_auc": math.nan, "val_loss": math.nan,
                         "best_step": -1, "steps": -1, "diverged": True, "val_collapsed": False,
                         "seconds": math.nan, "note": str(err)})
            continue
        rows.append({"model": label, "lr": float(lr), "val_auc": result.best_val_auc,
                     "val_loss": result.best_val_loss, "best_step": result.best_step, "steps": result.iterations,
                     "diverged": False, "val_collapsed": is_collapsed(result.best_val_score_sd),
                     "seconds": result.wall_s, "note": ""})
        if best is None or choose_rate(pd.DataFrame(rows)) == float(lr):
            best = (float(lr), model, result)
    table = pd.DataFrame(rows)
    lr = choose_rate(table)
    table["chosen"] = table["lr"] == lr
    return RateSearch(table, lr, best[1], best[2])


@dataclass
class AutoDepthResult:
    """The paper's practical scheme: the chosen level, the path walked, and the chosen model."""
    chosen: str
    chosen_index: int
    path: pd.DataFrame
    model: FTModel


def auto_depth(model: FTModel, data: DataSet, config: TrainConfig | None = None, patience_levels: int = 1, max_levels: int | None = None,
               warm_start: bool = True, rates: dict[str, float] | None = None, quiet: bool = False,
               **overrides) -> AutoDepthResult:
    """Tune the last layer, then add one level at a time going deeper, until validation AUC stops rising.

    Stops after ``patience_levels`` levels without a better validation AUC (or after ``max_levels``).
    Work is reused: with ``warm_start`` each level starts from the previous level's best weights (its
    tuned layers already adapted), and the engine caches the frozen part's features at every level, so
    the deep, frozen bulk of the network is run once per level rather than at every step.
    ``rates`` gives a level (by name) its own learning rate, e.g. the rates a ladder run tuned on
    validation data; levels not named use the config's rate. Only validation data decide. A level whose
    training diverges (from the previous level's weights, at its rate) counts as a level that did not improve:
    the path records it (``diverged``, ``note``) and the walk goes on from the best weights, or stops.
    Returns the chosen level, the path (level, rate, validation AUC and loss, steps, seconds) and the
    model holding the chosen level's weights. A progress bar over levels (with the best validation AUC so
    far) shows unless ``quiet``.
    """
    rungs = ladder(model)[: max_levels or None]
    start_state = copy.deepcopy(model.state_dict())
    rows, best_auc, best_state, best_rung, waited = [], -1.0, None, rungs[0], 0
    if quiet:   # silences every run's bar over steps too
        overrides = {**overrides, "quiet": True}
    bar = tqdm(rungs, desc="auto-depth levels", disable=quiet)
    for rung in bar:
        bar.set_postfix_str(rung.name)
        if not warm_start:
            model.load_state_dict(start_state)
        set_level(model, rung)
        level_overrides = {**overrides, **({"lr": rates[rung.name]} if rates and rung.name in rates else {})}
        lr = level_overrides.get("lr", getattr(config, "lr", None))
        try:
            result = fit(model, data, config, **level_overrides)
        except FloatingPointError as err:   # this level's rate is too large from here: it did not improve
            rows.append({"level": rung.name, "index": rung.index, "lr": lr, "val_auc": float("nan"),
                         "val_loss": float("nan"), "diverged": True, "note": str(err),
                         "trainable parameters": count_parameters(model, trainable_only=True)})
            if best_state is None:
                raise
            model.load_state_dict(best_state)   # the next level (if any) starts from the best weights, not garbage
            waited += 1
            if waited >= patience_levels:
                break
            continue
        rows.append({"level": rung.name, "index": rung.index, "lr": lr,
                     "val_auc": result.best_val_auc, "val_loss": result.best_val_loss,
                     "best_step": result.best_step, "iterations": result.iterations,
                     "seconds": result.wall_s, "cached": result.cached, "diverged": False,
                     "trainable parameters": count_parameters(model, trainable_only=True)})
        if result.best_val_auc > best_auc:
            best_auc, best_state, best_rung, waited = result.best_val_auc, copy.deepcopy(model.state_dict()), rung, 0
        else:
            waited += 1
            if waited >= patience_levels:
                break
        bar.set_postfix(level=rung.name, best=f"{best_auc:.3f}")
    bar.close()
    model.load_state_dict(best_state)
    set_level(model, best_rung)
    return AutoDepthResult(best_rung.name, best_rung.index, pd.DataFrame(rows), model)
