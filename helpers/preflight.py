"""The data preflight: before any notebook runs, find or fetch every file it needs, or stop at once.

``make data``, ``make test`` and ``make reproduce`` run ``python -m helpers.preflight`` first. For the
chosen profile it works out which MedMNIST files notebooks 01-04 read (``FTLAB_DATASET`` or
PneumoniaMNIST, at the profile's image size), finds each one (``FTLAB_DATA_DIR``, then ``data/``) and
checks its MD5, or downloads it with a progress bar. When a file is missing and cannot be downloaded
it stops within seconds and says which file, its MD5, its URL and where to put it, instead of letting
the first notebook fail deep inside a traceback. It also says which polyp folder notebooks 05 and 07 would use.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import catalog
from .detection.video import locate_polyp_dataset
from .loading import CorruptDataError, MissingDataError, describe, fetch_medmnist, load_dataset
from .paths import default_dataset
from .profiles import get_profile

__all__ = ["Check", "_needed_files", "run_checks", "main"]

DOWNLOAD_TIMEOUT = 20
"""Seconds without data before a download is given up: an offline machine fails fast."""


@dataclass
class Check:
    """The outcome for one data set: ``ok`` True when the notebooks can read it."""

    dataset: str
    ok: bool
    message: str


def _needed_files(profile: str | None = None, datasets: Sequence[str] | None = None) -> list[tuple[str, int]]:
    """(data set, image size the notebooks load it at) for every data set the classification notebooks read."""
    size = get_profile(profile).classification.data_size
    return [(name, size) for name in (datasets or [default_dataset()])]


def _check_own(dataset: str, size: int) -> Check:
    """Load the user's own ``.npz`` or image folder as the notebooks will, so bad labels show up now."""
    path = Path(dataset).expanduser()
    if not path.exists():
        if len(path.parts) == 1 and not path.suffix:   # meant as a MedMNIST name
            return Check(dataset, False, f"MISSING  {catalog.unknown_name_error(dataset)}")
        return Check(dataset, False, f"MISSING  {path}: no such file or folder (FTLAB_DATASET / DATASET names it).")
    try:
        loaded = load_dataset(path, size=size)
    except (ValueError, OSError) as error:
        return Check(dataset, False, f"UNUSABLE {path}: {error}")
    return Check(dataset, True, f"ok       {describe(loaded)} (your own data)")


def _check_one(dataset: str, size: int, download: bool) -> Check:
    """Find (or fetch) one data set and say how it went."""
    if not catalog.is_medmnist_name(dataset):
        return _check_own(dataset, size)
    try:
        path = fetch_medmnist(dataset, size, download=download, timeout=DOWNLOAD_TIMEOUT)
    except (MissingDataError, CorruptDataError) as error:
        return Check(dataset, False, f"MISSING  {catalog.file_name(dataset, size)}: {error}")
    return Check(dataset, True, f"ok       {path} (MD5 checked)")


def _polyp_line() -> str:
    """Which polyp folder notebooks 05 and 07 would use, or what they do without one."""
    try:
        return f"notebooks 05 and 07: polyp frames at {locate_polyp_dataset()}"
    except (FileNotFoundError, ValueError) as error:
        return f"notebooks 05 and 07: no polyp folder found ({str(error).splitlines()[0]})"


def run_checks(profile: str | None = None, datasets: Sequence[str] | None = None,
               download: bool = True) -> list[Check]:
    """Check (and fetch where missing) every data set the notebooks need for ``profile``."""
    return [_check_one(name, size, download) for name, size in _needed_files(profile, datasets)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print one line per data set; exit 1 (with what to do) when any is missing."""
    parser = argparse.ArgumentParser(prog="python -m helpers.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--profile", help="fast, classroom or full (default: $FTLAB_PROFILE or classroom)")
    parser.add_argument("--dataset", action="append", help="a MedMNIST name or a path (repeatable; "
                        "default: $FTLAB_DATASET or pneumoniamnist)")
    parser.add_argument("--no-download", action="store_true", help="only look for files, never download")
    args = parser.parse_args(argv)
    checks = run_checks(args.profile, args.dataset, download=not args.no_download)
    profile = get_profile(args.profile).name
    print(f"data preflight ({profile} profile):")
    for check in checks:
        print("  " + check.message)
    print("  " + _polyp_line())
    if all(c.ok for c in checks):
        return 0
    print("\nStopped before running any notebook: the data above is missing. Fetch it as the line says, "
          "or point FTLAB_DATA_DIR at the folder that holds it, then run the command again.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
