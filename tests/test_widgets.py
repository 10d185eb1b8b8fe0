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
