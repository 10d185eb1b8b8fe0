"""MedMNIST metadata, read from the ``medmnist`` package and never retyped.

The package's ``medmnist.info.INFO`` holds, for every data set ("flag"), the download URL and MD5 of
each image size, the label names, the channel count, the split sizes and the licence. This module
turns one of those records into a small, typed :class:`MedMNISTEntry`::

    >>> e = entry("pneumoniamnist", size=28)
    >>> e.file_name, e.class_names
    ('pneumoniamnist.npz', ['normal', 'pneumonia'])

Only the 2D sets are offered: the suite's models take 2D images, so the ``...3d`` sets are refused.
"""
from __future__ import annotations

import difflib
import importlib.util
import operator
from dataclasses import dataclass, field
from types import ModuleType


def _load_info() -> ModuleType:
    """``medmnist.info`` without running ``medmnist/__init__.py``.

    The package's ``__init__`` imports its dataset and evaluator modules (torch, pandas, scikit-learn,
    scikit-image): seconds on a laptop, for metadata only. The ``info`` module itself is plain data,
    so it is loaded from its file; if that fails, the ordinary import is used.
    """
    try:
        spec = importlib.util.find_spec("medmnist")
        path = next(iter(spec.submodule_search_locations)) + "/info.py"
        info_spec = importlib.util.spec_from_file_location("_ftlab_medmnist_info", path)
        module = importlib.util.module_from_spec(info_spec)
        info_spec.loader.exec_module(module)
        module.INFO, module.HOMEPAGE  # noqa: B018  (both must be there)
        return module
    except Exception:  # any surprise in the package layout: fall back to the normal import
        import medmnist.info   # deferred: the fallback path only (medmnist's package imports its whole API)
        return medmnist.info


_INFO_MODULE = _load_info()
INFO: dict[str, dict] = _INFO_MODULE.INFO
"""``medmnist.info.INFO``: the package's metadata of every MedMNIST set, keyed by flag."""
HOMEPAGE: str = _INFO_MODULE.HOMEPAGE
MEDMNIST_VERSION: str = getattr(_INFO_MODULE, "__version__", "")

SIZES: tuple[int, ...] = (28, 64, 128, 224)
"""Image sizes (px) MedMNIST publishes: 28 (MedMNIST v2) and 64/128/224 (MedMNIST+)."""

__all__ = ["SIZES", "INFO", "HOMEPAGE", "MEDMNIST_VERSION", "MedMNISTEntry", "medmnist_names",
           "is_medmnist_name", "file_name", "entry", "unknown_name_error"]


@dataclass(frozen=True)
class MedMNISTEntry:
    """Everything the suite needs to know about one MedMNIST file (one data set at one size)."""

    name: str                   # flag, lower case, e.g. "pneumoniamnist"
    size: int                   # image side in px (28, 64, 128 or 224)
    file_name: str              # "pneumoniamnist.npz" at 28 px, "pneumoniamnist_64.npz" otherwise
    url: str                    # the official download URL (Zenodo)
    md5: str                    # the official MD5 of that file
    task: str                   # e.g. "binary-class", "multi-class", "multi-label, binary-class"
    class_names: list[str] = field(default_factory=list)  # ordered by label index
    n_channels: int = 1
    n_samples: dict[str, int] = field(default_factory=dict)  # {"train": .., "val": .., "test": ..}
    licence: str = ""
    description: str = ""

    @property
    def multi_label(self) -> bool:
        """True for multi-label sets (ChestMNIST): one yes/no label per finding (trained with BCE)."""
        return "multi-label" in self.task


def medmnist_names() -> list[str]:
    """Every 2D MedMNIST flag, in the package's order (3D sets, ending in ``3d``, are left out)."""
    return [name for name in INFO if not name.endswith("3d")]


def is_medmnist_name(name: str) -> bool:
    """Whether ``name`` (any case, surrounding spaces ignored) is a 2D MedMNIST flag."""
    return isinstance(name, str) and name.strip().lower() in medmnist_names()


def unknown_name_error(name: object, extra: str = "") -> ValueError:
    """The ValueError for a name that is no 2D MedMNIST set: lists valid names, suggests the closest."""
    text = str(name).strip().lower()
    valid = medmnist_names()
    message = f"{name!r} is not a 2D MedMNIST data set{extra}."
    if text.endswith("3d") and text in INFO:
        message = f"{name!r} is a 3D MedMNIST set; this suite trains 2D CNNs, so only 2D sets are offered."
    close = difflib.get_close_matches(text, valid, n=1, cutoff=0.6)
    if close and text not in INFO:
        message += f" Did you mean {close[0]!r}?"
    return ValueError(f"{message} Valid names: {', '.join(valid)}.")


def _canonical_name(name: str) -> str:
    """The lower-case flag for ``name``; ValueError if it is no 2D MedMNIST set."""
    if not is_medmnist_name(name):
        raise unknown_name_error(name)
    return name.strip().lower()


def _check_size(size: int) -> int:
    """``size`` as an int if MedMNIST publishes it; ValueError listing the valid sizes otherwise."""
    try:
        value = None if isinstance(size, bool) else operator.index(size)
    except TypeError:
        value = None
    if value not in SIZES:
        raise ValueError(f"MedMNIST has no image size {size!r}; valid sizes are "
                         f"{', '.join(map(str, SIZES))} (px).")
    return value


def _size_keys(size: int) -> tuple[str, str]:
    """INFO's keys for the URL and MD5 of ``size`` (``url``/``MD5`` at 28 px, ``url_64``/``MD5_64`` ...)."""
    return ("url", "MD5") if size == 28 else (f"url_{size}", f"MD5_{size}")


def file_name(name: str, size: int = 28) -> str:
    """The official file name: ``{name}.npz`` at 28 px, ``{name}_{size}.npz`` otherwise."""
    name, size = _canonical_name(name), _check_size(size)
    return f"{name}.npz" if size == 28 else f"{name}_{size}.npz"


def entry(name: str, size: int = 28) -> MedMNISTEntry:
    """The metadata of MedMNIST set ``name`` at ``size`` px (name matching ignores case)."""
    name, size = _canonical_name(name), _check_size(size)
    info = INFO[name]
    url_key, md5_key = _size_keys(size)
    if not info.get(url_key) or not info.get(md5_key):
        raise ValueError(f"The installed medmnist package (medmnist.info.INFO[{name!r}]) has no "
                         f"{url_key!r}/{md5_key!r} for {size} px images; upgrade medmnist or pick another "
                         f"size. See {HOMEPAGE}.")
    labels = info.get("label", {})
    return MedMNISTEntry(
        name=name, size=size, file_name=file_name(name, size), url=info[url_key],
        md5=str(info[md5_key]).lower(), task=info.get("task", ""),
        class_names=[labels[key] for key in sorted(labels, key=int)],
        n_channels=int(info.get("n_channels", 1)), n_samples=dict(info.get("n_samples", {})),
        licence=info.get("license", ""), description=info.get("description", ""),
    )
