"""helpers.detection.report: summaries of a detection results table, on hand-made rows whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.detection import froc, report


SEQUENCES = ["A", "A", "B", "B"]


def _masks() -> np.ndarray:
    """Four 20x20 test frames, one 6x6 polyp each, two sequences."""
    masks = np.zeros((4, 20, 20), dtype=bool)
    masks[:, 2:8, 2:8] = True
    return masks


def _frames() -> pd.DataFrame:
    return froc.make_frame_table(_masks(), SEQUENCES)


def _matches(hits: int) -> pd.DataFrame:
    """The polyps of the first ``hits`` frames found (score 0.9), and one false positive in every frame
    (score 0.5), matched by :func:`froc.match_candidates`."""
    cands = [([(4, 4, 0.9)] if f < hits else []) + [(16, 16, 0.5)] for f in range(4)]
    return froc.match_candidates(cands, _masks(), SEQUENCES)


def _row(strategy: str, level_index: int, seed: int, hits: int, val: float, **extra) -> dict:
    return {"strategy": strategy, "level_index": level_index, "seed": seed, "fraction": 1.0, "lr": 0.01,
            "val_auc": val, "diverged": False, "arch": "efficientnet_lite0", "test_frames": 4,
            "test_sequences": 2, "matches": _matches(hits).to_dict("records"),
            "frame_table": _frames().to_dict("records"), "val_figure_before": val - 0.1,
            "val_figure_after": val, "n_hard_negatives": 10, "kept": "after", **extra}


@pytest.fixture()
def table() -> pd.DataFrame:
    rows = [_row("scratch", 0, s, hits=1, val=0.3) for s in (0, 1)]
    rows += [_row("classifier", 1, s, hits=2, val=0.5) for s in (0, 1)]
    rows += [_row("conv_head-classifier", 2, s, hits=4, val=0.7) for s in (0, 1)]
    rows.append(_row("classifier", 1, 2, hits=0, val=0.99, diverged=True))   # diverged: read nowhere
    return pd.DataFrame(rows)


def test_matches_are_valid_froc_input():
    matches = _matches(2)
    curve = froc.froc_curve(matches, 4, 4)
    assert froc.sensitivity_at_fp(curve, (1.0,))[1.0] == pytest.approx(0.5)


def test_diverged_runs_are_left_out_of_every_summary(table):
    assert len(report.finished(table)) == 6
    assert report.best_tuned_level(table) == "conv_head-classifier"   # not the diverged run's 0.99
    hard = report.hard_negative_table(table)
    assert list(hard.index) == ["scratch", "classifier", "conv_head-classifier"]   # shallow to deep
    assert hard.loc["classifier", "runs"] == 2 and hard.loc["classifier", "kept_after"] == 2


def test_sensitivity_table_reads_each_strategy_at_each_rate(table):
    summary = report.sensitivity_table(table, rates=(1.0,), n_boot=50)
    assert list(summary["strategy"]) == ["scratch", "classifier", "conv_head-classifier"]
    assert list(summary["seeds"]) == [2, 2, 2]
    # at 1 FP/frame every candidate counts: sensitivity is the share of polyps hit
    assert [cell.split(" ")[0] for cell in summary["sensitivity at 1 FP/frame"]] == ["0.25", "0.50", "1.00"]


def _bands(points: dict[str, tuple[float, float, float]], rate: float = 0.5) -> pd.DataFrame:
    return pd.DataFrame([{"strategy": s, "fp_per_frame": rate, "sensitivity": v, "lo": lo, "hi": hi,
                          "level_index": i} for i, (s, (v, lo, hi)) in enumerate(points.items())])


@pytest.mark.parametrize("points, verdict", [
    ({"scratch": (0.9, 0.8, 1.0), "classifier": (0.3, 0.2, 0.4), "all": (0.8, 0.7, 0.9)}, report.HOLDS),
    ({"classifier": (0.8, 0.7, 0.9), "all": (0.3, 0.2, 0.4)}, report.FAILS),
    ({"classifier": (0.5, 0.3, 0.7), "all": (0.6, 0.4, 0.8)}, report.UNDECIDED),
])
def test_the_all_layers_claim_reads_non_overlapping_bands(points, verdict):
    # scratch never counts: the claim compares tuned levels
    got, why = report.all_layers_verdict(_bands(points), 0.5)
    assert got == verdict and why


def test_the_all_layers_claim_needs_two_levels_and_two_sequences():
    two = _bands({"classifier": (0.3, 0.2, 0.4), "all": (0.8, 0.7, 0.9)})
    assert report.all_layers_verdict(two, 0.5, n_sequences=1)[0] == report.UNDECIDED
    assert report.all_layers_verdict(two[two["strategy"] == "all"], 0.5)[0] == report.UNDECIDED
    assert report.all_layers_verdict(two, 0.1)[0] == report.UNDECIDED   # no band at that rate


def test_the_report_says_where_the_claim_is_not_tested(table):
    sentences = report.detection_report(table, rates=(1.0,), n_boot=50)
    text = " ".join(sentences)
    assert "6 runs at 100% of the training sequences" in text
    assert "best validation FROC figure is conv_head-classifier" in text
    assert "does not tune every layer" in text          # conv_head-classifier is not all layers
    assert "chosen level conv_head-classifier (1.00) is" in text
