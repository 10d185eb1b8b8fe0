"""The networks: AlexNet with the paper's layer names, ResNet-18 and EfficientNet-Lite0, and any timm model
(``"timm:<name>"``, its ladder read off the model's own structure: :func:`build_model`).

Every model is an :class:`FTModel`: an ordered chain of named *stages* (the first one,
``input``, turns a float batch in [0, 1] of any size and 1 or 3 channels into the
network's normalised 3-channel input). Fine-tuning levels are "the top k stages", so
freezing, parameter groups and frozen-feature caching all work by stage name.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict, defaultdict
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import alexnet, resnet18

from .env import seed_rngs
from .weights import load_imagenet_weights, load_timm_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE_MEAN = (0.5, 0.5, 0.5)   # EfficientNet-Lite expects RGB scaled to [-1, 1]
LITE_STD = (0.5, 0.5, 0.5)

ARCHS = ("alexnet", "resnet18", "efficientnet_lite0")
INITS = ("gaussian", "xavier", "he")
MIN_INPUT = defaultdict(lambda: 32, {"alexnet": 63, "resnet18": 32, "efficientnet_lite0": 32})   # timm: 32
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
    def norm_kind(self) -> str:
        """``batchnorm``, ``layernorm``, ``mixed`` or ``none`` (:func:`norm_kind`): with ``layernorm`` there are no
        running statistics, so frozen BatchNorm statistics (``bn_frozen``, frozen stages in eval mode) change nothing."""
        return norm_kind(self)

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
    He (Kaiming) for the BatchNorm networks, timm's own for a timm model (``"timm"``: the library's scheme,
    e.g. truncated normal for ViTs, kept as built).

    A Gaussian of std 0.01 in a deep BatchNorm network feeds every BatchNorm layer a signal of tiny
    variance: training normalises by batch statistics and learns, but the running statistics used at
    evaluation lag far behind, and the scores collapse to a constant.
    """
    if is_timm_arch(arch):
        return "timm"
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


def _build_timm(arch: str, num_classes: int, pretrained: bool, image_size: int, init: str | None,
                keep_imagenet_head: bool, weights_path: str | None) -> FTModel:
    net = _timm_network(arch, pretrained, image_size, weights_path)
    scheme = init or default_init(arch)
    if not pretrained and scheme != "timm":
        initialise(net, scheme)
    if not keep_imagenet_head:
        net.reset_classifier(num_classes)
        _init_module(net.get_classifier(), "gaussian", 0.01)   # the new head as Caffe's new fc8
    stages = _timm_stages(net, arch, image_size)
    _check_timm_chain(arch, net, stages, image_size)
    cfg = getattr(net, "pretrained_cfg", {}) or {}
    mean, std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
    stages = OrderedDict([("input", InputAdapter(image_size, mean, std)), *stages.items()])
    model = FTModel(arch, stages, int(net.num_classes), image_size, pretrained)
    return model.to(memory_format=torch.channels_last)


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

    **Any timm model**: ``arch="timm:<name>"`` (e.g. ``"timm:resnet50"``, ``"timm:convnext_tiny"``,
    ``"timm:vit_small_patch16_224"``). Only the prefix selects timm: a bare name is one of the three built-ins
    (``"resnet18"`` is torchvision's ResNet-18, ``"timm:resnet18"`` timm's), anything else is refused. The
    ladder comes from the model's own structure: its stage modules are the children of its ``stages`` /
    ``layers`` / ``blocks`` container (ConvNeXt, EfficientNet, ViT), else the ``feature_info`` modules that
    are not the stem (ResNet's ``layer1``..``layer4``). Every stage is one level, input side first, named
    after its module (``stages_0``, ``layer1``); the stem (and a ViT's patch embedding, class token and
    position embedding) joins the first stage; more than eight stage modules (a ViT's 12 blocks) are grouped
    into four levels of consecutive blocks (``blocks_0to2``...). The last level, ``head``, is the new
    classifier (timm's ``reset_classifier``, Gaussian std 0.01 as the paper's fc8) with whatever follows the
    last stage: a final norm (ViT, ConvNeXt), a 1x1 conv head (EfficientNet), pooling. The recipe is the
    built-ins': rate multipliers by level, frozen stages in eval mode, frozen BatchNorm statistics; a
    LayerNorm network (ConvNeXt, ViT: ``model.norm_kind == "layernorm"``) has no running statistics, so
    frozen BatchNorm is a no-op there. ``pretrained`` loads timm's ImageNet weights through timm
    (:func:`helpers.weights.load_timm_weights`: offline, ``weights_path`` or ``$FTLAB_WEIGHTS_DIR``); inputs
    are normalised with the model's own mean and std, and a ViT is made for ``image_size`` inputs.
    ``init`` None keeps timm's own initialisation (``"timm"``). The chain of stages is checked once per
    network and size to reproduce the network's own output; a structure it cannot split is refused.
    """
    if is_timm_arch(arch):
        if image_size < MIN_INPUT[arch]:
            raise ValueError(f"{arch} needs inputs of at least {MIN_INPUT[arch]} px; got image_size={image_size}.")
        if num_classes < 2 and not keep_imagenet_head:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}.")
        if seed is not None:
            seed_rngs(seed)
        return _build_timm(arch, num_classes, pretrained, image_size, init, keep_imagenet_head, weights_path)
    if arch not in ARCHS:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {ARCHS}, or 'timm:<name>' for any timm model.")
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


# ----------------------------------------------------------------------------- any timm backbone

TIMM_PREFIX = "timm:"
TIMM_GROUPS = 4        # block groups of a network with more than TIMM_MAX_UNITS stage modules (a ViT's blocks)
TIMM_MAX_UNITS = 8
_CONTAINERS = ("stages", "layers", "blocks")
_CHECKED: set = set()  # (timm name, image size): chains already compared with the network's own forward


def is_timm_arch(arch: str) -> bool:
    """Whether ``arch`` names a timm model (``"timm:<name>"``); the three built-in names never do."""
    return isinstance(arch, str) and arch.startswith(TIMM_PREFIX)


def timm_name(arch: str) -> str:
    """The timm model name of ``"timm:<name>"``."""
    return arch[len(TIMM_PREFIX):]


class _Stop(Exception):
    """Raised by a hook to stop a network's forward at its first stage module (:class:`_TimmStem`)."""
    def __init__(self, value: torch.Tensor) -> None:
        super().__init__("stem done")
        self.value = value


class _TimmStem(nn.Module):
    """Everything a timm network's ``forward_features`` does before its first stage module: the stem's
    modules and the network's own parameters (a ViT's class token and position embedding, added by its
    ``_pos_embed``). It runs ``forward_features`` and stops it at the first stage's input, so whatever the
    network does there (functional code included) is kept exactly."""
    def __init__(self, net: nn.Module, first: nn.Module, modules: "OrderedDict[str, nn.Module]") -> None:
        super().__init__()
        self.__dict__["_net"] = net        # not registered: its modules belong to the stages
        self.__dict__["_first"] = first
        for name, module in modules.items():
            self.add_module(name, module)
        for name, param in net.named_parameters(recurse=False):
            self.register_parameter(name, param)   # shared with the network (moved in place by .to())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def stop(_module, args):
            raise _Stop(args[0])
        handle = self._first.register_forward_pre_hook(stop)
        try:
            self._net.forward_features(x)
        except _Stop as done:
            return done.value
        finally:
            handle.remove()
        raise RuntimeError("forward_features never reached the first stage module.")


class _TimmHead(nn.Module):
    """The network after its last stage: what ``forward_features`` still runs (``post``: a final norm, a
    1x1 conv head), then the network's own ``forward_head`` (pooling, the new classifier)."""
    def __init__(self, net: nn.Module, post: "OrderedDict[str, nn.Module]",
                 rest: "OrderedDict[str, nn.Module]") -> None:
        super().__init__()
        self.__dict__["_net"] = net
        self.post = nn.ModuleDict(post)
        for name, module in rest.items():
            self.add_module(name, module)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.post.values():
            x = module(x)
        return self._net.forward_head(x)


def _timm_units(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The network's stage modules, input side first: the children of its ``stages`` / ``layers`` /
    ``blocks`` container, else the ``feature_info`` modules that hold parameters and are not the stem."""
    for name in _CONTAINERS:
        container = getattr(net, name, None)
        if isinstance(container, (nn.Sequential, nn.ModuleList)) and len(container) >= 2:
            return [(f"{name}_{i}", m) for i, m in enumerate(container)]
    units = []
    for info in getattr(net, "feature_info", []) or []:
        path = info["module"]
        module = net.get_submodule(path)
        if "." not in path and not path.startswith("stem") and any(True for _ in module.parameters()):
            units.append((path, module))
    if len(units) < 2:
        raise ValueError(f"Cannot find the stages of {type(net).__name__}: no stages/layers/blocks container and "
                         "no feature_info stage modules.")
    return units


def _grouped(units: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """Consecutive stage modules grouped into :data:`TIMM_GROUPS` levels when there are more than
    :data:`TIMM_MAX_UNITS` (a ViT's 12 blocks: 3 per level); each group named ``<first>to<last index>``."""
    if len(units) <= TIMM_MAX_UNITS:
        return units
    bounds = [round(i * len(units) / TIMM_GROUPS) for i in range(TIMM_GROUPS + 1)]
    groups = []
    for lo, hi in zip(bounds, bounds[1:]):
        part = units[lo:hi]
        stem = part[0][0].rsplit("_", 1)[0]
        groups.append((f"{stem}_{lo}to{hi - 1}", nn.Sequential(*[m for _, m in part])))
    return groups


def _call_order(net: nn.Module, image_size: int) -> list[str]:
    """Names of the network's children in the order ``forward_features`` starts them (a probe)."""
    order: list[str] = []
    handles = [child.register_forward_pre_hook(lambda _m, _a, name=name: order.append(name))
               for name, child in net.named_children()]
    try:
        with torch.no_grad():
            was = net.training
            net.eval()
            net.forward_features(torch.zeros(1, 3, image_size, image_size))
            net.train(was)
    finally:
        for h in handles:
            h.remove()
    return order


def _timm_stages(net: nn.Module, arch: str, image_size: int) -> "OrderedDict[str, nn.Module]":
    """The ladder's stages of a timm network (see :func:`build_model`): first stage with the stem joined,
    every other stage or block group, then ``head`` (final norm / conv head, pooling, new classifier)."""
    if any(True for _ in net.named_buffers(recurse=False)):
        raise ValueError(f"{arch}: networks with buffers of their own (outside their modules) are not supported.")
    units = _timm_units(net)
    unit_ids = {id(m) for _, m in units}
    container_ids = {id(getattr(net, c)) for c in _CONTAINERS if isinstance(getattr(net, c, None), nn.Module)}
    children = dict(net.named_children())
    order = _call_order(net, image_size)
    def is_unit(name: str) -> bool:   # a stage module, or the container holding them
        return id(children[name]) in unit_ids or id(children[name]) in container_ids
    first = next(i for i, n in enumerate(order) if is_unit(n))
    last = max(i for i, n in enumerate(order) if is_unit(n))
    before = [n for n in order[:first] if not is_unit(n)]
    post = [n for n in order[last + 1:] if not is_unit(n)]
    called = set(order)
    rest = [n for n in children if n not in called and not is_unit(n)]   # what forward_head runs (pool, classifier)
    stem = _TimmStem(net, units[0][1], OrderedDict((n, children[n]) for n in dict.fromkeys(before)))
    groups = _grouped(units)
    first_name, first_module = groups[0]
    stages: "OrderedDict[str, nn.Module]" = OrderedDict([(first_name, nn.Sequential(stem, first_module))])
    stages.update(groups[1:])
    stages["head"] = _TimmHead(net, OrderedDict((n, children[n]) for n in dict.fromkeys(post)),
                               OrderedDict((n, children[n]) for n in rest))
    return stages


def _check_timm_chain(arch: str, net: nn.Module, stages: "OrderedDict[str, nn.Module]", image_size: int) -> None:
    """Every parameter in exactly one stage, and the chain of stages computing the network's own output
    (checked once per network and input size, in eval mode); a clear error otherwise."""
    owned = [id(p) for stage in stages.values() for p in stage.parameters()]
    mine = {id(p) for p in net.parameters()}
    if len(owned) != len(set(owned)) or set(owned) != mine:
        raise ValueError(f"{arch}: the ladder's stages do not split the network's parameters exactly "
                         f"({len(set(owned))} of {len(mine)} tensors placed, {len(owned) - len(set(owned))} twice); "
                         "this network's structure is not supported.")
    key = (arch, image_size)
    if key in _CHECKED:
        return
    chain = nn.Sequential(*stages.values())
    was = net.training
    net.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))
        same = torch.allclose(chain(x), net(x), rtol=1e-4, atol=1e-5)
    net.train(was)
    if not same:
        raise ValueError(f"{arch}: running its stages one after another does not reproduce the network's own "
                         "output; this network's structure is not supported by the ladder.")
    _CHECKED.add(key)


def _timm_network(arch: str, pretrained: bool, image_size: int, weights_path: str | None) -> nn.Module:
    """The timm network (ImageNet weights through timm's own loading when ``pretrained``,
    :func:`helpers.weights.load_timm_weights`), made again for inputs of ``image_size`` when its constructor
    takes a fixed input size (ViTs' ``img_size``; timm adapts pretrained position embeddings)."""
    import timm   # deferred: importing timm takes seconds
    name = timm_name(arch)
    if not timm.is_model(name):
        raise ValueError(f"Unknown timm model {name!r} (from {arch!r}); timm.list_models('pattern*') lists them.")

    def create(**kwargs) -> nn.Module:
        if pretrained:
            return load_timm_weights(name, weights_path, **kwargs)
        return timm.create_model(name, pretrained=False, **kwargs)
    net = create()
    fixed = getattr(getattr(net, "patch_embed", None), "img_size", None)
    if fixed is not None and tuple(fixed) != (image_size, image_size) \
            and "img_size" in inspect.signature(type(net).__init__).parameters:
        net = create(img_size=image_size)
    return net


def norm_kind(module: nn.Module) -> str:
    """The normalisation layers a network uses: ``batchnorm``, ``layernorm`` (LayerNorm, GroupNorm and other
    norms without running statistics), ``mixed`` or ``none``."""
    kinds = set()
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            kinds.add("batchnorm")
        elif isinstance(m, (nn.LayerNorm, nn.GroupNorm)) or type(m).__name__.lower().startswith(("layernorm", "rmsnorm")):
            kinds.add("layernorm")
    return "mixed" if len(kinds) > 1 else (kinds.pop() if kinds else "none")
