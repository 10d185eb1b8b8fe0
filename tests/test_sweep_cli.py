"""``python -m helpers.sweep``, run as a user would: plan, run on a local process pool, resume, summary."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.store import ResultsStore

from test_experiments import DATA_DIR, needs_data

REPO = Path(__file__).resolve().parents[1]
GRID = ["--profile", "fast", "--datasets", "pneumoniamnist", "--strategies", "scratch", "last",
        "--fractions", "0.5", "1.0", "--seeds", "0", "--steps", "4", "--quiet"]


def sweep(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FTLAB_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "helpers.sweep", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


@needs_data
@pytest.mark.slow   # a whole sweep through the command line, with a resume
def test_plan_run_resume_and_summary(tmp_path):
    store = tmp_path / "store"
    planned = sweep("plan", "--store", str(store), *GRID)
    assert planned.returncode == 0, planned.stderr
    assert "4 runs in the grid, 8 rate-tuning runs" in planned.stdout and "s per SGD step" in planned.stdout

    ran = sweep("run", "--store", str(store), *GRID, "--executor", "local", "--workers", "2", "--no-probe")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "finished 4 of 4 grid runs" in ran.stdout and "Fine-tuning chosen on validation" in ran.stdout
    records = ResultsStore(store).done()
    assert len(records) >= 8          # 8 tuning runs, of which the chosen ones are grid runs too

    again = sweep("plan", "--store", str(store), *GRID, "--no-probe")
    assert "0 runs to go" in again.stdout
    resumed = sweep("run", "--store", str(store), *GRID, "--executor", "none", "--no-probe")
    assert resumed.returncode == 0 and ResultsStore(store).done() == records   # nothing run twice

    summary = sweep("summary", "--store", str(store), *GRID)
    assert summary.returncode == 0 and "== pneumoniamnist" in summary.stdout


def test_bad_executor_is_refused_clearly(tmp_path):
    out = sweep("run", "--store", str(tmp_path / "s"), *GRID, "--executor", "kubernetes", "--no-probe")
    assert out.returncode != 0 and "dask://HOST:PORT" in out.stdout + out.stderr
