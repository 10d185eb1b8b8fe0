"""Run profiles, read in one place: a part per application (:class:`Classification`, :class:`Detection`,
:class:`Segmentation`), each holding its :class:`helpers.train.TrainBudget` and the knobs of its grid.

``FTLAB_PROFILE`` picks the profile: ``fast`` (CI smoke test), ``classroom`` (the
default: a real experiment on a 2-core laptop CPU) or ``full`` (paper scale, for a GPU).
Every notebook shows the part it uses (``P.classification``) in its parameters cell; the grid functions
take a part over as it is (:func:`helpers.runner.sweep_grid`). Paths live in :mod:`helpers.paths`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

from .budget import BUDGET_FIELDS, TrainBudget
from .schema import SCRATCH

PROFILE_ENV = "FTLAB_PROFILE"
DEFAULT_PROFILE = "classroom"
WORKERS_ENV = "FTLAB_WORKERS"   # worker processes of the sweeps (the profile's ``workers`` otherwise): more on a big machine


RateGrid = dict[str, tuple[float, ...]]
"""Rates tried per family (``scratch``, ``finetune``): :func:`helpers.runner.run_sweep` chooses on validation."""


class _Part:
    """What every application's part of a profile can do."""

    def changed(self, **changes):
        """This part with some fields changed; budget fields may be named flat: ``C.changed(steps=240, seeds=(0, 1))``."""
        budget = {k: changes.pop(k) for k in list(changes) if k in BUDGET_FIELDS}
        part = replace(self, **changes)
        return replace(part, budget=replace(part.budget, **budget)) if budget else part


@dataclass(frozen=True)
class Classification(_Part):
    """What notebooks 02-04 and 06 train: MedMNIST images, fine-tuning ladders and learning curves. Fields
    named like :class:`helpers.experiments.RunConfig`'s are taken over by its grid as they are."""

    budget: TrainBudget        # steps, batch, early stopping (the same at every training-set size)
    image_size: int            # model input (px); MedMNIST 28 px images are resized on the device
    data_size: int             # which MedMNIST file to use (28, 64, 128 or 224)
    max_train: int | None      # cap on the training budget (stratified; validation is held out of it); None = all
    max_eval: int | None       # cap on test images; None = all
    val_share: float           # share of a run's training images held out for validation (the paper: 20%)
    n_bootstrap: int           # resamples for the intervals that still resample
    lr_grid: RateGrid          # rates tried per family (fine-tuning: base rate, the new head gets 10x)
    tune_at_every_fraction: bool   # False: rates tuned at the smallest and largest fraction only
    levels: tuple[str, ...] | None  # fine-tuning levels notebook 03 trains; None = all
    fractions: tuple[float, ...]    # training-set fractions for learning curves
    seeds: tuple[int, ...]
    strategies: tuple[str, ...]     # strategies in the learning-curve sweep


@dataclass(frozen=True)
class Detection(_Part):
    """What notebook 05 trains: a polyp patch classifier, hard negatives, FROC. Fields named like
    :class:`helpers.detection.experiment.PolypRunConfig`'s are taken over by its grid as they are."""

    budget: TrainBudget        # steps before the hard-negative round, batch size
    hard_steps: int            # SGD steps after the round (0: no round)
    hard_per_frame: int        # hard negatives kept per training frame
    hard_frames: int | None    # training frames searched for hard negatives; None = all
    patch: int                 # patch side fed to the classifier (px)
    frame_size: tuple[int, int]     # every frame is resized to (H, W)
    frame_step: int            # keep every k-th frame of each training sequence
    max_train_frames: int | None    # caps on frames; None = all of that split
    max_val_frames: int | None
    max_test_frames: int | None
    n_anchors: int             # polyp crops per polyp and scale
    n_neg_per_frame: int       # background crops per frame
    stride: float              # map stride as a share of each detection window
    max_candidates: int        # candidates per frame
    n_bootstrap: int
    lr_grid: RateGrid          # chosen on the validation FROC score
    fractions: tuple[float, ...]    # shares of training sequences (nested)
    seeds: tuple[int, ...]
    strategies: tuple[str, ...]


@dataclass(frozen=True)
class Segmentation(_Part):
    """What notebook 07 trains: a three-class window classifier, Dice. Fields named like
    :class:`helpers.segmentation.experiment.SegRunConfig`'s are taken over by its grid as they are."""

    budget: TrainBudget
    patch: int                 # window side fed to the classifier (px)
    frame_size: tuple[int, int]
    frame_step: int
    max_train_frames: int | None
    max_val_frames: int | None
    max_test_frames: int | None
    per_class: int             # training windows per class and frame (before flips/rotations)
    stride: float              # test maps: frame px between classified pixels
    n_bootstrap: int
    lr_grid: RateGrid          # chosen on the validation Dice
    fractions: tuple[float, ...]
    seeds: tuple[int, ...]
    strategies: tuple[str, ...]


@dataclass(frozen=True)
class Profile:
    """One profile: a part per application (named fields, no positions), the workers and the threads.

    Training budgets are in optimizer steps: every run of a comparison gets the same number of steps
    whatever its training-set size (see :class:`helpers.train.TrainBudget`). A notebook shows the part it uses.
    """

    name: str
    classification: Classification
    detection: Detection
    segmentation: Segmentation
    workers: int               # processes for independent sweep runs (1 = in the notebook; FTLAB_WORKERS overrides)
    cpu_cost: str              # one plain sentence: what this profile costs on a 2-core CPU
    threads: int = 1           # torch threads per run: fixed, part of a run's identity (same seed, same numbers)

    def with_workers(self) -> "Profile":
        """The profile with ``FTLAB_WORKERS`` applied (how many runs train at once; it changes no result)."""
        workers = os.environ.get(WORKERS_ENV, "").strip()
        if not workers:
            return self
        if not workers.isdigit() or int(workers) < 1:
            raise ValueError(f"{WORKERS_ENV}={workers!r} is not a number of worker processes; set it to 1 or more, or unset it")
        return replace(self, workers=int(workers))


def _grids(scratch: tuple[float, ...], finetune: tuple[float, ...]) -> RateGrid:
    return {"scratch": scratch, "finetune": finetune}


_STRATEGIES = (SCRATCH, "last", "middle", "all")
_FRAMES_FAST = dict(frame_step=1, fractions=(1.0,), seeds=(0,), strategies=(SCRATCH, "last", "all"),
                    lr_grid=_grids((0.01,), (0.001,)))

PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast", workers=1,
        classification=Classification(
            budget=TrainBudget(steps=8, patience=8, min_steps=0, batch_size=16, eval_every=4, decay_steps=4),
            image_size=32, data_size=28, max_train=160, max_eval=128, val_share=0.2, n_bootstrap=200,
            lr_grid=_grids((0.01, 0.03), (0.001, 0.003)), tune_at_every_fraction=False,
            levels=("last", "middle", "all"), fractions=(0.25, 1.0), seeds=(0,), strategies=(SCRATCH, "last", "all")),
        detection=Detection(
            budget=TrainBudget(steps=8, batch_size=16), hard_steps=4, hard_per_frame=2, hard_frames=4, patch=32,
            frame_size=(288, 384), max_train_frames=8, max_val_frames=4, max_test_frames=6, n_anchors=1,
            n_neg_per_frame=4, stride=0.5, max_candidates=3, n_bootstrap=200, **_FRAMES_FAST),
        segmentation=Segmentation(
            budget=TrainBudget(steps=8, batch_size=16), patch=32, frame_size=(72, 96), max_train_frames=6,
            max_val_frames=3, max_test_frames=4, per_class=4, stride=8.0, n_bootstrap=200,
            **{**_FRAMES_FAST, "fractions": (0.5, 1.0)}),
        cpu_cost="The fast profile is a smoke test: each notebook runs in well under 90 s on a 2-core CPU; "
                 "its numbers are not results.",
    ),
    "classroom": Profile(
        name="classroom", workers=2,
        classification=Classification(
            budget=TrainBudget(steps=120, patience=60, min_steps=60, batch_size=32, eval_every=20, decay_steps=20),
            image_size=32, data_size=28, max_train=1200, max_eval=None, val_share=0.2, n_bootstrap=1000,
            lr_grid=_grids((0.01, 0.03), (0.001, 0.003)), tune_at_every_fraction=False, levels=None,
            fractions=(0.01, 0.05, 0.25, 1.0), seeds=(0, 1, 2, 3, 4), strategies=_STRATEGIES),
        detection=Detection(
            budget=TrainBudget(steps=80, batch_size=32), hard_steps=40, hard_per_frame=4, hard_frames=None,
            patch=32, frame_size=(288, 384), frame_step=4, max_train_frames=80, max_val_frames=30,
            max_test_frames=240, n_anchors=1, n_neg_per_frame=4, stride=0.5, max_candidates=3, n_bootstrap=500,
            lr_grid=_grids((0.01, 0.03), (0.001, 0.003)), fractions=(1.0,), seeds=(0, 1, 2), strategies=_STRATEGIES),
        segmentation=Segmentation(
            budget=TrainBudget(steps=100, batch_size=32), patch=32, frame_size=(144, 192), frame_step=4,
            max_train_frames=48, max_val_frames=16, max_test_frames=80, per_class=8, stride=10.0, n_bootstrap=1000,
            lr_grid=_grids((0.01, 0.03), (0.001, 0.003)), fractions=(0.25, 1.0), seeds=(0, 1, 2),
            strategies=_STRATEGIES),
        cpu_cost="The classroom profile trains real models (120 SGD steps each, 32 px, a rate tuned on every seed "
                 "for every arm, 5 seeds in the learning curves) on up to 1,200 images: seconds to 20 minutes per notebook "
                 "(notebook 04's sweep the longest), about an hour for all seven on a quiet 2-core CPU (the README lists "
                 "the measured cost of each).",
    ),
    "full": Profile(
        name="full", workers=1,
        classification=Classification(
            budget=TrainBudget(steps=3000, patience=1000, min_steps=500, batch_size=64, eval_every=100,
                               decay_steps=200),
            image_size=224, data_size=224, max_train=None, max_eval=None, val_share=0.2, n_bootstrap=2000,
            lr_grid=_grids((0.003, 0.01, 0.03, 0.1), (0.0003, 0.001, 0.003, 0.01)), tune_at_every_fraction=True,
            levels=None, fractions=(0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0), seeds=(0, 1, 2, 3, 4, 5),
            strategies=(*_STRATEGIES, "auto")),
        detection=Detection(
            budget=TrainBudget(steps=2000, batch_size=128), hard_steps=1000, hard_per_frame=8, hard_frames=None,
            patch=96, frame_size=(288, 384), frame_step=1, max_train_frames=None, max_val_frames=None,
            max_test_frames=None, n_anchors=4, n_neg_per_frame=16, stride=0.25, max_candidates=10, n_bootstrap=500,
            lr_grid=_grids((0.003, 0.01, 0.03), (0.0003, 0.001, 0.003)), fractions=(0.25, 0.5, 1.0),
            seeds=(0, 1, 2, 3, 4, 5), strategies=_STRATEGIES),
        segmentation=Segmentation(
            budget=TrainBudget(steps=2000, batch_size=128), patch=64, frame_size=(288, 384), frame_step=1,
            max_train_frames=None, max_val_frames=None, max_test_frames=None, per_class=64, stride=4.0,
            n_bootstrap=2000, lr_grid=_grids((0.003, 0.01, 0.03), (0.0003, 0.001, 0.003)),
            fractions=(0.1, 0.25, 0.5, 1.0), seeds=(0, 1, 2, 3, 4, 5), strategies=_STRATEGIES),
        cpu_cost="The full profile is paper scale (224 px, 3,000 steps a run, 6 seeds, rates tuned at every "
                 "size): meant for a GPU; on a 2-core CPU a timed slice estimates thousands of hours (docs/benchmarks.md).",
    ),
}

FULL_TOY_BUDGET: dict[str, dict[str, Any]] = {
    "classification": dict(
        image_size=32,        # the model's input: 224 px images are resized on the device (the 224-px file is still read)
        max_eval=40,          # test images per run
        budget=TrainBudget(steps=2, patience=2, min_steps=0, eval_every=2, decay_steps=1, batch_size=8),
        n_bootstrap=20),
    "detection": dict(
        budget=TrainBudget(steps=2, batch_size=8), hard_steps=1, hard_per_frame=2, hard_frames=1,
        frame_size=(48, 64), max_train_frames=4, max_val_frames=1, max_test_frames=2, n_anchors=1, n_neg_per_frame=2,
        stride=1.0, max_candidates=2, n_bootstrap=20),
    "segmentation": dict(
        budget=TrainBudget(steps=2, batch_size=8), frame_size=(48, 64), max_train_frames=4, max_val_frames=1,
        max_test_frames=2, per_class=2, stride=8.0, n_bootstrap=20),
    "profile": dict(workers=2),
}
"""What ``full-toy`` changes in ``full``, per part: budget fields only (steps, batch sizes, resamples, the model's
input size, frame sizes and counts, map stride, candidates per frame, workers). Every structural field
stays: the 224-px data file, all seven fractions and six seeds, four-rate grids tuned at every fraction,
``auto`` in the sweep, every ladder level, 96-px polyp patches and three polyp fractions. The test that
runs notebooks 02-05 under it (tests/test_full_toy.py) prints this list, so a reader sees what it does
not cover."""

_FULL = PROFILES["full"]
PROFILES["full-toy"] = replace(
    _FULL, name="full-toy", **FULL_TOY_BUDGET["profile"],
    **{part: replace(getattr(_FULL, part), **FULL_TOY_BUDGET[part])
       for part in ("classification", "detection", "segmentation")},
    cpu_cost="The full-toy profile runs every code path of the full profile at toy scale (2 SGD steps a run, "
             "the 224-px file, 7 fractions x 6 seeds, rates tuned at every fraction): a check that the full "
             "profile will run, not an experiment; its numbers mean nothing.")


def profile_name() -> str:
    """The active profile's name, from ``FTLAB_PROFILE`` (default ``classroom``)."""
    name = os.environ.get(PROFILE_ENV, DEFAULT_PROFILE).strip().lower() or DEFAULT_PROFILE
    if name not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={name!r} is not a profile; choose one of {sorted(PROFILES)}.")
    return name


def get_profile(name: str | None = None) -> Profile:
    """The named profile, or the active one (``FTLAB_PROFILE``), with ``FTLAB_WORKERS`` applied."""
    name = name or profile_name()
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; choose one of {sorted(PROFILES)}.")
    return PROFILES[name].with_workers()
