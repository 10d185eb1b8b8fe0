"""The lab as students meet it: JupyterLab in a real browser (Debian's chromium, driven by Playwright).

For notebooks 03 and 04 (fast profile): a JupyterLab server on 127.0.0.1 with a token and a free port
serves copies of the notebooks (the committed ones are never written to); the browser opens each,
runs all cells, saves it, and the test checks that every code cell ran and none shows an error, that
the explorer widget renders with exactly one figure, and that moving one of its controls redraws that
figure. Screenshots go to ``reports/browser/``. Server and browser are stopped however the test ends.

The rendered book (``make book``): built here in the fast profile from notebook 01 and the landing page
only (about half a minute; ``make book`` itself runs every notebook in the classroom profile), served over
HTTP; the test opens every page and checks that it returns, that every image on it loads, and that the
executed notebook's page shows at least one figure.

Runs wherever chromium is installed (``apt-get install chromium``); with ``CI`` set, a missing browser
fails the test instead of skipping it.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from helpers import kernels

pytestmark = pytest.mark.slow   # JupyterLab and a book in a real browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "reports" / "browser"
NOTEBOOKS = ("03_layerwise_fine_tuning.ipynb", "04_learning_curves.ipynb")
CHROMIUM = next((p for p in (os.environ.get("FTLAB_CHROMIUM", ""), shutil.which("chromium"), "/usr/bin/chromium")
                 if p and Path(p).is_file()), None)
BOOK_NOTEBOOK = "01_data_preparation"   # the one notebook the test's book executes
RUN_TIMEOUT_S = 900   # one notebook in the fast profile: 10-90 s alone, more on a shared CPU


def _unavailable(why: str) -> None:
    """Skip, or fail under CI (where the browser test must run)."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but the browser test cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def playwright_api():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e .[test])")
    if CHROMIUM is None:
        _unavailable("chromium not found (apt-get install -y chromium, or FTLAB_CHROMIUM=/path/to/chromium)")
    return sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(folder: Path) -> Path:
    """JupyterLab user settings for the test: every cell rendered (no windowing), no news pop-up."""
    notebook = folder / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True)
    (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    news = folder / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                       "checkForUpdates": False}))
    return folder


def wait_for_server(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {process.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    """Stop the server and its kernels (its own process group): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, playwright_api):
    """A JupyterLab server on copies of notebooks 03 and 04; yields (base URL, token, folder)."""
    home = tmp_path_factory.mktemp("lab")
    work = home / "notebooks"
    work.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / name, work / name)
    port, token = free_port(), os.urandom(16).hex()
    # kernels on IPC sockets named after their connection files (helpers/kernels.py), in a runtime folder with a
    # short path (a socket's path must stay under about 100 characters)
    runtime = Path(tempfile.mkdtemp(prefix="ftlab-rt-"))
    env = {**os.environ, "FTLAB_PROFILE": "fast", "FTLAB_REPORTS_DIR": str(home / "reports"),
           "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(runtime),
           "JUPYTERLAB_SETTINGS_DIR": str(lab_settings(home / "settings")),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    log = (home / "lab.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
         f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True",
         f"--KernelManager.transport={kernels.TRANSPORT}"],
        cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(f"{base}/api/status?token={token}", process)
        yield base, token, work
    finally:
        stop(process)
        log.close()
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(playwright_api):
    with playwright_api() as api:
        chromium = api.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


def run_all_cells(page, timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Run every cell through JupyterLab's own command, wait for the last one, then save the notebook."""
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.sessionContext"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=120_000)
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(
        """() => {
            const panel = window.jupyterapp.shell.currentWidget;
            const prompts = [...panel.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
            const kernel = panel.sessionContext.session.kernel;
            return prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p)) && kernel.status === 'idle';
        }""", timeout=timeout_s * 1000, polling=1000)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_timeout(1500)


def saved_problems(path: Path) -> list[str]:
    """Code cells of the saved notebook that did not run or show an error."""
    problems = []
    for i, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "code":
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i} did not run")
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                problems.append(f"cell {i}: {out['ename']}: {out['evalue']}")
    return problems


def explorer_figure(explorer) -> str:
    """The image the explorer shows now (its data URL); exactly one figure is expected."""
    images = explorer.locator(".widget-output img")
    images.first.wait_for(timeout=60_000)
    assert images.count() == 1, f"the explorer shows {images.count()} figures, expected one"
    return images.first.get_attribute("src")


def shoot(page, explorer, path: Path) -> None:
    """A screenshot of the window with the explorer's figure scrolled into view."""
    image = explorer.locator(".widget-output img").first
    image.scroll_into_view_if_needed()
    image.evaluate("i => i.decode()")   # wait until the figure is decoded and can be painted
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))


def move_control(page, explorer, name: str) -> None:
    """Pick another option in the explorer's dropdown whose label starts with ``name``."""
    control = explorer.locator(".widget-dropdown", has=page.locator(f"label:text-matches('^{name}')"))
    select = control.locator("select")
    options = select.locator("option").all_inner_texts()
    current = select.evaluate("s => s.options[s.selectedIndex].text")
    other = next(o for o in options if o != current)
    select.select_option(label=other)


@pytest.mark.parametrize("name, control", [(NOTEBOOKS[0], "level"), (NOTEBOOKS[1], "metric")])
def test_notebook_runs_in_jupyterlab_and_its_explorer_responds(lab, browser, name, control):
    base, token, work = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = name.removesuffix(".ipynb")
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    try:
        # ?reset: a fresh workspace, so only this notebook opens (no tab restored from the last test)
        page.goto(f"{base}/lab/tree/{name}?reset&token={token}", timeout=120_000)
        run_all_cells(page)
        assert page.evaluate("() => window.jupyterapp.shell.currentWidget.context.path") == name
        page.screenshot(path=str(SHOTS / f"{stem}_ran.png"))
        assert saved_problems(work / name) == []
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
        assert errors.count() == 0

        explorers = page.locator(".ftlab-explorer")
        assert explorers.count() == 1, "one explorer widget renders"
        explorer = explorers.first
        explorer.scroll_into_view_if_needed()
        cell = page.locator(".jp-CodeCell", has=explorer)
        assert cell.locator("img").count() == 1, "the explorer's figure appears once in its cell"
        before = explorer_figure(explorer)
        shoot(page, explorer, SHOTS / f"{stem}_explorer_before.png")

        move_control(page, explorer, control)
        page.wait_for_function(
            "([old]) => { const i = document.querySelector('.ftlab-explorer .widget-output img');"
            " return i && i.getAttribute('src') !== old; }", arg=[before], timeout=60_000)
        after = explorer_figure(explorer)
        shoot(page, explorer, SHOTS / f"{stem}_explorer_after.png")
        assert after != before, f"moving the {control} control must redraw the figure"
        assert cell.locator("img").count() == 1, "still one figure after the redraw"
    finally:
        page.screenshot(path=str(SHOTS / f"{stem}_last.png"))
        try:   # free the notebook's kernel now (the server's shutdown would end it later anyway)
            page.evaluate("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                          " && window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")
        finally:
            page.close()


@pytest.fixture(scope="module")
def book(tmp_path_factory, playwright_api) -> Path:
    """The book of ``book/`` with notebook 01 only, fast profile, built in a temporary folder: its HTML folder."""
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
    except ImportError:
        _unavailable("sphinx / myst-nb / sphinx-book-theme are not installed (pip install -e .[docs])")
    build = tmp_path_factory.mktemp("book")
    env = {**os.environ, "FTLAB_PROFILE": "fast", "FTLAB_BOOK_NOTEBOOKS": BOOK_NOTEBOOK,
           "FTLAB_BOOK_BUILD": str(build)}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(build / "doctrees"),
         str(ROOT / "book"), str(build / "html")],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, f"the book did not build:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return build / "html"


@contextlib.contextmanager
def serve(folder: Path):
    """A quiet HTTP server for ``folder`` on a free local port, in a thread; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_rendered_book_pages_and_figures_load(book, browser):
    pages = sorted(p.relative_to(book).as_posix() for p in book.rglob("*.html")
                   if not p.relative_to(book).parts[0].startswith("_"))   # _static/ holds theme fragments
    notebook_page = f"notebooks/{BOOK_NOTEBOOK}.html"
    assert "index.html" in pages and notebook_page in pages, pages
    SHOTS.mkdir(parents=True, exist_ok=True)
    with serve(book) as base:
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        missing = []   # the book's own files that did not load (MathJax from its CDN may fail offline)
        page.on("response", lambda r: missing.append(f"{r.status} {r.url}")
                if r.url.startswith(base) and r.status >= 400 else None)
        try:
            for name in pages:
                reply = page.goto(f"{base}/{name}", wait_until="load", timeout=60_000)
                assert reply is not None and reply.status == 200, f"{name}: {reply and reply.status}"
                broken = page.evaluate("() => [...document.images].filter(i => i.naturalWidth === 0)"
                                       ".map(i => i.getAttribute('src'))")
                assert broken == [], f"{name}: images that did not load: {broken}"
                if name == "index.html":
                    links = page.evaluate("() => [...document.querySelectorAll('a.reference.internal')]"
                                          ".map(a => a.getAttribute('href'))")
                    assert any(l.split("#")[0] == notebook_page for l in links), "the landing page links the notebook"
                    assert page.locator("img").count() > 0, "the README's figures appear on the landing page"
                    page.screenshot(path=str(SHOTS / "book_index.png"))
                if name == notebook_page:
                    figures = page.evaluate("() => [...document.querySelectorAll('.cell_output img')]"
                                            ".filter(i => i.naturalWidth > 0).length")
                    assert figures > 0, "the executed notebook's page shows its figures"
                    assert page.locator(".cell_output").count() > 0, "the notebook page holds outputs"
                    page.screenshot(path=str(SHOTS / "book_notebook.png"), full_page=False)
            assert missing == [], f"files of the book that did not load: {missing}"
        finally:
            page.close()
