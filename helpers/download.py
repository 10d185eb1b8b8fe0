"""Verified, atomic downloads, through pooch.

`pooch <https://www.fatiando.org/pooch/>`_ (the downloader of scikit-image, MetPy and many scientific packages)
does the bookkeeping: a *registry* maps each file name to its URL and hash; :func:`fetch` finds the file in
one cache folder, or downloads it into a temporary file next to it, checks the hash, and only then moves it into
place, retrying a failed attempt (``retries`` times, waiting 1 s, 2 s...). Whatever goes wrong (HTTP error,
timeout, a connection cut mid-file, an MD5 mismatch, Ctrl-C) the temporary file is removed and the destination is
left as it was, so a half-written file can never be mistaken for a good one.

What this module adds is the downloader pooch calls (:class:`_Downloader`, pooch's documented extension point):
it streams through ``tqdm.auto`` (a widget bar in JupyterLab, a text bar in a terminal), checks that every byte
announced by ``Content-Length`` arrived, does not retry what a retry cannot fix (an HTTP 4xx answer, a
malformed URL), and turns each failure into one plain sentence (:class:`DownloadError`) that names the URL.

For MedMNIST the registry is built from the ``medmnist`` package's official metadata (file name, URL, MD5 of
every set and size; :func:`helpers.loading.medmnist_registry`) and the cache folder is the project's ``data/``.

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
import logging
import os
import shutil
import tempfile
import urllib.parse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

import pooch
import requests

from .progress import tqdm

from . import __version__

MIRROR_ENV = "FTLAB_MEDMNIST_MIRROR"
CHUNK = 1 << 20  # bytes read or hashed at a time
RETRIES = 2      # a failed download is tried again this many times (pooch waits 1 s, then 2 s)

__all__ = ["DownloadError", "MIRROR_ENV", "RETRIES", "md5sum", "mirror_url", "fetch", "download"]


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


def _content_length(response: requests.Response) -> int | None:
    """The announced body size in bytes, or None when the server does not say."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Downloader:
    """The downloader pooch calls for each attempt: one HTTP GET streamed into pooch's temporary file through a
    progress bar, remembering what arrived (bytes, Content-Length, MD5) so a failure can be explained."""

    def __init__(self, label: str, progress: bool, timeout: float) -> None:
        self.label, self.progress, self.timeout = label, progress, timeout
        self.received, self.total, self.md5 = 0, None, None

    def __call__(self, url: str, output_file: str, _pooch: pooch.Pooch, check_only: bool = False) -> None:
        self.received, self.total, self.md5 = 0, None, None
        try:
            response = requests.get(url, stream=True, timeout=self.timeout,
                                    headers={"User-Agent": f"ftlab/{__version__}"})
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL) as error:   # no retry can fix these
            raise DownloadError(f"Download failed: {url} is not a valid http(s) URL ({error}).") from error
        with response:
            if 400 <= response.status_code < 500:   # the file is not there (or not for us): not retried
                raise DownloadError(f"Download failed: {_http_error(response, url)}.")
            response.raise_for_status()             # 5xx: the server's trouble, retried by pooch
            self.total = _content_length(response)
            digest = hashlib.md5()
            with open(output_file, "wb") as out, \
                    tqdm(total=self.total, unit="B", unit_scale=True, unit_divisor=1024, desc=self.label,
                         disable=not self.progress, leave=False) as bar:
                for block in response.iter_content(CHUNK):
                    out.write(block)
                    digest.update(block)
                    self.received += len(block)
                    bar.update(len(block))
        self.md5 = digest.hexdigest()
        if self.total is not None and self.received != self.total:   # urllib3 < 2 does not notice
            raise requests.exceptions.ChunkedEncodingError(f"got {self.received} of {self.total} bytes")


def _http_error(response: requests.Response, url: str) -> str:
    return f"the server answered HTTP {response.status_code} ({response.reason}) for {url}"


def _explain(error: BaseException, got: _Downloader, url: str, expected_md5: str | None) -> str:
    """A plain-language sentence for the last failed attempt at ``url``."""
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in str(error):
        return f"no data arrived for {got.timeout} s from {url} (timed out)"
    if got.total is not None and got.received < got.total:
        return (f"the connection was cut mid-file: got {got.received} of {got.total} bytes from {url}. "
                f"Try again")
    if isinstance(error, ValueError) and expected_md5 and got.md5:   # pooch's hash check
        return (f"MD5 mismatch for {url}: expected {expected_md5}, got {got.md5}. The file is corrupt or not the "
                f"official release; it was not kept")
    if isinstance(error, requests.exceptions.HTTPError) and error.response is not None:
        return _http_error(error.response, url)
    if isinstance(error, requests.exceptions.ConnectionError):
        reason = error.args[0] if error.args else error
        reason = getattr(reason, "reason", reason)
        return f"could not reach {url} ({reason}); check the internet connection or the mirror"
    return f"{type(error).__name__}: {error} while downloading {url}"


@contextmanager
def _pooch_log(quiet: bool) -> Iterator[None]:
    """Pooch's own line ("Downloading file ... to ...") only when a progress bar is shown too."""
    logger = pooch.get_logger()
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch(name: str, folder: str | Path, registry: Mapping[str, tuple[str, str | None]], progress: bool = True,
          timeout: float = 60, retries: int = RETRIES) -> Path:
    """The path of ``folder/name``, downloaded from its URL in ``registry`` (``{file name: (url, md5 or None)}``)
    unless a copy with that MD5 is already there (any copy, when the MD5 is None).

    ``timeout``: seconds without data before an attempt is given up. Raises :class:`DownloadError` on any
    failure; the destination is then untouched and no temporary file is left behind (also on KeyboardInterrupt).
    """
    url, md5 = registry[name]
    md5 = md5.strip().lower() if md5 else None
    store = pooch.create(path=Path(folder), base_url="", registry={name: f"md5:{md5}" if md5 else None},
                         urls={name: url}, retry_if_failed=retries)
    got = _Downloader(name, progress, timeout)
    try:
        with _pooch_log(quiet=not progress):
            return Path(store.fetch(name, downloader=got))
    except DownloadError:
        raise
    except OSError as error:   # the folder cannot be created or written (requests' errors are OSErrors too)
        if isinstance(error, requests.exceptions.RequestException):
            raise DownloadError(f"Download failed: {_explain(error, got, url, md5)}.") from error
        raise DownloadError(f"Cannot download {url} into {folder} ({error}).") from error
    except (ValueError, requests.exceptions.RequestException) as error:
        raise DownloadError(f"Download failed: {_explain(error, got, url, md5)}.") from error


def download(url: str, dest: str | Path, md5: str | None, progress: bool = True, timeout: float = 60,
             retries: int = RETRIES) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying size and (when given) MD5; return ``dest``.

    With an MD5 this is :func:`fetch` with a one-file registry whose cache folder is ``dest``'s: a ``dest`` that
    already has the MD5 is returned as it is, one with another MD5 is replaced only by a verified download.
    Without one (a file whose publisher gives no hash, such as Kvasir-SEG's zip) pooch would keep any existing
    copy, so the file is always downloaded, into a new folder next to ``dest``, and then moved onto it.
    """
    dest = Path(dest)
    if md5:
        return fetch(dest.name, dest.parent, {dest.name: (url, md5)}, progress=progress, timeout=timeout,
                     retries=retries)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as error:
        raise DownloadError(f"Cannot download {url} into {dest.parent} ({error}).") from error
    try:
        os.replace(fetch(dest.name, staging, {dest.name: (url, None)}, progress=progress, timeout=timeout,
                         retries=retries), dest)
    except OSError as error:
        raise DownloadError(f"Downloaded {url}, but could not move it to {dest} ({error}).") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest
