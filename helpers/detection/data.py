"""Polyp folders a newcomer can get: Kvasir-SEG (public, downloaded), and synthetic ones (built here).

Both are written in the layout :mod:`helpers.detection` reads (``images/``, ``masks/``, optional
``sequences.csv``). Command line (``python -m helpers.detection.data --help``)::

    python -m helpers.detection.data find                      # the polyp folder notebook 05 would use, or exit 1
    python -m helpers.detection.data fetch-kvasir [--dest D]   # download, unzip and check Kvasir-SEG
    python -m helpers.detection.data synthetic DEST [--frames N] [--sequences K] [--jpeg] [--no-sequences-file]
    python -m helpers.detection.data check FOLDER              # every image has a decodable mask of its size

Kvasir-SEG (Jha et al., MMM 2020; 1,000 polyp frames with masks, sizes 332x487 to 1920x1072) is
offered by its owners (Simula) as one zip for research and education. They publish no checksum, so
none can be verified here: the zip's SHA-256 is recorded next to it on the first download
(``kvasir-seg.zip.sha256``) and a later download with a different digest is reported (refused unless
``accept_new_copy``), so two runs can be known to have used the same copy.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

from ..download import DownloadError, download
from ..paths import project_root
from .video import locate_polyp_dataset, pair_files, read_mask

KVASIR_URL = "https://datasets.simula.no/downloads/kvasir-seg.zip"
KVASIR_NAME = "Kvasir-SEG"
KNOWN_SETS = ("CVC-ClinicDB", KVASIR_NAME)
SYNTHETIC_MARK = "SYNTHETIC.txt"


class KvasirChangedError(DownloadError):
    """The downloaded Kvasir-SEG zip differs from the copy recorded on the first download."""


# ----------------------------------------------------------------------------- finding a folder

def default_polyp_dir() -> Path:
    """Where fetched polyp sets go: ``<project root>/data/polyp``."""
    return project_root() / "data" / "polyp"


def find_polyp_dataset(names: Sequence[str] = KNOWN_SETS) -> Path:
    """The first polyp set found among ``names`` (see :func:`helpers.detection.video.locate_polyp_dataset`).

    Raises ``FileNotFoundError`` saying how to get one (CVC-ClinicDB from its owners, Kvasir-SEG with
    ``make data`` / ``python -m helpers.detection.data fetch-kvasir``, or a synthetic folder for tests).
    """
    for name in names:
        try:
            return locate_polyp_dataset(name)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(
        f"No polyp data set found (looked for {', '.join(names)} in FTLAB_POLYP_DIR, FTLAB_DATA_DIR/polyp and "
        f"{default_polyp_dir()}). Get the public Kvasir-SEG with `python -m helpers.detection.data fetch-kvasir` "
        "(or `make data`), put CVC-ClinicDB from its owners in data/polyp/, or build a synthetic folder with "
        "`python -m helpers.detection.data synthetic DEST` and set FTLAB_POLYP_DIR=DEST.")


def describe_dataset(folder: Path, has_sequences: bool) -> str:
    """One sentence: which polyp set this is and how it differs from the study's videos."""
    folder = Path(folder)
    if (folder / SYNTHETIC_MARK).exists():
        return (f"{folder.name} is a SYNTHETIC folder (ellipses on textured backgrounds, built by "
                "helpers.detection.data for tests): its numbers say the code runs, not how CNNs detect polyps.")
    if not has_sequences:
        return (f"{folder.name} has no sequences.csv, so (unlike the study's videos) frames are split independently: "
                "near-duplicate frames of one video may sit in training and test, which flatters every detector.")
    return (f"{folder.name} has video sequences: splits are by sequence as the study split by video; its frames are "
            "still images chosen from short videos (every frame holds a polyp), not the study's full videos.")


# ----------------------------------------------------------------------------- checking a folder

def check_polyp_folder(folder: str | Path) -> dict:
    """Check that every image has a mask of the same size that decodes; return counts.

    Raises ``ValueError`` naming the first problems (unpaired files, undecodable or misfitting masks).
    """
    folder = Path(folder)
    problems, sizes = [], set()
    pairs = pair_files(folder)
    for stem, image, mask in pairs:
        try:
            with Image.open(image) as img:
                size = img.size
                img.verify()
            values = read_mask(mask)
        except (OSError, ValueError, SyntaxError) as err:
            problems.append(f"{stem}: {err}")
            continue
        if values.shape != (size[1], size[0]):
            problems.append(f"{stem}: mask {values.shape[1]}x{values.shape[0]} but image {size[0]}x{size[1]}")
        sizes.add(size)
    if problems:
        raise ValueError(f"{len(problems)} of {len(pairs)} frames in {folder} are unusable: {problems[:5]}")
    return {"frames": len(pairs), "sizes": len(sizes), "has_sequences": (folder / "sequences.csv").exists()}


# ----------------------------------------------------------------------------- Kvasir-SEG

def sha256sum(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _record_digest(record: Path, digest: str, accept_new_copy: bool) -> str:
    """Compare ``digest`` with the recorded one (writing it on first use); returns a note for the user."""
    if not record.exists():
        record.write_text(digest + "\n")
        return f"first download: SHA-256 {digest} recorded in {record}"
    known = record.read_text().split()[0].strip().lower()
    if known == digest:
        return f"SHA-256 {digest} matches the copy recorded in {record}"
    if not accept_new_copy:
        raise KvasirChangedError(
            f"The Kvasir-SEG zip now has SHA-256 {digest}, but the copy first downloaded here had {known} "
            f"(recorded in {record}). Its owners may have changed the release; results from the two copies are "
            "not comparable. Pass accept_new_copy=True (--accept-new-copy) to use the new copy and record it.")
    record.write_text(digest + "\n")
    return f"NEW COPY accepted: SHA-256 {digest} replaces {known} in {record}"


def _safe_extract(archive: zipfile.ZipFile, target: Path) -> None:
    """Extract every member inside ``target`` (refusing absolute paths and ``..``)."""
    root = target.resolve()
    for member in archive.infolist():
        out = (target / member.filename).resolve()
        if root != out and root not in out.parents:
            raise DownloadError(f"Refusing to unzip {member.filename!r}: it points outside {target}.")
    archive.extractall(target)


def _frames_root(folder: Path) -> Path:
    """The folder inside an unzipped archive that holds ``images/`` and ``masks/``."""
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        if (candidate / "images").is_dir() and (candidate / "masks").is_dir():
            return candidate
    raise DownloadError(f"The archive holds no folder with images/ and masks/ (unzipped into {folder}).")


def fetch_kvasir_seg(dest: str | Path | None = None, url: str = KVASIR_URL, accept_new_copy: bool = False,
                     progress: bool = True, timeout: float = 60) -> Path:
    """Download Kvasir-SEG's zip into ``dest`` (default ``data/polyp``), unzip it to ``dest/Kvasir-SEG``, check it.

    The download is atomic (:func:`helpers.download.download`; a cut download leaves nothing). The
    zip's SHA-256 is recorded on the first download and compared later (:class:`KvasirChangedError`).
    An existing ``dest/Kvasir-SEG`` is returned as it is. Returns the frames folder.
    """
    dest = Path(dest) if dest is not None else default_polyp_dir()
    folder = dest / KVASIR_NAME
    if (folder / "images").is_dir() and (folder / "masks").is_dir():
        return folder
    dest.mkdir(parents=True, exist_ok=True)
    archive = download(url, dest / "kvasir-seg.zip", md5=None, progress=progress, timeout=timeout)
    note = _record_digest(dest / "kvasir-seg.zip.sha256", sha256sum(archive), accept_new_copy)
    with tempfile.TemporaryDirectory(dir=dest, prefix=".kvasir-unzip-") as tmp:
        try:
            with zipfile.ZipFile(archive) as zf:
                _safe_extract(zf, Path(tmp))
        except zipfile.BadZipFile as err:
            raise DownloadError(f"{archive} is not a valid zip ({err}); delete it and download again.") from err
        root = _frames_root(Path(tmp))
        check_polyp_folder(root)
        shutil.move(str(root), str(folder))
    print(f"Kvasir-SEG ready in {folder} ({note}).")
    return folder


# ----------------------------------------------------------------------------- synthetic folders

def _texture(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """Float (H, W, 3) pinkish mucosa: smooth noise, folds and a few specular highlights."""
    h, w = size
    base = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), sigma=min(h, w) / 12)
    base = (base - base.min()) / (np.ptp(base) + 1e-9)
    yy, xx = np.mgrid[0:h, 0:w]
    angle = rng.uniform(0, np.pi)
    folds = np.sin((np.cos(angle) * yy + np.sin(angle) * xx) / rng.uniform(6, 14)) ** 8
    grain = ndimage.gaussian_filter(rng.normal(0, 1, (h, w)), 1.0)
    light = 0.55 + 0.35 * base - 0.25 * folds + 0.04 * grain
    rgb = np.stack([0.85 * light + 0.1, 0.45 * light, 0.40 * light], axis=-1)
    for _ in range(rng.integers(2, 6)):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1.5, 4)
        spot = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r ** 2))
        rgb = rgb + spot[..., None] * 0.9
    return rgb


def _ellipse(size: tuple[int, int], cy: float, cx: float, ry: float, rx: float, angle: float) -> np.ndarray:
    """Float (H, W) with the ellipse's normalised radius (<= 1 inside)."""
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    dy, dx = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    return np.sqrt(((c * dy + s * dx) / ry) ** 2 + ((-s * dy + c * dx) / rx) ** 2)


def synthetic_frame(rng: np.random.Generator, size: tuple[int, int], polyp: tuple[float, ...],
                    texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One uint8 RGB frame and bool mask: a shaded reddish ellipse (the polyp) on ``texture``, circular view."""
    h, w = size
    radius = _ellipse(size, *polyp)
    mask = radius <= 1.0
    shade = np.clip(1.0 - radius, 0, 1) ** 0.5
    frame = texture.copy()
    polyp_rgb = np.stack([0.95 * (0.6 + 0.4 * shade), 0.30 + 0.25 * shade, 0.28 + 0.1 * shade], axis=-1)
    frame = np.where(mask[..., None], polyp_rgb, frame)
    rim = (radius > 1.0) & (radius <= 1.15)
    frame[rim] *= 0.7
    frame = frame + rng.normal(0, 0.02, frame.shape)
    fov = _ellipse(size, h / 2, w / 2, 0.62 * h, 0.56 * w, 0.0) <= 1.0
    frame[~fov] = 0
    mask &= fov
    return (np.clip(frame, 0, 1) * 255).astype(np.uint8), mask


def make_synthetic_polyp_folder(dest: str | Path, n_frames: int = 60, n_sequences: int = 6,
                                size: tuple[int, int] = (144, 192), jpeg: bool = False,
                                sequences_file: bool = True, seed: int = 0) -> Path:
    """Write a synthetic polyp folder: ``n_frames`` frames in ``n_sequences`` sequences; returns ``dest``.

    Each sequence has its own background texture and one polyp (an ellipse, 14-40% of the shorter
    side across) that drifts a little from frame to frame, like a short video; a circular field of
    view leaves the corners black. ``jpeg`` writes JPEG frames and JPEG masks (as Kvasir-SEG ships
    them), else PNG; ``sequences_file`` writes ``sequences.csv``. A ``SYNTHETIC.txt`` marks the folder.
    Deterministic given ``seed``. About 5 ms a frame at 288x384.
    """
    dest = Path(dest)
    (dest / "images").mkdir(parents=True, exist_ok=True)
    (dest / "masks").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    ext = ".jpg" if jpeg else ".png"
    seq_of = np.sort(np.arange(n_frames) % max(1, n_sequences))
    rows = ["frame,sequence"]
    texture, polyp = None, None
    for i in range(n_frames):
        if i == 0 or seq_of[i] != seq_of[i - 1]:
            texture = _texture(rng, size)
            r = rng.uniform(0.10, 0.20) * min(h, w)
            polyp = [rng.uniform(0.3 * h, 0.7 * h), rng.uniform(0.3 * w, 0.7 * w), r * rng.uniform(0.7, 1.0), r,
                     rng.uniform(0, np.pi)]
        polyp[0] = float(np.clip(polyp[0] + rng.normal(0, 0.02 * h), 0.25 * h, 0.75 * h))
        polyp[1] = float(np.clip(polyp[1] + rng.normal(0, 0.02 * w), 0.25 * w, 0.75 * w))
        frame, mask = synthetic_frame(rng, size, tuple(polyp), texture)
        name = f"{i + 1}"
        Image.fromarray(frame).save(dest / "images" / f"{name}{ext}", quality=90)
        Image.fromarray((mask * 255).astype(np.uint8)).save(dest / "masks" / f"{name}{ext}", quality=95)
        rows.append(f"{name}{ext},seq{seq_of[i]:03d}")
    if sequences_file:
        (dest / "sequences.csv").write_text("\n".join(rows) + "\n")
    (dest / SYNTHETIC_MARK).write_text("Synthetic polyp frames built by helpers.detection.data for tests; not real data.\n")
    return dest


# ----------------------------------------------------------------------------- command line

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers.detection.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("find", help="print the polyp folder notebook 05 would use; exit 1 if there is none")
    fetch = sub.add_parser("fetch-kvasir", help="download, unzip and check Kvasir-SEG")
    fetch.add_argument("--dest", type=Path, default=None, help="folder for the zip and Kvasir-SEG/ (default data/polyp)")
    fetch.add_argument("--url", default=KVASIR_URL)
    fetch.add_argument("--accept-new-copy", action="store_true", help="accept a zip whose SHA-256 differs from the recorded one")
    syn = sub.add_parser("synthetic", help="write a synthetic polyp folder")
    syn.add_argument("dest", type=Path)
    syn.add_argument("--frames", type=int, default=60)
    syn.add_argument("--sequences", type=int, default=6)
    syn.add_argument("--size", type=int, nargs=2, default=(144, 192), metavar=("H", "W"))
    syn.add_argument("--jpeg", action="store_true", help="JPEG frames and masks (as Kvasir-SEG)")
    syn.add_argument("--no-sequences-file", action="store_true")
    syn.add_argument("--seed", type=int, default=0)
    check = sub.add_parser("check", help="check a polyp folder's frames and masks")
    check.add_argument("folder", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "find":
            print(find_polyp_dataset())
        elif args.command == "fetch-kvasir":
            fetch_kvasir_seg(args.dest, args.url, args.accept_new_copy)
        elif args.command == "synthetic":
            folder = make_synthetic_polyp_folder(args.dest, args.frames, args.sequences, tuple(args.size), args.jpeg,
                                                 not args.no_sequences_file, args.seed)
            print(folder)
        elif args.command == "check":
            print(check_polyp_folder(args.folder))
    except (FileNotFoundError, ValueError, DownloadError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
