"""Detection: probability maps over whole frames, candidates (local maxima, non-maximum suppression),
rescoring over scales and views, and hard-negative mining.

A probability map cell ``(i, j)`` holds P(polyp) of the window of side ``window`` frame pixels centred on
frame pixel :meth:`MapGeometry.to_frame` ``(i, j)``; cells lie on a regular grid ``stride_px`` apart (see
:class:`MapGeometry`). Detections are scored by FROC (:mod:`.froc`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..models import evaluating
from .video import PolypFrames
from .froc import make_frame_table, match_candidates
from .patches import PLAN_COLUMNS, crop_boxes, dihedral8

# --------------------------------------------------------------------------------------------
# Probability maps and candidates
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapGeometry:
    """How a probability map's cells sit on the frame.

    The frame (H, W) is resized once to ``small_size`` so that ``window`` frame px become ``patch``
    px, zero-padded by ``pad`` px on every side, and cut into ``patch``-px windows every ``step`` px.
    Cell ``(i, j)`` is the window centred at frame pixel ``to_frame(i, j)``:
    ``y = (i * step - pad + patch / 2) / scale_y - 0.5`` (same for x), i.e. cells are
    ``stride_px = step / scale`` frame px apart and the first cell sits on the frame's top-left edge.
    """

    frame_size: tuple[int, int]
    window: int
    patch: int
    small_size: tuple[int, int]
    step: int
    pad: int

    @property
    def scale(self) -> tuple[float, float]:
        """(y, x) resize factors from frame to small image (about patch / window)."""
        return self.small_size[0] / self.frame_size[0], self.small_size[1] / self.frame_size[1]

    @property
    def map_size(self) -> tuple[int, int]:
        """(h, w) cells of the map."""
        return tuple((n + 2 * self.pad - self.patch) // self.step + 1 for n in self.small_size)

    @property
    def stride_px(self) -> tuple[float, float]:
        """(y, x) distance between neighbouring cells in frame pixels."""
        return self.step / self.scale[0], self.step / self.scale[1]

    def to_frame(self, i: np.ndarray | float, j: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Frame pixel coordinates (float y, x) of the centres of cells (i, j)."""
        sy, sx = self.scale
        offset = self.patch / 2 - self.pad
        return (np.asarray(i) * self.step + offset) / sy - 0.5, (np.asarray(j) * self.step + offset) / sx - 0.5

    def to_cell(self, y: np.ndarray | float, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """The nearest cell (int i, j, clipped to the map) to frame pixels (y, x)."""
        sy, sx = self.scale
        offset = self.patch / 2 - self.pad
        i = np.rint(((np.asarray(y) + 0.5) * sy - offset) / self.step).astype(int)
        j = np.rint(((np.asarray(x) + 0.5) * sx - offset) / self.step).astype(int)
        return np.clip(i, 0, self.map_size[0] - 1), np.clip(j, 0, self.map_size[1] - 1)


def map_geometry(frame_size: tuple[int, int], patch: int, stride: float, window: float) -> MapGeometry:
    """The :class:`MapGeometry` of :func:`probability_map` for frames of ``frame_size`` = (H, W).

    ``stride`` (frame px) is rounded to whole pixels of the resized frame (at least 1), so the
    actual spacing is :attr:`MapGeometry.stride_px`.
    """
    if window <= 0 or patch <= 0 or stride <= 0:
        raise ValueError(f"patch, stride and window must be positive, got {patch}, {stride}, {window}.")
    factor = patch / window
    small = (max(1, int(round(frame_size[0] * factor))), max(1, int(round(frame_size[1] * factor))))
    step = max(1, int(round(stride * factor)))
    return MapGeometry((int(frame_size[0]), int(frame_size[1])), int(round(window)), int(patch), small, step,
                       patch // 2)


def _windows(small: torch.Tensor, geometry: MapGeometry) -> torch.Tensor:
    """(n * h * w, 3, patch, patch) windows of resized frames (n, 3, hs, ws), frame-major, raster order."""
    p, pad = geometry.patch, geometry.pad
    cols = F.unfold(F.pad(small, (pad, pad, pad, pad)), kernel_size=p, stride=geometry.step)
    n, _, length = cols.shape
    return cols.transpose(1, 2).reshape(n * length, small.shape[1], p, p)


def resize_frames(images: torch.Tensor, geometry: MapGeometry) -> torch.Tensor:
    """uint8 frames (n, 3, H, W) -> float [0, 1] frames at ``geometry.small_size`` (anti-aliased)."""
    x = images.float() / 255.0
    return F.interpolate(x, size=geometry.small_size, mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def _classify(model: torch.nn.Module, windows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Class probabilities softmax(logits) (n, C) of ``windows``, ``batch_size`` at a time."""
    probs = [torch.softmax(model(windows[s:s + batch_size]).float(), dim=1)
             for s in range(0, len(windows), batch_size)]
    return torch.cat(probs) if probs else windows.new_zeros(0, 2)


def class_maps(model: torch.nn.Module, images: torch.Tensor, patch: int, stride: float, window: float,
               device: torch.device | str = "cpu", batch_size: int = 1024) -> torch.Tensor:
    """Dense class probabilities of windows of side ``window`` px every ``stride`` px, classified at ``patch`` px.

    ``images`` uint8 (N, 3, H, W) gives (N, C, h, w), C being the model's classes; float32 on the CPU.
    Each frame is resized once so that ``window`` px become ``patch`` px, padded, and unfolded into
    patch-sized windows (no loop over windows); the windows of several frames are classified together
    in batches of ``batch_size`` on ``device``. ``model`` takes float (B, 3, patch, patch) in [0, 1] and
    returns (B, C) logits; it is run in eval mode under ``torch.no_grad``. Cell geometry:
    :func:`map_geometry` (same arguments); :func:`upsample_map` gives frame size. Detection
    (:func:`probability_map`) reads class 1; segmentation (:mod:`helpers.segmentation`) all three.
    """
    geometry = map_geometry(tuple(images.shape[-2:]), patch, stride, window)
    h, w = geometry.map_size
    per_chunk = max(1, batch_size // (h * w))
    out = []
    with evaluating(model):
        for start in range(0, len(images), per_chunk):
            small = resize_frames(images[start:start + per_chunk].to(device), geometry)
            probs = _classify(model, _windows(small, geometry), batch_size)
            out.append(probs.reshape(-1, h, w, probs.shape[-1]).permute(0, 3, 1, 2).cpu())
    return torch.cat(out).float()


def probability_map(model: torch.nn.Module, images: torch.Tensor, patch: int, stride: float, window: float,
                    device: torch.device | str = "cpu", batch_size: int = 1024) -> torch.Tensor:
    """Dense P(polyp) of windows of side ``window`` px every ``stride`` px (:func:`class_maps`, class 1).

    ``images`` uint8 (3, H, W) gives an (h, w) map, (N, 3, H, W) gives (N, h, w); float32 on the CPU.
    """
    single = images.dim() == 3
    out = class_maps(model, images[None] if single else images, patch, stride, window, device, batch_size)[:, 1]
    return out[0] if single else out


def upsample_map(prob_map: torch.Tensor, geometry: MapGeometry) -> torch.Tensor:
    """A map (h, w) or (N, h, w) resampled bilinearly to frame size (H, W) / (N, H, W).

    Uses the exact cell centres of ``geometry`` (frame pixels beyond the outer cell centres take
    the edge value).
    """
    single = prob_map.dim() == 2
    maps = (prob_map[None] if single else prob_map)[:, None].float()
    h, w = geometry.map_size
    height, width = geometry.frame_size
    i0, j0 = geometry.to_frame(0, 0)
    sy, sx = geometry.stride_px
    gy = (torch.arange(height, dtype=torch.float32) - float(i0)) / sy
    gx = (torch.arange(width, dtype=torch.float32) - float(j0)) / sx
    gy = 2 * gy / max(h - 1, 1) - 1
    gx = 2 * gx / max(w - 1, 1) - 1
    grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1).to(maps.device)
    out = F.grid_sample(maps, grid.expand(len(maps), -1, -1, -1), mode="bilinear", padding_mode="border",
                        align_corners=True)[:, 0]
    return out[0] if single else out


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (1, 1, h, w) ``x`` (zero padding)."""
    half = max(1, int(np.ceil(2 * sigma)))
    r = torch.arange(-half, half + 1, dtype=x.dtype)
    k = torch.exp(-r ** 2 / (2 * sigma ** 2))
    k = k / k.sum()
    x = F.conv2d(x, k.view(1, 1, -1, 1), padding=(half, 0))
    return F.conv2d(x, k.view(1, 1, 1, -1), padding=(0, half))


def _local_maxima(values: torch.Tensor, radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells of ``values`` (h, w) that are the maximum of their (2r+1)^2 neighbourhood.

    Ties on plateaus (saturated probabilities) are broken by a Gaussian blur of the map
    (sigma = radius / 2), which favours the plateau's centre. Returns (flat indices, ranking keys).
    """
    x = values[None, None].double()
    key = x + 1e-6 * _gaussian_blur(x, max(1.0, radius / 2))
    peaks = key == F.max_pool2d(key, 2 * radius + 1, stride=1, padding=radius)
    flat = torch.nonzero(peaks.flatten(), as_tuple=True)[0]
    return flat, key.flatten()[flat]


def _greedy_nms(ys: np.ndarray, xs: np.ndarray, min_distance: float) -> np.ndarray:
    """Indices kept by greedy suppression (inputs sorted by rank): none closer than ``min_distance``."""
    kept: list[int] = []
    for k in range(len(ys)):
        if all((ys[k] - ys[m]) ** 2 + (xs[k] - xs[m]) ** 2 >= min_distance ** 2 for m in kept):
            kept.append(k)
    return np.asarray(kept, dtype=int)


def find_candidates(prob_map: torch.Tensor, min_distance_px: float, threshold: float = 0.0,
                    geometry: MapGeometry | None = None, max_candidates: int | None = None) -> list[tuple[int, int, float]]:
    """Local maxima of one map as ``(y, x, score)`` in frame pixels, best score first.

    ``prob_map`` is (h, w) with its ``geometry`` (from :func:`map_geometry`), or frame-sized (H, W)
    with ``geometry=None``. Maxima with score ``>= threshold`` are found with a max-pool whose
    radius is ``min_distance_px`` in cells (at least 1), then greedily suppressed in score order so
    that no two are closer than ``min_distance_px`` frame px. ``y, x`` are rounded to pixels and clipped to the frame.
    """
    values = prob_map.detach().float().cpu()
    stride = min(geometry.stride_px) if geometry is not None else 1.0
    radius = max(1, int(min_distance_px // stride))
    flat, key = _local_maxima(values, radius)
    scores = values.flatten()[flat]
    ok = scores >= threshold
    flat, key, scores = flat[ok], key[ok], scores[ok]
    order = torch.argsort(key, descending=True, stable=True)
    flat, scores = flat[order].numpy(), scores[order].numpy()
    i, j = np.divmod(flat, values.shape[1])
    y, x = geometry.to_frame(i, j) if geometry is not None else (i.astype(float), j.astype(float))
    keep = _greedy_nms(y, x, min_distance_px)[:max_candidates]
    size = geometry.frame_size if geometry is not None else values.shape
    y = np.clip(np.rint(y[keep]), 0, size[0] - 1).astype(int)
    x = np.clip(np.rint(x[keep]), 0, size[1] - 1).astype(int)
    return [(int(a), int(b), float(s)) for a, b, s in zip(y, x, scores[keep])]


@torch.no_grad()
def rescore_candidates(model: torch.nn.Module, image: torch.Tensor, candidates: Sequence[tuple[int, int, float]],
                       patch: int, window: float | Sequence[float], scales: Sequence[float] = (1.0, 1.2, 1.5),
                       device: torch.device | str = "cpu", batch_size: int = 1024) -> list[tuple[int, int, float]]:
    """The study's candidate score: P(polyp) averaged over crops of side ``scale * window`` (every
    scale) and their 8 flips/rotations, centred on each candidate of one uint8 (3, H, W) ``image``.

    ``window`` is one side for all candidates or one per candidate. Returns the candidates with
    their averaged scores (same order).
    """
    if not candidates:
        return []
    windows = np.broadcast_to(np.asarray(window, dtype=float), (len(candidates),))
    cy = torch.tensor([float(c[0]) for c in candidates for _ in scales], device=device)
    cx = torch.tensor([float(c[1]) for c in candidates for _ in scales], device=device)
    side = torch.tensor([s * w for w in windows for s in scales], dtype=torch.float32, device=device)
    crops = crop_boxes(image[None].to(device), torch.zeros_like(cy, dtype=torch.long), cy, cx, side, patch)
    views = dihedral8(crops.round().clamp(0, 255) / 255.0)
    with evaluating(model):
        probs = _classify(model, views, batch_size)[:, 1].reshape(len(candidates), -1).mean(1).cpu()
    return [(c[0], c[1], float(p)) for c, p in zip(candidates, probs)]


@dataclass(frozen=True)
class DetectorSettings:
    """How a patch classifier becomes a detector (notebook 05 prints these).

    ``window`` is the base window (frame px): the median polyp size (largest bounding-box side) of
    the training frames. Maps are computed at the sampler's three scales, windows ``scale * window``,
    each every ``stride * its window`` px; candidates are the peaks of the cell-wise maximum of the
    three maps (windows centred outside the field of view are not scored when ``use_fov``), kept
    ``nms_radius * window`` px apart, at most ``max_candidates`` per frame. With ``average_views``
    each candidate's final score is P(polyp) averaged over crops at the three windows times the 8
    flips/rotations (24 views, as the study did). A candidate within ``tolerance * window`` px of a
    polyp's pixels hits it (:func:`helpers.froc.match_candidates`).
    """

    patch: int
    window: float
    scales: tuple[float, ...] = (1.0, 1.2, 1.5)
    stride: float = 0.5
    nms_radius: float = 0.5
    tolerance: float = 0.25
    max_candidates: int = 3
    average_views: bool = True
    use_fov: bool = True

    @property
    def windows(self) -> list[float]:
        """The map windows in frame px, one per scale."""
        return [float(s) * float(self.window) for s in self.scales]


def cell_pixels(geometry: MapGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Int (h, w) frame row and column of the pixel at the centre of each map cell (rounded, clipped)."""
    i, j = np.meshgrid(np.arange(geometry.map_size[0]), np.arange(geometry.map_size[1]), indexing="ij")
    y, x = geometry.to_frame(i, j)
    return (np.clip(np.rint(y), 0, geometry.frame_size[0] - 1).astype(np.int64),
            np.clip(np.rint(x), 0, geometry.frame_size[1] - 1).astype(np.int64))


def _on_base_grid(prob_map: torch.Tensor, geometry: MapGeometry, base: MapGeometry) -> torch.Tensor:
    """Maps (n, h, w) of ``geometry`` read at the cell centres of ``base`` -> (n, hb, wb) (bilinear)."""
    full = upsample_map(prob_map, geometry)
    if full.dim() == 2:
        full = full[None]
    y, x = cell_pixels(base)
    return full[:, torch.as_tensor(y), torch.as_tensor(x)]


def fov_cells(fov: torch.Tensor, geometry: MapGeometry) -> torch.Tensor:
    """Bool (n, h, w): whether each map cell's centre lies inside the field of view ``fov`` (n, H, W)."""
    y, x = cell_pixels(geometry)
    return fov[:, torch.as_tensor(y), torch.as_tensor(x)]


def combined_map(model: torch.nn.Module, images: torch.Tensor, fov: torch.Tensor | None,
                 settings: DetectorSettings, device: torch.device | str = "cpu",
                 batch_size: int = 1024) -> tuple[torch.Tensor, torch.Tensor, MapGeometry]:
    """The detector's map of frames (n, 3, H, W): max over the scales' maps, on the base window's grid.

    Returns ``(values, which, geometry)``: values (n, h, w) float, -1 where the cell's centre is
    outside ``fov`` (so no candidate can sit there); ``which`` the index of the scale whose map is
    highest at each cell; ``geometry`` the base grid (:func:`map_geometry` of the base window).
    """
    size = tuple(images.shape[-2:])
    windows = settings.windows
    base = map_geometry(size, settings.patch, settings.stride * settings.window, settings.window)
    layers = []
    for w in windows:
        geo = map_geometry(size, settings.patch, settings.stride * w, w)
        layers.append(_on_base_grid(probability_map(model, images, settings.patch, settings.stride * w, w,
                                                    device, batch_size), geo, base))
    values, which = torch.stack(layers).max(dim=0)
    if settings.use_fov and fov is not None:
        values = torch.where(fov_cells(fov, base), values, torch.full_like(values, -1.0))
    return values, which, base


def detect(model: torch.nn.Module, frames: PolypFrames, indices: Sequence[int], settings: DetectorSettings,
           device: torch.device | str = "cpu", batch_size: int = 1024, chunk: int = 16) -> list[list[tuple[int, int, float]]]:
    """Candidates ``(y, x, score)`` of each frame at ``indices``, best first (see :class:`DetectorSettings`).

    Maps are computed ``chunk`` frames at a time, their windows classified in batches of
    ``batch_size`` on ``device``; the 24 views of every candidate are one batch per frame.
    """
    out = []
    indices = [int(i) for i in indices]
    for start in range(0, len(indices), chunk):
        ids = indices[start:start + chunk]
        values, _, base = combined_map(model, frames.images[ids], frames.fov[ids], settings, device, batch_size)
        for k, frame_map in zip(ids, values):
            cands = find_candidates(frame_map, settings.nms_radius * settings.window, 0.0, base,
                                    settings.max_candidates)
            if settings.average_views:
                cands = rescore_candidates(model, frames.images[k], cands, settings.patch, settings.window,
                                           settings.scales, device, batch_size)
                cands.sort(key=lambda c: -c[2])
            out.append(cands)
    return out


def score_frames(model: torch.nn.Module, frames: PolypFrames, indices: Sequence[int], settings: DetectorSettings,
                 device: torch.device | str = "cpu", batch_size: int = 1024) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Detect polyps in the frames at ``indices`` (:func:`detect`) and label the detections for FROC.

    Returns ``(matches, frame_table)``: one row per candidate (frame, sequence, y, x, score, is_tp,
    is_fp, polyp_id; matched with a tolerance of ``settings.tolerance * settings.window`` px) and one
    row per frame (frame, sequence, n_polyps), ready for :mod:`helpers.froc`. Every frame at
    ``indices`` counts, with or without candidates.
    """
    indices = [int(i) for i in indices]
    candidates = detect(model, frames, indices, settings, device, batch_size)
    masks = frames.masks[indices]
    sequences = [frames.sequences[i] for i in indices]
    return (match_candidates(candidates, masks, sequences, indices,
                             tolerance=settings.tolerance * settings.window),
            make_frame_table(masks, sequences, indices))


def mine_hard_negatives(model: torch.nn.Module, frames: PolypFrames, indices: Sequence[int],
                        settings: DetectorSettings, per_frame: int = 4, margin: float = 0.5,
                        device: torch.device | str = "cpu", batch_size: int = 1024,
                        radius: float | None = None) -> pd.DataFrame:
    """The highest-scoring windows off the polyp in training frames: a plan of hard negatives.

    For each frame, the peaks of :func:`combined_map` (inside the field of view, ``radius`` px apart,
    default half the detector's NMS distance so that more than one window per frame can qualify)
    whose centre is more than ``margin * side`` px from every mask pixel (so the crop holds no
    polyp, as for the sampler's negatives) are ranked by score and the best ``per_frame`` kept; the
    side is the window of the scale that scored highest there. Returns rows of
    :data:`PLAN_COLUMNS` with label 0 (crop them with :func:`crop_patches`).
    """
    rows = []
    indices = [int(i) for i in indices]
    for start in range(0, len(indices), 16):
        ids = indices[start:start + 16]
        values, which, base = combined_map(model, frames.images[ids], frames.fov[ids], settings, device, batch_size)
        for k, frame_map, frame_which in zip(ids, values, which):
            mask = frames.masks[k].numpy()
            dist = ndimage.distance_transform_edt(~mask) if mask.any() else np.full(mask.shape, np.inf)
            cands = find_candidates(frame_map, radius or settings.nms_radius * settings.window / 2, 0.0, base)
            kept = 0
            for y, x, score in cands:
                i, j = base.to_cell(y, x)
                side = settings.windows[int(frame_which[int(i), int(j)])]
                if dist[y, x] > margin * side and kept < per_frame:
                    rows.append((k, 0, y, x, float(y), float(x), side, np.nan))
                    kept += 1
    plan = pd.DataFrame(rows, columns=PLAN_COLUMNS)
    return plan.astype({"frame": int, "label": int, "anchor_y": int, "anchor_x": int})
