"""The study's segmentation experiment as sweep runs: three-class patch classifier -> dense maps -> masks.

One :class:`SegRunConfig` is one run of :func:`helpers.runner.run_sweep` (resumable, a rate tuned per
strategy on validation data, rows in a results store), as detection runs are. A run (:func:`run_segmentation`):

1. loads the bounded frames of the polyp folder, split by sequence (:func:`helpers.detection.frame_runs.prepare`:
   the same frames, splits and field of view as notebook 05 for the same bounds);
2. keeps a seeded prefix of the training sequences (``fraction``, nested) and cuts training windows around
   pixels of each class (:func:`helpers.segmentation.maps.sample_windows`, balanced, 8 flips/rotations);
3. trains the network at the run's depth (:func:`helpers.train.fit`, the paper's recipe);
4. computes the dense class map of every validation frame, chooses the cut on P(polyp) with the best mean
   validation Dice (:func:`helpers.segmentation.maps.choose_threshold`), and keeps that Dice as the run's
   selection figure (``val_score``, the suite's single selection column; test frames never choose);
5. reads a mask off every test frame at that cut and records per-frame Dice, IoU and boundary distance, with the
   frame's sequence, so reports can bootstrap over seeds and test sequences and pair arms frame by frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import numpy as np
import pandas as pd
import torch

from ..datasets import DataSet
from ..detection import frame_runs
from ..detection import video
from ..detection.frame_runs import prepare   # the same bounded frames as detection runs (cached per process)
from ..finetune import Level
from ..models import FTModel
from ..runner import Application, execute
from ..train import TrainBudget, fit
from . import labels, maps, scores

TASK = "segmentation"


@dataclass(frozen=True)
class SegRunConfig(frame_runs.FrameRunIdentity):
    """One segmentation run; every field is part of its identity (hash). The data, depth, seed and frame
    fields are the detection runs' (:class:`helpers.detection.frame_runs.FrameRunIdentity`)."""

    frame_size: tuple[int, int] = (144, 192)   # every frame is resized to this (H, W)
    budget: TrainBudget = TrainBudget(steps=100)   # one pass, one validation check at its end
    lr: float | None = None
    per_class: int = 16                # training windows per class and frame (before flips/rotations)
    stride: float = 6.0                # test map: frame px between classified pixels
    band_share: float = labels.BAND_SHARE   # boundary band, share of the frame width
    n_bootstrap: int = 500

    def run(self, quiet: bool = True) -> dict:
        """Run it (:func:`run_segmentation`, no weights saved): what :func:`helpers.runner.run_sweep` calls."""
        return run_segmentation(self, quiet=quiet)


def segmenter_settings(config: SegRunConfig, data: frame_runs.PolypData) -> maps.SegmenterSettings:
    """The run's segmenter: the context window is the median polyp size of ALL training frames used (the
    detector's base window, :func:`helpers.detection.frame_runs.base_window`), the same at every fraction."""
    return maps.SegmenterSettings(patch=config.patch, window=float(frame_runs.base_window(data)),
                                  stride=float(config.stride), band=labels.band_width(data.frames.frame_size,
                                                                                      config.band_share))


def window_data(config: SegRunConfig, data: frame_runs.PolypData, train_idx: np.ndarray,
                settings: maps.SegmenterSettings) -> DataSet:
    """Training windows (with flips/rotations) of ``train_idx`` and validation windows of the val frames."""
    train = maps.sample_windows(data.frames, train_idx, settings, config.per_class, config.seed)
    val = maps.sample_windows(data.frames, data.split["val"], settings, config.per_class, config.seed + 1,
                              augment_dihedral=False)
    return DataSet(f"polyp-seg-{data.frames.source.name}", train, val, val, list(labels.CLASS_NAMES),
                   str(data.frames.source), "research and educational use only (see the folder's owners)",
                   {"frames_train": train_idx})


def build_segmenter(config: SegRunConfig) -> tuple[FTModel, Level | None]:
    """The three-class window classifier at the run's depth (ImageNet weights unless scratch): the detector's
    network (:func:`helpers.detection.frame_runs.build_patch_classifier`) with three outputs."""
    return frame_runs.build_patch_classifier(config, n_classes=len(labels.CLASS_NAMES))


def frame_table(polyp_prob: torch.Tensor, data: frame_runs.PolypData, split: str, threshold: float) -> pd.DataFrame:
    """Per-frame scores (:func:`helpers.segmentation.scores.frame_scores`) of one split's masks at ``threshold``."""
    idx = data.split[split]
    table = scores.frame_scores(polyp_prob >= threshold, data.frames.masks[torch.as_tensor(idx)])
    return table.assign(frame=[int(i) for i in idx], sequence=[data.frames.sequences[int(i)] for i in idx])


@dataclass
class Prepared:
    """A segmentation run's data: the frames, the training frames used, the segmenter's settings, the windows."""
    frames: frame_runs.PolypData
    train_idx: np.ndarray
    settings: maps.SegmenterSettings
    windows: DataSet


def _prepare(config: SegRunConfig) -> Prepared:
    data = prepare(config)
    train_idx = video.reduce_by_sequence(data.frames, data.split["train"], config.fraction, config.seed)
    settings = segmenter_settings(config, data)
    return Prepared(data, train_idx, settings, window_data(config, data, train_idx, settings))


def _fit(config: SegRunConfig, prepared: Prepared, built, quiet: bool):
    return fit(built[0], prepared.windows, frame_runs.train_config(config, config.budget.steps, config.learning_rate(),
                                                                  config.seed, quiet))


def _score(config: SegRunConfig, prepared: Prepared, built, result) -> dict:
    """One segmentation run's own row fields: the cut chosen on validation frames, then every test frame scored."""
    data, settings, (model, level) = prepared.frames, prepared.settings, built
    val_prob = maps.polyp_probabilities(model, data.frames, data.split["val"], settings, result.device)
    threshold, _ = maps.choose_threshold(val_prob, data.frames.masks[torch.as_tensor(data.split["val"])])
    val = frame_table(val_prob, data, "val", threshold)
    test_prob = maps.polyp_probabilities(model, data.frames, data.split["test"], settings, result.device)
    test = frame_table(test_prob, data, "test", threshold)
    row = {**frame_runs.level_fields(level), "n_train": len(prepared.train_idx),
           "n_train_windows": len(prepared.windows.train), "window": settings.window, "band_px": settings.band,
           "threshold": threshold, "val_frames": len(val), "val_score": float(val["dice"].mean()),
           "val_dice": float(val["dice"].mean()), "val_patch_auc": result.best_val_auc, "val_loss": result.best_val_loss,
           "collapsed": False, "iterations": result.iterations, "device": result.device,
           "bn_mode_used": result.bn_mode, "precision": result.precision,
           "test_frames": len(test), "test_sequences": int(test["sequence"].nunique())}
    for column in ("dice", "iou", "boundary_px", "boundary_share"):
        row[f"test_{column}"] = float(test[column].mean())
    row["test_one_empty"] = int(test["one_empty"].sum())
    row["frame_scores"] = {c: test[c].tolist() for c in ("frame", "sequence", *scores.SCORE_COLUMNS)}
    return row


def _save(config: SegRunConfig, prepared: Prepared, built, result, row: dict, weights_dir: str | Path) -> dict:
    frame_runs.save_weights(built[0], config, weights_dir)
    return {}


SEGMENTATION = Application(task=TASK, metric="dice", prepare=_prepare, build=lambda config, data: build_segmenter(config),
                           fit=_fit, score=_score, failed=frame_runs.failed_fields, save=_save)
"""Segmentation as an application of the one run skeleton (:func:`helpers.runner.execute`)."""


def run_segmentation(config: SegRunConfig, weights_dir: str | Path | None = None, quiet: bool = True) -> dict:
    """Train the three-class patch classifier, segment every test frame, score it; one result row.

    A diverged run returns a row with ``diverged`` True (never chosen, left out of summaries). With
    ``weights_dir`` the weights are saved as ``<weights_dir>/<config hash>.pt`` (a plain state dict,
    see :func:`load_segmenter`).
    """
    return execute(SEGMENTATION, config, quiet, weights_dir)


def load_segmenter(config: SegRunConfig, weights_dir: str | Path) -> FTModel:
    """The trained three-class patch classifier of a finished run, from the weights :func:`run_segmentation` saved."""
    return frame_runs.load_weights(build_segmenter(config)[0], config, weights_dir)


def trained_segmenter(config: SegRunConfig, weights_dir: str | Path, quiet: bool = True) -> FTModel:
    """The run's trained network: its saved weights, or (when they are gone) the run made again and saved.

    Training is seeded, so a run made again gives the same network on the same machine and library versions
    (not bit for bit across machines)."""
    if not (Path(weights_dir) / f"{config.key()}.pt").exists():
        run_segmentation(config, weights_dir=weights_dir, quiet=quiet)
    return load_segmenter(config, weights_dir)


def config_from_row(row: pd.Series | dict) -> SegRunConfig:
    """The :class:`SegRunConfig` of a result row (its own identity: ``config_from_row(row).key()`` is the
    row's ``config_hash``), e.g. to reload that run's network with :func:`trained_segmenter`."""
    return SegRunConfig.from_row(row)
