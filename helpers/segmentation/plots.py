"""Figures of the polyp-segmentation notebook (07): the three classes of a frame, Dice by depth with intervals,
predicted masks against the true ones, and the depth curve's shape beside the study's. Same conventions as
:mod:`helpers.plots`.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ..plots import new_ax, learning_curve_colors, titled
from .labels import CLASS_NAMES
from .report import LOWER_IS_BETTER

SHORT = {"dice": "Dice", "iou": "IoU", "boundary_px": "boundary distance (px)",
         "boundary_share": "boundary distance / frame width"}

CLASS_COLORS = ListedColormap(["#1b1b1b", "#f2a900", "#2a9d8f"])   # background, boundary band, interior


def _rgb(frame: torch.Tensor) -> np.ndarray:
    return np.transpose(np.asarray(frame), (1, 2, 0))


def plot_three_classes(image: torch.Tensor, mask: torch.Tensor, labels: np.ndarray, fov: torch.Tensor | None = None) -> Figure:
    """A frame, its polyp mask and its three-class labels side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    axes[0].imshow(_rgb(image))
    if fov is not None:
        axes[0].contour(np.asarray(fov, dtype=float), levels=[0.5], colors="cyan", linestyles="dashed", linewidths=0.8)
    axes[0].set_title("frame (cyan: field of view)", fontsize=9)
    axes[1].imshow(np.asarray(mask), cmap="gray")
    axes[1].set_title("polyp mask", fontsize=9)
    axes[2].imshow(labels, cmap=CLASS_COLORS, vmin=0, vmax=2, interpolation="nearest")
    axes[2].set_title(" / ".join(f"{n}" for n in CLASS_NAMES), fontsize=9)
    for ax in axes:
        ax.axis("off")
    return titled(fig, "Three classes per pixel: background, boundary band (inside the edge), interior")


def plot_metric_by_depth(summary: pd.DataFrame, metric: str = "dice", ax: Axes | None = None) -> Axes:
    """``metric`` with its 95% interval per arm (scratch, then shallow to deep), one line per training size."""
    ax = new_ax(ax)
    arms = list(dict.fromkeys(summary.sort_values("level_index")["strategy"]))
    x = {a: k for k, a in enumerate(arms)}
    colors = learning_curve_colors([f"{f:g}" for f in sorted(summary["fraction"].unique())])
    for fraction, part in summary.groupby("fraction"):
        part = part.sort_values("level_index")
        xs = [x[a] for a in part["strategy"]]
        label = f"{fraction:.0%} of training sequences ({int(part['n_train'].median())} frames)"
        color = colors[f"{fraction:g}"]
        # a percentile interval over few test sequences need not contain the mean over all frames: clip at 0
        below = np.maximum(part[metric] - part[f"{metric}_lo"], 0)
        above = np.maximum(part[f"{metric}_hi"] - part[metric], 0)
        ax.errorbar(xs, part[metric], yerr=[below, above],
                    marker="o", capsize=3, label=label, color=color)
    ax.set_xticks(range(len(arms)), arms, rotation=20, ha="right")
    ax.set_ylabel(f"test {SHORT[metric]} (mean, 95% CI)")
    ax.set_xlabel("arm (scratch, then the fine-tuning depth, shallow to deep)")
    ax.set_title(f"Segmentation: test {SHORT[metric]} by depth" + (" (lower is better)" if metric in LOWER_IS_BETTER else ""))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_masks(images: torch.Tensor, true: torch.Tensor, predicted: Mapping[str, torch.Tensor],
               titles: Sequence[str] | None = None) -> Figure:
    """Frames (rows) with the true polyp outline (green) and each arm's predicted outline (one column per arm)."""
    n, arms = len(images), list(predicted)
    fig, axes = plt.subplots(n, len(arms), figsize=(3.3 * len(arms), 2.6 * n), squeeze=False)
    for r in range(n):
        for c, arm in enumerate(arms):
            ax = axes[r, c]
            ax.imshow(_rgb(images[r]))
            ax.contour(np.asarray(true[r], dtype=float), levels=[0.5], colors="lime", linewidths=1.2)
            pred = np.asarray(predicted[arm][r], dtype=float)
            if pred.any():
                ax.contour(pred, levels=[0.5], colors="magenta", linewidths=1.2)
            ax.axis("off")
            if r == 0:
                ax.set_title(arm, fontsize=9)
            if titles is not None and c == 0:
                ax.text(2, 10, titles[r], color="white", fontsize=7, backgroundcolor="black")
    return titled(fig, "Test frames: true polyp (green) and predicted (magenta)")


def plot_depth_shape(curve: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Boundary error relative to the all-layers arm, by depth rank: this run beside the study's two boundaries."""
    ax = new_ax(ax)
    for source, part in curve[curve["share tuned"].notna()].groupby("source", sort=False):
        style = dict(marker="o") if source == "this run" else dict(marker=".", linestyle="--", alpha=0.7)
        ax.plot(part["share tuned"], part["relative"], label=source, **style)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xlabel("share of the ladder tuned (level / number of levels; 1 = all layers)")
    ax.set_ylabel("boundary error / the deepest depth's")
    ax.set_title("The shape of the depth curve, not its units")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax
