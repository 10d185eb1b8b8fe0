"""Device choice, seeding, the CPU thread policy and the one-line environment report every notebook prints."""
from __future__ import annotations

import os
import platform
import random
import time

import numpy as np
import psutil
import torch

from . import __version__
from .profiles import get_profile


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple MPS, then CPU; ``FTLAB_DEVICE`` or ``prefer`` overrides."""
    choice = prefer or os.environ.get("FTLAB_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# ----------------------------------------------------------------------------- CPU threads
_TORCH_DEFAULT = torch.get_num_threads()      # torch's own choice (physical cores), before anyone changes it
_policy: dict = {"set": None, "at": -1e9, "reason": "torch's default", "sample": None}
RESAMPLE_S = 5.0
"""Seconds a thread decision is kept; after that the next training check looks at the machine again."""


def cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it, else all)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_sample() -> tuple[float, float, float]:
    """(the machine's busy CPU seconds, this process's CPU seconds, wall seconds), via psutil (Linux, macOS,
    Windows alike)."""
    t, c = psutil.cpu_times(), psutil.Process().cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0), c.user + c.system, time.perf_counter()


def _busy(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / max(b[2] - a[2], 1e-6))


def busy_elsewhere(interval: float = 0.2) -> float:
    """How many cores other processes keep busy, sampled over ``interval`` seconds: the machine's busy
    CPU time minus this process's own, per second of wall time."""
    first = _cpu_sample()
    time.sleep(interval)
    return _busy(first, _cpu_sample())


def _busy_since_last_look(min_wall: float = 1.0) -> float | None:
    """Cores other processes kept busy since the previous look (no waiting: the time in between is the
    sample); None on the first look or when less than ``min_wall`` seconds have passed."""
    now, before = _cpu_sample(), _policy["sample"]
    if before is not None and now[2] - before[2] < min_wall:
        return None
    _policy["sample"] = now
    return None if before is None else _busy(before, now)


def thread_policy(busy: float | None = None) -> tuple[int, str]:
    """The torch thread count for the next piece of CPU work, and why.

    ``FTLAB_THREADS`` (a number) wins. Otherwise: the cores that other processes leave free, rounded, at
    least 1 and at most torch's default. On a 2-core machine with one core busy, two threads took twice as
    long as one, and on an idle one, one thread took a third longer than two (docs/benchmarks.md, "CPU
    threads under load"), so the count follows the machine, looked at again during training.
    """
    fixed = os.environ.get("FTLAB_THREADS", "").strip()
    if fixed:
        try:
            n = int(fixed)
        except ValueError:
            raise ValueError(f"FTLAB_THREADS={fixed!r} is not a number of threads; set it to an integer "
                             "such as 1 or 2, or unset it to let the suite choose from the free cores") from None
        if n < 1:
            raise ValueError(f"FTLAB_THREADS={fixed!r}: at least 1 thread is needed")
        return n, "FTLAB_THREADS"
    total = cores()
    busy = busy_elsewhere() if busy is None else busy
    n = int(min(max(1, round(total - busy)), _TORCH_DEFAULT, total))
    return n, f"{total} cores, {busy:.1f} busy with other work"


def configure_threads(force: bool = False) -> int:
    """Apply :func:`thread_policy` to torch: the one place the suite sets its CPU threads. Called by
    :func:`environment_report` (the first cell of every notebook), by ``train.fit`` when a run starts and
    at its validation checks (in a notebook or a worker process alike). A decision is kept for
    :data:`RESAMPLE_S` seconds; after that the machine's load since the last look decides again (no
    waiting; the very first look samples for 0.2 s). A thread count set by hand
    (``torch.set_num_threads``) after the suite's last choice is left alone."""
    current = torch.get_num_threads()
    chosen_by_hand = current != (_policy["set"] if _policy["set"] is not None else _TORCH_DEFAULT)
    if chosen_by_hand and not force and not os.environ.get("FTLAB_THREADS"):
        _policy["reason"] = "set by hand"
        return current
    if not force and _policy["set"] is not None and time.monotonic() - _policy["at"] < RESAMPLE_S:
        return current
    busy = _busy_since_last_look()
    if busy is None and _policy["set"] is not None and not force:
        return current           # too soon after the last look to say anything new
    if busy is None:
        busy = busy_elsewhere()
        _policy["sample"] = _cpu_sample()
    n, reason = thread_policy(busy)
    if n != current:
        torch.set_num_threads(n)
    _policy.update(set=n, at=time.monotonic(), reason=reason)
    return n


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices); return a CPU generator for shuffling."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def environment_report(device: torch.device | None = None, profile: str | None = None) -> str:
    """One line: versions, device, threads, profile; plus a cost sentence when no GPU is present."""
    device = device or pick_device()
    prof = get_profile(profile)
    threads = configure_threads()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    line = (f"ftlab {__version__} | Python {platform.python_version()} | torch {torch.__version__} | "
            f"device {gpu} | threads {threads} ({_policy['reason']}) | profile {prof.name}")
    if device.type == "cpu":
        line += f"\nNo GPU found: running on the CPU. {prof.cpu_cost}"
    return line
