"""Same seed, same numbers: a run's result does not depend on how busy the machine is, on what the process
did before, or on how many worker processes share a sweep.

The bug this guards against: the thread count used to follow the machine's load (two threads idle, one with
a core busy), and a scratch run at 12 labelled images moved from 0.70 to 0.80 test AUC with it. Here the
same configuration runs idle, beside a process that keeps one core busy, after a cell set torch to two
threads, and in a pool of two spawned workers; every test score must be bit-identical. A sweep run by one
process and by two workers gives identical rows and identical verdict tables.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
import pytest
import torch

from conftest import medmnist_file
from helpers import analysis, runner
from helpers.experiments import RunConfig, grid, run_one

DATA = medmnist_file("pneumoniamnist")
pytestmark = pytest.mark.skipif(DATA is None, reason="pneumoniamnist.npz not found: the runs train on it")
# classroom's 12 labelled images (1% of a 1,200-image budget), a shorter budget
SMALL = dict(dataset="pneumoniamnist", max_train=1200, max_eval=200, fraction=0.01, steps=24, patience=None,
             eval_every=8, decay_steps=8, batch_size=32, image_size=32, n_bootstrap=50, lr=0.03)
TIMING = ("wall_s", "finished_at", "seconds", "model_card")


@pytest.fixture(scope="module", autouse=True)
def data_dir():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FTLAB_DATA_DIR", str(DATA.parent))
        mp.delenv("FTLAB_THREADS", raising=False)
        threads = torch.get_num_threads()
        yield
        torch.set_num_threads(threads)


def _busy_core():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)
    return spinner


def _same_numbers(a: dict, b: dict) -> None:
    assert a["config_hash"] == b["config_hash"]
    assert a["test_scores"] == b["test_scores"], "test scores differ between two runs of one config"
    assert a["curve"] == b["curve"] and a["test_auc"] == b["test_auc"]


@pytest.mark.slow
def test_scratch_at_12_images_gives_the_same_numbers_idle_busy_and_in_workers(tmp_path):
    config = RunConfig.from_flat(strategy="scratch", seed=0, **SMALL)
    assert config.threads == 1
    idle = run_one(config)
    assert idle["n_train"] + idle["n_val"] == 12 and idle["threads"] == 1
    spinner = _busy_core()
    try:
        busy = run_one(config)
    finally:
        spinner.kill()
    _same_numbers(idle, busy)
    torch.set_num_threads(2)                    # a notebook cell (or another library) changed the count
    _same_numbers(idle, run_one(config))
    other = RunConfig.from_flat(strategy="scratch", seed=1, **SMALL)
    pool = runner.local_pool(2)
    try:
        table = runner.run_sweep([config, other], tmp_path / "store", executor=pool, progress=False)
    finally:
        pool.shutdown()
    _same_numbers(idle, table[table["config_hash"] == config.key()].iloc[0].to_dict())


@pytest.mark.slow
def test_a_sweep_by_one_process_and_by_two_workers_gives_the_same_tables(tmp_path):
    configs = grid(strategies=("scratch", "last"), fractions=(0.01, 0.05), seeds=(0, 1),
                   **{**{k: v for k, v in SMALL.items() if k not in ("fraction", "lr", "dataset")},
                      "steps": 12, "eval_every": 6, "decay_steps": 6})
    one = runner.run_sweep(configs, tmp_path / "one", progress=False)
    pool = runner.local_pool(2)
    spinner = _busy_core()
    try:
        two = runner.run_sweep(configs, tmp_path / "two", executor=pool, progress=False)
    finally:
        spinner.kill()
        pool.shutdown()
    keep = [c for c in one.columns if c not in TIMING]
    assert list(one["config_hash"]) == [c.key() for c in configs] == list(two["config_hash"])
    pd.testing.assert_frame_equal(one[keep].astype(str), two[keep].astype(str))
    gaps = [analysis.gap_to_scratch(t, n_boot=200) for t in (one, two)]
    pd.testing.assert_frame_equal(gaps[0], gaps[1])
    best = [analysis.best_per_fraction(t, n_boot=200) for t in (one, two)]
    pd.testing.assert_frame_equal(best[0], best[1])
