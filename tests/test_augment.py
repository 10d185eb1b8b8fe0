"""helpers.augment: batch augmentation keeps shape/dtype/device, is seeded, is the identity when switched
off, and its flips/rotations are exact members of the square's dihedral group."""
import pytest
import torch

from helpers.augment import DIHEDRAL, augment_batch, random_affine


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _variants(img):
    """The 8 flips / 90-degree rotations of (C, H, W) images."""
    return [torch.rot90(im, k, dims=(-2, -1)) for im in (img, torch.flip(img, dims=(-1,))) for k in range(4)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(4, 1, 16, 16), (3, 3, 12, 20)])
def test_shape_dtype_device_kept(dtype, shape):
    x = torch.rand(shape, generator=_gen(1)).to(dtype)
    y = augment_batch(x, _gen())
    assert y.shape == x.shape and y.dtype == dtype and y.device == x.device
    assert torch.isfinite(y).all()
    assert y.min() >= x.min() - 1e-6 and y.max() <= x.max() + 1e-6  # bilinear + border: no overshoot


def test_same_seed_same_augmentation():
    x = torch.rand(8, 1, 16, 16, generator=_gen(2))
    a, b = augment_batch(x, _gen(7)), augment_batch(x, _gen(7))
    assert torch.equal(a, b)
    assert not torch.allclose(a, augment_batch(x, _gen(8)))
    assert not torch.allclose(a, x)


def test_identity_when_everything_is_off():
    x = torch.rand(5, 3, 16, 16, generator=_gen(3))
    y = augment_batch(x, _gen(), scales=(1.0,), shift=0.0, dihedral=False)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    theta = random_affine(5, _gen(), scales=(1.0,), shift=0.0, dihedral=False)
    assert torch.equal(theta, torch.tensor([[1.0, 0, 0], [0, 1, 0]]).expand(5, 2, 3))


def test_dihedral_outputs_are_exact_flips_and_rotations():
    img = torch.arange(36, dtype=torch.float32).view(1, 6, 6) ** 1.3  # no symmetry at all
    variants = _variants(img)
    for i, a in enumerate(variants):  # the 8 variants of this image are all different
        assert not any(torch.allclose(a, b) for b in variants[i + 1:])
    batch = img.unsqueeze(0).repeat(48, 1, 1, 1)
    out = augment_batch(batch, _gen(5), scales=(1.0,), shift=0.0, dihedral=True)
    hits = []
    for y in out:
        matches = [k for k, v in enumerate(variants) if torch.allclose(y, v, atol=1e-3, rtol=0)]
        assert len(matches) == 1, "an output is not a flip/rotation of the input"
        hits.append(matches[0])
    assert len(set(hits)) == 8  # 48 draws: every member of the group shows up


def test_dihedral_matrices_form_the_group():
    assert DIHEDRAL.shape == (8, 2, 2)
    dets = torch.linalg.det(DIHEDRAL)
    assert sorted(dets.tolist()) == [-1.0] * 4 + [1.0] * 4
    assert len({tuple(m.flatten().tolist()) for m in DIHEDRAL}) == 8
    for a in DIHEDRAL:  # closed under composition
        for b in DIHEDRAL:
            assert any(torch.equal(a @ b, c) for c in DIHEDRAL)


def test_scales_zoom_in_and_shift_stays_within_ten_percent():
    theta = random_affine(2000, _gen(9))
    linear, offset = theta[:, :, :2], theta[:, :, 2]
    scale = 1 / linear.abs().amax(dim=(1, 2))
    torch.testing.assert_close(torch.unique(scale.round(decimals=4)), torch.tensor([1.0, 1.2, 1.5]))
    assert offset.abs().max() <= 0.2 + 1e-6 and offset.abs().max() > 0.15
