"""AUC, accuracy and sensitivity at a fixed false-positive rate: the point estimates (their bootstrap
confidence intervals are :mod:`helpers.bootstrap`).

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

Point estimates come from scikit-learn (``roc_auc_score``, ``accuracy_score``, ``roc_curve``);
:mod:`helpers.bootstrap` resamples the same quantities for confidence intervals and paired tests.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score, roc_curve

from .types import ArrayLike, label_array

FPR_TOL = 1e-9
"""ROC points with FPR <= fpr + FPR_TOL count as "at or below" the requested rate (float slack)."""


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
    y = label_array(_to_numpy(y_true), "y_true labels")
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


def checked_scores(y_true, scores, name: str = "scores") -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
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


def check_fprs(fprs) -> np.ndarray:
    f = np.atleast_1d(np.asarray(fprs, dtype=np.float64))
    if f.ndim != 1 or f.size == 0 or np.isnan(f).any() or f.min() < 0 or f.max() > 1:
        raise ValueError(f"false-positive rates must be numbers in [0, 1], got {fprs!r}")
    return f


def check_boot(n_boot: int, level: float, allow_zero: bool = False) -> None:
    if int(n_boot) != n_boot or n_boot < (0 if allow_zero else 1):
        raise ValueError(f"n_boot must be an integer >= {0 if allow_zero else 1}, got {n_boot!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")


def binary_tasks(y: np.ndarray, s: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Binary (is_positive, score) tasks: one for binary data, one per class (one-vs-rest) for
    multi-class data, one per finding for multi-label data."""
    if y.ndim == 2:
        return [(y[:, j] == 1, s[:, j]) for j in range(k)]
    if k == 2:
        return [(y == 1, s)]
    return [(y == c, s[:, c]) for c in range(k)]


def nanmean_quiet(a, axis=None):
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


def binary_tpr_at(pos: np.ndarray, s: np.ndarray, fprs: np.ndarray) -> np.ndarray:
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
    y, s, _, k = checked_scores(y_true, scores)
    return float(nanmean_quiet([_binary_auc(p, sc) for p, sc in binary_tasks(y, s, k)]))


def accuracy(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Fraction of correct predictions: class 1 when its score > 0.5 (binary), else the argmax class.

    Multi-label: each finding is predicted present when its probability > 0.5, and the accuracy is the
    mean over findings of the per-finding accuracy (MedMNIST's evaluator does the same).
    """
    y, s, _, k = checked_scores(y_true, scores)
    if y.ndim == 2:
        return float(correct_mask(y, s, k).mean())
    return float(accuracy_score(y, _predict(s, k)))


def _predict(s: np.ndarray, k: int) -> np.ndarray:
    return (s > 0.5).astype(np.int64) if k == 2 else s.argmax(axis=1)


def correct_mask(y: np.ndarray, s: np.ndarray, k: int) -> np.ndarray:
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
    y, s, _, k = checked_scores(y_true, scores)
    f = check_fprs(fpr)
    if f.size != 1:
        raise ValueError(f"fpr must be a single number, got {fpr!r}")
    return float(nanmean_quiet([binary_tpr_at(p, sc, f)[0] for p, sc in binary_tasks(y, s, k)]))


def auc_from_ranks(y_true: ArrayLike, scores: ArrayLike) -> float:
    """Binary AUC by the Mann-Whitney rank formula (ties get average ranks).

    ``AUC = (R_pos - n_pos (n_pos + 1) / 2) / (n_pos n_neg)``, where ``R_pos`` is the sum of the
    positives' ranks among all scores. Identical to ``roc_auc``; shown because it explains why AUC is
    "the probability that a random positive scores above a random negative (ties count one half)".
    """
    y, s, _, k = checked_scores(y_true, scores)
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
