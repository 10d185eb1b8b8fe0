"""AUC, accuracy, sensitivity at a fixed false-positive rate, and bootstrap confidence intervals.

Tajbakhsh et al. (2016) compare models by ROC curves, by the sensitivity read off the ROC curve at
10 %, 15 % and 20 % false-positive rate, and by 95 % confidence intervals. This module computes all of
these for the notebooks.

Conventions
-----------
``y_true``
    Integer class indices, shape ``(N,)`` (an ``(N, 1)`` column, as MedMNIST stores labels, is
    accepted too); or, for a multi-label task (ChestMNIST), a 0/1 matrix ``(N, L)`` with one column
    per finding.
``scores``
    ``(N,)``: score (usually the probability) of class 1 for a binary task; or ``(N, K)`` class
    probabilities for ``K`` classes. An ``(N, 2)`` array is a binary task and column 1 is used.
    Multi-label: ``(N, L)``, one probability per finding. NumPy arrays, lists and torch tensors are
    all accepted.

Multi-label tasks are scored per finding and averaged over findings (MedMNIST's evaluator does the
same: AUC per finding, accuracy at 0.5 per finding). Multi-class tasks are scored one-vs-rest and
macro-averaged (unweighted mean over classes). A class that is absent from ``y_true`` has no defined one-vs-rest ROC curve and is left out of the average;
with fewer than two classes present every metric except accuracy is ``nan``.

Point estimates come from scikit-learn (``roc_auc_score``, ``accuracy_score``, ``roc_curve``). The
bootstrap uses a vectorised, rank-based computation of the same quantities (Mann-Whitney AUC with
ties counted as one half, and the same ROC operating-point rule) over a whole matrix of resamples at
once; the tests check it against scikit-learn resample by resample.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from .types import ArrayLike

FPR_TOL = 1e-9
"""ROC points with FPR <= fpr + FPR_TOL count as "at or below" the requested rate (float slack)."""

_CHUNK_ELEMENTS = 2_000_000  # resamples are processed in blocks of about this many (row, case) cells

MetricLike = Callable[[np.ndarray, np.ndarray], float] | str


# ----------------------------------------------------------------------------- input handling
def _to_numpy(x) -> np.ndarray:
    """NumPy view of an array-like or a torch tensor (any device, any float dtype)."""
    if hasattr(x, "detach"):  # a torch tensor; duck-typed so this module never imports torch
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.double()  # bfloat16 / float16 have no NumPy equivalent
        return x.numpy()
    return np.asarray(x)


def _labels(y_true) -> np.ndarray:
    """Validated int64 labels: class indices (N,), or a multi-label 0/1 matrix (N, L) with L >= 2."""
    y = _to_numpy(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise ValueError(f"y_true must be class indices of shape (N,) or a 0/1 matrix (N, L) of findings, "
                         f"got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number):
        raise TypeError(f"y_true must be numeric class indices, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating):
        n_nan = int(np.isnan(y).sum())
        if n_nan:
            raise ValueError(f"y_true contains {n_nan} NaN label(s) out of {len(y)}")
        if not np.all(y == np.round(y)):
            raise ValueError("y_true must hold integer class indices; it has non-integer values")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"y_true must hold class indices >= 0; found {int(y.min())}")
    if y.ndim == 2 and y.size and y.max() > 1:
        raise ValueError(f"y_true of shape {y.shape} is a multi-label matrix, so it must hold 0/1; found {int(y.max())}")
    return y


def auc_defined(y_true: ArrayLike) -> bool:
    """Whether AUC is defined on these labels: two classes occur (multi-label: some finding is both
    present and absent)."""
    y = _labels(y_true)
    if y.ndim == 2:
        positives = y.sum(axis=0)
        return bool(((positives > 0) & (positives < len(y))).any())
    return len(np.unique(y)) >= 2


def _check(y_true, scores, name: str = "scores") -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate inputs; return ``(y, s, raw, k)``.

    ``s`` is ``(N,)`` for a binary task (k == 2) and ``(N, K)`` otherwise; ``raw`` is the validated
    scores in the caller's layout (for user-supplied metric functions). Multi-label (``y`` of shape
    (N, L)): ``s`` is (N, L), one probability per finding, and ``k`` is L.
    """
    y = _labels(y_true)
    raw = _to_numpy(scores)
    if not (np.issubdtype(raw.dtype, np.number) or raw.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {raw.dtype}")
    raw = raw.astype(np.float64)
    s = raw[:, 0] if raw.ndim == 2 and raw.shape[1] == 1 else raw
    if s.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, K), got shape {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"length mismatch: y_true has {len(y)} cases but {name} has {len(s)} rows")
    if len(y) == 0:
        raise ValueError(f"empty input: y_true and {name} have no cases")
    bad = np.isnan(s)
    if bad.any():
        rows = int(bad.reshape(len(s), -1).any(axis=1).sum())
        raise ValueError(f"{name} contain {int(bad.sum())} NaN value(s) in {rows} of {len(s)} rows; "
                         "remove or fix those cases first")
    if y.ndim == 2:
        if s.shape != y.shape:
            raise ValueError(f"y_true is multi-label with {y.shape[1]} findings, so {name} must have shape "
                             f"{y.shape} (one probability per finding), got {s.shape}")
        return y, s, raw, y.shape[1]
    k = 2 if s.ndim == 1 else s.shape[1]
    if k < 2:
        raise ValueError(f"{name} has shape {s.shape}: need one column per class (at least 2)")
    if y.max() >= k:
        if s.ndim == 1:
            msg = (f"{name} is 1-D (binary: the score of class 1) but y_true has labels up to "
                   f"{int(y.max())}; pass (N, K) class probabilities for K classes")
        else:
            msg = (f"{name} has {k} columns (one per class) but y_true has label {int(y.max())}; "
                   f"need at least {int(y.max()) + 1} columns")
        raise ValueError(msg)
    if s.ndim == 2 and k == 2:
        s = s[:, 1]
    return y, s, raw, k


def _check_fprs(fprs) -> np.ndarray:
    f = np.atleast_1d(np.asarray(fprs, dtype=np.float64))
    if f.ndim != 1 or f.size == 0 or np.isnan(f).any() or f.min() < 0 or f.max() > 1:
        raise ValueError(f"false-positive rates must be numbers in [0, 1], got {fprs!r}")
    return f


def _check_boot(n_boot: int, level: float, allow_zero: bool = False) -> None:
    if int(n_boot) != n_boot or n_boot < (0 if allow_zero else 1):
        raise ValueError(f"n_boot must be an integer >= {0 if allow_zero else 1}, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")


def _tasks(y: np.ndarray, s: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Binary (is_positive, score) tasks: one for binary data, one per class (one-vs-rest) for
    multi-class data, one per finding for multi-label data."""
    if y.ndim == 2:
        return [(y[:, j] == 1, s[:, j]) for j in range(k)]
    if k == 2:
        return [(y == 1, s)]
    return [(y == c, s[:, c]) for c in range(k)]


def _nanmean(a, axis=None):
    """``np.nanmean`` that returns nan quietly when everything is nan."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(a, dtype=np.float64), axis=axis)


def sens_key(fpr: float) -> str:
    """Dictionary key for the sensitivity at ``fpr``: 0.10 -> ``"sens@10"``, 0.125 -> ``"sens@12.5"``."""
    return f"sens@{fpr * 100:g}"


# ----------------------------------------------------------------------------- point estimates
def _binary_auc(pos: np.ndarray, s: np.ndarray) -> float:
    n_pos = int(pos.sum())
    if n_pos == 0 or n_pos == len(pos):
        return float("nan")
    return float(roc_auc_score(pos, s))


def _binary_tpr_at(pos: np.ndarray, s: np.ndarray, fprs: np.ndarray) -> np.ndarray:
    """Max TPR over ROC points with FPR <= each fpr (scikit-learn's ROC curve, all thresholds)."""
    n_pos = int(pos.sum())
    if n_pos == 0 or n_pos == len(pos):
        return np.full(len(fprs), np.nan)
    fpr, tpr, _ = roc_curve(pos, s, drop_intermediate=False)
    # fpr and tpr both rise along the curve, so the best point is the last one with FPR <= f.
    return tpr[np.searchsorted(fpr, fprs + FPR_TOL, side="right") - 1]


def roc_auc(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (scikit-learn ``roc_auc_score``).

    Binary: the usual AUC. Multi-class: one-vs-rest AUC per class, macro-averaged (equal to
    ``roc_auc_score(..., multi_class="ovr", average="macro")`` when every class is present).
    Returns ``nan`` (instead of raising) when fewer than two classes occur in ``y_true``; classes
    absent from ``y_true`` are left out of the macro average.
    """
    y, s, _, k = _check(y_true, scores)
    return float(_nanmean([_binary_auc(p, sc) for p, sc in _tasks(y, s, k)]))


def accuracy(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Fraction of correct predictions: class 1 when its score > 0.5 (binary), else the argmax class.

    Multi-label: each finding is predicted present when its probability > 0.5, and the accuracy is the
    mean over findings of the per-finding accuracy (MedMNIST's evaluator does the same).
    """
    y, s, _, k = _check(y_true, scores)
    if y.ndim == 2:
        return float(_correct(y, s, k).mean())
    return float(accuracy_score(y, _predict(s, k)))


def _predict(s: np.ndarray, k: int) -> np.ndarray:
    return (s > 0.5).astype(np.int64) if k == 2 else s.argmax(axis=1)


def _correct(y: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
    """Per case: 1.0 when predicted right (multi-label: the share of its findings predicted right)."""
    if y.ndim == 2:
        return ((s > 0.5) == (y == 1)).mean(axis=1)
    return (_predict(s, k) == y).astype(np.float64)


def sensitivity_at_fpr(y_true: ArrayLike, scores: ArrayLike, fpr: float) -> float:
    """Sensitivity (true-positive rate) of the ROC curve at false-positive rate ``fpr``.

    Operating-point rule (no interpolation): the highest TPR among the ROC curve's points whose FPR is
    at most ``fpr`` -- the best threshold a reader could actually pick without exceeding the allowed
    false-positive rate. Equivalently, with ``m = floor(fpr * n_negatives)``, the fraction of positives
    scoring strictly above the (m+1)-th highest negative score (ties with that negative are not
    counted, because they would push the FPR over ``fpr``). This step rule is conservative; linear
    interpolation between ROC points would describe randomised thresholds instead.

    Multi-class: macro average of the one-vs-rest sensitivities. ``nan`` with fewer than two classes.
    """
    y, s, _, k = _check(y_true, scores)
    f = _check_fprs(fpr)
    if f.size != 1:
        raise ValueError(f"fpr must be a single number, got {fpr!r}")
    return float(_nanmean([_binary_tpr_at(p, sc, f)[0] for p, sc in _tasks(y, s, k)]))


def auc_from_ranks(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Binary AUC by the Mann-Whitney rank formula (ties get average ranks).

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``, where ``R_pos`` is the sum of the
    positives' ranks among all scores. Identical to ``roc_auc``; shown because it explains why AUC is
    "the probability that a random positive scores above a random negative (ties count one half)".
    """
    y, s, _, k = _check(y_true, scores)
    if y.ndim == 2 or k != 2:
        raise ValueError(f"auc_from_ranks is binary only; these scores have {k} {'findings' if y.ndim == 2 else 'classes'} "
                         "(use roc_auc)")
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, value_of, ties = np.unique(s, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(ties) - (ties - 1) / 2  # 1-based rank of each distinct score, ties averaged
    r_pos = average_rank[value_of][pos].sum()
    return float((r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


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
        self.y, self.s, self.raw, self.k = _check(y_true, scores, name)
        self.n = len(self.y)
        self.tasks = [_Ranked.build(p, sc) for p, sc in _tasks(self.y, self.s, self.k)]
        self.correct = _correct(self.y, self.s, self.k)

    def resampled(self, counts: np.ndarray, fprs: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """AUC (B,), accuracy (B,) and, if ``fprs`` given, sensitivities (B, F) for counts (N, B)."""
        per_task = [_task_metrics(*t.group_weights(counts), fprs) for t in self.tasks]
        out = {"auc": _nanmean([auc for auc, _ in per_task], axis=0),
               "acc": self.correct @ counts / self.n}
        if fprs is not None:
            out["sens"] = _nanmean([sens for _, sens in per_task], axis=0)
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
    _check_boot(n_boot, 0.5)
    spec = _parse_metric(metric)
    prob = _Problem(y_true, scores)
    out = []
    for idx in _index_chunks(prob.n, n_boot, seed):
        single = _single_class(prob.y, idx)
        if callable(spec):
            vals = [np.nan if one else float(spec(prob.y[r], prob.raw[r])) for r, one in zip(idx, single)]
        else:
            kind, f = spec
            res = prob.resampled(_counts(idx, prob.n), None if f is None else _check_fprs(f))
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
    _check_boot(n_boot, level)
    return _percentile_ci(bootstrap_distribution(y_true, scores, metric, n_boot, seed), level)


COLLAPSE_SD = 1e-6
"""A model whose test scores spread less than this (standard deviation) gives every image the same score."""


def score_spread(scores: ArrayLike) -> float:
    """Standard deviation of the scores over cases (the largest over classes for a score matrix)."""
    s = np.asarray(_to_numpy(scores), dtype=np.float64)
    s = s.reshape(len(s), -1)
    return float(s.std(axis=0).max()) if len(s) else float("nan")


def is_collapsed(score_sd: float) -> bool:
    """True when a model's scores are (numerically) constant: it ranks nothing, whatever its AUC says."""
    return bool(not np.isfinite(score_sd) or score_sd < COLLAPSE_SD)


def score_metrics(y_true: ArrayLike, scores: ArrayLike, n_boot: int = 1000, seed: int = 0,
                  fprs: Sequence[float] = (0.10, 0.15, 0.20), level: float = 0.95) -> dict[str, float]:
    """Every headline number with its bootstrap confidence interval, in one dictionary.

    Keys: ``n`` (test cases), ``score_sd`` (spread of the scores: see :func:`is_collapsed`), ``auc``, ``auc_lo``, ``auc_hi``, ``acc``, ``acc_lo``, ``acc_hi`` and, for
    each fpr, ``sens@10``, ``sens@10_lo``, ``sens@10_hi`` (the key holds the FPR in percent). All
    metrics share ONE set of bootstrap resamples. ``n_boot=0`` skips the bootstrap (bounds are nan).
    """
    _check_boot(n_boot, level, allow_zero=True)
    f = _check_fprs(fprs)
    prob = _Problem(y_true, scores)
    point = {"auc": roc_auc(prob.y, prob.raw), "acc": accuracy(prob.y, prob.raw)}
    point.update({sens_key(x): v for x, v in zip(f, _nanmean(
        [_binary_tpr_at(p, sc, f) for p, sc in _tasks(prob.y, prob.s, prob.k)], axis=0))})
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
    _check_boot(n_boot, level)
    prob = _Problem(y_true, scores)
    _binary_only("roc_with_band", prob)
    pos = prob.y == 1
    if pos.all() or not pos.any():
        raise ValueError("roc_with_band needs both classes in y_true")
    g = np.linspace(0.0, 1.0, 101) if grid is None else _check_fprs(grid)
    boot = np.concatenate([prob.resampled(_counts(idx, prob.n), g)["sens"]
                           for idx in _index_chunks(prob.n, n_boot, seed)])
    boot = boot[~np.isnan(boot).any(axis=1)]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha], axis=0) if len(boot) else (np.nan, np.nan)
    return pd.DataFrame({"fpr": g, "tpr": _binary_tpr_at(pos, prob.s, g), "tpr_lo": lo, "tpr_hi": hi})


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
    _check_boot(n_boot, level)
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


def two_level_bootstrap(y_true: ArrayLike, runs: Sequence[ArrayLike], paired_with: Sequence[ArrayLike] | None = None,
                        n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict[str, float]:
    """Mean AUC over several runs (seeds) on one test set, with an interval over seeds *and* test cases.

    Each bootstrap replicate resamples the test cases (one resample applied to every run) and, on
    top, draws the runs with replacement, so the interval holds both the test-set noise and the
    seed-to-seed noise (a learning curve from 3 seeds should not look as certain as one from 30).
    With ``paired_with`` (one score array per run of the other arm, same seeds in the same order)
    the statistic is the mean paired difference AUC(run) - AUC(paired run), and ``p`` is the
    two-sided bootstrap p-value of "no difference". Keys: ``mean, lo, hi, p, n_runs, n, n_boot``.
    """
    _check_boot(n_boot, level)
    if not isinstance(runs, (list, tuple)) or not runs:
        raise TypeError("runs must be a non-empty list of score arrays (one per seed)")
    if paired_with is not None and len(paired_with) != len(runs):
        raise ValueError(f"paired_with holds {len(paired_with)} runs but runs holds {len(runs)}; pair them by seed")
    probs = [_Problem(y_true, s, f"runs[{i}]") for i, s in enumerate(runs)]
    others = [] if paired_with is None else [_Problem(y_true, s, f"paired_with[{i}]")
                                             for i, s in enumerate(paired_with)]
    y, n, r = probs[0].y, probs[0].n, len(probs)
    point = float(np.mean([roc_auc(y, p.raw) for p in probs]))
    if others:
        point -= float(np.mean([roc_auc(y, p.raw) for p in others]))
    pick_rng = np.random.default_rng([seed, 1])
    values = []
    for idx in _index_chunks(n, n_boot, seed):
        c = _counts(idx, n)
        per_run = np.stack([p.resampled(c)["auc"] for p in probs])            # (R, B)
        if others:
            per_run = per_run - np.stack([p.resampled(c)["auc"] for p in others])
        pick = pick_rng.integers(0, r, size=(r, per_run.shape[1]))
        values.append(np.take_along_axis(per_run, pick, axis=0).mean(axis=0))
    d = np.concatenate(values)
    d = d[~np.isnan(d)]
    if d.size == 0:
        raise ValueError("no bootstrap resample had both classes; AUC is undefined")
    lo, hi = _percentile_ci(d, level)
    p = float(np.clip(2 * min(np.mean(d <= 0), np.mean(d >= 0)), 1 / d.size, 1.0)) if others else float("nan")
    return {"mean": point, "lo": lo, "hi": hi, "p": p, "n_runs": r, "n": n, "n_boot": int(d.size)}


def format_ci(value: float, lo: float, hi: float, digits: int = 3) -> str:
    """``0.912 (0.890-0.933)``; the interval is omitted when it was not computed."""
    if np.isnan(lo) or np.isnan(hi):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def results_table(runs: dict[str, dict[str, float]], fprs: Sequence[float] = (0.10,)) -> pd.DataFrame:
    """One row per run: test AUC, accuracy and sensitivity at each FPR, each with its 95% CI."""
    rows = {}
    for label, m in runs.items():
        row = {"test AUC (95% CI)": format_ci(m["auc"], m["auc_lo"], m["auc_hi"]),
               "accuracy (95% CI)": format_ci(m["acc"], m["acc_lo"], m["acc_hi"])}
        for fpr in fprs:
            key = sens_key(fpr)
            if key in m:
                row[f"sensitivity at {fpr:.0%} FPR (95% CI)"] = format_ci(m[key], m[f"{key}_lo"], m[f"{key}_hi"])
        row["test images"] = int(m.get("n", 0))
        rows[label] = row
    return pd.DataFrame.from_dict(rows, orient="index")
