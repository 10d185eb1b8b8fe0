"""The networks: AlexNet with the paper's layer names, ResNet-18 and EfficientNet-Lite0.

Every model is an :class:`FTModel`: an ordered chain of named *stages* (the first one,
``input``, turns a float batch in [0, 1] of any size and 1 or 3 channels into the
network's normalised 3-channel input). Fine-tuning levels are "the top k stages", so
freezing, parameter groups and frozen-feature caching all work by stage name.
"""
from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import alexnet, resnet18

from .env import seed_rngs
from .weights import load_imagenet_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (0.5, 0.5, 0.5)   # EfficientNet-Lite expects RGB scaled to [-1, 1]
LITE_STD = (0.5, 0.5, 0.5)

ARCHS = ("alexnet", "resnet18", "efficientnet_lite0")
INITS = ("gaussian", "xavier", "he")
MIN_INPUT = {"alexnet": 63, "resnet18": 32, "efficientnet_lite0": 32}
PAPER_INPUT = {"alexnet": 227, "resnet18": 224, "efficientnet_lite0": 224}


class InputAdapter(nn.Module):
    """Grey-to-RGB copy (as the paper did), resize to the model's size, normalise; on the device.

    The output is channels-last: the layout the models are kept in (:func:`build_model`), which trains
    EfficientNet-Lite0 about 2x faster than the contiguous layout on a 2-core CPU (docs/benchmarks.md).
    """
    def __init__(self, size: int, mean: Iterable[float], std: Iterable[float]) -> None:
        super().__init__()
        self.size = int(size)
        self.register_buffer("mean", torch.tensor(list(mean)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std)).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.size, self.size):   # resized before grey becomes three channels
            shrinking = min(x.shape[-2:]) > self.size
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=shrinking)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        return x.contiguous(memory_format=torch.channels_last)   # the fast layout on CPUs and GPUs alike


class FTModel(nn.Module):
    """A network as an ordered chain of named stages; ``ladder`` lists them head first."""
    def __init__(self, arch: str, stages: "OrderedDict[str, nn.Module]", num_classes: int,
                 image_size: int, pretrained: bool) -> None:
        super().__init__()
        self.arch = arch
        self.stages = nn.ModuleDict(stages)
        self.num_classes = num_classes
        self.image_size = image_size
        self.pretrained = pretrained
        self.frozen: set[str] = set()
        self.bn_frozen = False   # BatchNorm layers of tuned stages in eval mode too (train's bn_mode="frozen")

    @property
    def stage_names(self) -> list[str]:
        """Stage names from input to head."""
        return list(self.stages.keys())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_from(0, x)

    def forward_from(self, start: int, x: torch.Tensor, stop: int | None = None) -> torch.Tensor:
        """Run stages ``start`` .. ``stop - 1`` (all remaining when ``stop`` is None)."""
        for module in list(self.stages.values())[start:stop]:
            x = module(x)
        return x

    def train(self, mode: bool = True) -> "FTModel":
        """Like ``nn.Module.train``, but frozen stages stay in eval mode (BatchNorm statistics kept).

        With ``bn_frozen`` every BatchNorm layer stays in eval mode (running statistics used and kept).
        """
        self.training = self.stages.training = mode
        for name, stage in self.stages.items():
            stage.train(mode and name not in self.frozen)   # one pass over the modules, not two
        if mode and self.bn_frozen:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


@contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode inside the block (dropout off, BatchNorm statistics used, not updated), back
    in its previous mode after it, whatever happens inside."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def _init_module(module: nn.Module, scheme: str, std: float = 0.01) -> None:
    """Initialise one conv/linear layer with the chosen scheme; biases to zero."""
    if not isinstance(module, (nn.Conv2d, nn.Linear)):
        return
    if scheme == "gaussian":
        nn.init.normal_(module.weight, 0.0, std)
    elif scheme == "xavier":
        nn.init.xavier_uniform_(module.weight)
    elif scheme == "he" and isinstance(module, nn.Conv2d):
        # Kaiming normal, fan-out counted per group (depthwise convolutions are not dense; timm's rule)
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, (2.0 / fan_out) ** 0.5)
    elif scheme == "he":
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
    else:
        raise ValueError(f"Unknown initialisation {scheme!r}; choose one of {INITS}.")
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def default_init(arch: str) -> str:
    """The scratch initialisation a fair comparison uses: the paper's Gaussian for AlexNet (no BatchNorm),
    He (Kaiming) for the BatchNorm networks.

    A Gaussian of std 0.01 in a deep BatchNorm network feeds every BatchNorm layer a signal of tiny
    variance: training normalises by batch statistics and learns, but the running statistics used at
    evaluation lag far behind, and the scores collapse to a constant.
    """
    return "gaussian" if arch == "alexnet" else "he"


def initialise(model: nn.Module, scheme: str = "gaussian", std: float = 0.01) -> nn.Module:
    """Re-initialise every conv and linear layer (scratch training). BatchNorm gets weight 1, bias 0.

    ``gaussian`` (the paper's choice for AlexNet): N(0, ``std``); ``xavier``: Glorot uniform;
    ``he``: Kaiming normal (fan-out per group for convolutions). The paper found no final gain from
    Xavier or He over Gaussian for AlexNet, which has no BatchNorm; see :func:`default_init`.
    """
    for module in model.modules():
        _init_module(module, scheme, std)
        if isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def _new_head(in_features: int, num_classes: int) -> nn.Linear:
    """A freshly initialised classifier layer (Gaussian, std 0.01, as Caffe's new fc8)."""
    head = nn.Linear(in_features, num_classes)
    _init_module(head, "gaussian", 0.01)
    return head


def _alexnet_stages(net: nn.Module, head: nn.Module) -> "OrderedDict[str, nn.Module]":
    f, c = net.features, net.classifier
    return OrderedDict(
        conv1=nn.Sequential(f[0], f[1], f[2]),
        conv2=nn.Sequential(f[3], f[4], f[5]),
        conv3=nn.Sequential(f[6], f[7]),
        conv4=nn.Sequential(f[8], f[9]),
        conv5=nn.Sequential(f[10], f[11], f[12], net.avgpool, nn.Flatten(1)),
        fc6=nn.Sequential(c[1], c[2]),                 # Caffe: fc6, relu6 (no dropout on pool5)
        fc7=nn.Sequential(c[3], c[4], c[5]),           # drop6, fc7, relu7
        fc8=nn.Sequential(nn.Dropout(0.5), head),      # drop7, fc8: dropout stays with the tuned head
    )


def _resnet_stages(net: nn.Module, head: nn.Module) -> "OrderedDict[str, nn.Module]":
    return OrderedDict(
        stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool),
        layer1=net.layer1, layer2=net.layer2, layer3=net.layer3,
        layer4=nn.Sequential(net.layer4, net.avgpool, nn.Flatten(1)),
        fc=head,
    )


def _lite_stages(net: nn.Module, head: nn.Module) -> "OrderedDict[str, nn.Module]":
    stages: "OrderedDict[str, nn.Module]" = OrderedDict(stem=nn.Sequential(net.conv_stem, net.bn1))
    for i, block in enumerate(net.blocks):
        stages[f"stage{i + 1}"] = block
    stages["conv_head"] = nn.Sequential(net.conv_head, net.bn2, net.global_pool)
    stages["classifier"] = nn.Sequential(nn.Dropout(0.2), head)
    return stages


def base_network(arch: str) -> nn.Module:
    """The untrained reference network (torchvision AlexNet / ResNet-18, timm tf_efficientnet_lite0)."""
    if arch == "alexnet":
        return alexnet(weights=None)
    if arch == "resnet18":
        return resnet18(weights=None)
    if arch == "efficientnet_lite0":
        import timm   # deferred: importing timm takes seconds, and only EfficientNet needs it
        return timm.create_model("tf_efficientnet_lite0", pretrained=False)
    raise ValueError(f"Unknown architecture {arch!r}; choose one of {ARCHS}.")


def _imagenet_head(net: nn.Module, arch: str) -> nn.Linear:
    return {"alexnet": lambda: net.classifier[6], "resnet18": lambda: net.fc,
            "efficientnet_lite0": lambda: net.classifier}[arch]()


def input_size(arch: str, requested: int) -> int:
    """The requested input size, raised to the architecture's minimum (AlexNet needs 63 px)."""
    return max(int(requested), MIN_INPUT[arch])


def build_model(arch: str = "efficientnet_lite0", num_classes: int = 2, pretrained: bool = False,
                image_size: int = 64, init: str | None = None, keep_imagenet_head: bool = False,
                weights_path: str | None = None, seed: int | None = None) -> FTModel:
    """Build an :class:`FTModel`.

    ``alexnet`` mirrors the Caffe model of the paper with the paper's stage names
    ``conv1``..``conv5``, ``fc6``, ``fc7``, ``fc8``. It maps onto torchvision's AlexNet, which
    differs from Caffe's: 64/192/384/256/256 filters instead of 96/256/384/384/256, no local
    response normalisation, no grouped convolutions, and an adaptive 6x6 average pool that lets
    it take inputs down to 63 px. ``resnet18`` stages: ``stem``, ``layer1``..``layer4``, ``fc``.
    ``efficientnet_lite0`` (timm's ``tf_efficientnet_lite0``) stages: ``stem``, ``stage1``..``stage7``,
    ``conv_head`` (1x1 conv to 1280), ``classifier``.

    ``pretrained`` loads real ImageNet weights (see :mod:`helpers.weights`); otherwise every layer
    is initialised with ``init`` (None: :func:`default_init`, Gaussian for AlexNet, He otherwise). The last layer is replaced by
    a new one with ``num_classes`` outputs unless ``keep_imagenet_head``. ``seed`` seeds every generator
    first, so the random initial weights are the same whatever ran before. Convolution weights are kept
    channels-last (the fastest layout measured on CPUs as on GPUs).
    """
    if arch not in ARCHS:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {ARCHS}.")
    if image_size < MIN_INPUT[arch]:
        raise ValueError(f"{arch} needs inputs of at least {MIN_INPUT[arch]} px; got image_size={image_size}.")
    if num_classes < 2 and not keep_imagenet_head:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
    if seed is not None:
        seed_rngs(seed)
    net = base_network(arch)
    if pretrained:
        load_imagenet_weights(net, arch, weights_path)
    else:
        initialise(net, init or default_init(arch))
    old = _imagenet_head(net, arch)
    head = old if keep_imagenet_head else _new_head(old.in_features, num_classes)
    stages = {"alexnet": _alexnet_stages, "resnet18": _resnet_stages,
              "efficientnet_lite0": _lite_stages}[arch](net, head)
    mean, std = (LITE_MEAN, LITE_STD) if arch == "efficientnet_lite0" else (IMAGENET_MEAN, IMAGENET_STD)
    stages = OrderedDict([("input", InputAdapter(image_size, mean, std)), *stages.items()])
    model = FTModel(arch, stages, head.out_features, image_size, pretrained)
    return model.to(memory_format=torch.channels_last)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
