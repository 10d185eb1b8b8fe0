"""A sweep's results table: reading it (list columns, older names, one row per run) and its shape (experiments,
strategies in order, fractions and their sizes). What the statistics of :mod:`helpers.analysis`, the power laws of
:mod:`helpers.learning_curves` and the convergence table of :mod:`helpers.convergence` stand on."""
from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pandas as pd

from .schema import AUTO, SCRATCH, STATISTICS, upgrade
from .metrics import auc_defined
from .store import decode_cell, decode_list_columns

EXPERIMENT_KEYS = ("dataset", "arch")


RUN_KEYS = ("dataset", "arch", "strategy", "fraction", "seed")


_METRIC_LABELS = {
    "test_auc": "Test AUC",
    "test_acc": "Test accuracy",
    "val_score": "Validation score",
}



def metric_label(metric: str) -> str:
    """A reader-friendly name for a metric column (``"test_sens@10"`` -> ``"Sensitivity at 10% FPR"``)."""
    if metric in _METRIC_LABELS:
        return _METRIC_LABELS[metric]
    match = re.fullmatch(r"(test|val)_sens@(\d+)", metric)
    if match:
        return f"Sensitivity at {match.group(2)}% FPR"
    return metric.replace("_", " ")



def decode_results(df: pd.DataFrame) -> pd.DataFrame:
    """Parse the list columns (:data:`helpers.store.LIST_COLUMNS`: ``curve``, ``test_scores``, ...) into lists.

    Idempotent: cells that are already lists are left alone, so it is safe to call on a table that
    was decoded before. Returns a copy; also turns the empty ``level`` of scratch runs (read back
    from CSV as NaN) into ``""``.
    """
    out = upgrade(decode_list_columns(df))
    if "level" in out.columns:
        out["level"] = out["level"].fillna("").astype(str)
    return out



def dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """Leave out diverged runs (they have no metrics) and keep the last finished row of each
    (dataset, arch, strategy, fraction, seed) (rows arrive in config or hash order, so the order of finishing is
    read from ``finished_at``; the table keeps its order). Older column names are mapped (:func:`helpers.schema.upgrade`)."""
    df = upgrade(df)
    if "diverged" in df.columns:
        df = df[~df["diverged"].fillna(False).astype(bool)]
    keys = [k for k in RUN_KEYS if k in df.columns]
    if "finished_at" in df.columns and df.duplicated(subset=keys).any():
        latest = df.sort_values("finished_at", kind="stable").drop_duplicates(subset=keys, keep="last")
        return df.loc[df.index.isin(latest.index)]
    return df.drop_duplicates(subset=keys, keep="last")



def score_tasks(df: pd.DataFrame) -> int:
    """One-vs-rest tasks behind a stored AUC: the width of a score row (multi-class, multi-label), else 1."""
    if "test_scores" not in df.columns or df.empty:
        return 1
    first = decode_cell(df["test_scores"].iloc[0]) if isinstance(df["test_scores"].iloc[0], str) else df["test_scores"].iloc[0]
    return len(first[0]) if len(first) and isinstance(first[0], (list, tuple, np.ndarray)) else 1



def experiment_keys(df: pd.DataFrame) -> list[str]:
    return [k for k in EXPERIMENT_KEYS if k in df.columns]



def per_experiment(df: pd.DataFrame, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """Apply ``fn`` to each (dataset, arch) experiment; prepend the keys; concatenate."""
    keys = experiment_keys(df)
    if not keys:
        return fn(df)
    parts = []
    for values, sub in df.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        part = fn(sub)
        for i, (k, v) in enumerate(zip(keys, values)):
            part.insert(i, k, v)
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()



def single_experiment(df: pd.DataFrame, what: str) -> None:
    """Refuse a table that mixes (dataset, arch) experiments."""
    keys = experiment_keys(df)
    if keys and len(df.groupby(keys)) > 1:
        raise ValueError(f"{what} speaks about one experiment, but the table holds several "
                         f"{'/'.join(keys)} combinations; filter it first, e.g. df[df.dataset == 'pneumoniamnist'].")



def strategy_order(df: pd.DataFrame) -> list[str]:
    """Strategies in teaching order: scratch first, the statistics-only control, then levels by
    ``level_index`` ascending, auto last."""
    names = [str(s) for s in pd.unique(df["strategy"])]
    levels = [s for s in names if s not in (SCRATCH, STATISTICS, AUTO)]
    index = df[df["strategy"].isin(levels)].groupby("strategy")["level_index"].min()
    levels.sort(key=lambda s: (float(index.get(s, 0)), s))
    return ([s for s in (SCRATCH, STATISTICS) if s in names]) + levels + ([AUTO] if AUTO in names else [])



def level_strategies(df: pd.DataFrame) -> list[str]:
    """The fine-tuning levels only (no scratch, no statistics-only control, no auto), shallowest first."""
    return [s for s in strategy_order(df) if s not in (SCRATCH, STATISTICS, AUTO)]



def fraction_sizes(df: pd.DataFrame) -> dict[float, int]:
    """Training fraction -> training images (median ``n_train`` over the runs at that fraction)."""
    return {float(f): int(round(g.median())) for f, g in df.groupby("fraction")["n_train"]}



def has_scores(frame: pd.DataFrame) -> bool:
    """True when every run stored one score (or one probability row) per test case, on the same labels."""
    if "test_scores" not in frame.columns or "test_labels" not in frame.columns or frame.empty:
        return False
    first = list(frame["test_labels"].iloc[0])
    if not auc_defined(first):
        return False
    return all(len(scores) == len(first) and list(labels) == first
               for scores, labels in zip(frame["test_scores"], frame["test_labels"]))
