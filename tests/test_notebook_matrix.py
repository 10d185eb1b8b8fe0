"""The notebooks under nbval (fast profile) on other kinds of data than PneumoniaMNIST: the real RetinaMNIST (RGB,
5 ordinal classes) and four sets built here (14-finding multi-label, 3-class RGB, a small 1:20 imbalanced binary
set, a folder of non-square RGB PNGs in 3 class folders). Each runs in a fresh pytest process with ``FTLAB_DATASET``
naming the set, exactly as a user would run ``FTLAB_DATASET=... make test``.

Every set runs notebooks 01 (loading, subsets, stratification) and 04 (the sweep and every analysis of it), where the
data's kind changes what the cells compute. Notebooks 02 and 03 (training from scratch, the ladder) run on the two
sets whose labels differ most from PneumoniaMNIST's, the multi-label set and RetinaMNIST; on the other three, the
same training and evaluation paths are checked per set by tests/test_matrix.py (fit, evaluate, a sweep), which saves
four notebook runs a set."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import medmnist_file, write_matrix_npz
from test_matrix import write_image_folder

pytestmark = pytest.mark.slow   # notebook runs on five more data sets, each in its own process

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(str(p) for p in (REPO / "notebooks").glob("0[1-4]_*.ipynb"))
DATA_NOTEBOOKS = [n for n in NOTEBOOKS if Path(n).name.startswith(("01_", "04_"))]


def run_notebooks(dataset: str, reports: Path, extra_env: dict[str, str] | None = None,
                  notebooks: list[str] = DATA_NOTEBOOKS) -> None:
    """nbval on ``notebooks`` (01 and 04; all four when asked) with ``FTLAB_DATASET=dataset``; fails with the tail of
    the output."""
    env = {**os.environ, "FTLAB_DATASET": dataset, "FTLAB_PROFILE": "fast", "FTLAB_REPORTS_DIR": str(reports),
           **(extra_env or {})}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *notebooks, "--nbval-lax", "--nbval-current-env",
                           "--nbval-cell-timeout=600", "-p", "no:cacheprovider", "-x"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"notebooks on {dataset}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"


@pytest.mark.parametrize("kind", ["multi-label-14", "rgb-3-class", "imbalanced-1-20"])
def test_notebooks_on_a_synthetic_set(kind, tmp_path):
    run_notebooks(str(write_matrix_npz(tmp_path, kind)), tmp_path / "reports",
                  notebooks=NOTEBOOKS if kind == "multi-label-14" else DATA_NOTEBOOKS)


def test_notebooks_on_a_folder_of_non_square_rgb_images(tmp_path):
    run_notebooks(str(write_image_folder(tmp_path / "my_images")), tmp_path / "reports")


def test_notebooks_on_retinamnist(tmp_path):
    path = medmnist_file("retinamnist")
    if path is None:
        pytest.skip("retinamnist.npz is not in $FTLAB_DATA_DIR, ../shared/data/medmnist or data/")
    run_notebooks("retinamnist", tmp_path / "reports", {"FTLAB_DATA_DIR": str(path.parent)}, notebooks=NOTEBOOKS)
