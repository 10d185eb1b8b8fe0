"""The graders' answer keys checked against the field's libraries (tests only).

- Holm's adjustment (``analysis.holm`` and notebook 04's Exercise 3 key) against statsmodels'
  ``multipletests(method="holm")``;
- the percentile bootstrap interval (``bootstrap.bootstrap_ci``, ``bootstrap.paired_bootstrap_delta`` and
  notebook 04's Exercise 2 key) against ``scipy.stats.bootstrap(method="percentile")`` on scipy's own resamples;
- the FROC curve and its points (``detection.froc`` and notebook 05's Exercise 2 key) against MONAI's
  CAMELYON16 code (``compute_fp_tp_probs_nd``, ``compute_froc_curve_data``, ``compute_froc_score``);
- the mean symmetric boundary distance (``segmentation.scores``) against MONAI's
  ``compute_average_surface_distance(symmetric=True)``.

Where a definition differs from the library's, the test says how, checks the difference itself, and compares
what is comparable. Random cases come from fixed seeds.
"""
from __future__ import annotations

import gc
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage, stats
from sklearn.metrics import roc_auc_score

from helpers import analysis, bootstrap
from helpers.detection import froc
from helpers.segmentation import scores

multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
monai_froc = pytest.importorskip("monai.metrics.froc")
monai_surface = pytest.importorskip("monai.metrics.surface_distance")

ROOT = Path(__file__).resolve().parents[1]


def notebook_key(notebook: str, grade_id: str, name: str):
    """The function ``name`` defined by the answer cell ``grade_id`` of a notebook (its solution, as graded)."""
    nb = json.loads((ROOT / "notebooks" / notebook).read_text())
    cells = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1, f"{notebook}: no single cell {grade_id}"
    source = cells[0]["source"] if isinstance(cells[0]["source"], str) else "".join(cells[0]["source"])
    assert "### BEGIN SOLUTION" in source, f"{notebook} {grade_id}: not an answer cell"
    namespace = {"np": np}
    exec(compile(source, f"{notebook}:{grade_id}", "exec"), namespace)
    return namespace[name]


# ----------------------------------------------------------------------------- Holm (statsmodels)
def holm_cases():
    """Random p-value families: continuous, tied (a coarse grid that holds 1.0), m = 1, all ones."""
    rng = np.random.default_rng(36)
    cases = [np.array([0.01, 0.04, 0.03, 0.005]), np.array([0.3]), np.array([1.0]), np.ones(4),
             np.array([0.02, 0.02, 0.02]), np.array([0.0, 1.0, 0.5])]
    for _ in range(150):
        m = int(rng.integers(1, 13))
        if rng.random() < 0.5:
            cases.append(rng.uniform(0, 1, m) ** 3)                          # many small p-values
        else:
            cases.append(rng.choice([0.001, 0.004, 0.01, 0.02, 0.05, 0.2, 1.0], m))   # ties and p = 1
    return cases


@pytest.fixture(scope="module")
def statsmodels_holm():
    """(p, reject at 0.05, adjusted p) from statsmodels for every case. multipletests calls gc.collect() on each
    call, which takes tens of milliseconds with torch loaded: switched off while the references are made."""
    collect, gc.collect = gc.collect, lambda *args: 0
    try:
        return [(p, *multipletests(p, alpha=0.05, method="holm")[:2]) for p in holm_cases()]
    finally:
        gc.collect = collect


@pytest.mark.parametrize("key", ["analysis.holm", "notebook 04 Exercise 3"])
def test_holm_adjusted_p_values_equal_statsmodels(key, statsmodels_holm):
    holm = analysis.holm if key == "analysis.holm" else \
        notebook_key("04_learning_curves.ipynb", "nb04-g-holm-answer", "holm_adjust")
    for p, reject, expected in statsmodels_holm:
        got = np.asarray(holm(p), dtype=float)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0, err_msg=f"{key}, p = {p}")
        if not np.any(np.isclose(got, 0.05, rtol=1e-9)):                    # away from the edge of alpha
            np.testing.assert_array_equal(got <= 0.05, reject, err_msg=f"{key}: rejections, p = {p}")


def test_holm_leaves_nan_out_of_the_family_as_statsmodels_would_without_it(monkeypatch):
    # statsmodels has no rule for a missing p-value; analysis.holm leaves NaN out of the family (m counts the
    # finite ones) and keeps it NaN, so it must equal statsmodels on the finite entries alone.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)     # see statsmodels_holm
    rng = np.random.default_rng(4)
    for _ in range(30):
        p = rng.uniform(0, 0.3, int(rng.integers(2, 9)))
        p[rng.random(p.size) < 0.3] = np.nan
        got = analysis.holm(p)
        finite = np.isfinite(p)
        assert np.isnan(got[~finite]).all()
        if finite.any():
            np.testing.assert_allclose(got[finite], multipletests(p[finite], method="holm")[1], rtol=1e-12)


# ----------------------------------------------------------------------------- percentile bootstrap (scipy)
def scipy_bootstrap(data, statistic, seed, n_resamples, level=0.95):
    """scipy.stats.bootstrap, percentile method, paired (one draw of case indices shared by every array);
    returns the interval and the index matrix scipy drew (row b: the cases of resample b)."""
    drawn = []

    def indices(i, axis=-1):             # the one-sample form scipy builds for paired=True: i holds the indices,
        drawn.append(np.atleast_2d(i))   # (batch, n), one resample a row
        return statistic(*[a[np.atleast_2d(i)] for a in data])

    try:
        res = stats.bootstrap((np.arange(len(data[0])),), indices, vectorized=True, paired=False,
                              n_resamples=n_resamples, method="percentile", confidence_level=level,
                              rng=np.random.default_rng(seed))
    except TypeError:                    # scipy < 1.15 names the generator random_state
        res = stats.bootstrap((np.arange(len(data[0])),), indices, vectorized=True, paired=False,
                              n_resamples=n_resamples, method="percentile", confidence_level=level,
                              random_state=np.random.default_rng(seed))
    return res.confidence_interval, np.concatenate(drawn)


def toy(seed, n=60):
    """Labels (40% positive) and two correlated models' scores, with ties (scores rounded)."""
    rng = np.random.default_rng(seed)
    y = (np.arange(n) < int(0.4 * n)).astype(int)
    hard = rng.normal(0, 1, n)
    a = np.round(1.5 * y + hard + rng.normal(0, 0.4, n), 1)
    b = np.round(y + hard + rng.normal(0, 0.4, n), 1)
    return y, a, b


def rank_auc(y, s):
    """AUC of every row of resampled labels and scores, (B, n): the Mann-Whitney U from scipy's average ranks
    (ties one half), U / (positives x negatives), NaN for a row with one class. The reference statistic."""
    ranks = stats.rankdata(s, axis=-1)
    pos = y == 1
    n1 = pos.sum(axis=-1)
    n0 = y.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * pos).sum(axis=-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def test_rank_auc_is_scikit_learn_auc():
    y, a, _ = toy(0)
    idx = np.random.default_rng(0).integers(0, len(y), (20, len(y)))
    np.testing.assert_allclose(rank_auc(y[idx], a[idx]), [roc_auc_score(y[r], a[r]) for r in idx], atol=1e-12)


def paired_delta(y, a, b):
    return rank_auc(y, a) - rank_auc(y, b)


@pytest.mark.parametrize("seed", [0, 7])
def test_scipy_paired_bootstrap_is_one_draw_of_case_indices(seed):
    # scipy's paired=True resamples the indices 0..n-1 and indexes every array with them; the wrapper above
    # does the same, so the intervals from both forms must agree.
    y, a, b = toy(seed)
    ours, _ = scipy_bootstrap((y, a, b), paired_delta, seed, 400)
    kwargs = dict(vectorized=True, paired=True, n_resamples=400, method="percentile")
    try:
        theirs = stats.bootstrap((y, a, b), lambda yy, aa, bb, axis=-1: paired_delta(yy, aa, bb), **kwargs,
                                 rng=np.random.default_rng(seed)).confidence_interval
    except TypeError:
        theirs = stats.bootstrap((y, a, b), lambda yy, aa, bb, axis=-1: paired_delta(yy, aa, bb), **kwargs,
                                 random_state=np.random.default_rng(seed)).confidence_interval
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("seed,level", [(0, 0.95), (1, 0.9), (2, 0.8)])
def test_bootstrap_ci_equals_scipy_percentile_on_the_same_resamples(seed, level):
    y, a, _ = toy(seed)
    n_boot = 2000
    (lo, hi), idx = scipy_bootstrap((y, a), rank_auc, seed, n_boot, level)
    # Precondition of "the same resamples": scipy draws its n_boot x n index matrix with the generator's
    # integers(0, n, (n_boot, n)), as the suite's bootstrap does from the same seed.
    np.testing.assert_array_equal(idx, np.random.default_rng(seed).integers(0, len(y), (n_boot, len(y))),
                                  err_msg="scipy no longer draws as the suite does from one seed: compare on its recorded resamples")
    assert not bootstrap._single_class(y, idx).any(), "every resample holds both classes (scipy has no rule for it)"
    np.testing.assert_allclose(bootstrap.bootstrap_ci(y, a, "auc", n_boot=n_boot, seed=seed, level=level),
                               (lo, hi), rtol=0, atol=1e-12)
    # the vectorised AUC on scipy's resamples, read with np.quantile (the suite's percentile rule)
    vals = bootstrap.resampled_auc(y, a, idx)
    np.testing.assert_allclose(np.quantile(vals, [(1 - level) / 2, (1 + level) / 2]), (lo, hi), atol=1e-12)


def test_bootstrap_ci_of_accuracy_equals_scipy_percentile():
    y, a, _ = toy(3)
    probs = 1 / (1 + np.exp(-(a - 0.5)))
    n_boot = 1500
    (lo, hi), _ = scipy_bootstrap((y, probs), lambda yy, pp: np.mean((pp >= 0.5) == yy, axis=-1), 3, n_boot)
    np.testing.assert_allclose(bootstrap.bootstrap_ci(y, probs, "acc", n_boot=n_boot, seed=3), (lo, hi), atol=1e-12)


@pytest.mark.parametrize("seed", [0, 5])
def test_paired_interval_key_and_suite_equal_scipy_paired_percentile(seed):
    y, a, b = toy(seed, n=50)
    n_boot = 1500
    (lo, hi), idx = scipy_bootstrap((y, a, b), paired_delta, seed, n_boot)
    assert not bootstrap._single_class(y, idx).any(), "every resample holds both classes (scipy has no rule for it)"
    key = notebook_key("04_learning_curves.ipynb", "nb04-g-boot-answer", "paired_interval")
    np.testing.assert_allclose(key(y, a, b, idx, 0.95), (lo, hi), rtol=0, atol=1e-12,
                               err_msg="notebook 04 Exercise 2 key on scipy's own resamples")
    suite = bootstrap.paired_bootstrap_delta(y, a, b, n_boot=n_boot, seed=seed)
    np.testing.assert_allclose((suite["lo"], suite["hi"]), (lo, hi), rtol=0, atol=1e-12,
                               err_msg="paired_bootstrap_delta draws the same resamples from the same seed")


def test_single_class_resamples_are_where_the_key_and_scipy_part():
    # The one difference: a resample holding one class has no AUC. The key and the suite skip it; scipy has no
    # rule for an undefined statistic, so NaN reaches its quantile and the interval is NaN. Compared above only
    # on data where no resample is single-class (asserted there).
    y, a, b = toy(1, n=8)
    stat = paired_delta                                         # NaN where a resample holds one class
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (lo, hi), idx = scipy_bootstrap((y, a, b), stat, 0, 300)
    assert bootstrap._single_class(y, idx).any() and np.isnan([lo, hi]).all()
    key = notebook_key("04_learning_curves.ipynb", "nb04-g-boot-answer", "paired_interval")
    d = stat(y[idx], a[idx], b[idx])
    np.testing.assert_allclose(key(y, a, b, idx, 0.95), np.quantile(d[~np.isnan(d)], [0.025, 0.975]), atol=1e-12)


# ----------------------------------------------------------------------------- FROC (MONAI, CAMELYON16)
# MONAI's FROC code is CAMELYON16's evaluation, and it differs from the suite's in three places:
# 1. It has no hit tolerance: a detection hits a lesion only on the lesion's label in the evaluation mask
#    (CAMELYON dilates its evaluation masks before). At tolerance 0 the evaluation mask is the 8-connected
#    labels, speckle (components below min_area) passed as labels_to_exclude; with a tolerance, the suite's
#    hit_map is the dilated evaluation mask.
# 2. compute_froc_curve_data thresholds at every distinct probability but the LOWEST (a missed lesion's
#    probability is 0 there, and 0 is meant to be the lowest). When every lesion is hit, the curve's last
#    point (all candidates) is missing. The cases below hold a frame with a polyp no candidate touches, so
#    MONAI's lowest probability is that 0 and nothing is dropped; a separate test shows the drop.
# 3. compute_froc_score reads the curve by LINEAR INTERPOLATION between its points (np.interp) and averages
#    over CAMELYON's (0.25, 0.5, 1, 2, 4, 8) FP per image; the suite reads the best sensitivity of a
#    threshold with FP/frame <= r (a step), and averages over froc.FP_RATES. They agree at every FP/frame
#    a threshold reaches, and between them wherever the curve runs flat or straight up; they differ only on a
#    segment where one threshold admits true and false positives at once (tied scores): there MONAI's reading
#    is higher, and no threshold achieves it.
# MONAI also stores true-positive probabilities as float32: the scores below are multiples of 1/64, exact in
# float32, so no tie between a true and a false positive is broken by rounding.
MIN_AREA = 6


def froc_case(seed, n_frames=6, size=28, all_found=False):
    """Masks (polyps, touching ones merged, speckle) and candidates on and off them, scores k/64."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n_frames, size, size), dtype=bool)
    cands = []
    for f in range(n_frames):
        for _ in range(int(rng.integers(0, 4))):
            y0, x0 = rng.integers(0, size - 4, 2)
            h, w = rng.integers(3, 9, 2)
            masks[f, y0:y0 + h, x0:x0 + w] = True
        for _ in range(int(rng.integers(0, 3))):                  # speckle: 1-2 px, ignored as polyps
            y0, x0 = rng.integers(0, size - 1, 2)
            masks[f, y0:y0 + int(rng.integers(1, 3)), x0] = True
        ys, xs = np.nonzero(masks[f])
        k_on = int(rng.integers(0, 5)) if len(ys) else 0
        on = rng.integers(0, len(ys), k_on) if len(ys) else []
        pts = [(int(ys[i]), int(xs[i])) for i in on]
        pts += [tuple(int(v) for v in rng.integers(0, size, 2)) for _ in range(int(rng.integers(0, 6)))]
        cands.append([(yy, xx, float(rng.integers(1, 40)) / 64) for yy, xx in pts])
    if all_found:                                                 # a candidate on every polyp
        for f in range(n_frames):
            labels, n = froc.label_polyps(masks[f], MIN_AREA)
            for k in range(1, n + 1):
                yy, xx = np.argwhere(labels == k)[0]
                cands[f].append((int(yy), int(xx), float(rng.integers(1, 40)) / 64))
    else:                                                         # one polyp nobody finds
        masks[0, 20:26, 20:26] = True
        cands[0] = [c for c in cands[0] if not (19 <= c[0] <= 26 and 19 <= c[1] <= 26)]
    return masks, cands


def monai_probs(masks, cands, tolerance=0.0):
    """MONAI's (fp_probs, tp_probs, num_targets) summed over frames, the evaluation mask per frame as above."""
    fps, tps, targets = [], [], 0
    for mask, frame in zip(masks, cands):
        full, n_full = ndimage.label(mask, structure=np.ones((3, 3), bool))
        polyps, n = froc.label_polyps(mask, MIN_AREA)
        if tolerance > 0:
            evaluation = froc.hit_map(polyps, tolerance)
            evaluation[(evaluation == 0) & mask] = n + 1          # speckle away from polyps: ignored
            exclude = [n + 1]
        else:
            evaluation = full
            exclude = [k for k in range(1, n_full + 1) if (full == k).sum() < MIN_AREA]
        probs = np.array([s for *_, s in frame], dtype=float)
        coords = np.array([(yy, xx) for yy, xx, _ in frame], dtype=int).reshape(-1, 2)
        fp, tp, k = monai_froc.compute_fp_tp_probs_nd(probs, coords, evaluation, exclude)
        fps.append(fp)
        tps.append(tp)
        targets += k
    return np.concatenate(fps), np.concatenate(tps), targets


def suite_curve(masks, cands, tolerance=0.0):
    matches = froc.match_candidates(cands, masks, min_area=MIN_AREA, tolerance=tolerance)
    table = froc.make_frame_table(masks, min_area=MIN_AREA)
    return matches, froc.froc_curve(matches, len(masks), int(table["n_polyps"].sum()))


@pytest.mark.parametrize("tolerance", [0.0, 2.0])
@pytest.mark.parametrize("seed", range(12))
def test_froc_curve_equals_monai_camelyon(seed, tolerance):
    masks, cands = froc_case(seed)
    fp_probs, tp_probs, targets = monai_probs(masks, cands, tolerance)
    matches, curve = suite_curve(masks, cands, tolerance)
    assert targets == int(froc.make_frame_table(masks, min_area=MIN_AREA)["n_polyps"].sum())
    # the matching: one true positive per polyp (its best hit), the same false positives
    np.testing.assert_allclose(np.sort(matches.loc[matches["is_tp"], "score"]), np.sort(tp_probs[tp_probs > 0]))
    np.testing.assert_allclose(np.sort(matches.loc[matches["is_fp"], "score"]), np.sort(fp_probs))
    fps, sens = monai_froc.compute_froc_curve_data(fp_probs, tp_probs, targets, len(masks))
    # MONAI: thresholds ascending, then the (0, 0) of "nothing detected"; the suite: +inf first, then descending
    np.testing.assert_allclose(fps, curve["fp_per_frame"].to_numpy()[::-1], rtol=1e-12)
    np.testing.assert_allclose(sens, curve["sensitivity"].to_numpy()[::-1], rtol=1e-12)


def test_monai_drops_the_lowest_threshold_when_every_polyp_is_found():
    # 2 frames, 2 polyps, no speckle, both found: scores 7/8 TP, 6/8 FP, 5/8 FP, 4/8 TP. The suite's curve
    # (FP/frame, sensitivity): (0, 0), (0, .5), (.5, .5), (1, .5), (1, 1); MONAI's lacks the last point.
    masks = np.zeros((2, 20, 20), dtype=bool)
    masks[0, 2:8, 2:8] = masks[1, 10:16, 10:16] = True
    cands = [[(4, 4, 7 / 8), (15, 15, 6 / 8)], [(2, 2, 5 / 8), (12, 12, 4 / 8)]]
    fp_probs, tp_probs, targets = monai_probs(masks, cands)
    assert tp_probs.min() > 0, "every polyp found"
    _, curve = suite_curve(masks, cands)
    fps, sens = monai_froc.compute_froc_curve_data(fp_probs, tp_probs, targets, len(masks))
    np.testing.assert_allclose(curve[["fp_per_frame", "sensitivity"]].to_numpy(),
                               [[0, 0], [0, .5], [.5, .5], [1, .5], [1, 1]])
    np.testing.assert_allclose(np.c_[fps, sens][::-1], [[0, 0], [0, .5], [.5, .5], [1, .5]])
    # with a missed target's 0 among the probabilities (as in every random case) nothing is dropped
    fps, sens = monai_froc.compute_froc_curve_data(fp_probs, np.r_[tp_probs, np.float32(0)], targets, len(masks))
    np.testing.assert_allclose(np.c_[fps, sens][::-1], curve[["fp_per_frame", "sensitivity"]].to_numpy())


@pytest.mark.parametrize("seed", range(12))
def test_froc_points_equal_monai_where_a_threshold_reaches_the_rate(seed):
    masks, cands = froc_case(seed)
    fp_probs, tp_probs, targets = monai_probs(masks, cands)
    matches, curve = suite_curve(masks, cands)
    fps, sens = monai_froc.compute_froc_curve_data(fp_probs, tp_probs, targets, len(masks))
    key = notebook_key("05_polyp_detection.ipynb", "nb05-g-froc-answer", "froc_point")
    reached = np.unique(curve["fp_per_frame"])
    suite = froc.sensitivity_at_fp(curve, reached)
    for rate in reached:
        theirs = float(monai_froc.compute_froc_score(fps, sens, eval_thresholds=(rate,)))
        assert suite[float(rate)] == pytest.approx(theirs, abs=1e-12), f"suite at {rate} FP/frame"
        mine = key(matches["score"], matches["is_tp"], matches["is_fp"], len(masks), targets, rate)
        assert mine == pytest.approx(theirs, abs=1e-12), f"notebook 05 Exercise 2 key at {rate} FP/frame"
    # between the reached rates MONAI interpolates: never below the step reading, never above the next point
    between = (reached[:-1] + reached[1:]) / 2
    if len(between):
        step = froc.sensitivity_at_fp(curve, between)
        above = froc.sensitivity_at_fp(curve, reached[1:])
        for rate, nxt in zip(between, reached[1:]):
            theirs = float(monai_froc.compute_froc_score(fps, sens, eval_thresholds=(rate,)))
            assert step[float(rate)] - 1e-12 <= theirs <= above[float(nxt)] + 1e-12


def test_interpolation_is_the_difference_between_the_readings():
    # Worked by hand: 2 frames, 2 polyps; scores 7/8 TP, 6/8 FP, then a TP and two FPs tied at 4/8. Points
    # (FP/frame, sensitivity): (0, 0), (0, .5), (.5, .5), (1.5, 1). With at most 1 FP/frame the best threshold is
    # 6/8: sensitivity 0.5. MONAI interpolates along the segment from (.5, .5) to (1.5, 1) and reads 0.75, a
    # point no threshold achieves. Without tied scores every segment is flat or vertical and the readings agree.
    masks = np.zeros((2, 20, 20), dtype=bool)
    masks[0, 2:8, 2:8] = masks[1, 10:16, 10:16] = True
    cands = [[(4, 4, 7 / 8), (15, 15, 6 / 8), (18, 1, 4 / 8)], [(2, 2, 4 / 8), (12, 12, 4 / 8)]]
    fp_probs, tp_probs, targets = monai_probs(masks, cands)
    _, curve = suite_curve(masks, cands)
    np.testing.assert_allclose(curve[["fp_per_frame", "sensitivity"]].to_numpy(), [[0, 0], [0, .5], [.5, .5], [1.5, 1]])
    fps, sens = monai_froc.compute_froc_curve_data(fp_probs, np.r_[tp_probs, np.float32(0)], targets, 2)
    key = notebook_key("05_polyp_detection.ipynb", "nb05-g-froc-answer", "froc_point")
    m = froc.match_candidates(cands, masks, min_area=MIN_AREA)
    assert froc.sensitivity_at_fp(curve, [1.0])[1.0] == key(m["score"], m["is_tp"], m["is_fp"], 2, 2, 1.0) == 0.5
    assert float(monai_froc.compute_froc_score(fps, sens, eval_thresholds=(1.0,))) == pytest.approx(0.75)
    assert froc.sensitivity_at_fp(curve, [1.5])[1.5] == float(monai_froc.compute_froc_score(fps, sens, (1.5,))) == 1.0


def test_validation_figure_equals_monai_froc_score_at_reached_rates():
    # froc.FP_RATES are reached exactly when there are 10 frames and the false positives' scores are distinct
    # (every count 0, 1, 2, ... is some threshold's); then the two averages agree.
    rng = np.random.default_rng(11)
    masks = np.zeros((10, 24, 24), dtype=bool)
    masks[:, 8:16, 8:16] = True
    scores_ = rng.permutation(np.arange(1, 64)) / 64
    cands = [[(10, 10, float(scores_[f]))] + [(1 + j, 1, float(scores_[10 + 3 * f + j])) for j in range(2)]
             for f in range(10)]
    fp_probs, tp_probs, targets = monai_probs(masks, cands)
    matches, curve = suite_curve(masks, cands)
    fps, sens = monai_froc.compute_froc_curve_data(fp_probs, np.r_[tp_probs, np.float32(0)], targets, 10)
    assert set(froc.FP_RATES) <= set(np.round(fps, 12))
    figure = froc.validation_figure(matches, froc.make_frame_table(masks, min_area=MIN_AREA))
    assert figure == pytest.approx(float(monai_froc.compute_froc_score(fps, sens, froc.FP_RATES)), abs=1e-12)


# ----------------------------------------------------------------------------- boundary distance (MONAI)
# Same boundary (MONAI's edges are the mask XOR its binary erosion with the 4-neighbour cross, the frame's
# border outside: get_mask_edges pads its crop with zeros) and the same mean over the distances of both
# boundaries' pixels. MONAI computes in float32 (rtol 1e-5 here). Empty masks differ: MONAI gives inf when one
# mask is empty and NaN when both are; the suite gives NaN for one empty (frame_scores then charges the frame
# width and flags the frame) and 0 for both empty (nothing to find, nothing predicted: a perfect answer).
def random_mask(rng, shape=(24, 31)):
    """Union of 1-3 rectangles or discs, sometimes with holes, sometimes on the frame's border."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    m = np.zeros(shape, dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.integers(-2, shape[0] + 2), rng.integers(-2, shape[1] + 2)
        r = rng.uniform(1.5, 8)
        m |= ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if rng.random() < 0.5 else \
            ((abs(yy - cy) <= r) & (abs(xx - cx) <= r / 2))
    if rng.random() < 0.3:
        m &= rng.random(shape) > 0.05                               # pinholes: inner boundaries
    return m


def monai_asd(pred, true):
    with warnings.catch_warnings():      # MONAI 1.6 passes its own deprecated always_return_as_numpy internally
        warnings.filterwarnings("ignore", "monai.metrics.utils get_mask_edges", FutureWarning)
        return float(monai_surface.compute_average_surface_distance(pred[None, None], true[None, None],
                                                                    include_background=True, symmetric=True)[0, 0])


def test_boundary_equals_monai_edges():
    from monai.metrics.utils import get_mask_edges
    rng = np.random.default_rng(2)
    for _ in range(40):
        p, t = random_mask(rng), random_mask(rng)
        ep, et = get_mask_edges(p, t, crop=False)   # numpy in, numpy out
        np.testing.assert_array_equal(scores.boundary(p), ep)
        np.testing.assert_array_equal(scores.boundary(t), et)


def test_boundary_distance_equals_monai_average_symmetric_surface_distance():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(120):
        p, t = random_mask(rng), random_mask(rng)
        if not p.any() or not t.any():
            continue
        assert scores.boundary_distance(p, t) == pytest.approx(monai_asd(p, t), rel=1e-5, abs=1e-5)
        checked += 1
    assert checked >= 100
    frame = np.ones((12, 12), dtype=bool)                           # fills the frame: its border is the boundary
    small = np.zeros_like(frame)
    small[4:8, 4:8] = True
    assert scores.boundary_distance(frame, small) == pytest.approx(monai_asd(frame, small), rel=1e-5)


def test_empty_masks_are_where_the_boundary_distance_and_monai_part():
    empty = np.zeros((16, 16), dtype=bool)
    blob = empty.copy()
    blob[3:9, 4:12] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                             # MONAI warns on empty masks
        assert np.isnan(monai_asd(empty, empty)) and scores.boundary_distance(empty, empty) == 0.0
        assert np.isinf(monai_asd(empty, blob)) and np.isinf(monai_asd(blob, empty))
    assert np.isnan(scores.boundary_distance(empty, blob)) and np.isnan(scores.boundary_distance(blob, empty))
    table = scores.frame_scores(np.stack([empty, blob]), np.stack([blob, blob]))
    assert table["one_empty"].tolist() == [True, False] and table["boundary_px"].iloc[0] == 16.0
