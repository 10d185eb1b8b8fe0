"""A segmentation results table summarised: means with 95% intervals over seeds and test sequences, paired
differences between arms, the choice of depth on validation, and the study's boundary errors beside them.

Intervals are over seeds and test *sequences* (frames of one video are not independent):
:func:`helpers.bootstrap.cluster_mean_interval`, a cluster-robust test-set variance with K - 1 degrees of
freedom for K test sequences, and the seed part counted once, with Student's t. A paired difference is the
same on ``a - b`` frame by frame and seed by seed, so what the arms share (hard sequences, a lucky seed)
cancels. Fewer than :data:`helpers.bootstrap.MIN_TEST_SEQUENCES` test sequences give no interval and no verdict.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .. import yardsticks
from ..bootstrap import MIN_TEST_SEQUENCES, cluster_mean_interval
from ..detection.report import best_tuned_choice, diverged_note, finished
from ..verdicts import FAILS, HOLDS, UNDECIDED
from ..tables import strategy_order
from ..schema import SCRATCH

METRICS = {"dice": "Dice", "iou": "IoU", "boundary_px": "boundary distance (px)",
           "boundary_share": "boundary distance (share of frame width)"}
LOWER_IS_BETTER = {"boundary_px", "boundary_share"}
BOUNDS = {"dice": (0.0, 1.0), "iou": (0.0, 1.0), "boundary_px": (0.0, np.inf), "boundary_share": (0.0, np.inf)}


def frame_bootstrap(values: np.ndarray, sequences: Sequence[str], n_boot: int = 1000, seed: int = 0,
                    level: float = 0.95, bounds: tuple[float, float] = (-np.inf, np.inf),
                    small_r_correction: bool = True) -> dict[str, float]:
    """Mean over runs of each run's mean over frames, with an interval over seeds and test sequences.

    ``values`` (R, F): one row per run (seed), one column per test frame, every run on the same frames;
    ``sequences`` (F,): each frame's sequence. :func:`helpers.bootstrap.cluster_mean_interval` (analytic:
    ``n_boot`` and ``seed`` are unused, kept for the callers). For a paired difference pass ``a - b``. Keys:
    ``mean, lo, hi, p`` (two-sided, "the mean is 0"), ``se, df, n_runs, n_frames, n_sequences``. With fewer
    than :data:`helpers.bootstrap.MIN_TEST_SEQUENCES` test sequences ``lo``, ``hi`` and ``p`` are NaN (no
    interval, no verdict).
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    if values.shape[1] != len(sequences) or values.shape[1] == 0:
        raise ValueError(f"values hold {values.shape[1]} frames but sequences {len(sequences)}; give one "
                         "sequence per frame.")
    return cluster_mean_interval(values, sequences, level, bounds, t_reference=small_r_correction)


def _frame_matrix(runs: pd.DataFrame, metric: str) -> tuple[np.ndarray, list[str], list[int]]:
    """(R, F) per-frame values of ``metric`` (runs by seed), the frames' sequences and the frames."""
    runs = runs.sort_values("seed")
    tables = [pd.DataFrame(s) for s in runs["frame_scores"]]
    frames = tables[0]["frame"].tolist()
    if any(t["frame"].tolist() != frames for t in tables):
        raise ValueError("runs were scored on different test frames; they cannot be compared frame by frame")
    return (np.stack([t[metric].to_numpy(float) for t in tables]), tables[0]["sequence"].astype(str).tolist(),
            frames)


def summary_table(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                  metrics: Sequence[str] = tuple(METRICS)) -> pd.DataFrame:
    """One row per training fraction and strategy: runs, training frames, and each metric's mean with its
    95% interval over seeds and test sequences (``<metric>``, ``<metric>_lo``, ``<metric>_hi``)."""
    done = finished(table)
    rows = []
    for (fraction, strategy), runs in done.groupby(["fraction", "strategy"], sort=False):
        row = {"fraction": float(fraction), "strategy": strategy, "level_index": int(runs["level_index"].iloc[0]),
               "n_train": int(runs["n_train"].median()), "runs": len(runs),
               "val_dice": float(runs["val_score"].mean()), "threshold": float(runs["threshold"].mean())}
        for metric in metrics:
            values, seqs, _ = _frame_matrix(runs, metric)
            out = frame_bootstrap(values, seqs, n_boot, seed, bounds=BOUNDS[metric])
            row.update({metric: out["mean"], f"{metric}_lo": out["lo"], f"{metric}_hi": out["hi"]})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {s: k for k, s in enumerate(strategy_order(done))}
    return out.sort_values(["fraction", "strategy"], key=lambda c: c.map(order) if c.name == "strategy" else c,
                           ignore_index=True)


def paired_differences(table: pd.DataFrame, reference: str, metrics: Sequence[str] = ("dice", "boundary_px"),
                       fraction: float | None = None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``reference`` minus every other strategy at ``fraction`` (default: the largest), paired by seed and frame.

    Columns ``strategy, level_index, metric, reference, other, delta, lo, hi, p, better`` (``better``: which
    arm the 95% interval favours, ``""`` when it holds 0; for the boundary distance lower is better).
    Only seeds both arms finished count.
    """
    done = finished(table)
    fraction = done["fraction"].max() if fraction is None else fraction
    at = done[np.isclose(done["fraction"], fraction)]
    ref = at[at["strategy"] == reference]
    rows = []
    for strategy in strategy_order(at):
        other = at[at["strategy"] == strategy]
        seeds = sorted(set(ref["seed"]) & set(other["seed"]))
        if strategy == reference or not seeds:
            continue
        a_runs, b_runs = ref[ref["seed"].isin(seeds)], other[other["seed"].isin(seeds)]
        for metric in metrics:
            a, seqs, frames = _frame_matrix(a_runs, metric)
            b, _, frames_b = _frame_matrix(b_runs, metric)
            if frames != frames_b:
                raise ValueError(f"{reference} and {strategy} were scored on different test frames: no paired difference")
            d = frame_bootstrap(a - b, seqs, n_boot, seed)
            sign = -1 if metric in LOWER_IS_BETTER else 1
            better = ""
            if d["lo"] > 0 or d["hi"] < 0:            # the interval excludes 0: which arm it favours
                favours_ref = (d["lo"] > 0) == (sign > 0)
                better = reference if favours_ref else strategy
            rows.append({"strategy": strategy, "level_index": int(other["level_index"].iloc[0]), "metric": metric,
                         "reference": float(a.mean()), "other": float(b.mean()), "delta": d["mean"], "lo": d["lo"],
                         "hi": d["hi"], "p": d["p"], "better": better, "n_runs": len(seeds)})
    columns = ["strategy", "level_index", "metric", "reference", "other", "delta", "lo", "hi", "p", "better", "n_runs"]
    return pd.DataFrame(rows, columns=columns)


def depth_curve(summary: pd.DataFrame, n_levels: int, fraction: float | None = None) -> pd.DataFrame:
    """The boundary distance per arm at ``fraction`` (default: the largest), shallow to deep, scratch last, beside
    the study's printed boundary errors (:func:`helpers.yardsticks.study_boundary_errors`).

    ``share tuned`` places every depth on one axis: ``(level_index + 1) / n_levels`` for this run's ladder of
    ``n_levels`` levels (the last one is all layers), ``k / 8`` for the study's eight depths. ``relative`` divides
    each error by the error of the deepest depth of its own source (all layers when that was run), so the shapes
    can be compared while the units (pixels here, micrometres there) cannot."""
    fraction = summary["fraction"].max() if fraction is None else fraction
    ours = summary[np.isclose(summary["fraction"], fraction)]
    levels = ours[ours["strategy"] != SCRATCH].sort_values("level_index")
    scratch = ours[ours["strategy"] == SCRATCH]
    deepest = float(levels["boundary_px"].iloc[-1]) if len(levels) else np.nan
    rows = [{"source": "this run", "arm": r.strategy, "share tuned": (r.level_index + 1) / n_levels,
             "error": r.boundary_px, "unit": "px", "relative": r.boundary_px / deepest} for r in levels.itertuples()]
    rows += [{"source": "this run", "arm": SCRATCH, "share tuned": np.nan, "error": r.boundary_px, "unit": "px",
              "relative": r.boundary_px / deepest} for r in scratch.itertuples()]
    study = yardsticks.study_boundary_errors()
    n_study = len(yardsticks.STUDY_DEPTHS)
    for column in [c for c in study.columns if c != "arm"]:
        all_layers = float(study[column].iloc[n_study - 1])
        for k, r in study.iterrows():
            if r["arm"] == "hand-crafted":
                continue
            rows.append({"source": f"study, {column.split(' (')[0]}", "arm": r["arm"],
                         "share tuned": (k + 1) / n_study if k < n_study else np.nan, "error": r[column], "unit": "um",
                         "relative": r[column] / all_layers})
    return pd.DataFrame(rows)


def segmentation_report(table: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> list[str]:
    """Plain sentences on one segmentation sweep: the depth chosen on validation at the largest training size,
    how every other arm compares with it on test (paired, Dice and boundary distance), whether the depth curve
    is flat from some level upward (the study's segmentation shape), and scratch against the chosen depth."""
    done = finished(table)
    level, tied, tied_with = best_tuned_choice(done)
    if level is None:
        return [f"No fine-tuned run finished: {UNDECIDED}."]
    fraction = done["fraction"].max()
    lines = [f"Depth chosen on the validation Dice at the largest training size ({fraction:.0%} of the training "
             f"sequences): {level}" + (f" (tied on validation with {', '.join(tied_with)}: the shallower is taken, "
                                       "so the choice is a convention)" if tied else "") + ". " + diverged_note(table)]
    paired = paired_differences(done, level, n_boot=n_boot, seed=seed)
    dice = paired[paired["metric"] == "dice"]
    for r in dice.itertuples():
        verdict = (f"no interval (fewer than {MIN_TEST_SEQUENCES} test sequences)" if np.isnan(r.lo) else
                   "no difference shown" if not r.better else f"{r.better} better")
        lines.append(f"{level} minus {r.strategy}: Dice {r.delta:+.3f} (95% CI {r.lo:+.3f} to {r.hi:+.3f}): {verdict}.")
    levels = dice[dice["strategy"] != SCRATCH].sort_values("level_index")
    chosen_index = int(done.loc[done["strategy"] == level, "level_index"].iloc[0])
    deeper = [r for r in levels.itertuples() if r.level_index > chosen_index]
    shallower = [r for r in levels.itertuples() if r.level_index < chosen_index]
    if dice["lo"].isna().all():
        lines.append(f"No interval: the test frames come from fewer than {MIN_TEST_SEQUENCES} sequences, too few for "
                     "an honest interval, so no verdict on the depth curve.")
    elif any(r.better == r.strategy for r in levels.itertuples()):
        lines.append("A depth validation did not choose did better on test (" + ", ".join(
            r.strategy for r in levels.itertuples() if r.better == r.strategy) + "): validation's choice is not the "
            "best on test here; read the paired differences.")
    elif not any(r.better for r in levels.itertuples()):
        lines.append("No depth differs from the chosen one at 95% (Dice): the depth curve is flat at this budget, "
                     "so it cannot show where it flattens.")
    elif not any(r.better for r in deeper) and any(r.better == level for r in shallower):
        lines.append(f"Flat from {level} upward, as the study's segmentation was from conv5 upward: no deeper depth "
                     "differs from it and a shallower one is worse (Dice).")
    else:
        lines.append("Deeper depths are worse than the chosen one (Dice): the curve falls again above it, unlike "
                     "the study's flat top.")
    return lines
