"""What every run on a polyp folder shares, detection (:mod:`helpers.detection.experiment`) and segmentation
(:mod:`helpers.segmentation.experiment`) alike: the run identity's frame fields, the bounded frames split by
sequence, the patch classifier at its depth, the engine's settings for one pass, the depth columns of a row and
the saved weights. Neither application's run is defined here."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..env import run_threads
from ..finetune import Level, resolve_level, set_level
from ..models import MIN_INPUT, FTModel, build_model
from ..runner import RunIdentity
from ..schema import SCRATCH
from ..train import TrainConfig
from ..weights import safe_load
from . import patches, video


@dataclass(frozen=True)
class FrameRunIdentity(RunIdentity):
    """The fields every run on a polyp folder has (detection here, :mod:`helpers.segmentation` too): the data,
    the network and depth, the share of training sequences, the seeds and the frame bounds. Their budgets are
    read for ``steps``, ``batch_size`` and ``decay_steps``: one pass, one validation check at its end."""

    budget_fields: ClassVar[tuple[str, ...]] = ("steps", "batch_size", "decay_steps")

    dataset: str = "CVC-ClinicDB"      # a folder path (the notebook passes the resolved one) or a set name
    arch: str = "efficientnet_lite0"
    strategy: str = SCRATCH          # "scratch" or a ladder level (name, or last/middle/all)
    fraction: float = 1.0              # share of training sequences (nested)
    seed: int = 0
    split_seed: int = 0                # the train/val/test split by sequence (fixed across seeds)
    patch: int = 32                    # patch side fed to the classifier (px)
    frame_size: tuple[int, int] = (288, 384)   # every frame is resized to this (H, W)
    frame_step: int = 1                # keep every k-th frame of each training sequence
    max_train_frames: int | None = None
    max_val_frames: int | None = None
    max_test_frames: int | None = None  # None: every frame of the test sequences
    threads: int = field(default_factory=run_threads)   # torch threads: fixed per run (same seed, same numbers)


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


def prepare(config: FrameRunIdentity) -> PolypData:
    """The bounded frames of this run, detection or segmentation (see :func:`load_bounded`)."""
    return load_bounded(config.dataset, tuple(config.frame_size), config.split_seed, config.frame_step,
                        config.max_train_frames, config.max_val_frames, config.max_test_frames)


def base_window(data: PolypData) -> int:
    """The base detection window: median polyp size over ALL training frames used (every fraction alike)."""
    return patches.polyp_window(data.frames, data.split["train"], scales=(1.0,))


def build_patch_classifier(config: FrameRunIdentity, n_classes: int) -> tuple[FTModel, Level | None]:
    """The patch classifier at the run's level (ImageNet weights unless scratch); ``n_classes`` outputs
    (2 for detection, 3 for :mod:`helpers.segmentation`, whose configs share the fields read here)."""

    scratch = config.strategy == SCRATCH
    model = build_model(config.arch, n_classes, pretrained=not scratch,
                        image_size=max(config.patch, MIN_INPUT[config.arch]))
    level = None if scratch else resolve_level(model, config.strategy)
    if level is not None:
        set_level(model, level)
    return model, level


def train_config(config: FrameRunIdentity, steps: int, lr: float, seed: int, quiet: bool) -> TrainConfig:
    """The engine's settings for one pass of ``steps``: the paper's recipe, the run's budget, one validation
    check at the end and no early stopping (also the segmentation runs')."""
    return TrainConfig.for_strategy(config.strategy, lr=lr, budget=config.budget, steps=steps, patience=None,
                                    eval_every=steps, seed=seed, threads=config.threads, quiet=quiet)


def level_fields(level: Level | None) -> dict:
    """The depth columns of a detection or segmentation row (``strategy`` is the resolved level's name)."""
    return {"strategy": SCRATCH if level is None else level.name, "level": "" if level is None else level.name,
            "level_index": -1 if level is None else level.index}


def failed_fields(config: FrameRunIdentity, data: PolypData, built) -> dict:
    """A diverged detection or segmentation run's own fields (no metrics)."""
    return {**level_fields(built[1]), "n_train": 0}


def save_weights(model: torch.nn.Module, config: RunIdentity, weights_dir: str | Path) -> Path:
    """``<weights_dir>/<config hash>.pt``: the model's state dict on the CPU (loadable with ``weights_only=True``)."""
    path = Path(weights_dir) / f"{config.key()}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, path)
    return path


def load_weights(model: FTModel, config: RunIdentity, weights_dir: str | Path) -> FTModel:
    """``model`` (built for ``config``) with the weights :func:`save_weights` wrote for it, in eval mode."""
    model.load_state_dict(safe_load(Path(weights_dir) / f"{config.key()}.pt"))
    return model.eval()
