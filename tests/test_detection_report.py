"""helpers.detection.report: summaries of a detection results table, on hand-made rows whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers.detection import froc, report
from conftest import sequence_run


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
    return {"strategy": strategy, "level_index": level_index, "seed": seed, "fraction": 1.0, "lr": 0.01, "lr_used": 0.01, "task": "polyp",
            "val_score": val, "val_metric": "froc_score", "diverged": False, "arch": "efficientnet_lite0", "test_frames": 4,
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


def _paired(points: dict[str, tuple[float, float, float]], rate: float = 0.5) -> pd.DataFrame:
    """Rows of :func:`report.paired_differences`: all layers minus each strategy, (delta, lo, hi)."""
    return pd.DataFrame([{"strategy": s, "level_index": i, "fp_per_frame": rate, "delta": d, "lo": lo, "hi": hi,
                          "p": 0.5} for i, (s, (d, lo, hi)) in enumerate(points.items())])


@pytest.mark.parametrize("points, verdict", [
    ({"scratch": (-0.1, -0.2, 0.0), "classifier": (0.3, 0.1, 0.5), "conv_head": (0.1, 0.02, 0.2)}, report.HOLDS),
    ({"classifier": (-0.3, -0.5, -0.1), "conv_head": (0.2, 0.1, 0.3)}, report.FAILS),
    ({"classifier": (0.1, -0.1, 0.3), "conv_head": (0.2, 0.1, 0.3)}, report.UNDECIDED),
])
def test_the_all_layers_claim_reads_paired_differences(points, verdict):
    # scratch never counts: the claim compares tuned levels
    got, why = report.all_layers_verdict(_paired(points), 0.5)
    assert got == verdict and why


def test_the_all_layers_claim_needs_two_levels_and_two_sequences():
    two = _paired({"classifier": (0.3, 0.2, 0.4)})
    assert report.all_layers_verdict(two, 0.5)[0] == report.HOLDS
    assert report.all_layers_verdict(two, 0.5, n_sequences=1)[0] == report.UNDECIDED
    assert report.all_layers_verdict(two.iloc[:0], 0.5)[0] == report.UNDECIDED
    assert report.all_layers_verdict(two, 0.1)[0] == report.UNDECIDED   # no difference at that rate


def test_a_tie_on_validation_goes_to_the_shallower_level_and_is_flagged(table):
    tied = table.copy()
    tied.loc[tied["strategy"] == "classifier", "val_score"] = 0.7        # both tuned levels at 0.7
    assert report.best_tuned_choice(tied) == ("classifier", True, ["conv_head-classifier"])
    assert report.best_tuned_level(tied) == "classifier"
    assert report.best_tuned_choice(table) == ("conv_head-classifier", False, [])
    # the name never decides: renaming the deeper level to sort first changes nothing
    renamed = tied.replace({"strategy": {"conv_head-classifier": "a_deep"}})
    assert report.best_tuned_choice(renamed) == ("classifier", True, ["a_deep"])
    # same depth (a hand-made case): the lower validation loss wins
    twins = tied.assign(level_index=1, val_loss=np.where(tied["strategy"] == "classifier", 0.5, 0.2))
    assert report.best_tuned_choice(twins)[0] == "conv_head-classifier"
    text = " ".join(report.detection_report(tied, rates=(1.0,), n_boot=50))
    assert "a tie on validation with conv_head-classifier" in text


def test_paired_differences_pair_runs_by_seed(table):
    paired = report.paired_differences(table, "conv_head-classifier", rates=(1.0,), n_boot=100)
    assert list(paired["strategy"]) == ["scratch", "classifier"]          # shallow to deep, the reference left out
    # at 1 FP/frame: 1.00 against 0.25 and 0.50, the same in both seeds
    assert paired["delta"].tolist() == pytest.approx([0.75, 0.5])
    assert (paired["n_runs"] == 2).all()   # the diverged classifier seed has no partner


def test_the_paired_verdict_decides_what_band_overlap_could_not():
    hard = [0, 3, 1, 2, 0, 3, 1, 2]      # per-sequence difficulty: wide bands; all layers one polyp ahead everywhere
    rows = []
    for seed in (0, 1):
        for strategy, level_index, extra in (("classifier", 1, 0), ("conv_stem-classifier", 2, 1)):
            matches, frames = sequence_run([h + extra for h in hard])
            rows.append({**_row(strategy, level_index, seed, hits=0, val=0.5), "test_frames": len(frames),
                         "test_sequences": len(hard), "matches": matches.to_dict("records"),
                         "frame_table": frames.to_dict("records")})
    table = pd.DataFrame(rows)
    bands = report.froc_bands(table, [1.0], n_boot=300).set_index("strategy")
    assert bands.loc["conv_stem-classifier", "lo"] < bands.loc["classifier", "hi"]   # the bands overlap
    paired = report.paired_differences(table, "conv_stem-classifier", rates=(1.0,), n_boot=300)
    verdict, why = report.all_layers_verdict(paired, 1.0, len(hard))
    assert verdict == report.HOLDS and "+0.25" in why


def test_the_report_says_where_the_claim_is_not_tested(table):
    sentences = report.detection_report(table, rates=(1.0,), n_boot=50)
    text = " ".join(sentences)
    assert "6 runs at 100% of the training sequences" in text
    assert "best validation FROC score is conv_head-classifier" in text
    assert "does not tune every layer" in text          # conv_head-classifier is not all layers
    assert "chosen level conv_head-classifier (1.00) is" in text
    # 1.00 - 0.25; two test sequences are fewer than the 3 an honest interval needs: no interval, no verdict
    assert "paired difference +0.75, no interval from 2 sequence(s)" in text
    n_bad = int(table["diverged"].fillna(False).astype(bool).sum()) if "diverged" in table else 0
    assert (f"Diverged runs left out: {n_bad} of {len(table)}" if n_bad else "No run diverged") in text
    one = table.assign(test_sequences=1)
    assert "no interval from 1 sequence(s)" in " ".join(report.detection_report(one, rates=(1.0,), n_boot=20))


def test_hard_negative_table_reads_the_curves_at_low_and_high_rates(table):
    # seed 0 of classifier: the round lifted the low-FP end only; seed 1: nothing moved
    before = [[0.0, 0.25], [0.1, 0.25], [0.5, 0.5], [1.0, 0.75]]
    after = [[0.0, 0.5], [0.1, 0.5], [0.5, 0.5], [1.0, 0.75]]
    table["val_froc_before"] = [before] * len(table)
    table["val_froc_after"] = [before] * len(table)
    table.at[2, "val_froc_after"] = after          # classifier, seed 0
    hard = report.hard_negative_table(table, rates=(0.1, 1.0))
    assert hard.loc["classifier", "sens@0.1 before"] == pytest.approx(0.25)
    assert hard.loc["classifier", "sens@0.1 after"] == pytest.approx(0.375)   # mean of 0.5 and 0.25
    assert hard.loc["classifier", "sens@1 before"] == hard.loc["classifier", "sens@1 after"] == pytest.approx(0.75)
    assert hard.loc["scratch", "sens@0.1 after"] == pytest.approx(0.25)
    # a curve whose first point lies above the rate gives 0 there, and a run without a curve NaN
    assert report._sensitivity_at([[0.3, 0.5]], 0.1) == 0.0 and np.isnan(report._sensitivity_at(None, 0.1))
