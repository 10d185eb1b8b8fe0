"""Run profiles and project paths, read in one place.

``FTLAB_PROFILE`` picks the profile: ``fast`` (CI smoke test), ``classroom`` (the
default: a real experiment on a 2-core laptop CPU) or ``full`` (paper scale, for a GPU).
Every notebook fills its parameters cell from :func:`params`.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

PROFILE_ENV = "FTLAB_PROFILE"
DEFAULT_PROFILE = "classroom"
DATASET_ENV = "FTLAB_DATASET"
WORKERS_ENV = "FTLAB_WORKERS"   # worker processes of the sweeps (the profile's ``workers`` otherwise): more on a big machine
DEFAULT_DATASET = "pneumoniamnist"


@dataclass(frozen=True)
class Profile:
    """Budget of one profile; notebooks read these through :func:`params`.

    Training budgets are in optimizer steps: every run of a comparison gets the same number of steps
    whatever its training-set size (see :class:`helpers.train.TrainConfig`).
    """

    name: str
    image_size: int            # model input (px); MedMNIST 28 px images are resized on the device
    data_size: int             # which MedMNIST file to use (28, 64, 128 or 224)
    max_train: int | None      # cap on the training budget (stratified; validation is held out of it); None = all
    max_eval: int | None       # cap on test images; None = all
    steps: int                 # optimizer steps per training run (the same at every training-set size)
    patience: int              # early stopping: steps without a better validation AUC
    min_steps: int             # no early stop before this many steps
    batch_size: int
    eval_every: int            # steps between validation checks (the convergence curve)
    decay_steps: int           # the rate is multiplied by 0.95 every this many steps
    val_share: float           # share of a run's training budget held out for validation (the paper: 20%)
    n_bootstrap: int           # bootstrap resamples for confidence intervals
    lr_grid_scratch: tuple[float, ...]     # rates tried for scratch training (chosen on validation AUC)
    lr_grid_finetune: tuple[float, ...]    # base rates tried for fine-tuning (the new head gets 10x)
    tune_at_every_fraction: bool           # False: rates tuned at the smallest and largest fraction only
    levels: tuple[str, ...] | None         # fine-tuning levels notebook 03 trains; None = all
    fractions: tuple[float, ...]           # training-set fractions for learning curves
    seeds: tuple[int, ...]
    sweep_strategies: tuple[str, ...]      # strategies in the learning-curve sweep
    workers: int                           # processes for independent sweep runs (1 = in the notebook)
    polyp_steps: int                       # detection: SGD steps before the hard-negative round
    polyp_hard_steps: int                  # detection: SGD steps after it (0: no round)
    polyp_hard: tuple[int, int | None]     # (hard negatives kept per frame, training frames searched)
    polyp_batch_size: int
    polyp_patch: int           # polyp patch size (px) fed to the classifier
    polyp_frame_size: tuple[int, int]      # every polyp frame is resized to (H, W)
    polyp_frame_step: int                  # keep every k-th frame of each training sequence
    polyp_max_frames: tuple[int | None, int | None, int | None]   # caps on (train, val, test) frames; None = all
    polyp_fractions: tuple[float, ...]
    polyp_strategies: tuple[str, ...]      # strategies notebook 05 compares
    polyp_seeds: tuple[int, ...]
    polyp_lr_grid: dict[str, tuple[float, ...]]   # rates tried per family, chosen on the validation FROC score
    polyp_sampling: tuple[int, int]        # (polyp anchors per polyp, background patches per frame)
    polyp_stride: float                    # map stride as a share of each detection window
    polyp_max_candidates: int              # candidates per frame
    seg_steps: int                         # segmentation (notebook 07): SGD steps per run
    seg_batch_size: int
    seg_patch: int                         # window side fed to the three-class classifier (px)
    seg_frame_size: tuple[int, int]        # every frame is resized to (H, W)
    seg_frame_step: int                    # keep every k-th frame of each training sequence
    seg_max_frames: tuple[int | None, int | None, int | None]   # caps on (train, val, test) frames; None = all
    seg_per_class: int                     # training windows per class and frame (before flips/rotations)
    seg_stride: float                      # test maps: frame px between classified pixels
    seg_fractions: tuple[float, ...]       # shares of training sequences (nested)
    seg_strategies: tuple[str, ...]
    seg_seeds: tuple[int, ...]
    seg_lr_grid: dict[str, tuple[float, ...]]     # rates tried per family, chosen on the validation Dice
    cpu_cost: str              # one plain sentence: what this profile costs on a 2-core CPU
    threads: int = 1           # torch threads per run: fixed, part of a run's identity (same seed, same numbers)

    @property
    def lr_grid(self) -> dict[str, tuple[float, ...]]:
        """The rate grids by family, as :func:`helpers.runner.run_sweep` takes them."""
        return {"scratch": self.lr_grid_scratch, "finetune": self.lr_grid_finetune}


PROFILES: dict[str, Profile] = {
    "fast": Profile(
        name="fast", image_size=32, data_size=28, max_train=160, max_eval=128, steps=8, patience=8,
        min_steps=0, batch_size=16, eval_every=4, decay_steps=4, val_share=0.2, n_bootstrap=200,
        lr_grid_scratch=(0.01, 0.03), lr_grid_finetune=(0.001, 0.003), tune_at_every_fraction=False,
        levels=("last", "middle", "all"), fractions=(0.25, 1.0), seeds=(0,),
        sweep_strategies=("scratch", "last", "all"), workers=1,
        polyp_steps=8, polyp_hard_steps=4, polyp_hard=(2, 4), polyp_batch_size=16, polyp_patch=32,
        polyp_frame_size=(288, 384), polyp_frame_step=1, polyp_max_frames=(8, 4, 6), polyp_fractions=(1.0,),
        polyp_strategies=("scratch", "last", "all"), polyp_seeds=(0,),
        polyp_lr_grid={"scratch": (0.01,), "finetune": (0.001,)}, polyp_sampling=(1, 4), polyp_stride=0.5,
        polyp_max_candidates=3,
        seg_steps=8, seg_batch_size=16, seg_patch=32, seg_frame_size=(72, 96), seg_frame_step=1,
        seg_max_frames=(6, 3, 4), seg_per_class=4, seg_stride=8.0, seg_fractions=(0.5, 1.0),
        seg_strategies=("scratch", "last", "all"), seg_seeds=(0,),
        seg_lr_grid={"scratch": (0.01,), "finetune": (0.001,)},
        cpu_cost="The fast profile is a smoke test: each notebook runs in well under 90 s on a 2-core CPU; "
                 "its numbers are not results.",
    ),
    "classroom": Profile(
        name="classroom", image_size=32, data_size=28, max_train=1200, max_eval=None, steps=120, patience=60,
        min_steps=60, batch_size=32, eval_every=20, decay_steps=20, val_share=0.2, n_bootstrap=1000,
        lr_grid_scratch=(0.01, 0.03), lr_grid_finetune=(0.001, 0.003), tune_at_every_fraction=False,
        levels=None, fractions=(0.01, 0.05, 0.25, 1.0), seeds=(0, 1, 2, 3, 4),
        sweep_strategies=("scratch", "last", "middle", "all"), workers=2,
        polyp_steps=80, polyp_hard_steps=40, polyp_hard=(4, None), polyp_batch_size=32, polyp_patch=32,
        polyp_frame_size=(288, 384), polyp_frame_step=4, polyp_max_frames=(80, 30, 240), polyp_fractions=(1.0,),
        polyp_strategies=("scratch", "last", "middle", "all"), polyp_seeds=(0, 1, 2),
        polyp_lr_grid={"scratch": (0.01, 0.03), "finetune": (0.001, 0.003)}, polyp_sampling=(1, 4),
        polyp_stride=0.5, polyp_max_candidates=3,
        seg_steps=100, seg_batch_size=32, seg_patch=32, seg_frame_size=(144, 192), seg_frame_step=4,
        seg_max_frames=(48, 16, 80), seg_per_class=8, seg_stride=10.0, seg_fractions=(0.25, 1.0),
        seg_strategies=("scratch", "last", "middle", "all"), seg_seeds=(0, 1, 2),
        seg_lr_grid={"scratch": (0.01, 0.03), "finetune": (0.001, 0.003)},
        cpu_cost="The classroom profile trains real models (120 SGD steps each, 32 px, a rate tuned on every seed "
                 "for every arm, 5 seeds in the learning curves) on up to 1,200 images: seconds to about an hour per notebook "
                 "(notebook 04's sweep the longest), a few hours for all seven on a 2-core CPU (the README lists "
                 "the measured cost of each).",
    ),
    "full": Profile(
        name="full", image_size=224, data_size=224, max_train=None, max_eval=None, steps=3000, patience=1000,
        min_steps=500, batch_size=64, eval_every=100, decay_steps=200, val_share=0.2, n_bootstrap=2000,
        lr_grid_scratch=(0.003, 0.01, 0.03, 0.1), lr_grid_finetune=(0.0003, 0.001, 0.003, 0.01),
        tune_at_every_fraction=True, levels=None, fractions=(0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
        seeds=(0, 1, 2, 3, 4, 5), sweep_strategies=("scratch", "last", "middle", "all", "auto"), workers=1,
        polyp_steps=2000, polyp_hard_steps=1000, polyp_hard=(8, None), polyp_batch_size=128, polyp_patch=96,
        polyp_frame_size=(288, 384), polyp_frame_step=1, polyp_max_frames=(None, None, None),
        polyp_fractions=(0.25, 0.5, 1.0), polyp_strategies=("scratch", "last", "middle", "all"),
        polyp_seeds=(0, 1, 2, 3, 4, 5),
        polyp_lr_grid={"scratch": (0.003, 0.01, 0.03), "finetune": (0.0003, 0.001, 0.003)}, polyp_sampling=(4, 16),
        polyp_stride=0.25, polyp_max_candidates=10,
        seg_steps=2000, seg_batch_size=128, seg_patch=64, seg_frame_size=(288, 384), seg_frame_step=1,
        seg_max_frames=(None, None, None), seg_per_class=64, seg_stride=4.0, seg_fractions=(0.1, 0.25, 0.5, 1.0),
        seg_strategies=("scratch", "last", "middle", "all"), seg_seeds=(0, 1, 2, 3, 4, 5),
        seg_lr_grid={"scratch": (0.003, 0.01, 0.03), "finetune": (0.0003, 0.001, 0.003)},
        cpu_cost="The full profile is paper scale (224 px, 3,000 steps a run, 6 seeds, rates tuned at every "
                 "size): meant for a GPU; on a 2-core CPU a timed slice estimates thousands of hours (docs/benchmarks.md).",
    ),
}

FULL_TOY_BUDGET: dict[str, Any] = dict(
    image_size=32,            # the model's input: 224 px images are resized on the device (the 224-px file is still read)
    max_eval=40,              # test images per run
    steps=2, patience=2, min_steps=0, eval_every=2, decay_steps=1, batch_size=8,
    n_bootstrap=20,
    workers=2,
    polyp_steps=2, polyp_hard_steps=1, polyp_hard=(2, 1), polyp_batch_size=8,
    polyp_frame_size=(48, 64), polyp_max_frames=(4, 1, 2), polyp_sampling=(1, 2), polyp_stride=1.0,
    polyp_max_candidates=2,
    seg_steps=2, seg_batch_size=8, seg_frame_size=(48, 64), seg_max_frames=(4, 1, 2), seg_per_class=2,
    seg_stride=8.0,
)
"""What ``full-toy`` changes in ``full``: budget fields only (steps, batch sizes, resamples, the model's
input size, frame sizes and counts, map stride, candidates per frame, workers). Every structural field
stays: the 224-px data file, all seven fractions and six seeds, four-rate grids tuned at every fraction,
``auto`` in the sweep, every ladder level, 96-px polyp patches and three polyp fractions. The test that
runs notebooks 02-05 under it (tests/test_full_toy.py) prints this list, so a reader sees what it does
not cover."""

PROFILES["full-toy"] = replace(
    PROFILES["full"], name="full-toy", **FULL_TOY_BUDGET,
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
    """The named profile, or the active one."""
    name = name or profile_name()
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}; choose one of {sorted(PROFILES)}.")
    return PROFILES[name]


def params(name: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The profile as a dict of UPPER_CASE notebook parameters (plus DATASET, see :func:`default_dataset`, and SEED).

    ``FTLAB_WORKERS`` sets ``WORKERS`` (the sweeps' worker processes) for a machine with more cores than the
    profile assumes; it changes no result, only how many runs train at once."""
    prof = replace(get_profile(name), **overrides)
    values = {k.upper(): v for k, v in asdict(prof).items()
              if k not in ("cpu_cost", "name", "lr_grid_scratch", "lr_grid_finetune")}   # the grids: LR_GRID
    workers = os.environ.get(WORKERS_ENV, "").strip()
    if workers and "workers" not in overrides:
        if not workers.isdigit() or int(workers) < 1:
            raise ValueError(f"{WORKERS_ENV}={workers!r} is not a number of worker processes; set it to 1 or more, or unset it")
        values["WORKERS"] = int(workers)
    values.update(PROFILE=prof.name, DATASET=default_dataset(), SEED=0, LR_GRID=prof.lr_grid)
    return values


def default_dataset() -> str:
    """The notebooks' data set: ``FTLAB_DATASET`` (a MedMNIST name, or the path of an ``.npz`` or image
    folder), else PneumoniaMNIST. ``FTLAB_DATASET=bloodmnist make reproduce`` runs every notebook on it."""
    return os.environ.get(DATASET_ENV, "").strip() or DEFAULT_DATASET


def project_root() -> Path:
    """The checkout's root (where ``pyproject.toml`` is), else the current folder."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "pyproject.toml").exists():
            return folder
    return Path.cwd()


def reports_dir(profile: str | None = None) -> Path:
    """Where figures and tables go: ``reports/`` (``reports/_fast`` and ``reports/_full-toy`` for the two
    check profiles, whose outputs are no results)."""
    base = Path(os.environ.get("FTLAB_REPORTS_DIR", project_root() / "reports"))
    name = profile or profile_name()
    folder = base / f"_{name}" if name in ("fast", "full-toy") else base
    folder.mkdir(parents=True, exist_ok=True)
    return folder
