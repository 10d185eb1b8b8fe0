"""helpers.download (pooch with our downloader), for real, against a small HTTP server on 127.0.0.1 started by the
tests. Failures that pooch would retry are tested with ``retries=0`` (each retry waits 1 s, 2 s...); the retry
itself has its own test."""
from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import medmnist_file
from helpers import catalog, download, loading
from helpers.download import DownloadError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB: several read chunks
PAYLOAD_MD5 = hashlib.md5(PAYLOAD).hexdigest()


def shared_pneumoniamnist() -> Path | None:
    """The official PneumoniaMNIST, if this machine has it."""
    return medmnist_file("pneumoniamnist")


class Server:
    """A threaded HTTP server on 127.0.0.1 whose routes say what each path answers."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}  # path -> (behaviour, body)
        self.hits: list[str] = []
        self.release = threading.Event()  # lets a stalled handler finish at teardown
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.hits.append(path)
                behaviour, body = server.routes.get(path, ("missing", b""))
                if behaviour == "cut-once":   # cut the first time, whole the next
                    server.routes[path] = ("ok", body)
                    behaviour = "cut"
                if behaviour == "missing":
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                announced = len(body) + 100_000 if behaviour == "cut" else len(body)
                self.send_header("Content-Length", str(announced))
                self.end_headers()
                if behaviour == "stall":
                    server.release.wait(10)
                    return
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True  # "cut": close before the announced length

        return Handler


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def closed_port_url(path: str = "/file.bin") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def leftovers(folder: Path, *keep: str) -> list[str]:
    """What is in ``folder`` besides the files named in ``keep``: a temporary file a download left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_md5sum_reads_in_chunks(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    assert download.md5sum(path) == PAYLOAD_MD5
    assert download.md5sum(path, chunk_size=1000) == PAYLOAD_MD5


def test_good_file_lands_in_place(server, tmp_path):
    server.routes["/good.bin"] = ("ok", PAYLOAD)
    dest = tmp_path / "new" / "folder" / "good.bin"
    got = download.download(server.url("/good.bin"), dest, PAYLOAD_MD5, progress=False)
    assert got == dest and dest.read_bytes() == PAYLOAD
    assert leftovers(dest.parent, "good.bin") == []
    download.download(server.url("/good.bin"), dest, PAYLOAD_MD5, progress=False)
    assert len(server.hits) == 1, "a file that has its MD5 already is not downloaded again"


def test_progress_bar_and_no_md5(server, tmp_path):
    server.routes["/good.bin"] = ("ok", PAYLOAD)
    dest = tmp_path / "good.bin"
    download.download(server.url("/good.bin"), dest, None, progress=True)
    assert dest.read_bytes() == PAYLOAD


def test_md5_mismatch_keeps_nothing_and_leaves_dest_untouched(server, tmp_path):
    corrupt = bytearray(PAYLOAD)
    corrupt[1000] ^= 0xFF
    server.routes["/bad.bin"] = ("ok", bytes(corrupt))
    dest = tmp_path / "bad.bin"
    with pytest.raises(DownloadError) as err:
        download.download(server.url("/bad.bin"), dest, PAYLOAD_MD5, progress=False, retries=0)
    text = str(err.value)
    assert "MD5 mismatch" in text and PAYLOAD_MD5 in text and hashlib.md5(corrupt).hexdigest() in text
    assert server.url("/bad.bin") in text
    assert not dest.exists() and leftovers(tmp_path) == []

    dest.write_bytes(b"the user's old file")
    with pytest.raises(DownloadError):
        download.download(server.url("/bad.bin"), dest, PAYLOAD_MD5, progress=False, retries=0)
    assert dest.read_bytes() == b"the user's old file" and leftovers(tmp_path, "bad.bin") == []


def test_connection_cut_mid_file_is_detected(server, tmp_path):
    server.routes["/cut.bin"] = ("cut", PAYLOAD)
    dest = tmp_path / "cut.bin"
    with pytest.raises(DownloadError) as err:
        download.download(server.url("/cut.bin"), dest, None, progress=False, retries=0)
    assert "cut" in str(err.value) and f"{len(PAYLOAD)} of {len(PAYLOAD) + 100_000}" in str(err.value)
    assert server.url("/cut.bin") in str(err.value)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_http_404_is_not_retried(server, tmp_path):
    dest = tmp_path / "nothing.bin"
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        download.download(server.url("/nothing.bin"), dest, PAYLOAD_MD5, progress=False, retries=2)
    assert server.url("/nothing.bin") in str(err.value)
    assert server.hits == ["/nothing.bin"], "a missing file stays missing: asked once"
    assert not dest.exists() and leftovers(tmp_path) == []


def test_connection_refused(tmp_path):
    url = closed_port_url()
    with pytest.raises(DownloadError, match="could not reach") as err:
        download.download(url, tmp_path / "x.bin", None, progress=False, retries=0)
    assert url in str(err.value) and leftovers(tmp_path) == []


def test_timeout(server, tmp_path):
    server.routes["/slow.bin"] = ("stall", PAYLOAD)
    with pytest.raises(DownloadError, match="timed out"):
        download.download(server.url("/slow.bin"), tmp_path / "slow.bin", None, progress=False, timeout=0.5,
                          retries=0)
    assert not (tmp_path / "slow.bin").exists() and leftovers(tmp_path) == []


def test_keyboard_interrupt_removes_the_part_file(server, tmp_path, monkeypatch):
    server.routes["/good.bin"] = ("ok", PAYLOAD)

    class InterruptingBar:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            pass

        def update(self, n: int) -> None:
            assert leftovers(tmp_path), "the temporary file should exist mid-download"
            raise KeyboardInterrupt

    monkeypatch.setattr(download, "tqdm", InterruptingBar)
    with pytest.raises(KeyboardInterrupt):
        download.download(server.url("/good.bin"), tmp_path / "good.bin", PAYLOAD_MD5, progress=False)
    assert not (tmp_path / "good.bin").exists() and leftovers(tmp_path) == []


def test_a_cut_download_is_retried(server, tmp_path):
    server.routes["/flaky.bin"] = ("cut-once", PAYLOAD)
    dest = tmp_path / "flaky.bin"
    assert download.RETRIES >= 1
    assert download.download(server.url("/flaky.bin"), dest, PAYLOAD_MD5, progress=False) == dest
    assert server.hits == ["/flaky.bin", "/flaky.bin"] and dest.read_bytes() == PAYLOAD
    assert leftovers(tmp_path, "flaky.bin") == []


def test_medmnist_registry_holds_every_official_file_with_its_md5(monkeypatch):
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    registry = loading.medmnist_registry()
    entry = catalog.entry("pneumoniamnist", 224)
    assert registry[entry.file_name] == (entry.url, entry.md5)
    assert registry["pneumoniamnist.npz"] == (catalog.entry("pneumoniamnist").url, catalog.entry("pneumoniamnist").md5)
    assert len(registry) >= 4 * len(catalog.medmnist_names()) - 4   # every set at 28, 64, 128, 224 px
    assert all(len(md5) == 32 and int(md5, 16) >= 0 for _, md5 in registry.values())
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/med")
    assert loading.medmnist_registry()["pneumoniamnist.npz"][0] == "http://127.0.0.1:9/med/pneumoniamnist.npz"


def test_mirror_url(monkeypatch):
    official = catalog.entry("pneumoniamnist").url
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    assert download.mirror_url(official) == official
    monkeypatch.setenv(download.MIRROR_ENV, "http://127.0.0.1:9/med/")
    assert download.mirror_url(official) == "http://127.0.0.1:9/med/pneumoniamnist.npz"
    assert download.mirror_url(official, mirror="https://m.example/x") == "https://m.example/x/pneumoniamnist.npz"


def test_fetch_medmnist_end_to_end_through_a_mirror(server, tmp_path, monkeypatch):
    source = shared_pneumoniamnist()
    if source is None:
        pytest.skip("the shared PneumoniaMNIST test file (../shared/data/medmnist) is not on this machine")
    server.routes["/medmnist/pneumoniamnist.npz"] = ("ok", source.read_bytes())
    monkeypatch.setenv(download.MIRROR_ENV, server.url("/medmnist"))
    monkeypatch.delenv(loading.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(loading, "project_root", lambda: tmp_path)

    path = loading.fetch_medmnist("pneumoniamnist", progress=False)
    assert path == tmp_path / "data" / "pneumoniamnist.npz"
    assert download.md5sum(path) == catalog.entry("pneumoniamnist").md5  # the official MD5, unpatched
    assert server.hits == ["/medmnist/pneumoniamnist.npz"] and leftovers(path.parent, path.name) == []

    monkeypatch.setattr(loading, "md5sum", lambda p: pytest.fail("a fresh download must not be hashed again"))
    assert loading.fetch_medmnist("pneumoniamnist", progress=False) == path  # found, not downloaded again
    assert len(server.hits) == 1
    dataset = loading.load_medmnist("pneumoniamnist")
    assert (len(dataset.train), len(dataset.val), len(dataset.test)) == (4708, 524, 624)


def test_malformed_url_is_a_download_error(tmp_path):
    with pytest.raises(DownloadError, match="not a valid http") as err:
        download.download("127.0.0.1:8000/file.bin", tmp_path / "file.bin", None, progress=False, retries=2)
    assert "127.0.0.1:8000/file.bin" in str(err.value) and leftovers(tmp_path) == []


def test_a_folder_that_cannot_be_written_is_a_download_error(server, tmp_path):
    server.routes["/good.bin"] = ("ok", PAYLOAD)
    (tmp_path / "file").write_text("a file, not a folder")
    with pytest.raises(DownloadError, match="Cannot download"):
        download.download(server.url("/good.bin"), tmp_path / "file" / "good.bin", None, progress=False)
