"""ipywidgets explorers over precomputed results (notebooks 02, 03 and 04).

Each explorer is a row of controls above one ``Output`` area. A change of any control clears that
area and draws the new table and figure into it, so each figure appears once, inside the widget.
Building an explorer draws it once at once and raises if that fails (``ipywidgets.interact`` would
only print the error, so a broken callback would still pass a headless test). The drawing function
is plain (``Explorer.show``) and returns what it drew, so tests can call it with any values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from . import analysis, bootstrap, plots, tables

METRICS = ("test_auc", "test_acc", "test_sens@10", "test_sens@15", "test_sens@20")
CSS_CLASS = "ftlab-explorer"   # the browser test finds explorers by this class


@dataclass
class Explorer:
    """Controls, the output area they redraw, and the drawing function behind them.

    Display ``explorer.widget`` (or the explorer itself) in a notebook. ``update()`` redraws from the
    controls' current values and returns what ``show`` returned (also kept in ``last``).
    """

    widget: W.Widget
    controls: dict[str, W.ValueWidget]
    output: W.Output
    show: Callable[..., Any]
    last: Any = field(default=None, repr=False)

    def values(self) -> dict[str, Any]:
        """The controls' current values, by ``show``'s argument names."""
        return {name: control.value for name, control in self.controls.items()}

    def update(self, change: Any = None) -> Any:
        """Clear the output area and draw ``show(**values())`` into it; raise what ``show`` raised."""
        errors: list[BaseException] = []
        self.output.clear_output(wait=True)
        with self.output:   # an Output swallows exceptions in a kernel: keep the error and raise it after
            try:
                self.last = self.show(**self.values())
            except Exception as err:
                errors.append(err)
                raise
        if errors:
            raise errors[0]
        return self.last

    def _repr_mimebundle_(self, **kwargs) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def _make_explorer(show: Callable[..., Any], controls: dict[str, W.ValueWidget]) -> Explorer:
    """Wire ``controls`` to ``show`` through one ``Output`` area; draw once now (errors raise)."""
    output = W.Output()
    box = W.VBox([W.HBox(list(controls.values())), output])
    box.add_class(CSS_CLASS)
    explorer = Explorer(box, controls, output, show)
    explorer.update()
    for control in controls.values():
        control.observe(explorer.update, names="value")
    return explorer


def _metric_table(summary: pd.Series) -> pd.DataFrame:
    """``test_x``, ``test_x_lo``, ``test_x_hi`` entries as one row per metric: value and 95% CI."""
    names = [k for k in summary.index if not k.endswith(("_lo", "_hi"))]
    values = [f"{float(summary[k]):.3f}".rstrip("0").rstrip(".") for k in names]
    return pd.DataFrame({"value": values,
                         "95% CI": [f"{summary[k + '_lo']:.3f}-{summary[k + '_hi']:.3f}"
                                    if k + "_lo" in summary.index else "" for k in names]},
                        index=[k.removeprefix("test_") for k in names])


def level_explorer(table: pd.DataFrame) -> Explorer:
    """Choose a data set and a level (or scratch): its metrics with CIs and its test ROC curve (notebook 03)."""
    strategies = tables.strategy_order(table)

    def show(dataset: str, strategy: str) -> pd.Series:
        rows = table[(table["dataset"] == dataset) & (table["strategy"] == strategy)]
        if rows.empty:
            raise ValueError(f"No result for data set {dataset!r} and strategy {strategy!r}.")
        row = rows.iloc[-1]
        summary = row[[c for c in row.index if c.startswith("test_") and c not in ("test_scores", "test_labels")]]
        display(_metric_table(summary))
        labels = np.asarray(row["test_labels"])
        if labels.ndim == 1 and len(np.unique(labels)) == 2:   # a ROC curve for binary sets only
            roc = bootstrap.roc_with_band(row["test_labels"], row["test_scores"], n_boot=200, seed=0)
            plots.plot_roc({strategy: roc})
            plt.show()
        return summary

    datasets = sorted(table["dataset"].unique())
    return _make_explorer(show, {
        "dataset": W.Dropdown(options=datasets, value=datasets[0], description="data set"),
        "strategy": W.Dropdown(options=strategies, value=strategies[-1], description="level")})


def results_explorer(table: pd.DataFrame, metric: str = "test_auc") -> Explorer:
    """Learning curves filtered by training fraction, strategies and metric (notebook 04)."""
    fractions = sorted(table["fraction"].unique())
    strategies = tables.strategy_order(table)

    def show(max_fraction: float, chosen: tuple[str, ...], metric: str) -> plt.Axes:
        if not chosen:
            raise ValueError("Select at least one strategy.")
        subset = table[(table["fraction"] <= max_fraction) & (table["strategy"].isin(chosen))]
        ax = plots.plot_learning_curves(subset, metric=metric)
        plt.show()
        return ax

    metrics_here = [m for m in METRICS if m in table]
    return _make_explorer(show, {
        "max_fraction": W.SelectionSlider(options=fractions, value=fractions[-1], description="up to fraction"),
        "chosen": W.SelectMultiple(options=strategies, value=tuple(strategies), description="strategies"),
        "metric": W.Dropdown(options=metrics_here, value=metric if metric in metrics_here else metrics_here[0],
                             description="metric")})


def confusion_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> pd.DataFrame:
    """The 2x2 confusion matrix of a binary test set when an image is called positive if its positive-class
    score is above ``threshold`` (rows: true class, columns: called class; 0.5 is the argmax call)."""
    truth, called = np.asarray(labels).ravel().astype(bool), np.asarray(scores).ravel() > threshold
    cells = [[int(np.sum(~truth & ~called)), int(np.sum(~truth & called))],
             [int(np.sum(truth & ~called)), int(np.sum(truth & called))]]
    return pd.DataFrame(cells, index=["true negative class", "true positive class"],
                        columns=["called negative", "called positive"])


def threshold_choices(scores: np.ndarray, n: int = 101) -> list[tuple[str, float]]:
    """Slider stops for :func:`threshold_explorer`: 0, 0.5, 1 and ``n`` quantiles of the scores, so the
    slider moves through the scores even when they all lie within 0.001 of each other (an uncalibrated
    model); labelled with enough digits to tell neighbours apart."""
    stops = np.unique(np.round(np.r_[0.0, 0.5, 1.0, np.quantile(np.asarray(scores, dtype=float), np.linspace(0, 1, n))], 6))
    return [(f"{t:.6f}".rstrip("0").rstrip(".") or "0", float(t)) for t in stops]


def threshold_explorer(labels: np.ndarray, scores: np.ndarray, class_names: tuple[str, str] = ("normal", "pneumonia"),
                       threshold: float = 0.5) -> Explorer:
    """A threshold slider over one binary model's test scores (positive-class probabilities): the confusion
    matrix at that threshold, its accuracy, sensitivity and specificity, and the positive share that a
    model calling every image positive would score as accuracy (notebook 02). The slider stops at the
    scores' quantiles (:func:`threshold_choices`); ``show(threshold)`` takes any threshold and returns
    those numbers as a Series."""
    def show(threshold: float) -> pd.Series:
        cm = confusion_at(labels, scores, threshold).to_numpy()
        (tn, fp), (fn, tp) = cm
        n = cm.sum()
        numbers = pd.Series({"threshold": threshold, "accuracy": (tn + tp) / n,
                             "sensitivity": tp / max(tp + fn, 1), "specificity": tn / max(tn + fp, 1),
                             "called positive": (tp + fp) / n, "positive share": (tp + fn) / n})
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        ax.imshow(cm, cmap="Blues")
        for (i, j), count in np.ndenumerate(cm):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=14,
                    color="white" if count > cm.max() / 2 else "black")
        ax.set_xticks([0, 1], [f"called {c}" for c in class_names])
        ax.set_yticks([0, 1], [f"true {c}" for c in class_names])
        ax.set_title(f"threshold {threshold:.6g}: accuracy {numbers['accuracy']:.3f}")
        plt.show()
        display(numbers.round(4).to_frame("value").T)
        return numbers

    choices = threshold_choices(scores)
    start = min(choices, key=lambda c: abs(c[1] - threshold))[1]
    return _make_explorer(show, {"threshold": W.SelectionSlider(options=choices, value=start, description="threshold",
                                                                continuous_update=False)})
