"""The one rule that chooses a fine-tuning depth on validation, for every application and table.

Classification sweeps (:func:`helpers.analysis.best_per_fraction`), the ladder of notebook 03
(:func:`helpers.findings.chosen_level`), detection and segmentation (:func:`helpers.detection.report.best_tuned_choice`)
and so the across-applications table all call :func:`choose`. It takes an explicit pool of candidates (never the
statistics-only control or ``auto`` unless the caller puts them in), ranks them by their mean validation figure
over seeds, and calls two candidates tied when their means differ by less than the validation set can resolve.

Resolution. A validation AUC on a set of ``n_pos`` positives and ``n_neg`` negatives moves in steps of
``1 / (n_pos * n_neg)``: one positive-negative pair ordered the other way. For ``n`` images the finest possible
step is ``4 / n**2`` (an even split; an unbalanced set has coarser steps; a mean over k one-vs-rest tasks
``4 / (k n**2)``), so two mean validation AUCs closer than that differ by less than one pair per seed: the
validation set cannot tell them apart (:func:`auc_resolution`).
Detection's validation FROC score and segmentation's validation Dice are averages of many near-continuous
values, so for them only exact ties (:data:`TIE_TOL`) count. A tie is broken toward the shallower level (fewer
trainable parameters), then the lower mean validation loss, never by the name, and it is reported: a tied
choice decides nothing.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

TIE_TOL = 1e-9
"""Validation means closer than this are tied whatever the resolution (rounding of saturated figures)."""


def auc_resolution(n_val: float, n_tasks: int = 1) -> float:
    """The finest step a validation AUC on ``n_val`` images can take: ``4 / n_val**2`` (one pair of an even
    split) for one binary task; a mean over ``n_tasks`` one-vs-rest tasks (multi-class, multi-label) can move
    by one pair of one task, ``4 / (n_tasks * n_val**2)``. 0 when unknown."""
    if n_val is None or not np.isfinite(n_val) or n_val < 2:
        return 0.0
    return 4.0 / (max(int(n_tasks), 1) * float(n_val) ** 2)


def choose(cells: pd.DataFrame, pool: Sequence[str], value: str = "val", resolution: float = 0.0) -> pd.DataFrame:
    """The candidates in ``pool`` ranked for the choice, best first, with a ``tied`` column.

    ``cells`` holds one row per strategy: ``strategy``, ``level_index``, the mean validation figure ``value``
    and, where known, ``val_loss`` (mean over seeds). Candidates within ``max(resolution, TIE_TOL)`` of the top
    are tied with it; among them the shallower level wins, then the lower validation loss. Rows outside
    ``pool`` are never ranked. Test columns are never read.
    """
    pool = list(pool)
    mine = cells[cells["strategy"].isin(pool)].copy()
    if mine.empty:
        return mine.assign(tied=pd.Series(dtype=bool))
    tol = max(float(resolution or 0.0), TIE_TOL)
    top = float(mine[value].max())
    mine["tied"] = (top - mine[value].astype(float)) < tol * (1 - 1e-9)   # exactly one step apart: not tied
    if "val_loss" not in mine:
        mine["val_loss"] = math.inf
    mine["val_loss"] = mine["val_loss"].astype(float).fillna(math.inf)
    mine["_key"] = np.where(mine["tied"], top, mine[value].astype(float))
    ranked = mine.sort_values(["_key", "level_index", "val_loss"], ascending=[False, True, True], kind="stable")
    return ranked.drop(columns="_key")
