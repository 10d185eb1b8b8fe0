"""What fine-tuning changes inside a network: representation similarity (linear CKA), how far each stage's
weights moved, and the statistics-only ("Mean Var") initialisation that keeps the pretrained weights'
scale and none of their features.

**Linear CKA** (centred kernel alignment; Kornblith et al., ICML 2019) compares two representations of the
*same* n images, X (n x p) and Y (n x q), through their n x n Gram matrices K = X X^T and L = Y Y^T:

    CKA(X, Y) = HSIC(K, L) / sqrt(HSIC(K, K) * HSIC(L, L)),

with HSIC estimated by the *unbiased* estimator of Song et al. (JMLR 2012), which removes the bias that
makes the plain estimator of two unrelated representations drift above 0 when p is large relative to n:

    HSIC_1(K, L) = [ tr(K~ L~) + (1^T K~ 1)(1^T L~ 1) / ((n-1)(n-2)) - 2/(n-2) 1^T K~ L~ 1 ] / (n(n-3)),

where K~ and L~ are K and L with their diagonals set to 0. CKA is 1 for identical representations, is
unchanged by an orthogonal transform or an isotropic scaling of either one, and is near 0 for independent
ones. Computed in float64 from the Gram matrices (n x n), so stages with thousands of channels cost the
same as small ones.

**Activations.** Each stage's output for a batch of images, spatially averaged (one C-vector per image:
the global-average pooling most CKA studies of CNNs use, Kornblith et al. 2019 and Raghu et al. 2019 among
them); ``pool="flatten"`` keeps every position instead (C x H x W values per image).

**Weight movement** per stage: ||W - W0|| / ||W0|| over the stage's weight tensors (matrices and filters:
the 1-d BatchNorm scales and biases are left out), against the weights the run started from.

**Statistics-only initialisation** (Raghu et al., "Transfusion", NeurIPS 2019, their "Mean Var" init):
each convolution and linear layer of the pretrained network is redrawn i.i.d. from a normal with that
layer's mean and standard deviation (weights and biases separately); BatchNorm layers keep their
pretrained scale, shift and running statistics. Training from it asks how much of fine-tuning's advantage
is the weights' scale rather than their features.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from .batches import batch_slices, to_float
from .datasets import Split
from .models import FTModel, evaluating


# ----------------------------------------------------------------------------- CKA
def _gram(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(len(x), -1).to(torch.float64)
    return x @ x.T


def _unbiased_centred(gram: torch.Tensor) -> torch.Tensor:
    """The Gram matrix transformed so that the Frobenius inner product of two of them is (n(n-3) times)
    the unbiased HSIC estimator (Kornblith et al.'s ``center_gram(unbiased=True)``)."""
    n = gram.shape[0]
    if n < 4:
        raise ValueError(f"unbiased CKA needs at least 4 images (n(n-3) > 0); got {n}")
    g = gram.clone()
    g.fill_diagonal_(0)
    means = g.sum(0) / (n - 2)
    means = means - means.sum() / (2 * (n - 1))
    g = g - means[:, None] - means[None, :]
    g.fill_diagonal_(0)
    return g


def linear_cka(x: torch.Tensor | np.ndarray, y: torch.Tensor | np.ndarray) -> float:
    """Linear CKA with the unbiased HSIC estimator between two representations of the same n images
    (rows; any trailing shape is flattened). 1 for identical representations, ~0 for unrelated ones; can
    dip slightly below 0 by sampling noise (the estimator is unbiased, not non-negative)."""
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if len(x) != len(y):
        raise ValueError(f"CKA compares representations of the same images: {len(x)} rows vs {len(y)}")
    kx, ky = _unbiased_centred(_gram(x)), _unbiased_centred(_gram(y))
    hsic = (kx * ky).sum()
    norm = torch.sqrt((kx * kx).sum() * (ky * ky).sum())
    if norm <= 0:
        raise ValueError("CKA is undefined for a constant representation (its HSIC with itself is 0)")
    return float(hsic / norm)


def hsic_unbiased_reference(k: np.ndarray, l: np.ndarray) -> float:
    """The unbiased HSIC estimator written as in Song et al. (2012), term by term, for tests: slow and plain."""
    n = k.shape[0]
    k, l = k.astype(np.float64).copy(), l.astype(np.float64).copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    term1 = np.trace(k @ l)
    term2 = (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * (one @ k @ l @ one)
    return float((term1 + term2 - term3) / (n * (n - 3)))


# ----------------------------------------------------------------------------- activations
@torch.no_grad()
def stage_activations(model: FTModel, images: Split | torch.Tensor, pool: str = "mean", batch_size: int = 256,
                      device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
    """Each stage's output for ``images`` (uint8 N x C x H x W, or a Split), in eval mode, as float32 on
    the CPU: ``pool="mean"`` averages over space (N x C), ``"flatten"`` keeps every position."""
    if pool not in ("mean", "flatten"):
        raise ValueError(f"pool={pool!r}: use 'mean' or 'flatten'")
    data = images.images if isinstance(images, Split) else images
    device = torch.device(device) if device is not None else next(model.parameters()).device
    names = [n for n in model.stage_names if n != "input"]
    out: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    with evaluating(model):
        for idx in batch_slices(len(data), batch_size):
            x = to_float(data[idx].to(device))
            for name, module in model.stages.items():
                x = module(x)
                if name in out:
                    h = x.float()
                    h = h.mean(dim=(2, 3)) if pool == "mean" and h.ndim == 4 else h.reshape(len(h), -1)
                    out[name].append(h.cpu())
    return {n: torch.cat(v) for n, v in out.items()}


def cka_by_stage(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> pd.Series:
    """Linear CKA per stage between two models' activations on the same images (stage order of ``a``)."""
    return pd.Series({stage: linear_cka(a[stage], b[stage]) for stage in a if stage in b}, name="cka")


def cka_table(models: dict[str, FTModel], reference: str, images: Split | torch.Tensor,
              pool: str = "mean") -> pd.DataFrame:
    """Rows: the models other than ``reference``; columns: stages; cells: CKA with ``reference``."""
    acts = {name: stage_activations(m, images, pool) for name, m in models.items()}
    return pd.DataFrame({name: cka_by_stage(acts[reference], act) for name, act in acts.items()
                         if name != reference}).T


# ----------------------------------------------------------------------------- weight movement
def _stage_weights(stage: nn.Module) -> list[torch.Tensor]:
    return [p.detach().float().reshape(-1) for p in stage.parameters() if p.ndim > 1]


def weight_movement(model: FTModel, start: FTModel) -> pd.Series:
    """Per stage: ||W - W0|| / ||W0|| over the stage's weight tensors (filters and matrices), ``start``
    being the model the run began from. NaN for a stage without weights or whose start is all zero."""
    out = {}
    for name, stage in model.stages.items():
        now, before = _stage_weights(stage), _stage_weights(start.stages[name])
        if not now or len(now) != len(before) or any(a.shape != b.shape for a, b in zip(now, before)):
            out[name] = float("nan")
            continue
        w, w0 = torch.cat(now), torch.cat(before)
        base = float(w0.norm())
        out[name] = float((w - w0).norm()) / base if base > 0 else float("nan")
    return pd.Series(out, name="relative change")


# ----------------------------------------------------------------------------- statistics-only init
@torch.no_grad()
def statistics_init(model: FTModel, seed: int = 0, keep: Sequence[str] = ()) -> FTModel:
    """Redraw every convolution and linear layer of ``model`` (pretrained) i.i.d. from a normal with the
    layer's own mean and standard deviation, weights and biases separately; BatchNorm layers keep their
    scale, shift and running statistics. Stages named in ``keep`` are left alone (the new head, freshly
    initialised, is usually one). Seeded by ``seed``; returns ``model``, changed in place."""
    generator = torch.Generator().manual_seed(seed)
    for name, stage in model.stages.items():
        if name in keep:
            continue
        for module in stage.modules():
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            for param in (module.weight, module.bias):
                if param is None or param.numel() < 2:
                    continue
                mean, std = float(param.mean()), float(param.std())
                draw = torch.randn(param.shape, generator=generator, dtype=torch.float32) * std + mean
                param.copy_(draw.to(param.device, param.dtype))
    return model


# ----------------------------------------------------------------------------- Grad-CAM
MIN_CAM_GRID = 4
"""The coarsest spatial grid (positions per side) a Grad-CAM map is taken from by default."""


def grad_cam(model: FTModel, images: torch.Tensor, stage: str | None = None, target: int = 1) -> torch.Tensor:
    """Grad-CAM maps (N x H x W, in [0, 1] per image) of class ``target`` for uint8 ``images`` (N x C x H x W),
    at the output of ``stage``, upsampled to the input size. Computed by captum's ``LayerGradCam`` (the
    gradient of the class score, averaged over each channel of the stage's output, weights that channel;
    the weighted sum through a ReLU is the map). Default stage: the last one whose output is still a grid
    of at least ``MIN_CAM_GRID`` x ``MIN_CAM_GRID`` positions (a 1 x 1 output, the last stages at 32 px,
    would give one flat value per image). At 32-px inputs that is a 4 x 4 grid from the middle of the
    network: the map says which region, not which structure; at 224 px the last stages give 7 x 7."""
    from captum.attr import LayerAttribution, LayerGradCam   # deferred: only this figure needs captum

    device = next(model.parameters()).device
    x = to_float(images.to(device))
    if stage is None:
        with torch.no_grad(), evaluating(model):
            h, spatial = x[:1], None
            for name, module in model.stages.items():
                h = module(h)
                if name != "input" and h.ndim == 4 and min(h.shape[-2:]) >= MIN_CAM_GRID:
                    spatial = name
        stage = spatial
    if stage is None:
        raise ValueError("no stage of this model has a spatial output to attribute to")
    with evaluating(model):
        cam = LayerGradCam(model, model.stages[stage]).attribute(x.requires_grad_(True), target=target)
        cam = LayerAttribution.interpolate(cam.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    cam = cam[:, 0].clamp_min(0)
    peak = cam.flatten(1).max(1).values.clamp_min(1e-12)
    return (cam / peak[:, None, None]).cpu()
