"""Saved models: weights as a plain state dict, and a JSON model card beside them.

A saved model is two files with one stem: ``<stem>.pt`` (``torch.save`` of the state dict, read back
with ``torch.load(weights_only=True)``, so loading never runs code) and ``<stem>.json`` (the model
card: the run's config, data set and split sizes, BatchNorm mode, learning rate used, validation and
test metrics, library versions and the weights' SHA-256). :func:`helpers.experiments.run_one` and
:func:`helpers.experiments.run_ladder` write them when given ``save_dir``; notebook 03 reloads one with
:func:`load_model` and scores test images again.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from . import __version__
from .datasets import DataSet
from .models import build_model

CARD_VERSION = 1
# Result-row fields a card keeps (whatever of them the row has): the run's identity and its numbers.
ROW_FIELDS = ("config_hash", "strategy", "level", "level_index", "requested", "lr_used", "n_train", "n_val",
              "val_score", "val_metric", "val_loss", "best_step", "iterations", "collapsed", "diverged", "wall_s")


def _library_versions() -> dict[str, str]:
    """The versions that can change a saved model's outputs."""
    return {"ftlab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _plain(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars to Python numbers, NaN to None, tuples to lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def model_card(model: torch.nn.Module, data: DataSet, config: dict, row: dict) -> dict:
    """The card of one trained model: what it is, what it was trained and tested on, and how well it did.

    ``config`` is the run's settings (a RunConfig as a dict), ``row`` its result row
    (:func:`helpers.experiments.result_row`): the card keeps the row's ``test_*`` metrics (not the
    per-image scores) and the fields in :data:`ROW_FIELDS`.
    """
    metrics = {k: v for k, v in row.items() if k.startswith("test_") and k not in ("test_scores", "test_labels")}
    return _plain({
        "card_version": CARD_VERSION,
        "arch": getattr(model, "arch", type(model).__name__),
        "num_classes": int(data.num_classes),
        "class_names": list(data.class_names),
        "task": data.task,
        "image_size": int(getattr(model, "image_size", config.get("image_size", 0))),
        "dataset": {"name": data.name, "source": data.source, "licence": data.licence,
                    "n_train": len(data.train), "n_val": len(data.val), "n_test": len(data.test)},
        "bn_mode": row.get("bn_mode_used", config.get("bn_mode")),   # the mode used ("auto" resolved)
        "learning_rate": row.get("lr_used", config.get("lr")),
        "config": config,
        "run": {k: row[k] for k in ROW_FIELDS if k in row},
        "validation": {"auc": row.get("val_score"), "loss": row.get("val_loss"), "best_step": row.get("best_step")},
        "test": metrics,
        "versions": _library_versions(),
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })


def sha256(path: Path) -> str:
    """The SHA-256 of a file (the card records its weights' digest; loading checks it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_model(model: torch.nn.Module, card: dict, stem: str | Path) -> Path:
    """Write ``<stem>.pt`` (state dict) and ``<stem>.json`` (the card, with the weights' digest); returns the card path."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    weights = stem.with_suffix(".pt")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(state, weights)
    card = {**card, "weights_file": weights.name, "weights_sha256": sha256(weights)}
    card_path = stem.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return card_path


def read_card(path: str | Path) -> dict:
    """The model card at ``path`` (the ``.json`` file, or the ``.pt`` beside it)."""
    path = Path(path).with_suffix(".json")
    if not path.exists():
        raise FileNotFoundError(f"No model card at {path}: save a model with experiments.run_one(..., save_dir=...) "
                                "or modelcard.save_model first.")
    card = json.loads(path.read_text())
    if card.get("card_version") != CARD_VERSION:
        raise ValueError(f"{path} is a model card of version {card.get('card_version')}; this ftlab reads "
                         f"version {CARD_VERSION}.")
    return card


def load_model(path: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the network a card describes and load its saved weights; returns ``(model, card)``.

    The weights are read with ``weights_only=True`` (no code runs) after their SHA-256 is checked
    against the card. The model is returned in eval mode.
    """
    card = read_card(path)
    weights = Path(path).with_suffix(".pt")
    if sha256(weights) != card["weights_sha256"]:
        raise ValueError(f"{weights} does not match its model card (SHA-256 differs): the file was changed or "
                         "belongs to another model.")
    model = build_model(card["arch"], card["num_classes"], pretrained=False, image_size=card["image_size"], seed=0)
    model.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
    return model.to(device).eval(), card


def stem_for(save_dir: str | Path, row: dict) -> Path:
    """Where a run's model goes: ``<save_dir>/<dataset>_<arch>_<strategy>_<config hash>``."""
    name = f"{row.get('dataset', 'data')}_{row.get('arch', 'model')}_{row.get('strategy', 'run')}_{row['config_hash']}"
    return Path(save_dir) / name.replace("/", "-")
