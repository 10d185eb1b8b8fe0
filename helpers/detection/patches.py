"""Training patches for the polyp classifier: positives around polyps at three scales (1.0, 1.2, 1.5 times
the polyp size) with shifts, negatives inside the field of view, the eight flips/rotations.

A crop of side ``s`` centred on pixel ``(cy, cx)`` covers continuous coordinates
``[cy + 0.5 - s/2, cy + 0.5 + s/2)`` (same for x); pixels outside the frame read as black
(conventions: :mod:`.video`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage
from torchvision.ops import roi_align

from ..datasets import DataSet, Split
from .video import CLASS_NAMES, PolypFrames, reduce_by_sequence
from .froc import label_polyps

# --------------------------------------------------------------------------------------------
# Training patches
# --------------------------------------------------------------------------------------------

PLAN_COLUMNS = ["frame", "label", "anchor_y", "anchor_x", "cy", "cx", "side", "scale"]


def _positive_rows(frame: int, mask: np.ndarray, rng: np.random.Generator, scales: Sequence[float],
                   shift: float, n_anchors: int) -> list[tuple]:
    """Crops around polyp pixels of one frame: per polyp, ``n_anchors`` anchors x scales.

    The first anchor is the polyp pixel nearest its bounding-box centre, the others random polyp
    pixels; the side is ``scale * max(bbox height, bbox width)``, at most the frame's shorter side;
    the crop centre is the anchor shifted by up to ``shift * side`` in each direction.
    """
    labels, n = label_polyps(mask)
    rows = []
    limit = min(mask.shape)
    for comp, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        pix = np.argwhere(labels[box] == comp) + [box[0].start, box[1].start]
        size = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
        centre = [(box[0].start + box[0].stop - 1) / 2, (box[1].start + box[1].stop - 1) / 2]
        first = pix[np.argmin(((pix - centre) ** 2).sum(1))]
        others = pix[rng.integers(0, len(pix), max(n_anchors - 1, 0))]
        for ay, ax in np.vstack([first[None], others]):
            for scale in scales:
                side = min(scale * size, limit)
                dy, dx = rng.uniform(-shift, shift, 2) * side
                rows.append((frame, 1, ay, ax, ay + dy, ax + dx, side, scale))
    return rows


def _negative_rows(frame: int, mask: np.ndarray, fov: np.ndarray, rng: np.random.Generator,
                   side_pool: np.ndarray, n: int, margin: float) -> list[tuple]:
    """``n`` crops of polyp-free tissue: centres inside the FOV, more than ``margin * side`` px from
    every mask pixel, sides drawn from ``side_pool`` (only sides that fit somewhere in this frame)."""
    big = np.iinfo(np.uint16).max
    dist = ndimage.distance_transform_edt(~mask) if mask.any() else np.full(mask.shape, big)
    where = np.flatnonzero(fov.ravel())
    d = np.minimum(np.floor(dist.ravel()[where]), big).astype(np.uint16)   # floor: conservative
    order = np.argsort(d, kind="stable")                                        # radix sort
    d_sorted, where = d[order], where[order]
    pool = side_pool[margin * side_pool < (d_sorted[-1] if len(d_sorted) else -1)]
    if n <= 0 or len(pool) == 0:
        return []
    sides = rng.choice(pool, n)
    start = np.searchsorted(d_sorted, margin * sides, side="right")
    pick = where[rng.integers(start, len(d_sorted))]
    ys, xs = np.unravel_index(pick, mask.shape)
    return [(frame, 0, y, x, float(y), float(x), s, np.nan) for y, x, s in zip(ys, xs, sides)]


def plan_patches(frames: PolypFrames, indices: Sequence[int], seed: int = 0,
                 scales: Sequence[float] = (1.0, 1.2, 1.5), shift: float = 0.1, n_anchors: int = 2,
                 n_neg_per_frame: int = 8, neg_margin: float = 0.5, balance: bool = True) -> pd.DataFrame:
    """Where to crop: one row per patch before flips/rotations, columns :data:`PLAN_COLUMNS`.

    ``label`` 1 (polyp) rows are centred on polyp pixels ``(anchor_y, anchor_x)`` shifted to
    ``(cy, cx)``; label 0 rows on polyp-free pixels inside the field of view (``anchor = centre``),
    with sides drawn from the positive sides of these frames. With ``balance`` the majority class
    is randomly down-sampled to the minority's count (as the study did). Deterministic given ``seed``.
    """
    rng = np.random.default_rng(seed)
    masks = frames.masks.cpu().numpy()
    pos = [r for i in indices for r in _positive_rows(int(i), masks[i], rng, scales, shift, n_anchors)]
    side_pool = np.array([r[6] for r in pos]) if pos else np.array(scales) * min(frames.frame_size) / 3
    neg = []
    for i in indices:
        fov = frames.fov[int(i)].numpy()
        neg += _negative_rows(int(i), masks[i], fov, rng, side_pool, n_neg_per_frame, neg_margin)
    plan = pd.DataFrame(pos + neg, columns=PLAN_COLUMNS)
    plan = plan.astype({"frame": int, "label": int, "anchor_y": int, "anchor_x": int})
    return _balance(plan, rng) if balance else plan


def _balance(plan: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Randomly down-sample the majority label to the minority's count (row order kept)."""
    counts = plan["label"].value_counts()
    if len(counts) < 2:
        raise ValueError(f"Cannot balance patches: only label(s) {counts.index.tolist()} were sampled "
                         "(frames without polyps, or no room for negatives?).")
    n = int(counts.min())
    keep = [np.sort(rng.choice(np.flatnonzero(plan["label"].to_numpy() == lab), n, replace=False))
            for lab in (0, 1)]
    return plan.iloc[np.sort(np.concatenate(keep))].reset_index(drop=True)


def _pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Float frames at full, 1/2, 1/4 ... resolution (2x2 box filter between levels)."""
    out = [images.float()]
    for _ in range(levels):
        out.append(F.avg_pool2d(out[-1], 2, ceil_mode=True))
    return out


def crop_boxes(images: torch.Tensor, frame_pos: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor,
                side: torch.Tensor, patch: int, max_level: int = 4) -> torch.Tensor:
    """Float (K, 3, patch, patch) crops of side ``side`` centred on pixels (cy, cx) of ``images[frame_pos]``.

    Each crop is read with ``roi_align`` from the pyramid level where it spans between ``patch``
    and ``2 * patch`` pixels, so large crops are anti-aliased at a constant cost per crop.
    """
    level = torch.clamp(torch.floor(torch.log2(side / patch)), 0, max_level).long()
    pyramid = _pyramid(images, int(level.max().item()) if len(level) else 0)
    boxes = torch.stack([frame_pos.float(), cx + 0.5 - side / 2, cy + 0.5 - side / 2,
                         cx + 0.5 + side / 2, cy + 0.5 + side / 2], dim=1)
    out = torch.zeros(len(side), images.shape[1], patch, patch, device=images.device)
    for lev in level.unique().tolist():
        sel = level == lev
        out[sel] = roi_align(pyramid[lev], boxes[sel], output_size=patch, spatial_scale=0.5 ** lev,
                             sampling_ratio=-1, aligned=True)
    return out


def crop_patches(images: torch.Tensor, plan: pd.DataFrame, patch: int, chunk: int = 32,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (K, 3, patch, patch) crops for the rows of ``plan`` (frame, cy, cx, side) from ``images``.

    Frames are processed ``chunk`` at a time on ``device``; the result is on the CPU.
    """
    out = torch.zeros(len(plan), images.shape[1], patch, patch, dtype=torch.uint8)
    frame_col = plan["frame"].to_numpy()
    unique = np.unique(frame_col)
    for start in range(0, len(unique), chunk):
        ids = unique[start:start + chunk]
        rows = np.flatnonzero(np.isin(frame_col, ids))
        sub = plan.iloc[rows]
        pos = torch.as_tensor(np.searchsorted(ids, sub["frame"].to_numpy()), device=device)
        col = {c: torch.as_tensor(sub[c].to_numpy(np.float32), device=device) for c in ("cy", "cx", "side")}
        crops = crop_boxes(images[torch.as_tensor(ids)].to(device), pos, col["cy"], col["cx"], col["side"], patch)
        out[torch.as_tensor(rows)] = crops.round().clamp(0, 255).to(torch.uint8).cpu()
    return out


def dihedral8(x: torch.Tensor) -> torch.Tensor:
    """The eight flips/rotations of each (…, H, W) square patch: (K, …) -> (8K, …), patch-major.

    Row ``8 * k + t`` is transform ``t`` of patch ``k``: t = 0..3 rotate by t * 90 degrees,
    t = 4..7 flip left-right then rotate.
    """
    flipped = x.flip(-1)
    views = [torch.rot90(v, t, dims=(-2, -1)) for v in (x, flipped) for t in range(4)]
    return torch.stack(views, dim=1).reshape(-1, *x.shape[1:])


@dataclass(frozen=True)
class PatchSampling:
    """How :func:`sample_patches` places its crops (see there)."""

    n_anchors: int = 2                 # polyp pixels per polyp (bounding-box centre, then random)
    n_neg_per_frame: int = 8           # background centres per frame
    scales: tuple[float, ...] = (1.0, 1.2, 1.5)   # crop sides as multiples of the polyp size
    shift: float = 0.1                 # random shift, share of the side
    neg_margin: float = 0.5            # background centres at least this share of the side from any polyp pixel


def sample_patches(frames: PolypFrames, indices: Sequence[int], patch: int = 32, seed: int = 0,
                   sampling: PatchSampling = PatchSampling(), augment_dihedral: bool = True,
                   device: torch.device | str = "cpu", return_plan: bool = False) -> Split | tuple[Split, pd.DataFrame]:
    """Balanced polyp / background patches from the frames at ``indices``, as the study sampled them.

    ``sampling`` (:class:`PatchSampling`): positives, per polyp, ``n_anchors`` polyp pixels (bounding-box centre, then random), each at
    crop sides ``scale * polyp size`` for every scale, shifted up to ``shift`` of the side.
    Negatives: ``n_neg_per_frame`` centres in the field of view more than ``neg_margin * side`` from
    any polyp pixel, sides from the positives' distribution. The majority class is down-sampled,
    crops are resized to ``patch`` px, and with ``augment_dihedral`` each becomes its 8 flips/rotations.
    Returns a :class:`Split` (labels 1 = polyp, 0 = background); with ``return_plan`` also the plan
    (:func:`plan_patches`) with a ``transform`` column, one row per returned patch.
    Deterministic given ``seed``. Memory: 8 x (about 12 crops per frame) x 3 x patch^2 bytes.
    """
    s = sampling
    plan = plan_patches(frames, indices, seed, s.scales, s.shift, s.n_anchors, s.n_neg_per_frame, s.neg_margin)
    images = crop_patches(frames.images, plan, patch, device=device)
    labels = torch.tensor(plan["label"].to_numpy(), dtype=torch.int64)
    plan = plan.assign(transform=0)
    if augment_dihedral:
        images, labels = dihedral8(images), labels.repeat_interleave(8)
        plan = plan.loc[plan.index.repeat(8)].assign(transform=np.tile(np.arange(8), len(plan)))
        plan = plan.reset_index(drop=True)
    split = Split(images, labels)
    return (split, plan) if return_plan else split


def polyp_window(frames: PolypFrames, indices: Sequence[int], scales: Sequence[float] = (1.0, 1.2, 1.5)) -> int:
    """The median positive crop side (frame px) over the polyps of the frames at ``indices``.

    Every polyp contributes ``min(scale * max(bbox height, width), shorter frame side)`` for each
    scale: the window :func:`probability_map` should use so test windows match training crops.
    """
    limit = min(frames.frame_size)
    sides = []
    for i in indices:
        labels, _ = label_polyps(frames.masks[int(i)])
        for box in ndimage.find_objects(labels):
            if box is not None:
                size = max(box[0].stop - box[0].start, box[1].stop - box[1].start)
                sides += [min(s * size, limit) for s in scales]
    if not sides:
        raise ValueError("No polyps in these frames: cannot choose a window.")
    return int(round(float(np.median(sides))))


def patch_dataset(frames: PolypFrames, split_idx: dict[str, np.ndarray], patch: int = 32, seed: int = 0,
                  train_fraction: float = 1.0, sampling: PatchSampling = PatchSampling()) -> DataSet:
    """A patch :class:`DataSet` from frame splits (see :func:`split_by_sequence`).

    Train patches come from the training frames reduced by sequence to ``train_fraction``
    (:func:`reduce_by_sequence`) with the 8 flips/rotations; val and test patches (balanced, no
    flips) from the val and test frames. ``meta`` holds the frame indices of each split
    (``frames_train`` ...), ``window`` (:func:`polyp_window` of the FULL training split, so every
    ``train_fraction`` is evaluated with the same window), ``patch``, ``train_fraction`` and
    ``seed``. ``sampling`` goes to :func:`sample_patches`.
    """
    train_idx = reduce_by_sequence(frames, split_idx["train"], train_fraction, seed)
    train = sample_patches(frames, train_idx, patch, seed, sampling, augment_dihedral=True)
    val = sample_patches(frames, split_idx["val"], patch, seed + 1, sampling, augment_dihedral=False)
    test = sample_patches(frames, split_idx["test"], patch, seed + 2, sampling, augment_dihedral=False)
    window = polyp_window(frames, split_idx["train"], sampling.scales)
    meta = {"frames_train": train_idx, "frames_val": np.asarray(split_idx["val"]),
            "frames_test": np.asarray(split_idx["test"]), "window": window, "patch": patch,
            "train_fraction": train_fraction, "seed": seed}
    owners = frames.source / "OWNERS-README.txt"
    licence = ("Owners' terms: research and educational use only, no commercial use"
               + (f" (see {owners})." if owners.exists() else " (CVC-ClinicDB / Kvasir-SEG owners)."))
    return DataSet(f"polyp-{frames.source.name}", train, val, test, list(CLASS_NAMES), str(frames.source),
                   licence, meta)
