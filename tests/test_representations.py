"""helpers.representations: linear CKA against known cases and a plain reference formula, weight movement,
and the statistics-only initialisation (per-layer mean and standard deviation kept, features gone)."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers import representations as R
from helpers.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")


def _features(n=200, p=30, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(n, p)))


def test_cka_of_a_representation_with_itself_is_one():
    x = _features()
    assert R.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)


def test_cka_is_invariant_to_orthogonal_transforms_and_isotropic_scaling():
    x = _features(p=20)
    y = x @ torch.from_numpy(np.random.default_rng(1).normal(size=(20, 15))) + 0.5 * _features(p=15, seed=2)
    q, _ = torch.linalg.qr(torch.from_numpy(np.random.default_rng(3).normal(size=(15, 15))))
    base = R.linear_cka(x, y)
    assert 0.1 < base < 0.99
    assert R.linear_cka(x, y @ q) == pytest.approx(base, abs=1e-10)
    assert R.linear_cka(3.7 * x, y) == pytest.approx(base, abs=1e-10)
    assert R.linear_cka(y, x) == pytest.approx(base, abs=1e-12)   # symmetric


def test_cka_of_independent_features_is_near_zero_at_large_n():
    # the unbiased estimator: no upward drift even with many features per image (the plain one drifts)
    x, y = _features(n=2000, p=200, seed=4), _features(n=2000, p=200, seed=5)
    assert abs(R.linear_cka(x, y)) < 0.01


def test_cka_agrees_with_the_plain_reference_formula():
    x, y = _features(n=40, p=7, seed=6).numpy(), _features(n=40, p=9, seed=7).numpy()
    y[:, :3] += x[:, :3]
    k, l = x @ x.T, y @ y.T
    reference = R.hsic_unbiased_reference(k, l) / np.sqrt(R.hsic_unbiased_reference(k, k) * R.hsic_unbiased_reference(l, l))
    assert R.linear_cka(x, y) == pytest.approx(reference, abs=1e-10)


def test_cka_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="same images"):
        R.linear_cka(_features(n=10), _features(n=11))
    with pytest.raises(ValueError, match="at least 4 images"):
        R.linear_cka(_features(n=3), _features(n=3))
    with pytest.raises(ValueError, match="constant"):
        R.linear_cka(torch.ones(10, 3), _features(n=10))


@pytest.fixture(scope="module")
def pretrained():
    torch.manual_seed(0)
    return build_model("efficientnet_lite0", 2, pretrained=True, image_size=32)


def test_stage_activations_and_cka_by_stage(pretrained, tiny_data):
    images = tiny_data.test.images[:16]          # 1-channel 16 px: the model adapts channels and size itself
    acts = R.stage_activations(pretrained, images)
    assert list(acts) == [n for n in pretrained.stage_names if n != "input"]
    assert all(a.shape[0] == 16 and a.ndim == 2 for a in acts.values())
    flat = R.stage_activations(pretrained, images, pool="flatten")
    assert flat["stem"].shape[1] > acts["stem"].shape[1]
    same = R.cka_by_stage(acts, acts)
    assert np.allclose(same.to_numpy(), 1.0)


def test_weight_movement_per_stage(pretrained):
    moved = copy.deepcopy(pretrained)
    with torch.no_grad():
        for p in moved.stages["stage7"].parameters():
            if p.ndim > 1:
                p.mul_(1.1)          # every weight of one stage 10% larger: relative change exactly 0.1
    change = R.weight_movement(moved, pretrained)
    assert change["stage7"] == pytest.approx(0.1, rel=1e-5)
    assert change.drop(["stage7"]).fillna(0).eq(0).all()


def test_statistics_init_keeps_each_layers_mean_and_std_and_drops_its_features(pretrained):
    model = R.statistics_init(copy.deepcopy(pretrained), seed=3, keep=("classifier",))
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    originals = dict(pretrained.named_modules())
    checked = 0
    for name, module in layers:
        w, w0 = module.weight.detach(), originals[name].weight.detach()
        if name.startswith("stages.classifier"):
            assert torch.equal(w, w0)      # the new head is kept as it was
            continue
        if w.numel() < 200:
            continue
        n = w.numel()
        # the sample mean is within a few standard errors of the pretrained mean; the std within ~5 SE
        assert abs(float(w.mean() - w0.mean())) <= 5 * float(w0.std()) / np.sqrt(n)
        assert abs(float(w.std()) / float(w0.std()) - 1) <= 5 / np.sqrt(2 * n) + 1e-6
        # and the features are gone: the new weights are uncorrelated with the pretrained ones
        assert abs(float(torch.corrcoef(torch.stack([w.flatten(), w0.flatten()]))[0, 1])) < 0.2
        checked += 1
    assert checked > 20
    for (name, module), (_, original) in zip(model.named_modules(), pretrained.named_modules()):
        if isinstance(module, nn.BatchNorm2d):   # BatchNorm keeps scale, shift and running statistics
            assert torch.equal(module.weight, original.weight) and torch.equal(module.running_var, original.running_var)
    again = R.statistics_init(copy.deepcopy(pretrained), seed=3, keep=("classifier",))
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters()))   # seeded


def test_grad_cam_maps_come_from_a_spatial_grid(pretrained, tiny_data):
    images = tiny_data.test.images[:4]
    cams = R.grad_cam(pretrained, images, target=1)
    assert cams.shape == (4, *images.shape[-2:]) and float(cams.min()) >= 0 and float(cams.max()) <= 1
    assert (cams.flatten(1).std(1) > 0).any(), "a map varies over the image (not a 1 x 1 grid blown up)"
    with pytest.raises(KeyError):
        R.grad_cam(pretrained, images, stage="no such stage")
