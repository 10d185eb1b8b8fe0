"""helpers.env's CPU threads: a run's count fixed by its configuration (never by the load), one switch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import env

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def restore_threads(monkeypatch):
    """torch's thread count restored afterwards; FTLAB_THREADS unset."""
    threads = torch.get_num_threads()
    monkeypatch.delenv("FTLAB_THREADS", raising=False)
    yield threads
    torch.set_num_threads(threads)


def test_a_runs_threads_come_from_its_profile_never_from_the_load(restore_threads, monkeypatch):
    from helpers import profiles
    assert all(p.threads == 1 for p in profiles.PROFILES.values())
    assert env.run_threads("classroom") == 1
    monkeypatch.setattr(env, "busy_elsewhere", lambda interval=0.2: pytest.fail("a run's threads read the load"))
    for _ in range(3):
        assert env.use_threads() == 1 and torch.get_num_threads() == 1
    torch.set_num_threads(2)                      # whatever ran before (a notebook cell, another library)
    env.seed_everything(0)
    assert torch.get_num_threads() == 1, "a run starts with its own thread count"
    env.seed_everything(0, threads=2)
    assert torch.get_num_threads() == 2


def test_the_variable_wins_and_bad_values_are_explained(restore_threads, monkeypatch):
    monkeypatch.setenv("FTLAB_THREADS", "3")
    assert env.run_threads() == 3
    monkeypatch.setenv("FTLAB_THREADS", "two")
    with pytest.raises(ValueError, match="FTLAB_THREADS='two' is not a number"):
        env.run_threads()
    monkeypatch.setenv("FTLAB_THREADS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        env.run_threads()


def test_the_thread_count_is_part_of_a_runs_identity(restore_threads, monkeypatch):
    from helpers.experiments import RunConfig
    from helpers.detection.experiment import PolypRunConfig
    one, two = RunConfig(), RunConfig(threads=2)
    assert one.threads == 1 and one.key() != two.key()
    assert one.train_config().threads == 1 and two.train_config().threads == 2
    monkeypatch.setenv("FTLAB_THREADS", "2")
    assert RunConfig().threads == 2 and RunConfig().key() == two.key()
    assert PolypRunConfig().threads == 2


def test_busy_elsewhere_sees_another_process_and_not_this_one():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 20: pass"])
    try:
        import time
        time.sleep(0.5)
        seen = env.busy_elsewhere(0.5)
    finally:
        spinner.kill()
    assert seen >= 0.5, f"a spinning process kept a core busy, but only {seen:.2f} cores were seen busy"


def test_the_load_may_set_only_how_many_runs_go_in_parallel(monkeypatch):
    monkeypatch.setattr(env, "cores", lambda: 8)
    monkeypatch.setattr(env, "busy_elsewhere", lambda interval=0.2: 3.0)
    assert env.suggested_workers(threads=1) == 5
    assert env.suggested_workers(threads=2) == 2
    monkeypatch.setattr(env, "busy_elsewhere", lambda interval=0.2: 9.0)
    assert env.suggested_workers(threads=1) == 1


def test_the_workers_variable_sets_the_sweeps_worker_processes(monkeypatch):
    from helpers import profiles
    monkeypatch.delenv("FTLAB_WORKERS", raising=False)
    assert profiles.get_profile("classroom").workers == profiles.PROFILES["classroom"].workers == 2
    monkeypatch.setenv("FTLAB_WORKERS", "8")
    assert profiles.get_profile("full-toy").workers == 8
    assert profiles.PROFILES["full-toy"].workers == 2                        # the profile itself is unchanged
    monkeypatch.setenv("FTLAB_WORKERS", "many")
    with pytest.raises(ValueError, match="FTLAB_WORKERS='many'"):
        profiles.get_profile("fast")
