"""The study's polyp-detection experiment as sweep runs: patch classifier -> probability maps -> FROC.

One :class:`PolypRunConfig` is one run of :func:`helpers.experiments.run_sweep`, so detection results are
resumable and land in the same kind of results table as the classification sweeps. Everything below
reuses the suite's parts: :mod:`helpers.polyp` for frames, patches and maps, :mod:`helpers.froc` for
scoring, :func:`helpers.train.fit` for training and the same ladders of :mod:`helpers.finetune`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import froc, polyp
from .experiments import config_hash, versions

FP_RATES = (0.01, 0.1, 1.0)


@dataclass(frozen=True)
class PolypRunConfig:
    """One detection run; every field is part of its identity (hash)."""

    dataset: str = "CVC-ClinicDB"
    arch: str = "efficientnet_lite0"
    strategy: str = "scratch"          # "scratch" or a ladder level (name, or last/middle/all)
    fraction: float = 1.0              # share of training sequences (nested)
    seed: int = 0
    split_seed: int = 0                # the train/val/test split by sequence (fixed across seeds)
    patch: int = 32                    # patch side fed to the classifier (px)
    max_frames: int | None = None      # whole sequences up to this many frames
    frame_step: int = 1                # keep every k-th frame of each sequence
    epochs: int = 3
    patience: int = 2
    batch_size: int = 64
    lr: float | None = None
    eval_every: int = 50
    stride: float = 0.25               # map stride as a share of the detection window
    n_anchors: int = 2                 # positive crops per polyp and scale (before flips/rotations)
    n_neg_per_frame: int = 8           # background crops per frame
    n_bootstrap: int = 500

    def key(self) -> str:
        return config_hash(self)

    def learning_rate(self) -> float:
        from .experiments import FINETUNE_LR, SCRATCH_LR
        return self.lr if self.lr is not None else (SCRATCH_LR if self.strategy == "scratch" else FINETUNE_LR)


@lru_cache(maxsize=2)
def cached_frames(dataset: str, max_frames: int | None = None, frame_step: int = 1) -> polyp.PolypFrames:
    """Load the frames once per process (whole sequences up to ``max_frames``, every ``frame_step``-th frame)."""
    return polyp.thin_frames(polyp.load_polyp_frames(dataset, max_frames=max_frames), frame_step)


def prepare(config: PolypRunConfig):
    """Frames, their split by sequence, and the patch data set of this run."""
    frames = cached_frames(config.dataset, config.max_frames, config.frame_step)
    split = polyp.split_by_sequence(frames, seed=config.split_seed)
    patches = polyp.patch_dataset(frames, split, patch=config.patch, seed=config.seed,
                                  train_fraction=config.fraction, n_anchors=config.n_anchors,
                                  n_neg_per_frame=config.n_neg_per_frame)
    return frames, split, patches


def build_detector(config: PolypRunConfig):
    """The patch classifier at the run's level (ImageNet weights unless scratch)."""
    from .finetune import resolve_level, set_level
    from .models import MIN_INPUT, build_model

    scratch = config.strategy == "scratch"
    model = build_model(config.arch, 2, pretrained=not scratch, image_size=max(config.patch, MIN_INPUT[config.arch]))
    level = None if scratch else resolve_level(model, config.strategy)
    if level is not None:
        set_level(model, level)
    return model, level


def train_detector(config: PolypRunConfig, quiet: bool = True):
    """Train the run's patch classifier; returns (model, level, frames, split, patches, train result)."""
    from .train import TrainConfig, fit

    from .env import seed_everything

    frames, split, patches = prepare(config)
    seed_everything(config.seed)
    model, level = build_detector(config)
    # The detector's budget is still given in epochs over its patches (converted to the engine's steps).
    per_epoch = -(-len(patches.train) // config.batch_size)
    result = fit(model, patches, TrainConfig(
        steps=config.epochs * per_epoch, batch_size=config.batch_size, lr=config.learning_rate(),
        head_lr_mult=1.0 if level is None else 10.0, patience=config.patience * per_epoch,
        eval_every=min(config.eval_every, per_epoch), decay_steps=per_epoch, seed=config.seed, quiet=quiet))
    return model, level, frames, split, patches, result


def run_polyp(config: PolypRunConfig, weights_dir: str | Path | None = None, quiet: bool = True) -> dict:
    """Train the patch classifier, detect polyps in the test frames, score with FROC; one result row.

    With ``weights_dir`` the trained weights are saved as ``<weights_dir>/<config hash>.pt`` (a plain
    state dict, loadable with ``weights_only=True``; see :func:`load_detector`).
    """
    from .train import evaluate

    t0 = time.perf_counter()
    model, level, frames, split, patches, result = train_detector(config, quiet)
    patch_metrics, _ = evaluate(model, patches.test, n_boot=200, seed=config.seed, device=result.device)
    window = float(patches.meta["window"])
    matches, frame_table = polyp.score_frames(model, frames, split["test"], patch=config.patch, window=window,
                                              stride=window * config.stride, device=result.device)
    row = detection_row(config, level, patches, result, patch_metrics, matches, frame_table, window)
    row["wall_s"] = time.perf_counter() - t0
    if weights_dir is not None:
        Path(weights_dir).mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, Path(weights_dir) / f"{config.key()}.pt")
    return row


def load_detector(config: PolypRunConfig, weights_dir: str | Path):
    """The trained patch classifier of a finished run, from the weights :func:`run_polyp` saved."""
    from .weights import safe_load

    model, _ = build_detector(config)
    model.load_state_dict(safe_load(Path(weights_dir) / f"{config.key()}.pt"))
    return model.eval()


def detection_row(config, level, patches, result, patch_metrics, matches, frame_table, window) -> dict:
    """Flatten one detection run into a table row (FROC summary, curve, and the raw matches)."""
    n_frames, n_polyps = len(frame_table), int(frame_table["n_polyps"].sum())
    summary = froc.froc_summary(matches, frame_table, FP_RATES, n_boot=config.n_bootstrap, seed=config.seed)
    curve = froc.froc_curve(matches, n_frames, n_polyps)
    row = {**asdict(config), "config_hash": config.key(), "task": "polyp",
           "strategy": "scratch" if level is None else level.name, "requested": config.strategy,
           "level": "" if level is None else level.name, "level_index": -1 if level is None else level.index,
           "n_train": len(patches.meta["frames_train"]), "n_train_patches": len(patches.train),
           "test_frames": n_frames, "test_polyps": n_polyps, "window": window,
           "val_auc": result.best_val_auc, "best_step": result.best_step, "steps_run": result.iterations,
           "iterations": result.iterations, "cached": result.cached, "device": result.device,
           "curve": [[int(i), float(a)] for i, a in zip(result.curve["iteration"], result.curve["val_auc"])],
           "patch_test_auc": patch_metrics["auc"]}
    for _, r in summary.iterrows():
        key = f"froc_sens@{r['fp_per_frame']:g}"
        row.update({key: r["sensitivity"], f"{key}_lo": r["lo"], f"{key}_hi": r["hi"]})
    row.update(froc=curve[["fp_per_frame", "sensitivity"]].to_numpy().round(5).tolist(),
               matches={c: matches[c].tolist() for c in ("frame", "sequence", "score", "is_tp", "is_fp", "polyp_id")},
               frame_table={c: frame_table[c].tolist() for c in frame_table.columns},
               versions=versions(), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return row


def polyp_grid(strategies, fractions, seeds=(0,), **common) -> list[PolypRunConfig]:
    """Every combination of strategy, training fraction (by sequence) and seed."""
    return [PolypRunConfig(strategy=s, fraction=float(f), seed=int(r), **common)
            for s in strategies for f in fractions for r in seeds]


def matches_frame(row: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored candidate matches and frame table of one result row, as DataFrames."""
    return pd.DataFrame(row["matches"]), pd.DataFrame(row["frame_table"])


def froc_bands(table: pd.DataFrame, fp_grid=None, n_boot: int = 300, seed: int = 0) -> pd.DataFrame:
    """FROC curve with a 95% sequence-bootstrap band for every row (strategy, fraction) of a results table."""
    grid = np.logspace(-2, 1, 31) if fp_grid is None else np.asarray(fp_grid)
    parts = []
    for _, row in table.iterrows():
        matches, frames = matches_frame(row)
        band = froc.froc_with_band(matches, frames, grid, n_boot=n_boot, seed=seed)
        parts.append(band.assign(strategy=row["strategy"], fraction=row["fraction"], seed=row["seed"]))
    return pd.concat(parts, ignore_index=True)


def _is_all_layers(table: pd.DataFrame, level: str) -> bool:
    """Whether ``level`` is the last rung of its architecture's ladder (every layer tuned)."""
    from .finetune import ladder
    from .models import build_model
    arch = table["arch"].iloc[0]
    return ladder(build_model(arch, 2, image_size=64))[-1].name == level


def sensitivity_table(table: pd.DataFrame, rates=FP_RATES) -> pd.DataFrame:
    """Sensitivity (95% CI) at each false-positive rate, one row per strategy and training fraction."""
    from .metrics import format_ci
    rows = []
    for _, r in table.sort_values(["fraction", "level_index"]).iterrows():
        row = {"strategy": r["strategy"], "training sequences": f"{r['fraction']:.0%}", "seed": r["seed"]}
        for rate in rates:
            k = f"froc_sens@{rate:g}"
            row[f"sensitivity at {rate:g} FP/frame"] = format_ci(r[k], r[k + "_lo"], r[k + "_hi"], 2)
        rows.append(row)
    return pd.DataFrame(rows)


def detection_report(table: pd.DataFrame, rate: float = 0.1) -> list[str]:
    """Plain sentences, computed from the table, on this run against the study's polyp finding."""
    key = f"froc_sens@{rate:g}"
    cols = [key, key + "_lo", key + "_hi", "level_index", "val_auc"]
    full = table[table["fraction"] == table["fraction"].max()].groupby("strategy")[cols].mean()  # mean over seeds
    lines = []
    scratch = full.loc[["scratch"]] if "scratch" in full.index else full.iloc[:0]
    tuned = full.drop(index="scratch", errors="ignore")
    if len(tuned):
        best_name = tuned["val_auc"].idxmax()   # chosen on validation patches, reported on test frames
        best = tuned.loc[best_name]
        all_layers = tuned[tuned["level_index"] == tuned["level_index"].max()].index[0]
        lines.append(f"With all training sequences, the tuned level with the best validation AUC is {best_name}: sensitivity "
                     f"{best[key]:.2f} (95% CI {best[key + '_lo']:.2f}-{best[key + '_hi']:.2f}) at {rate:g} "
                     f"false positives per frame.")
        if not _is_all_layers(table, all_layers):
            lines.append("The deepest level trained here does not tune every layer, so the study's finding "
                         "(all layers best) is not tested by this run.")
        elif best_name == all_layers:
            lines.append("Tuning all layers was best here, as in the study.")
        else:
            lines.append(f"The study found tuning all layers best for polyps; here {all_layers} reached "
                         f"{tuned.loc[all_layers, key]:.2f}, so this run does not reproduce that ranking "
                         "(check the overlapping intervals).")
    if len(scratch) and len(tuned):
        s = scratch.iloc[0]
        verdict = ("above" if best[key + "_lo"] > s[key + "_hi"] else
                   "below" if best[key + "_hi"] < s[key + "_lo"] else "not distinguishable from")
        lines.append(f"Scratch training reached {s[key]:.2f} ({s[key + '_lo']:.2f}-{s[key + '_hi']:.2f}); the best "
                     f"tuned level is {verdict} it.")
    small = table[table["fraction"] == table["fraction"].min()]
    if len(small) and table["fraction"].nunique() > 1:
        drop = (full[key] - small.groupby("strategy")[key].mean()).dropna()
        lines.append("Sensitivity gained from the smallest to the largest training set (negative: lost): "
                     + ", ".join(f"{k} {v:+.2f}" for k, v in drop.items()) + ".")
    lines.append("Where this differs from the study: public CVC-ClinicDB still frames (every frame holds a polyp) "
                 "instead of full videos, a dense sliding-window map instead of the study's hand-crafted candidate "
                 "generator, small patches and a short CPU budget.")
    return lines


def detection_examples(model, frames: polyp.PolypFrames, indices, patch: int, window: float, stride: float,
                       device: str | None = None) -> list[dict]:
    """For a few frames: the probability map at frame size and the candidates (best first)."""
    from .env import pick_device

    geometry = polyp.map_geometry(frames.frame_size, patch, window * stride, window)
    maps = polyp.probability_map(model, frames.images[list(indices)], patch, window * stride, window,
                                 device=pick_device(device))
    return [{"frame": int(i), "map": polyp.upsample_map(m, geometry), "raw_map": m,
             "candidates": polyp.find_candidates(m, window / 2, geometry=geometry)}
            for i, m in zip(indices, maps)]
