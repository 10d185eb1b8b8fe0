"""Device choice, seeding and the one-line environment report every notebook prints."""
from __future__ import annotations

import os
import platform
import random

import numpy as np
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
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    line = (f"ftlab {__version__} | Python {platform.python_version()} | torch {torch.__version__} | "
            f"device {gpu} | threads {torch.get_num_threads()} | profile {prof.name}")
    if device.type == "cpu":
        line += f"\nNo GPU found: running on the CPU. {prof.cpu_cost}"
    return line
