"""Load data sets into uint8 tensors: MedMNIST by name, a MedMNIST-layout ``.npz``, or an image folder.

Everything ends up as a :class:`~helpers.datasets.DataSet` whose splits hold uint8 ``(N, C, H, W)``
images and int64 ``(N,)`` labels, decoded once at load time; training then works on whole tensors
(no PIL, no per-sample Python in the training path).

Where MedMNIST files are looked for, in order:

1. ``$FTLAB_DATA_DIR`` and ``$FTLAB_DATA_DIR/medmnist/``
2. ``<project root>/data/`` and ``<project root>/data/medmnist/``

A file that is found is checked against the official MD5 (once per process and file version).
A missing file is downloaded from the official URL (or ``$FTLAB_MEDMNIST_MIRROR``, see
:mod:`helpers.download`) into ``<project root>/data/``, the one cache folder of downloads, through pooch with
a registry of every official file and its MD5 (:func:`medmnist_registry`).

Image files (PNG, JPEG, BMP, TIFF through PIL; DICOM through pydicom, the ``dicom`` extra) are read at their
full depth and brought to 0..255 as :func:`read_image` says: 8-bit images as they are, 16-bit and float ones
min-max per image or through a fixed window (``intensity=``), DICOM through its rescale and window tags.

Array dtypes (.npz): uint8 images are used as they are. Other integer images with values in 0..255 are
cast to uint8. Float images are accepted when their values lie in [0, 1] (scaled by 255) or in
[0, 255] (rounded); a warning says which conversion was made. Anything else is refused.
"""
from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from .progress import tqdm

from . import catalog
from .datasets import DataSet, Split
from .types import label_array
from .download import DownloadError, fetch, md5sum, mirror_url
from .paths import project_root

DATA_DIR_ENV = "FTLAB_DATA_DIR"
SPLITS = ("train", "val", "test")
EXPECTED_KEYS = tuple(f"{split}_{part}" for split in SPLITS for part in ("images", "labels"))
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}   # read through PIL
DICOM_SUFFIXES = {".dcm"}   # read through pydicom (the dicom extra); extension-less DICOM is found by its preamble
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}

# (resolved path, mtime_ns, size) -> MD5: a file is hashed once per process and version.
_MD5_CACHE: dict[tuple[str, int, int], str] = {}

__all__ = ["DATA_DIR_ENV", "EXPECTED_KEYS", "MissingDataError", "CorruptDataError", "data_dir",
           "_search_dirs", "locate_medmnist", "verified_md5", "medmnist_registry", "fetch_medmnist", "read_npz",
           "arrays_to_split", "load_medmnist", "load_npz_dataset", "load_image_folder", "load_dataset", "dataset_label",
           "write_image_folder", "describe", "read_image", "is_dicom", "to_uint8", "ImageFileError", "ImageInfo"]


class MissingDataError(FileNotFoundError):
    """A data file is not on this machine and could not be downloaded."""


class CorruptDataError(ValueError):
    """A data file is truncated, damaged, or not the official release."""


# --------------------------------------------------------------------------- locating and fetching


def data_dir() -> Path:
    """The project's own (git-ignored) data folder, ``<project root>/data``; downloads go here."""
    return project_root() / "data"


def _search_dirs() -> list[Path]:
    """The folders searched for MedMNIST files, in order (``$FTLAB_DATA_DIR`` first)."""
    folders = []
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    if env:
        folders += [Path(env).expanduser(), Path(env).expanduser() / "medmnist"]
    return folders + [data_dir(), data_dir() / "medmnist"]


def locate_medmnist(name: str, size: int = 28) -> Path | None:
    """The first existing copy of MedMNIST ``name`` at ``size`` px in :func:`_search_dirs`, else None."""
    file_name = catalog.entry(name, size).file_name
    for folder in _search_dirs():
        if (folder / file_name).is_file():
            return folder / file_name
    return None


def _cache_key(path: Path) -> tuple[str, int, int]:
    """(resolved path, mtime in ns, size): changes whenever the file is replaced or edited."""
    stat = path.stat()
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


def verified_md5(path: Path) -> str:
    """The MD5 of ``path``, hashed once per process as long as its mtime and size do not change."""
    key = _cache_key(path)
    if key not in _MD5_CACHE:
        _MD5_CACHE[key] = md5sum(path)
    return _MD5_CACHE[key]


def _remember_md5(path: Path, md5: str) -> None:
    """Record that ``path`` (as it is now) has MD5 ``md5``, so it is not hashed again."""
    _MD5_CACHE[_cache_key(path)] = md5


def _check_official(path: Path, entry: catalog.MedMNISTEntry) -> Path:
    """``path`` if its MD5 is the official one; CorruptDataError (file left in place) otherwise."""
    got = verified_md5(path)
    if got != entry.md5:
        raise CorruptDataError(
            f"{path} is corrupt or not the official {entry.file_name} (MD5 {got}, expected {entry.md5}), "
            f"so it was not used. Delete or replace it; a fresh copy is at {entry.url}.")
    return path


def _where_to_put(entry: catalog.MedMNISTEntry) -> str:
    """The sentence telling a user where to put a file they download themselves."""
    env = os.environ.get(DATA_DIR_ENV, "").strip()
    env_note = f" (now {env})" if env else " (not set now)"
    return (f"Download it yourself from {entry.url} (MD5 {entry.md5}) and put it in {data_dir()}/ or "
            f"{data_dir()}/medmnist/, or in the folder named by the {DATA_DIR_ENV} environment variable{env_note}.")


def upsample_medmnist(source: str | Path, folder: str | Path, per_split: dict[str, int], size: int = 224,
                      per_class: bool = False) -> Path:
    """A MedMNIST+-layout file at ``size`` px (``<folder>/<name>_<size>.npz``) made from a smaller official file
    (``source``, grayscale), for checking the code paths of the 224-px profile without its download.

    ``per_split`` gives the images of each split: with ``per_class``, the first ``n // classes`` images of each
    class (so small fractions keep every class), else the first ``n``, cycled when the split has fewer. Images are
    resized bilinearly on the CPU in chunks of 256 and rounded back to uint8. Used by tests/test_full_toy.py and
    benchmarks/full_slice.py."""
    source, folder = Path(source), Path(folder)
    arrays = {}
    with np.load(source, allow_pickle=False) as official:
        for split, n in per_split.items():
            images, labels = official[f"{split}_images"], official[f"{split}_labels"]
            flat = labels.ravel()
            if per_class:
                classes = np.unique(flat)
                pick = np.sort(np.concatenate([np.flatnonzero(flat == c)[: n // len(classes)] for c in classes]))
            else:
                pick = np.arange(n) % len(images)
            parts = [torch.nn.functional.interpolate(torch.from_numpy(images[chunk]).float()[:, None], size=(size, size),
                                                     mode="bilinear", align_corners=False)[:, 0]
                     .round().clamp(0, 255).to(torch.uint8).numpy()
                     for chunk in np.array_split(pick, max(1, len(pick) // 256))]
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = np.concatenate(parts), labels[pick]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{source.stem.split('_')[0]}_{size}.npz"
    np.savez(path, **arrays)
    return path


def medmnist_registry() -> dict[str, tuple[str, str]]:
    """pooch's registry of MedMNIST: ``{file name: (URL, MD5)}`` for every 2D set and published size, from the
    ``medmnist`` package's metadata (URLs re-pointed at ``$FTLAB_MEDMNIST_MIRROR`` when it is set)."""
    registry = {}
    for name in catalog.medmnist_names():
        for size in catalog.SIZES:
            try:
                entry = catalog.entry(name, size)
            except ValueError:   # this size is not published for this set
                continue
            registry[entry.file_name] = (mirror_url(entry.url), entry.md5)
    return registry


def fetch_medmnist(name: str, size: int = 28, download: bool = True, progress: bool = True,
                   timeout: float = 60) -> Path:
    """The path of a verified copy of MedMNIST ``name`` at ``size`` px, downloading it if missing
    (``timeout``: seconds without data before a download is given up)."""
    entry = catalog.entry(name, size)
    found = locate_medmnist(entry.name, size)
    if found is not None:
        return _check_official(found, entry)
    if not download:
        raise MissingDataError(f"{entry.file_name} is not on this machine and downloading is off. "
                               + _where_to_put(entry))
    try:
        path = fetch(entry.file_name, data_dir(), medmnist_registry(), progress=progress, timeout=timeout)
    except DownloadError as error:
        raise MissingDataError(f"{entry.file_name} is not on this machine and could not be downloaded "
                               f"({str(error).rstrip('.')}). {_where_to_put(entry)}") from error
    _remember_md5(path, entry.md5)  # download() has just checked it
    return path


# --------------------------------------------------------------------------- reading .npz files


def _open_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """(the expected arrays that ``path`` holds, all its keys); CorruptDataError if it cannot be read."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        raise _corrupt(path, error) from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise CorruptDataError(f"{path} is a single NumPy array, not an .npz archive; save the splits with "
                               f"numpy.savez(path, {'=..., '.join(EXPECTED_KEYS)}=...).")
    try:
        with loaded:
            return {key: loaded[key] for key in EXPECTED_KEYS if key in loaded.files}, list(loaded.files)
    except (ValueError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as error:
        raise _corrupt(path, error) from error


def _corrupt(path: Path, error: BaseException) -> CorruptDataError:
    """The error for an .npz that cannot be read: truncated or corrupt, and how to fix it."""
    return CorruptDataError(f"{path} is truncated or corrupt, or not a NumPy .npz file "
                            f"({type(error).__name__}: {error}). Delete it and download it again "
                            f"(or re-create it with numpy.savez).")


def _missing_keys_message(path: Path, missing: list[str], present: list[str]) -> str:
    """The error text for an .npz that lacks some of the MedMNIST keys."""
    return (f"{path} is missing the key(s) {', '.join(missing)} (it has: {', '.join(present) or 'none'}). "
            f"The expected layout is the MedMNIST one: {', '.join(EXPECTED_KEYS)}, with images "
            f"(N, H, W) or (N, H, W, C) uint8 and labels (N,) or (N, 1) integers.")


def _check_lengths(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """ValueError if a split's images and labels differ in length."""
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim == 0 or labels.ndim == 0 or len(images) != len(labels):
            raise ValueError(f"{path}: the {split!r} split has {images.shape[0] if images.ndim else 0} images "
                             f"but {labels.shape[0] if labels.ndim else 0} labels; they must match.")


def _check_label_range(path: Path, arrays: dict[str, np.ndarray], num_classes: int | None) -> None:
    """ValueError for negative labels, or labels >= ``num_classes`` when that is known.

    A multi-label split (labels (N, L) with L >= 2) must hold 0/1 values and, when ``num_classes`` is
    known, exactly ``num_classes`` columns.
    """
    for split in SPLITS:
        labels = arrays[f"{split}_labels"]
        if labels.dtype.kind not in "biuf":
            raise ValueError(f"{path}: the {split!r} labels have dtype {labels.dtype}; they must be integer "
                             f"class indices.")
        if labels.size == 0:
            continue
        if labels.ndim == 2 and labels.shape[1] >= 2:
            _check_multi_hot(path, split, labels, num_classes)
            continue
        low, high = labels.min(), labels.max()
        if low < 0 or (num_classes is not None and high >= num_classes):
            allowed = f"0..{num_classes - 1}" if num_classes is not None else "0 or more"
            raise ValueError(f"{path}: the {split!r} labels run from {low} to {high}, but labels must be "
                             f"class indices {allowed}.")


def _check_multi_hot(path: Path, split: str, labels: np.ndarray, num_classes: int | None) -> None:
    """ValueError unless a multi-label matrix holds only 0/1 and has ``num_classes`` columns."""
    values = np.unique(labels)
    if not np.isin(values, (0, 1)).all():
        raise ValueError(f"{path}: the {split!r} labels have shape {labels.shape} (one column per finding, a "
                         f"multi-label set) but hold values {values[:8].tolist()}; each entry must be 0 "
                         f"(finding absent) or 1 (present).")
    if num_classes is not None and labels.shape[1] != num_classes:
        raise ValueError(f"{path}: the {split!r} labels have {labels.shape[1]} columns but the data set names "
                         f"{num_classes} findings.")


def read_npz(path: str | Path, num_classes: int | None = None) -> dict[str, np.ndarray]:
    """The six MedMNIST arrays (``train_images`` ... ``test_labels``) of ``path``, checked.

    Raises FileNotFoundError, CorruptDataError (a ValueError) for a truncated or damaged file, and
    ValueError for missing keys, split length mismatches and labels outside ``0..num_classes-1``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such file: {path}")
    arrays, present = _open_npz(path)
    missing = [key for key in EXPECTED_KEYS if key not in arrays]
    if missing:
        raise ValueError(_missing_keys_message(path, missing, present))
    _check_lengths(path, arrays)
    _check_label_range(path, arrays, num_classes)
    return arrays


# --------------------------------------------------------------------------- arrays -> tensors


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """``images`` as uint8 (see the module docstring for the conversions); ValueError otherwise."""
    if images.dtype == np.uint8:
        return images
    if images.size == 0:
        return images.astype(np.uint8)
    if images.dtype == np.bool_:
        return images.astype(np.uint8) * 255
    low, high = images.min(), images.max()
    if np.issubdtype(images.dtype, np.integer) and 0 <= low and high <= 255:
        return images.astype(np.uint8)
    if np.issubdtype(images.dtype, np.floating) and np.isfinite(images).all() and 0 <= low and high <= 255:
        scale = 255.0 if high <= 1.0 else 1.0
        warnings.warn(f"Images are {images.dtype} in [{low:g}, {high:g}]; converted to uint8 "
                      f"({'scaled by 255 and ' if scale != 1 else ''}rounded).", stacklevel=3)
        return np.clip(np.rint(images * scale), 0, 255).astype(np.uint8)
    raise ValueError(f"Images must be uint8 (0..255), integers in 0..255, or floats in [0, 1] or [0, 255]; "
                     f"got {images.dtype} with values {low}..{high}.")


def _to_nchw(images: np.ndarray) -> np.ndarray:
    """(N,H,W) -> (N,1,H,W); (N,H,W,C) -> (N,C,H,W) for C in {1, 3} (an (N,C,H,W) array is kept)."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4 and images.shape[-1] in (1, 3):
        return images.transpose(0, 3, 1, 2)
    if images.ndim == 4 and images.shape[1] in (1, 3):
        return images
    raise ValueError(f"Images must be (N, H, W) grayscale or (N, H, W, C) with C = 1 or 3 channels; "
                     f"got shape {tuple(images.shape)}.")


def _to_labels(labels: np.ndarray) -> np.ndarray:
    """Labels as int64: class indices (N,) from (N,) or (N, 1); a 0/1 matrix (N, L) for multi-label sets."""
    labels = label_array(labels)
    if np.issubdtype(labels.dtype, np.floating) and labels.size and not np.all(labels == np.rint(labels)):
        raise ValueError(f"Labels must be whole class indices; got {labels.dtype} values with fractions.")
    if not (np.issubdtype(labels.dtype, np.number) or labels.dtype == np.bool_):
        raise ValueError(f"Labels must be integer class indices; got dtype {labels.dtype}.")
    if labels.ndim == 2 and labels.size and not np.isin(np.unique(labels), (0, 1)).all():
        raise ValueError(f"Labels of shape {tuple(labels.shape)} are read as a multi-label set (one column per "
                         f"finding), so every entry must be 0 or 1.")
    return labels.astype(np.int64)


def arrays_to_split(images: np.ndarray, labels: np.ndarray) -> Split:
    """A :class:`Split` from MedMNIST-layout arrays: uint8 (N, C, H, W) contiguous images, int64 labels."""
    images, labels = np.asarray(images), np.asarray(labels)
    label_vector = _to_labels(labels)
    if images.ndim == 0 or len(images) != len(label_vector):
        raise ValueError(f"There are {len(images) if images.ndim else 0} images but {len(label_vector)} "
                         f"labels; they must match.")
    pixels = np.ascontiguousarray(_to_nchw(_to_uint8(images)))
    if not pixels.flags.writeable:  # torch.from_numpy warns on read-only arrays
        pixels = pixels.copy()
    return Split(torch.from_numpy(pixels), torch.from_numpy(label_vector))


def _splits_from_arrays(arrays: dict[str, np.ndarray]) -> dict[str, Split]:
    """The three splits of a MedMNIST-layout dict of arrays."""
    return {split: arrays_to_split(arrays[f"{split}_images"], arrays[f"{split}_labels"]) for split in SPLITS}


# --------------------------------------------------------------------------- data sets


def load_medmnist(name: str, size: int = 28, download: bool = True) -> DataSet:
    """MedMNIST set ``name`` at ``size`` px as a DataSet (fetched and MD5-checked first)."""
    entry = catalog.entry(name, size)
    path = fetch_medmnist(entry.name, size, download=download)
    splits = _splits_from_arrays(read_npz(path, num_classes=len(entry.class_names)))
    _check_size(path, splits, size)
    meta = {"description": entry.description, "task": entry.task, "size": size, "file": entry.file_name,
            "md5": entry.md5, "url": entry.url, "homepage": catalog.HOMEPAGE}
    return DataSet(entry.name, splits["train"], splits["val"], splits["test"], list(entry.class_names),
                   source=str(path), licence=entry.licence, meta=meta)


def _declared_size(path: Path) -> int | None:
    """The image size a MedMNIST file name declares (``bloodmnist_64.npz``: 64; ``bloodmnist.npz``: 28), or
    None for any other name."""
    stem = path.stem.lower()
    name, _, size = stem.rpartition("_") if "_" in stem else (stem, "", "28")
    if not catalog.is_medmnist_name(name) or not size.isdigit() or int(size) not in catalog.SIZES:
        return None
    return int(size)


def _check_size(path: Path, splits: dict[str, Split], size: int | None) -> None:
    """ValueError when a split's images are not ``size`` x ``size`` px (the size the file's name declares):
    a MedMNIST+ file renamed, or a 28-px file saved under a 224-px name, would otherwise train at the
    wrong scale without a word."""
    if size is None:
        return
    for split, data in splits.items():
        h, w = data.images.shape[-2:]
        if (h, w) != (size, size):
            raise ValueError(f"{path}: its name declares {size}x{size} px images, but the {split!r} split holds "
                             f"{h}x{w} px. Use the file of the size you want (MedMNIST+ names them "
                             f"<name>_{size}.npz), or rename the file to match its images.")


def _catalog_names_for(path: Path) -> list[str] | None:
    """Official class names when ``path`` has a MedMNIST file name (e.g. ``bloodmnist_64.npz``)."""
    stem = path.stem.lower()
    name, _, size = stem.rpartition("_") if "_" in stem else (stem, "", "28")
    if not catalog.is_medmnist_name(name) or not size.isdigit() or int(size) not in catalog.SIZES:
        return None
    return list(catalog.entry(name, int(size)).class_names)


def load_npz_dataset(path: str | Path, class_names: list[str] | None = None,
                     remap_labels: bool = False) -> DataSet:
    """A bring-your-own ``.npz`` in the MedMNIST layout as a DataSet.

    Labels (N,) or (N, 1) are class indices; labels (N, L) with L >= 2 columns of 0/1 make a multi-label
    set (one column per finding). Without ``class_names`` the names are ``class 0``, ``class 1``, ...
    (``finding 0``, ... for multi-label), or the official names when the file has a MedMNIST file name.

    Class indices that skip values (labels {0, 1, 7}) would build a model with empty classes, so they
    are refused, unless ``remap_labels`` renumbers the classes that occur to 0, 1, 2, ... (the mapping is
    reported in a warning and kept in ``meta["label_map"]``).
    """
    path = Path(path).expanduser()
    arrays = read_npz(path, num_classes=len(class_names) if class_names and not remap_labels else None)
    splits = _splits_from_arrays(arrays)
    _check_size(path, splits, _declared_size(path))
    meta: dict = {"format": "npz"}
    if splits["train"].multi_label:
        class_names = _finding_names(path, splits["train"].labels.shape[1], class_names)
    else:
        if remap_labels:
            splits, class_names, meta = _remapped(path, splits, class_names, meta)
        class_names = _class_names(path, splits, class_names)
    if len(class_names) < 2:
        raise ValueError(f"{path} has {len(class_names)} class(es); a classifier needs at least 2.")
    return DataSet(path.stem, splits["train"], splits["val"], splits["test"], list(class_names),
                   source=str(path), meta=meta)


def _finding_names(path: Path, count: int, given: list[str] | None) -> list[str]:
    """The names of a multi-label set's ``count`` findings: given, official, or ``finding 0`` ..."""
    names = given or _catalog_names_for(path) or [f"finding {i}" for i in range(count)]
    if len(names) != count:
        raise ValueError(f"{path}: the labels have {count} finding columns but {len(names)} names were given "
                         f"({', '.join(names)}); give one name per column.")
    return list(names)


def _present_labels(splits: dict[str, Split]) -> list[int]:
    """The class labels that occur in any split, sorted."""
    return sorted(set().union(*(s.labels.unique().tolist() for s in splits.values())))


def _remapped(path: Path, splits: dict[str, Split], names: list[str] | None, meta: dict,
              ) -> tuple[dict[str, Split], list[str] | None, dict]:
    """The splits with their class labels renumbered 0, 1, 2, ... in order (reported in a warning).

    Given names are kept when there is one per class that occurs, or one per label value (then the
    names of the values that occur are kept); otherwise ValueError.
    """
    present = _present_labels(splits)
    if present == list(range(len(present))):
        return splits, names, meta
    if names is not None and len(names) != len(present):
        if len(names) <= max(present):
            raise ValueError(f"{path}: {len(names)} class names for the {len(present)} classes that occur "
                             f"(labels {', '.join(map(str, present))}); give one name per class that occurs.")
        names = [names[i] for i in present]
    mapping = {old: new for new, old in enumerate(present)}
    splits = {k: Split(s.images, torch.bucketize(s.labels, torch.tensor(present))) for k, s in splits.items()}
    warnings.warn(f"{path.name}: class labels renumbered {', '.join(f'{a}->{b}' for a, b in mapping.items())} "
                  f"(remap_labels=True).", stacklevel=3)
    return splits, names, {**meta, "label_map": mapping}


def _class_names(path: Path, splits: dict[str, Split], given: list[str] | None) -> list[str]:
    """Names of a one-label-per-image set's classes; ValueError when some class has no training image."""
    present = _present_labels(splits)
    count = len(given) if given else 1 + max(present, default=-1)
    in_train = set(splits["train"].labels.unique().tolist())
    missing = [c for c in range(count) if c not in in_train]
    if missing:
        raise ValueError(_no_training_image_message(path, splits, missing, present, count))
    if given:
        return list(given)
    official = _catalog_names_for(path)
    return official if official and len(official) >= count else [f"class {i}" for i in range(count)]


def _no_training_image_message(path: Path, splits: dict[str, Split], missing: list[int], present: list[int],
                               count: int) -> str:
    """Which classes the model could never learn, where they do occur, and how to fix it."""
    elsewhere = {c: [n for n, s in splits.items() if bool((s.labels == c).any())] for c in missing}
    where = "; ".join(f"class {c} occurs {'only in ' + ' and '.join(w) if w else 'in no split'}"
                      for c, w in elsewhere.items())
    if present != list(range(len(present))):
        fix = (f"Renumber the labels 0..{len(present) - 1}, or load the file with remap_labels=True "
               f"(loading.load_dataset(path, remap_labels=True)) to renumber them here.")
    elif not any(elsewhere.values()):
        fix = f"The class names given name {count} classes but the file has {len(present)}: give one name per class."
    else:
        fix = "Move some images of those classes into the training split, or drop them."
    return (f"{path}: class label(s) {', '.join(map(str, missing))} have no training image ({where}), so the "
            f"model would get {count} outputs of which {len(missing)} can never be learnt. {fix}")


# --------------------------------------------------------------------------- image folders


def _class_folders(folder: Path) -> list[Path]:
    """The visible sub-folders of ``folder``, sorted by name."""
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: p.name)


def _has_dicom_preamble(path: Path) -> bool:
    """True when ``path`` starts like a DICOM Part 10 file: 128 bytes, then ``DICM``."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def is_dicom(path: str | Path) -> bool:
    """True for a ``.dcm`` file, or a file with another (or no) extension that is not a PIL image type and
    starts with the DICOM preamble (scanners often write names like ``IM0001`` or ``1.2.840...``)."""
    suffix = Path(path).suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return True
    return suffix not in IMAGE_SUFFIXES and _has_dicom_preamble(Path(path))


def _image_files(folder: Path) -> list[Path]:
    """The image files (PNG, JPEG, BMP, TIFF, DICOM) in ``folder``, sorted; ValueError if there are none."""
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".")
                   and (p.suffix.lower() in IMAGE_SUFFIXES or is_dicom(p)))
    if not files:
        raise ValueError(f"The class folder {folder} holds no images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES | DICOM_SUFFIXES))}, or DICOM files without extension).")
    return files


def _scan_classes(folder: Path) -> dict[str, list[Path]]:
    """{class name: image files} for a folder holding one sub-folder per class."""
    classes = _class_folders(folder)
    if not classes:
        raise ValueError(f"{folder} has no class folders: put the images of each class in their own "
                         f"sub-folder (e.g. {folder}/normal/, {folder}/pneumonia/).")
    return {c.name: _image_files(c) for c in classes}


# --------------------------------------------------------------------------- one image at its full depth


class ImageFileError(ValueError):
    """An image file the loader will not read as it is (a volume, too many channels, ...); the message names
    the file, what is wrong and what to do."""


class ImageInfo(NamedTuple):
    """What an image file's header says: PIL-style ``mode``, ``(width, height)``, bits per sample, whether it is
    DICOM, and a DICOM file's own display window ``(low, high)`` (after RescaleSlope/Intercept), if it has one."""
    mode: str
    size: tuple[int, int]
    bits: int
    dicom: bool = False
    window: tuple[float, float] | None = None


def _pydicom(path: Path):
    """The pydicom module; ModuleNotFoundError saying how to install the ``dicom`` extra when it is missing."""
    try:
        import pydicom   # optional: the dicom extra
    except ImportError as error:
        raise ModuleNotFoundError(
            f"{path} is a DICOM file, and reading DICOM needs pydicom (the optional 'dicom' extra): "
            f"pip install 'ftlab[dicom]' (or pip install -e '.[dicom]' in a checkout of ftlab).") from error
    return pydicom


def _first(value) -> float:
    """A DICOM number that may be multi-valued (``WindowCenter = [40, 400]``): its first value."""
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
        value = value[0]
    return float(value)


def _dicom_window(ds) -> tuple[float, float] | None:
    """(low, high) = center -+ width / 2 from WindowCenter/WindowWidth (first values), or None."""
    if "WindowCenter" not in ds or "WindowWidth" not in ds:
        return None
    try:
        center, width = _first(ds.WindowCenter), _first(ds.WindowWidth)
    except (TypeError, ValueError, IndexError):
        return None
    return (center - width / 2, center + width / 2) if width > 0 else None


def _dicom_shape_checks(ds, path: Path) -> int:
    """SamplesPerPixel (1 or 3) of a DICOM data set; ImageFileError for multi-frame files and other channels."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageFileError(_volume_message(path, f"a multi-frame DICOM ({frames} frames)"))
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise ImageFileError(_channels_message(path, samples))
    return samples


def _volume_message(path: Path, what: str) -> str:
    return (f"{path} is {what}: a 3D volume or an image sequence, but this loader takes one 2D image per file. "
            f"Export the slices or frames you want as separate 2D files (one image each), or leave this file out.")


def _channels_message(path: Path, channels: int, note: str = "") -> str:
    return (f"{path} has {channels} channels{note}; images must be grey (1 channel) or RGB (3). Save it as grey "
            f"or RGB (for RGBA: flatten the transparency onto a background), or leave this file out.")


def _dicom_info(path: Path) -> ImageInfo:
    """The header of a DICOM file (pixels not read)."""
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        rows, columns = int(ds.Rows), int(ds.Columns)
    except Exception as error:  # pydicom raises InvalidDicomError, AttributeError for a missing tag, ...
        raise ValueError(f"Cannot read the DICOM file {path} ({type(error).__name__}: {error}). "
                         f"Remove or replace it.") from error
    samples = _dicom_shape_checks(ds, path)
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    window = _dicom_window(ds) if samples == 1 else None
    return ImageInfo("L" if samples == 1 else "RGB", (columns, rows), bits, True, window)


def _pil_bits(image: Image.Image) -> int:
    """Bits per sample of an opened PIL image: 16 for I;16* and 16-bit RGB(A), 32 for I and F, else 8."""
    if image.mode.startswith("I;16"):
        return 16
    if image.mode in ("I", "F"):
        return 32
    args = [tile[3] for tile in image.tile]   # (codec, extents, offset, args): a tuple before Pillow 11
    rawmodes = [arg if isinstance(arg, str) else (arg or ("",))[0] for arg in args]
    if image.mode in ("RGB", "RGBA") and any(";16" in str(raw) for raw in rawmodes):
        return 16   # PIL would keep only each sample's high byte
    return 8


def _image_info(path: Path) -> ImageInfo:
    """The header of an image (mode, size, bits per sample); ValueError if unreadable, a volume or a sequence."""
    if is_dicom(path):
        return _dicom_info(path)
    try:
        with Image.open(path) as image:
            frames = getattr(image, "n_frames", 1)
            info = ImageInfo(image.mode, image.size, _pil_bits(image))
    except Exception as error:  # PIL raises many types (OSError, SyntaxError, ...) for bad files
        raise ValueError(f"Cannot read the image {path} ({error}). Remove or replace it.") from error
    if frames > 1:
        raise ImageFileError(_volume_message(path, f"a {frames}-page {path.suffix.lstrip('.').upper()} file"))
    return info


def _check_intensity(intensity) -> None:
    """ValueError unless ``intensity`` is "auto", "minmax" or a window (low, high) with low < high."""
    if isinstance(intensity, str):
        if intensity in ("auto", "minmax"):
            return
    elif (isinstance(intensity, (tuple, list)) and len(intensity) == 2
          and all(isinstance(v, (int, float, np.number)) and np.isfinite(v) for v in intensity)
          and intensity[0] < intensity[1]):
        return
    raise ValueError(f"intensity={intensity!r}: use 'auto' (8-bit images as they are, deeper ones min-max, DICOM "
                     f"its own window), 'minmax' (every image from its own minimum to maximum) or a fixed window "
                     f"(low, high) with low < high.")


def parse_intensity(text: str | tuple[float, float]) -> str | tuple[float, float]:
    """The ``intensity`` a command line or a run config gives as text: "auto", "minmax" or "LOW,HIGH" (a fixed
    window, e.g. "0,4095"); a tuple passes as it is. A clear ValueError for anything else."""
    if not isinstance(text, str):
        _check_intensity(text)
        return text
    word = text.strip().lower()
    if word in ("auto", "minmax"):
        return word
    parts = word.split(",")
    try:
        window = tuple(float(p) for p in parts)
    except ValueError:
        window = ()
    if len(window) != 2 or not window[0] < window[1]:
        raise ValueError(f"intensity {text!r}: use auto, minmax, or a window LOW,HIGH with LOW < HIGH (e.g. 0,4095)")
    return window


def to_uint8(values: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    """``values`` mapped linearly to 0..255 uint8: ``window`` (low, high) to (0, 255), clipped outside; None:
    the array's own minimum and maximum (min-max scaling; a constant image becomes 0). NaNs become ``low``."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    low, high = window if window is not None else ((finite.min(), finite.max()) if finite.size else (0.0, 0.0))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.nan_to_num(values, nan=low) - low) * 255.0 / (high - low)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _window_for(intensity, file_window: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """The window a deep (or DICOM) image is scaled with: the given (low, high), else the file's own for
    "auto", else None (min-max)."""
    if isinstance(intensity, (tuple, list)):
        return float(intensity[0]), float(intensity[1])
    return file_window if intensity == "auto" else None


def _without_alpha(image: Image.Image, path: Path) -> Image.Image:
    """An image with an alpha channel as grey or RGB when the alpha is fully opaque; ImageFileError otherwise."""
    alpha = np.asarray(image.convert("RGBA" if image.mode == "PA" else image.mode).getchannel("A"))
    if alpha.size and int(alpha.min()) < 255:
        raise ImageFileError(_channels_message(path, len(image.getbands()),
                                               f" ({image.mode}, with transparent pixels)"))
    return image.convert("L" if image.mode in ("LA", "La") else "RGB")


def _deep_rgb(path: Path) -> np.ndarray:
    """A 16-bit RGB(A) file's samples at full depth: TIFF through tifffile when it is installed; ImageFileError
    otherwise (PIL would keep only each sample's high byte)."""
    if path.suffix.lower() in (".tif", ".tiff"):
        try:
            import tifffile   # optional: comes with scikit-image, not a dependency of ours
        except ImportError:
            tifffile = None
        if tifffile is not None:
            array = np.asarray(tifffile.imread(path))
            if array.ndim == 3 and array.shape[-1] == 4:
                opaque = np.iinfo(array.dtype).max if array.dtype.kind in "ui" else 1.0
                if array[..., 3].min() < opaque:
                    raise ImageFileError(_channels_message(path, 4, " (RGBA, with transparent pixels)"))
                array = array[..., :3]
            if array.ndim > 3:
                raise ImageFileError(_volume_message(path, f"an array of shape {array.shape}"))
            if array.ndim != 3 or array.shape[-1] != 3:
                raise ImageFileError(_channels_message(path, array.shape[-1] if array.ndim == 3 else 1))
            return array
    raise ImageFileError(
        f"{path} is a 16-bit RGB image; PIL reads such files only at 8 bits (the high byte of each sample), which "
        f"would silently drop detail. Save it as 16-bit RGB TIFF (read through tifffile, pip install tifffile), "
        f"as 16-bit greyscale PNG/TIFF, or as 8-bit RGB with the window you want.")


def _dicom_image(path: Path, intensity) -> Image.Image:
    """A DICOM file as an 8-bit PIL image: RescaleSlope/Intercept applied, windowed (see :func:`read_image`),
    MONOCHROME1 inverted."""
    pydicom = _pydicom(path)
    ds = pydicom.dcmread(path)
    samples = _dicom_shape_checks(ds, path)
    pixels = np.asarray(ds.pixel_array)
    if pixels.ndim != (2 if samples == 1 else 3):
        raise ImageFileError(_volume_message(path, f"a DICOM pixel array of shape {pixels.shape}"))
    if samples == 3:
        bits = int(ds.get("BitsStored", 8) or 8)
        if bits <= 8 and intensity == "auto":
            return Image.fromarray(pixels.astype(np.uint8), "RGB")
        return Image.fromarray(to_uint8(pixels, _window_for(intensity)), "RGB")
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    grey = to_uint8(pixels * slope + intercept, _window_for(intensity, _dicom_window(ds)))
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        grey = 255 - grey   # MONOCHROME1: the lowest value is shown white
    return Image.fromarray(grey, "L")


def _pil_image(image: Image.Image, path: Path, intensity) -> Image.Image:
    """An opened PIL image as an 8-bit one: 8-bit images as they are (unless a window or min-max is asked for),
    deeper ones scaled (see :func:`read_image`)."""
    bits = _pil_bits(image)
    if bits > 8 and image.mode in ("RGB", "RGBA"):
        return Image.fromarray(to_uint8(_deep_rgb(path), _window_for(intensity)), "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = _without_alpha(image, path)
    if bits > 8:
        return Image.fromarray(to_uint8(np.asarray(image), _window_for(intensity)), "L")
    if intensity == "auto":
        return image
    grey = image.mode in GRAY_MODES
    array = np.asarray(image.convert("L" if grey else "RGB"))
    return Image.fromarray(to_uint8(array, _window_for(intensity)), "L" if grey else "RGB")


def read_image(path: Path, mode: str, size: tuple[int, int], intensity: str | tuple[float, float] = "auto",
               ) -> np.ndarray:
    """The image at ``path`` as a uint8 (H, W) or (H, W, 3) array in ``mode`` ('L' or 'RGB'), resized to ``size``
    (width, height).

    PNG/TIFF/JPEG/BMP through PIL, DICOM through pydicom (the ``dicom`` extra). ``intensity`` says how samples
    become 0..255:

    - ``"auto"`` (default): 8-bit images as they are, byte for byte; deeper ones (16-bit grey or RGB, 32-bit
      integer or float) min-max per image; DICOM through its RescaleSlope/RescaleIntercept, then its own
      WindowCenter/WindowWidth (the first pair when there are several; min-max without one);
    - ``"minmax"``: every image from its own minimum (0) to its maximum (255);
    - ``(low, high)``: a fixed window, the same for every image (for DICOM in rescaled units, e.g. Hounsfield),
      values outside it clipped.

    MONOCHROME1 DICOM is inverted (its lowest value is white). An alpha channel is dropped when fully opaque.
    ValueError naming the file for an unreadable file, a 3D volume or multi-frame file, more than 3 channels
    (or RGBA with transparent pixels), and a 16-bit RGB PNG (PIL reads those only at 8 bits).
    """
    path = Path(path)
    _check_intensity(intensity)
    try:
        if is_dicom(path):
            image = _dicom_image(path, intensity)
        else:
            with Image.open(path) as opened:
                image = _pil_image(opened, path, intensity)
                image = image.convert(mode)
        if image.mode != mode:
            image = image.convert(mode)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(image, dtype=np.uint8)
    except (ImageFileError, ModuleNotFoundError):
        raise
    except Exception as error:  # PIL and pydicom raise many types (OSError, SyntaxError, ...) for bad files
        raise ValueError(f"Cannot read the image {path} ({error}). Remove or replace it.") from error


def _target_size(infos: list[ImageInfo], size: int | None, folder: Path) -> tuple[int, int]:
    """(width, height) every image is brought to: ``size`` square, else the most common size."""
    if size is not None:
        return int(size), int(size)
    counts = Counter(info.size for info in infos)
    common = counts.most_common(1)[0][0]
    if len(counts) > 1:
        warnings.warn(f"The images in {folder} have {len(counts)} different sizes; all were resized to the "
                      f"most common one, {common[0]}x{common[1]} (width x height). Pass size= to choose.",
                      stacklevel=3)
    return common


def _decode(files: list[Path], labels: list[int], mode: str, dims: tuple[int, int], quiet: bool = True,
            desc: str = "decoding", intensity: str | tuple[float, float] = "auto") -> Split:
    """A Split from image files and their labels (a progress bar over the files unless ``quiet``)."""
    channels = 1 if mode == "L" else 3
    if not files:
        return Split(torch.zeros((0, channels, dims[1], dims[0]), dtype=torch.uint8),
                     torch.zeros(0, dtype=torch.int64))
    images = np.stack([read_image(p, mode, dims, intensity)
                       for p in tqdm(files, desc=desc, disable=quiet, leave=False)])
    return arrays_to_split(images, np.asarray(labels, dtype=np.int64))


def _split_counts(n: int, val_fraction: float, test_fraction: float, name: str) -> tuple[int, int]:
    """(n_val, n_test) for a class of ``n`` images: at least 1 each when its fraction is > 0."""
    n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise ValueError(f"The class {name!r} has only {n} image(s): too few to split into train, val and "
                         f"test. Add images, or give train/, val/ and test/ folders.")
    return n_val, n_test


def _stratified(files: dict[str, list[Path]], names: list[str], fractions: dict[str, float], seed: int,
                ) -> dict[str, tuple[list[Path], list[int]]]:
    """A seeded, per-class random split of ``files`` into the splits named in ``fractions`` (+ train)."""
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[list[Path], list[int]]] = {s: ([], []) for s in ("train", *fractions)}
    for label, name in enumerate(names):
        paths = files[name]
        n_val, n_test = _split_counts(len(paths), fractions.get("val", 0.0), fractions.get("test", 0.0), name)
        order = rng.permutation(len(paths))
        parts = {"val": order[:n_val], "test": order[n_val:n_val + n_test], "train": order[n_val + n_test:]}
        for split in out:
            for i in sorted(parts[split]):
                out[split][0].append(paths[i])
                out[split][1].append(label)
    return out


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    """ValueError unless both fractions are >= 0 and leave room for a training split."""
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be >= 0 "
                         f"and add up to less than 1.")


def _folder_plan(folder: Path, seed: int, val_fraction: float, test_fraction: float,
                 ) -> tuple[list[str], dict[str, tuple[list[Path], list[int]]], str]:
    """(class names, {split: (files, labels)}, layout) for an image folder of either layout."""
    layout_dirs = {s: folder / s for s in SPLITS if (folder / s).is_dir()}
    if not layout_dirs:
        files = _scan_classes(folder)
        names = sorted(files)
        _need_two_classes(names, folder)
        plan = _stratified(files, names, {"val": val_fraction, "test": test_fraction}, seed)
        return names, plan, "class folders, split here (stratified, seeded)"
    if "train" not in layout_dirs or "test" not in layout_dirs:
        raise ValueError(f"{folder} has {', '.join(sorted(layout_dirs))}/ but a split layout needs train/ "
                         f"and test/ (val/ is optional: without it, part of train/ becomes val).")
    return _given_split_plan(folder, layout_dirs, seed, val_fraction)


def _given_split_plan(folder: Path, dirs: dict[str, Path], seed: int, val_fraction: float,
                      ) -> tuple[list[str], dict[str, tuple[list[Path], list[int]]], str]:
    """The plan for a folder with train/ (val/) test/ sub-folders each holding class folders."""
    scanned = {split: _scan_classes(path) for split, path in dirs.items()}
    names = sorted(scanned["train"])
    _need_two_classes(names, dirs["train"])
    for split, classes in scanned.items():
        extra = sorted(set(classes) - set(names))
        if extra:
            raise ValueError(f"{dirs[split]} has class folder(s) {', '.join(extra)} that train/ lacks.")
    plan = {split: ([p for n in names for p in classes.get(n, [])],
                    [i for i, n in enumerate(names) for _ in classes.get(n, [])])
            for split, classes in scanned.items()}
    if "val" in plan:
        return names, plan, "given train/val/test folders"
    carved = _stratified(scanned["train"], names, {"val": val_fraction}, seed)
    return names, {**plan, "train": carved["train"], "val": carved["val"]}, \
        "given train/test folders, val taken from train (stratified, seeded)"


def _need_two_classes(names: list[str], folder: Path) -> None:
    """ValueError when fewer than two class folders were found."""
    if len(names) < 2:
        raise ValueError(f"{folder} has {len(names)} class folder(s) ({', '.join(names) or 'none'}); a "
                         f"classifier needs at least 2.")


def _check_depths(files: list[Path], infos: list[ImageInfo], folder: Path) -> None:
    """ImageFileError when 8-bit and deeper images share a folder (one scaling could not suit both)."""
    eight = next((p for p, i in zip(files, infos) if i.bits <= 8), None)
    deep = next(((p, i) for p, i in zip(files, infos) if i.bits > 8), None)
    if eight is not None and deep is not None:
        raise ImageFileError(
            f"{folder} mixes bit depths: {eight} is 8-bit but {deep[0]} has {deep[1].bits} bits per sample. "
            f"8-bit images are used as they are and deeper ones are scaled to 0-255, so the two kinds would not "
            f"be comparable. Convert the files to one depth first (the deeper ones to 8 bits with the window you "
            f"want, or the 8-bit ones to 16 bits).")


def _scaling_note(infos: list[ImageInfo], intensity, folder: Path) -> str | None:
    """The one line saying how a folder's samples became 0..255, or None when every image is 8-bit non-DICOM
    read as it is."""
    deep = [i for i in infos if i.bits > 8]
    dicom = [i for i in infos if i.dicom]
    if not deep and not dicom and intensity == "auto":
        return None
    depths = "/".join(f"{b}-bit" for b in sorted({i.bits for i in infos}))
    what = f"{len(infos)} images in {folder} ({depths}{', DICOM' if dicom else ''})"
    if isinstance(intensity, (tuple, list)):
        how = f"the fixed window {float(intensity[0]):g}..{float(intensity[1]):g} -> 0..255, clipped outside"
    elif intensity == "minmax" or not dicom:
        how = "min-max per image (its own minimum -> 0, maximum -> 255)"
    else:
        windowed = sum(i.window is not None for i in dicom)
        how = (f"DICOM RescaleSlope/Intercept, then each file's WindowCenter/WindowWidth ({windowed} of "
               f"{len(dicom)} DICOM files have one; min-max for the rest"
               + (" and for the non-DICOM images" if len(dicom) < len(infos) else "") + ")")
    inverted = " MONOCHROME1 files inverted." if dicom else ""
    hint = "; pass intensity='minmax' or (low, high) to choose" if intensity == "auto" else ""
    return f"Intensity scaling: {what} scaled to 0..255 uint8 by {how} (intensity={intensity!r}{hint}).{inverted}"


def load_image_folder(path: str | Path, size: int | None = None, seed: int = 0, val_fraction: float = 0.1,
                      test_fraction: float = 0.2, quiet: bool = False,
                      intensity: str | tuple[float, float] = "auto") -> DataSet:
    """A DataSet from a folder of images: one sub-folder per class, or train/ val/ test/ of such folders.

    Class names are the sorted class-folder names. Files: PNG, JPEG, BMP, TIFF (through PIL) and DICOM (``.dcm``
    or extension-less files with the DICOM preamble; the ``dicom`` extra). Images stay 1-channel if all are
    grayscale, else all become RGB; they are resized to ``size`` x ``size`` if given, else to the most common size.
    Without train/val/test folders the split is stratified and seeded (``seed``). Reading and decoding
    show progress bars (thousands of files take tens of seconds) unless ``quiet``.

    ``intensity`` says how samples become 0..255 (see :func:`read_image`): "auto" keeps 8-bit images byte for
    byte, scales deeper ones min-max per image and DICOM by its own window; "minmax"; or a fixed ``(low, high)``.
    When any image is deeper than 8 bits or DICOM, one printed line says which scaling was used (also kept in
    ``meta["intensity"]``). A folder mixing 8-bit and deeper images is refused, as are 3D volumes, multi-frame
    files and images with more than 3 channels (ValueError naming the file).
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"No such folder: {folder}")
    _check_fractions(val_fraction, test_fraction)
    _check_intensity(intensity)
    names, plan, layout = _folder_plan(folder, seed, val_fraction, test_fraction)
    every = [p for files, _ in plan.values() for p in files]
    infos = [_image_info(p) for p in tqdm(every, desc=f"reading {folder.name}", disable=quiet, leave=False)]
    _check_depths(every, infos, folder)
    mode = "L" if all(info.mode in GRAY_MODES for info in infos) else "RGB"
    dims = _target_size(infos, size, folder)
    note = _scaling_note(infos, intensity, folder)
    if note:
        print(note)
    splits = {split: _decode(*plan[split], mode, dims, quiet, f"decoding {split}", intensity) for split in SPLITS}
    meta = {"format": "image folder", "layout": layout, "size": dims, "seed": seed}
    if note:
        meta["intensity"] = note
    return DataSet(folder.name, splits["train"], splits["val"], splits["test"], names, source=str(folder),
                   meta=meta)


def write_image_folder(split: Split, class_names: list[str], folder: str | Path, per_class: int | None = None,
                       seed: int = 0) -> Path:
    """Write a split's images as PNG files in one sub-folder per class: the layout :func:`load_image_folder`
    reads. ``per_class`` caps the images of each class (a seeded random choice). Returns ``folder``.

    Only sets with one label per image fit this layout; a multi-label set is refused (keep it as an
    ``.npz``, whose labels can hold several findings per image).
    """
    if split.multi_label:
        raise ValueError("A multi-label set cannot be written as class folders: an image may show several "
                         "findings. Keep it as an .npz in the MedMNIST layout.")
    folder = Path(folder).expanduser()
    gen = torch.Generator().manual_seed(seed)
    for c, name in enumerate(class_names):
        members = split.examples_of(c)
        members = members[torch.randperm(len(members), generator=gen)[:per_class]]
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in members.tolist():
            pixels = split.images[i].permute(1, 2, 0).numpy()
            Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(folder / name / f"{i:06d}.png")
    return folder


def describe(dataset: DataSet) -> str:
    """One line: name, task, classes, channels, image size and split sizes."""
    kind = "findings" if dataset.multi_label else "classes"
    return (f"{dataset.name}: {dataset.task}, {dataset.num_classes} {kind} {dataset.class_names}, "
            f"{dataset.channels} channel(s), {dataset.image_size[0]}x{dataset.image_size[1]} px (height x width); "
            f"train {len(dataset.train)}, val {len(dataset.val)}, test {len(dataset.test)}")


# --------------------------------------------------------------------------- one entry point


def dataset_label(dataset: str | Path) -> str:
    """A short name for file names: the MedMNIST flag, or the stem of an ``.npz`` or image folder path."""
    if isinstance(dataset, str) and catalog.is_medmnist_name(dataset):
        return dataset.strip().lower()
    return Path(dataset).expanduser().stem or "dataset"


def load_dataset(dataset: str | Path, size: int | None = 28, download: bool = True,
                 remap_labels: bool = False, intensity: str | tuple[float, float] = "auto") -> DataSet:
    """A DataSet from a MedMNIST name, a path to a MedMNIST-layout ``.npz``, or a path to an image folder.

    ``size`` picks the MedMNIST file (28, 64, 128 or 224 px) and the square size folder images are
    resized to (None keeps their own size); an ``.npz`` keeps its own size. ``remap_labels`` renumbers
    an ``.npz``'s class labels that skip values (see :func:`load_npz_dataset`). ``intensity`` says how an image
    folder's 16-bit, float or DICOM samples become 0..255 (see :func:`load_image_folder`); MedMNIST and ``.npz``
    files hold uint8 already, so for them only "auto" is accepted.
    """
    is_name = isinstance(dataset, str) and catalog.is_medmnist_name(dataset)
    path = Path(dataset).expanduser()
    if not is_name and path.is_dir():
        return load_image_folder(path, size=size, intensity=intensity)
    if intensity != "auto":
        raise ValueError(f"intensity={intensity!r} applies to image folders; {dataset} is not one (MedMNIST and "
                         f".npz images are uint8 already).")
    if is_name:
        return load_medmnist(dataset, size if size is not None else 28, download=download)
    if path.is_file():
        return load_npz_dataset(path, remap_labels=remap_labels)
    raise catalog.unknown_name_error(dataset, extra=" nor an existing .npz file or image folder")
