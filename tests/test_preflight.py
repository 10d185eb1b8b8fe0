"""The data preflight: finds and MD5-checks what the notebooks need, downloads what is missing from a
real HTTP server on 127.0.0.1, and, offline with nothing on disk, stops within seconds with the file
name, its MD5, its URL and where to put it."""
from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import matrix_arrays, medmnist_file, write_matrix_npz
from test_loading import closed_port_url
from helpers import catalog, download, loading, preflight

REPO = Path(__file__).resolve().parents[1]


def shared_pneumonia() -> Path | None:
    """The official PneumoniaMNIST, if this machine has it."""
    return medmnist_file("pneumoniamnist")


def absent_medmnist_name(tmp_path: Path) -> str:
    """A 2D MedMNIST set of which no 28 px copy is on this machine (the preflight must report it)."""
    for name in catalog.medmnist_names():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(loading.DATA_DIR_ENV, str(tmp_path))
            if loading.locate_medmnist(name) is None:
                return name
    pytest.skip("every MedMNIST set is on this machine; nothing can be missing")


def test_offline_without_data_stops_within_seconds_and_says_what_to_do(tmp_path):
    name = absent_medmnist_name(tmp_path)
    entry = catalog.entry(name)
    env = {**os.environ, loading.DATA_DIR_ENV: str(tmp_path), download.MIRROR_ENV: closed_port_url(),
           "FTLAB_DATASET": name}
    start, started = time.monotonic(), time.time()
    done = subprocess.run([sys.executable, "-m", "helpers.preflight", "--profile", "fast"], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - start
    text = done.stdout + done.stderr
    assert done.returncode == 1, text
    assert elapsed < 60
    for needed in (entry.file_name, entry.md5, entry.url, "FTLAB_DATA_DIR", str(loading.data_dir()),
                   "Stopped before running any notebook"):
        assert needed in text, (needed, text)
    left = [p for p in loading.data_dir().glob("*") if p.name.startswith((entry.file_name, "tmp"))
            and p.stat().st_mtime >= started]   # the file, or pooch's temporary file
    assert not left, "a failed download leaves nothing behind"


def test_finds_and_checks_the_shared_file(monkeypatch):
    path = shared_pneumonia()
    if path is None:
        pytest.skip("the official PneumoniaMNIST is not on this machine")
    monkeypatch.setenv(loading.DATA_DIR_ENV, str(path.parent))
    [check] = preflight.run_checks("fast", ["pneumoniamnist"], download=False)
    assert check.ok and "MD5 checked" in check.message and str(path) in check.message


def test_downloads_a_missing_file_from_a_local_server(tmp_path, monkeypatch):
    path = shared_pneumonia()
    if path is None:
        pytest.skip("the official PneumoniaMNIST is not on this machine")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(loading, "project_root", lambda: root)
    monkeypatch.setenv(loading.DATA_DIR_ENV, str(tmp_path / "empty"))
    monkeypatch.setenv(download.MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}")
    try:
        [check] = preflight.run_checks("fast", ["pneumoniamnist"])
    finally:
        server.shutdown()
    assert check.ok, check.message
    assert (root / "data" / "pneumoniamnist.npz").is_file()


def test_own_data_is_loaded_as_the_notebooks_will(tmp_path):
    good = write_matrix_npz(tmp_path, "rgb-3-class")
    arrays = matrix_arrays("binary")
    arrays["train_labels"] = np.where(arrays["train_labels"] == 1, 7, arrays["train_labels"])
    np.savez(tmp_path / "gaps.npz", **arrays)
    checks = preflight.run_checks("fast", [str(tmp_path / "nowhere.npz"), str(good), str(tmp_path / "gaps.npz"),
                                           "pneumonia-mnist"])
    assert [c.ok for c in checks] == [False, True, False, False]
    assert "no such file or folder" in checks[0].message
    assert "multi-class, 3 classes" in checks[1].message
    assert "have no training image" in checks[2].message
    assert "Did you mean 'pneumoniamnist'" in checks[3].message
