"""Training windows around pixels of each class, dense class maps of whole frames, and the masks read off them.

Training and test windows are cut the same way (:mod:`helpers.detection.maps`): the frame is resized once
so that ``window`` frame px become ``patch`` px and zero-padded by ``patch // 2``; a window is a
``patch``-px square of that image, and its label is the class of the frame pixel at its centre
(:meth:`helpers.detection.maps.MapGeometry.to_frame`). Training windows sit on every pixel of the resized
frame (step 1); test maps every ``stride`` frame px, classified in batches (no per-pixel Python), then
resampled to frame size.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..datasets import Split
from ..detection import maps as dmaps
from ..detection.patches import dihedral8
from ..detection.video import PolypFrames
from .labels import BACKGROUND, CLASS_NAMES, THRESHOLDS, polyp_probability, three_class_labels


@dataclass(frozen=True)
class SegmenterSettings:
    """How a three-class patch classifier becomes a segmenter (notebook 07 prints these).

    ``window`` (frame px) is the side of the context around each pixel, ``patch`` the side it is resized
    to for the network, ``stride`` (frame px) the spacing of the test map's cells, ``band`` (frame px) the
    boundary band (:func:`helpers.segmentation.labels.three_class_labels`). With ``use_fov`` the predicted
    mask is cut to the endoscope's field of view.
    """

    patch: int
    window: float
    stride: float
    band: int
    use_fov: bool = True

    def geometry(self, frame_size: tuple[int, int], dense: bool = False) -> dmaps.MapGeometry:
        """The map's cells on frames of ``frame_size``: every ``stride`` px, or (``dense``) every resized pixel."""
        stride = self.window / self.patch if dense else self.stride
        return dmaps.map_geometry(frame_size, self.patch, stride, self.window)


def cut_windows(image: torch.Tensor, geometry: dmaps.MapGeometry, cells: np.ndarray) -> torch.Tensor:
    """uint8 (K, 3, patch, patch): the windows of map cells ``cells`` (K, 2) of one uint8 frame (3, H, W)."""
    small = dmaps.resize_frames(image[None], geometry)[0]
    pad, p, step = geometry.pad, geometry.patch, geometry.step
    padded = F.pad(small, (pad, pad, pad, pad))
    offsets = torch.arange(p)
    rows = torch.as_tensor(cells[:, 0] * step)[:, None] + offsets          # (K, p)
    cols = torch.as_tensor(cells[:, 1] * step)[:, None] + offsets
    windows = padded[:, rows[:, :, None], cols[:, None, :]]                # (3, K, p, p)
    return (windows.permute(1, 0, 2, 3) * 255).round().clamp(0, 255).to(torch.uint8)


def plan_windows(frames: PolypFrames, indices: Sequence[int], settings: SegmenterSettings, per_class: int,
                 seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per frame: ``(frame, cells (K, 2), labels (K,))``: up to ``per_class`` window centres of each class.

    Centres are drawn without replacement among the cells whose centre pixel has that class; background
    centres only inside the field of view (the test mask is cut to it too). A class a frame lacks (a polyp
    too thin for an interior) gives that frame no windows of it.
    """
    rng = np.random.default_rng(seed)
    geometry = settings.geometry(frames.frame_size, dense=True)
    py, px = dmaps.cell_pixels(geometry)
    out = []
    for k in indices:
        k = int(k)
        labels = three_class_labels(frames.masks[k], settings.band)[py, px]
        inside = frames.fov[k].numpy()[py, px] if settings.use_fov else np.ones(labels.shape, bool)
        cells, labs = [], []
        for c in range(len(CLASS_NAMES)):
            where = np.argwhere((labels == c) & (inside | (c != BACKGROUND)))
            if len(where):
                pick = where[rng.choice(len(where), min(per_class, len(where)), replace=False)]
                cells.append(pick)
                labs.append(np.full(len(pick), c))
        if cells:
            out.append((k, np.concatenate(cells), np.concatenate(labs)))
    return out


def sample_windows(frames: PolypFrames, indices: Sequence[int], settings: SegmenterSettings, per_class: int = 16,
                   seed: int = 0, augment_dihedral: bool = True, balance: bool = True) -> Split:
    """Training (or validation) windows of the frames at ``indices`` with their three-class labels.

    See :func:`plan_windows`; with ``balance`` the classes are down-sampled to the rarest one's count
    (seeded); with ``augment_dihedral`` every window also gives its 8 flips/rotations (a centre pixel's
    class does not change when the window turns about it).
    """
    plan = plan_windows(frames, indices, settings, per_class, seed)
    if not plan:
        raise ValueError("No windows: these frames hold no pixels of any class inside the field of view.")
    geometry = settings.geometry(frames.frame_size, dense=True)
    images = torch.cat([cut_windows(frames.images[k], geometry, cells) for k, cells, _ in plan])
    labels = torch.as_tensor(np.concatenate([labs for *_, labs in plan]), dtype=torch.int64)
    if balance:
        counts = torch.bincount(labels, minlength=len(CLASS_NAMES))
        if (counts == 0).any():
            missing = [CLASS_NAMES[c] for c in range(len(CLASS_NAMES)) if counts[c] == 0]
            raise ValueError(f"No {', '.join(missing)} windows in these frames: cannot balance the three classes "
                             "(polyps thinner than twice the boundary band have no interior; lower band_share).")
        rng = np.random.default_rng([seed, 1])
        n = int(counts.min())
        keep = np.sort(np.concatenate([rng.choice(np.flatnonzero(labels.numpy() == c), n, replace=False)
                                       for c in range(len(CLASS_NAMES))]))
        images, labels = images[keep], labels[keep]
    if augment_dihedral:
        images, labels = dihedral8(images), labels.repeat_interleave(8)
    return Split(images, labels)


def class_probabilities(model: torch.nn.Module, images: torch.Tensor, settings: SegmenterSettings,
                        device: torch.device | str = "cpu", batch_size: int = 1024) -> torch.Tensor:
    """Float (N, 3, H, W): each pixel's class probabilities, from the dense map resampled to frame size."""
    geometry = settings.geometry(tuple(images.shape[-2:]))
    cells = dmaps.class_maps(model, images, settings.patch, settings.stride, settings.window, device, batch_size)
    n, c, h, w = cells.shape
    return dmaps.upsample_map(cells.reshape(n * c, h, w), geometry).reshape(n, c, *images.shape[-2:])


def polyp_probabilities(model: torch.nn.Module, frames: PolypFrames, indices: Sequence[int],
                        settings: SegmenterSettings, device: torch.device | str = "cpu", batch_size: int = 1024,
                        chunk: int = 16) -> torch.Tensor:
    """Float (len(indices), H, W): each pixel's P(polyp) (boundary or interior), 0 outside the field of view."""
    indices = [int(i) for i in indices]
    out = []
    for start in range(0, len(indices), chunk):
        ids = indices[start:start + chunk]
        probs = class_probabilities(model, frames.images[ids], settings, device, batch_size)
        out.append(polyp_probability(probs, frames.fov[ids] if settings.use_fov else None))
    return torch.cat(out) if out else torch.zeros(0, *frames.frame_size)


def mean_dice(polyp_prob: torch.Tensor, true: torch.Tensor, threshold: float) -> float:
    """Mean Dice over frames of the masks ``polyp_prob >= threshold`` against ``true`` (N, H, W), vectorised."""
    pred = polyp_prob >= threshold
    inter = (pred & true).flatten(1).sum(1).double()
    total = (pred.flatten(1).sum(1) + true.flatten(1).sum(1)).double()
    return float(torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total)).mean())


def choose_threshold(polyp_prob: torch.Tensor, true: torch.Tensor, grid: Sequence[float] = THRESHOLDS) -> tuple[float, float]:
    """``(cut, mean Dice)``: the cut on P(polyp) with the best mean Dice on these (validation) frames; a tie
    goes to the cut nearest 0.5, then the lower one."""
    values = [(mean_dice(polyp_prob, true, t), -abs(t - 0.5), -t, t) for t in grid]
    best = max(values)
    return best[3], best[0]
