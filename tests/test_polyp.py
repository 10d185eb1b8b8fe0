"""Polyp data, sequence splits, patches, probability maps and candidates.

Real-data tests read CVC-ClinicDB from ``$FTLAB_POLYP_DIR`` (or the shared data folder) and are
skipped when it is absent; everything else runs on small synthetic folders written with PIL.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from helpers.detection import froc, maps, patches, video
from helpers.datasets import DataSet, Split

SHARED = Path(__file__).resolve().parents[2] / "shared/data/polyp/CVC-ClinicDB"   # the test data beside the checkout


def real_folder() -> Path | None:
    """The CVC-ClinicDB folder, or None when this machine has no copy."""
    env = os.environ.get("FTLAB_POLYP_DIR")
    for candidate in ([Path(env), Path(env) / "CVC-ClinicDB"] if env else []) + [SHARED]:
        synthetic = (candidate / "SYNTHETIC.txt").exists()      # make test's stand-in is not CVC-ClinicDB
        if (candidate / "images").is_dir() and (candidate / "masks").is_dir() and not synthetic:
            return candidate
    return None


needs_real = pytest.mark.skipif(real_folder() is None,
                                reason="CVC-ClinicDB not found (set FTLAB_POLYP_DIR to its folder)")


@pytest.fixture(scope="module")
def cvc() -> video.PolypFrames:
    """All 612 CVC-ClinicDB frames (loaded once for the module)."""
    return video.load_polyp_frames(real_folder())


# ------------------------------------------------------------------------------------------
# synthetic folders
# ------------------------------------------------------------------------------------------

def write_set(root: Path, n: int = 4, size: tuple[int, int] = (48, 64), mask_ext: str = ".png",
              image_ext: str = ".png", sequences: list[str] | None = None, sizes: list | None = None) -> Path:
    """A polyp folder of ``n`` grey frames with a red 12x12 polyp square (masks 0/255)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for k in range(n):
        h, w = sizes[k] if sizes else size
        img = np.full((h, w, 3), 90, np.uint8)
        mask = np.zeros((h, w), np.uint8)
        y, x = 8 + 2 * k, 10 + 3 * k
        img[y:y + 12, x:x + 12] = (220, 30, 30)
        mask[y:y + 12, x:x + 12] = 255
        Image.fromarray(img).save(root / "images" / f"f{k}{image_ext}")
        Image.fromarray(mask).save(root / "masks" / f"f{k}{mask_ext}")
    if sequences is not None:
        rows = "\n".join(f"f{k},{s}" for k, s in enumerate(sequences))
        (root / "sequences.csv").write_text(f"frame,sequence\n{rows}\n")
    return root


def test_synthetic_load_without_sequences(tmp_path):
    frames = video.load_polyp_frames(write_set(tmp_path / "set"))
    assert frames.images.shape == (4, 3, 48, 64) and frames.images.dtype == torch.uint8
    assert frames.masks.shape == (4, 48, 64) and frames.masks.dtype == torch.bool
    assert frames.names == ["f0", "f1", "f2", "f3"]
    assert not frames.has_sequences and frames.sequences == frames.names      # each frame its own group
    assert frames.masks[0, 8:20, 10:22].all() and frames.masks[0].sum() == 144


def test_sequences_csv_accepts_names_and_stems(tmp_path):
    root = write_set(tmp_path / "set", sequences=["a", "a", "b", "b"])
    (root / "sequences.csv").write_text("frame,sequence\nf0.png,a\nf1,a\nf2.png,b\nf3,b\n")
    frames = video.load_polyp_frames(root)
    assert frames.has_sequences and frames.sequences == ["a", "a", "b", "b"]


@pytest.mark.parametrize("text, message", [
    ("frame,sequence\nf0,a\nf1,a\nf2,b\n", "no sequence for 1 frames"),
    ("image;group\nf0;a\n", "columns frame,sequence"),
    ("frame,sequence\nf0,a\nf0,b\nf1,a\nf2,b\nf3,b\n", "two sequences"),
    ("frame,sequence\nf0,\nf1,a\nf2,b\nf3,b\n", "empty"),
])
def test_bad_sequences_csv(tmp_path, text, message):
    root = write_set(tmp_path / "set")
    (root / "sequences.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        video.load_polyp_frames(root)


def test_unpaired_names_listed(tmp_path):
    root = write_set(tmp_path / "set")
    (root / "masks" / "f3.png").rename(root / "masks" / "other.png")
    with pytest.raises(ValueError, match=r"do not pair up.*f3\.png.*other\.png"):
        video.load_polyp_frames(root)


def test_mask_size_mismatch_named(tmp_path):
    root = write_set(tmp_path / "set")
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "masks" / "f2.png")
    with pytest.raises(ValueError, match=r"f2\.png.*40x40"):
        video.load_polyp_frames(root)


def test_non_binary_png_mask_named(tmp_path):
    root = write_set(tmp_path / "set")
    Image.fromarray(np.full((48, 64), 128, np.uint8)).save(root / "masks" / "f1.png")
    with pytest.raises(ValueError, match=r"f1\.png is not binary.*128"):
        video.load_polyp_frames(root)


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        video.load_polyp_frames(tmp_path / "nowhere")
    (tmp_path / "empty" / "images").mkdir(parents=True)
    (tmp_path / "empty" / "masks").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        video.load_polyp_frames(tmp_path / "empty")


def test_jpeg_masks_are_thresholded(tmp_path):
    """Kvasir-SEG style: JPEG frames and JPEG masks with compression noise."""
    root = write_set(tmp_path / "kvasir", mask_ext=".jpg", image_ext=".jpg")
    values = np.unique(np.asarray(Image.open(root / "masks" / "f0.jpg")))
    assert len(values) > 2                          # the JPEG mask really is not binary
    frames = video.load_polyp_frames(root)
    expected = np.zeros((48, 64), bool)
    expected[8:20, 10:22] = True
    assert (frames.masks[0].numpy() == expected).mean() > 0.99


def test_frames_of_different_sizes_are_resized(tmp_path):
    root = write_set(tmp_path / "set", sizes=[(48, 64), (48, 64), (60, 80), (48, 64)])
    frames = video.load_polyp_frames(root)
    assert frames.frame_size == (48, 64)            # the most common size
    assert frames.masks[2].any()
    frames = video.load_polyp_frames(root, frame_size=(32, 40))
    assert frames.images.shape == (4, 3, 32, 40) and frames.masks.shape == (4, 32, 40)


def test_locate_by_name_and_clear_error(tmp_path, monkeypatch):
    root = write_set(tmp_path / "polyp" / "MySet")
    monkeypatch.setenv("FTLAB_POLYP_DIR", str(root))
    assert video.locate_polyp_dataset("MySet") == root.resolve()
    monkeypatch.setenv("FTLAB_POLYP_DIR", str(tmp_path / "polyp"))
    assert video.locate_polyp_dataset("MySet") == root.resolve()
    monkeypatch.delenv("FTLAB_POLYP_DIR")
    monkeypatch.setenv("FTLAB_DATA_DIR", str(tmp_path))
    assert video.locate_polyp_dataset("MySet") == root.resolve()
    with pytest.raises(FileNotFoundError, match=r"(?s)NoSuchSet.*images/.*masks/.*owners"):
        video.locate_polyp_dataset("NoSuchSet")


def test_max_frames_keeps_whole_sequences(tmp_path):
    seqs = ["a"] * 3 + ["b"] * 2 + ["c"] * 4 + ["d"] * 1
    root = write_set(tmp_path / "set", n=10, sequences=seqs)
    full = video.load_polyp_frames(root)
    for seed in range(5):
        part = video.load_polyp_frames(root, max_frames=5, seed=seed)
        assert 1 <= len(part) <= 5
        for s in set(part.sequences):
            assert part.sequences.count(s) == full.sequences.count(s)
    assert video.load_polyp_frames(root, max_frames=5, seed=3).names == \
        video.load_polyp_frames(root, max_frames=5, seed=3).names


# ------------------------------------------------------------------------------------------
# real CVC-ClinicDB
# ------------------------------------------------------------------------------------------

@needs_real
def test_real_frames(cvc):
    assert len(cvc) == 612 and cvc.frame_size == (288, 384)
    assert cvc.images.dtype == torch.uint8 and cvc.masks.dtype == torch.bool
    assert cvc.has_sequences and len(cvc.sequence_names) == 29
    assert cvc.names[:3] == ["1", "2", "3"] and cvc.names[-1] == "612"
    assert cvc.sequences[0] == "1" and cvc.sequences[-1] == "29"
    assert bool(cvc.masks.flatten(1).any(1).all())          # every frame holds a polyp


@needs_real
def test_real_split_by_sequence(cvc):
    split = video.split_by_sequence(cvc, seed=0)
    seqs = {k: {cvc.sequences[i] for i in v} for k, v in split.items()}
    assert all(len(v) > 0 for v in split.values())
    assert not (seqs["train"] & seqs["val"]) and not (seqs["train"] & seqs["test"]) and not (seqs["val"] & seqs["test"])
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(612))
    assert [len(s) for s in seqs.values()] == [17, 6, 6]
    again = video.split_by_sequence(cvc, seed=0)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    other = video.split_by_sequence(cvc, seed=1)
    assert not np.array_equal(split["test"], other["test"])


@needs_real
def test_real_reduction_nested(cvc):
    train = video.split_by_sequence(cvc, seed=0)["train"]
    full, half, quarter = (set(video.reduce_by_sequence(cvc, train, f, seed=0).tolist()) for f in (1.0, 0.5, 0.25))
    assert full == set(train.tolist()) and quarter < half < full
    for part in (half, quarter):                                # whole sequences only
        seqs = {cvc.sequences[i] for i in part}
        assert part == {i for i in train.tolist() if cvc.sequences[i] in seqs}
    assert len({cvc.sequences[i] for i in quarter}) == 4         # round(0.25 * 17)


@needs_real
def test_real_patches(cvc):
    idx = [0, 30, 130, 300, 500]
    split, plan = patches.sample_patches(cvc, idx, patch=32, seed=0, return_plan=True)
    assert isinstance(split, Split)
    assert split.images.shape == (len(split), 3, 32, 32) and split.images.dtype == torch.uint8
    assert split.labels.dtype == torch.int64 and len(plan) == len(split)
    assert split.class_counts(2)[0] == split.class_counts(2)[1] > 0
    masks = cvc.masks.numpy()
    pos, neg = plan[plan["label"] == 1], plan[plan["label"] == 0]
    assert masks[pos["frame"], pos["anchor_y"], pos["anchor_x"]].all()    # positives on polyp pixels
    shift = np.maximum(abs(pos["cy"] - pos["anchor_y"]), abs(pos["cx"] - pos["anchor_x"]))
    assert (shift <= 0.1 * pos["side"] + 1e-6).all()
    assert set(np.round(pos["scale"], 2)) == {1.0, 1.2, 1.5}
    for f in idx:                                                        # negatives: in FOV, away from polyps
        rows = neg[neg["frame"] == f]
        fov = video.fov_mask(cvc.images[f])
        dist = ndimage.distance_transform_edt(~masks[f])
        assert fov[rows["anchor_y"], rows["anchor_x"]].all()
        assert (dist[rows["anchor_y"], rows["anchor_x"]] > 0.5 * rows["side"]).all()
    again = patches.sample_patches(cvc, idx, patch=32, seed=0)
    assert torch.equal(split.images, again.images) and torch.equal(split.labels, again.labels)
    assert not torch.equal(split.images, patches.sample_patches(cvc, idx, patch=32, seed=1).images)


@needs_real
def test_real_dihedral_views(cvc):
    base = patches.sample_patches(cvc, [5], patch=16, seed=0, augment_dihedral=False)
    aug = patches.sample_patches(cvc, [5], patch=16, seed=0)
    assert len(aug) == 8 * len(base) and torch.equal(aug.labels, base.labels.repeat_interleave(8))
    views = aug.images.reshape(len(base), 8, 3, 16, 16)
    assert torch.equal(views[:, 0], base.images)
    assert torch.equal(views[:, 1], torch.rot90(base.images, 1, dims=(-2, -1)))
    assert torch.equal(views[:, 4], base.images.flip(-1))


@needs_real
def test_real_fov_excludes_border(cvc):
    fov = video.fov_mask(cvc.images[0])
    assert fov.shape == (288, 384) and fov.dtype == bool
    assert not fov[0, 0] and not fov[-1, -1] and fov[144, 192]
    assert 0.6 < fov.mean() < 0.95


@needs_real
def test_real_patch_dataset(cvc):
    frames = cvc.subset(np.flatnonzero(np.isin(cvc.sequences, ["1", "4", "10", "23"])))
    split = video.split_by_sequence(frames, seed=0)
    ds = patches.patch_dataset(frames, split, patch=24, seed=0, train_fraction=0.5)
    assert isinstance(ds, DataSet) and ds.class_names == ["background", "polyp"]
    assert ds.train.images.shape[1:] == (3, 24, 24) and len(ds.val) > 0 and len(ds.test) > 0
    assert set(ds.meta["frames_train"]) <= set(split["train"])
    assert ds.meta["window"] == patches.polyp_window(frames, split["train"]) > 0    # same for every fraction
    assert all(c[0] == c[1] for c in (ds.train.class_counts(2), ds.val.class_counts(2), ds.test.class_counts(2)))


# ------------------------------------------------------------------------------------------
# probability maps and candidates
# ------------------------------------------------------------------------------------------

class RedModel(torch.nn.Module):
    """Logit of 'polyp' grows with how red the patch's centre is (a fixed, centre-weighted conv)."""

    def __init__(self, patch: int):
        super().__init__()
        r = torch.arange(patch, dtype=torch.float32) - (patch - 1) / 2
        g = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * (patch / 6) ** 2))
        weight = torch.stack([g, -g / 2, -g / 2])[None] / g.sum()
        self.conv = torch.nn.Conv2d(3, 1, patch, bias=False)
        self.conv.weight.data.copy_(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 12 * (self.conv(x).flatten(1) - 0.3)
        return torch.cat([torch.zeros_like(z), z], dim=1)


class MeanRedModel(torch.nn.Module):
    """sigmoid(logit) = mean of the red channel, so the map reads back the window's mean."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, 0].mean(dim=(1, 2)).clamp(1e-4, 1 - 1e-4)
        return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def red_frame(cy: int, cx: int, size: tuple[int, int] = (120, 160), side: int = 20) -> torch.Tensor:
    """uint8 (3, H, W) grey frame with a red square centred near (cy, cx)."""
    img = torch.full((3, *size), 90, dtype=torch.uint8)
    img[:, cy - side // 2:cy + side // 2, cx - side // 2:cx + side // 2] = torch.tensor([230, 20, 20])[:, None, None]
    return img


def test_map_peaks_at_red_square():
    model, patch, window, stride = RedModel(12), 12, 24, 4
    img = red_frame(50, 100)
    prob = maps.probability_map(model, img, patch, stride, window, device="cpu", batch_size=64)
    geo = maps.map_geometry((120, 160), patch, stride, window)
    assert prob.shape == geo.map_size and prob.dtype == torch.float32
    assert 0 <= prob.min() and prob.max() <= 1 and prob.max() > 0.9
    cands = maps.find_candidates(prob, min_distance_px=20, geometry=geo)
    y, x, score = cands[0]
    assert abs(y - 49.5) <= 4 and abs(x - 99.5) <= 4 and score == pytest.approx(prob.max().item())
    assert all(a[2] >= b[2] for a, b in zip(cands, cands[1:]))
    gaps = [np.hypot(a[0] - b[0], a[1] - b[1]) for a in cands for b in cands if a is not b]
    assert min(gaps) >= 20 - 1.5                                  # 20 px apart before rounding to pixels


def test_map_batched_matches_single_and_model_mode_restored():
    model, patch, window, stride = RedModel(12), 12, 24, 6
    batch = torch.stack([red_frame(50, 100), red_frame(80, 30)])
    model.train()
    batched = maps.probability_map(model, batch, patch, stride, window, batch_size=100)
    assert model.training
    assert batched.shape == (2, *maps.map_geometry((120, 160), patch, stride, window).map_size)
    for k in range(2):
        single = maps.probability_map(model, batch[k], patch, stride, window, batch_size=50)
        assert torch.allclose(batched[k], single, atol=1e-6)


def test_geometry_cells_sit_on_window_centres():
    """A ramp frame read back through a mean-of-window model gives each cell's centre."""
    h, w, patch, window, stride = 96, 128, 8, 32, 8
    geo = maps.map_geometry((h, w), patch, stride, window)
    for axis in (0, 1):
        ramp = torch.arange(h if axis == 0 else w, dtype=torch.float32)
        ramp = (ramp[:, None].expand(h, w) if axis == 0 else ramp[None].expand(h, w))
        img = torch.zeros(3, h, w, dtype=torch.uint8)
        img[0] = (ramp + 60).round().to(torch.uint8)              # red = pixel coordinate + 60
        prob = maps.probability_map(MeanRedModel(), img, patch, stride, window)
        i, j = np.meshgrid(np.arange(geo.map_size[0]), np.arange(geo.map_size[1]), indexing="ij")
        ys, xs = geo.to_frame(i, j)
        centre = (ys, xs)[axis]
        inner = ((ys > window / 2 + 2) & (ys < h - window / 2 - 2)          # windows clear of the padding
                 & (xs > window / 2 + 2) & (xs < w - window / 2 - 2))
        read = prob.numpy() * 255 - 60
        assert inner.sum() > 10 and np.abs(read[inner] - centre[inner]).max() < 0.75
    ci, cj = geo.to_cell(*geo.to_frame(3, 5))
    assert (ci, cj) == (3, 5)
    assert geo.stride_px == pytest.approx((8.0, 8.0))


def test_upsample_map_and_frame_sized_candidates():
    model, patch, window, stride = RedModel(12), 12, 24, 4
    img = red_frame(70, 40)
    prob = maps.probability_map(model, img, patch, stride, window)
    geo = maps.map_geometry((120, 160), patch, stride, window)
    full = maps.upsample_map(prob, geo)
    assert full.shape == (120, 160)
    y, x = geo.to_frame(5, 7)
    assert full[int(y), int(x)].item() == pytest.approx(prob[5, 7].item(), abs=0.05)
    y, x, _ = maps.find_candidates(full, min_distance_px=30)[0]
    assert abs(y - 69.5) <= 4 and abs(x - 39.5) <= 4


def test_plateau_gives_one_central_candidate():
    prob = torch.zeros(30, 30)
    prob[10:15, 10:15] = 1.0                                      # saturated probabilities
    prob[25, 25] = 0.5
    cands = maps.find_candidates(prob, min_distance_px=5)
    assert cands[0] == (12, 12, 1.0) and cands[1] == (25, 25, 0.5)
    assert len(maps.find_candidates(prob, min_distance_px=5, threshold=0.6)) == 1


def test_score_frames_end_to_end(tmp_path):
    frames = video.load_polyp_frames(write_set(tmp_path / "set", n=4, size=(64, 80), sequences=list("aabb")))
    model = RedModel(8)
    single = maps.DetectorSettings(patch=8, window=16, scales=(1.0,), stride=0.25, nms_radius=0.75,
                                    average_views=False, use_fov=False)
    matches, table = maps.score_frames(model, frames, [0, 1, 2, 3], single)
    assert table["n_polyps"].tolist() == [1, 1, 1, 1]
    best = matches.sort_values("score", ascending=False).groupby("frame").head(1)
    assert best["is_tp"].all()                                    # the top candidate of each frame hits
    curve = froc.froc_curve(matches, len(table), int(table["n_polyps"].sum()))
    assert froc.sensitivity_at_fp(curve, (0.0,))[0.0] == 1.0
    averaged, _ = maps.score_frames(model, frames, [0, 1], maps.DetectorSettings(
        patch=8, window=16, scales=(0.75, 1.0, 1.5), stride=0.25, use_fov=False))
    assert averaged.loc[averaged["is_tp"], "score"].min() > averaged.loc[averaged["is_fp"], "score"].max()


def test_fov_with_a_dark_grey_border():
    """Some videos frame the view with grey 21, not black: the border must still be outside the view."""
    h, w = 96, 128
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w, 3), 21, np.uint8)
    inside = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 <= 44 ** 2
    img[inside] = (150, 80, 70)
    img[40:50, 60:70] = 30                                    # dark lumen inside the view stays inside
    fov = video.fov_mask(img)
    assert not fov[0, 0] and not fov[-1, -1] and fov[45, 65]
    assert abs(fov.mean() - inside.mean()) < 0.03


@needs_real
def test_real_fov_of_grey_bordered_frames(cvc):
    assert int(cvc.images[25].max(dim=0).values[0, 0]) == 21      # this video's border is grey 21
    assert not cvc.fov[:, 0, 0].any() and not cvc.fov[:, -1, -1].any()
    assert float(cvc.fov.float().mean(dim=(1, 2)).max()) < 0.8
