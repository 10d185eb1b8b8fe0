"""Figures of the polyp-detection notebook (05): frames and masks, where patches are cut, detections on a
frame, FROC curves with bands, and the hard-negative round. Same conventions as :mod:`helpers.plots`.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..datasets import Split
from ..plots import image_grid, titled
from .video import PolypFrames
from ..schema import SCRATCH


def _frame_rgb(frame: torch.Tensor) -> np.ndarray:
    """A uint8 (3, H, W) frame as an (H, W, 3) array for ``imshow``."""
    return np.transpose(np.asarray(frame), (1, 2, 0))


def plot_polyp_frames(frames: PolypFrames, indices: Sequence[int], ncols: int = 4) -> Figure:
    """Frames with their polyp masks outlined, titled with their sequence."""
    n = len(indices)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.5 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        ax.imshow(_frame_rgb(frames.images[i]))
        ax.contour(frames.masks[i].numpy(), levels=[0.5], colors="lime", linewidths=1.2)
        ax.set_title(f"{frames.names[i]} (seq. {frames.sequences[i]})", fontsize=8)
    return titled(fig, "Colonoscopy frames with polyp masks (green outline)")


def plot_patch_sampling(frames: PolypFrames, plan: pd.DataFrame, frame: int, ax: Axes | None = None) -> Axes:
    """Where training patches of one frame are cut: polyps in green, background in red."""
    ax = ax or plt.subplots(figsize=(6, 4.5))[1]
    ax.imshow(_frame_rgb(frames.images[frame]))
    ax.contour(frames.masks[frame].numpy(), levels=[0.5], colors="white", linewidths=1)
    rows = plan[(plan["frame"] == frame) & (plan.get("transform", 0) == 0)]
    for _, r in rows.iterrows():
        colour = "lime" if r["label"] == 1 else "red"
        ax.add_patch(Rectangle((r["cx"] + 0.5 - r["side"] / 2, r["cy"] + 0.5 - r["side"] / 2), r["side"], r["side"],
                         fill=False, ec=colour, lw=1))
        ax.plot(r["cx"], r["cy"], "+", color=colour)
    ax.set_title("Training patches: polyp (green) at 1.0/1.2/1.5x its size, shifted;\nbackground (red) away from it")
    ax.axis("off")
    return ax


def plot_patches(split: Split, n: int = 16, seed: int = 0) -> Figure:
    """A few polyp and background patches as the classifier sees them."""
    gen = torch.Generator().manual_seed(seed)
    picks, titles = [], []
    for label, name in ((1, "polyp"), (0, "background")):
        members = torch.nonzero(split.labels == label).flatten()
        for i in members[torch.randperm(len(members), generator=gen)[: n // 2]]:
            picks.append(split.images[i])
            titles.append(name)
    return titled(image_grid(picks, titles, ncols=n // 2), "Training patches (after flips/rotations)")


def plot_detections(frame: torch.Tensor, mask: torch.Tensor, prob_map: torch.Tensor,
                    candidates: Sequence[tuple[int, int, float]], ax: Axes | None = None, top: int = 3,
                    fov: torch.Tensor | None = None) -> Axes:
    """A test frame with its probability map overlaid, the mask outlined (green), the field of view
    dashed (cyan; windows centred outside it are not scored) and the best candidates marked."""
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    ax.imshow(_frame_rgb(frame))
    ax.imshow(prob_map.numpy(), cmap="magma", alpha=0.45, vmin=0, vmax=1)
    ax.contour(mask.numpy(), levels=[0.5], colors="lime", linewidths=1.2)
    if fov is not None:
        ax.contour(fov.numpy().astype(float), levels=[0.5], colors="cyan", linewidths=0.8, linestyles="dashed")
    for rank, (y, x, score) in enumerate(candidates[:top]):
        ax.plot(x, y, "o", mfc="none", mec="cyan" if rank == 0 else "white", ms=14, mew=2)
        ax.text(x + 8, y - 8, f"{score:.2f}", color="cyan" if rank == 0 else "white", fontsize=8)
    ax.axis("off")
    return ax


def plot_froc(bands: pd.DataFrame, ax: Axes | None = None, fraction: float | None = None) -> Axes:
    """FROC curves (sensitivity vs false positives per frame, log x) per strategy with 95% bands."""
    ax = ax or plt.subplots(figsize=(6.5, 4.2))[1]
    fraction = bands["fraction"].max() if fraction is None else fraction
    chosen = bands[bands["fraction"] == fraction]
    order = list(chosen.groupby("strategy")["level_index"].first().sort_values().index) \
        if "level_index" in chosen else sorted(chosen["strategy"].unique(), key=lambda s: (s != SCRATCH, s))
    for strategy in order:
        band = chosen[chosen["strategy"] == strategy].groupby("fp_per_frame", as_index=False)[
            ["sensitivity", "lo", "hi"]].mean()
        line, = ax.plot(band["fp_per_frame"], band["sensitivity"], label=strategy,
                        color="black" if strategy == SCRATCH else None)
        ax.fill_between(band["fp_per_frame"], band["lo"], band["hi"], color=line.get_color(), alpha=0.15)
    ax.set(xscale="log", xlabel="false positives per frame", ylabel="sensitivity", ylim=(0, 1.02),
           title=f"Test FROC, mean over seeds, 95% bands over seeds and test sequences\n"
                 f"({fraction:.0%} of training sequences)")
    ax.legend(fontsize=8)
    return ax


def plot_detection_by_size(table: pd.DataFrame, rate: float = 0.1, ax: Axes | None = None) -> Axes:
    """Sensitivity at a fixed FP rate against the share of training sequences, per strategy."""
    key = f"froc_sens@{rate:g}"
    ax = ax or plt.subplots(figsize=(6, 3.8))[1]
    for strategy, rows in table.sort_values("fraction").groupby("strategy", sort=False):
        agg = rows.groupby("fraction")[[key, f"{key}_lo", f"{key}_hi"]].mean().reset_index()
        line, = ax.plot(agg["fraction"], agg[key], marker="o", label=strategy,
                        color="black" if strategy == SCRATCH else None)
        ax.fill_between(agg["fraction"], agg[f"{key}_lo"], agg[f"{key}_hi"], color=line.get_color(), alpha=0.12)
    ax.set(xlabel="share of training sequences", ylabel=f"sensitivity at {rate:g} FP/frame", ylim=(0, 1.02),
           title="Training-set size and detection")
    ax.legend(fontsize=8)
    return ax


def plot_detection_grid(frames: PolypFrames, examples: list[dict], title: str) -> Figure:
    """:func:`plot_detections` for each example of :func:`helpers.detection.experiment.detection_examples`."""
    fig, axes = plt.subplots(1, len(examples), figsize=(4.2 * len(examples), 3.4), squeeze=False)
    for ax, ex in zip(axes[0], examples):
        plot_detections(frames.images[ex["frame"]], frames.masks[ex["frame"]], ex["map"], ex["candidates"], ax=ax,
                        fov=ex.get("fov"))
    return titled(fig, title)


def plot_hard_negative_froc(table: pd.DataFrame, seed: int | None = None) -> Figure:
    """Validation FROC before (dashed) and after (solid) the hard-negative round, one panel per strategy.

    ``table`` is notebook 05's results table (largest fraction used); ``seed`` picks the run shown
    (default the smallest seed). The curves are on validation sequences: the data the choice was made on.
    """
    done = table[~table["diverged"].fillna(False).astype(bool)] if "diverged" in table else table
    done = done[done["fraction"] == done["fraction"].max()]
    seed = int(done["seed"].min()) if seed is None else seed
    rows = done[done["seed"] == seed].sort_values("level_index")
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3.6 * max(1, len(rows)), 3.2), squeeze=False)
    for ax, (_, r) in zip(axes[0], rows.iterrows()):
        for key, style, label in (("val_froc_before", "--", "before"), ("val_froc_after", "-", "after")):
            curve = list(r[key]) if isinstance(r[key], (list, tuple)) else []
            if curve:
                fp, sens = zip(*curve)
                ax.step(fp, sens, style, where="post", label=f"{label} ({r['val_figure_' + label]:.2f})")
        ax.set(xscale="symlog", xlim=(0, 3), ylim=(0, 1.02), xlabel="FP per frame", title=r["strategy"])
        ax.axvspan(0.1, 1.0, color="grey", alpha=0.08)
        ax.legend(fontsize=7, title=f"kept: {r['kept']}", title_fontsize=7)
    axes[0][0].set_ylabel("validation sensitivity")
    return titled(fig, f"Hard-negative round, validation FROC (seed {seed}; shaded: 0.1-1 FP/frame, the validation FROC score's range)")
