"""FROC scoring on hand-made frames whose answers are worked out by hand."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.detection import froc
from conftest import sequence_run


def square(mask: np.ndarray, y0: int, x0: int, side: int = 6) -> None:
    """Paint a side x side polyp with top-left corner (y0, x0)."""
    mask[y0:y0 + side, x0:x0 + side] = True


@pytest.fixture()
def toy():
    """Four 20x20 frames, five polyps (a; b, c; d; e), candidates with known outcomes.

    Scored candidates, high to low: 0.95 FP, 0.9 TP(a), 0.7 FP, 0.6 TP(c), 0.5 TP(d), 0.4 FP, 0.2 FP;
    the 0.8 candidate is a second hit on polyp a (neither TP nor FP); polyps b and e are missed.
    """
    masks = np.zeros((4, 20, 20), dtype=bool)
    square(masks[0], 2, 2)                       # a
    square(masks[1], 2, 2)                       # b
    square(masks[1], 12, 12)                     # c
    square(masks[2], 10, 4)                      # d
    square(masks[3], 0, 14)                      # e
    cands = [
        [(4, 4, 0.9), (5, 5, 0.8), (15, 15, 0.7)],
        [(13, 13, 0.6), (3, 15, 0.95), (0, 0, 0.2)],
        [(12, 6, 0.5)],
        [(10, 10, 0.4)],
    ]
    sequences = ["A", "A", "B", "B"]
    return masks, cands, sequences


def test_match_labels_each_candidate(toy):
    masks, cands, seqs = toy
    m = froc.match_candidates(cands, masks, seqs)
    assert list(m.columns) == ["frame", "sequence", "y", "x", "score", "is_tp", "is_fp", "polyp_id"]
    by_score = m.set_index("score")
    assert by_score.loc[0.9, "is_tp"] and not by_score.loc[0.9, "is_fp"]
    # one polyp hit twice counts once: the lower-scoring hit is neither TP nor FP
    assert not by_score.loc[0.8, "is_tp"] and not by_score.loc[0.8, "is_fp"]
    assert by_score.loc[0.8, "polyp_id"] == by_score.loc[0.9, "polyp_id"] == 0
    for s in (0.95, 0.7, 0.4, 0.2):
        assert by_score.loc[s, "is_fp"] and by_score.loc[s, "polyp_id"] == -1
    assert m["is_tp"].sum() == 3 and m["is_fp"].sum() == 4
    # polyps are numbered in frame order: a=0, b=1, c=2, d=3, e=4
    assert by_score.loc[0.6, "polyp_id"] == 2 and by_score.loc[0.5, "polyp_id"] == 3


def test_best_hit_is_the_true_positive():
    mask = np.zeros((1, 20, 20), dtype=bool)
    square(mask[0], 5, 5)
    m = froc.match_candidates([[(6, 6, 0.3), (8, 8, 0.7)]], mask)
    assert m.loc[m["score"] == 0.7, "is_tp"].item()
    assert not m.loc[m["score"] == 0.3, "is_tp"].item()


def test_speckle_is_not_a_polyp():
    mask = np.zeros((20, 20), dtype=bool)
    square(mask, 2, 2)
    mask[15, 15] = True                          # one stray annotation pixel
    labels, n = froc.label_polyps(mask)
    assert n == 1 and labels[15, 15] == 0
    m = froc.match_candidates([[(15, 15, 0.9)]], mask[None])
    assert not m["is_tp"].item() and not m["is_fp"].item()
    table = froc.make_frame_table(mask[None])
    assert table["n_polyps"].tolist() == [1]


def test_froc_curve_by_hand(toy):
    masks, cands, seqs = toy
    m = froc.match_candidates(cands, masks, seqs)
    table = froc.make_frame_table(masks, seqs)
    assert table["n_polyps"].tolist() == [1, 2, 1, 1]
    curve = froc.froc_curve(m, n_frames=len(table), n_polyps=int(table["n_polyps"].sum()))
    expected = pd.DataFrame({
        "threshold": [np.inf, 0.95, 0.9, 0.7, 0.6, 0.5, 0.4, 0.2],
        "fp_per_frame": [0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 1.0],
        "sensitivity": [0, 0, 0.2, 0.2, 0.4, 0.6, 0.6, 0.6],
    })
    pd.testing.assert_frame_equal(curve[expected.columns], expected, check_dtype=False)
    at = froc.sensitivity_at_fp(curve, (0.1, 0.25, 0.5, 1.0))
    assert at == pytest.approx({0.1: 0.0, 0.25: 0.2, 0.5: 0.6, 1.0: 0.6})


def test_tied_scores_move_together():
    mask = np.zeros((2, 20, 20), dtype=bool)
    square(mask[0], 2, 2)
    square(mask[1], 2, 2)
    m = froc.match_candidates([[(3, 3, 0.5), (15, 15, 0.5)], [(3, 3, 0.5)]], mask)
    curve = froc.froc_curve(m, 2, 2)
    assert curve["threshold"].tolist() == [np.inf, 0.5]
    assert curve["sensitivity"].tolist() == [0, 1.0] and curve["fp_per_frame"].tolist() == [0, 0.5]


def brute_force_sensitivity(m: pd.DataFrame, n_frames: int, n_polyps: int, rate: float) -> float:
    """Best sensitivity at <= rate FP/frame by trying every threshold (slow, obviously right)."""
    best = 0.0
    for t in np.unique(m["score"]):
        fp = (m["is_fp"] & (m["score"] >= t)).sum() / n_frames
        detected = m.loc[m["is_tp"] & (m["score"] >= t), "polyp_id"].nunique() / n_polyps
        if fp <= rate:
            best = max(best, detected)
    return best


def test_curve_matches_brute_force_on_random_frames():
    rng = np.random.default_rng(1)
    masks = np.zeros((30, 40, 40), dtype=bool)
    for mask in masks:
        for _ in range(rng.integers(1, 3)):
            square(mask, *rng.integers(0, 32, 2), side=8)
    cands = [[(*rng.integers(0, 40, 2), float(rng.random())) for _ in range(rng.integers(0, 8))] for _ in masks]
    seqs = [str(i // 5) for i in range(30)]
    m = froc.match_candidates(cands, torch.from_numpy(masks), seqs)
    table = froc.make_frame_table(masks, seqs)
    n_polyps = int(table["n_polyps"].sum())
    curve = froc.froc_curve(m, 30, n_polyps)
    rates = (0.05, 0.1, 0.3, 1.0, 3.0)
    at = froc.sensitivity_at_fp(curve, rates)
    for rate in rates:
        assert at[rate] == pytest.approx(brute_force_sensitivity(m, 30, n_polyps, rate))
    band = froc.froc_with_band(m, table, rates, n_boot=200, seed=0)
    assert band["sensitivity"].tolist() == pytest.approx([at[r] for r in rates])


def test_band_contains_point_and_is_seeded(toy):
    masks, cands, _ = toy
    seqs = ["A", "B", "C", "D"]
    m = froc.match_candidates(cands, masks, seqs)
    table = froc.make_frame_table(masks, seqs)
    grid = [0.25, 0.5, 1.0]
    band = froc.froc_with_band(m, table, grid, n_boot=300, seed=7)
    assert list(band.columns) == ["fp_per_frame", "sensitivity", "lo", "hi"]
    assert band["sensitivity"].tolist() == pytest.approx([0.2, 0.6, 0.6])
    assert (band["lo"] <= band["sensitivity"] + 1e-12).all() and (band["sensitivity"] <= band["hi"] + 1e-12).all()
    assert (band["lo"] >= 0).all() and (band["hi"] <= 1).all()
    again = froc.froc_with_band(m, table, grid, n_boot=300, seed=7)
    pd.testing.assert_frame_equal(band, again)
    summary = froc.froc_summary(m, table, fp_rates=grid, n_boot=300, seed=7)
    pd.testing.assert_frame_equal(summary, band)


def test_band_counts_frames_without_candidates():
    masks = np.zeros((3, 20, 20), dtype=bool)
    for mask in masks:
        square(mask, 2, 2)
    m = froc.match_candidates([[(3, 3, 0.9)], [], []], masks, ["s0", "s1", "s2"])
    table = froc.make_frame_table(masks, ["s0", "s1", "s2"])
    band = froc.froc_with_band(m, table, [1.0], n_boot=200, seed=0)
    assert band["sensitivity"].item() == pytest.approx(1 / 3)


def test_bad_inputs_are_explained(toy):
    masks, cands, seqs = toy
    with pytest.raises(ValueError, match="candidate lists"):
        froc.match_candidates(cands[:2], masks, seqs)
    m = froc.match_candidates(cands, masks, seqs)
    with pytest.raises(ValueError, match="n_polyps"):
        froc.froc_curve(m, 4, 0)
    table = froc.make_frame_table(masks, ["A", "A", "C", "C"])
    with pytest.raises(ValueError, match="missing in frame_table"):
        froc.froc_with_band(m, table, [1.0], n_boot=10)


def toy_matches(toy):
    masks, cands, sequences = toy
    return froc.match_candidates(cands, masks, sequences), froc.make_frame_table(masks, sequences)


def test_validation_figure_is_the_mean_of_three_points(toy):
    matches, table = toy_matches(toy)
    curve = froc.froc_curve(matches, len(table), int(table["n_polyps"].sum()))
    points = froc.sensitivity_at_fp(curve, (0.1, 0.5, 1.0))
    assert froc.validation_figure(matches, table) == pytest.approx(np.mean(list(points.values())))
    assert np.isnan(froc.validation_figure(matches.iloc[:0], table.assign(n_polyps=0)))


def test_band_over_seeds_averages_runs_and_reduces_to_one_run(toy):
    matches, table = toy_matches(toy)
    grid = [0.1, 0.5, 1.0, 2.0]
    one = froc.froc_band_over_seeds([(matches, table)], grid, n_boot=200, seed=0)
    single = froc.froc_with_band(matches, table, grid, n_boot=200, seed=0)
    assert np.allclose(one["sensitivity"], single["sensitivity"])
    worse = matches.assign(is_tp=False, is_fp=True)             # a run that finds nothing
    two = froc.froc_band_over_seeds([(matches, table), (worse, table)], grid, n_boot=200, seed=0)
    assert np.allclose(two["sensitivity"], single["sensitivity"] / 2)
    assert (two["n_runs"] == 2).all()
    assert two["lo"].isna().all() and two["hi"].isna().all()    # fewer than 3 test sequences: no band is honest
    runs = [sequence_run([1, 3, 2, 4]), sequence_run([2, 3, 1, 4]), sequence_run([1, 2, 2, 3])]
    three = froc.froc_band_over_seeds(runs, grid, n_boot=300, seed=0)
    assert (three["n_sequences"] == 4).all()
    assert (three["lo"] <= three["sensitivity"] + 1e-12).all() and (three["sensitivity"] <= three["hi"] + 1e-12).all()
    assert ((three["lo"] >= 0) & (three["hi"] <= 1)).all()


def test_paired_difference_of_a_strategy_with_itself_is_zero(toy):
    run = sequence_run([1, 3, 2, 4])
    out = froc.paired_froc_difference([run, run], [run, run], (0.5, 1.0), n_boot=100, seed=0)
    assert (out["delta"] == 0).all() and (out["lo"] == 0).all() and (out["hi"] == 0).all() and (out["p"] == 1).all()
    few = froc.paired_froc_difference([toy_matches(toy)] * 2, [toy_matches(toy)] * 2, (0.5, 1.0), n_boot=100)
    assert few["lo"].isna().all() and few["p"].isna().all()     # too few test sequences: no verdict
    with pytest.raises(ValueError, match="same seeds"):
        froc.paired_froc_difference([run, run], [run], (1.0,))


def test_paired_difference_decides_where_bands_overlap():
    # sequences differ a lot in difficulty (wide bands), but a finds one more polyp than b in every sequence
    hard = [0, 3, 1, 2, 0, 3, 1, 2]
    a = [sequence_run([h + 1 for h in hard]), sequence_run([h + 1 for h in hard[:-1]] + [2])]
    b = [sequence_run(hard), sequence_run(hard[:-1] + [1])]
    band_a = froc.froc_band_over_seeds(a, [1.0], n_boot=300, seed=0).iloc[0]
    band_b = froc.froc_band_over_seeds(b, [1.0], n_boot=300, seed=0).iloc[0]
    assert band_a["lo"] < band_b["hi"]                               # the bands overlap: no verdict from them
    out = froc.paired_froc_difference(a, b, (1.0,), n_boot=300, seed=0).iloc[0]
    assert out["delta"] == pytest.approx(0.25)                       # one polyp in four, in every sequence
    assert out["lo"] == pytest.approx(0.25) and out["hi"] == pytest.approx(0.25) and out["p"] < 0.01
    assert out["sensitivity_a"] == pytest.approx(band_a["sensitivity"])
    assert out["n_runs"] == 2 and out["n_boot"] == 300


def test_paired_difference_widens_the_seed_component_for_few_seeds():
    # seed 0: a finds one more polyp per sequence; seed 1: b does; sequences shared
    hard = [1, 2, 1, 2, 1, 2]
    a = [sequence_run([h + 1 for h in hard]), sequence_run(hard)]
    b = [sequence_run(hard), sequence_run([h + 1 for h in hard])]
    plain = froc.paired_froc_difference(a, b, (1.0,), n_boot=400, seed=0, small_r_correction=False).iloc[0]
    wide = froc.paired_froc_difference(a, b, (1.0,), n_boot=400, seed=0).iloc[0]
    assert plain["delta"] == wide["delta"] == 0
    assert -1 <= wide["lo"] < plain["lo"] < 0 < plain["hi"] < wide["hi"] <= 1   # widened, kept in [-1, 1]
    band = froc.froc_band_over_seeds(a + b, (1.0,), n_boot=200, seed=0).iloc[0]
    assert 0 <= band["lo"] <= band["sensitivity"] <= band["hi"] <= 1


def test_bootstrap_counts_keep_every_threshold_that_matters():
    # random frames with tied scores: the kept columns give the same sensitivities as all thresholds
    rng = np.random.default_rng(5)
    n_frames, per = 40, 12
    frame_table = pd.DataFrame({"frame": range(n_frames), "sequence": [f"s{i % 5}" for i in range(n_frames)],
                                "n_polyps": rng.integers(0, 3, n_frames)})
    frame = np.repeat(np.arange(n_frames), per)
    tp = rng.random(len(frame)) < 0.1
    matches = pd.DataFrame({"frame": frame, "sequence": [f"s{f % 5}" for f in frame],
                            "score": np.round(rng.random(len(frame)) + tp, 1), "is_tp": tp, "is_fp": ~tp})
    names = [f"s{j}" for j in range(5)]
    (ktp, kfp, frames, polyps), = froc._run_counts([(matches, frame_table)], names)
    full_tp, full_fp = froc._count_matrices(matches, names)
    assert ktp.shape[1] < full_tp.shape[1]
    w = rng.integers(0, 3, size=(50, 5)).astype(float)
    w = w[w @ polyps > 0]
    grid = froc.FP_GRID
    assert np.allclose(froc._sens_at_rates(w @ ktp, w @ kfp, w @ frames, w @ polyps, grid),
                       froc._sens_at_rates(w @ full_tp, w @ full_fp, w @ frames, w @ polyps, grid))
