"""The README's TensorBoard screenshot (docs/figures/tensorboard_hparams.png), made by hand, not by the tests.

    python -m benchmarks.tensorboard_screenshot [--store S] [--out docs/figures/tensorboard_hparams.png]

Without ``--store`` it first trains a small real sweep on PneumoniaMNIST (``FTLAB_DATA_DIR``): scratch, last and
all at two training fractions and three seeds, 20 SGD steps each at 32 px on at most 160 training images
(18 runs, about a minute on 2 cores; an illustration of the view, not a result). Then it exports the store
(``ftlab sweep tensorboard``), starts ``tensorboard --logdir OUT --host 127.0.0.1 --port 6006``, opens the
HParams view in Debian's chromium through Playwright, keeps the columns of :data:`SHOWN`, saves the screenshot
and stops the server.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from helpers import cli, tboard
from helpers.experiments import grid
from helpers.runner import run_sweep
from helpers.store import ResultsStore

CHROMIUM = os.environ.get("FTLAB_CHROMIUM", "/usr/bin/chromium")
SMALL = dict(max_train=160, max_eval=128, steps=20, patience=None, eval_every=4, decay_steps=4, batch_size=16,
             n_bootstrap=50, image_size=32)


def small_store(folder: Path) -> ResultsStore:
    store = ResultsStore(folder)
    run_sweep(grid(strategies=("scratch", "last", "all"), fractions=(0.25, 1.0), seeds=(0, 1, 2), **SMALL), store,
              progress=False)
    return store


def wait_for(url: str, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


SHOWN = ("requested", "fraction", "seed", "test_auc", "val_score", "wall_s")
"""The columns the screenshot shows (TensorBoard shows the first five hyperparameters and metrics by name)."""


def is_column(label: str) -> bool:
    """Whether a query-pane label names a hyperparameter or metric (not one of a hyperparameter's values)."""
    return label in tboard.HPARAMS or label in tboard.EXTRA_METRICS or label.startswith(("test_", "val_"))


def show_only(page, names) -> None:
    """Tick the hyperparameter and metric boxes of the query pane named in ``names``; untick the other columns'
    (a box under a hyperparameter, one of its values, filters runs: those stay ticked)."""
    boxes = page.locator("paper-checkbox")
    for i in range(boxes.count()):
        box = boxes.nth(i)
        label = box.inner_text().strip()
        if is_column(label) and (box.get_attribute("aria-checked") == "true") != (label in names):
            box.click()


def screenshot(logdir: Path, png: Path, port: int = 6006) -> None:
    from playwright.sync_api import sync_playwright   # deferred: the test extra's browser driver
    server = subprocess.Popen([str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(logdir),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        with sync_playwright() as api:
            browser = api.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 860})
                page.goto(f"http://127.0.0.1:{port}/#hparams", wait_until="networkidle")
                page.wait_for_timeout(4000)   # the table fills in after the plugin's requests
                show_only(page, SHOWN)
                page.wait_for_timeout(1500)
                page.locator("paper-checkbox").first.scroll_into_view_if_needed()
                page.screenshot(path=str(png))
            finally:
                browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tensorboard_screenshot", description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="an existing results store (default: train a small one)")
    parser.add_argument("--out", type=Path, default=Path("docs/figures/tensorboard_hparams.png"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or small_store(Path(tmp) / "store").folder
        logdir = Path(tmp) / "tb"
        if cli.main(["sweep", "tensorboard", str(store), str(logdir)]) != 0:
            return 1
        screenshot(logdir, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
