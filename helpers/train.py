"""The one training engine every notebook uses: scratch training and fine-tuning alike.

The paper's recipe by default: SGD with momentum 0.9, the learning rate times 0.95 after every epoch,
bias rates twice the weight rates, the new head 10x the rate of the other tuned layers (pass
``head_lr_mult=1`` for scratch training), early stopping on the best validation AUC with the best
weights restored. Adam and AdamW are available too.

Speed: no per-sample Python; data stay uint8 tensors (on the GPU when there is one) and are converted
per batch; on CUDA bf16 autocast (fp16 with a scaler where bf16 is missing), channels-last and
``cudnn.benchmark``. When every stage below the tuned range is frozen and there is no augmentation,
the frozen part's output is computed once and only the tuned part is trained on it
(*frozen-feature caching*, see :func:`cache_plan`).
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .augment import augment_batch
from .batches import batch_slices, iterate, place, to_float
from .datasets import DataSet, Split
from .env import pick_device, seed_everything
from .finetune import first_tuned_stage, param_groups
from .metrics import evaluate as evaluate_scores
from .metrics import roc_auc
from .models import FTModel

OPTIMIZERS = ("sgd", "adam", "adamw")


@dataclass
class TrainConfig:
    """Everything one training run needs besides the model and the data."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.001
    optimizer: str = "sgd"
    momentum: float = 0.9
    lr_decay: float = 0.95            # multiply every rate by this after each epoch
    head_lr_mult: float = 10.0        # new head vs other tuned layers (1.0 for scratch)
    bias_lr_mult: float = 2.0
    layer_decay: float | None = None  # optional discriminative rates
    weight_decay: float = 5e-4
    patience: int | None = 3          # epochs without a better validation AUC before stopping
    eval_every: int = 50              # iterations between validation checks (convergence curve)
    augment: bool = False
    seed: int = 0
    cache: bool | str = "auto"        # frozen-feature caching: "auto", True or False
    cache_limit_bytes: int = 2 << 30  # most memory cached features may take
    amp: bool | None = None           # mixed precision; None = on CUDA only
    eval_batch_size: int = 512
    device: str | None = None
    quiet: bool = False


@dataclass
class TrainResult:
    """What :func:`fit` returns: per-epoch history, the convergence curve and bookkeeping."""

    history: pd.DataFrame
    curve: pd.DataFrame
    best_epoch: int
    best_val_auc: float
    iterations: int
    wall_s: float
    cached: bool
    device: str
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- checks

def check_inputs(model: nn.Module, data: DataSet, config: TrainConfig) -> None:
    """Refuse bad input with a message that says what is wrong and how to fix it."""
    if len(data.train) == 0:
        raise ValueError("The training set is empty: pick a larger fraction or check the data set.")
    if len(data.val) == 0:
        raise ValueError("The validation set is empty: early stopping needs validation data.")
    if len(torch.unique(data.val.labels)) < 2:
        raise ValueError("The validation set holds a single class, so its AUC is undefined and early stopping "
                         "could not pick an epoch; use a larger or stratified validation split.")
    if not config.lr > 0:
        raise ValueError(f"The learning rate must be positive; got lr={config.lr}.")
    if config.epochs < 1:
        raise ValueError(f"epochs must be at least 1; got {config.epochs}.")
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {config.optimizer!r}; choose one of {OPTIMIZERS}.")
    outputs = getattr(model, "num_classes", None)
    if outputs is not None and outputs != data.num_classes:
        raise ValueError(f"The model has {outputs} outputs but {data.name} has {data.num_classes} classes; "
                         f"build it with num_classes={data.num_classes}.")


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


def cache_plan(model: FTModel, start: int, config: TrainConfig, n_images: int, sample: torch.Tensor,
               device: torch.device) -> torch.dtype | None:
    """Decide frozen-feature caching: the dtype to keep features in, or None for no caching.

    Caching needs a frozen part worth skipping (``auto``: at least one frozen stage with weights) and
    deterministic inputs (no augmentation). Features are kept in float32 when all of them fit in
    ``config.cache_limit_bytes`` (2 GiB by default), in float16 when only that fits, and are not cached
    (recomputed every batch) otherwise.
    """
    if config.cache is False or config.augment or not isinstance(model, FTModel):
        return None
    if start < (1 if config.cache is True else 2):
        return None
    was_training = model.training
    model.eval()   # the probe must not touch BatchNorm statistics
    with torch.no_grad():
        per_image = model.forward_from(0, to_float(sample[:1].to(device)), stop=start).numel()
    model.train(was_training)
    for dtype in (torch.float32, torch.float16):
        if per_image * n_images * torch.finfo(dtype).bits // 8 <= config.cache_limit_bytes:
            return dtype
    return None


@torch.no_grad()
def frozen_features(model: FTModel, split: Split, stop: int, device: torch.device, batch_size: int,
                    dtype: torch.dtype) -> torch.Tensor:
    """Output of the frozen stages ``0 .. stop-1`` for every image, computed once in eval mode."""
    was_training = model.training
    model.eval()
    parts = [model.forward_from(0, x, stop=stop).to(dtype) for x, _ in iterate(split, batch_size, device)]
    model.train(was_training)
    return torch.cat(parts)


def make_inputs(model: nn.Module, split: Split, start: int, cache_dtype: torch.dtype | None,
                device: torch.device, batch_size: int) -> Inputs:
    """Inputs for one split: cached features when planned, else the uint8 images on the device."""
    labels = split.labels.to(device)
    if cache_dtype is None:
        return Inputs(labels, images=place(split, device))
    return Inputs(labels, features=frozen_features(model, split, start, device, batch_size, cache_dtype))


# ----------------------------------------------------------------------------- core loop

def autocast_for(device: torch.device, amp: bool | None):
    """bf16 autocast on CUDA (fp16 where bf16 is missing); nothing on the CPU by default."""
    use = device.type == "cuda" if amp is None else amp
    if not use or device.type != "cuda":
        return nullcontext(), None
    if torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16), None
    return torch.autocast("cuda", dtype=torch.float16), torch.amp.GradScaler("cuda")


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


def forward_tail(model: nn.Module, start: int, x: torch.Tensor) -> torch.Tensor:
    """The model from stage ``start`` on (the whole model for plain modules)."""
    return model.forward_from(start, x) if isinstance(model, FTModel) else model(x)


@torch.no_grad()
def tail_scores(model: nn.Module, inputs: Inputs, start: int, device: torch.device, batch_size: int,
                autocast) -> np.ndarray:
    """Class probabilities (N, K) of the tuned part on ``inputs``, in eval mode, large batches."""
    was_training = model.training
    model.eval()
    parts = []
    for idx in batch_slices(len(inputs), batch_size):
        with autocast:
            logits = forward_tail(model, start, inputs.batch(idx, device))
        parts.append(logits.float().softmax(1).cpu())
    model.train(was_training)
    return torch.cat(parts).numpy()


def tuned_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights and buffers (to restore the best epoch)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def fit(model: nn.Module, data: DataSet, config: TrainConfig | None = None, **overrides) -> TrainResult:
    """Train ``model`` on ``data.train``, early-stopping on ``data.val`` AUC; the best weights are restored.

    Only parameters with ``requires_grad`` are trained (set a fine-tuning level first with
    :func:`helpers.finetune.set_level`). Returns a :class:`TrainResult` whose ``history`` has one row
    per epoch and whose ``curve`` has the validation AUC every ``eval_every`` iterations.
    Raises ``FloatingPointError`` naming the epoch and iteration if the loss stops being finite.
    """
    config = TrainConfig(**{**asdict(config or TrainConfig()), **overrides})
    check_inputs(model, data, config)
    device = pick_device(config.device)
    generator = seed_everything(config.seed)
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model.to(memory_format=torch.channels_last)
    start = first_tuned_stage(model) if isinstance(model, FTModel) else 0
    dtype = cache_plan(model, start, config, len(data.train) + len(data.val), data.train.images, device)
    stage0 = start if dtype is not None else 0
    train_in = make_inputs(model, data.train, stage0, dtype, device, config.eval_batch_size)
    val_in = make_inputs(model, data.val, stage0, dtype, device, config.eval_batch_size)
    return _train_loop(model, train_in, val_in, stage0, config, device, generator, cached=dtype is not None)


def _train_loop(model: nn.Module, train_in: Inputs, val_in: Inputs, start: int, config: TrainConfig,
                device: torch.device, generator: torch.Generator, cached: bool) -> TrainResult:
    """Epochs of SGD with periodic validation, early stopping and best-weight restoration."""
    from tqdm.auto import tqdm

    optimizer = make_optimizer(model, config)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=config.lr_decay)
    autocast, scaler = autocast_for(device, config.amp)
    val_labels = val_in.labels.cpu().numpy()
    steps = -(-len(train_in) // config.batch_size)
    check_every = 1 if device.type == "cpu" else 20
    history, curve = [], []
    best = (-np.inf, 0, tuned_state(model))
    iteration, t0, waited = 0, time.perf_counter(), 0
    bar = tqdm(total=config.epochs * steps, disable=config.quiet, desc="training", leave=False)
    model.train()
    for epoch in range(1, config.epochs + 1):
        losses = []
        order = torch.randperm(len(train_in), generator=generator)
        for idx in batch_slices(len(train_in), config.batch_size, order):
            x = train_in.batch(idx, device)
            if config.augment:
                x = augment_batch(x, generator)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast:
                loss = F.cross_entropy(forward_tail(model, start, x).float(), train_in.labels[idx.to(device)])
            optimizer.zero_grad(set_to_none=True)
            (scaler.scale(loss) if scaler else loss).backward()
            if scaler:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            losses.append(loss.detach())
            iteration += 1
            bar.update(1)
            if iteration % check_every == 0:
                _check_finite(losses, epoch, iteration)
            if config.eval_every and iteration % config.eval_every == 0:
                auc = roc_auc(val_labels, _finite_scores(
                    tail_scores(model, val_in, start, device, config.eval_batch_size, autocast), epoch, iteration))
                curve.append({"iteration": iteration, "epoch": epoch, "val_auc": auc})
        _check_finite(losses, epoch, iteration)
        val_scores = _finite_scores(tail_scores(model, val_in, start, device, config.eval_batch_size, autocast),
                                    epoch, iteration)
        val_auc = roc_auc(val_labels, val_scores)
        val_loss = float(F.nll_loss(torch.log(torch.from_numpy(val_scores).clamp_min(1e-12)),
                                    val_in.labels.cpu()))
        if not curve or curve[-1]["iteration"] != iteration:
            curve.append({"iteration": iteration, "epoch": epoch, "val_auc": val_auc})
        history.append({"epoch": epoch, "train_loss": float(torch.stack(losses).mean()), "val_loss": val_loss,
                        "val_auc": val_auc, "head_lr": optimizer.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{history[-1]['train_loss']:.3f}", val_auc=f"{val_auc:.3f}")
        if val_auc > best[0]:
            best, waited = (val_auc, epoch, tuned_state(model)), 0
        else:
            waited += 1
        schedule.step()
        if config.patience is not None and waited >= config.patience:
            break
    bar.close()
    model.load_state_dict(best[2])
    return TrainResult(pd.DataFrame(history), pd.DataFrame(curve), best[1], float(best[0]), iteration,
                       time.perf_counter() - t0, cached, str(device))


def _check_finite(losses: list[torch.Tensor], epoch: int, iteration: int) -> None:
    """Stop with a clear message at the first non-finite loss instead of training on garbage."""
    values = torch.stack(losses)
    bad = torch.nonzero(~torch.isfinite(values)).flatten()
    if len(bad):
        first = iteration - len(values) + int(bad[0]) + 1
        raise FloatingPointError(
            f"The training loss became {float(values[bad[0]])} in epoch {epoch} at iteration {first}. "
            "Lower the learning rate, check the inputs for NaN, or use a smaller batch; training stopped "
            "rather than continue on garbage.")


def _finite_scores(scores: np.ndarray, epoch: int, iteration: int) -> np.ndarray:
    """The validation scores, or the same clear stop when the last step left the weights non-finite."""
    if not np.isfinite(scores).all():
        raise FloatingPointError(
            f"The validation scores became non-finite in epoch {epoch} at iteration {iteration}: the weights "
            "diverged. Lower the learning rate, check the inputs for NaN, or use a smaller batch; training "
            "stopped rather than continue on garbage.")
    return scores


# ----------------------------------------------------------------------------- inference

def predict(model: nn.Module, split: Split, device: str | torch.device | None = None,
            batch_size: int = 512) -> np.ndarray:
    """Class probabilities (N, K) for a split, in eval mode, batched on the device."""
    device = pick_device(str(device) if device else None)
    model.to(device)
    autocast, _ = autocast_for(device, None)
    inputs = Inputs(split.labels, images=place(split, device))
    return tail_scores(model, inputs, 0, device, batch_size, autocast)


def evaluate(model: nn.Module, split: Split, n_boot: int = 1000, seed: int = 0,
             device: str | torch.device | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Test metrics with bootstrap 95% CIs, and the class probabilities they were computed from."""
    scores = predict(model, split, device)
    return evaluate_scores(split.labels.numpy(), scores, n_boot=n_boot, seed=seed), scores



@dataclass
class Outcome:
    """A trained model's training record, test metrics (with CIs) and test probabilities."""

    label: str
    result: TrainResult
    metrics: dict[str, float]
    scores: np.ndarray


def fit_and_test(label: str, model: nn.Module, data: DataSet, config: TrainConfig | None = None,
                 n_boot: int = 1000, **overrides) -> Outcome:
    """:func:`fit` then :func:`evaluate` on the test split, packaged as an :class:`Outcome`."""
    result = fit(model, data, config, **overrides)
    seed = overrides.get("seed", config.seed if config else 0)
    metrics, scores = evaluate(model, data.test, n_boot=n_boot, seed=seed, device=result.device)
    return Outcome(label, result, metrics, scores)


def lr_sensitivity(build: "Callable[[], nn.Module]", data: DataSet, lrs, config: TrainConfig,
                   label: str = "model", **overrides) -> pd.DataFrame:
    """Best validation AUC for each learning rate (same data, seed, initial weights and budget); a row per rate.

    ``build`` makes a fresh model; it is called after seeding, so every rate starts from the same weights.
    ``overrides`` change the config for this sweep only (e.g. fewer epochs).
    """
    rows = []
    for lr in lrs:
        seed_everything(config.seed)
        result = fit(build(), data, config, **{**overrides, "lr": lr})
        rows.append({"model": label, "lr": lr, "val_auc": result.best_val_auc, "epochs": len(result.history),
                     "final_train_loss": float(result.history["train_loss"].iloc[-1])})
    return pd.DataFrame(rows)
