"""The one training engine every notebook uses: scratch training and fine-tuning alike.

The paper's recipe by default: SGD with momentum 0.9, the learning rate times 0.95 on a fixed schedule of
steps (the paper's "per epoch", with the epoch fixed in steps so that every training-set size gets the
same optimisation), bias rates twice the weight rates, the new head 10x the rate of the other tuned layers
(a multiple of 1 for scratch training: :meth:`TrainConfig.for_strategy`), early stopping on the best validation AUC with the best
weights restored. The budget is a number of SGD steps. Adam and AdamW are available too.

Speed: no per-sample Python; data stay uint8 tensors (on the GPU when there is one) and are converted
per batch; model and inputs channels-last on every device (the models are built so and
:class:`~helpers.models.InputAdapter` hands that layout on; cached features keep it); on CUDA bf16
autocast (fp16 with a scaler where bf16 is missing); ``cudnn.benchmark`` only when a run gives up
bit-reproducibility (``deterministic=False``). A run's CPU threads are fixed by its config (:func:`helpers.env.run_threads`). When every stage below the
tuned range is frozen and there is no augmentation, the frozen part's output is computed once and only
the tuned part is trained on it (*frozen-feature caching*, see :func:`cache_plan`).
"""
from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from typing import Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.amp import GradScaler
from .progress import tqdm

from .augment import augment_batch
from .budget import TrainBudget, budget_of
from .batches import batch_slices, iterate, place, to_float
from .bootstrap import score_metrics
from .datasets import DataSet, Split
from .env import pick_device, seed_everything
from .finetune import first_tuned_stage, param_groups
from .metrics import auc_defined, is_collapsed, roc_auc, score_spread
from .models import FTModel, evaluating
from .recipe import PAPER, default_rate, head_multiplier
from .tboard import live_curves

OPTIMIZERS = ("sgd", "adam", "adamw")
BN_MODES = ("auto", "frozen", "recalibrate", "train")


class TrainingDivergedError(FloatingPointError):
    """The training loss exploded far above its starting value: the learning rate is too large."""


@dataclass(frozen=True)
class TrainConfig(TrainBudget):
    """Everything one training run needs besides the model and the data: a :class:`TrainBudget` (its
    fields first) plus the optimiser and runtime settings. Frozen: change it with
    :func:`dataclasses.replace` or :func:`fit`'s keyword overrides."""

    lr: float = PAPER.finetune_lr
    optimizer: str = PAPER.optimizer
    momentum: float = PAPER.momentum
    lr_decay: float = PAPER.lr_decay  # multiply every rate by this every ``decay_steps`` steps
    head_lr_mult: float = PAPER.head_lr_mult   # new head vs other tuned layers (1.0 for scratch)
    bias_lr_mult: float = PAPER.bias_lr_mult
    layer_decay: float | None = None  # optional discriminative rates
    weight_decay: float = PAPER.weight_decay
    recalibrate_images: int = 256     # training images used to recompute BatchNorm statistics
    diverge_factor: float = 10.0      # stop when the loss exceeds this multiple of its starting value
    seed: int = 0
    cache: bool | str = "auto"        # frozen-feature caching: "auto", True or False
    cache_limit_bytes: int = 2 << 30  # most memory cached features may take
    amp: bool | None = None           # mixed precision; None = on CUDA only (True: on the CPU too, bfloat16)
    amp_dtype: str | None = None      # "bfloat16" or "float16"; None = bfloat16 where the device has it
    eval_batch_size: int = 512
    device: str | None = None
    quiet: bool = False
    threads: int | None = None        # torch threads on the CPU; None = helpers.env.run_threads() (fixed, never the load)
    deterministic: bool = True        # CUDA: cuDNN's deterministic kernels, no autotuning (see docs/benchmarks.md, "Same seed, same numbers")
    tensorboard_dir: str | None = None   # log the curves live to TensorBoard here (helpers.tboard); None: off, free

    @property
    def budget(self) -> TrainBudget:
        """The budget part of this config."""
        return budget_of(self)

    @classmethod
    def for_strategy(cls, strategy: str, lr: float | None = None, budget: TrainBudget | None = None,
                     **overrides) -> "TrainConfig":
        """The paper's recipe for ``strategy`` (``scratch`` or a fine-tuning level): its head multiplier,
        and ``lr`` or the strategy's default rate (:mod:`helpers.recipe`); ``budget``'s fields, then
        ``overrides``, set the rest."""
        rate = default_rate(strategy) if lr is None else lr
        return cls.from_budget(budget or TrainBudget(), lr=rate, head_lr_mult=head_multiplier(strategy), **overrides)

    @classmethod
    def from_budget(cls, budget: TrainBudget, **settings) -> "TrainConfig":
        """``budget`` plus optimiser and runtime ``settings`` (which may also change budget fields)."""
        return cls(**{**asdict(budget), **settings})


@dataclass
class TrainResult:
    """What :func:`fit` returns: one history row per validation check, and bookkeeping.

    ``history`` columns: ``step, train_loss`` (mean over the last ``eval_every`` steps), ``val_loss, val_auc,
    head_lr`` (the new head's rate after that step), ``seconds``. ``curve`` is the same checks as (``iteration``, ``val_auc``) for the
    convergence plots.
    """

    history: pd.DataFrame
    curve: pd.DataFrame
    best_step: int
    best_val_auc: float
    iterations: int
    wall_s: float
    cached: bool
    device: str
    best_val_loss: float = float("nan")
    best_val_score_sd: float = float("nan")   # spread of the validation scores at the best step
    bn_mode: str = ""                          # the BatchNorm mode used (``auto`` resolved)
    precision: str = "float32"                 # the training forward's precision: float32, bfloat16, float16


# ----------------------------------------------------------------------------- checks

def _check_inputs(model: nn.Module, data: DataSet, config: TrainConfig) -> None:
    """Refuse bad input with a message that says what is wrong and how to fix it."""
    if len(data.train) == 0:
        raise ValueError("The training set is empty: pick a larger fraction or check the data set.")
    if len(data.val) == 0:
        raise ValueError("The validation set is empty: early stopping needs validation data.")
    if not auc_defined(data.val.labels):
        raise ValueError("The validation set holds a single class (multi-label: no finding both present and "
                         "absent), so its AUC is undefined and early stopping could not pick a step; use a "
                         "larger or stratified validation split.")
    if not config.lr > 0:
        raise ValueError(f"The learning rate must be positive; got lr={config.lr}.")
    if config.steps < 1:
        raise ValueError(f"steps must be at least 1; got {config.steps}.")
    if config.eval_every < 0 or config.decay_steps < 1:
        raise ValueError(f"eval_every must be >= 0 and decay_steps >= 1; got {config.eval_every}, "
                         f"{config.decay_steps}.")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {config.optimizer!r}; choose one of {OPTIMIZERS}.")
    if config.bn_mode not in BN_MODES:
        raise ValueError(f"Unknown bn_mode {config.bn_mode!r}; choose one of {BN_MODES}.")
    outputs = getattr(model, "num_classes", None)
    if outputs is not None and outputs != data.num_classes:
        raise ValueError(f"The model has {outputs} outputs but {data.name} has {data.num_classes} classes; "
                         f"build it with num_classes={data.num_classes}.")


# ----------------------------------------------------------------------------- losses and probabilities

def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the classes, or for multi-label (0/1 matrix) labels a binary cross-entropy per
    finding (``BCEWithLogits``), averaged over findings and images."""
    if labels.ndim == 2:
        return F.binary_cross_entropy_with_logits(logits, labels.float())
    return F.cross_entropy(logits, labels)


def probabilities(logits: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Class probabilities (a softmax over classes), or one probability per finding (a sigmoid each)."""
    return logits.sigmoid() if multi_label else logits.softmax(1)


def probability_loss(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The loss of :func:`classification_loss`, computed from probabilities (validation reads these)."""
    scores = scores.clamp(1e-12, 1 - 1e-12) if labels.ndim == 2 else scores.clamp_min(1e-12)
    if labels.ndim == 2:
        return float(F.binary_cross_entropy(scores, labels.float()))
    return float(F.nll_loss(torch.log(scores), labels))


# ----------------------------------------------------------------------------- inputs

@dataclass
class Inputs:
    """What the tuned part of the model is fed: uint8 images, or cached frozen features."""

    labels: torch.Tensor
    images: Split | None = None
    features: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
        """The float input of the rows ``idx`` on ``device``."""
        if self.features is not None:
            return self.features[idx.to(self.features.device)].to(device).float()
        return to_float(self.images.images[idx.to(self.images.images.device)].to(device, non_blocking=True))


def cache_plan(model: FTModel, start: int, config: TrainConfig, n_images: int, per_image: int
               ) -> torch.dtype | None:
    """Decide frozen-feature caching: the dtype to keep features in, or None for no caching.

    Caching needs a frozen part worth skipping (``auto``: at least one frozen stage with weights) and
    deterministic inputs (no augmentation); under ``auto`` also a training set no larger than the images the
    run draws (``steps * batch_size``): a cache of 20,000 segmentation windows for 100 steps of 32 would run
    the frozen part on six times more images than training without it (``_cached_inputs`` checks this; the
    validation features, computed at every check, are not counted). ``per_image`` is the number of feature values the frozen part
    gives one image (:func:`fit` reads it off the first batch it computes, so no probe is run). Features
    are kept in float32 when all ``n_images`` of them fit in ``config.cache_limit_bytes`` (2 GiB by
    default), in float16 when only that fits, and are not cached (recomputed every batch) otherwise.
    """
    if not _caching_applies(model, start, config):
        return None
    for dtype in (torch.float32, torch.float16):
        if per_image * n_images * torch.finfo(dtype).bits // 8 <= config.cache_limit_bytes:
            return dtype
    return None


def _caching_applies(model: nn.Module, start: int, config: TrainConfig) -> bool:
    """Whether caching is allowed and worth it, before any size is known."""
    if config.cache is False or config.augment or not isinstance(model, FTModel):
        return False
    return start >= (1 if config.cache is True else 2)


@torch.no_grad()
def _frozen_feature_batches(model: FTModel, split: Split, stop: int, device: torch.device,
                            batch_size: int) -> Iterator[torch.Tensor]:
    """Output of the frozen stages ``0 .. stop-1`` for every image, batch by batch, in eval mode."""
    with evaluating(model):
        for x, _ in iterate(split, batch_size, device):
            yield model.forward_from(0, x, stop=stop)


def _cached_inputs(model: nn.Module, data: DataSet, start: int, config: TrainConfig,
                   device: torch.device) -> tuple[Inputs, Inputs] | None:
    """Training and validation inputs as frozen features computed once, or None when caching does not
    apply or the features would not fit (:func:`cache_plan`; the first batch tells their size)."""
    if not _caching_applies(model, start, config):
        return None
    if config.cache == "auto" and len(data.train) > config.steps * config.batch_size:
        return None   # the cache would push more images through the frozen part than the run will ever draw
    batches = _frozen_feature_batches(model, data.train, start, device, config.eval_batch_size)
    first = next(batches)
    dtype = cache_plan(model, start, config, len(data.train) + len(data.val), first[0].numel())
    if dtype is None:
        batches.close()
        return None
    train_features = torch.cat([first.to(dtype), *(b.to(dtype) for b in batches)])
    val_features = torch.cat([b.to(dtype) for b in _frozen_feature_batches(model, data.val, start, device,
                                                                             config.eval_batch_size)])
    return (Inputs(data.train.labels.to(device), features=train_features),
            Inputs(data.val.labels.to(device), features=val_features))


def _image_inputs(split: Split, device: torch.device) -> Inputs:
    """Inputs for one split as its uint8 images on the device (converted per batch)."""
    return Inputs(split.labels.to(device), images=place(split, device))


# ----------------------------------------------------------------------------- core loop

AMP_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Precision:
    """How the forward passes of a run are computed: ``autocast`` (a context), the float16 gradient
    ``scaler`` (None otherwise) and the precision's ``name`` (recorded in every row as ``precision``)."""

    autocast: AbstractContextManager
    scaler: GradScaler | None
    name: str


def _autocast_for(device: torch.device, amp: bool | None, dtype: str | None = None) -> Precision:
    """Mixed precision for ``device``: ``amp=None`` means on CUDA only; ``amp=True`` turns it on for the
    CPU too. bfloat16 where the device has it (CUDA from Ampere on, every CPU torch build); float16
    otherwise or when ``dtype="float16"``, with a gradient scaler: float16's narrow range would turn small
    gradients to 0, so the loss is scaled up before backward, the gradients unscaled before the step, and
    a step whose gradients overflowed (inf/NaN) is skipped while the scale halves (``GradScaler``).
    Devices without autocast support here (MPS) run in float32. The loss, the metrics and BatchNorm
    recalibration are computed in float32 whatever this says."""
    use = device.type == "cuda" if amp is None else amp
    if not use or device.type not in ("cuda", "cpu"):
        return Precision(nullcontext(), None, "float32")
    if dtype is not None and dtype not in AMP_DTYPES:
        raise ValueError(f"amp_dtype={dtype!r}: use 'bfloat16' or 'float16' (or None for the device's best)")
    if dtype is None:
        dtype = "bfloat16" if device.type == "cpu" or torch.cuda.is_bf16_supported() else "float16"
    scaler = torch.amp.GradScaler(device.type) if dtype == "float16" else None
    return Precision(torch.autocast(device.type, dtype=AMP_DTYPES[dtype]), scaler, dtype)


def precision_of(config: TrainConfig) -> str:
    """The precision a run with ``config`` trains in on its device: ``float32``, ``bfloat16`` or ``float16``."""
    return _autocast_for(pick_device(config.device), config.amp, config.amp_dtype).name


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer over the trainable parameter groups (frozen ones get no state)."""
    if isinstance(model, FTModel):
        groups = param_groups(model, config.lr, config.head_lr_mult, config.bias_lr_mult,
                              config.layer_decay, config.weight_decay)
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": config.lr,
                   "weight_decay": config.weight_decay}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(groups, lr=config.lr)


def _forward_tail(model: nn.Module, start: int, x: torch.Tensor) -> torch.Tensor:
    """The model from stage ``start`` on (the whole model for plain modules)."""
    return model.forward_from(start, x) if isinstance(model, FTModel) else model(x)


@torch.no_grad()
def _tail_scores(model: nn.Module, inputs: Inputs, start: int, device: torch.device, batch_size: int,
                autocast: AbstractContextManager) -> np.ndarray:
    """Probabilities (N, K) of the tuned part on ``inputs``, in eval mode, large batches (a softmax over
    classes, or a sigmoid per finding when the labels are multi-label)."""
    parts = []
    with evaluating(model):
        for idx in batch_slices(len(inputs), batch_size):
            with autocast:
                logits = _forward_tail(model, start, inputs.batch(idx, device))
            parts.append(probabilities(logits.float(), inputs.labels.ndim == 2).cpu())
    return torch.cat(parts).numpy()


def _trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """The live weights and buffers training can change: those of the stages that are not frozen (or hold
    a parameter that requires a gradient) for an :class:`FTModel`, every one for other modules. Frozen
    stages keep their weights and, in eval mode, their BatchNorm statistics, so they need no copy."""
    if not isinstance(model, FTModel):
        return model.state_dict(keep_vars=True)
    return {f"{name}.{key}": value for name, stage in model.stages.items()
            if name not in model.frozen or any(p.requires_grad for p in stage.parameters())
            for key, value in stage.state_dict(keep_vars=True).items()}


def _tuned_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of what training can change (:func:`_trainable_tensors`), to restore the best step."""
    return {k: v.detach().clone() for k, v in _trainable_tensors(model).items()}


@torch.no_grad()
def _restore(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy a :func:`_tuned_state` back into the model, in place."""
    live = _trainable_tensors(model)
    for key, value in state.items():
        live[key].copy_(value)


# ----------------------------------------------------------------------------- BatchNorm handling

def _tuned_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of the stages that are trained (every one for a plain module)."""
    if isinstance(model, FTModel):
        modules = [m for name, stage in model.stages.items() if name not in model.frozen for m in stage.modules()]
    else:
        modules = list(model.modules())
    return [m for m in modules if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def resolve_bn_mode(model: nn.Module, bn_mode: str) -> str:
    """The BatchNorm mode a run uses: ``bn_mode`` itself, or for ``auto`` ``frozen`` when ``model`` holds
    pretrained weights (an :class:`FTModel` built with ``pretrained=True``: ImageNet's statistics are kept)
    and ``recalibrate`` otherwise (scratch training has only batch statistics to go by)."""
    if bn_mode != "auto":
        return bn_mode
    return "frozen" if isinstance(model, FTModel) and model.pretrained else "recalibrate"


def _apply_bn_mode(model: nn.Module, bn_mode: str) -> None:
    """Make ``model.train()`` honour ``bn_mode`` (``frozen``: tuned BatchNorm layers stay in eval mode)."""
    if isinstance(model, FTModel):
        model.bn_frozen = bn_mode == "frozen"
        model.train(model.training)
    elif bn_mode == "frozen":
        raise ValueError("bn_mode='frozen' needs an FTModel (helpers.models.build_model), whose train() keeps "
                         "BatchNorm layers in eval mode; use bn_mode='train' or 'recalibrate' for other modules.")


@torch.no_grad()
def _recalibrate_batchnorm(model: nn.Module, inputs: Inputs, start: int, device: torch.device,
                          batch_size: int, rows: torch.Tensor | None = None,
                          autocast: AbstractContextManager = nullcontext()) -> int:
    """Recompute the tuned BatchNorm layers' running statistics on the training inputs ``rows`` (all rows
    when None; pass a seeded random subset: data sets stored class by class would otherwise bias it).

    The statistics become the cumulative average (momentum None) of the per-batch statistics, exact when
    the rows fit in one batch of ``batch_size``, computed with every other layer as in evaluation
    (dropout off). Frozen stages are untouched. Returns the number of BatchNorm layers recalibrated.
    """
    layers = _tuned_batchnorms(model)
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    rows = torch.arange(len(inputs)) if rows is None else rows
    with evaluating(model):   # every layer as in evaluation, but the tuned BatchNorm layers collect statistics
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
            m.train()
        for idx in batch_slices(len(rows), batch_size, rows):
            if len(idx) < 2 and len(rows) > 1:
                continue   # a single-image batch has no batch variance worth averaging
            with autocast:
                _forward_tail(model, start, inputs.batch(idx, device))
    for m, momentum in zip(layers, momenta):
        m.momentum = momentum
    return len(layers)


# ----------------------------------------------------------------------------- training

def fit(model: nn.Module, data: DataSet, config: TrainConfig | None = None, **overrides) -> TrainResult:
    """Train ``model`` on ``data.train`` for ``config.steps`` SGD steps, early-stopping on ``data.val`` AUC.

    Only parameters with ``requires_grad`` are trained (set a fine-tuning level first with
    :func:`helpers.finetune.set_level`). The best weights (and BatchNorm statistics) are restored.
    Raises ``FloatingPointError`` naming the step if the loss stops being finite, and
    :class:`TrainingDivergedError` naming the learning rate if the loss explodes.
    """
    config = replace(config or TrainConfig(), **overrides)
    _check_inputs(model, data, config)
    config = replace(config, bn_mode=resolve_bn_mode(model, config.bn_mode))
    device = pick_device(config.device)
    generator = seed_everything(config.seed, config.threads)   # the seed and the run's fixed threads
    if device.type == "cuda":   # same seed, same numbers on a GPU too, unless the config trades it for speed
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cudnn.deterministic = config.deterministic
    model.to(device, memory_format=torch.channels_last)   # on CPUs too: about 2x faster there (docs/benchmarks.md)
    _apply_bn_mode(model, config.bn_mode)
    start = first_tuned_stage(model) if isinstance(model, FTModel) else 0
    cached = _cached_inputs(model, data, start, config, device)
    train_in, val_in = cached or (_image_inputs(data.train, device), _image_inputs(data.val, device))
    with live_curves(config.tensorboard_dir) as log:   # None unless asked (tensorboard_dir, or a sweep's --tensorboard)
        return _train_loop(model, train_in, val_in, start if cached else 0, config, device, generator,
                           cached=cached is not None, log=log)


def _batch_stream(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless equal-sized batches of row indices from reshuffled passes over ``n`` rows."""
    size = min(batch_size, n)
    pool = torch.empty(0, dtype=torch.long)
    while True:
        while len(pool) < size:
            pool = torch.cat([pool, torch.randperm(n, generator=generator)])
        yield pool[:size]
        pool = pool[size:]


@dataclass
class _Check:
    """One validation check worth keeping: its numbers and the weights it scored."""

    auc: float
    loss: float
    step: int
    state: dict[str, torch.Tensor] | None   # None: the model holds these weights (the final check)
    spread: float   # standard deviation of the validation scores

    def rank(self) -> tuple[bool, float, float]:
        """How checks compare: one that ranks at all beats a collapsed one, then AUC, then lower loss."""
        return (not is_collapsed(self.spread), self.auc, -self.loss)


class _Validator:
    """Validation checks: recalibrate BatchNorm if asked, score, keep the best state."""

    def __init__(self, model, train_in: Inputs, val_in: Inputs, start: int, config: TrainConfig,
                 device: torch.device, autocast) -> None:
        self.model, self.train_in, self.val_in, self.start = model, train_in, val_in, start
        self.config, self.device, self.autocast = config, device, autocast
        self.labels = val_in.labels.cpu()
        self.best: _Check | None = None   # set by the first check (the last step always checks)
        order = torch.randperm(len(train_in), generator=torch.Generator().manual_seed(config.seed))
        self.recalibration_rows = order[: config.recalibrate_images]   # one seeded random sample

    def check(self, step: int, final: bool = False) -> tuple[float, float, bool]:
        """Validation AUC and loss at ``step``; True when it is the best so far (AUC, then loss).

        A check whose scores are numerically constant (:func:`helpers.metrics.is_collapsed`) ranks
        nothing, whatever AUC its rounding noise gives, so it never replaces a check that ranks. The
        weights of a best check are copied, except at the ``final`` check (no step follows it, so the
        model keeps them: ``state`` stays None).
        """
        if self.config.bn_mode == "recalibrate":   # statistics in float32: no autocast here
            _recalibrate_batchnorm(self.model, self.train_in, self.start, self.device, self.config.eval_batch_size,
                                   self.recalibration_rows)
        scores = _finite_scores(_tail_scores(self.model, self.val_in, self.start, self.device,
                                             self.config.eval_batch_size, self.autocast), step)
        auc = roc_auc(self.labels.numpy(), scores)
        loss = probability_loss(torch.from_numpy(scores), self.labels)
        check = _Check(auc, loss, step, None, score_spread(scores))
        better = self.best is None or check.rank() > self.best.rank()
        if better:
            check.state = None if final else _tuned_state(self.model)
            self.best = check
        return auc, loss, better


def _sgd_step(model, optimizer, scaler, autocast, start: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One optimizer step on one batch; returns the (detached) loss."""
    with autocast:
        loss = classification_loss(_forward_tail(model, start, x).float(), y)
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler else loss).backward()
    if scaler:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.detach()


def _train_loop(model: nn.Module, train_in: Inputs, val_in: Inputs, start: int, config: TrainConfig,
                device: torch.device, generator: torch.Generator, cached: bool, log=None) -> TrainResult:
    """SGD steps with periodic validation, early stopping in steps and best-weight restoration; ``log``, when
    given, receives each validation check's history row (:func:`helpers.tboard.live_curves`)."""
    optimizer = make_optimizer(model, config)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay ** (1 / config.decay_steps))
    precision = _autocast_for(device, config.amp, config.amp_dtype)
    autocast, scaler = precision.autocast, precision.scaler
    validator = _Validator(model, train_in, val_in, start, config, device, autocast)
    check_every = 1 if device.type == "cpu" else 20   # reading a loss on CUDA waits for the device
    history, losses, guard = [], [], _LossGuard(config)
    t0 = time.perf_counter()
    bar = tqdm(total=config.steps, disable=config.quiet, desc="training", leave=False)
    model.train()
    batches = _batch_stream(len(train_in), config.batch_size, generator)
    step = 0
    for step in range(1, config.steps + 1):
        idx = next(batches)
        x = train_in.batch(idx, device)
        if config.augment:
            x = augment_batch(x, generator)
        losses.append(_sgd_step(model, optimizer, scaler, autocast, start, x, train_in.labels[idx.to(device)]))
        schedule.step()
        bar.update(1)
        last = step == config.steps
        validate = (config.eval_every and step % config.eval_every == 0) or last
        if step % check_every == 0 or validate:
            guard.check(losses, step)
        if validate:
            auc, loss, _ = validator.check(step, final=last)
            history.append({"step": step, "train_loss": float(torch.stack(losses[-(config.eval_every or step):]).mean()),
                            "val_loss": loss, "val_auc": auc, "head_lr": optimizer.param_groups[0]["lr"],
                            "seconds": time.perf_counter() - t0})
            bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", val_auc=f"{auc:.3f}")
            if log is not None:
                log(history[-1])
            waited = step - validator.best.step
            if config.patience is not None and step >= config.min_steps and waited >= config.patience:
                break
    bar.close()
    best = validator.best
    if best.state is not None:
        _restore(model, best.state)
    curve = pd.DataFrame({"iteration": [h["step"] for h in history], "val_auc": [h["val_auc"] for h in history]})
    return TrainResult(pd.DataFrame(history), curve, best.step, float(best.auc), step, time.perf_counter() - t0,
                       cached, str(device), best_val_loss=float(best.loss), best_val_score_sd=float(best.spread),
                       bn_mode=config.bn_mode, precision=precision.name)


class _LossGuard:
    """Stops at the first non-finite loss, or when the loss explodes, reading each loss once."""

    def __init__(self, config: TrainConfig) -> None:
        self.config, self.checked, self.reference = config, 0, None

    def check(self, losses: list[torch.Tensor], step: int) -> None:
        """Check the losses since the last call (``losses`` holds one loss per step so far)."""
        lr = self.config.lr
        new = torch.stack(losses[self.checked:])
        bad = torch.nonzero(~torch.isfinite(new)).flatten()
        if len(bad):
            raise FloatingPointError(
                f"The training loss became {float(new[bad[0]])} at step {self.checked + int(bad[0]) + 1} "
                f"(learning rate {lr:g}). Lower the learning rate (try {lr / 10:g}), check the inputs for NaN, "
                "or use a smaller batch; training stopped rather than continue on garbage.")
        self.checked = len(losses)
        if self.reference is None and len(losses) >= 5:
            self.reference = float(torch.stack(losses[:5]).mean())
        if self.reference is None or len(losses) < 10:
            return
        recent = float(torch.stack(losses[-10:]).mean())
        if recent > self.config.diverge_factor * max(self.reference, 0.1):
            raise TrainingDivergedError(
                f"Training diverged: the training loss rose from {self.reference:.3g} to {recent:.3g} by step "
                f"{step} with learning rate {lr:g}. Use a smaller learning rate (try {lr / 10:g}); training "
                "stopped rather than report a model that learned nothing.")


def _finite_scores(scores: np.ndarray, step: int) -> np.ndarray:
    """The validation scores, or the same clear stop when the last step left the weights non-finite."""
    if not np.isfinite(scores).all():
        raise FloatingPointError(
            f"The validation scores became non-finite at step {step}: the weights diverged. Lower the "
            "learning rate, check the inputs for NaN, or use a smaller batch; training stopped rather than "
            "continue on garbage.")
    return scores


# ----------------------------------------------------------------------------- inference

def predict(model: nn.Module, split: Split, device: str | torch.device | None = None,
            batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, K) for a split (multi-label: one per finding), in eval mode, on the device."""
    device = pick_device(str(device) if device else None)
    model.to(device)
    inputs = Inputs(split.labels, images=place(split, device))
    return _tail_scores(model, inputs, 0, device, batch_size, _autocast_for(device, None).autocast)


def evaluate(model: nn.Module, split: Split, n_boot: int = 1000, seed: int = 0,
             device: str | torch.device | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Test metrics with bootstrap 95% CIs, and the class probabilities they were computed from."""
    scores = predict(model, split, device)
    return score_metrics(split.labels.numpy(), scores, n_boot=n_boot, seed=seed), scores
