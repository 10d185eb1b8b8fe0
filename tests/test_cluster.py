"""Sweeps beyond one process, for real: a spawned process pool, a Dask LocalCluster and submitit's local
executor each run a small grid of real (tiny) runs into one results store; one worker is killed with
SIGKILL mid-run and the sweep is resumed. Nothing may be lost or duplicated, every record must be whole.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from helpers.experiments import grid
from helpers.runner import local_pool, run_sweep
from helpers.store import ResultsStore

from test_experiments import ARCHS, DATA_DIR, TINY, needs_data

pytestmark = [needs_data, pytest.mark.slow]   # process pools, Dask and submitit with killed workers


def tiny_grid(seeds=(0, 1)):
    return grid(archs=ARCHS, strategies=("scratch", "last"), fractions=(0.5, 1.0), seeds=seeds, **TINY)


@pytest.fixture
def worker_env(monkeypatch):
    """Workers (new processes) find the data and use one torch thread each."""
    monkeypatch.setenv("FTLAB_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def assert_complete(folder: Path, configs) -> None:
    store = ResultsStore(folder)
    table = store.load()
    assert sorted(table["config_hash"]) == sorted(c.key() for c in configs), "every run exactly once"
    for _, row in table.iterrows():
        assert len(row["test_scores"]) == len(row["test_labels"]) == row["test_n"] and 0 <= row["test_auc"] <= 1


def kill_when(condition, pid_of, timeout: float = 240.0) -> threading.Thread:
    """A thread that SIGKILLs ``pid_of()`` as soon as ``condition()`` holds; records whether it did."""
    def watch():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                pid = pid_of()
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    thread.killed = pid
                    return
            time.sleep(0.05)
    thread = threading.Thread(target=watch, daemon=True)
    thread.killed = None
    thread.start()
    return thread


def test_spawned_local_pool_stores_every_run(tmp_path, worker_env):
    configs = tiny_grid(seeds=(0,))
    with local_pool(2) as pool:
        table = run_sweep(configs, tmp_path / "store", executor=pool, progress=False)
    assert len(table) == len(configs)
    assert_complete(tmp_path / "store", configs)


def test_dask_local_cluster_survives_a_killed_worker(tmp_path, worker_env):
    distributed = pytest.importorskip("distributed")
    configs = tiny_grid()
    folder = tmp_path / "store"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        killer = kill_when(lambda: len(ResultsStore(folder).done()) >= 1, lambda: pids[0])
        try:
            run_sweep(configs, folder, executor=client.get_executor(), progress=False)
        except RuntimeError:
            pass   # the killed worker's run may be reported as failed; the resume below completes it
        killer.join(timeout=1)
        assert killer.killed, "no worker was killed: the test would prove nothing"
        done_before = ResultsStore(folder).done()
        run_sweep(configs, folder, executor=client.get_executor(), progress=False)   # resume
    assert done_before <= ResultsStore(folder).done()
    assert_complete(folder, configs)


def test_submitit_local_executor_resumes_after_a_killed_job(tmp_path, worker_env):
    submitit = pytest.importorskip("submitit")
    psutil = pytest.importorskip("psutil")
    configs = tiny_grid(seeds=(0,))
    folder = tmp_path / "store"
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="local")
    executor.update_parameters(timeout_min=20, cpus_per_task=1, gpus_per_node=0)

    def a_job_pid():
        jobs = [p for p in psutil.Process().children(recursive=True) if "submitit" in " ".join(p.cmdline())]
        return jobs[0].pid if jobs else None

    killer = kill_when(lambda: a_job_pid() is not None, a_job_pid)
    with pytest.raises(RuntimeError, match="run\\(s\\) failed"):
        run_sweep(configs, folder, executor=executor, progress=False)
    killer.join(timeout=1)
    assert killer.killed
    left = len(configs) - len(ResultsStore(folder).done())
    assert left >= 1, "the killed job's run should be missing"
    run_sweep(configs, folder, executor=executor, progress=False)          # resume: only what is missing
    assert_complete(folder, configs)
