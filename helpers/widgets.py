"""ipywidgets explorers over precomputed results.

Each function returns ``(widget, callback)``: the notebook displays the widget and also calls the
callback once directly, because ``interact`` only prints an exception raised inside its callback.
"""
from __future__ import annotations

from typing import Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from . import analysis, metrics, plots

METRICS = ("test_auc", "test_acc", "test_sens@10", "test_sens@15", "test_sens@20")


def level_explorer(table: pd.DataFrame) -> tuple[W.Widget, Callable[[str, str], pd.Series]]:
    """Choose a data set and a level (or scratch): its metrics with CIs and its test ROC curve."""
    strategies = analysis.strategy_order(table)

    def show(dataset: str, strategy: str) -> pd.Series:
        rows = table[(table["dataset"] == dataset) & (table["strategy"] == strategy)]
        if rows.empty:
            raise ValueError(f"No result for data set {dataset!r} and strategy {strategy!r}.")
        row = rows.iloc[-1]
        summary = row[[c for c in row.index if c.startswith("test_") and c not in ("test_scores", "test_labels")]]
        display(summary.to_frame(strategy))
        if np.asarray(row["test_labels"]).ndim == 1 and len(set(row["test_labels"])) == 2:
            roc = metrics.roc_with_band(row["test_labels"], row["test_scores"], n_boot=200, seed=0)
            plots.plot_roc({strategy: roc})
            plt.show()
        return summary

    out = W.interactive(show, dataset=W.Dropdown(options=sorted(table["dataset"].unique()), description="data set"),
                        strategy=W.Dropdown(options=strategies, description="level"))
    return out, show


def results_explorer(table: pd.DataFrame) -> tuple[W.Widget, Callable[..., plt.Axes]]:
    """Learning curves filtered by training fraction, strategies and metric."""
    fractions = sorted(table["fraction"].unique())
    strategies = analysis.strategy_order(table)

    def show(max_fraction: float, chosen: tuple[str, ...], metric: str) -> plt.Axes:
        if not chosen:
            raise ValueError("Select at least one strategy.")
        subset = table[(table["fraction"] <= max_fraction) & (table["strategy"].isin(chosen))]
        ax = plots.plot_learning_curves(subset, metric=metric)
        plt.show()
        return ax

    out = W.interactive(
        show,
        max_fraction=W.SelectionSlider(options=fractions, value=fractions[-1], description="up to fraction"),
        chosen=W.SelectMultiple(options=strategies, value=tuple(strategies), description="strategies"),
        metric=W.Dropdown(options=[m for m in METRICS if m in table], description="metric"))
    return out, show
