"""Where the project's files are: its root, the reports folder of a profile, and the notebooks' data set."""
from __future__ import annotations

import os
from pathlib import Path

from .profiles import profile_name

DATASET_ENV = "FTLAB_DATASET"
DEFAULT_DATASET = "pneumoniamnist"
ARCH_ENV = "FTLAB_ARCH"
DEFAULT_ARCH = "efficientnet_lite0"


def default_dataset() -> str:
    """The notebooks' data set: ``FTLAB_DATASET`` (a MedMNIST name, or the path of an ``.npz`` or image
    folder), else PneumoniaMNIST. ``FTLAB_DATASET=bloodmnist make reproduce`` runs every notebook on it."""
    return os.environ.get(DATASET_ENV, "").strip() or DEFAULT_DATASET


def default_arch() -> str:
    """The notebooks' network: ``FTLAB_ARCH`` (a built-in, ``efficientnet_lite0``, ``resnet18``, ``alexnet``, or any timm
    model as ``timm:<name>``), else EfficientNet-Lite0, whose ImageNet weights install with the suite. A timm
    network's weights come through timm, or offline from ``$FTLAB_WEIGHTS_DIR`` (:mod:`helpers.weights`)."""
    return os.environ.get(ARCH_ENV, "").strip() or DEFAULT_ARCH


def arch_label(arch: str) -> str:
    """A network's name as a file name takes it: ``timm:resnet50`` -> ``timm-resnet50`` (no colon, which some file
    systems refuse); a built-in's name as it is."""
    return arch.replace(":", "-").replace("/", "-")


def project_root() -> Path:
    """The checkout's root (where ``pyproject.toml`` is), else the current folder."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "pyproject.toml").exists():
            return folder
    return Path.cwd()


def reports_dir(profile: str | None = None) -> Path:
    """Where figures and tables go: ``reports/`` (``reports/_fast`` and ``reports/_full-toy`` for the two
    check profiles, whose outputs are no results)."""
    base = Path(os.environ.get("FTLAB_REPORTS_DIR", project_root() / "reports"))
    name = profile or profile_name()
    folder = base / f"_{name}" if name in ("fast", "full-toy") else base
    folder.mkdir(parents=True, exist_ok=True)
    return folder
