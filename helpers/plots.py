"""Figures for the notebooks.

Learning-curve figures (this section): every function takes a results table (see ``analysis``)
for ONE (dataset, arch) experiment, draws on ``ax`` if given (else on a new figure), sets a
title and axis labels a student can put on a slide, and returns the Axes. :func:`save_figure`
writes a PNG (150 dpi) and returns its path.

Colours are shared by all learning-curve figures: scratch is black, fine-tuning levels go from
light (shallow: only the new head tuned) to dark (deep: all layers tuned), auto is red.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import torch.nn.functional as F
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import analysis as A
from . import learning_curves, tables
from . import powerlaw as PL
from .augment import augment_batch
from .datasets import DataSet, Split
from .finetune import ladder, ladder_table
from .models import FTModel
from .paths import reports_dir
from .schema import SCRATCH


# ----------------------------------------------------------------------------- shared helpers
def save_figure(fig: Figure | Axes, name: str, folder: str | Path | None = None) -> Path:
    """Write ``fig`` (or an Axes' figure) as ``<folder>/<name>.png`` at 150 dpi; return the path.

    ``folder`` defaults to the profile's reports folder (``paths.reports_dir()``).
    """
    if isinstance(fig, Axes):
        fig = fig.figure
    if folder is None:
        folder = reports_dir()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name if name.lower().endswith(".png") else f"{name}.png")
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


def new_ax(ax: Axes | None, size: tuple[float, float] = (6.4, 4.4)) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def learning_curve_colors(order: list[str]) -> dict[str, Any]:
    """Strategy -> colour: scratch black, the statistics-only control orange, levels light (shallow) to dark
    (deep), auto red."""
    levels = [s for s in order if s not in (A.SCRATCH, A.STATISTICS, A.AUTO)]
    shades = sns.color_palette("crest", n_colors=max(len(levels), 1))
    colors: dict[str, Any] = {s: shades[i] for i, s in enumerate(levels)}
    colors[A.SCRATCH] = (0.1, 0.1, 0.1)
    colors[A.STATISTICS] = (0.93, 0.55, 0.13)
    colors[A.AUTO] = (0.84, 0.15, 0.16)
    return colors


def _experiment_name(df: pd.DataFrame) -> str:
    parts = [str(df[k].iloc[0]) for k in tables.EXPERIMENT_KEYS if k in df.columns and len(df)]
    return f" ({', '.join(parts)})" if parts else ""


def _size_ticks(ax: Axes, sizes: list[int]) -> None:
    """Log x axis with a plain tick at every measured training-set size."""
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{n:,}" for n in sizes])
    ax.minorticks_off()


# ----------------------------------------------------------------------------- learning curves
def plot_learning_curves(df: pd.DataFrame, metric: str = "test_auc", ax: Axes | None = None) -> Axes:
    """Metric vs training images (log x), one line per strategy (mean over seeds), with 95% bands.

    For test AUC with stored scores the band is the two-level bootstrap interval over seeds *and*
    test images (:func:`analysis.cell_stats`); otherwise the t interval over seeds, or one run's
    bootstrap CI over test images. The title says which.
    """
    tables.single_experiment(df, "plot_learning_curves")
    df = tables.dedupe(df)
    sizes = tables.fraction_sizes(df)
    order = tables.strategy_order(df)
    colors = learning_curve_colors(order)
    ax = new_ax(ax)
    label = tables.metric_label(metric)
    cells = A.cell_stats(df, metric).sort_values("n_train")
    for strategy in order:
        c = cells[cells["strategy"] == strategy]
        ax.plot(c["n_train"], c["mean"], marker="o", color=colors[strategy], label=strategy)
        ax.fill_between(c["n_train"], c["ci_lo"], c["ci_hi"], color=colors[strategy], alpha=0.2, lw=0)
    seeds = int(cells["n_seeds"].max())
    band = f"mean of {seeds} seed(s); band: 95% {cells['ci_method'].iloc[0]}"
    _size_ticks(ax, sorted(set(sizes.values())))
    return _finish(ax, "Training images (log scale)", label, f"{label} vs training-set size{_experiment_name(df)}\n{band}")


def plot_best_level_heatmap(df: pd.DataFrame, metric: str = "test_auc", ax: Axes | None = None) -> Axes:
    """Mean metric per strategy (rows: scratch at the top, then shallow -> deep, auto last) and
    training fraction (columns), annotated; in each column the fine-tuning chosen on validation AUC
    (:func:`analysis.best_per_fraction`) is boxed and starred; the colours show its test metric."""
    tables.single_experiment(df, "plot_best_level_heatmap")
    cells = A.cell_stats(df, metric)
    order = tables.strategy_order(df)
    grid = cells.pivot(index="strategy", columns="fraction", values="mean").reindex(order)
    sizes = tables.fraction_sizes(df)
    text = grid.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")
    chosen = A.best_per_fraction(df, metric, with_test=False).set_index("fraction")["best_strategy"]
    best_rows = [list(grid.index).index(chosen[col]) for col in grid.columns]
    for j, i in enumerate(best_rows):
        text.iloc[i, j] += " *"
    ax = new_ax(ax, (1.6 + 1.3 * grid.shape[1], 1.0 + 0.45 * grid.shape[0]))
    label = tables.metric_label(metric)
    sns.heatmap(grid, annot=text.to_numpy(), fmt="", cmap="viridis", ax=ax, linewidths=0.5,
                cbar_kws={"label": f"{label} (mean over seeds)"}, annot_kws={"fontsize": 8})
    for j, i in enumerate(best_rows):
        ax.add_patch(Rectangle((j, i), 1, 1, fill=False, edgecolor="red", lw=2.5))
    index = cells.groupby("strategy")["level_index"].median()
    ax.set_yticklabels([s if s in (A.SCRATCH, A.AUTO) else f"{s} (level {int(index[s])})" for s in grid.index],
                       rotation=0)
    ax.set_xticklabels([f"{f:.0%}\n(n={sizes[f]:,})" if f >= 0.01 else f"{f:.1%}\n(n={sizes[f]:,})"
                        for f in grid.columns], rotation=0)
    ax.set_xlabel("Training fraction (training images)")
    ax.set_ylabel("Strategy (shallow to deep)")
    ax.set_title(f"Which depth wins at each training-set size?{_experiment_name(df)}\n"
                 "red box and * = the fine-tuning chosen on validation AUC", fontsize=10)
    return ax


def plot_gap_to_scratch(gap_df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Fine-tuned minus scratch vs training images, per strategy, with the paired 95% CI.

    ``gap_df`` is :func:`analysis.gap_to_scratch` output for one experiment. The point is the paired
    ``delta`` (the plain ``gap`` when no paired test ran); ``*`` above a point marks p < .05.
    Strategies are nudged sideways so their bars do not overlap.
    """
    tables.single_experiment(gap_df, "plot_gap_to_scratch")
    ax = new_ax(ax)
    order = (gap_df[["strategy", "level_index"]].drop_duplicates("strategy")
             .assign(auto=lambda d: d["strategy"] == A.AUTO).sort_values(["auto", "level_index"])["strategy"].tolist())
    colors = learning_curve_colors([A.SCRATCH, *order])
    k = len(order)
    for i, strategy in enumerate(order):
        g = gap_df[gap_df["strategy"] == strategy].sort_values("n_train")
        x = g["n_train"].to_numpy(float) * 1.06 ** (i - (k - 1) / 2)
        y = np.where(np.isfinite(g["delta"]), g["delta"], g["gap"])
        lo, hi = g["lo"].to_numpy(float), g["hi"].to_numpy(float)
        yerr = np.vstack([np.where(np.isfinite(lo), y - lo, 0), np.where(np.isfinite(hi), hi - y, 0)])
        ax.errorbar(x, y, yerr=yerr, marker="o", capsize=3, color=colors[strategy], label=strategy)
        for xi, yi, top, p in zip(x, y, np.where(np.isfinite(hi), hi, y), g["p"]):
            if np.isfinite(p) and p < A.ALPHA:
                ax.annotate("*", (xi, top), textcoords="offset points", xytext=(0, 1), ha="center",
                            fontsize=12, color=colors[strategy])
    ax.axhline(0.0, color="grey", lw=1, ls="--")
    _size_ticks(ax, sorted(int(n) for n in gap_df["n_train"].unique()))
    tests = set(gap_df["test"]) if "test" in gap_df else set()
    how = "paired 95% CI" if A.PAIRED_BOOTSTRAP in tests else "paired test"
    return _finish(ax, "Training images (log scale)", "Fine-tuned minus scratch",
                   f"Gap to training from scratch{_experiment_name(gap_df)}\n"
                   f"above 0: fine-tuning better; bars: {how}; * p < .05")


def _finish(ax: Axes, xlabel: str, ylabel: str, title: str) -> Axes:
    """Axis labels, a two-line title, the strategies' legend and a light grid: how every per-strategy plot ends."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(title="Strategy", fontsize=8, title_fontsize=9)
    ax.grid(alpha=0.3)
    return ax


def plot_convergence(df: pd.DataFrame, fraction: float | None = None, ax: Axes | None = None) -> Axes:
    """Validation AUC vs training iterations (log x), one line per strategy (the paper's Fig. 10).

    Uses the runs at one training ``fraction`` (default: the largest). Each line is the mean over
    seeds of the logged validation AUC at each logged iteration (the title says how many seeds; one
    seed is a single run); a dot marks its peak. Iteration 0
    (before any update) is left out because the axis is logarithmic.
    """
    tables.single_experiment(df, "plot_convergence")
    df = tables.dedupe(tables.decode_results(df))
    fraction = float(df["fraction"].max()) if fraction is None else float(fraction)
    df = df[np.isclose(df["fraction"], fraction)]
    if df.empty:
        raise ValueError(f"no runs at training fraction {fraction}")
    order = tables.strategy_order(df)
    colors = learning_curve_colors(order)
    ax = new_ax(ax)
    for strategy in order:
        points = [(it, v) for curve in df[df["strategy"] == strategy]["curve"] for it, v in curve if it > 0]
        if not points:
            continue
        mean = pd.DataFrame(points, columns=["it", "auc"]).groupby("it")["auc"].mean()
        ax.plot(mean.index, mean.to_numpy(), color=colors[strategy], label=strategy)
        ax.scatter([mean.idxmax()], [mean.max()], color=colors[strategy], s=25, zorder=3)
    ax.set_xscale("log")
    n = int(df["n_train"].median())
    seeds = df["seed"].nunique() if "seed" in df else 1
    over = "one seed" if seeds <= 1 else f"mean over {seeds} seeds"
    return _finish(ax, "Training iterations (mini-batches, log scale)", "Validation AUC",
                   f"Convergence at {n:,} training images{_experiment_name(df)}\n{over}; dot = best validation AUC")


def _as_fits(fits: Mapping[str, PL.PowerLawFit] | pd.DataFrame) -> dict[str, PL.PowerLawFit]:
    if isinstance(fits, pd.DataFrame):
        return {str(r["strategy"]): PL.PowerLawFit.from_row(r) for _, r in fits.iterrows()}
    return dict(fits)


def plot_power_law(df: pd.DataFrame, fits: Mapping[str, PL.PowerLawFit] | pd.DataFrame | None = None,
                   ax: Axes | None = None, metric: str = "test_auc") -> Axes:
    """Measured error (1 - metric, mean over seeds) and the fitted ``a * n^-b + c`` per strategy.

    ``fits`` is a dict strategy -> :class:`powerlaw.PowerLawFit` or :func:`learning_curves.power_law_table`
    output (default: fitted here). The fit is solid over the measured sizes and dashed where it is
    extrapolated (up to scratch's catch-up size when that is within 1000x the data, else 10x).
    When ``fits`` is a power-law table, its target (the best fine-tuned result) is drawn as a dotted
    line and scratch's catch-up size as an ``x``.
    """
    tables.single_experiment(df, "plot_power_law")
    table = fits if isinstance(fits, pd.DataFrame) else None
    fits = learning_curves.fit_power_laws(df, metric) if fits is None else _as_fits(fits)
    points = learning_curves.curve_points(df, metric)
    order = [s for s in tables.strategy_order(df) if s in fits]
    colors = learning_curve_colors(tables.strategy_order(df))
    ax = new_ax(ax)
    target = catch_up = np.nan
    if table is not None and len(table):
        target = 1.0 - float(table["target_metric"].iloc[0])
        sc = table[table["strategy"] == A.SCRATCH]
        catch_up = float(sc["catch_up_n"].iloc[0]) if len(sc) else np.nan
    for strategy in order:
        fit, mine = fits[strategy], points[points["strategy"] == strategy]
        ax.scatter(mine["n_train"], mine["error"], color=colors[strategy], s=25, zorder=3)
        if not fit.ok:
            continue
        right = catch_up if strategy == A.SCRATCH and np.isfinite(catch_up) and catch_up < 1000 * fit.n_max \
            else 10 * fit.n_max
        right = max(right, 10 * fit.n_max)
        inside = np.geomspace(fit.n_min, fit.n_max, 100)
        beyond = np.geomspace(fit.n_max, right, 100)
        ax.plot(inside, fit.predict(inside), color=colors[strategy],
                label=f"{strategy}: {fit.a:.3g} n^-{fit.b:.2f} + {fit.c:.3f}")
        ax.plot(beyond, fit.predict(beyond), color=colors[strategy], ls="--")
    label = tables.metric_label(metric)
    if np.isfinite(target):
        ax.axhline(target, color="grey", ls=":", lw=1.2,
                   label=f"target: best fine-tuned ({table['target_strategy'].iloc[0]})")
        if np.isfinite(catch_up) and catch_up < 1000 * points["n_train"].max():
            ax.scatter([catch_up], [target], marker="x", color=colors[A.SCRATCH], s=60, zorder=4)
    ax.set_xscale("log")
    ax.set_xlabel("Training images (log scale)")
    ax.set_ylabel(f"Error = 1 - {label}")
    ax.set_title(f"Power-law learning curves{_experiment_name(df)}\n"
                 "points: measured; solid: fit; dashed: extrapolation", fontsize=10)
    if not any(f.ok for f in fits.values()):
        ax.text(0.5, 0.02, "no fit: a*n^-b + c needs at least 3 training-set sizes", transform=ax.transAxes,
                ha="center", fontsize=8, color="grey")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


# ----------------------------------------------------------------------------- data figures (notebook 01)

def titled(fig: Figure, title: str) -> Figure:
    """Put a title above a figure of image panels without overlapping their own titles."""
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def image_grid(images: Sequence[torch.Tensor] | torch.Tensor, titles: Sequence[str] | None = None, ncols: int = 8,
                size: float = 1.3, cmap: str = "gray") -> Figure:
    """A figure of uint8 images (N, C, H, W) in a grid."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * size), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:n]):
        img = np.asarray(images[i])
        img = img[0] if img.shape[0] == 1 else np.transpose(img, (1, 2, 0))
        ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=0, vmax=255)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    return fig


def plot_class_balance(data: DataSet, ax: Axes | None = None) -> Axes:
    """Bar chart of examples per class in each split."""
    rows = [{"split": name, "class": data.class_names[c], "images": n}
            for name, split in data.splits().items() for c, n in enumerate(split.class_counts(data.num_classes))]
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    sns.barplot(pd.DataFrame(rows), x="split", y="images", hue="class", ax=ax)
    ax.set_title(f"{data.name}: images showing each finding, per split (an image can show several)"
                 if data.multi_label else f"{data.name}: class balance per split")
    return ax


def plot_montage(split: Split, class_names: Sequence[str], per_class: int = 8, seed: int = 0) -> Figure:
    """``per_class`` random examples of every class (multi-label: showing each finding), one row per class."""
    gen = torch.Generator().manual_seed(seed)
    picks, titles = [], []
    for c, name in enumerate(class_names):
        members = split.examples_of(c)
        chosen = members[torch.randperm(len(members), generator=gen)[:per_class]]
        picks += [split.images[i] for i in chosen]
        titles += [name] * len(chosen)
    fig = image_grid(picks, titles, ncols=per_class)
    titled(fig, "Examples per class (one row per class)")
    return fig


def plot_intensity_histograms(data: DataSet, ax: Axes | None = None) -> Axes:
    """Pixel-intensity distributions per class (training split)."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    for c, name in enumerate(data.class_names):
        pixels = data.train.images[data.train.examples_of(c)].float().flatten().numpy()
        ax.hist(pixels, bins=64, range=(0, 255), density=True, histtype="step", lw=1.8, label=name)
    ax.set(xlabel="pixel intensity (0-255)", ylabel="density", title="Intensity histograms per class (train)")
    ax.legend()
    return ax


def plot_subset_sizes(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Training images per class at each nested fraction (log scale)."""
    ax = ax or plt.subplots(figsize=(7, 3.5))[1]
    columns = [c for c in table.columns if c.startswith(("class: ", "finding: "))]
    long = table.melt(id_vars=["fraction"], value_vars=columns, var_name="class", value_name="count")
    long["class"] = long["class"].str.replace(r"^(class|finding): ", "", regex=True)
    sns.lineplot(long, x="fraction", y="count", hue="class", marker="o", ax=ax)
    ax.set(xscale="log", yscale="log", xlabel="training fraction", ylabel="training images",
           title="Nested, stratified training subsets")
    return ax


def plot_augmentations(image: torch.Tensor, n: int = 8, seed: int = 0) -> Figure:
    """One image and ``n`` augmented versions of it (scale 1.0/1.2/1.5, shifts, flips/rotations)."""
    x = image.unsqueeze(0).float().div(255).repeat(n, 1, 1, 1)
    out = augment_batch(x, torch.Generator().manual_seed(seed)).mul(255).round().clamp(0, 255).byte()
    fig = image_grid([image, *out], ["original"] + [f"view {i + 1}" for i in range(n)], ncols=n + 1)
    titled(fig, "The paper's augmentation on one image")
    return fig


def plot_resizing(image: torch.Tensor, sizes: Sequence[int] = (28, 64, 128, 224)) -> Figure:
    """One image as the model sees it at several input sizes (bilinear upsampling on the device)."""
    x = image.unsqueeze(0).float()
    views = [F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)[0].clamp(0, 255).byte()
             for s in sizes]
    fig, axes = plt.subplots(1, len(sizes), figsize=(3 * len(sizes), 3))
    for ax, view, s in zip(axes, views, sizes):
        img = view[0] if view.shape[0] == 1 else view.permute(1, 2, 0)
        ax.imshow(img.numpy(), cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"{s} x {s} px")
        ax.axis("off")
    titled(fig, "A 28 px image at the input sizes of the models (upsampling adds no detail)")
    return fig


# ----------------------------------------------------------------------------- training figures (notebooks 02-03)

def plot_lr_sensitivity(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Best validation AUC against learning rate (log x), one line per model; the chosen rate circled,
    diverged rates marked with x at the bottom."""
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    ok = table[~table["diverged"].astype(bool)] if "diverged" in table else table
    sns.lineplot(ok, x="lr", y="val_auc", hue="model", marker="o", ax=ax)
    if "chosen" in table:
        chosen = table[table["chosen"].astype(bool)]
        ax.scatter(chosen["lr"], chosen["val_auc"], s=160, facecolors="none", edgecolors="black", label="chosen")
    if "diverged" in table and table["diverged"].any():
        bad = table[table["diverged"].astype(bool)]
        ax.scatter(bad["lr"], [0.5] * len(bad), marker="x", color="red", label="diverged")
    ax.set(xscale="log", xlabel="learning rate", ylabel="best validation AUC",
           title="Learning rate chosen on validation AUC (same steps, same start)")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    return ax


def plot_history(histories: dict[str, pd.DataFrame], axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Training loss and validation AUC at every validation check for several runs (``{label: history}``)."""
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.5))
    for label, hist in histories.items():
        axes[0].plot(hist["step"], hist["train_loss"], marker="o", label=f"{label} train")
        axes[0].plot(hist["step"], hist["val_loss"], marker="x", ls="--", label=f"{label} val")
        axes[1].plot(hist["step"], hist["val_auc"], marker="o", label=label)
    axes[0].set(xlabel="SGD step", ylabel="cross-entropy", title="Loss")
    axes[1].set(xlabel="SGD step", ylabel="validation AUC", title="Validation AUC (best step restored)")
    for ax in axes:
        ax.legend(fontsize=8)
    return axes


def plot_roc(curves: dict[str, pd.DataFrame], ax: Axes | None = None) -> Axes:
    """ROC curves with 95% bootstrap bands: ``{label: DataFrame(fpr, tpr, tpr_lo, tpr_hi)}``."""
    ax = ax or plt.subplots(figsize=(5, 5))[1]
    for label, roc in curves.items():
        line, = ax.plot(roc["fpr"], roc["tpr"], label=label)
        ax.fill_between(roc["fpr"], roc["tpr_lo"], roc["tpr_hi"], color=line.get_color(), alpha=0.2)
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    for fpr in (0.10, 0.15, 0.20):
        ax.axvline(fpr, color="grey", lw=0.6, ls="--")
    ax.set(xlabel="false-positive rate", ylabel="sensitivity", title="Test ROC with 95% bands", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_metric_by_level(table: pd.DataFrame, metric: str = "test_auc", ax: Axes | None = None) -> Axes:
    """Test metric per fine-tuning level with 95% CIs, the scratch model as a band."""
    ax = ax or plt.subplots(figsize=(8, 3.8))[1]
    tuned = table[table["strategy"] != SCRATCH].sort_values("level_index")
    x = np.arange(len(tuned))
    err = [tuned[metric] - tuned[f"{metric}_lo"], tuned[f"{metric}_hi"] - tuned[metric]]
    ax.errorbar(x, tuned[metric], yerr=err, fmt="o-", capsize=4, label="fine-tuned")
    scratch = table[table["strategy"] == SCRATCH]
    if len(scratch):
        s = scratch.iloc[0]
        ax.axhline(s[metric], color="C3", label=SCRATCH)
        ax.axhspan(s[f"{metric}_lo"], s[f"{metric}_hi"], color="C3", alpha=0.15)
    ax.set_xticks(x, tuned["level"], rotation=30, ha="right")
    ax.set(xlabel="tuned layers (shallow -> deep)", ylabel=tables.metric_label(metric),
           title="Fine-tuning depth: test metric with 95% CIs")
    ax.legend()
    return ax


def plot_filters(weight: torch.Tensor, title: str = "first-layer filters", ncols: int = 8,
                 max_filters: int = 32) -> Figure:
    """The first convolution's filters as small RGB images (each scaled to its own range)."""
    w = weight.detach().float().cpu()[:max_filters]
    w = (w - w.amin(dim=(1, 2, 3), keepdim=True)) / (w.amax(dim=(1, 2, 3), keepdim=True)
                                                     - w.amin(dim=(1, 2, 3), keepdim=True) + 1e-8)
    fig = image_grid((w * 255).byte(), ncols=ncols, size=0.9)
    titled(fig, title)
    return fig


# ----------------------------------------------------------------------------- mechanics figures (notebooks 02-03)

def plot_loss_overlay(curves: Mapping[str, Sequence[float]], ax: Axes | None = None) -> Axes:
    """Training loss per SGD step of several runs on one axis (``{label: losses}``, step 1 first); each
    later run is drawn thinner and dashed on top, so identical curves stay visible (notebook 02)."""
    ax = ax or plt.subplots(figsize=(6.4, 3.6))[1]
    for i, (label, losses) in enumerate(curves.items()):
        steps = np.arange(1, len(losses) + 1)
        ax.plot(steps, np.asarray(losses, dtype=float), lw=3.0 / (1 + i), ls="-" if i == 0 else "--",
                marker=None if i == 0 else ".", label=label)
    ax.set(xlabel="SGD step", ylabel="training loss (one batch)", title="The same run, by hand and by the engine")
    ax.legend()
    return ax


def plot_ladder(model: FTModel, ax: Axes | None = None) -> Axes:
    """The depth ladder drawn from the model (notebook 03): one row per level (only the new head at the
    top, all layers at the bottom), one column per stage (input side left, head right); a tuned stage
    is a filled cell, a frozen one a pale cell. Row labels give the level and its trainable parameters."""
    rungs = ladder(model)
    stages = [n for n in model.stage_names if n != "input"]
    grid = np.array([[name in rung.tuned for name in stages] for rung in rungs], dtype=float)
    ax = ax or plt.subplots(figsize=(0.7 * len(stages) + 3, 0.4 * len(rungs) + 1.5))[1]
    ax.imshow(grid, cmap="Blues", vmin=-0.25, vmax=1.2, aspect="auto")
    counts = ladder_table(model)["trainable parameters"]
    ax.set_yticks(range(len(rungs)), [f"{r.index}: {r.name} ({c:,})" for r, c in zip(rungs, counts)])
    ax.set_xticks(range(len(stages)), stages, rotation=40, ha="right")
    ax.set_xticks(np.arange(-0.5, len(stages)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(rungs)), minor=True)
    ax.grid(which="minor", color="white", lw=2)
    ax.tick_params(which="minor", length=0)
    ax.set(xlabel="stage (input side -> new head)", ylabel="level (trainable parameters)",
           title=f"{model.arch}: dark = tuned, pale = frozen (ImageNet weights kept)")
    return ax



# ----------------------------------------------------------------------------- inside the network (notebook 06)
def plot_cka_heatmap(table: pd.DataFrame, title: str, ax: Axes | None = None) -> Axes:
    """Linear CKA with the pretrained network per stage (columns) for each arm (rows), 0 to 1."""
    ax = new_ax(ax, (max(6.4, 0.7 * table.shape[1] + 2), 0.5 * table.shape[0] + 1.6))
    sns.heatmap(table.astype(float), vmin=0, vmax=1, cmap="viridis", annot=True, fmt=".2f", ax=ax,
                cbar_kws={"label": "linear CKA with the pretrained network"}, annot_kws={"fontsize": 7})
    ax.set_xlabel("stage (input side left)")
    ax.tick_params(axis="x", rotation=30)
    ax.set_ylabel("")
    ax.set_title(title, fontsize=10)
    return ax


def plot_weight_movement(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Relative weight change per stage (x) for each arm (one line per row of ``table``), log scale."""
    ax = new_ax(ax, (8.0, 4.0))
    colors = learning_curve_colors(list(table.index))
    for arm, row in table.iterrows():
        values = row.astype(float).replace(0.0, np.nan)
        ax.plot(range(len(values)), values.to_numpy(), marker="o", label=arm, color=colors.get(arm))
    ax.set_xticks(range(table.shape[1]), list(table.columns), rotation=45, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel(r"$\|W - W_0\| / \|W_0\|$ (log scale)")
    ax.set_title("How far each stage's weights moved from where the run started", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax


def plot_grad_cam(images: torch.Tensor, maps: Mapping[str, torch.Tensor], title: str) -> Figure:
    """Test images (top row) and each arm's Grad-CAM map over them (one row per arm)."""
    n = len(images)
    fig, axes = plt.subplots(len(maps) + 1, n, figsize=(1.6 * n, 1.7 * (len(maps) + 1)), squeeze=False)
    shown = images.float() / 255
    for j in range(n):
        image = shown[j].permute(1, 2, 0).squeeze(-1).numpy()
        axes[0][j].imshow(image, cmap="gray" if image.ndim == 2 else None)
        for i, (arm, cam) in enumerate(maps.items(), start=1):
            axes[i][j].imshow(image, cmap="gray" if image.ndim == 2 else None)
            axes[i][j].imshow(cam[j].numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if j == 0:
                axes[i][j].set_ylabel(arm, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_ylabel("image", fontsize=8)
    return titled(fig, title)
