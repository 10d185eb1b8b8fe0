"""The result row's shared names, for every application, and the map from the names older stores used.

Every run row (classification, detection, segmentation) holds its run config's flat view
(:meth:`helpers.runner.RunIdentity.flat`) and:

- ``val_score``: the figure every choice is made on, on validation data only, and ``val_metric``, what it is:
  ``auc`` (classification), ``froc_score`` (detection: mean sensitivity at 0.1, 0.5 and 1 FP/frame) or ``dice``
  (segmentation);
- ``lr_used``: the rate the run trained with (``lr`` is the config's own field: None when left to the recipe);
- ``iterations``: the SGD steps the run took (both passes for detection).

Stores written before these names (``val_auc`` for every application, detection's and segmentation's rate in
``lr``, ``steps_run``) are read through :func:`upgrade`, which the results stores apply on load.
"""
from __future__ import annotations

import pandas as pd

SCRATCH = "scratch"           # the strategy trained from random weights
STATISTICS = "statistics"     # the statistics-only control (pretrained weights' scale, not their features)
AUTO = "auto"                 # the paper's practical scheme: the depth chosen while training

SELECT_BY = "val_score"
"""The column every "best" choice is made on: validation, never test."""

METRIC_OF_TASK = {"polyp": "froc_score", "segmentation": "dice"}
"""``val_metric`` by the row's ``task`` (a row without a task is a classification row: ``auc``)."""


def val_metric(task: object) -> str:
    """What a row's ``val_score`` is, from its ``task``."""
    return METRIC_OF_TASK.get(task, "auc") if isinstance(task, str) else "auc"


def upgrade(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the names of older stores mapped to today's (a table already in them is returned as is)."""
    if table.empty:
        return table
    out = table
    if "val_score" not in out and "val_auc" in out:
        out = out.rename(columns={"val_auc": "val_score"})
    if "val_score" in out and "val_metric" not in out:
        out = out.assign(val_metric=(out["task"].map(val_metric) if "task" in out else "auc"))
    if "lr_used" not in out and "lr" in out and "task" in out:   # detection and segmentation rows kept the rate in lr
        out = out.assign(lr_used=out["lr"])
    if "steps_run" in out:
        out = out.drop(columns="steps_run")
    return out
