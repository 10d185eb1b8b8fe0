"""The study's polyp-detection experiment as sweep runs: patch classifier -> hard negatives -> maps -> FROC.

One :class:`PolypRunConfig` is one run of :func:`helpers.runner.run_sweep`, so detection results are
resumable, get a learning rate tuned per strategy on validation data (``lr_grid``), and land in the same
kind of results table as the classification sweeps. A run (:func:`run_polyp`):

1. loads a bounded set of frames (:func:`prepare`: split by sequence, training frames thinned and
   capped, validation frames capped, every test frame of the test sequences unless the profile caps them);
2. trains a patch classifier (:func:`helpers.train.fit`) on the sampler's patches;
3. mines hard negatives (one round): the highest-scoring windows off the polyp in training frames
   become negatives, and the classifier trains on;
4. keeps the state (before or after the round) with the better *validation* FROC figure
   (:func:`helpers.detection.froc.validation_figure` over validation sequences; test frames are never used to choose);
5. detects polyps in every test frame (:func:`helpers.detection.maps.score_frames`) and scores them with FROC,
   with a bootstrap band over test sequences.

Selection column: ``val_auc`` of a detection row holds the validation FROC figure (the suite's rule: every
"best" choice is made on ``val_auc``, see :data:`helpers.analysis.SELECT_BY`); ``val_patch_auc`` holds the
patch classifier's validation AUC.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..datasets import DataSet, Split
from ..env import pick_device, seed_everything
from ..finetune import Level, ladder, resolve_level, set_level
from ..metrics import format_ci
from ..models import MIN_INPUT, FTModel, build_model
from ..runner import RunIdentity, versions
from ..train import TrainConfig, TrainResult, fit
from ..weights import safe_load
from . import froc, maps, patches, video

FP_RATES = (0.1, 0.5, 1.0)
FP_GRID = np.logspace(-2, 1, 31)
MATCH_TOLERANCE = 0.25     # a candidate within this share of the base window from a polyp's pixels hits it
NMS_RADIUS = 0.5           # candidates are kept at least this share of the base window apart
SCALES = (1.0, 1.2, 1.5)   # the sampler's scales, reused as the test windows
HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "not decidable at this budget"


@dataclass(frozen=True)
class PolypRunConfig(RunIdentity):
    """One detection run; every field is part of its identity (hash)."""

    dataset: str = "CVC-ClinicDB"      # a folder path (the notebook passes the resolved one) or a set name
    arch: str = "efficientnet_lite0"
    strategy: str = "scratch"          # "scratch" or a ladder level (name, or last/middle/all)
    fraction: float = 1.0              # share of training sequences (nested)
    seed: int = 0
    split_seed: int = 0                # the train/val/test split by sequence (fixed across seeds)
    patch: int = 32                    # patch side fed to the classifier (px)
    frame_size: tuple[int, int] = (288, 384)   # every frame is resized to this (H, W)
    frame_step: int = 1                # keep every k-th frame of each training sequence
    max_train_frames: int | None = None
    max_val_frames: int | None = None
    max_test_frames: int | None = None  # None: every frame of the test sequences
    steps: int = 80                    # SGD steps before the hard-negative round
    hard_steps: int = 40               # SGD steps after it (0: no round)
    hard_per_frame: int = 4            # hard negatives kept per training frame
    hard_frames: int | None = 40       # training frames searched for hard negatives (spread evenly)
    batch_size: int = 32
    lr: float | None = None
    decay_steps: int = 20
    n_anchors: int = 1                 # positive crops per polyp and scale (before flips/rotations)
    n_neg_per_frame: int = 4           # random background crops per frame
    stride: float = 0.5                # map stride as a share of each window
    max_candidates: int = 3            # candidates per frame
    average_views: bool = True         # final score: mean over 3 windows x 8 flips/rotations
    n_bootstrap: int = 500

    def run(self, quiet: bool = True) -> dict:
        """Run it (:func:`run_polyp`, no weights saved): what :func:`helpers.runner.run_sweep` calls by default."""
        return run_polyp(self, quiet=quiet)


# ----------------------------------------------------------------------------- data

@dataclass
class PolypData:
    """The frames one run uses and where they came from.

    ``frames`` holds only the frames used (train, then val, then test); ``split`` indexes into them;
    ``folder_split`` gives the number of frames of each split in the whole folder.
    """

    frames: video.PolypFrames
    split: dict[str, np.ndarray]
    folder_split: dict[str, int]
    n_folder_frames: int


@lru_cache(maxsize=2)
def load_bounded(dataset: str, frame_size: tuple[int, int], split_seed: int, frame_step: int,
                 max_train: int | None, max_val: int | None, max_test: int | None) -> PolypData:
    """Split a folder by sequence, choose the frames within the bounds, decode only those (cached per process)."""
    index = video.index_polyp_folder(dataset)
    full = video.split_sequences(index.sequences, seed=split_seed)
    chosen = video.select_frames(index.sequences, full, frame_step, max_train, max_val, max_test, seed=split_seed)
    order = np.concatenate([chosen[k] for k in ("train", "val", "test")])
    loaded = video.load_polyp_frames(index.folder, frame_size, only=order)
    split, start = {}, 0
    for k in ("train", "val", "test"):
        split[k] = np.arange(start, start + len(chosen[k]), dtype=np.int64)
        start += len(chosen[k])
    return PolypData(loaded, split, {k: len(v) for k, v in full.items()}, len(index))


def prepare(config: PolypRunConfig) -> PolypData:
    """The bounded frames of this run (see :func:`load_bounded`)."""
    return load_bounded(config.dataset, tuple(config.frame_size), config.split_seed, config.frame_step,
                        config.max_train_frames, config.max_val_frames, config.max_test_frames)


def detector_settings(config: PolypRunConfig, window: float) -> maps.DetectorSettings:
    """The detector of this run around a base ``window`` (median training polyp size)."""
    return maps.DetectorSettings(patch=config.patch, window=float(window), scales=SCALES, stride=config.stride,
                                  nms_radius=NMS_RADIUS, tolerance=MATCH_TOLERANCE,
                                  max_candidates=config.max_candidates, average_views=config.average_views)


def base_window(data: PolypData) -> int:
    """The base detection window: median polyp size over ALL training frames used (every fraction alike)."""
    return patches.polyp_window(data.frames, data.split["train"], scales=(1.0,))


def patch_data(config: PolypRunConfig, data: PolypData, train_idx: np.ndarray) -> DataSet:
    """Training patches (with the 8 flips/rotations) of ``train_idx`` and validation patches of the val frames."""
    sampling = {"n_anchors": config.n_anchors, "n_neg_per_frame": config.n_neg_per_frame}
    train = patches.sample_patches(data.frames, train_idx, config.patch, config.seed, **sampling)
    val = patches.sample_patches(data.frames, data.split["val"], config.patch, config.seed + 1,
                               augment_dihedral=False, **sampling)
    return DataSet(f"polyp-{data.frames.source.name}", train, val, val, list(video.CLASS_NAMES),
                   str(data.frames.source), "research and educational use only (see the folder's owners)",
                   {"frames_train": train_idx})


# ----------------------------------------------------------------------------- training

def build_detector(config: PolypRunConfig) -> tuple[FTModel, Level | None]:
    """The patch classifier at the run's level (ImageNet weights unless scratch)."""

    scratch = config.strategy == "scratch"
    model = build_model(config.arch, 2, pretrained=not scratch, image_size=max(config.patch, MIN_INPUT[config.arch]))
    level = None if scratch else resolve_level(model, config.strategy)
    if level is not None:
        set_level(model, level)
    return model, level


def _train_config(config: PolypRunConfig, steps: int, lr: float, seed: int, quiet: bool) -> TrainConfig:
    """The engine's settings for one pass: the paper's recipe, one validation check at the end."""
    return TrainConfig.for_strategy(config.strategy, lr=lr, steps=steps, batch_size=config.batch_size, patience=None,
                                    eval_every=steps, decay_steps=config.decay_steps, seed=seed, quiet=quiet)


def with_hard_negatives(train: Split, hard: torch.Tensor, seed: int) -> Split:
    """``train`` plus the hard-negative patches and as many positive patches drawn again, so classes stay balanced."""
    gen = torch.Generator().manual_seed(seed)
    positives = torch.nonzero(train.labels == 1).flatten()
    extra = positives[torch.randint(len(positives), (len(hard),), generator=gen)]
    images = torch.cat([train.images, hard, train.images[extra]])
    labels = torch.cat([train.labels, torch.zeros(len(hard), dtype=train.labels.dtype), train.labels[extra]])
    return Split(images, labels)


def hard_negative_patches(model: torch.nn.Module, config: PolypRunConfig, data: PolypData, train_idx: np.ndarray,
                          settings: maps.DetectorSettings, device: str | torch.device) -> torch.Tensor:
    """uint8 patches (with their 8 flips/rotations) of the hard negatives mined in training frames."""
    searched = video.bounded(train_idx, config.hard_frames)
    plan = maps.mine_hard_negatives(model, data.frames, searched, settings, config.hard_per_frame, device=device)
    if plan.empty:
        return torch.zeros(0, 3, config.patch, config.patch, dtype=torch.uint8)
    return patches.dihedral8(patches.crop_patches(data.frames.images, plan, config.patch))


def _validate(model, data: PolypData, settings, device) -> tuple[float, list]:
    """Validation FROC figure and curve of the model as it is now."""
    matches, table = maps.score_frames(model, data.frames, data.split["val"], settings, device)
    figure = froc.validation_figure(matches, table, FP_RATES)
    curve = froc.froc_curve(matches, len(table), max(1, int(table["n_polyps"].sum())))
    return figure, curve[["fp_per_frame", "sensitivity"]].to_numpy().round(5).tolist()


@dataclass
class TrainedDetector:
    """What :func:`train_detector` returns: the kept model and how it got there."""

    model: torch.nn.Module
    level: Level | None                 # None for scratch
    settings: maps.DetectorSettings
    device: str
    patches: DataSet                    # the first pass's training and validation patches
    train_idx: np.ndarray               # the training frames used
    result: TrainResult                 # the engine's record of the last pass
    steps_run: int
    before: tuple[float, list] = (float("nan"), [])   # validation FROC figure and curve before the round
    after: tuple[float, list] = (float("nan"), [])    # ... and after it (NaN when there was no round)
    kept: str = "before"                # which state the model holds
    n_hard: int = 0                     # hard negatives added (before flips/rotations)

    @property
    def kept_figure(self) -> tuple[float, list]:
        """The validation figure and curve of the kept state."""
        return self.after if self.kept == "after" else self.before


def train_detector(config: PolypRunConfig, data: PolypData, quiet: bool = True) -> TrainedDetector:
    """Train, mine hard negatives, train on, keep the state with the better validation FROC figure."""
    train_idx = video.reduce_by_sequence(data.frames, data.split["train"], config.fraction, config.seed)
    settings = detector_settings(config, base_window(data))
    first = patch_data(config, data, train_idx)
    seed_everything(config.seed)
    model, level = build_detector(config)
    train_cfg = _train_config(config, config.steps, config.learning_rate(), config.seed, quiet)
    result = fit(model, first, train_cfg)
    out = TrainedDetector(model, level, settings, result.device, first, train_idx, result, result.iterations)
    out.before = _validate(model, data, settings, out.device)
    if config.hard_steps <= 0:
        return out
    state = copy.deepcopy(model.state_dict())
    hard = hard_negative_patches(model, config, data, train_idx, settings, out.device)
    if len(hard):
        second = DataSet(first.name, with_hard_negatives(first.train, hard, config.seed), first.val,
                         first.test, first.class_names, first.source, first.licence, first.meta)
        lr_now = train_cfg.lr * train_cfg.lr_decay ** (config.steps / config.decay_steps)   # the schedule goes on
        result = fit(model, second, _train_config(config, config.hard_steps, lr_now, config.seed + 1, quiet))
        out.after = _validate(model, data, settings, out.device)
        out.n_hard, out.result, out.steps_run = len(hard) // 8, result, out.steps_run + result.iterations
        if out.after[0] >= out.before[0] or not np.isfinite(out.before[0]):
            out.kept = "after"
        else:
            model.load_state_dict(state)
    return out


# ----------------------------------------------------------------------------- one run

def run_polyp(config: PolypRunConfig, weights_dir: str | Path | None = None, quiet: bool = True) -> dict:
    """Train the detector, detect polyps in every test frame, score with FROC; one result row.

    A run whose training diverges (:class:`helpers.train.TrainingDivergedError`, a NaN loss) returns
    a row with ``diverged`` True that rate tuning never chooses and summaries leave out. With
    ``weights_dir`` the kept weights are saved as ``<weights_dir>/<config hash>.pt`` (a plain state
    dict, loadable with ``weights_only=True``; see :func:`load_detector`).
    """
    t0 = time.perf_counter()
    data = prepare(config)
    try:
        trained = train_detector(config, data, quiet)
    except FloatingPointError as err:      # TrainingDivergedError included
        return diverged_row(config, err, time.perf_counter() - t0)
    model, settings = trained.model, trained.settings
    matches, frame_table = maps.score_frames(model, data.frames, data.split["test"], settings, trained.device)
    row = detection_row(config, data, trained, matches, frame_table)
    row["wall_s"] = time.perf_counter() - t0
    if weights_dir is not None:
        Path(weights_dir).mkdir(parents=True, exist_ok=True)
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, Path(weights_dir) / f"{config.key()}.pt")
    return row


def diverged_row(config: PolypRunConfig, err: Exception, wall_s: float) -> dict:
    """The row of a run whose training diverged (no detection metrics)."""
    return {**asdict(config), "config_hash": config.key(), "task": "polyp", "requested": config.strategy,
            "strategy": config.strategy, "lr": config.learning_rate(), "val_auc": float("nan"),
            "val_loss": float("nan"), "collapsed": False, "diverged": True, "note": str(err), "n_train": 0,
            "wall_s": wall_s, "versions": versions(), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def detection_row(config: PolypRunConfig, data: PolypData, trained: TrainedDetector, matches: pd.DataFrame,
                  frame_table: pd.DataFrame) -> dict:
    """Flatten one detection run into a table row (validation figures, FROC summary, curve, raw matches)."""
    level, result, settings = trained.level, trained.result, trained.settings
    n_frames, n_polyps = len(frame_table), int(frame_table["n_polyps"].sum())
    summary = froc.froc_summary(matches, frame_table, FP_RATES, n_boot=config.n_bootstrap, seed=config.seed)
    curve = froc.froc_curve(matches, n_frames, max(1, n_polyps))
    row = {**asdict(config), "config_hash": config.key(), "task": "polyp",
           "strategy": "scratch" if level is None else level.name, "requested": config.strategy,
           "level": "" if level is None else level.name, "level_index": -1 if level is None else level.index,
           "lr": config.learning_rate(), "n_train": len(trained.train_idx),
           "n_train_patches": len(trained.patches.train), "n_hard_negatives": trained.n_hard,
           "val_frames": len(data.split["val"]), "test_frames": n_frames, "test_polyps": n_polyps,
           "test_sequences": int(frame_table["sequence"].nunique()), "window": settings.window,
           "val_auc": trained.kept_figure[0], "val_figure_before": trained.before[0],
           "val_figure_after": trained.after[0], "kept": trained.kept, "val_froc_before": trained.before[1],
           "val_froc_after": trained.after[1],
           "val_patch_auc": result.best_val_auc, "val_loss": result.best_val_loss, "collapsed": False,
           "diverged": False, "steps_run": trained.steps_run, "iterations": trained.steps_run,
           "cached": result.cached, "device": result.device}
    for _, r in summary.iterrows():
        key = f"froc_sens@{r['fp_per_frame']:g}"
        row.update({key: r["sensitivity"], f"{key}_lo": r["lo"], f"{key}_hi": r["hi"]})
    row.update(froc=curve[["fp_per_frame", "sensitivity"]].to_numpy().round(5).tolist(),
               matches={c: matches[c].tolist() for c in ("frame", "sequence", "score", "is_tp", "is_fp", "polyp_id")},
               frame_table={c: frame_table[c].tolist() for c in frame_table.columns},
               versions=versions(), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return row


def load_detector(config: PolypRunConfig, weights_dir: str | Path) -> FTModel:
    """The trained patch classifier of a finished run, from the weights :func:`run_polyp` saved."""

    model, _ = build_detector(config)
    model.load_state_dict(safe_load(Path(weights_dir) / f"{config.key()}.pt"))
    return model.eval()


def polyp_grid(strategies: Sequence[str], fractions: Sequence[float], seeds: Sequence[int] = (0,),
               **common) -> list[PolypRunConfig]:
    """Every combination of strategy, training fraction (by sequence) and seed."""
    return [PolypRunConfig(strategy=s, fraction=float(f), seed=int(r), **common)
            for s in strategies for f in fractions for r in seeds]


# ----------------------------------------------------------------------------- summaries

def finished(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that did not diverge."""
    if "diverged" not in table:
        return table
    return table[~table["diverged"].fillna(False).astype(bool)]


def matches_frame(row: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored candidate matches and frame table of one result row, as DataFrames."""
    return pd.DataFrame(row["matches"]), pd.DataFrame(row["frame_table"])


def _ordered(table: pd.DataFrame) -> list[str]:
    """Strategies: scratch first, then the ladder from shallow to deep."""
    order = table.groupby("strategy")["level_index"].first().sort_values()
    return list(order.index)


def froc_bands(table: pd.DataFrame, fp_grid: Sequence[float] | None = None, n_boot: int = 300,
               seed: int = 0) -> pd.DataFrame:
    """FROC per strategy and fraction, averaged over seeds, with a 95% band over seeds and test sequences."""
    grid = FP_GRID if fp_grid is None else np.asarray(fp_grid, dtype=float)
    parts = []
    for (strategy, fraction), rows in finished(table).groupby(["strategy", "fraction"], sort=False):
        runs = [matches_frame(r) for _, r in rows.iterrows()]
        band = froc.froc_band_over_seeds(runs, grid, n_boot=n_boot, seed=seed)
        parts.append(band.assign(strategy=strategy, fraction=fraction, level_index=rows["level_index"].iloc[0]))
    return pd.concat(parts, ignore_index=True)


def sensitivity_table(table: pd.DataFrame, rates: Sequence[float] = FP_RATES, n_boot: int = 500,
                      seed: int = 0) -> pd.DataFrame:
    """Sensitivity (95% band over seeds and test sequences) at each rate, one row per strategy and fraction."""
    bands = froc_bands(table, rates, n_boot, seed)
    done = finished(table)
    rows = []
    for (fraction, strategy), band in bands.groupby(["fraction", "strategy"], sort=False):
        mine = done[(done["strategy"] == strategy) & (done["fraction"] == fraction)]
        row = {"strategy": strategy, "training sequences": f"{fraction:.0%}", "seeds": len(mine),
               "rate": ", ".join(f"{v:g}" for v in sorted(mine["lr"].unique())),
               "validation figure": round(float(mine["val_auc"].mean()), 3)}
        for _, r in band.iterrows():
            row[f"sensitivity at {r['fp_per_frame']:g} FP/frame"] = format_ci(r["sensitivity"], r["lo"], r["hi"], 2)
        rows.append((fraction, band["level_index"].iloc[0], row))
    return pd.DataFrame([r for _, _, r in sorted(rows, key=lambda t: (-t[0], t[1]))])


def hard_negative_table(table: pd.DataFrame) -> pd.DataFrame:
    """Validation FROC figure before and after the hard-negative round, mean over seeds, per strategy."""
    done = finished(table)
    done = done[done["fraction"] == done["fraction"].max()]
    out = done.groupby("strategy").agg(before=("val_figure_before", "mean"), after=("val_figure_after", "mean"),
                                       hard_negatives=("n_hard_negatives", "mean"),
                                       kept_after=("kept", lambda k: int((k == "after").sum())),
                                       runs=("kept", "size"))
    return out.loc[[s for s in _ordered(done) if s in out.index]].round(3)


def best_tuned_level(table: pd.DataFrame) -> str | None:
    """The tuned level with the best mean validation figure over seeds, at the largest fraction."""
    done = finished(table)
    done = done[(done["fraction"] == done["fraction"].max()) & (done["strategy"] != "scratch")]
    if done.empty:
        return None
    return str(done.groupby("strategy")["val_auc"].mean().idxmax())


def _is_all_layers(arch: str, level: str) -> bool:
    """Whether ``level`` is the last rung of its architecture's ladder (every layer tuned)."""
    return ladder(build_model(arch, 2, image_size=64))[-1].name == level


def all_layers_verdict(bands: pd.DataFrame, rate: float, n_sequences: int = 2) -> tuple[str, str]:
    """The study's polyp claim, "tuning all layers is best", at one FP rate: (verdict, reason).

    ``bands`` from :func:`froc_bands` at the largest fraction. Read as the study read its figures:
    non-overlapping 95% bands count as a difference. holds: all layers has the highest sensitivity
    and its band lies above every other tuned level's; does not hold: some tuned level's band lies
    above it; otherwise not decidable at this budget.
    """
    at = bands[np.isclose(bands["fp_per_frame"], rate) & (bands["strategy"] != "scratch")]
    if at["strategy"].nunique() < 2:
        return UNDECIDED, "fewer than two tuned levels were trained"
    if n_sequences < 2:
        return UNDECIDED, "the test frames come from one sequence, so there is no band to compare"
    deepest = at.loc[at["level_index"].idxmax()]
    others = at[at["strategy"] != deepest["strategy"]]
    above = others[others["lo"] > deepest["hi"]]
    if len(above):
        return FAILS, f"{', '.join(above['strategy'])} lies above all layers ({deepest['sensitivity']:.2f})"
    if deepest["sensitivity"] >= others["sensitivity"].max() and (deepest["lo"] > others["hi"]).all():
        return HOLDS, f"all layers {deepest['sensitivity']:.2f}, its band above every other tuned level"
    return UNDECIDED, (f"all layers {deepest['sensitivity']:.2f} ({deepest['lo']:.2f}-{deepest['hi']:.2f}); "
                       "the bands overlap")


def detection_report(table: pd.DataFrame, rates: Sequence[float] = FP_RATES, n_boot: int = 500,
                     seed: int = 0) -> list[str]:
    """Plain sentences, computed from the table, on this run against the study's polyp finding."""
    done = finished(table)
    full = done[done["fraction"] == done["fraction"].max()]
    bands = froc_bands(full, rates, n_boot, seed)
    lines = [f"{len(full)} runs at {full['fraction'].max():.0%} of the training sequences, "
             f"{full.groupby('strategy').size().min()} seed(s) each, every run scored on the same "
             f"{int(full['test_frames'].iloc[0])} test frames ({int(full['test_sequences'].iloc[0])} sequences)."]
    best = best_tuned_level(full)
    if best is not None:
        lines.append(f"The tuned level with the best validation FROC figure is {best} (chosen on validation "
                     "sequences, never on test).")
        deepest = full.loc[full["level_index"].idxmax(), "strategy"]
        if not _is_all_layers(full["arch"].iloc[0], deepest):
            lines.append("The deepest level trained does not tune every layer: the study's claim is not tested.")
        else:
            for rate in rates:
                verdict, why = all_layers_verdict(bands, rate, int(full["test_sequences"].iloc[0]))
                lines.append(f"Study's claim 'tuning all layers is best' at {rate:g} FP/frame: {verdict} ({why}).")
    if "scratch" in set(full["strategy"]) and best is not None:
        for rate in rates:
            at = bands[np.isclose(bands["fp_per_frame"], rate)].set_index("strategy")
            s, b = at.loc["scratch"], at.loc[best]
            word = ("not distinguishable (one test sequence) from" if full["test_sequences"].iloc[0] < 2 else
                    "above" if b["lo"] > s["hi"] else "below" if b["hi"] < s["lo"] else "not distinguishable from")
            lines.append(f"At {rate:g} FP/frame the chosen level {best} ({b['sensitivity']:.2f}) is {word} scratch "
                         f"({s['sensitivity']:.2f}, {s['lo']:.2f}-{s['hi']:.2f}).")
    if done["fraction"].nunique() > 1:
        key = "froc_sens@0.5"
        means = done.groupby(["strategy", "fraction"])[key].mean().unstack()
        gain = (means.iloc[:, -1] - means.iloc[:, 0]).dropna()
        lines.append("Sensitivity at 0.5 FP/frame gained from the smallest to the largest training set "
                     "(negative: lost): " + ", ".join(f"{k} {v:+.2f}" for k, v in gain.items()) + ".")
    return lines


def detection_examples(model: torch.nn.Module, data: PolypData, indices: Sequence[int], settings: maps.DetectorSettings,
                       device: str | None = None) -> list[dict]:
    """For a few frames: the detector's combined map at frame size, the FOV and the candidates (best first)."""

    device = pick_device(device)
    idx = [int(i) for i in indices]
    values, _, base = maps.combined_map(model, data.frames.images[idx], data.frames.fov[idx], settings, device)
    cands = maps.detect(model, data.frames, idx, settings, device)
    return [{"frame": i, "map": maps.upsample_map(v.clamp_min(0), base), "raw_map": v, "candidates": c,
             "fov": data.frames.fov[i]} for i, v, c in zip(idx, values, cands)]
