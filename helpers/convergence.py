"""How fast each strategy converges: iterations to a share of its best validation AUC, measured from chance
(the paper's Fig. 10), and how many runs were still improving at their last step."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .schema import SCRATCH
from .store import decode_cell
from .tables import decode_results, dedupe, per_experiment, strategy_order

CHANCE = 0.5            # AUC of a random ranking

def iterations_to_fraction(curve: Any, fraction: float = 0.95, chance: float = CHANCE) -> int | None:
    """First logged iteration at which validation AUC has come ``fraction`` of the way from chance to the
    curve's *maximum*: AUC_t - chance >= fraction * (max - chance).

    Measured from chance, not from zero: AUC's chance level is 0.5, so "95% of the best AUC" would be
    reached at once by a model whose best is 0.60 (0.57 is barely above chance). The maximum (not the
    final value) is the reference because training keeps the best-validation model and early stopping
    logs a few worse points after it. ``curve`` is a list of ``[iteration, val_auc]`` pairs (or its JSON
    string); ``chance=0`` gives the plain share of the maximum. Returns None for an empty curve or one
    that never rises above chance.
    """
    points = sorted((int(it), float(v)) for it, v in decode_cell(curve) if v is not None and np.isfinite(v))
    if not points:
        return None
    best = max(v for _, v in points)
    if best <= chance:
        return None
    threshold = chance + fraction * (best - chance)
    return next(it for it, v in points if v >= threshold - 1e-12)



def _convergence_one(df: pd.DataFrame, fraction: float) -> pd.DataFrame:
    df = dedupe(decode_results(df))
    rows = []
    for (strategy, frac), g in df.groupby(["strategy", "fraction"], sort=False):
        reach = [iterations_to_fraction(c, fraction) for c in g["curve"]]
        reach = [r for r in reach if r is not None]
        best = [max(c, key=lambda p: p[1])[0] for c in g["curve"] if len(c)]
        first = [min(int(it) for it, _ in c) for c in g["curve"] if len(c)]
        median_reach = float(np.median(reach)) if reach else math.nan
        first_check = float(np.median(first)) if first else math.nan
        rows.append(dict(strategy=str(strategy), fraction=float(frac), n_train=int(round(g["n_train"].median())),
                         median_iterations=median_reach, first_check=first_check,
                         at_first_check=bool(reach) and median_reach <= first_check,
                         median_best_iteration=float(np.median(best)) if best else math.nan,
                         best_at_end=best_at_end_share(g), n_runs=len(g), n_with_curve=len(reach)))
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {s: i for i, s in enumerate(strategy_order(df))}
    out = out.sort_values(["fraction", "strategy"], key=lambda col: col.map(order) if col.name == "strategy" else col)
    scratch = out[out["strategy"] == SCRATCH].set_index("fraction")
    # both at their first check: each converged within one check interval, and no ratio can be read
    out["speedup_vs_scratch"] = [
        math.nan if f not in scratch.index or not m or m <= 0 or (first and scratch.at[f, "at_first_check"])
        else scratch.at[f, "median_iterations"] / m
        for f, m, first in zip(out["fraction"], out["median_iterations"], out["at_first_check"])]
    return out.reset_index(drop=True)



def convergence_table(df: pd.DataFrame, fraction: float = 0.95) -> pd.DataFrame:
    """Per strategy and training fraction: median iterations to come ``fraction`` of the way from chance
    to the best validation AUC.

    Columns: ``strategy, fraction, n_train, median_iterations`` (see :func:`iterations_to_fraction`),
    ``first_check`` (the first logged iteration: the resolution of the measurement), ``at_first_check``
    (True when the median run had already got there at its first check, so the speed is "at most
    ``first_check`` steps" and differences below the check interval cannot be seen; log more often,
    a smaller ``eval_every``, to resolve them), ``median_best_iteration`` (where validation AUC peaked), ``best_at_end`` (share of runs whose best
    check was their last step: still improving when the budget ran out), ``n_runs, n_with_curve`` and
    ``speedup_vs_scratch`` (scratch's median iterations / this strategy's, same fraction; NaN where both
    got there at their first check, since neither speed is resolved).
    """
    return per_experiment(df, lambda d: _convergence_one(d, fraction))



def best_at_end_share(runs: pd.DataFrame) -> float:
    """Share of ``runs`` whose best validation check was their last step: still improving when the step
    budget ran out, so a larger budget might have moved them (NaN when no run logged its best step)."""
    if "best_step" not in runs.columns or "iterations" not in runs.columns:
        return math.nan
    known = runs[(runs["best_step"].astype(float) > 0) & (runs["iterations"].astype(float) > 0)]
    if known.empty:
        return math.nan
    return float((known["best_step"].astype(float) >= known["iterations"].astype(float)).mean())
