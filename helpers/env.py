"""Device choice, seeding, the fixed CPU threads of a run and the one-line environment report every notebook prints."""
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
THREADS_ENV = "FTLAB_THREADS"
_state: dict = {"set": None}


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


def busy_elsewhere(interval: float = 0.2) -> float:
    """How many cores other processes keep busy, sampled over ``interval`` seconds: the machine's busy
    CPU time minus this process's own, per second of wall time. Used only to say how many *runs* may go in
    parallel (:func:`suggested_workers`), never how one run computes."""
    a = _cpu_sample()
    time.sleep(interval)
    b = _cpu_sample()
    return max(0.0, ((b[0] - a[0]) - (b[1] - a[1])) / max(b[2] - a[2], 1e-6))


def run_threads(profile: str | None = None) -> int:
    """The intra-op torch threads one run computes with: part of what defines a run, like its seed.

    ``FTLAB_THREADS`` (a whole number) wins; otherwise the profile's ``threads`` (1 in every profile). Never
    read from the machine's load: a different thread count sums in a different order, and SGD on a few
    images turns that rounding into a different model (0.70 against 0.80 test AUC for one scratch run at
    1 and 2 threads). The count is recorded in every result row and hashed into its identity; parallelism
    comes from running several runs at once (worker processes), which changes no result.
    """
    fixed = os.environ.get(THREADS_ENV, "").strip()
    if fixed:
        try:
            n = int(fixed)
        except ValueError:
            raise ValueError(f"{THREADS_ENV}={fixed!r} is not a number of threads; set it to an integer "
                             "such as 1 or 2, or unset it to use the profile's fixed count") from None
        if n < 1:
            raise ValueError(f"{THREADS_ENV}={fixed!r}: at least 1 thread is needed")
        return n
    return int(get_profile(profile).threads)


def use_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to ``n`` (default :func:`run_threads`) and return it: called when a run
    starts (:func:`seed_everything`), so every run computes with its own fixed count whatever ran before."""
    n = run_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"threads={n}: at least 1 thread is needed")
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    _state["set"] = n
    return n


def suggested_workers(threads: int | None = None) -> int:
    """How many runs may train at once on this machine: the free cores divided by the threads per run,
    at least 1. This may follow the load: it decides only how many runs go in parallel."""
    per_run = threads or run_threads()
    free = max(1.0, cores() - busy_elsewhere())
    return max(1, int(free // per_run))


def seed_everything(seed: int, threads: int | None = None) -> torch.Generator:
    """Fix what a run's arithmetic depends on: seed Python, NumPy and torch (all devices) and set the run's
    torch threads (:func:`use_threads`; default :func:`run_threads`); return a CPU generator for shuffling."""
    use_threads(threads)
    return seed_rngs(seed)


def seed_rngs(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices), leaving the thread count alone; return a CPU generator."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def environment_report(device: torch.device | None = None, profile: str | None = None) -> str:
    """One line: versions, device, threads, profile; plus a cost sentence when no GPU is present."""
    device = device or pick_device()
    prof = get_profile(profile)
    threads = use_threads(run_threads(profile))
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    line = (f"ftlab {__version__} | Python {platform.python_version()} | torch {torch.__version__} | "
            f"device {gpu} | threads {threads} per run (fixed: same seed, same numbers) | profile {prof.name}")
    if device.type == "cpu":
        line += f"\nNo GPU found: running on the CPU. {prof.cpu_cost}"
    return line
