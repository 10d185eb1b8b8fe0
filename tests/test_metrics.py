"""Tests for helpers.metrics: point metrics against scikit-learn, the fast bootstrap against
scikit-learn resample by resample, confidence intervals, paired comparisons and input validation."""
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from helpers import bootstrap as B
from helpers import metrics as M


def _binary(n, seed, signal=1.0, decimals=None):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    return y, (np.round(s, decimals) if decimals is not None else s)


def _multiclass(n, k, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += 1.0
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


def _ref_sens(y, s, f):
    """Reference operating point: max TPR over sklearn ROC points with FPR <= f."""
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    return tpr[fpr <= f + 1e-9].max()


# ----------------------------------------------------------------------------- point metrics
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("decimals", [None, 1])
def test_binary_metrics_match_sklearn(seed, decimals):
    y, s = _binary(200, seed, decimals=decimals)
    assert M.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.auc_from_ranks(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert M.accuracy(y, s) == pytest.approx(accuracy_score(y, s > 0.5))
    for f in (0.0, 0.1, 0.15, 0.2, 0.5, 1.0):
        assert M.sensitivity_at_fpr(y, s, f) == pytest.approx(_ref_sens(y, s, f))


class _FakeTensor:
    """Just the torch.Tensor surface that helpers.metrics uses (so this file need not import torch)."""

    def __init__(self, a):
        self.a = np.asarray(a)

    def detach(self):
        return self

    def cpu(self):
        return self

    def is_floating_point(self):
        return self.a.dtype.kind == "f"

    def double(self):
        return _FakeTensor(self.a.astype(np.float64))

    def numpy(self):
        return self.a


def test_two_column_scores_labels_column_and_tensor_like_inputs():
    y, s = _binary(100, 0)
    two = np.c_[1 - s, s]
    assert M.roc_auc(y, two) == M.roc_auc(y, s)
    assert M.accuracy(y, two) == M.accuracy(y, s)
    assert M.roc_auc(y[:, None], s) == M.roc_auc(y, s)  # MedMNIST-style (N, 1) labels
    assert M.roc_auc(list(y), list(s)) == M.roc_auc(y, s)
    assert M.roc_auc(_FakeTensor(y), _FakeTensor(s.astype(np.float32))) == pytest.approx(M.roc_auc(y, s))


def test_real_torch_tensors():
    """Runs whenever torch is already loaded (the full suite loads it); importing it here alone
    would cost seconds, and the fake-tensor test above covers the same code path."""
    torch = sys.modules.get("torch")
    if torch is None:
        pytest.skip("torch not imported in this session")
    y, s = _binary(100, 0)
    yt, st = torch.tensor(y), torch.tensor(s, dtype=torch.bfloat16)
    assert M.roc_auc(yt, st) == M.roc_auc(y, st.double().numpy())
    assert B.score_metrics(yt, torch.tensor(s), n_boot=20)["auc"] == pytest.approx(M.roc_auc(y, s))


def test_hand_computed_auc_and_accuracy():
    y = [0, 0, 1, 1]
    s = [0.1, 0.4, 0.35, 0.8]  # pairs (pos, neg): 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4 -> 3/4
    assert M.roc_auc(y, s) == 0.75
    assert M.auc_from_ranks(y, s) == 0.75
    assert M.accuracy(y, s) == 0.75  # predicts 0, 0, 0, 1
    assert M.roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts one half


def test_single_class_gives_nan():
    assert np.isnan(M.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert np.isnan(M.sensitivity_at_fpr([0, 0], [0.2, 0.5], 0.1))
    assert np.isnan(M.auc_from_ranks([0, 0], [0.2, 0.5]))


def test_hand_computed_sensitivity_at_fpr():
    neg = [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80, 0.90, 0.95]  # 10 negatives
    pos = [0.45, 0.65, 0.85, 0.97, 0.99]  # 5 positives
    y = [0] * 10 + [1] * 5
    s = neg + pos
    # FPR <= 0.10 allows 1 false positive: threshold just above 0.90 -> positives 0.97, 0.99.
    assert M.sensitivity_at_fpr(y, s, 0.10) == pytest.approx(2 / 5)
    assert M.sensitivity_at_fpr(y, s, 0.15) == pytest.approx(2 / 5)  # still only 1 FP allowed
    # FPR <= 0.20 allows 2: threshold just above 0.80 -> 0.85, 0.97, 0.99.
    assert M.sensitivity_at_fpr(y, s, 0.20) == pytest.approx(3 / 5)
    assert M.sensitivity_at_fpr(y, s, 0.0) == pytest.approx(2 / 5)  # above 0.95
    assert M.sensitivity_at_fpr(y, s, 0.5) == pytest.approx(4 / 5)  # above 0.50
    assert M.sensitivity_at_fpr(y, s, 1.0) == 1.0
    # A positive tied with the 2nd-highest negative is NOT counted at 10 % FPR (it would add a FP).
    s_tie = neg + [0.45, 0.65, 0.90, 0.97, 0.99]
    assert M.sensitivity_at_fpr(y, s_tie, 0.10) == pytest.approx(2 / 5)
    assert M.sensitivity_at_fpr(y, s_tie, 0.20) == pytest.approx(3 / 5)


def test_multiclass_matches_sklearn_ovr_macro():
    y, p = _multiclass(300, 4, 0)
    assert M.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert M.accuracy(y, p) == pytest.approx(accuracy_score(y, p.argmax(1)))
    ref = np.mean([_ref_sens(y == c, p[:, c], 0.1) for c in range(4)])
    assert M.sensitivity_at_fpr(y, p, 0.1) == pytest.approx(ref)
    # A class absent from y_true is left out of the macro average.
    keep = y != 3
    ref3 = np.mean([roc_auc_score(y[keep] == c, p[keep, c]) for c in range(3)])
    assert M.roc_auc(y[keep], p[keep]) == pytest.approx(ref3)


# ----------------------------------------------------------------------------- fast bootstrap
def _pairwise_auc(y, s):
    """Brute-force AUC: P(positive scores above negative) + 0.5 P(tie), over all pairs."""
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg))) if pos.size and neg.size else np.nan


def _random_resamples(n_cases, n_rows, seed):
    rng = np.random.default_rng(seed)
    for _ in range(n_cases):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        s = np.round(rng.random(n), int(rng.integers(0, 3)))  # 0 to 2 decimals: many ties
        yield y, s, rng.integers(0, n, size=(n_rows, n))


def test_resampled_auc_matches_sklearn_per_resample_with_ties():
    checked = 0
    for y, s, idx in _random_resamples(20, 6, seed=0):
        fast = B.resampled_auc(y, s, idx)
        for b in range(len(idx)):
            yb, sb = y[idx[b]], s[idx[b]]
            if len(np.unique(yb)) < 2:
                assert np.isnan(fast[b])
            else:
                assert fast[b] == pytest.approx(roc_auc_score(yb, sb), abs=1e-12)
                checked += 1
    assert checked > 100


def test_resampled_auc_matches_pairwise_definition_on_many_cases():
    for y, s, idx in _random_resamples(150, 20, seed=1):
        fast = B.resampled_auc(y, s, idx)
        ref = [_pairwise_auc(y[r], s[r]) for r in idx]
        np.testing.assert_allclose(fast, ref, atol=1e-12, equal_nan=True)


def test_resampled_auc_multiclass_matches_roc_auc():
    y, p = _multiclass(80, 3, 1)
    idx = np.random.default_rng(2).integers(0, 80, size=(10, 80))
    fast = B.resampled_auc(y, p, idx)
    for b in range(10):
        assert fast[b] == pytest.approx(M.roc_auc(y[idx[b]], p[idx[b]]), abs=1e-12)


@pytest.mark.parametrize("metric, func", [
    ("auc", M.roc_auc),
    ("acc", M.accuracy),
    ("sens@10", lambda y, s: M.sensitivity_at_fpr(y, s, 0.10)),
    ("sens@15", lambda y, s: M.sensitivity_at_fpr(y, s, 0.15)),
    ("sens@20", lambda y, s: M.sensitivity_at_fpr(y, s, 0.20)),
])
@pytest.mark.parametrize("data", ["binary_ties", "small", "multiclass"])
def test_vectorised_bootstrap_equals_sklearn_functions(metric, func, data):
    if data == "binary_ties":
        y, s = _binary(120, 3, decimals=1)
    elif data == "small":  # tiny set: some resamples hold a single class
        y, s = np.array([0, 1, 1, 0, 1]), np.array([0.3, 0.3, 0.8, 0.1, 0.5])
    else:
        y, s = _multiclass(90, 3, 4)
    fast = B.bootstrap_distribution(y, s, metric, n_boot=40, seed=7)
    slow = B.bootstrap_distribution(y, s, func, n_boot=40, seed=7)
    np.testing.assert_allclose(fast, slow, atol=1e-12, equal_nan=True)
    if data == "small":
        assert np.isnan(fast).any()


def test_bootstrap_auc_is_seeded():
    y, s = _binary(100, 5)
    a = B.bootstrap_auc(y, s, n_boot=300, seed=1)
    assert a.shape == (300,)
    np.testing.assert_array_equal(a, B.bootstrap_auc(y, s, n_boot=300, seed=1))
    assert not np.array_equal(a, B.bootstrap_auc(y, s, n_boot=300, seed=2))


def test_chunked_resamples_are_consistent(monkeypatch):
    """Many chunks (tiny chunk size) still give valid, seeded results."""
    y, s = _binary(50, 6, decimals=1)
    monkeypatch.setattr(B, "_CHUNK_ELEMENTS", 120)  # 2 resamples per chunk
    a = B.bootstrap_auc(y, s, n_boot=31, seed=3)
    b = B.bootstrap_distribution(y, s, M.roc_auc, n_boot=31, seed=3)
    np.testing.assert_allclose(a, b, atol=1e-12)


# ----------------------------------------------------------------------------- intervals
@pytest.mark.parametrize("metric", ["auc", "acc", "sens@10"])
def test_ci_contains_point_and_is_seeded(metric):
    y, s = _binary(300, 8)
    point = {"auc": M.roc_auc, "acc": M.accuracy,
             "sens@10": lambda a, b: M.sensitivity_at_fpr(a, b, 0.1)}[metric](y, s)
    lo, hi = B.bootstrap_ci(y, s, metric, n_boot=500, seed=0)
    assert lo < point < hi
    assert (lo, hi) == B.bootstrap_ci(y, s, metric, n_boot=500, seed=0)
    assert (lo, hi) != B.bootstrap_ci(y, s, metric, n_boot=500, seed=1)
    lo90, hi90 = B.bootstrap_ci(y, s, metric, n_boot=500, seed=0, level=0.90)
    assert lo <= lo90 <= hi90 <= hi


def test_evaluate_keys_and_values():
    """(Its speed is measured by make bench, not here: timed tests fail on a busy machine.)"""
    y, s = _binary(624, 9)
    out = B.score_metrics(y, s, n_boot=1000, seed=0)
    expected = {"n", "score_sd", "auc", "auc_lo", "auc_hi", "acc", "acc_lo", "acc_hi"}
    for k in (10, 15, 20):
        expected |= {f"sens@{k}", f"sens@{k}_lo", f"sens@{k}_hi"}
    assert set(out) == expected
    assert out["n"] == 624
    assert out["auc"] == pytest.approx(roc_auc_score(y, s))
    assert out["acc"] == pytest.approx(accuracy_score(y, s > 0.5))
    assert out["sens@15"] == pytest.approx(_ref_sens(y, s, 0.15))
    for key in ("auc", "acc", "sens@10", "sens@15", "sens@20"):
        assert out[f"{key}_lo"] <= out[key] <= out[f"{key}_hi"]
    # The shared resamples give exactly the intervals of the one-metric function.
    assert (out["auc_lo"], out["auc_hi"]) == pytest.approx(B.bootstrap_ci(y, s, "auc", 1000, 0))
    assert (out["sens@20_lo"], out["sens@20_hi"]) == pytest.approx(
        B.bootstrap_ci(y, s, "sens@20", 1000, 0))


def test_evaluate_multiclass_and_no_bootstrap():
    y, p = _multiclass(150, 3, 10)
    out = B.score_metrics(y, p, n_boot=200, fprs=(0.1, 0.125))
    assert out["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))
    assert "sens@12.5" in out and out["auc_lo"] < out["auc"] < out["auc_hi"]
    quick = B.score_metrics(y, p, n_boot=0)
    assert quick["auc"] == out["auc"] and np.isnan(quick["auc_lo"])


def test_sens_key():
    assert [M.sens_key(f) for f in (0.10, 0.15, 0.20, 0.05)] == ["sens@10", "sens@15", "sens@20", "sens@5"]


def test_roc_with_band():
    y, s = _binary(200, 11)
    df = B.roc_with_band(y, s, n_boot=200, seed=0)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["fpr", "tpr", "tpr_lo", "tpr_hi"] and len(df) == 101
    assert np.all(np.diff(df.tpr) >= 0) and df.tpr.iloc[-1] == 1.0
    assert np.all(df.tpr_lo <= df.tpr_hi) and (df.tpr_hi - df.tpr_lo).max() > 0
    assert df.tpr.iloc[10] == pytest.approx(M.sensitivity_at_fpr(y, s, 0.10))
    custom = B.roc_with_band(y, s, n_boot=50, grid=[0.1, 0.2])
    assert list(custom.fpr) == [0.1, 0.2]
    yk, p = _multiclass(60, 3, 0)
    with pytest.raises(ValueError, match="binary only"):
        B.roc_with_band(yk, p)
    assert len(B.roc_with_band(yk == 2, p[:, 2], n_boot=20)) == 101  # the suggested one-vs-rest


# ----------------------------------------------------------------------------- paired comparison
def test_paired_delta_against_itself_is_zero():
    y, s = _binary(150, 12)
    out = B.paired_bootstrap_delta(y, s, s, n_boot=500)
    assert out["delta"] == 0 and out["lo"] == 0 and out["hi"] == 0 and out["p"] == 1
    multi = B.paired_bootstrap_delta_multi(y, [s, s ** 2], [s, s ** 2], n_boot=300)
    assert multi["delta"] == 0 and multi["p"] == 1


def test_paired_delta_detects_a_better_model():
    y, good = _binary(300, 13, signal=1.5)
    _, weak = _binary(300, 13, signal=0.0)  # same labels (same seed), uninformative scores
    out = B.paired_bootstrap_delta(y, good, weak, n_boot=1000, seed=0)
    assert out["delta"] == pytest.approx(roc_auc_score(y, good) - roc_auc_score(y, weak))
    assert out["delta"] > 0 and out["lo"] > 0 and out["p"] < 0.05
    assert out["p"] >= 1 / out["n_boot"]
    reverse = B.paired_bootstrap_delta(y, weak, good, n_boot=1000, seed=0)
    assert reverse["delta"] == pytest.approx(-out["delta"]) and reverse["p"] == out["p"]


def test_paired_delta_multi_averages_runs():
    y, a1 = _binary(200, 14, signal=1.0)
    rng = np.random.default_rng(0)
    a2 = np.clip(a1 + rng.normal(0, 0.05, 200), 0, 1)
    b1, b2 = rng.random(200), rng.random(200)
    multi = B.paired_bootstrap_delta_multi(y, [a1, a2], [b1, b2], n_boot=400, seed=0)
    d1 = B.paired_bootstrap_delta(y, a1, b1, n_boot=400, seed=0)
    d2 = B.paired_bootstrap_delta(y, a2, b2, n_boot=400, seed=0)
    assert multi["delta"] == pytest.approx((d1["delta"] + d2["delta"]) / 2)
    single = B.paired_bootstrap_delta_multi(y, [a1], [b1], n_boot=400, seed=0)
    assert single == d1
    with pytest.raises(TypeError, match="list"):
        B.paired_bootstrap_delta_multi(y, a1, b1)


# ----------------------------------------------------------------------------- two levels: seeds and test cases
def test_two_level_interval_holds_seed_noise_and_reduces_to_one_level():
    y, good = _binary(300, 21, signal=1.0)
    rng = np.random.default_rng(1)
    # three "seeds" that disagree a lot: the interval must be wider than the test-set-only interval
    runs = [np.clip(good + rng.normal(0, sd, 300), -5, 5) for sd in (0.1, 1.0, 3.0)]
    both = B.two_level_bootstrap(y, runs, n_boot=800, seed=0)
    test_only = B.paired_bootstrap_delta_multi(y, runs, [np.zeros(300)] * 3, n_boot=800, seed=0)
    assert both["mean"] == pytest.approx(np.mean([roc_auc_score(y, r) for r in runs]))
    assert both["lo"] < both["mean"] < both["hi"] and np.isnan(both["p"]) and both["n_runs"] == 3
    assert (both["hi"] - both["lo"]) > (test_only["hi"] - test_only["lo"])
    assert 2 <= both["df"] < 2.5 and both["seed_var"] > 0     # the seeds dominate: Student's t on about R - 1
    # one run: the test-set part only, DeLong's variance; near the percentile bootstrap of the test cases
    one = B.two_level_bootstrap(y, [good], n_boot=500, seed=4)
    lo, hi = B.bootstrap_ci(y, good, "auc", n_boot=4000, seed=4)
    assert one["lo"] == pytest.approx(lo, abs=0.01) and one["hi"] == pytest.approx(hi, abs=0.01)


def test_the_influence_values_give_delongs_variance_and_match_the_bootstrap():
    y, s = _binary(300, 5, signal=1.0)
    auc, psi = B.auc_influence(y, np.round(s, 1))                     # ties too
    assert auc == pytest.approx(roc_auc_score(y, np.round(s, 1)))
    boot = B.bootstrap_distribution(y, np.round(s, 1), "auc", n_boot=6000, seed=1)
    assert psi @ psi == pytest.approx(np.var(boot), rel=0.08)
    # a brute-force DeLong for the binary case
    pos, neg = np.round(s, 1)[y == 1], np.round(s, 1)[y == 0]
    kernel = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = kernel.mean(axis=1), kernel.mean(axis=0)
    delong = v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg)
    assert psi @ psi == pytest.approx(delong, rel=1e-9)


def test_the_variance_components_count_each_runs_test_noise_once():
    """Runs that differ only by their own test noise (no seed effect): the seed part is estimated near 0 and
    the interval is the test-set interval of the mean, not the sum of both."""
    cov = np.eye(3) * 0.0004 + 0.0002                    # each run's own test noise plus a shared part
    d = np.array([0.80, 0.82, 0.81])                     # spread of the order of the runs' own noise
    out = B.seeds_and_test_interval(d, cov, df_test=150)
    v_x = 3 / 2 * (np.trace(cov) / 3 - cov.sum() / 9)
    assert out["seed_var"] == pytest.approx(max(np.var(d, ddof=1) - v_x, 0.0))
    assert out["se"] ** 2 == pytest.approx(out["seed_var"] / 3 + cov.sum() / 9)
    naive = np.var(d, ddof=1) / 3 + cov.sum() / 9        # the old double count
    assert out["se"] ** 2 < naive
    assert B.seeds_and_test_interval(d, np.zeros((3, 3)), 150)["df"] == 2   # no test noise: t with R - 1
    with pytest.raises(ValueError, match="covariance"):
        B.seeds_and_test_interval(d, np.eye(2), 150)


def test_two_level_paired_difference_and_p():
    y, good = _binary(300, 22, signal=1.5)
    _, weak = _binary(300, 22, signal=0.0)
    out = B.two_level_bootstrap(y, [good, good], paired_with=[weak, weak], n_boot=600, seed=0)
    assert out["mean"] > 0 and out["lo"] > 0 and out["p"] < 0.05
    same = B.two_level_bootstrap(y, [good, weak], paired_with=[good, weak], n_boot=300)
    assert same["mean"] == 0 and same["p"] == 1
    with pytest.raises(ValueError, match="pair them by seed"):
        B.two_level_bootstrap(y, [good, good], paired_with=[weak])


def test_contrast_bootstrap_is_what_two_level_wraps():
    y, good = _binary(200, 31, signal=1.0)
    rng = np.random.default_rng(2)
    a = [good + rng.normal(0, 0.5, 200) for _ in range(3)]
    b = [good + rng.normal(0, 1.5, 200) for _ in range(3)]
    one, general = B.two_level_bootstrap(y, a, n_boot=300, seed=5), B.contrast_bootstrap(y, [a], [1.0], n_boot=300, seed=5)
    assert {k: one[k] for k in ("mean", "lo", "hi", "n_runs", "n", "n_boot")} == \
        {k: general[k] for k in ("mean", "lo", "hi", "n_runs", "n", "n_boot")}
    assert np.isnan(one["p"])
    paired = B.two_level_bootstrap(y, a, paired_with=b, n_boot=300, seed=5)
    assert paired == B.contrast_bootstrap(y, [a, b], [1.0, -1.0], n_boot=300, seed=5)
    assert paired["mean"] == pytest.approx(np.mean([roc_auc_score(y, r) for r in a])
                                           - np.mean([roc_auc_score(y, r) for r in b]))


def test_the_t_reference_is_wider_than_normal_quantiles_and_bounds_hold():
    y, good = _binary(300, 32, signal=1.0)
    rng = np.random.default_rng(3)
    runs = [good + rng.normal(0, sd, 300) for sd in (0.2, 1.0, 2.0)]
    wide = B.two_level_bootstrap(y, runs, n_boot=600, seed=0)
    plain = B.two_level_bootstrap(y, runs, n_boot=600, seed=0, small_r_correction=False)
    assert wide["lo"] < plain["lo"] < plain["hi"] < wide["hi"] and wide["mean"] == plain["mean"]
    near_one = [np.where(y == 1, 5.0, -5.0) + rng.normal(0, sd, 300) for sd in (0.5, 2.0, 4.0)]
    top = B.two_level_bootstrap(y, near_one, n_boot=300, seed=0)
    assert 0 <= top["lo"] < top["hi"] <= 1                          # clipped to the range AUC can take
    logit = B.contrast_bootstrap(y, [near_one], [1.0], scale="logit")
    assert np.isfinite(logit["lo"]) and logit["mean"] > 2           # no saturation on the logit scale


def test_a_difference_of_two_gaps_is_paired_over_all_four_arms():
    y, good = _binary(300, 33, signal=1.0)
    rng = np.random.default_rng(4)
    arms = [[good + rng.normal(0, sd, 300) for _ in range(3)] for sd in (0.5, 1.0, 0.8, 2.0)]
    out = B.contrast_bootstrap(y, arms, [1, -1, -1, 1], n_boot=400, seed=0)
    means = [np.mean([roc_auc_score(y, r) for r in arm]) for arm in arms]
    assert out["mean"] == pytest.approx((means[0] - means[1]) - (means[2] - means[3]))
    assert out["lo"] <= out["mean"] <= out["hi"] and 0 < out["p"] <= 1 and out["n_runs"] == 3
    # the same gap twice: the contrast is exactly 0 in every replicate
    same = B.contrast_bootstrap(y, [arms[0], arms[1], arms[0], arms[1]], [1, -1, -1, 1], n_boot=200)
    assert same["mean"] == 0 and same["lo"] == same["hi"] == 0 and same["p"] == 1
    with pytest.raises(ValueError, match="same seeds"):
        B.contrast_bootstrap(y, [arms[0], arms[1][:2]], [1, -1])
    with pytest.raises(ValueError, match="weights"):
        B.contrast_bootstrap(y, arms, [1, -1])


def test_score_spread_flags_a_collapsed_model():
    y, s = _binary(100, 23)
    out = B.score_metrics(y, np.full(100, 0.37), n_boot=50)
    assert out["score_sd"] < 1e-12 and M.is_collapsed(out["score_sd"]) and out["auc"] == 0.5
    assert not M.is_collapsed(B.score_metrics(y, s, n_boot=50)["score_sd"])
    assert M.is_collapsed(M.score_spread(np.tile([[0.2, 0.8]], (50, 1))))
    assert M.is_collapsed(float("nan"))


# ----------------------------------------------------------------------------- validation
def test_validation_messages():
    y, s = _binary(10, 0)
    with pytest.raises(ValueError, match="y_true has 10 cases but scores has 9 rows"):
        M.roc_auc(y, s[:9])
    bad = s.copy()
    bad[[1, 4, 7]] = np.nan
    with pytest.raises(ValueError, match="3 NaN"):
        B.score_metrics(y, bad)
    with pytest.raises(ValueError, match="empty"):
        M.accuracy([], [])
    with pytest.raises(ValueError, match="1-D .* labels up to 2"):
        M.roc_auc([0, 1, 2], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="3 columns .* label 3"):
        M.roc_auc([0, 1, 3], np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="integer"):
        M.roc_auc([0, 0.5, 1], [0.1, 0.5, 0.9])
    with pytest.raises(ValueError, match="unknown metric"):
        B.bootstrap_ci(y, s, "f1")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        M.sensitivity_at_fpr(y, s, 1.5)
    with pytest.raises(ValueError, match="n_boot"):
        B.bootstrap_ci(y, s, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        B.bootstrap_ci(y, s, level=95)
    with pytest.raises(ValueError, match="scores_b\\[0\\]"):
        B.paired_bootstrap_delta(y, s, s[:5])


# ----------------------------------------------------------------------------- multi-label (ChestMNIST-like)
def _multi_label(n=240, findings=5, seed=3):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, findings)) < np.linspace(0.4, 0.05, findings)).astype(int)
    s = np.clip(0.3 * y + 0.7 * rng.random((n, findings)), 0, 1)
    return y, s


def test_multi_label_metrics_match_the_reference_per_finding():
    from sklearn.metrics import accuracy_score, roc_auc_score
    y, s = _multi_label()
    assert M.roc_auc(y, s) == pytest.approx(roc_auc_score(y, s, average="macro"))
    # MedMNIST's evaluator: accuracy at 0.5 per finding, averaged over findings
    assert M.accuracy(y, s) == pytest.approx(np.mean([accuracy_score(y[:, j], s[:, j] > 0.5) for j in range(5)]))
    per_finding = [M.sensitivity_at_fpr(y[:, j], s[:, j], 0.1) for j in range(5)]
    assert M.sensitivity_at_fpr(y, s, 0.1) == pytest.approx(np.mean(per_finding))


def test_multi_label_bootstrap_matches_a_loop_over_resamples():
    y, s = _multi_label(n=80)
    fast = B.bootstrap_distribution(y, s, "auc", n_boot=40, seed=5)
    idx = next(B._index_chunks(80, 40, 5))
    slow = [M.roc_auc(y[r], s[r]) for r in idx]
    assert np.allclose(fast, slow, equal_nan=True)


def test_multi_label_input_checks():
    y, s = _multi_label()
    assert M.auc_defined(y) and not M.auc_defined(np.zeros((10, 3), int))
    with pytest.raises(ValueError, match="must have shape"):
        M.roc_auc(y, s[:, :3])
    with pytest.raises(ValueError, match="0/1"):
        M.roc_auc(y * 2, s)
    with pytest.raises(ValueError, match="multi-label.*y_true\\[:, j\\]"):
        B.roc_with_band(y, s)
