"""helpers.weights: real EfficientNet-Lite0 ImageNet weights recognise a cat; the package-to-timm key map
is complete; AlexNet / ResNet-18 weights load from a local file (argument or environment variable),
refuse unsafe or unfitting files, and fail offline with a message that names both ways to get them."""
from urllib.error import URLError

import pytest
import torch
import torchvision

from helpers import weights as W
from helpers.models import base_network, build_model

CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}
FIRST_CONV = {"alexnet": ("conv1", "features.0.weight"), "resnet18": ("stem", "conv1.weight")}

pytestmark = pytest.mark.usefixtures("single_thread")


class NotATensor:
    """Any class: unpickling it would run arbitrary code paths, so weights_only must refuse it."""

    def __init__(self):
        self.payload = [1, 2, 3]


@pytest.fixture(scope="module")
def chelsea():
    """skimage's cat photo as a float batch (1, 3, S, S) in [0, 1], centre-cropped to a square."""
    skimage_data = pytest.importorskip("skimage.data")
    img = torch.from_numpy(skimage_data.chelsea()).permute(2, 0, 1).float().div(255)
    h, w = img.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return img[:, top:top + side, left:left + side].unsqueeze(0)


def _top1(model, x):
    with torch.no_grad():
        prob = model.eval()(x).softmax(1)[0]
    return int(prob.argmax()), float(prob.max())


def test_real_lite0_weights_recognise_a_cat(chelsea):
    categories = W.imagenet_categories()
    assert len(categories) == 1000 and CATS <= set(categories)
    model = build_model("efficientnet_lite0", pretrained=True, image_size=224, keep_imagenet_head=True)
    assert model.num_classes == 1000 and model.pretrained
    top, p = _top1(model, chelsea)
    assert categories[top] in CATS, f"pretrained top-1 is {categories[top]!r} ({p:.3f})"

    torch.manual_seed(0)
    scratch = build_model("efficientnet_lite0", pretrained=False, image_size=224, keep_imagenet_head=True,
                          init="gaussian")   # tiny weights: near-uniform output
    top, p = _top1(scratch, chelsea)
    assert p < 0.05, f"an untrained network should be near-uniform; its top-1 probability is {p:.3f}"
    assert categories[top] not in CATS


def test_lite0_key_map_is_complete_and_one_to_one():
    timm = pytest.importorskip("timm")
    package = W.safe_load(W.lite0_checkpoint_path())
    mapped = {key: W.lite0_key_to_timm(key) for key in package}
    assert len(set(mapped.values())) == len(mapped), "two package keys map to the same timm key"
    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    assert set(mapped.values()) == set(reference)
    for key, timm_key in mapped.items():
        assert package[key].shape == reference[timm_key].shape, (key, timm_key)
    state = W.lite0_state_dict()
    assert set(state) == set(reference)


@pytest.fixture(scope="module")
def saved_weights(tmp_path_factory):
    """torchvision's randomly initialised AlexNet / ResNet-18 state dicts, saved as .pth files."""
    folder = tmp_path_factory.mktemp("weights")
    out = {}
    for arch, factory in (("alexnet", torchvision.models.alexnet), ("resnet18", torchvision.models.resnet18)):
        torch.manual_seed(1)
        state = factory(weights=None).state_dict()
        path = folder / f"{arch}.pth"
        torch.save(state, path)
        out[arch] = (path, state)
    return out


def _holds_exactly(model, state, reference_state_dict):
    stage, key = FIRST_CONV[model.arch]
    assert torch.equal(model.stages[stage][0].weight, state[key])
    ours = reference_state_dict(model)
    assert set(ours) == set(state)
    for name, tensor in state.items():
        assert torch.equal(ours[name], tensor), name


@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_torchvision_weights_from_env_var_and_argument(arch, saved_weights, monkeypatch, reference_state_dict):
    path, state = saved_weights[arch]
    env = f"FTLAB_WEIGHTS_{arch.upper()}"
    size = 63 if arch == "alexnet" else 32
    monkeypatch.setenv(env, str(path))
    model = build_model(arch, pretrained=True, keep_imagenet_head=True, image_size=size)
    assert model.pretrained and model.num_classes == 1000
    _holds_exactly(model, state, reference_state_dict)

    monkeypatch.delenv(env)
    model = build_model(arch, pretrained=True, keep_imagenet_head=True, image_size=size, weights_path=str(path))
    _holds_exactly(model, state, reference_state_dict)
    if arch == "resnet18":  # a new head for 2 classes, every other layer from the file
        model = build_model(arch, pretrained=True, image_size=size, weights_path=path)
        assert model.num_classes == 2 and model.stages["fc"].weight.shape == (2, 512)
        assert torch.equal(model.stages["layer4"][0][1].conv2.weight, state["layer4.1.conv2.weight"])


def test_checkpoint_wrapped_in_state_dict_key_loads(saved_weights, tmp_path):
    path, state = saved_weights["resnet18"]
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": state}, wrapped)
    model = build_model("resnet18", pretrained=True, image_size=32, weights_path=wrapped)
    assert torch.equal(model.stages["stem"][0].weight, state["conv1.weight"])


def test_pickled_objects_are_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": NotATensor()}, evil)
    with pytest.raises(W.WeightsUnavailableError, match="evil.pth"):
        W.safe_load(evil)
    with pytest.raises(W.WeightsUnavailableError):
        build_model("resnet18", pretrained=True, image_size=32, weights_path=evil)
    mixed = tmp_path / "mixed.pth"
    torch.save({"conv1.weight": torch.zeros(1), "note": "not a tensor"}, mixed)
    with pytest.raises(W.WeightsUnavailableError, match="state dict of tensors"):
        W.safe_load(mixed)
    with pytest.raises(W.WeightsUnavailableError, match="does not exist"):
        W.safe_load(tmp_path / "missing.pth")


@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_weights_that_do_not_fit_are_refused(arch, tmp_path, monkeypatch):
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3), "unrelated.bias": torch.zeros(2)}, wrong)
    net = base_network(arch)
    with pytest.raises(W.WeightsUnavailableError, match=f"do not fit {arch}"):
        W.load_imagenet_weights(net, arch, wrong)
    monkeypatch.setenv(f"FTLAB_WEIGHTS_{arch.upper()}", str(wrong))
    with pytest.raises(W.WeightsUnavailableError, match=f"do not fit {arch}"):
        W.load_imagenet_weights(net, arch)
    if arch == "resnet18":  # and build_model passes the error on
        with pytest.raises(W.WeightsUnavailableError, match=arch):
            build_model(arch, pretrained=True, image_size=32)


@pytest.mark.parametrize("arch", ["alexnet", "resnet18"])
def test_offline_without_a_file_names_both_ways(arch, tmp_path, monkeypatch):
    """Simulated offline machine: empty torch cache, and every download raises URLError."""
    from torchvision.models._api import WeightsEnum

    def offline(*args, **kwargs):
        raise URLError("no network (simulated by the test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(f"FTLAB_WEIGHTS_{arch.upper()}", raising=False)
    monkeypatch.setattr(WeightsEnum, "get_state_dict", offline)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(W.WeightsUnavailableError) as info:
        W.torchvision_state_dict(arch)
    message = str(info.value)
    assert "weights_path" in message and f"FTLAB_WEIGHTS_{arch.upper()}" in message
    assert "download" in message and "https://" in message
    assert str(tmp_path / "torch-home") in message  # where torchvision would cache the file
    assert isinstance(info.value.__cause__, URLError)
    if arch == "resnet18":  # the same error reaches whoever builds the model
        with pytest.raises(W.WeightsUnavailableError, match="FTLAB_WEIGHTS_RESNET18"):
            build_model(arch, pretrained=True, image_size=32)
