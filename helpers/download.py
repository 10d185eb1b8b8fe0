"""Verified, atomic downloads.

:func:`download` streams a URL into a uniquely named ``.part`` file next to the destination, checks
that every byte announced by ``Content-Length`` arrived, checks the MD5, and only then moves the file
into place with :func:`os.replace`. Whatever goes wrong (HTTP error, timeout, a connection cut
mid-file, an MD5 mismatch, Ctrl-C) the ``.part`` file is removed and the destination is left as it
was, so a half-written file can never be mistaken for a good one.

Mirrors
-------
Set ``FTLAB_MEDMNIST_MIRROR`` to a base URL (for example ``http://192.168.1.10:8000/medmnist``) to
fetch MedMNIST files from a local mirror instead of Zenodo: everything before the file name in the
official URL is replaced by that base, and the query string (``?download=1``) is dropped, so
``https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1`` becomes
``http://192.168.1.10:8000/medmnist/pneumoniamnist.npz``. The MD5 is still checked against the
official value, so a mirror cannot serve a different file unnoticed. A folder served with
``python -m http.server`` is a valid mirror.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from .progress import tqdm

from . import __version__

MIRROR_ENV = "FTLAB_MEDMNIST_MIRROR"
CHUNK = 1 << 20  # bytes read or hashed at a time

__all__ = ["DownloadError", "MIRROR_ENV", "md5sum", "mirror_url", "download"]


class DownloadError(RuntimeError):
    """A download failed; the message says what went wrong and names the URL."""


def md5sum(path: str | Path, chunk_size: int = CHUNK) -> str:
    """The MD5 hex digest of the file at ``path``, read in chunks of ``chunk_size`` bytes."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def mirror_url(url: str, mirror: str | None = None) -> str:
    """``url`` re-pointed at ``mirror`` (default: ``$FTLAB_MEDMNIST_MIRROR``); unchanged if none is set."""
    base = (mirror if mirror is not None else os.environ.get(MIRROR_ENV, "")).strip()
    if not base:
        return url
    name = Path(urllib.parse.urlsplit(url).path).name
    return f"{base.rstrip('/')}/{urllib.parse.quote(name)}"


def _content_length(response: http.client.HTTPResponse) -> int | None:
    """The announced body size in bytes, or None when the server does not say."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _stream(response: http.client.HTTPResponse, out: BinaryIO, total: int | None, label: str,
            progress: bool) -> tuple[int, str]:
    """Copy the response body into ``out``; return (bytes received, MD5 of those bytes)."""
    digest, received = hashlib.md5(), 0
    with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
              disable=not progress, leave=False) as bar:
        while block := response.read(CHUNK):
            out.write(block)
            digest.update(block)
            received += len(block)
            bar.update(len(block))
    return received, digest.hexdigest()


def _fetch_into(url: str, tmp: Path, label: str, progress: bool, timeout: float,
                ) -> tuple[int, int | None, str]:
    """Download ``url`` into ``tmp``; return (bytes received, Content-Length or None, MD5)."""
    request = urllib.request.Request(url, headers={"User-Agent": f"ftlab/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(tmp, "wb") as out:
        total = _content_length(response)
        received, digest = _stream(response, out, total, label, progress)
    return received, total, digest


def _explain(error: BaseException, url: str, timeout: float) -> str:
    """A plain-language sentence for a network error raised while downloading ``url``."""
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered HTTP {error.code} ({error.reason}) for {url}"
    if isinstance(error, TimeoutError) or "timed out" in str(error):
        return f"no data arrived for {timeout} s from {url} (timed out)"
    if isinstance(error, http.client.IncompleteRead):
        return f"the connection was cut mid-file while downloading {url}"
    if isinstance(error, urllib.error.URLError):
        return f"could not reach {url} ({error.reason}); check the internet connection or the mirror"
    return f"{type(error).__name__}: {error} while downloading {url}"


def _temp_file(dest: Path, url: str) -> Path:
    """A new, uniquely named ``.part`` file next to ``dest`` (its folder is created if needed)."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as error:
        raise DownloadError(f"Cannot download {url}: cannot write to {dest.parent} ({error}).") from error
    os.close(handle)
    return Path(name)


def _move_into_place(tmp: Path, dest: Path, url: str) -> None:
    """Atomically rename the verified ``tmp`` to ``dest``; DownloadError if the system refuses."""
    try:
        os.replace(tmp, dest)
    except OSError as error:
        raise DownloadError(f"Downloaded and verified {url}, but could not move it to {dest} ({error}).") \
            from error


def download(url: str, dest: str | Path, md5: str | None, progress: bool = True, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying size and (when given) MD5; return ``dest``.

    Raises :class:`DownloadError` on any failure; the destination is then untouched and no
    temporary file is left behind (also on KeyboardInterrupt).
    """
    dest = Path(dest)
    tmp = _temp_file(dest, url)
    try:
        try:
            received, total, got = _fetch_into(url, tmp, dest.name, progress, timeout)
        except (OSError, ValueError, http.client.HTTPException) as error:  # ValueError: a malformed URL
            raise DownloadError(f"Download failed: {_explain(error, url, timeout)}.") from error
        if total is not None and received != total:
            raise DownloadError(f"Download failed: the connection was cut mid-file: got {received} of "
                                f"{total} bytes from {url}. Try again.")
        if md5 and got != md5.strip().lower():
            raise DownloadError(f"Download failed: MD5 mismatch for {url}: expected {md5.strip().lower()}, "
                                f"got {got}. The file is corrupt or not the official release; it was "
                                f"not kept.")
        _move_into_place(tmp, dest, url)
        return dest
    finally:
        tmp.unlink(missing_ok=True)
