"""helpers.models: every architecture builds and runs on small inputs, has the paper's stage names, and
its stage chain computes exactly what the reference network (torchvision / timm) computes."""
import pytest
import torch
from torch import nn

from helpers.models import (ARCHS, IMAGENET_MEAN, IMAGENET_STD, LITE_MEAN, LITE_STD, MIN_INPUT, base_network,
                            build_model, initialise)

STAGES = {
    "alexnet": ["input", "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"],
    "resnet18": ["input", "stem", "layer1", "layer2", "layer3", "layer4", "fc"],
    "efficientnet_lite0": ["input", "stem", *[f"stage{i}" for i in range(1, 8)], "conv_head", "classifier"],
}

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("arch", ARCHS)
def test_builds_at_minimum_and_64_px_and_takes_any_batch(arch, request):
    for size in (MIN_INPUT[arch], 64):
        if arch == "alexnet" and size == 63:
            model, classes = request.getfixturevalue("alexnet_63"), 2  # the session's shared AlexNet
        else:
            model, classes = build_model(arch, num_classes=3, image_size=size), 3
        model.eval()
        assert model.stage_names == STAGES[arch]
        assert model.num_classes == classes and model.image_size == size
        with torch.no_grad():
            for channels, side in ((1, 28), (3, 28)):
                out = model(torch.rand(2, channels, side, side))
                assert out.shape == (2, classes), (size, channels, side)
                assert torch.isfinite(out).all()


def _normalised(arch, x):
    mean, std = (LITE_MEAN, LITE_STD) if arch == "efficientnet_lite0" else (IMAGENET_MEAN, IMAGENET_STD)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.mark.parametrize("arch", ARCHS)
def test_stage_chain_equals_reference_forward(arch, reference_state_dict):
    torch.manual_seed(0)
    # He init keeps activations alive through the depth (Gaussian 0.01 would drive every output to ~0
    # and make the comparison vacuous); EfficientNet uses its real weights and BatchNorm statistics.
    size = max(MIN_INPUT[arch], 32)
    if arch == "efficientnet_lite0":
        model = build_model(arch, pretrained=True, image_size=size, keep_imagenet_head=True)
    else:
        model = build_model(arch, image_size=size, init="he", keep_imagenet_head=True)
    model.eval()
    assert model.num_classes == 1000
    reference = base_network(arch).eval()
    reference.load_state_dict(reference_state_dict(model), strict=True)  # every reference key covered
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        ours, theirs = model(x), reference(_normalised(arch, x))
    assert ours.shape == theirs.shape == (2, 1000)
    assert theirs.std() > 1e-2, "outputs too small for the comparison to mean anything"
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def _layers():
    return nn.Sequential(nn.Conv2d(32, 64, 3), nn.ReLU(), nn.Flatten(), nn.Linear(1024, 512), nn.BatchNorm2d(4))


def test_initialise_schemes():
    weights = {}
    for scheme in ("gaussian", "xavier", "he"):
        torch.manual_seed(0)
        net = initialise(_layers(), scheme)
        weights[scheme] = [net[0].weight.detach().clone(), net[3].weight.detach().clone()]
        assert torch.count_nonzero(net[0].bias) == 0 and torch.count_nonzero(net[3].bias) == 0
        assert torch.equal(net[4].weight, torch.ones(4)) and torch.equal(net[4].bias, torch.zeros(4))
    for w in weights["gaussian"]:
        assert abs(float(w.std()) - 0.01) < 5e-4
        assert abs(float(w.mean())) < 5e-4
    assert abs(float(initialise(_layers(), "gaussian", std=0.05)[3].weight.detach().std()) - 0.05) < 2e-3
    for a, b in (("gaussian", "xavier"), ("gaussian", "he"), ("xavier", "he")):
        for wa, wb in zip(weights[a], weights[b]):
            assert not torch.allclose(wa, wb)
    # Xavier uniform: bound sqrt(6 / (fan_in + fan_out)); He normal (fan_out): std sqrt(2 / fan_out)
    lin = weights["xavier"][1]
    assert float(lin.abs().max()) <= (6 / (1024 + 512)) ** 0.5 + 1e-6
    conv = weights["he"][0]
    assert abs(float(conv.std()) - (2 / (64 * 9)) ** 0.5) < 3e-3
    # a depthwise convolution counts its fan-out per group (timm's rule), not as a dense layer
    torch.manual_seed(0)
    depthwise = initialise(nn.Sequential(nn.Conv2d(64, 64, 3, groups=64)), "he")[0].weight.detach()
    assert abs(float(depthwise.std()) - (2 / 9) ** 0.5) < 0.05


def test_default_init_suits_the_architecture():
    from helpers.models import default_init
    assert default_init("alexnet") == "gaussian"        # the paper's choice; AlexNet has no BatchNorm
    assert default_init("efficientnet_lite0") == default_init("resnet18") == "he"
    torch.manual_seed(0)
    scratch = build_model("efficientnet_lite0", image_size=32)
    conv = scratch.stages["conv_head"][0].weight       # 1x1, 320 -> 1280: He std sqrt(2 / 1280)
    assert abs(float(conv.std()) - (2 / 1280) ** 0.5) < 2e-3


def test_build_model_uses_the_chosen_init():
    stds = {}
    for scheme in ("gaussian", "xavier", "he"):
        torch.manual_seed(0)
        model = build_model("efficientnet_lite0", image_size=32, init=scheme)
        stds[scheme] = float(model.stages["conv_head"][0].weight.detach().std())
    assert abs(stds["gaussian"] - 0.01) < 1e-3
    assert len({round(s, 5) for s in stds.values()}) == 3


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="bogus"):
        initialise(_layers(), "bogus")
    with pytest.raises(ValueError, match="gaussian"):
        build_model("efficientnet_lite0", image_size=32, init="bogus")


@pytest.mark.parametrize("arch", ARCHS)
def test_image_size_below_minimum_is_refused(arch):
    with pytest.raises(ValueError, match=rf"at least {MIN_INPUT[arch]}\b"):
        build_model(arch, image_size=MIN_INPUT[arch] - 1)


def test_unknown_arch_and_too_few_classes_are_refused():
    with pytest.raises(ValueError, match="alexnet"):
        build_model("vgg16")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("efficientnet_lite0", num_classes=1, image_size=32)
