"""FROC scoring of polyp detections: sensitivity against false positives per frame.

Definitions (the study's, for polyp detection):

- A *polyp* is one 8-connected component of a frame's mask (:func:`label_polyps`); components
  smaller than ``min_area`` pixels are annotation speckle (CVC-ClinicDB masks carry single stray
  pixels) and are not counted as polyps. Polyps are counted per frame: the same polyp seen in
  ten frames of a video is ten polyp instances.
- A candidate ``(y, x, score)`` hits a polyp when it falls on the polyp's pixels or within
  ``tolerance`` px of them (the study: a detection inside the polyp or close to its boundary counts;
  the detectors of :mod:`helpers.detection` use a tolerance tied to the detection window, see
  :data:`helpers.detection.experiment.MATCH_TOLERANCE`). A candidate within the tolerance of two polyps hits
  the nearer one. The highest-scoring hit of each polyp is its *true positive*; further hits on the
  same polyp are neither true nor false positives (the study counted a polyp as detected once). A
  candidate on a mask pixel that belongs to no counted polyp (a speckle) is ignored the same way.
- A candidate that hits no polyp and is not on a mask pixel is a *false positive*.
- At a score threshold ``t``, a polyp is detected when its true positive scores ``>= t``;
  the curve is sensitivity (detected polyps / all polyps) against false positives with
  score ``>= t`` divided by the number of frames.

Confidence bands come from a bootstrap over sequences (videos): sequences are resampled with
replacement and frames, polyps, true and false positives are recounted. Two strategies are compared by
:func:`paired_froc_difference`, which resamples the sequences and seeds jointly for both (paired).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from ..bootstrap import MIN_TEST_SEQUENCES, replicate_cov, seeds_and_test_interval

MIN_POLYP_AREA = 25          # px; smaller mask components are annotation speckle, not polyps
FP_RATES = (0.1, 0.5, 1.0)   # false positives per frame at which sensitivity is read (the study's range)
FP_GRID = np.logspace(-2, 1, 31)   # the rates a whole FROC curve is drawn at
_EIGHT = np.ones((3, 3), dtype=bool)
_TOL = 1e-9                  # relative tolerance when comparing FP/frame with a rate

Candidate = tuple[int, int, float]


def _as_numpy_mask(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """A boolean numpy copy of one (H, W) mask (tensor or array, any device)."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    return np.asarray(mask).astype(bool, copy=False)


def label_polyps(mask: np.ndarray | torch.Tensor, min_area: int = MIN_POLYP_AREA) -> tuple[np.ndarray, int]:
    """Label the polyps of one (H, W) mask: 8-connected components of at least ``min_area`` px.

    Returns ``(labels, n)``: int32 labels 1..n for polyps, 0 for background and speckle.
    """
    labels, n = ndimage.label(_as_numpy_mask(mask), structure=_EIGHT)
    if n == 0:
        return labels.astype(np.int32), 0
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    keep = areas >= min_area
    keep[0] = False
    new_id = np.zeros(n + 1, dtype=np.int32)
    new_id[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return new_id[labels], int(keep.sum())


def _frame_ids(n: int, frame_ids: Sequence[int] | None) -> list[int]:
    """The frame numbers to record (default 0..n-1), checked for length."""
    ids = list(range(n)) if frame_ids is None else [int(f) for f in frame_ids]
    if len(ids) != n:
        raise ValueError(f"frame_ids has {len(ids)} entries for {n} masks.")
    return ids


def _sequences(n: int, sequences: Sequence[str] | None, ids: list[int]) -> list[str]:
    """One sequence name per frame (default: each frame its own sequence)."""
    seqs = [str(f) for f in ids] if sequences is None else [str(s) for s in sequences]
    if len(seqs) != n:
        raise ValueError(f"sequences has {len(seqs)} entries for {n} masks.")
    return seqs


def make_frame_table(masks: Sequence | np.ndarray | torch.Tensor, sequences: Sequence[str] | None = None,
                     frame_ids: Sequence[int] | None = None, min_area: int = MIN_POLYP_AREA) -> pd.DataFrame:
    """One row per evaluated frame: ``frame``, ``sequence``, ``n_polyps``.

    ``masks`` are the (H, W) masks of the evaluated frames (an (N, H, W) tensor or array, or a list);
    ``sequences`` and ``frame_ids`` align with them. This table, not the candidate table, fixes how
    many frames and polyps the FROC curve divides by.
    """
    ids = _frame_ids(len(masks), frame_ids)
    seqs = _sequences(len(masks), sequences, ids)
    counts = [label_polyps(m, min_area)[1] for m in masks]
    return pd.DataFrame({"frame": ids, "sequence": seqs, "n_polyps": counts})


def hit_map(labels: np.ndarray, tolerance: float = 0.0) -> np.ndarray:
    """int32 (H, W): the polyp a candidate at each pixel hits (0: none), within ``tolerance`` px.

    A pixel on a polyp hits that polyp; with ``tolerance > 0`` a pixel off every polyp hits the
    nearest polyp pixel's polyp when it lies at most ``tolerance`` px (Euclidean) from it.
    """
    if tolerance <= 0 or not labels.any():
        return labels.astype(np.int32)
    dist, (iy, ix) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return np.where(dist <= tolerance, labels[iy, ix], 0).astype(np.int32)


def _match_frame(cands: Iterable[Candidate], labels: np.ndarray, mask: np.ndarray,
                 tolerance: float = 0.0) -> list[tuple]:
    """(y, x, score, is_tp, is_fp, component) for one frame's candidates (component 0 = none)."""
    cands = sorted(((int(y), int(x), float(s)) for y, x, s in cands), key=lambda c: -c[2])
    h, w = labels.shape
    hits = hit_map(labels, tolerance) if cands else labels
    seen: set[int] = set()
    rows = []
    for y, x, s in cands:
        yy, xx = min(max(y, 0), h - 1), min(max(x, 0), w - 1)
        comp = int(hits[yy, xx])
        is_tp = comp > 0 and comp not in seen
        is_fp = comp == 0 and not mask[yy, xx]
        seen.add(comp)
        rows.append((y, x, s, is_tp, is_fp, comp))
    return rows


def match_candidates(candidates_per_frame: Sequence[Iterable[Candidate]],
                     masks: Sequence | np.ndarray | torch.Tensor, sequences: Sequence[str] | None = None,
                     frame_ids: Sequence[int] | None = None, min_area: int = MIN_POLYP_AREA,
                     tolerance: float = 0.0) -> pd.DataFrame:
    """Label every candidate as true positive, false positive or neither.

    ``candidates_per_frame[i]`` holds ``(y, x, score)`` tuples in frame pixel coordinates for the
    frame whose mask is ``masks[i]`` (coordinates outside the frame are clipped to it).
    Returns one row per candidate, columns ``frame, sequence, y, x, score, is_tp, is_fp, polyp_id``;
    ``polyp_id`` numbers polyps 0, 1, ... in frame order over all frames, -1 off any polyp.
    A polyp hit several times gets one true positive (its best-scoring hit); the other hits and hits
    on speckle are neither true nor false positives. A candidate hits a polyp on its pixels or within
    ``tolerance`` px of them (:func:`hit_map`).
    """
    if len(candidates_per_frame) != len(masks):
        raise ValueError(f"{len(candidates_per_frame)} candidate lists for {len(masks)} masks.")
    ids = _frame_ids(len(masks), frame_ids)
    seqs = _sequences(len(masks), sequences, ids)
    rows, first_id = [], 0
    for cands, mask, fid, seq in zip(candidates_per_frame, masks, ids, seqs):
        mask_np = _as_numpy_mask(mask)
        labels, n = label_polyps(mask_np, min_area)
        for y, x, s, tp, fp, comp in _match_frame(cands, labels, mask_np, tolerance):
            rows.append((fid, seq, y, x, s, tp, fp, first_id + comp - 1 if comp > 0 else -1))
        first_id += n
    columns = ["frame", "sequence", "y", "x", "score", "is_tp", "is_fp", "polyp_id"]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"frame": int, "sequence": str, "y": int, "x": int, "score": float,
                         "is_tp": bool, "is_fp": bool, "polyp_id": int})


def _scored(matches: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Scores (descending, stable) and is_tp flags of the rows that are TP or FP."""
    rows = matches[matches["is_tp"] | matches["is_fp"]]
    scores = rows["score"].to_numpy(dtype=float)
    order = np.argsort(-scores, kind="stable")
    return scores[order], rows["is_tp"].to_numpy(dtype=bool)[order]


def froc_curve(matches: pd.DataFrame, n_frames: int, n_polyps: int) -> pd.DataFrame:
    """The FROC curve: one row per distinct score threshold, from high to low.

    Columns ``threshold, fp_per_frame, sensitivity, n_tp, n_fp``; the first row is the threshold
    ``+inf`` (nothing detected). ``n_frames`` and ``n_polyps`` are the totals over the evaluated
    frames (see :func:`make_frame_table`), not only frames that have candidates.
    """
    if n_frames <= 0 or n_polyps <= 0:
        raise ValueError(f"Need n_frames > 0 and n_polyps > 0, got {n_frames} and {n_polyps}.")
    scores, tp = _scored(matches)
    ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
    last = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1] if len(scores) else np.array([], int)
    return pd.DataFrame({
        "threshold": np.r_[np.inf, scores[last]],
        "fp_per_frame": np.r_[0.0, cfp[last] / n_frames],
        "sensitivity": np.r_[0.0, ctp[last] / n_polyps],
        "n_tp": np.r_[0, ctp[last]].astype(int),
        "n_fp": np.r_[0, cfp[last]].astype(int),
    })


def sensitivity_at_fp(curve: pd.DataFrame, fp_rates: Sequence[float] = (0.01, 0.1, 1.0)) -> dict[float, float]:
    """The best sensitivity reached with at most ``rate`` false positives per frame, per rate."""
    fp = curve["fp_per_frame"].to_numpy()
    sens = curve["sensitivity"].to_numpy()
    out = {}
    for rate in fp_rates:
        ok = fp <= rate * (1 + _TOL) + 1e-15
        out[float(rate)] = float(sens[ok].max()) if ok.any() else 0.0
    return out


def _count_matrices(matches: pd.DataFrame, seq_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative TP and FP counts per sequence (S, T+1) over thresholds from +inf down."""
    rows = matches[matches["is_tp"] | matches["is_fp"]]
    scores = rows["score"].to_numpy(dtype=float)
    thresholds = np.unique(scores)[::-1]
    col = 1 + np.searchsorted(-thresholds, -scores)      # column of each row's own threshold
    index = {name: i for i, name in enumerate(seq_names)}
    unknown = set(rows["sequence"]) - set(index)
    if unknown:
        raise ValueError(f"Candidates from sequences missing in frame_table: {sorted(unknown)[:5]}")
    seq = rows["sequence"].map(index).to_numpy(dtype=int)
    tp = np.zeros((len(seq_names), len(thresholds) + 1))
    fp = np.zeros_like(tp)
    is_tp = rows["is_tp"].to_numpy(dtype=bool)
    np.add.at(tp, (seq[is_tp], col[is_tp]), 1)
    np.add.at(fp, (seq[~is_tp], col[~is_tp]), 1)
    return np.cumsum(tp, axis=1), np.cumsum(fp, axis=1)


def _sens_at_rates(tp: np.ndarray, fp: np.ndarray, frames: np.ndarray, polyps: np.ndarray,
                   fp_grid: np.ndarray) -> np.ndarray:
    """(B, R) best sensitivity with FP/frame <= rate, for B count curves (B, T+1)."""
    out = np.empty((tp.shape[0], len(fp_grid)))
    with np.errstate(invalid="ignore", divide="ignore"):
        for r, rate in enumerate(fp_grid):
            limit = rate * frames * (1 + _TOL) + 1e-12
            last = (fp <= limit[:, None]).sum(axis=1) - 1      # fp is non-decreasing, fp[:, 0] = 0
            out[:, r] = tp[np.arange(tp.shape[0]), last] / polyps
    return out


def froc_with_band(matches: pd.DataFrame, frame_table: pd.DataFrame, fp_grid: Sequence[float],
                   n_boot: int = 500, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Sensitivity at each rate of ``fp_grid`` with a percentile bootstrap band over sequences.

    Each replicate draws the test sequences with replacement (seeded) and recounts frames, polyps,
    true and false positives; a replicate without polyps is skipped. Columns
    ``fp_per_frame, sensitivity, lo, hi``; ``sensitivity`` is the point estimate on all data and
    equals :func:`sensitivity_at_fp` of :func:`froc_curve`.
    """
    grid = np.asarray(fp_grid, dtype=float)
    per_seq = frame_table.groupby("sequence", sort=False).agg(frames=("frame", "size"),
                                                               polyps=("n_polyps", "sum"))
    names = [str(s) for s in per_seq.index]
    tp, fp = _count_matrices(matches.astype({"sequence": str}), names)
    frames, polyps = per_seq["frames"].to_numpy(float), per_seq["polyps"].to_numpy(float)
    point = _sens_at_rates(tp.sum(0, keepdims=True), fp.sum(0, keepdims=True), frames.sum(keepdims=True),
                           polyps.sum(keepdims=True), grid)[0]
    boots = _bootstrap(tp, fp, frames, polyps, grid, n_boot, seed)
    alpha = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        lo, hi = np.nanquantile(boots, [alpha, 1 - alpha], axis=0) if len(boots) else (point, point)
    return pd.DataFrame({"fp_per_frame": grid, "sensitivity": point, "lo": lo, "hi": hi})


def _bootstrap(tp: np.ndarray, fp: np.ndarray, frames: np.ndarray, polyps: np.ndarray, grid: np.ndarray,
               n_boot: int, seed: int, chunk: int = 100) -> np.ndarray:
    """(n_boot', R) sensitivities of sequence-resampled replicates (replicates without polyps dropped)."""
    rng = np.random.default_rng(seed)
    n_seq = len(frames)
    weights = np.stack([np.bincount(rng.integers(0, n_seq, n_seq), minlength=n_seq) for _ in range(n_boot)])
    weights = weights.reshape(n_boot, n_seq).astype(float)
    out = []
    for start in range(0, n_boot, chunk):
        w = weights[start:start + chunk]
        w = w[w @ polyps > 0]
        if len(w):
            out.append(_sens_at_rates(w @ tp, w @ fp, w @ frames, w @ polyps, grid))
    return np.concatenate(out) if out else np.empty((0, len(grid)))


def froc_summary(matches: pd.DataFrame, frame_table: pd.DataFrame,
                 fp_rates: Sequence[float] = (0.01, 0.1, 1.0), n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Sensitivity with its 95% sequence-bootstrap interval at a few FP/frame rates.

    Columns ``fp_per_frame, sensitivity, lo, hi`` (one row per rate).
    """
    return froc_with_band(matches, frame_table, fp_rates, n_boot=n_boot, seed=seed)


def validation_figure(matches: pd.DataFrame, frame_table: pd.DataFrame,
                      fp_rates: Sequence[float] = FP_RATES) -> float:
    """The one number detectors are selected on: mean sensitivity at ``fp_rates`` FP per frame.

    Computed on validation frames only (early stopping, learning rates and the best level are chosen
    on it; test frames are never read). A frame table without polyps gives NaN.
    """
    n_frames, n_polyps = len(frame_table), int(frame_table["n_polyps"].sum())
    if n_frames == 0 or n_polyps == 0:
        return float("nan")
    sens = sensitivity_at_fp(froc_curve(matches, n_frames, n_polyps), fp_rates)
    return float(np.mean(list(sens.values())))


def _run_counts(runs: Sequence[tuple[pd.DataFrame, pd.DataFrame]], names: list[str]) -> list[tuple]:
    """Per run: (tp, fp) count matrices per sequence over that run's thresholds, frames, polyps."""
    out = []
    for matches, frame_table in runs:
        per_seq = frame_table.astype({"sequence": str}).groupby("sequence", sort=False).agg(
            frames=("frame", "size"), polyps=("n_polyps", "sum")).reindex(names, fill_value=0)
        tp, fp = _count_matrices(matches.astype({"sequence": str}), names)
        # Only the thresholds at which a true positive enters can end a best-sensitivity reading (between them
        # the sensitivity is flat and the false positives only grow), so the other columns are dropped: the
        # same numbers from far fewer columns (about one per polyp found instead of one per candidate).
        keep = np.r_[0, 1 + np.flatnonzero(np.diff(tp.sum(axis=0)) > 0)]
        out.append((tp[:, keep], fp[:, keep], per_seq["frames"].to_numpy(float), per_seq["polyps"].to_numpy(float)))
    return out


def froc_band_over_seeds(runs: Sequence[tuple[pd.DataFrame, pd.DataFrame]], fp_grid: Sequence[float],
                         n_boot: int = 500, seed: int = 0, level: float = 0.95,
                         small_r_correction: bool = True) -> pd.DataFrame:
    """Sensitivity at each rate of ``fp_grid``, averaged over runs (seeds), with a two-level band.

    ``runs`` are ``(matches, frame_table)`` of the same strategy trained with different seeds and
    scored on the same test frames. The point estimate is the mean over runs of each run's
    sensitivity (:func:`sensitivity_at_fp`). Bootstrap replicates draw the test sequences with replacement
    (one draw shared by every run) to measure the test-set covariance of the runs (scaled by K/(K-1) for K
    sequences), and :func:`helpers.bootstrap.seeds_and_test_interval` adds the seed part without counting
    each run's test noise twice, with Student's t on the degrees of freedom the seeds and the K - 1
    sequences give. Columns ``fp_per_frame, sensitivity, lo, hi, n_runs, n_sequences``; with fewer than
    :data:`helpers.bootstrap.MIN_TEST_SEQUENCES` test sequences ``lo`` and ``hi`` are NaN (no band is
    honest). A band is for plots and tables; to compare two strategies use :func:`paired_froc_difference`
    (overlapping bands can hide a difference).
    """
    if not runs:
        raise ValueError("froc_band_over_seeds needs at least one (matches, frame_table) run.")
    grid = np.asarray(fp_grid, dtype=float)
    names = [str(s) for s in dict.fromkeys(str(s) for _, ft in runs for s in ft["sequence"])]
    counts = _run_counts(runs, names)
    point = _sens_per_run(counts, np.ones((1, len(names))), grid)[:, 0]          # (R, F)
    rng = np.random.default_rng(seed)
    w = np.stack([np.bincount(rng.integers(0, len(names), len(names)), minlength=len(names)) for _ in range(n_boot)]
                 ) if n_boot else np.zeros((0, len(names)), dtype=int)
    w = w[(w @ counts[0][3]) > 0].astype(float)                                  # replicates with polyps
    reps = _sens_per_run(counts, w, grid) if len(w) else np.empty((len(counts), 0, len(grid)))   # (R, B, F)
    lo, hi = _interval_per_rate(point, reps, len(names), level, (0.0, 1.0), small_r_correction)[:2]
    return pd.DataFrame({"fp_per_frame": grid, "sensitivity": point.mean(axis=0), "lo": lo, "hi": hi,
                         "n_runs": len(runs), "n_sequences": len(names)})


def _interval_per_rate(point: np.ndarray, reps: np.ndarray, k: int, level: float, bounds: tuple[float, float],
                       t_reference: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, p) per FP rate from per-run points (R, F) and sequence-bootstrap replicates (R, B, F)."""
    f = point.shape[1]
    lo, hi, p = (np.full(f, np.nan) for _ in range(3))
    if k < MIN_TEST_SEQUENCES or reps.shape[1] < 2:
        return lo, hi, p
    for j in range(f):
        out = seeds_and_test_interval(point[:, j], replicate_cov(reps[:, :, j], k), k - 1, level, bounds,
                                      t_reference)
        lo[j], hi[j], p[j] = out["lo"], out["hi"], out["p"]
    return lo, hi, p


def _sens_per_run(counts: list[tuple], w: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(R, B, F) sensitivity of every run on every sequence-weighted replicate (rows of ``w``, (B, S))."""
    return np.stack([_sens_at_rates(w @ tp, w @ fp, w @ fr, w @ po, grid) for tp, fp, fr, po in counts])


def paired_froc_difference(runs_a: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
                           runs_b: Sequence[tuple[pd.DataFrame, pd.DataFrame]], fp_rates: Sequence[float] = FP_RATES,
                           n_boot: int = 500, seed: int = 0, level: float = 0.95,
                           small_r_correction: bool = True, chunk: int = 100) -> pd.DataFrame:
    """Mean sensitivity of strategy a minus strategy b at each FP rate, with a paired two-level bootstrap.

    ``runs_a`` and ``runs_b`` are ``(matches, frame_table)`` per seed, the same seeds in the same order,
    every run scored on the same test sequences. Each replicate draws the test sequences with replacement
    once, for both strategies and every run (as :func:`froc_band_over_seeds` does for one strategy), then
    measures the test-set covariance of the runs' differences (K/(K-1)-scaled for K sequences), so what the
    two share (hard sequences, a lucky seed) cancels in the difference; seeds and sequences are then combined
    by :func:`helpers.bootstrap.seeds_and_test_interval` (each run's test noise counted once, Student's t on
    the degrees of freedom of the seeds and the K - 1 sequences). Two bands that overlap can still hide a
    difference that every sequence agrees on; this reads the difference itself. Replicates without polyps
    are skipped. With fewer than :data:`helpers.bootstrap.MIN_TEST_SEQUENCES` test sequences no interval and
    no p are given (NaN: no verdict).

    Columns ``fp_per_frame, sensitivity_a, sensitivity_b, delta`` (a - b on all data, means over seeds),
    ``lo, hi`` (95% interval), ``p`` (two-sided, "no difference"), ``n_runs``, ``n_boot`` (replicates kept),
    ``n_sequences``.
    """
    if not runs_a or len(runs_a) != len(runs_b):
        raise ValueError(f"paired_froc_difference needs the same seeds in both strategies, got {len(runs_a)} "
                         f"and {len(runs_b)} runs.")
    grid = np.asarray(fp_rates, dtype=float)
    names = [str(s) for s in dict.fromkeys(str(s) for _, ft in [*runs_a, *runs_b] for s in ft["sequence"])]
    counts_a, counts_b = _run_counts(runs_a, names), _run_counts(runs_b, names)
    whole = np.ones((1, len(names)))
    runs_point_a, runs_point_b = (_sens_per_run(c, whole, grid)[:, 0] for c in (counts_a, counts_b))   # (R, F)
    r = len(runs_a)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(names), size=(n_boot, len(names)))
    weights = (np.stack([np.bincount(row, minlength=len(names)) for row in picks]) if n_boot
               else np.zeros((0, len(names)))).astype(float)
    polyps = np.stack([po for *_, po in counts_a + counts_b])        # (2R, S)
    boots = []
    for start in range(0, n_boot, chunk):
        w = weights[start:start + chunk]
        keep = ((w @ polyps.T) > 0).all(axis=1)
        if keep.any():
            boots.append(_sens_per_run(counts_a, w[keep], grid) - _sens_per_run(counts_b, w[keep], grid))   # (R, B, F)
    reps = np.concatenate(boots, axis=1) if boots else np.empty((r, 0, len(grid)))
    lo, hi, p = _interval_per_rate(runs_point_a - runs_point_b, reps, len(names), level, (-1.0, 1.0),
                                   small_r_correction)
    point_a, point_b = runs_point_a.mean(axis=0), runs_point_b.mean(axis=0)
    return pd.DataFrame({"fp_per_frame": grid, "sensitivity_a": point_a, "sensitivity_b": point_b,
                         "delta": point_a - point_b, "lo": lo, "hi": hi, "p": p, "n_runs": r,
                         "n_boot": reps.shape[1], "n_sequences": len(names)})
