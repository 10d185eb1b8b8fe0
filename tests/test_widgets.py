"""The explorers: built once with a drawing, redrawn when a control moves, errors raised (not printed)."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pytest

from helpers import widgets
from test_analysis import make_table

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def table():
    return make_table(seeds=range(2), with_auto=False)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_level_explorer_redraws_when_the_level_changes(table):
    one = table[table["fraction"] == table["fraction"].max()]
    explorer = widgets.level_explorer(one)
    first = explorer.last.copy()
    assert explorer.controls["strategy"].value == explorer.controls["strategy"].options[-1]
    explorer.controls["strategy"].value = explorer.controls["strategy"].options[0]   # as a student would
    assert explorer.last["test_auc"] != first["test_auc"], "moving the control must change the table shown"
    assert widgets.CSS_CLASS in explorer.widget._dom_classes


def test_results_explorer_redraws_when_a_control_moves(table):
    explorer = widgets.results_explorer(table)
    lines_before = len(explorer.last.get_lines())
    explorer.controls["chosen"].value = explorer.controls["chosen"].options[:1]
    assert len(explorer.last.get_lines()) < lines_before
    explorer.controls["max_fraction"].value = explorer.controls["max_fraction"].options[0]
    xs = [x for line in explorer.last.get_lines() for x in line.get_xdata()]
    assert len(set(xs)) <= 1, "only the smallest fraction is left"


def test_a_failing_drawing_raises_instead_of_printing(table):
    explorer = widgets.results_explorer(table)
    with pytest.raises(ValueError, match="at least one strategy"):
        explorer.controls["chosen"].value = ()
    bad = table.assign(dataset="x")
    explorer = widgets.level_explorer(bad)
    explorer.controls["dataset"].options = ["x", "missing"]
    with pytest.raises(ValueError, match="No result"):
        explorer.controls["dataset"].value = "missing"


def test_level_explorer_on_multi_label_rows_shows_the_table_without_a_roc(table):
    """Multi-label rows store one 0/1 list per test image: no binary ROC, but no error either."""
    one = table[table["fraction"] == table["fraction"].max()].copy()
    one["test_labels"] = [[[1, 0], [0, 1], [1, 1]]] * len(one)
    one["test_scores"] = [[[0.9, 0.1], [0.2, 0.8], [0.7, 0.6]]] * len(one)
    explorer = widgets.level_explorer(one)
    assert "test_auc" in explorer.last.index and not plt.get_fignums()


def test_threshold_explorer_at_zero_calls_everything_positive_and_matches_argmax_at_one_half():
    import numpy as np
    from helpers import metrics
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 50)
    scores = np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.2, 50), 0.001, 0.999)
    explorer = widgets.threshold_explorer(labels, scores)
    half = explorer.last
    two_column = np.stack([1 - scores, scores], axis=1)
    assert half["accuracy"] == pytest.approx(metrics.accuracy(labels, two_column))
    explorer.controls["threshold"].value = 0.0
    everything = explorer.last
    assert everything["called positive"] == 1.0 and everything["sensitivity"] == 1.0
    assert everything["accuracy"] == pytest.approx(labels.mean()) == pytest.approx(everything["positive share"])
    assert widgets.confusion_at(labels, scores, 0.0).to_numpy().sum() == len(labels)


def test_threshold_choices_move_through_scores_squeezed_into_a_thousandth():
    import numpy as np
    scores = 0.74 + np.linspace(-0.0005, 0.0005, 200)
    values = [v for _, v in widgets.threshold_choices(scores)]
    inside = [v for v in values if scores.min() < v < scores.max()]
    assert len(inside) > 50 and {0.0, 0.5, 1.0} <= set(values)
    assert len({label for label, _ in widgets.threshold_choices(scores)}) == len(values)
