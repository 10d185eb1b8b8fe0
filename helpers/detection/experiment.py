"""The study's polyp-detection experiment as sweep runs: patch classifier -> hard negatives -> maps -> FROC.

One :class:`PolypRunConfig` is one run of :func:`helpers.runner.run_sweep`, so detection results are
resumable, get a learning rate tuned per strategy on validation data (``lr_grid``), and land in the same
kind of results table as the classification sweeps (summarised by :mod:`helpers.detection.report`). A run
(:func:`run_polyp`):

1. loads a bounded set of frames (:func:`prepare`: split by sequence, training frames thinned and
   capped, validation frames capped, every test frame of the test sequences unless the profile caps them);
2. trains a patch classifier (:func:`helpers.train.fit`) on the sampler's patches;
3. mines hard negatives (one round): the highest-scoring windows off the polyp in training frames
   become negatives, and the classifier trains on;
4. keeps the state (before or after the round) with the better *validation* FROC score
   (:func:`helpers.detection.froc.validation_figure` over validation sequences; test frames are never used to choose);
5. detects polyps in every test frame (:func:`helpers.detection.maps.score_frames`) and scores them with FROC,
   with a bootstrap band over test sequences.

Selection column: ``val_score`` of a detection row holds the validation FROC score (``val_metric`` ``froc_score``;
every "best" choice is made on ``val_score``, see :data:`helpers.schema.SELECT_BY`); ``val_patch_auc`` holds the
patch classifier's validation AUC.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..datasets import DataSet, Split
from ..env import pick_device
from ..finetune import Level
from ..models import FTModel
from ..runner import Application, execute
from ..train import TrainBudget, TrainResult, fit
from . import froc, maps, patches, video
from .frame_runs import (FrameRunIdentity, PolypData, base_window, build_patch_classifier, failed_fields, level_fields,
                         load_weights, prepare, save_weights, train_config)

MATCH_TOLERANCE = 0.25     # a candidate within this share of the base window from a polyp's pixels hits it
NMS_RADIUS = 0.5           # candidates are kept at least this share of the base window apart
SCALES = (1.0, 1.2, 1.5)   # the sampler's scales, reused as the test windows


@dataclass(frozen=True)
class PolypRunConfig(FrameRunIdentity):
    """One detection run; every field is part of its identity (hash). Its budget's ``steps`` come before the
    hard-negative round, with one validation check at the end of each pass (no early stopping)."""

    budget: TrainBudget = TrainBudget(steps=80)
    hard_steps: int = 40               # SGD steps after the round (0: no round)
    hard_per_frame: int = 4            # hard negatives kept per training frame
    hard_frames: int | None = 40       # training frames searched for hard negatives (spread evenly)
    lr: float | None = None
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


def detector_settings(config: PolypRunConfig, window: float) -> maps.DetectorSettings:
    """The detector of this run around a base ``window`` (median training polyp size)."""
    return maps.DetectorSettings(patch=config.patch, window=float(window), scales=SCALES, stride=config.stride,
                                  nms_radius=NMS_RADIUS, tolerance=MATCH_TOLERANCE,
                                  max_candidates=config.max_candidates, average_views=config.average_views)


def patch_data(config: PolypRunConfig, data: PolypData, train_idx: np.ndarray) -> DataSet:
    """Training patches (with the 8 flips/rotations) of ``train_idx`` and validation patches of the val frames."""
    sampling = patches.PatchSampling(n_anchors=config.n_anchors, n_neg_per_frame=config.n_neg_per_frame)
    train = patches.sample_patches(data.frames, train_idx, config.patch, config.seed, sampling)
    val = patches.sample_patches(data.frames, data.split["val"], config.patch, config.seed + 1, sampling,
                                 augment_dihedral=False)
    return DataSet(f"polyp-{data.frames.source.name}", train, val, val, list(video.CLASS_NAMES),
                   str(data.frames.source), "research and educational use only (see the folder's owners)",
                   {"frames_train": train_idx})


# ----------------------------------------------------------------------------- training


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
    """Validation FROC score and curve of the model as it is now."""
    matches, table = maps.score_frames(model, data.frames, data.split["val"], settings, device)
    figure = froc.validation_figure(matches, table, froc.FP_RATES)
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
    before: tuple[float, list] = (float("nan"), [])   # validation FROC score and curve before the round
    after: tuple[float, list] = (float("nan"), [])    # ... and after it (NaN when there was no round)
    kept: str = "before"                # which state the model holds
    n_hard: int = 0                     # hard negatives added (before flips/rotations)

    @property
    def kept_figure(self) -> tuple[float, list]:
        """The validation FROC score and curve of the kept state."""
        return self.after if self.kept == "after" else self.before


def build_detector(config: PolypRunConfig) -> tuple[FTModel, Level | None]:
    """The two-class patch classifier at the run's level (ImageNet weights unless scratch)."""
    return build_patch_classifier(config, n_classes=2)


def train_detector(config: PolypRunConfig, data: PolypData, built: tuple[FTModel, Level | None],
                   quiet: bool = True) -> TrainedDetector:
    """Train ``built`` (:func:`build_detector`'s network and level), mine hard negatives, train on, keep the state
    with the better validation FROC score."""
    model, level = built
    train_idx = video.reduce_by_sequence(data.frames, data.split["train"], config.fraction, config.seed)
    settings = detector_settings(config, base_window(data))
    first = patch_data(config, data, train_idx)
    train_cfg = train_config(config, config.budget.steps, config.learning_rate(), config.seed, quiet)
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
        lr_now = train_cfg.lr * train_cfg.lr_decay ** (train_cfg.steps / train_cfg.decay_steps)   # the schedule goes on
        result = fit(model, second, train_config(config, config.hard_steps, lr_now, config.seed + 1, quiet))
        out.after = _validate(model, data, settings, out.device)
        out.n_hard, out.result, out.steps_run = len(hard) // 8, result, out.steps_run + result.iterations
        if out.after[0] >= out.before[0] or not np.isfinite(out.before[0]):
            out.kept = "after"
        else:
            model.load_state_dict(state)
    return out


# ----------------------------------------------------------------------------- one run

def _score(config: PolypRunConfig, data: PolypData, built, trained: TrainedDetector) -> dict:
    matches, frame_table = maps.score_frames(trained.model, data.frames, data.split["test"], trained.settings,
                                             trained.device)
    return detection_fields(config, data, trained, matches, frame_table)


def _save(config: PolypRunConfig, data: PolypData, built, trained, row: dict, weights_dir: str | Path) -> dict:
    save_weights(trained.model, config, weights_dir)
    return {}


DETECTION = Application(task="polyp", metric="froc_score", prepare=lambda config: prepare(config),
                        build=lambda config, data: build_detector(config), fit=train_detector, score=_score,
                        failed=failed_fields, save=_save)
"""Detection as an application of the one run skeleton (:func:`helpers.runner.execute`)."""


def run_polyp(config: PolypRunConfig, weights_dir: str | Path | None = None, quiet: bool = True) -> dict:
    """Train the detector, detect polyps in every test frame, score with FROC; one result row.

    A run whose training diverges (:class:`helpers.train.TrainingDivergedError`, a NaN loss) returns
    a row with ``diverged`` True that rate tuning never chooses and summaries leave out. With
    ``weights_dir`` the kept weights are saved as ``<weights_dir>/<config hash>.pt`` (a plain state
    dict, loadable with ``weights_only=True``; see :func:`load_detector`).
    """
    return execute(DETECTION, config, quiet, weights_dir)


def detection_fields(config: PolypRunConfig, data: PolypData, trained: TrainedDetector, matches: pd.DataFrame,
                     frame_table: pd.DataFrame) -> dict:
    """One detection run's own row fields (validation FROC scores, FROC summary, curve, raw matches);
    :func:`helpers.runner.base_row` and :func:`helpers.runner.stamp` add the shared ones."""
    level, result, settings = trained.level, trained.result, trained.settings
    n_frames, n_polyps = len(frame_table), int(frame_table["n_polyps"].sum())
    summary = froc.froc_summary(matches, frame_table, froc.FP_RATES, n_boot=config.n_bootstrap, seed=config.seed)
    curve = froc.froc_curve(matches, n_frames, max(1, n_polyps))
    row = {**level_fields(level), "n_train": len(trained.train_idx),
           "n_train_patches": len(trained.patches.train), "n_hard_negatives": trained.n_hard,
           "val_frames": len(data.split["val"]), "test_frames": n_frames, "test_polyps": n_polyps,
           "test_sequences": int(frame_table["sequence"].nunique()), "window": settings.window,
           "val_score": trained.kept_figure[0], "val_figure_before": trained.before[0],
           "val_figure_after": trained.after[0], "kept": trained.kept, "val_froc_before": trained.before[1],
           "val_froc_after": trained.after[1],
           "val_patch_auc": result.best_val_auc, "val_loss": result.best_val_loss, "collapsed": False,
           "diverged": False, "iterations": trained.steps_run,
           "cached": result.cached, "device": result.device, "bn_mode_used": result.bn_mode,
           "precision": result.precision}
    for _, r in summary.iterrows():
        key = f"froc_sens@{r['fp_per_frame']:g}"
        row.update({key: r["sensitivity"], f"{key}_lo": r["lo"], f"{key}_hi": r["hi"]})
    row.update(froc=curve[["fp_per_frame", "sensitivity"]].to_numpy().round(5).tolist(),
               matches={c: matches[c].tolist() for c in ("frame", "sequence", "score", "is_tp", "is_fp", "polyp_id")},
               frame_table={c: frame_table[c].tolist() for c in frame_table.columns})
    return row


def load_detector(config: PolypRunConfig, weights_dir: str | Path) -> FTModel:
    """The trained patch classifier of a finished run, from the weights :func:`run_polyp` saved."""

    return load_weights(build_detector(config)[0], config, weights_dir)


def detection_examples(model: torch.nn.Module, data: PolypData, indices: Sequence[int], settings: maps.DetectorSettings,
                       device: str | None = None) -> list[dict]:
    """For a few frames: the detector's combined map at frame size, the FOV and the candidates (best first)."""

    device = pick_device(device)
    idx = [int(i) for i in indices]
    values, _, base = maps.combined_map(model, data.frames.images[idx], data.frames.fov[idx], settings, device)
    cands = maps.detect(model, data.frames, idx, settings, device)
    return [{"frame": i, "map": maps.upsample_map(v.clamp_min(0), base), "raw_map": v, "candidates": c,
             "fov": data.frames.fov[i]} for i, v, c in zip(idx, values, cands)]
