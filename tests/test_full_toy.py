"""The ``full`` profile's code paths, end to end, before it meets a GPU: notebooks 02-04 and, in a test of its own
(so that the two spread over both workers of ``make test``), notebook 05, executed under
``full-toy``, a profile derived from ``full`` with only budget fields changed
(:data:`helpers.profiles.FULL_TOY_BUDGET`, printed by the test so a reader sees what is not covered).

What it exercises, and checks in the executed notebooks' outputs:
- the 224-px data file path: a MedMNIST+-layout ``pneumoniamnist_224.npz`` written here (real
  PneumoniaMNIST images brought to 224 px) and read through the loader's size check;
- 7 fractions x 6 seeds in the learning-curve sweep, with ``auto`` in it;
- rates tuned at every fraction whose runs hold enough validation images, each on a four-rate grid;
- the Wilcoxon branch of the paired test (six seeds: a Wilcoxon p at every size, beside the bootstrap);
- every level of the ladder in notebook 03 and the unabridged auto-depth walk;
- the polyp application at 96-px patches with three training fractions and six seeds.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import medmnist_file
from helpers import loading, profiles
from helpers.detection import data as polyp_data
from helpers.store import ResultsStore


REPO = Path(__file__).resolve().parents[1]
CLASSIFICATION = ("02_training_from_scratch", "03_layerwise_fine_tuning", "04_learning_curves")
DETECTION = ("05_polyp_detection",)   # a test of its own: the two spread over both workers of make test
SIZES = {"train": 500, "val": 40, "test": 40}   # images kept per split of the 224-px file
SOURCE = medmnist_file("pneumoniamnist")


def write_224_file(folder: Path) -> Path:
    """Real PneumoniaMNIST images resized to 224 px, in the MedMNIST+ layout: the first images of each class
    in each split, half of each class, so that even the smallest of the seven fractions keeps two training
    images of each class (the real file's 4,708 training images do that at its own class shares)."""
    return loading.upsample_medmnist(SOURCE, folder, SIZES, per_class=True)


def polyp_folder(tmp: Path) -> Path:
    """The folder notebook 05 would use here; a synthetic one (masks and sequences) where none is found."""
    try:
        return polyp_data.find_polyp_dataset()
    except FileNotFoundError:
        return polyp_data.make_synthetic_polyp_folder(tmp / "polyp", n_frames=60, n_sequences=6)


def run_full_toy(names: tuple[str, ...], tmp_path: Path, monkeypatch, capsys) -> Path:
    """Notebooks ``names`` executed in order under ``full-toy`` (papermill, one process each, kernels on IPC
    sockets); returns the profile's reports folder."""
    if any(name[:2] in ("02", "03", "04") for name in names):   # the classification notebooks read the 224-px file
        monkeypatch.setenv("FTLAB_DATASET", str(write_224_file(tmp_path)))
    reports = tmp_path / "reports"
    monkeypatch.setenv("FTLAB_PROFILE", "full-toy")
    monkeypatch.setenv("FTLAB_REPORTS_DIR", str(reports))
    monkeypatch.setenv("FTLAB_POLYP_DIR", str(polyp_folder(tmp_path)))
    monkeypatch.setenv("FTLAB_PROGRESS", "off")
    seconds = {}
    for name in names:   # each in its own process (papermill, its kernel on IPC sockets: helpers/kernels.py)
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "helpers.kernels", "--cwd", str(REPO / "notebooks"),
                              str(REPO / "notebooks" / f"{name}.ipynb"), str(tmp_path / f"{name}.ipynb"),
                              "--timeout", "1800"],
                             capture_output=True, text=True, timeout=3600, env=dict(os.environ), cwd=REPO)
        seconds[name] = time.perf_counter() - started
        assert run.returncode == 0, f"{name} failed under full-toy:\n{run.stderr[-4000:]}"
    with capsys.disabled():
        print("\nfull-toy notebook times (s):", {k: round(v) for k, v in seconds.items()},
              f"total {sum(seconds.values()):.0f} s")
    return reports / "_full-toy"


def test_full_toy_changes_budget_fields_only_and_says_which(capsys):
    full, toy = profiles.PROFILES["full"], profiles.PROFILES["full-toy"]
    parts = ("classification", "detection", "segmentation")
    changed = {("profile", k) for k in vars(full) if k not in parts and getattr(full, k) != getattr(toy, k)}
    changed |= {(p, k) for p in parts for k in vars(getattr(full, p))
                if getattr(getattr(full, p), k) != getattr(getattr(toy, p), k)}
    changed -= {("profile", "name"), ("profile", "cpu_cost")}
    listed = {(p, k) for p, fields in profiles.FULL_TOY_BUDGET.items() for k in fields}
    assert changed == listed, "full-toy changes budget fields only, all of them listed"
    with capsys.disabled():
        print("\nfull-toy changes, from full:", ", ".join(
            f"{p}.{k} {getattr(getattr(full, p) if p in parts else full, k)!r} -> "
            f"{getattr(getattr(toy, p) if p in parts else toy, k)!r}" for p, k in sorted(changed)))


@pytest.mark.slow   # notebooks 02-04 under full-toy: about 5 minutes on the 2-core machine
@pytest.mark.skipif(SOURCE is None, reason="the PneumoniaMNIST file (FTLAB_DATA_DIR) is needed to write the 224-px file")
def test_full_profile_code_paths_at_toy_scale(tmp_path, monkeypatch, capsys):
    full = profiles.PROFILES["full"]
    out = run_full_toy(CLASSIFICATION, tmp_path, monkeypatch, capsys)
    data_file = next(tmp_path.glob("*.npz"))
    # 04: the grid, the 224-px file, tuning at every fraction on four-rate grids, auto, Wilcoxon
    store = next(out.glob("04_sweep_*"))
    rows = ResultsStore(store).load()
    assert set(rows["data_size"]) == {224} and str(data_file) in set(rows["dataset"])
    assert sorted(set(rows["fraction"])) == sorted(full.classification.fractions)
    assert set(rows["seed"]) == set(full.classification.seeds)
    assert "auto" in set(rows["strategy"])
    rates = pd.read_csv(out / "04_learning_rates.csv")
    tuned = rates.groupby(["strategy", "fraction"])["lr"].nunique()
    assert (tuned == 4).all(), "every tuned (strategy, fraction) tried the four rates of its grid"
    tunable = {f for f in full.classification.fractions if analysis_tunable(rows, f)}
    assert set(rates["fraction"]) == tunable and len(tunable) >= 3, (set(rates["fraction"]), tunable)
    gap = pd.read_csv(out / "04_gap_to_scratch.csv")
    assert gap["wilcoxon_p"].between(0, 1).all(), "six paired seeds: the Wilcoxon test ran at every size"

    # 03: every level of the ladder
    ladder = pd.read_csv(out / "03_ladder_results.csv")
    assert ladder["strategy"].nunique() >= 10, "all levels of EfficientNet-Lite0's ladder and scratch"


@pytest.mark.slow   # notebook 05 under full-toy: about 3 minutes on the 2-core machine
def test_full_profile_detection_at_toy_scale(tmp_path, monkeypatch, capsys):
    full = profiles.PROFILES["full"]
    out = run_full_toy(DETECTION, tmp_path, monkeypatch, capsys)
    # 05: 96-px patches, three fractions, six seeds
    polyp = ResultsStore(out / "05_polyp_store").load()
    assert set(polyp["patch"]) == {96}
    assert sorted(set(polyp["fraction"])) == sorted(full.detection.fractions)
    assert set(polyp["seed"]) == set(full.detection.seeds)


def analysis_tunable(rows: pd.DataFrame, fraction: float) -> bool:
    """Whether the runs at ``fraction`` hold enough validation images to tune on (helpers.runner)."""
    from helpers.runner import MIN_TUNE_VAL
    at = rows[np.isclose(rows["fraction"], fraction)]
    return bool(len(at)) and int(at["n_val"].min()) >= MIN_TUNE_VAL
