"""helpers.env's CPU thread policy: threads from the free cores, a hand-set count respected, one switch."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import env

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def fresh_policy(monkeypatch):
    """The policy as a fresh process sees it, torch's thread count restored afterwards."""
    threads = torch.get_num_threads()
    monkeypatch.delenv("FTLAB_THREADS", raising=False)
    monkeypatch.setattr(env, "_policy", {"set": None, "at": -1e9, "reason": "torch's default", "sample": None})
    monkeypatch.setattr(env, "_TORCH_DEFAULT", threads)
    yield threads
    torch.set_num_threads(threads)


def test_threads_follow_the_free_cores(monkeypatch):
    monkeypatch.delenv("FTLAB_THREADS", raising=False)
    monkeypatch.setattr(env, "cores", lambda: 4)
    monkeypatch.setattr(env, "_TORCH_DEFAULT", 4)
    assert env.thread_policy(busy=0.1)[0] == 4          # idle: every core
    assert env.thread_policy(busy=1.0)[0] == 3          # one core busy: the other three
    assert env.thread_policy(busy=3.7)[0] == 1          # all busy: one thread, never zero
    assert env.thread_policy(busy=9.0)[0] == 1
    monkeypatch.setattr(env, "_TORCH_DEFAULT", 2)       # never more than torch's own choice
    assert env.thread_policy(busy=0.0)[0] == 2
    n, why = env.thread_policy(busy=1.0)
    assert n == 2 and "4 cores, 1.0 busy" in why


def test_the_variable_wins_and_bad_values_are_explained(monkeypatch):
    monkeypatch.setenv("FTLAB_THREADS", "3")
    assert env.thread_policy(busy=5.0) == (3, "FTLAB_THREADS")
    monkeypatch.setenv("FTLAB_THREADS", "two")
    with pytest.raises(ValueError, match="FTLAB_THREADS='two' is not a number"):
        env.thread_policy()
    monkeypatch.setenv("FTLAB_THREADS", "0")
    with pytest.raises(ValueError, match="at least 1"):
        env.thread_policy()


def test_configure_applies_keeps_and_respects_a_hand_set_count(fresh_policy, monkeypatch):
    monkeypatch.setattr(env, "thread_policy", lambda busy=None: (1, "stub: one free core"))
    assert env.configure_threads() == 1 and torch.get_num_threads() == 1
    # a hand-set count is left alone
    torch.set_num_threads(2)
    assert env.configure_threads() == 2 and env._policy["reason"] == "set by hand"
    assert env.configure_threads(force=True) == 1       # unless forced


def test_busy_elsewhere_sees_another_process_and_not_this_one():
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 20: pass"])
    try:
        import time
        time.sleep(0.5)
        seen = env.busy_elsewhere(0.5)
    finally:
        spinner.kill()
    assert seen >= 0.5, f"a spinning process kept a core busy, but only {seen:.2f} cores were seen busy"
    # this process spinning is not "elsewhere"
    import threading
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [None for _ in iter(lambda: stop.is_set(), True)])
    worker.start()
    try:
        mine = env.busy_elsewhere(0.5)
    finally:
        stop.set()
        worker.join()
    assert mine < seen


def test_a_later_look_needs_no_waiting_and_sees_the_load_since_the_last(fresh_policy, monkeypatch):
    samples = iter([(10.0, 1.0, 100.0), (13.0, 2.0, 102.0)])      # 3 busy CPU s, 1 of them ours, in 2 s
    monkeypatch.setattr(env, "_cpu_sample", lambda: next(samples))
    monkeypatch.setattr(env, "_policy", {"set": None, "at": -1e9, "reason": "", "sample": None})
    assert env._busy_since_last_look() is None                     # the first look has nothing to compare with
    assert env._busy_since_last_look() == pytest.approx(1.0)       # (3 - 1) CPU s over 2 s: one core elsewhere


def test_training_looks_again_at_its_checks(fresh_policy, monkeypatch, tiny_data):
    from helpers import train
    from helpers.models import build_model
    calls = []
    monkeypatch.setattr(train, "configure_threads", lambda force=False: calls.append(1) or torch.get_num_threads())
    train.fit(build_model("efficientnet_lite0", 2, image_size=32, seed=0), tiny_data, steps=6, eval_every=2,
              patience=None, batch_size=8, device="cpu", quiet=True, cache=False)
    assert len(calls) == 1 + 3, "once when the run starts and at each of its three validation checks"


def test_the_workers_variable_sets_the_sweeps_worker_processes(monkeypatch):
    from helpers import profiles
    monkeypatch.delenv("FTLAB_WORKERS", raising=False)
    assert profiles.params("classroom")["WORKERS"] == profiles.PROFILES["classroom"].workers
    monkeypatch.setenv("FTLAB_WORKERS", "8")
    assert profiles.params("full-toy")["WORKERS"] == 8
    assert profiles.params("full-toy", workers=3)["WORKERS"] == 3          # an explicit override wins
    monkeypatch.setenv("FTLAB_WORKERS", "many")
    with pytest.raises(ValueError, match="FTLAB_WORKERS='many'"):
        profiles.params("fast")
