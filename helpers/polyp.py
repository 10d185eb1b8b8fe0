"""Polyp detection data: frames and masks, sequence splits, training patches, probability maps.

The study detected polyps in colonoscopy videos: patches around candidate locations, at three
scales (1.0, 1.2, 1.5 times the polyp size) with shifts of up to 10% and the eight
flips/rotations, scored by a CNN; detections are scored by FROC (:mod:`helpers.froc`).
Here the public stand-in is CVC-ClinicDB (612 frames from 29 sequences); the same folder layout
serves Kvasir-SEG and other polyp sets::

    <folder>/images/<stem>.png|.jpg    RGB frames
    <folder>/masks/<stem>.png|.jpg     polyp masks (PNG: {0, 255} or {0, 1}; JPEG: thresholded at 128)
    <folder>/sequences.csv             optional: columns frame,sequence (frame = file name or stem)

Conventions
-----------
- Frames are uint8 tensors (N, 3, H, W); masks bool (N, H, W). Pixel ``(y, x)`` is row ``y``,
  column ``x``; its centre is at continuous coordinate ``(y + 0.5, x + 0.5)`` (pixel edges at
  integers), which is the convention of ``torchvision.ops.roi_align(aligned=True)``.
- A crop of side ``s`` centred on pixel ``(cy, cx)`` covers continuous coordinates
  ``[cy + 0.5 - s/2, cy + 0.5 + s/2)`` (same for x); pixels outside the frame read as black.
- A probability map cell ``(i, j)`` holds P(polyp) of the window of side ``window`` frame pixels
  centred on frame pixel :meth:`MapGeometry.to_frame` ``(i, j)``; cells lie on a regular grid
  ``stride_px`` apart (see :class:`MapGeometry`).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from torchvision.ops import roi_align

from .datasets import DataSet, Split
from .froc import label_polyps, make_frame_table, match_candidates
from .profiles import project_root

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LOSSY_SUFFIXES = (".jpg", ".jpeg")
CLASS_NAMES = ["background", "polyp"]
LAYOUT = ("<folder>/images/<stem>.png|.jpg (RGB frames), <folder>/masks/<stem>.png|.jpg (binary masks, "
          "same stems), optional <folder>/sequences.csv with columns frame,sequence")


# --------------------------------------------------------------------------------------------
# Finding the data
# --------------------------------------------------------------------------------------------

def _holds_frames(folder: Path) -> bool:
    """Whether ``folder`` directly holds ``images/`` and ``masks/``."""
    return (folder / "images").is_dir() and (folder / "masks").is_dir()


def _search_places(name: str) -> list[Path]:
    """Folders that may hold the polyp set ``name``, in search order."""
    places: list[Path] = []
    polyp_dir = os.environ.get("FTLAB_POLYP_DIR")
    if polyp_dir:
        env = Path(polyp_dir).expanduser()
        if env.name.lower() == name.lower():
            places.append(env)
        places.append(env / name)
        if _holds_frames(env):
            places.append(env)
    data_dir = os.environ.get("FTLAB_DATA_DIR")
    if data_dir:
        base = Path(data_dir).expanduser()
        places += [base / "polyp" / name, base.parent / "polyp" / name]
    places.append(project_root() / "data" / "polyp" / name)
    return places


def locate_polyp_dataset(name_or_path: str | Path = "CVC-ClinicDB") -> Path:
    """The folder of a polyp set: an existing folder path, or a set name looked up in known places.

    A name is looked up in ``$FTLAB_POLYP_DIR`` (that folder itself when its name matches or when it
    directly holds ``images/`` and ``masks/``; else ``$FTLAB_POLYP_DIR/<name>``),
    ``$FTLAB_DATA_DIR/polyp/<name>``, ``$FTLAB_DATA_DIR/../polyp/<name>`` and
    ``<project root>/data/polyp/<name>``. Raises ``FileNotFoundError`` explaining where to put it.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    if len(path.parts) > 1 or path.is_absolute():
        raise FileNotFoundError(f"Polyp folder {path} does not exist. Expected layout: {LAYOUT}.")
    name = str(name_or_path)
    places = _search_places(name)
    for place in places:
        if place.is_dir():
            return place.resolve()
    tried = "\n  ".join(str(p) for p in dict.fromkeys(places))
    raise FileNotFoundError(
        f"Polyp data set {str(name_or_path)!r} not found. Looked in:\n  {tried}\n"
        f"Put it at {project_root() / 'data' / 'polyp' / name} (or set FTLAB_POLYP_DIR to its folder) "
        f"in this layout: {LAYOUT}.\n"
        "The frames are not downloaded by ftlab: obtain CVC-ClinicDB or Kvasir-SEG from their owners "
        "(research and educational use only) and respect their terms.")


# --------------------------------------------------------------------------------------------
# Loading frames
# --------------------------------------------------------------------------------------------

@dataclass
class PolypFrames:
    """Colonoscopy frames with polyp masks.

    ``images`` uint8 (N, 3, H, W); ``masks`` bool (N, H, W); ``names`` the file stems;
    ``sequences`` the video sequence of each frame (each frame is its own group when the set has
    no ``sequences.csv``: ``has_sequences`` is then False); ``source`` the folder read.
    """

    images: torch.Tensor
    masks: torch.Tensor
    names: list[str]
    sequences: list[str]
    source: Path
    has_sequences: bool
    fov: torch.Tensor | None = None      # bool (N, H, W) field of view (:func:`fov_mask`), filled on load

    def __post_init__(self) -> None:
        if self.fov is None:
            self.fov = torch.from_numpy(np.stack([fov_mask(im) for im in self.images])) if len(self.images) \
                else torch.zeros(self.masks.shape, dtype=torch.bool)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def sequence_names(self) -> list[str]:
        """The distinct sequences, in order of first appearance."""
        return list(dict.fromkeys(self.sequences))

    def subset(self, indices: Sequence[int] | np.ndarray) -> "PolypFrames":
        """The frames at ``indices`` (in that order)."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        return PolypFrames(self.images[idx], self.masks[idx], [self.names[i] for i in idx.tolist()],
                           [self.sequences[i] for i in idx.tolist()], self.source, self.has_sequences,
                           self.fov[idx])


def _natural_key(stem: str) -> list:
    """Sort key putting ``2`` before ``10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", stem)]


def _files_by_stem(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` keyed by stem; two files with one stem is an error."""
    files: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
            if f.stem in files:
                raise ValueError(f"Two files with the stem {f.stem!r} in {folder}: {files[f.stem].name}, {f.name}.")
            files[f.stem] = f
    return files


def _pair_files(folder: Path) -> list[tuple[str, Path, Path]]:
    """(stem, image path, mask path) for every frame, in natural order of the stems."""
    if not folder.is_dir():
        raise FileNotFoundError(f"Polyp folder {folder} does not exist. Expected layout: {LAYOUT}.")
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            raise FileNotFoundError(f"{folder} has no {sub}/ folder. Expected layout: {LAYOUT}.")
    images, masks = _files_by_stem(folder / "images"), _files_by_stem(folder / "masks")
    if not images:
        raise ValueError(f"{folder / 'images'} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
    only_img = sorted(set(images) - set(masks), key=_natural_key)
    only_mask = sorted(set(masks) - set(images), key=_natural_key)
    if only_img or only_mask:
        raise ValueError(
            f"Images and masks in {folder} do not pair up by file stem: {len(only_img)} images without a "
            f"mask (e.g. {[images[s].name for s in only_img[:5]]}), {len(only_mask)} masks without an image "
            f"(e.g. {[masks[s].name for s in only_mask[:5]]}).")
    return [(s, images[s], masks[s]) for s in sorted(images, key=_natural_key)]


def _read_sequences(folder: Path, stems: list[str]) -> tuple[list[str], bool]:
    """The sequence of each stem from ``sequences.csv``; without it each frame is its own group."""
    csv = folder / "sequences.csv"
    if not csv.exists():
        return list(stems), False
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{csv} is malformed ({err}); expected columns frame,sequence.") from err
    table.columns = [str(c).strip().lower() for c in table.columns]
    if not {"frame", "sequence"} <= set(table.columns):
        raise ValueError(f"{csv} must have a header with columns frame,sequence; found {list(table.columns)}.")
    mapping = _sequence_mapping(table, csv, set(stems))
    missing = [s for s in stems if s not in mapping]
    if missing:
        raise ValueError(f"{csv} gives no sequence for {len(missing)} frames, e.g. {missing[:5]}.")
    return [mapping[s] for s in stems], True


def _sequence_mapping(table: pd.DataFrame, csv: Path, stems: set[str]) -> dict[str, str]:
    """stem -> sequence from the csv rows (frame may be a file name or a stem)."""
    mapping: dict[str, str] = {}
    for row, (frame, seq) in enumerate(zip(table["frame"].str.strip(), table["sequence"].str.strip()), start=2):
        if not frame or not seq:
            raise ValueError(f"{csv} line {row}: empty frame or sequence ({frame!r}, {seq!r}).")
        stem = frame if frame in stems else Path(frame).stem
        if mapping.get(stem, seq) != seq:
            raise ValueError(f"{csv} line {row}: frame {frame!r} listed in two sequences ({mapping[stem]!r}, {seq!r}).")
        mapping[stem] = seq
    return mapping


def _choose_frames(sequences: list[str], max_frames: int | None, seed: int) -> np.ndarray:
    """Indices of whole sequences (seeded order) that fit in ``max_frames``, in file order.

    Sequences are taken in a seeded random order and kept while they fit; if not even one fits,
    the first ``max_frames`` frames of the first sequence are kept.
    """
    n = len(sequences)
    if max_frames is None or max_frames >= n:
        return np.arange(n)
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}.")
    seqs = np.asarray(sequences, dtype=object)
    names = list(dict.fromkeys(sequences))
    order = np.random.default_rng(seed).permutation(len(names))
    chosen: list[np.ndarray] = []
    total = 0
    for k in order:
        members = np.flatnonzero(seqs == names[k])
        if total + len(members) <= max_frames:
            chosen.append(members)
            total += len(members)
    if not chosen:
        chosen = [np.flatnonzero(seqs == names[order[0]])[:max_frames]]
    return np.sort(np.concatenate(chosen))


def _read_image(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    """One RGB frame as uint8 (H, W, 3), resized (bilinear) to ``size`` = (H, W) when given."""
    with Image.open(path) as img:
        img = img.convert("RGB")
        if size is not None and img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), Image.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def _read_mask(path: Path) -> np.ndarray:
    """One mask as bool (H, W): JPEG thresholded at 128, lossless formats must be binary."""
    with Image.open(path) as img:
        values = np.asarray(img.convert("L") if img.mode not in ("L", "1") else img)
    if path.suffix.lower() in LOSSY_SUFFIXES:
        return values >= 128
    found = np.unique(values)
    if not (set(found.tolist()) <= {0, 255} or set(found.tolist()) <= {0, 1}):
        raise ValueError(f"Mask {path} is not binary: values {found[:10].tolist()}"
                         f"{' ...' if len(found) > 10 else ''}; PNG masks must hold only {{0, 255}} or {{0, 1}}.")
    return values > 0


def _image_size(path: Path) -> tuple[int, int]:
    """(H, W) of an image file, from its header."""
    with Image.open(path) as img:
        return img.size[1], img.size[0]


def _read_pair(image_path: Path, mask_path: Path, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A frame and its mask at ``size``; the mask must match the image's own size."""
    own = _image_size(image_path)
    mask = _read_mask(mask_path)
    if mask.shape != own:
        raise ValueError(f"Mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                         f"{image_path} is {own[1]}x{own[0]}.")
    image = _read_image(image_path, size)
    if own != size:
        mask = np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
    return image, mask


@dataclass(frozen=True)
class FrameIndex:
    """The frames of a polyp folder before any is decoded: stems, files and sequences, in natural order."""

    folder: Path
    stems: list[str]
    pairs: list[tuple[str, Path, Path]]
    sequences: list[str]
    has_sequences: bool

    def __len__(self) -> int:
        return len(self.stems)


def index_polyp_folder(path: str | Path = "CVC-ClinicDB") -> FrameIndex:
    """List a polyp folder's frame/mask pairs and sequences without decoding any image (fast for 5,000 frames)."""
    folder = locate_polyp_dataset(path)
    pairs = _pair_files(folder)
    stems = [p[0] for p in pairs]
    sequences, has_sequences = _read_sequences(folder, stems)
    return FrameIndex(folder, stems, pairs, sequences, has_sequences)


def load_polyp_frames(path: str | Path = "CVC-ClinicDB", frame_size: tuple[int, int] | None = None,
                      max_frames: int | None = None, seed: int = 0,
                      only: Sequence[int] | None = None) -> PolypFrames:
    """Load a polyp folder (``images/``, ``masks/``, optional ``sequences.csv``) into tensors.

    ``path`` is a folder or a set name (see :func:`locate_polyp_dataset`). Frames of different sizes
    are resized to ``frame_size`` = (H, W) (bilinear for frames, nearest for masks; the aspect
    ratio is not kept); by default the most common size. For Kvasir-SEG (sizes vary up to
    1920x1072) pass ``frame_size=(288, 384)`` to keep memory small. ``max_frames`` keeps whole
    sequences, in a seeded random order, while they fit; ``only`` instead names the frames to decode
    (indices in the folder's natural order, see :func:`index_polyp_folder`). Decoding uses a few
    threads: the 612 CVC-ClinicDB frames load in 2-8 s on a 2-core CPU. The field of view of every
    frame (:func:`fov_mask`) is computed on load (about 5 ms a frame).
    """
    folder = locate_polyp_dataset(path)
    pairs = _pair_files(folder)
    stems = [p[0] for p in pairs]
    sequences, has_sequences = _read_sequences(folder, stems)
    keep = _choose_frames(sequences, max_frames, seed) if only is None else np.asarray(only, dtype=np.int64)
    pairs = [pairs[i] for i in keep]
    if frame_size is None:
        frame_size = Counter(_image_size(p[1]) for p in pairs).most_common(1)[0][0]
    size = (int(frame_size[0]), int(frame_size[1]))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        loaded = list(pool.map(lambda p: _read_pair(p[1], p[2], size), pairs))
    images = torch.from_numpy(np.stack([im for im, _ in loaded])).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(np.stack([m for _, m in loaded]))
    return PolypFrames(images, masks, [stems[i] for i in keep], [sequences[i] for i in keep], folder,
                       has_sequences)


# --------------------------------------------------------------------------------------------
# Splits by sequence
# --------------------------------------------------------------------------------------------

def _split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """Sequences per split: largest-remainder rounding of ``n * fractions``, at least one each."""
    frac = np.asarray(fractions, dtype=float)
    if len(frac) != 3 or (frac <= 0).any():
        raise ValueError(f"fractions must be three positive numbers (train, val, test), got {fractions}.")
    if n < 3:
        raise ValueError(f"Splitting by sequence needs at least 3 sequences, got {n}.")
    want = frac / frac.sum() * n
    counts = np.maximum(np.floor(want).astype(int), 1)
    while counts.sum() < n:
        counts[np.argmax(want - counts)] += 1
    while counts.sum() > n:
        counts[np.argmax(np.where(counts > 1, counts - want, -np.inf))] -= 1
    return counts.tolist()


def split_by_sequence(frames: PolypFrames, fractions: Sequence[float] = (0.6, 0.2, 0.2),
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Frame indices of train / val / test, splitting whole sequences (never frames), seeded.

    ``fractions`` are shares of the sequences (rounded, every split gets at least one).
    """
    return split_sequences(frames.sequences, fractions, seed)


def split_sequences(sequences: Sequence[str], fractions: Sequence[float] = (0.6, 0.2, 0.2),
                    seed: int = 0) -> dict[str, np.ndarray]:
    """:func:`split_by_sequence` on a plain list of per-frame sequence names (no frames decoded)."""
    names = list(dict.fromkeys(sequences))
    counts = _split_counts(len(names), fractions)
    order = np.random.default_rng(seed).permutation(len(names))
    seqs = np.asarray(sequences, dtype=object)
    out, start = {}, 0
    for split, count in zip(("train", "val", "test"), counts):
        chosen = {names[k] for k in order[start:start + count]}
        out[split] = np.flatnonzero([s in chosen for s in seqs]).astype(np.int64)
        start += count
    return out


def reduce_by_sequence(frames: PolypFrames, train_idx: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """The training frames of a seeded prefix of the training sequences (``fraction`` of them).

    The sequences are permuted once with ``seed`` and a prefix of ``max(1, round(fraction * n))``
    sequences is kept, so smaller fractions are nested in larger ones (25% inside 50% inside 100%).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    train_idx = np.asarray(train_idx, dtype=np.int64)
    seqs = [frames.sequences[i] for i in train_idx]
    names = list(dict.fromkeys(seqs))
    order = np.random.default_rng(seed).permutation(len(names))
    kept = {names[k] for k in order[:max(1, int(round(fraction * len(names))))]}
    return np.sort(train_idx[[s in kept for s in seqs]])


# --------------------------------------------------------------------------------------------
# Field of view
# --------------------------------------------------------------------------------------------

def _row_extremes(region: np.ndarray) -> np.ndarray:
    """(K, 2) row, col of the leftmost and rightmost pixel of every non-empty row of ``region``."""
    rows = np.flatnonzero(region.any(axis=1))
    left = region[rows].argmax(axis=1)
    right = region.shape[1] - 1 - region[rows, ::-1].argmax(axis=1)
    return np.concatenate([np.stack([rows, left], 1), np.stack([rows, right], 1)])


def _fill_convex_hull(region: np.ndarray) -> np.ndarray:
    """Bool (H, W): the convex hull of ``region``, filled row by row from the hull's half-planes."""
    points = _row_extremes(region).astype(float)
    try:
        eq = ConvexHull(points).equations          # a * y + b * x + c <= 0 inside
    except (QhullError, ValueError):
        return region.copy()
    height, width = region.shape
    y = np.arange(height, dtype=float)[:, None]
    a, b, c = eq[:, 0], eq[:, 1], eq[:, 2] - 0.5   # half a pixel of slack for pixel centres
    bound = -(a * y + c) / np.where(b == 0, np.inf, b)           # (H, F): x limit of each face
    upper = np.where(b > 0, bound, np.inf).min(axis=1)
    lower = np.where(b < 0, bound, -np.inf).max(axis=1)
    flat_ok = np.where(b == 0, a * y + c <= 0, True).all(axis=1)
    x = np.arange(width, dtype=float)[None, :]
    return (x >= lower[:, None]) & (x <= upper[:, None]) & flat_ok[:, None]


def _border_threshold(value: np.ndarray, threshold: int, corner: int = 4, margin: int = 12) -> int:
    """The brightness above which a pixel is in view: ``threshold``, raised to ``margin`` above the
    frame's corner level when the corners are dark (some videos have a border of grey 21, not black 0)."""
    c = corner
    level = float(np.median([np.median(value[:c, :c]), np.median(value[:c, -c:]),
                             np.median(value[-c:, :c]), np.median(value[-c:, -c:])]))
    return int(max(threshold, level + margin)) if level < 2 * threshold else threshold


def fov_mask(image: torch.Tensor | np.ndarray, threshold: int = 20, opening: int = 5) -> np.ndarray:
    """Bool (H, W): the endoscope's field of view inside the black frame border.

    Pixels whose brightest channel exceeds ``threshold`` (raised above the corners' level when the
    border is dark grey rather than black, as in a third of CVC-ClinicDB) are cleaned by a morphological opening
    (``opening`` px square), the largest connected region is kept and its convex hull taken, so dark
    lumen inside the view counts as inside. ``image`` is uint8 (3, H, W) (tensor or array) or (H, W, 3)
    array. A frame with no bright region gives an all-True mask. About 5 ms for a 288x384 frame.
    """
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = arr.transpose(1, 2, 0)
    value = arr.max(axis=-1) if arr.ndim == 3 else arr
    bright = value > _border_threshold(value, threshold)
    bright = ndimage.maximum_filter(ndimage.minimum_filter(bright.view(np.uint8), opening), opening) > 0
    labels, n = ndimage.label(bright)
    if n == 0:
        return np.ones(bright.shape, dtype=bool)
    region = labels == (1 + np.argmax(np.bincount(labels.ravel())[1:]))
    return _fill_convex_hull(region) | region


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


def _crop_boxes(images: torch.Tensor, frame_pos: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor,
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
        crops = _crop_boxes(images[torch.as_tensor(ids)].to(device), pos, col["cy"], col["cx"], col["side"], patch)
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


def sample_patches(frames: PolypFrames, indices: Sequence[int], patch: int = 32, seed: int = 0,
                   scales: Sequence[float] = (1.0, 1.2, 1.5), shift: float = 0.1, n_neg_per_frame: int = 8,
                   augment_dihedral: bool = True, n_anchors: int = 2, neg_margin: float = 0.5,
                   device: torch.device | str = "cpu", return_plan: bool = False) -> Split | tuple[Split, pd.DataFrame]:
    """Balanced polyp / background patches from the frames at ``indices``, as the study sampled them.

    Positives: per polyp, ``n_anchors`` polyp pixels (bounding-box centre, then random), each at
    crop sides ``scale * polyp size`` for every scale, shifted up to ``shift`` of the side.
    Negatives: ``n_neg_per_frame`` centres in the field of view more than ``neg_margin * side`` from
    any polyp pixel, sides from the positives' distribution. The majority class is down-sampled,
    crops are resized to ``patch`` px, and with ``augment_dihedral`` each becomes its 8 flips/rotations.
    Returns a :class:`Split` (labels 1 = polyp, 0 = background); with ``return_plan`` also the plan
    (:func:`plan_patches`) with a ``transform`` column, one row per returned patch.
    Deterministic given ``seed``. Memory: 8 x (about 12 crops per frame) x 3 x patch^2 bytes.
    """
    plan = plan_patches(frames, indices, seed, scales, shift, n_anchors, n_neg_per_frame, neg_margin)
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
                  train_fraction: float = 1.0, **sampling) -> DataSet:
    """A patch :class:`DataSet` from frame splits (see :func:`split_by_sequence`).

    Train patches come from the training frames reduced by sequence to ``train_fraction``
    (:func:`reduce_by_sequence`) with the 8 flips/rotations; val and test patches (balanced, no
    flips) from the val and test frames. ``meta`` holds the frame indices of each split
    (``frames_train`` ...), ``window`` (:func:`polyp_window` of the FULL training split, so every
    ``train_fraction`` is evaluated with the same window), ``patch``, ``train_fraction`` and
    ``seed``. Extra keyword arguments go to :func:`sample_patches`.
    """
    train_idx = reduce_by_sequence(frames, split_idx["train"], train_fraction, seed)
    sampling.pop("augment_dihedral", None)
    train = sample_patches(frames, train_idx, patch, seed, augment_dihedral=True, **sampling)
    val = sample_patches(frames, split_idx["val"], patch, seed + 1, augment_dihedral=False, **sampling)
    test = sample_patches(frames, split_idx["test"], patch, seed + 2, augment_dihedral=False, **sampling)
    window = polyp_window(frames, split_idx["train"], sampling.get("scales", (1.0, 1.2, 1.5)))
    meta = {"frames_train": train_idx, "frames_val": np.asarray(split_idx["val"]),
            "frames_test": np.asarray(split_idx["test"]), "window": window, "patch": patch,
            "train_fraction": train_fraction, "seed": seed}
    owners = frames.source / "OWNERS-README.txt"
    licence = ("Owners' terms: research and educational use only, no commercial use"
               + (f" (see {owners})." if owners.exists() else " (CVC-ClinicDB / Kvasir-SEG owners)."))
    return DataSet(f"polyp-{frames.source.name}", train, val, test, list(CLASS_NAMES), str(frames.source),
                   licence, meta)


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


def _resize_frames(images: torch.Tensor, geometry: MapGeometry) -> torch.Tensor:
    """uint8 frames (n, 3, H, W) -> float [0, 1] frames at ``geometry.small_size`` (anti-aliased)."""
    x = images.float() / 255.0
    return F.interpolate(x, size=geometry.small_size, mode="bilinear", align_corners=False, antialias=True)


@torch.no_grad()
def _classify(model: torch.nn.Module, windows: torch.Tensor, batch_size: int) -> torch.Tensor:
    """P(polyp) = softmax(logits)[:, 1] of ``windows``, ``batch_size`` at a time."""
    probs = [torch.softmax(model(windows[s:s + batch_size]).float(), dim=1)[:, 1]
             for s in range(0, len(windows), batch_size)]
    return torch.cat(probs) if probs else windows.new_zeros(0)


def probability_map(model: torch.nn.Module, images: torch.Tensor, patch: int, stride: float, window: float,
                    device: torch.device | str = "cpu", batch_size: int = 1024) -> torch.Tensor:
    """Dense P(polyp) of windows of side ``window`` px every ``stride`` px, classified at ``patch`` px.

    ``images`` uint8 (3, H, W) gives an (h, w) map, (N, 3, H, W) gives (N, h, w); float32 on the CPU.
    Each frame is resized once so that ``window`` px become ``patch`` px, padded, and unfolded
    into patch-sized windows (no loop over windows); the windows of several frames are classified
    together in batches of ``batch_size`` on ``device``. ``model`` takes float (B, 3, patch, patch)
    in [0, 1] and returns (B, 2) logits; it is run in eval mode under ``torch.no_grad``.
    Cell geometry: :func:`map_geometry` (same arguments); :func:`upsample_map` gives frame size.
    """
    single = images.dim() == 3
    batch = images[None] if single else images
    geometry = map_geometry(tuple(batch.shape[-2:]), patch, stride, window)
    h, w = geometry.map_size
    per_chunk = max(1, batch_size // (h * w))
    was_training = model.training
    model.eval()
    maps = []
    try:
        for start in range(0, len(batch), per_chunk):
            small = _resize_frames(batch[start:start + per_chunk].to(device), geometry)
            maps.append(_classify(model, _windows(small, geometry), batch_size).reshape(-1, h, w).cpu())
    finally:
        model.train(was_training)
    out = torch.cat(maps).float()
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
    crops = _crop_boxes(image[None].to(device), torch.zeros_like(cy, dtype=torch.long), cy, cx, side, patch)
    views = dihedral8(crops.round().clamp(0, 255) / 255.0)
    was_training = model.training
    model.eval()
    try:
        probs = _classify(model, views, batch_size).reshape(len(candidates), -1).mean(1).cpu()
    finally:
        model.train(was_training)
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


def _on_base_grid(prob_map: torch.Tensor, geometry: MapGeometry, base: MapGeometry) -> torch.Tensor:
    """Maps (n, h, w) of ``geometry`` read at the cell centres of ``base`` -> (n, hb, wb) (bilinear)."""
    full = upsample_map(prob_map, geometry)
    if full.dim() == 2:
        full = full[None]
    i, j = np.meshgrid(np.arange(base.map_size[0]), np.arange(base.map_size[1]), indexing="ij")
    y, x = base.to_frame(i, j)
    y = torch.as_tensor(np.clip(np.rint(y), 0, base.frame_size[0] - 1).astype(np.int64))
    x = torch.as_tensor(np.clip(np.rint(x), 0, base.frame_size[1] - 1).astype(np.int64))
    return full[:, y, x]


def fov_cells(fov: torch.Tensor, geometry: MapGeometry) -> torch.Tensor:
    """Bool (n, h, w): whether each map cell's centre lies inside the field of view ``fov`` (n, H, W)."""
    i, j = np.meshgrid(np.arange(geometry.map_size[0]), np.arange(geometry.map_size[1]), indexing="ij")
    y, x = geometry.to_frame(i, j)
    y = torch.as_tensor(np.clip(np.rint(y), 0, geometry.frame_size[0] - 1).astype(np.int64))
    x = torch.as_tensor(np.clip(np.rint(x), 0, geometry.frame_size[1] - 1).astype(np.int64))
    return fov[:, y, x]


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


def select_frames(sequences: Sequence[str], split: dict[str, np.ndarray], frame_step: int = 1,
                  max_train: int | None = None, max_val: int | None = None, max_test: int | None = None,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Which frames of each split a run uses, bounding the work by frame count.

    Training frames: every ``frame_step``-th frame of each training sequence (neighbouring video
    frames are near duplicates), then at most ``max_train`` spread evenly over them. Validation
    frames: at most ``max_val``, spread evenly. Test frames: every frame of the test sequences, or,
    with ``max_test``, of whole test sequences (seeded order) while they fit. ``split`` holds indices
    into ``sequences`` (:func:`split_sequences`); so do the returned arrays. A folder without
    sequences (each frame its own) is bounded the same way.
    """
    seqs = list(sequences)
    train = np.asarray(split["train"], dtype=np.int64)
    seen: Counter = Counter()
    thinned = []
    for i in train:
        if seen[seqs[i]] % max(1, frame_step) == 0:
            thinned.append(int(i))
        seen[seqs[i]] += 1
    out = {"train": np.asarray(_bounded(thinned, max_train), dtype=np.int64),
           "val": np.asarray(_bounded(split["val"], max_val), dtype=np.int64)}
    test = np.asarray(split["test"], dtype=np.int64)
    keep = _choose_frames([seqs[i] for i in test], max_test, seed)
    out["test"] = test[keep]
    return out


def _bounded(indices: Sequence[int], limit: int | None) -> list[int]:
    """``indices`` unchanged, or ``limit`` of them spread evenly (first and last kept)."""
    indices = [int(i) for i in indices]
    if limit is None or len(indices) <= limit:
        return indices
    picks = np.unique(np.rint(np.linspace(0, len(indices) - 1, int(limit))).astype(int))
    return [indices[k] for k in picks]


def thin_frames(frames: PolypFrames, step: int) -> PolypFrames:
    """Every ``step``-th frame of each sequence (neighbouring video frames are near duplicates).

    Every sequence keeps at least its first frame, so splits by sequence still see all of them.
    """
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}.")
    seen: Counter = Counter()
    keep = []
    for i, seq in enumerate(frames.sequences):
        if seen[seq] % step == 0:
            keep.append(i)
        seen[seq] += 1
    return frames.subset(keep)


def sequences_disjoint(frames: PolypFrames, split_idx: dict[str, np.ndarray]) -> bool:
    """True when no video sequence appears in two splits."""
    groups = [{frames.sequences[int(i)] for i in idx} for idx in split_idx.values()]
    return all(not (a & b) for k, a in enumerate(groups) for b in groups[k + 1:])


def nested_reductions(frames: PolypFrames, train_idx: np.ndarray, fractions: Sequence[float],
                      seed: int = 0) -> dict[float, np.ndarray]:
    """:func:`reduce_by_sequence` at each fraction (smallest first); nested by construction."""
    return {float(f): reduce_by_sequence(frames, train_idx, f, seed) for f in sorted(fractions)}


def spread(indices: Sequence[int], n: int) -> list[int]:
    """About ``n`` indices spread evenly over ``indices`` (for example frames to show)."""
    indices = [int(i) for i in indices]
    step = max(1, len(indices) // max(1, n))
    return indices[::step][:n]
