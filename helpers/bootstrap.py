"""Bootstrap confidence intervals for every metric of :mod:`helpers.metrics`, computed fast.

The point estimates come from :mod:`helpers.metrics` (scikit-learn); here a vectorised, rank-based
computation of the same quantities (Mann-Whitney AUC with ties counted as one half, and the same ROC
operating-point rule) runs over a whole matrix of resamples at once, in memory-bounded blocks; the tests
check it against scikit-learn resample by resample. Resampling is over test cases; paired comparisons
resample both models' scores together. Across seeds (:func:`contrast_bootstrap`, :func:`two_level_bootstrap`,
:func:`cluster_mean_interval`) the interval is a variance-components estimate with Student's t, not a
resampling of three seeds: :func:`seeds_and_test_interval` (docs/methods.md has the derivation and its
calibration table).
Labels and scores follow the conventions of :mod:`helpers.metrics`.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import (FPR_TOL, binary_tpr_at, checked_scores, check_boot, check_fprs, correct_mask, nanmean_quiet,
                      binary_tasks, accuracy, roc_auc, score_spread, sens_key)
from .types import ArrayLike

_CHUNK_ELEMENTS = 2_000_000  # resamples are processed in blocks of about this many (row, case) cells

MetricLike = Callable[[np.ndarray, np.ndarray], float] | str


# ----------------------------------------------------------------------------- fast resampled metrics
@dataclass(frozen=True)
class _Ranked:
    """One binary task sorted by score, with its tie groups, ready for resampled metrics."""

    order: np.ndarray  # (N,) case indices in ascending score order
    starts: np.ndarray  # (G,) first sorted position of each group of tied scores
    pos: np.ndarray  # (N,) 1 where the sorted case is positive

    @classmethod
    def build(cls, pos: np.ndarray, s: np.ndarray) -> _Ranked:
        order = np.argsort(s, kind="stable")
        ss = s[order]
        starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
        return cls(order, starts, pos[order].astype(np.int32))

    def group_weights(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positives and negatives per tie group (rows) in each resample (columns): two (G, B) arrays."""
        c = counts[self.order]
        pw = c * self.pos[:, None]
        if len(self.starts) == len(self.order):  # no tied scores: every case is its own group
            return pw, c - pw
        pw = np.add.reduceat(pw, self.starts, axis=0)
        return pw, np.add.reduceat(c, self.starts, axis=0) - pw


def _task_metrics(pw: np.ndarray, nw: np.ndarray,
                  fprs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """AUC (B,) and sensitivity at each fpr (B, F) per resample, from (G, B) tie-group weights.

    AUC is the Mann-Whitney statistic: for every positive, the negatives scoring below it, plus one
    half of those tied with it (the same as average ranks). Sensitivity follows the rule of
    ``sensitivity_at_fpr``: positives strictly above the group that holds the (m+1)-th highest
    negative, m = floor(fpr * n_negatives).
    """
    n_pos, n_neg = pw.sum(axis=0), nw.sum(axis=0)
    below = np.cumsum(nw, axis=0, dtype=nw.dtype)
    below -= nw  # negatives strictly below each group
    u = (pw * below).sum(axis=0) + 0.5 * (pw * nw).sum(axis=0)
    denom = n_pos * n_neg
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = u / denom
    auc[denom == 0] = np.nan
    if fprs is None:
        return auc, None
    g, b = below.shape
    target = np.floor((fprs[None, :] + FPR_TOL) * n_neg[:, None]).astype(np.int64) + 1  # (B, F)
    # The group holding the target-th highest negative is the highest group j with
    # below[j] <= n_neg - target. One searchsorted call for all resamples: offset each resample's
    # column so that the flattened counts are globally sorted.
    stride = int(n_neg.max()) + 1
    off = np.arange(b, dtype=np.int64) * stride
    hit = np.searchsorted((below.T + off[:, None]).ravel(),
                          (n_neg[:, None] - target + off[:, None]).ravel(), side="right") - 1
    grp = np.clip(hit.reshape(b, -1) - (np.arange(b) * g)[:, None], 0, g - 1)
    pos_upto = np.cumsum(pw, axis=0, dtype=pw.dtype)  # positives at or below each group
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (n_pos[:, None] - pos_upto[grp, np.arange(b)[:, None]]) / n_pos[:, None]
    tpr = np.where(target > n_neg[:, None], 1.0, tpr)  # fpr allows every negative: threshold -inf
    tpr[(n_pos == 0) | (n_neg == 0)] = np.nan
    return auc, tpr


class _Problem:
    """Validated data plus the per-task rankings that the vectorised bootstrap needs."""

    def __init__(self, y_true, scores, name: str = "scores"):
        self.y, self.s, self.raw, self.k = checked_scores(y_true, scores, name)
        self.n = len(self.y)
        self.tasks = [_Ranked.build(p, sc) for p, sc in binary_tasks(self.y, self.s, self.k)]
        self.correct = correct_mask(self.y, self.s, self.k)

    def resampled(self, counts: np.ndarray, fprs: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """AUC (B,), accuracy (B,) and, if ``fprs`` given, sensitivities (B, F) for counts (N, B)."""
        per_task = [_task_metrics(*t.group_weights(counts), fprs) for t in self.tasks]
        out = {"auc": nanmean_quiet([auc for auc, _ in per_task], axis=0),
               "acc": self.correct @ counts / self.n}
        if fprs is not None:
            out["sens"] = nanmean_quiet([sens for _, sens in per_task], axis=0)
        return out


def _index_chunks(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap index matrices (rows = resamples of n cases), in memory-bounded blocks.

    The block size depends only on ``n``, so (n, n_boot, seed) always gives the same resamples.
    """
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, n_boot, rows):
        yield rng.integers(0, n, size=(min(rows, n_boot - start), n))


def _counts(idx: np.ndarray, n: int) -> np.ndarray:
    """(N, B) matrix: how often each case (row) appears in each resample (row of ``idx``).

    Cases are rows so that sorting cases by score is a fast gather of contiguous rows.
    """
    b = idx.shape[0]
    flat = (idx.astype(np.int64) * b + np.arange(b, dtype=np.int64)[:, None]).ravel()
    return np.bincount(flat, minlength=n * b).reshape(n, b).astype(np.int32)


def resampled_auc(y_true: ArrayLike, scores: ArrayLike, idx: ArrayLike) -> np.ndarray:
    """AUC of every resample ``y_true[idx[b]], scores[idx[b]]``, vectorised over the rows of ``idx``.

    ``idx`` is an integer matrix (n_resamples, m) of case indices (m need not equal N). Equal to
    ``roc_auc`` applied row by row (``nan`` for rows with fewer than two classes), but computed from
    rank sums without a Python loop per row.
    """
    prob = _Problem(y_true, scores)
    idx = np.asarray(idx)
    idx = idx[None, :] if idx.ndim == 1 else idx
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must be an integer matrix (n_resamples, m), got {idx.dtype} {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= prob.n):
        raise ValueError(f"idx holds case indices outside [0, {prob.n})")
    rows = max(1, _CHUNK_ELEMENTS // max(prob.n, idx.shape[1], 1))
    parts = [prob.resampled(_counts(idx[i:i + rows], prob.n))["auc"] for i in range(0, len(idx), rows)]
    return np.concatenate(parts) if parts else np.empty(0)


# ----------------------------------------------------------------------------- bootstrap
def _parse_metric(metric: MetricLike) -> tuple[str, float | None] | Callable:
    if callable(metric):
        return metric
    name = str(metric).strip().lower()
    if name in ("auc", "roc_auc"):
        return "auc", None
    if name in ("acc", "accuracy"):
        return "acc", None
    if name.startswith("sens@"):
        try:
            return "sens", float(name[5:]) / 100
        except ValueError:
            pass
    raise ValueError(f"unknown metric {metric!r}: use 'auc', 'acc', 'sens@<percent FPR>' "
                     "(e.g. 'sens@10') or a function f(y_true, scores) -> float")


def bootstrap_distribution(y_true: ArrayLike, scores: ArrayLike, metric: MetricLike = "auc",
                           n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The metric on ``n_boot`` bootstrap resamples of the test cases (``nan`` where undefined).

    ``metric`` is ``"auc"``, ``"acc"``, ``"sens@10"`` (any percent FPR), computed vectorised, or a
    function ``f(y_true, scores) -> float`` called once per resample (slower). Resamples containing a
    single class give ``nan`` (a function is not called on them). Same seed -> same resamples.
    """
    check_boot(n_boot, 0.5)
    spec = _parse_metric(metric)
    prob = _Problem(y_true, scores)
    out = []
    for idx in _index_chunks(prob.n, n_boot, seed):
        single = _single_class(prob.y, idx)
        if callable(spec):
            vals = [np.nan if one else float(spec(prob.y[r], prob.raw[r])) for r, one in zip(idx, single)]
        else:
            kind, f = spec
            res = prob.resampled(_counts(idx, prob.n), None if f is None else check_fprs(f))
            vals = np.where(single, np.nan, res[kind][:, 0] if kind == "sens" else res[kind])
        out.append(np.asarray(vals, dtype=np.float64))
    return np.concatenate(out)


def _single_class(y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """True for each resample (row of ``idx``) whose labels hold one class only (multi-label: in which no
    finding is both present and absent, counted without building the (resamples, cases, findings) array)."""
    if y.ndim == 1:
        rows = y[idx]
        return (rows == rows[:, :1]).all(axis=1)
    positives = _counts(idx, len(y)).T.astype(np.int64) @ y       # (B, L) positives per finding
    return ~((positives > 0) & (positives < idx.shape[1])).any(axis=1)


def bootstrap_auc(y_true: ArrayLike, scores: ArrayLike, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """AUC of ``n_boot`` bootstrap resamples (vectorised rank formula); ``nan`` for single-class ones."""
    return bootstrap_distribution(y_true, scores, "auc", n_boot, seed)


def _percentile_ci(vals: np.ndarray, level: float, warn: bool = True) -> tuple[float, float]:
    vals = np.asarray(vals, dtype=np.float64)
    vals = vals[~np.isnan(vals)]
    if vals.size == 0:
        if warn:
                warnings.warn("no bootstrap resample had both classes; the interval is (nan, nan)",
                          stacklevel=3)
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(vals, [alpha, 1 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(y_true: ArrayLike, scores: ArrayLike, metric: MetricLike = "auc", n_boot: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric`` over the test cases.

    Resamples the N test cases with replacement ``n_boot`` times (seeded: the same seed gives the same
    interval), computes the metric on each, drops resamples with a single class (``nan``), and returns
    the ``(1 - level) / 2`` and ``1 - (1 - level) / 2`` quantiles. See ``bootstrap_distribution`` for
    the accepted ``metric`` values.
    """
    check_boot(n_boot, level)
    return _percentile_ci(bootstrap_distribution(y_true, scores, metric, n_boot, seed), level)


def score_metrics(y_true: ArrayLike, scores: ArrayLike, n_boot: int = 1000, seed: int = 0,
                  fprs: Sequence[float] = (0.10, 0.15, 0.20), level: float = 0.95) -> dict[str, float]:
    """Every headline number with its bootstrap confidence interval, in one dictionary.

    Keys: ``n`` (test cases), ``score_sd`` (spread of the scores: see :func:`is_collapsed`), ``auc``, ``auc_lo``, ``auc_hi``, ``acc``, ``acc_lo``, ``acc_hi`` and, for
    each fpr, ``sens@10``, ``sens@10_lo``, ``sens@10_hi`` (the key holds the FPR in percent). All
    metrics share ONE set of bootstrap resamples. ``n_boot=0`` skips the bootstrap (bounds are nan).
    """
    check_boot(n_boot, level, allow_zero=True)
    f = check_fprs(fprs)
    prob = _Problem(y_true, scores)
    point = {"auc": roc_auc(prob.y, prob.raw), "acc": accuracy(prob.y, prob.raw)}
    point.update({sens_key(x): v for x, v in zip(f, nanmean_quiet(
        [binary_tpr_at(p, sc, f) for p, sc in binary_tasks(prob.y, prob.s, prob.k)], axis=0))})
    boot = {key: [] for key in point}
    for idx in _index_chunks(prob.n, n_boot, seed):
        res = prob.resampled(_counts(idx, prob.n), f)
        keep = ~_single_class(prob.y, idx)  # drop single-class resamples
        boot["auc"].append(res["auc"][keep])
        boot["acc"].append(res["acc"][keep])
        for j, x in enumerate(f):
            boot[sens_key(x)].append(res["sens"][keep, j])
    if n_boot and not sum(len(b) for b in boot["acc"]):
        warnings.warn("no bootstrap resample had both classes; the intervals are nan", stacklevel=2)
    out: dict[str, float] = {"n": prob.n, "score_sd": score_spread(prob.raw)}
    for key, value in point.items():
        lo, hi = (_percentile_ci(np.concatenate(boot[key]), level, warn=False) if n_boot
                  else (float("nan"), float("nan")))
        out.update({key: float(value), f"{key}_lo": lo, f"{key}_hi": hi})
    return out


def _binary_only(name: str, prob: "_Problem") -> None:
    """ValueError, saying how to pick one binary task, unless ``prob`` is a binary task."""
    if prob.y.ndim == 2:
        raise ValueError(f"{name} is binary only, but y_true is multi-label with {prob.k} findings; for finding j "
                         f"call {name}(y_true[:, j], scores[:, j])")
    if prob.k != 2:
        raise ValueError(f"{name} is binary only, but scores have {prob.k} classes; for class c against the rest "
                         f"call {name}(y_true == c, scores[:, c])")


def roc_with_band(y_true: ArrayLike, scores: ArrayLike, n_boot: int = 500, seed: int = 0,
                  grid: ArrayLike | None = None, level: float = 0.95) -> pd.DataFrame:
    """ROC curve on a common FPR grid with a pointwise bootstrap confidence band (binary only).

    Returns a DataFrame with columns ``fpr`` (the grid; default 101 points in [0, 1]), ``tpr`` (the
    curve, by the operating-point rule of ``sensitivity_at_fpr``: a step curve), ``tpr_lo`` and
    ``tpr_hi`` (percentile band from resampled test cases). Multi-class scores raise ValueError: plot
    one class against the rest with ``roc_with_band(y_true == c, scores[:, c])``.
    """
    check_boot(n_boot, level)
    prob = _Problem(y_true, scores)
    _binary_only("roc_with_band", prob)
    pos = prob.y == 1
    if pos.all() or not pos.any():
        raise ValueError("roc_with_band needs both classes in y_true")
    g = np.linspace(0.0, 1.0, 101) if grid is None else check_fprs(grid)
    boot = np.concatenate([prob.resampled(_counts(idx, prob.n), g)["sens"]
                           for idx in _index_chunks(prob.n, n_boot, seed)])
    boot = boot[~np.isnan(boot).any(axis=1)]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0) if len(boot) else (np.nan, np.nan)
    return pd.DataFrame({"fpr": g, "tpr": binary_tpr_at(pos, prob.s, g), "tpr_lo": lo, "tpr_hi": hi})


# ----------------------------------------------------------------------------- paired comparison
def paired_bootstrap_delta(y_true: ArrayLike, scores_a: ArrayLike, scores_b: ArrayLike, n_boot: int = 2000,
                           seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """AUC(a) - AUC(b) on the same test cases, with a paired bootstrap CI and two-sided p-value.

    Why paired: both models scored the SAME test images, so they share which cases are easy and which
    are hard. Resampling the cases once and scoring both models on that same resample keeps this
    correlation, and the spread of the difference is then much smaller than two separate intervals
    suggest (overlapping 95 % intervals do not mean "no difference"). Why over test cases: a study has
    a handful of training seeds but hundreds of test cases, so the test set is where a bootstrap has
    enough units to resample. (The interval therefore reflects test-set sampling, not retraining; use
    ``paired_bootstrap_delta_multi`` to average over several seeds.)

    Returns ``delta`` (full-test-set difference), ``lo``/``hi`` (percentile interval of the resampled
    differences d*), ``p`` = 2 * min(P(d* <= 0), P(d* >= 0)) clipped to [1 / n_valid, 1], plus
    ``auc_a``, ``auc_b``, ``n`` (test cases) and ``n_boot`` (resamples with both classes).
    A model compared with itself gives delta = lo = hi = 0 and p = 1.
    """
    return paired_bootstrap_delta_multi(y_true, [scores_a], [scores_b], n_boot, seed, level)


def paired_bootstrap_delta_multi(y_true: ArrayLike, list_of_scores_a: Sequence[ArrayLike],
                                 list_of_scores_b: Sequence[ArrayLike], n_boot: int = 2000, seed: int = 0,
                                 level: float = 0.95) -> dict[str, float]:
    """Paired bootstrap of mean AUC(a) - mean AUC(b) over several seeds' runs on one test set.

    Each list holds one score array per training seed (all for the same ``y_true``). Every bootstrap
    resample of the test cases is applied to every run; the difference is averaged over the runs
    before taking quantiles, so seed-to-seed noise is averaged out instead of inflating the interval.
    With equal-length lists this is the mean of the per-seed paired differences. Same keys as
    ``paired_bootstrap_delta`` (``auc_a`` / ``auc_b`` are means over runs); see there for why paired.
    """
    check_boot(n_boot, level)
    for name, lst in (("list_of_scores_a", list_of_scores_a), ("list_of_scores_b", list_of_scores_b)):
        if not isinstance(lst, (list, tuple)) or len(lst) == 0:
            raise TypeError(f"{name} must be a non-empty list of score arrays (one per seed)")
    probs_a = [_Problem(y_true, s, f"scores_a[{i}]") for i, s in enumerate(list_of_scores_a)]
    probs_b = [_Problem(y_true, s, f"scores_b[{i}]") for i, s in enumerate(list_of_scores_b)]
    ks = {p.k for p in probs_a + probs_b}
    if len(ks) != 1:
        raise ValueError(f"all score arrays must have the same number of classes, got {sorted(ks)}")
    y, n = probs_a[0].y, probs_a[0].n
    auc_a = float(np.mean([roc_auc(y, p.raw) for p in probs_a]))
    auc_b = float(np.mean([roc_auc(y, p.raw) for p in probs_b]))
    deltas = []
    for idx in _index_chunks(n, n_boot, seed):
        c = _counts(idx, n)
        deltas.append(np.mean([p.resampled(c)["auc"] for p in probs_a], axis=0)
                      - np.mean([p.resampled(c)["auc"] for p in probs_b], axis=0))
    d = np.concatenate(deltas)
    d = d[~np.isnan(d)]
    if d.size == 0:
        raise ValueError("no bootstrap resample had both classes; AUC is undefined")
    lo, hi = _percentile_ci(d, level)
    p = float(np.clip(2 * min(np.mean(d <= 0), np.mean(d >= 0)), 1 / d.size, 1.0))
    return {"delta": auc_a - auc_b, "lo": lo, "hi": hi, "p": p, "auc_a": auc_a, "auc_b": auc_b,
            "n": n, "n_boot": int(d.size)}


MIN_TEST_SEQUENCES = 3
"""Fewest test sequences (videos) from which detection and segmentation give an interval, a p-value and so a
verdict: with K sequences the test-set part of the variance rests on K - 1 degrees of freedom, and below 3 no
interval is honest (the t quantile for 1 degree of freedom at 95% is 12.7)."""
SEED_GATE = 0.10
"""Level of the check "the runs spread more than their test-set noise explains" (a chi-square test of the
between-run variance against the within-run test part). When it fires, the degrees of freedom are
Welch-Satterthwaite's for the seeds' spread (R - 1) and the test-set noise the runs share (``df_test``), with
the seeds' part taken at its upper confidence bound (:data:`SEED_SHRINK_GUARD`): t with R - 1 where seeds
dominate, more where the shared test noise does. Otherwise Satterthwaite's degrees of freedom from the
estimated components (docs/methods.md: why a gate, and what it costs in the mixed regime)."""
SEED_SHRINK_GUARD = 0.2
"""In the degrees of freedom only, the seeds' variance is read at its upper 80% confidence bound,
``S^2 (R-1) / chi2_{R-1}(0.2)``: three seeds whose spread happens to be small would otherwise lend the interval
the test set's many degrees of freedom exactly when they understate the seed noise (P(p < 0.0125) rose to
0.03 under a seed-dominated null without it)."""


def seeds_and_test_interval(per_run: ArrayLike, test_cov: ArrayLike, df_test: float, level: float = 0.95,
                            bounds: tuple[float, float] = (-np.inf, np.inf), t_reference: bool = True) -> dict[str, float]:
    """Interval and p-value for the mean over R runs (seeds) of a statistic scored on one shared test set.

    The design has two levels: seeds, and the test cases (or test sequences) every run is scored on. The
    variance of the mean ``m = mean_r d_r`` is ``s2/R + V_t + V_x/R``: ``s2`` the seed-to-seed variance, ``V_t``
    the test-set variance the runs share, ``V_x`` the part of each run's test-set noise that is its own (run x
    case). ``test_cov`` (R, R) is the test-set covariance of the runs' statistics, estimated on the data
    (influence values for AUC and frame means, a sequence bootstrap for FROC). From it:

    - ``B = 1'C1 / R^2``: the test-set variance of the mean over runs (``V_t + V_x / R``);
    - ``V_x = R/(R-1) (tr C / R - B)``: the run x case part;
    - the between-run sample variance ``S^2`` estimates ``s2 + V_x`` (it holds each run's own test noise),
      so the seed part is ``max(S^2 - V_x, 0)`` (it is not counted twice);
    - the variance of ``m`` is ``max(S^2 - V_x, 0) / R + B``.

    The reference distribution is Student's t. Its degrees of freedom, when the runs spread more than their
    test noise explains (chi-square test at :data:`SEED_GATE`): Welch-Satterthwaite's for the seeds' spread
    ``S^2 / R`` (R - 1, read at its upper 80% bound, :data:`SEED_SHRINK_GUARD`) and the shared test part
    ``B - V_x / R`` (``df_test``): t with R - 1 where the seeds dominate, as exact t needs. Otherwise
    Satterthwaite's combination of ``R - 1`` for the estimated seed part and ``df_test`` for the test part
    (``min(positives, negatives) - 1`` for AUC, ``K - 1`` for K test sequences).
    The same t gives ``p`` (two-sided, "the mean is 0"), so p is calibrated at every level Holm uses, not
    only at 0.05. ``t_reference=False`` reads normal quantiles instead (for comparison only).

    Returns ``mean, lo, hi, p, se, df, seed_var`` (the estimated ``s2``), ``test_var`` (``B``), ``n_runs``.
    ``lo``/``hi`` are clipped to ``bounds`` (the range the statistic can take). With one run there is no
    seed part to estimate: the interval holds the test-set noise only, on ``df_test`` degrees of freedom.
    A statistic that is identical on every run and resample (a model compared with itself) gets a
    zero-width interval and p = 1.
    """
    from scipy import stats  # scipy is a dependency of the suite; imported lazily here
    d = np.asarray(per_run, dtype=np.float64).ravel()
    c = np.atleast_2d(np.asarray(test_cov, dtype=np.float64))
    r = d.size
    if r == 0 or c.shape != (r, r):
        raise ValueError(f"per_run holds {r} runs but test_cov has shape {c.shape}; give an (R, R) covariance")
    if level <= 0 or level >= 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    mean = float(d.mean())
    b = max(float(c.sum()) / r ** 2, 0.0)
    df_test = max(float(df_test), 1.0)
    if r >= 2:
        s2 = float(d.var(ddof=1))
        v_x = max(r / (r - 1) * (float(np.trace(c)) / r - b), 0.0)
        seed_var = max(s2 - v_x, 0.0)
        var = seed_var / r + b
        detected = s2 > stats.chi2.ppf(1 - SEED_GATE, r - 1) / (r - 1) * v_x
        if detected:   # Welch-Satterthwaite: the seeds' spread on R - 1, the shared test part on df_test
            seeds = s2 / r * (r - 1) / stats.chi2.ppf(SEED_SHRINK_GUARD, r - 1)
            shared = max(b - v_x / r, 0.0)
            df = (seeds + shared) ** 2 / (seeds ** 2 / (r - 1) + shared ** 2 / df_test)
        else:
            denominator = (seed_var / r) ** 2 / (r - 1) + b ** 2 / df_test
            df = var ** 2 / denominator if denominator > 0 else df_test
    else:
        seed_var, var, df = float("nan"), b, df_test
    se = float(np.sqrt(var))
    if se <= 1e-15:
        lo = hi = mean
        p = 1.0 if abs(mean) <= 1e-15 else 0.0
    else:
        q = 1 - (1 - level) / 2
        crit = stats.t.ppf(q, df) if t_reference else stats.norm.ppf(q)
        lo, hi = mean - crit * se, mean + crit * se
        t = abs(mean) / se
        p = float(2 * (stats.t.sf(t, df) if t_reference else stats.norm.sf(t)))
    lo, hi = float(np.clip(lo, *bounds)), float(np.clip(hi, *bounds))
    return {"mean": mean, "lo": lo, "hi": hi, "p": min(max(p, 0.0), 1.0), "se": se, "df": float(df),
            "seed_var": seed_var, "test_var": b, "n_runs": r}


def auc_influence(y_true: ArrayLike, scores: ArrayLike) -> tuple[float, np.ndarray]:
    """AUC and each test case's influence on it (DeLong's structural components), so that the test-set
    covariance of two runs' AUCs on the same cases is ``psi_a @ psi_b``.

    For a binary task with m positives and n negatives, positive i has ``V10_i`` (the share of negatives it
    outscores, ties one half) and negative j has ``V01_j`` (the share of positives that outscore it); the
    influence is ``(V10_i - AUC) / sqrt(m (m - 1))`` and ``(V01_j - AUC) / sqrt(n (n - 1))``, so ``psi @ psi``
    is DeLong's variance. Multi-class (one-vs-rest) and multi-label AUCs are means over tasks, and so are
    their influences. Tasks with a single class are left out (their AUC is undefined).
    """
    y, s, _, k = checked_scores(y_true, scores, "scores")
    return _influence(y, s, k)


def _influence(y: np.ndarray, scores: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """:func:`auc_influence` on checked arrays (:func:`helpers.metrics.checked_scores`)."""
    aucs, psis = [], []
    for pos, s in binary_tasks(y, scores, k):
        pos = np.asarray(pos, dtype=bool)
        m, n = int(pos.sum()), int((~pos).sum())
        if m == 0 or n == 0:
            continue
        sp, sn = np.sort(s[pos]), np.sort(s[~pos])
        # negatives below each positive (ties one half), and positives above each negative
        v10 = (np.searchsorted(sn, s[pos], "left") + np.searchsorted(sn, s[pos], "right")) / (2 * n)
        v01 = 1 - (np.searchsorted(sp, s[~pos], "left") + np.searchsorted(sp, s[~pos], "right")) / (2 * m)
        auc = float(v10.mean())
        psi = np.zeros(len(y))
        psi[pos] = (v10 - auc) / np.sqrt(m * max(m - 1, 1))
        psi[~pos] = (v01 - auc) / np.sqrt(n * max(n - 1, 1))
        aucs.append(auc)
        psis.append(psi)
    if not aucs:
        raise ValueError("AUC is undefined: the labels hold a single class")
    return float(np.mean(aucs)), np.mean(psis, axis=0)


def _fewest_pairs(y: np.ndarray, k: int) -> float:
    """The fewest positive-negative pairs of any task: an AUC moves in steps of one over this."""
    tasks = [np.asarray(pos, dtype=bool) for pos, _ in binary_tasks(y, np.zeros((len(y), k)) if k > 2 or y.ndim == 2
                                                               else np.zeros(len(y)), k)]
    pairs = [int(p.sum()) * int((~p).sum()) for p in tasks if 0 < p.sum() < len(p)]
    return float(max(min(pairs), 1)) if pairs else 1.0


def _auc_df(y_true: ArrayLike, k: int) -> float:
    """Degrees of freedom of an AUC's test-set variance: the smaller class's size minus one (per task, the least)."""
    y = np.asarray(y_true)
    if y.ndim == 2:
        counts = [min(int(c.sum()), len(c) - int(c.sum())) for c in y.T]
    elif k == 2:
        counts = [min(int((y == 1).sum()), int((y != 1).sum()))]
    else:
        counts = [min(int((y == c).sum()), int((y != c).sum())) for c in range(k)]
    return float(max(min(c for c in counts if c > 0) - 1, 1)) if any(c > 0 for c in counts) else 1.0


def contrast_bootstrap(y_true: ArrayLike, arms: Sequence[Sequence[ArrayLike]], weights: Sequence[float],
                       n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                       small_r_correction: bool = True, scale: str = "auc") -> dict[str, float]:
    """A weighted sum of arms' mean AUCs, ``sum_a w_a * mean_r AUC(arm a, run r)``, with a paired two-level interval.

    Every arm holds one score array per run (seed), the same seeds in the same order in every arm, all
    scored on the same test cases ``y_true``. Examples: one arm with weight 1 is a mean AUC over seeds;
    two arms with weights (1, -1) a paired difference; four arms with (1, -1, -1, 1) a difference of two
    gaps, ``[a - b] - [c - d]``.

    Each run's contrast ``d_r = sum_a w_a AUC(a, r)`` and its per-case influence (:func:`auc_influence`, the
    arms' influences weighted alike, so what the arms share on a case cancels) give the test-set covariance
    of the runs; :func:`seeds_and_test_interval` then splits the runs' spread into seed noise and test noise
    without counting either twice, and reads Student's t on the degrees of freedom the seeds and test cases
    give. The interval is analytic (no resampling): the same data always give the same interval, ``n_boot``
    and ``seed`` are accepted for the callers' sake and unused. ``small_r_correction=False`` reads normal
    quantiles (for comparison only). Bounds are clipped to the range the contrast can take.

    Returns ``mean, lo, hi, p`` (two-sided, "the contrast is 0"), ``se, df, seed_var, test_var, n_runs``,
    ``n`` (test cases) and ``n_boot`` (0: no resampling).

    ``scale="logit"`` computes the same contrast on ``log(AUC / (1 - AUC))`` of every run (a scale that does
    not saturate near AUC 1: a drop from 0.99 to 0.98 weighs like one from 0.67 to 0.50), the influence values
    carried through by the delta method; an AUC of exactly 0 or 1 is moved half a pair inside.
    """
    if scale not in ("auc", "logit"):
        raise ValueError(f"scale must be 'auc' or 'logit', got {scale!r}")
    check_boot(n_boot, level, allow_zero=True)
    if not isinstance(arms, (list, tuple)) or not arms:
        raise TypeError("arms must be a non-empty list of arms, each a list of score arrays (one per seed)")
    if len(weights) != len(arms):
        raise ValueError(f"{len(weights)} weights for {len(arms)} arms")
    for a, arm in enumerate(arms):
        if not isinstance(arm, (list, tuple)) or not arm:
            raise TypeError(f"arms[{a}] must be a non-empty list of score arrays (one per seed)")
    r = len(arms[0])
    if any(len(arm) != r for arm in arms):
        raise ValueError(f"arms hold {[len(arm) for arm in arms]} runs; every arm needs the same seeds, paired by position")
    checked = [[checked_scores(y_true, s, f"arms[{a}][{i}]") for i, s in enumerate(arm)] for a, arm in enumerate(arms)]
    ks = {c[3] for arm in checked for c in arm}
    if len(ks) != 1:
        raise ValueError(f"all score arrays must have the same number of classes, got {sorted(ks)}")
    w = np.asarray(weights, dtype=np.float64)
    y, k = checked[0][0][0], checked[0][0][3]
    per_run, psi = np.zeros(r), np.zeros((r, len(y)))
    half_pair = 0.5 / _fewest_pairs(y, k)
    for wa, arm in zip(w, checked):
        for i, (_, s, _, _) in enumerate(arm):
            auc, infl = _influence(y, s, k)
            if scale == "logit":
                auc = min(max(auc, half_pair), 1 - half_pair)
                auc, infl = float(np.log(auc / (1 - auc))), infl / (auc * (1 - auc))
            per_run[i] += wa * auc
            psi[i] += wa * infl
    bounds = (np.minimum(w, 0).sum(), np.maximum(w, 0).sum()) if scale == "auc" else (-np.inf, np.inf)
    out = seeds_and_test_interval(per_run, psi @ psi.T, _auc_df(y, k), level, bounds, t_reference=small_r_correction)
    return {**out, "n": len(y), "n_boot": 0}


def cluster_mean_interval(values: ArrayLike, clusters: Sequence, level: float = 0.95,
                          bounds: tuple[float, float] = (-np.inf, np.inf), t_reference: bool = True) -> dict[str, float]:
    """Mean over runs of each run's mean over frames, with an interval over seeds and test *sequences*.

    ``values`` (R, F): one row per run, one column per test frame (every run on the same frames);
    ``clusters`` (F,): each frame's sequence. Frames of one video are not independent, so the test-set
    covariance comes from the sequences: the cluster-robust (CR1) sandwich ``K/(K-1) sum_k e_k e_k' / F^2``,
    ``e_rk`` the sum over sequence k of run r's deviations from its mean, and the test part has K - 1 degrees
    of freedom (the small-cluster correction: with 4 test videos the t quantile is 3.18, not 1.96). Below
    :data:`MIN_TEST_SEQUENCES` sequences no interval and no p are given (NaN).
    """
    v = np.atleast_2d(np.asarray(values, dtype=np.float64))
    r, f = v.shape
    if f != len(clusters) or f == 0:
        raise ValueError(f"values hold {f} frames but clusters {len(clusters)}; give one sequence per frame.")
    names, ids = np.unique(np.asarray(clusters, dtype=str), return_inverse=True)
    k = len(names)
    dev = v - v.mean(axis=1, keepdims=True)
    e = np.stack([np.bincount(ids, weights=row, minlength=k) for row in dev]) / f     # (R, K)
    cov = e @ e.T * (k / (k - 1) if k > 1 else 1.0)
    out = seeds_and_test_interval(v.mean(axis=1), cov, k - 1, level, bounds, t_reference)
    if k < MIN_TEST_SEQUENCES:
        out.update(lo=float("nan"), hi=float("nan"), p=float("nan"))
    return {**out, "n_frames": f, "n_sequences": k}


def replicate_cov(replicates: np.ndarray, n_clusters: int) -> np.ndarray:
    """Test-set covariance (R, R) of R runs' statistics from bootstrap replicates (R, B) that resampled
    ``n_clusters`` sequences (the same draw for every run), scaled by K/(K-1): a bootstrap over K clusters
    shrinks a variance by (K-1)/K."""
    reps = np.asarray(replicates, dtype=np.float64)
    reps = reps[:, ~np.isnan(reps).any(axis=0)]
    if reps.shape[1] < 2:
        return np.full((reps.shape[0], reps.shape[0]), np.nan)
    cov = np.atleast_2d(np.cov(reps))
    return cov * (n_clusters / (n_clusters - 1) if n_clusters > 1 else 1.0)


def two_level_bootstrap(y_true: ArrayLike, runs: Sequence[ArrayLike], paired_with: Sequence[ArrayLike] | None = None,
                        n_boot: int = 2000, seed: int = 0, level: float = 0.95,
                        small_r_correction: bool = True) -> dict[str, float]:
    """Mean AUC over several runs (seeds) on one test set, with an interval over seeds *and* test cases.

    The interval holds both the test-set noise and the seed-to-seed noise (a learning curve from 3 seeds
    should not look as certain as one from 30), each counted once, with Student's t on the degrees of
    freedom they give (:func:`contrast_bootstrap`, :func:`seeds_and_test_interval`). With ``paired_with`` (one score array per run of the other arm, same
    seeds in the same order) the statistic is the mean paired difference AUC(run) - AUC(paired run),
    and ``p`` is the two-sided p-value of "no difference" from the same t (``nan`` without ``paired_with``).
    A thin wrapper of :func:`contrast_bootstrap` (one arm with weight 1, or two with weights 1 and -1):
    the numbers are the same. Keys: ``mean, lo, hi, p, se, df, seed_var, test_var, n_runs, n, n_boot``.
    """
    if not isinstance(runs, (list, tuple)) or not runs:
        raise TypeError("runs must be a non-empty list of score arrays (one per seed)")
    if paired_with is not None and len(paired_with) != len(runs):
        raise ValueError(f"paired_with holds {len(paired_with)} runs but runs holds {len(runs)}; pair them by seed")
    arms, weights = ([runs], [1.0]) if paired_with is None else ([runs, list(paired_with)], [1.0, -1.0])
    out = contrast_bootstrap(y_true, arms, weights, n_boot, seed, level, small_r_correction)
    if paired_with is None:
        out["p"] = float("nan")
    return out
