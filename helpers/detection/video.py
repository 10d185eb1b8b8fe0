"""Polyp videos as frames: finding a polyp folder, loading frames and masks, splits by sequence, the field of view,
and choosing which frames a run reads.

The study detected polyps in colonoscopy videos. Here the public stand-in is CVC-ClinicDB (612 frames
from 29 sequences); the same folder layout serves Kvasir-SEG and other polyp sets::

    <folder>/images/<stem>.png|.jpg    RGB frames
    <folder>/masks/<stem>.png|.jpg     polyp masks (PNG: {0, 255} or {0, 1}; JPEG: thresholded at 128)
    <folder>/sequences.csv             optional: columns frame,sequence (frame = file name or stem)

Conventions (shared by :mod:`.patches` and :mod:`.maps`)
-----------
- Frames are uint8 tensors (N, 3, H, W); masks bool (N, H, W). Pixel ``(y, x)`` is row ``y``,
  column ``x``; its centre is at continuous coordinate ``(y + 0.5, x + 0.5)`` (pixel edges at
  integers), which is the convention of ``torchvision.ops.roi_align(aligned=True)``.
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
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from ..loading import IMAGE_SUFFIXES, read_image
from ..paths import project_root

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


def pair_files(folder: Path) -> list[tuple[str, Path, Path]]:
    """(stem, image path, mask path) for every frame, in natural order of the stems."""
    if not folder.is_dir():
        raise FileNotFoundError(f"Polyp folder {folder} does not exist. Expected layout: {LAYOUT}.")
    for sub in ("images", "masks"):
        if not (folder / sub).is_dir():
            raise FileNotFoundError(f"{folder} has no {sub}/ folder. Expected layout: {LAYOUT}.")
    images, masks = _files_by_stem(folder / "images"), _files_by_stem(folder / "masks")
    if not images:
        raise ValueError(f"{folder / 'images'} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))}).")
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


def read_mask(path: Path) -> np.ndarray:
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
    mask = read_mask(mask_path)
    if mask.shape != own:
        raise ValueError(f"Mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image "
                         f"{image_path} is {own[1]}x{own[0]}.")
    image = read_image(image_path, "RGB", (size[1], size[0]))   # size is (H, W); PIL takes (W, H)
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
    pairs = pair_files(folder)
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
    pairs = pair_files(folder)
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

def _sequence_counts(n: int, fractions: Sequence[float]) -> list[int]:
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
    counts = _sequence_counts(len(names), fractions)
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
    out = {"train": np.asarray(bounded(thinned, max_train), dtype=np.int64),
           "val": np.asarray(bounded(split["val"], max_val), dtype=np.int64)}
    test = np.asarray(split["test"], dtype=np.int64)
    keep = _choose_frames([seqs[i] for i in test], max_test, seed)
    out["test"] = test[keep]
    return out


def bounded(indices: Sequence[int], limit: int | None) -> list[int]:
    """``indices`` unchanged, or ``limit`` of them spread evenly (first and last kept)."""
    indices = [int(i) for i in indices]
    if limit is None or len(indices) <= limit:
        return indices
    picks = np.unique(np.rint(np.linspace(0, len(indices) - 1, int(limit))).astype(int))
    return [indices[k] for k in picks]


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
