"""Detection without private data: frame selection, synthetic folders, field of view, multi-scale scoring,
NMS with the tolerance rule, hard negatives, a whole run, and the Kvasir-SEG download against a local server.

Every frame here is built by the tests (or by :mod:`helpers.detection.data`), with known answers.
"""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.detection import data as polyp_data
from helpers.detection import experiment, froc, maps, patches, video
from helpers.datasets import Split
from helpers.download import DownloadError

from test_download import Server


# ------------------------------------------------------------------------------------------
# toy models and frames with known answers
# ------------------------------------------------------------------------------------------

class RedCentre(torch.nn.Module):
    """Logit of 'polyp' grows with how red the patch's centre is (fixed, centre-weighted)."""

    def __init__(self, patch: int):
        super().__init__()
        r = torch.arange(patch, dtype=torch.float32) - (patch - 1) / 2
        g = torch.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * (patch / 6) ** 2))
        self.register_buffer("weight", (torch.stack([g, -g / 2, -g / 2]) / g.sum())[None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = 12 * (torch.nn.functional.conv2d(x, self.weight).flatten(1) - 0.3)
        return torch.cat([torch.zeros_like(z), z], dim=1)


class MeanRed(torch.nn.Module):
    """sigmoid(logit) = mean red of the patch: the same for every flip/rotation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, 0].mean(dim=(1, 2)).clamp(1e-4, 1 - 1e-4)
        return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


def frames_from(images: list[np.ndarray], masks: list[np.ndarray], sequences: list[str] | None = None) -> video.PolypFrames:
    """PolypFrames from (H, W, 3) uint8 arrays and bool masks (field of view computed as on load)."""
    imgs = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    seqs = sequences or [str(i) for i in range(len(images))]
    return video.PolypFrames(imgs, torch.from_numpy(np.stack(masks)), [str(i) for i in range(len(images))], seqs,
                             Path("."), sequences is not None)


def scope_frame(h: int = 120, w: int = 160) -> np.ndarray:
    """A grey frame inside a circular field of view (black outside)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.full((h, w, 3), 90, np.uint8)
    img[(yy - h / 2) ** 2 + (xx - w / 2) ** 2 > (0.5 * h) ** 2] = 0
    return img


def red_square(img: np.ndarray, cy: int, cx: int, side: int) -> np.ndarray:
    """Paint a red square (in place) and return its mask."""
    mask = np.zeros(img.shape[:2], bool)
    mask[cy - side // 2:cy + side // 2, cx - side // 2:cx + side // 2] = True
    img[mask] = (230, 20, 20)
    return mask


def settings(patch: int = 12, window: float = 24, **kw) -> maps.DetectorSettings:
    return maps.DetectorSettings(patch=patch, window=window, **kw)


# ------------------------------------------------------------------------------------------
# bounded frame selection
# ------------------------------------------------------------------------------------------

def test_select_frames_bounds_a_folder_without_sequences():
    sequences = [f"f{i}" for i in range(5000)]           # each frame its own group
    split = video.split_sequences(sequences, seed=0)
    chosen = video.select_frames(sequences, split, frame_step=4, max_train=80, max_val=30, max_test=40)
    assert [len(chosen[k]) for k in ("train", "val", "test")] == [80, 30, 40]
    for k in chosen:
        assert set(chosen[k]) <= set(split[k])
    unbounded = video.select_frames(sequences, split)
    assert all(len(unbounded[k]) == len(split[k]) for k in split)


def test_select_frames_thins_training_and_keeps_whole_test_sequences():
    sequences = [f"s{i // 20}" for i in range(200)]       # 10 sequences of 20 frames
    split = video.split_sequences(sequences, seed=1)
    chosen = video.select_frames(sequences, split, frame_step=4, max_test=None)
    per_seq = {s: [i for i in chosen["train"] if sequences[i] == s] for s in {sequences[i] for i in split["train"]}}
    assert all(len(v) == 5 for v in per_seq.values())    # every 4th of 20 frames
    assert np.array_equal(chosen["test"], split["test"])  # every test frame
    capped = video.select_frames(sequences, split, max_test=25, seed=0)
    kept = {sequences[i] for i in capped["test"]}
    assert len(capped["test"]) == 20 * len(kept) <= 25     # whole sequences only


# ------------------------------------------------------------------------------------------
# synthetic folders
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return polyp_data.make_synthetic_polyp_folder(tmp_path_factory.mktemp("syn") / "syn", n_frames=24,
                                                  n_sequences=6, size=(96, 128), seed=0)


def test_synthetic_folder_split_fov_and_sampling(synthetic):
    frames = video.load_polyp_frames(synthetic)
    assert len(frames) == 24 and frames.has_sequences and len(frames.sequence_names) == 6
    assert polyp_data.check_polyp_folder(synthetic) == {"frames": 24, "sizes": 1, "has_sequences": True}
    split = video.split_by_sequence(frames, seed=0)
    assert video.sequences_disjoint(frames, split) and sum(len(v) for v in split.values()) == 24
    assert not frames.fov[:, 0, 0].any() and frames.fov[:, 48, 64].all()      # black corners, open centre
    assert bool((frames.masks <= frames.fov).all())                             # polyps lie in the view
    _, plan = patches.sample_patches(frames, split["train"], patch=16, seed=0, return_plan=True)
    neg = plan[plan["label"] == 0]
    assert frames.fov.numpy()[neg["frame"], neg["anchor_y"], neg["anchor_x"]].all()
    assert "SYNTHETIC" in polyp_data.describe_dataset(synthetic, True)


def test_synthetic_jpeg_folder_without_sequences(tmp_path):
    folder = polyp_data.make_synthetic_polyp_folder(tmp_path / "jpg", n_frames=6, n_sequences=3, size=(64, 96),
                                                    jpeg=True, sequences_file=False)
    assert sorted(p.suffix for p in (folder / "masks").iterdir()) == [".jpg"] * 6
    frames = video.load_polyp_frames(folder)
    assert not frames.has_sequences and len(frames.sequence_names) == 6
    assert frames.masks.any(dim=(1, 2)).all()
    assert "split independently" in polyp_data.describe_dataset(tmp_path / "x", False)


# ------------------------------------------------------------------------------------------
# maps, FOV, multi-scale scoring, NMS, matching
# ------------------------------------------------------------------------------------------

def test_windows_outside_the_field_of_view_are_not_scored():
    img = scope_frame()
    mask = red_square(img, 60, 80, 20)
    red_square(img, 8, 8, 14)                               # a red blob in the black corner, outside the view
    frames = frames_from([img], [mask])
    assert not frames.fov[0, 8, 8] and frames.fov[0, 60, 80]
    inside = maps.detect(RedCentre(12), frames, [0], settings(max_candidates=5, average_views=False))[0]
    assert all(frames.fov[0, y, x] for y, x, _ in inside)
    assert abs(inside[0][0] - 60) <= 6 and abs(inside[0][1] - 80) <= 6
    anywhere = maps.detect(RedCentre(12), frames, [0], settings(max_candidates=5, average_views=False, use_fov=False))[0]
    assert any(not frames.fov[0, y, x] for y, x, s in anywhere if s > 0.5)   # without the FOV, the corner fires


def test_multiscale_maps_find_small_and_large_polyps():
    small, large = scope_frame(), scope_frame()
    masks = [red_square(small, 60, 60, 10), red_square(large, 60, 90, 34)]
    frames = frames_from([small, large], masks)
    cfg = settings(patch=12, window=16, scales=(1.0, 1.6, 2.4), max_candidates=3)
    matches, table = maps.score_frames(RedCentre(12), frames, [0, 1], cfg)
    top = matches.sort_values("score", ascending=False).groupby("frame").head(1)
    assert top["is_tp"].all() and table["n_polyps"].tolist() == [1, 1]
    curve = froc.froc_curve(matches, len(table), 2)
    assert froc.sensitivity_at_fp(curve, (0.0,))[0.0] == 1.0


def test_view_average_of_a_view_invariant_model_is_the_crop_mean():
    img = np.zeros((64, 64, 3), np.uint8)
    img[..., 0] = 200                                      # uniform red: every crop's mean red is 200/255
    frames = frames_from([img], [np.zeros((64, 64), bool)])
    cands = maps.rescore_candidates(MeanRed(), frames.images[0], [(32, 32, 0.0)], patch=8, window=16,
                                     scales=(1.0, 1.2, 1.5))
    assert cands[0][2] == pytest.approx(200 / 255, abs=1e-3)


def test_broad_response_gives_one_true_positive_and_no_false_positive():
    img = scope_frame()
    red_square(img, 60, 58, 16)                            # one polyp with two red lobes: two peaks on it
    red_square(img, 60, 102, 16)
    mask = np.zeros(img.shape[:2], bool)
    mask[50:70, 50:110] = True
    frames = frames_from([img], [mask])
    cfg = settings(patch=12, window=16, scales=(1.0,), nms_radius=0.5, max_candidates=10, average_views=False)
    matches, _ = maps.score_frames(RedCentre(12), frames, [0], cfg)
    on_polyp = matches[matches["polyp_id"] == 0]
    assert len(on_polyp) > 1 and on_polyp["is_tp"].sum() == 1 and not on_polyp["is_fp"].any()
    assert matches.loc[matches["score"].idxmax(), "is_tp"]


def test_tolerance_counts_a_near_miss_as_a_hit():
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    near = [(22, 15, 0.9)]                                 # 3 px below the polyp
    strict = froc.match_candidates([near], [mask])
    loose = froc.match_candidates([near], [mask], tolerance=4)
    assert strict["is_fp"].tolist() == [True] and loose["is_tp"].tolist() == [True]
    far = froc.match_candidates([[(35, 35, 0.9)]], [mask], tolerance=4)
    assert far["is_fp"].tolist() == [True]


# ------------------------------------------------------------------------------------------
# hard negatives
# ------------------------------------------------------------------------------------------

def test_hard_negatives_are_the_distractor_not_the_polyp():
    img = scope_frame()
    mask = red_square(img, 60, 50, 18)
    red_square(img, 60, 115, 18)                           # a polyp look-alike off the mask: the hard negative
    frames = frames_from([img], [mask])
    plan = maps.mine_hard_negatives(RedCentre(12), frames, [0], settings(window=20, scales=(1.0,)), per_frame=2)
    assert len(plan) >= 1 and (plan["label"] == 0).all()
    best = plan.iloc[0]
    assert abs(best["cy"] - 60) <= 6 and abs(best["cx"] - 115) <= 6
    assert not mask[plan["anchor_y"], plan["anchor_x"]].any()
    crops = patches.crop_patches(frames.images, plan, 12)
    assert crops.shape == (len(plan), 3, 12, 12) and crops[0, 0].float().mean() > 150   # red inside


def test_with_hard_negatives_keeps_classes_balanced():
    train = Split(torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.tensor([0, 1] * 4))
    grown = experiment.with_hard_negatives(train, torch.ones(6, 3, 4, 4, dtype=torch.uint8), seed=0)
    assert len(grown) == 20 and grown.class_counts(2)[0] == grown.class_counts(2)[1] == 10


# ------------------------------------------------------------------------------------------
# a whole run on a synthetic folder
# ------------------------------------------------------------------------------------------

def test_run_polyp_on_a_synthetic_folder(synthetic, tmp_path, single_thread):
    config = experiment.PolypRunConfig.from_flat(dataset=str(synthetic), strategy="scratch", frame_size=(96, 128), patch=32,
                                      steps=4, hard_steps=2, hard_per_frame=2, hard_frames=4, batch_size=16,
                                      max_train_frames=6, max_val_frames=3, max_test_frames=None, n_bootstrap=50)
    row = experiment.run_polyp(config, weights_dir=tmp_path)
    data = experiment.prepare(config)
    assert row["test_frames"] == len(data.split["test"]) == data.folder_split["test"]     # every test frame
    assert row["n_train"] <= 6 and row["val_frames"] == 3 and not row["diverged"]
    assert row["kept"] in ("before", "after") and row["bn_mode_used"] == "recalibrate"   # scratch: batch statistics
    assert row["precision"] == "float32"   # recorded: mixed precision only on CUDA or when asked
    assert row["val_score"] == row[f"val_figure_{row['kept']}"]                          # selection on validation
    for rate in froc.FP_RATES:
        key = f"froc_sens@{rate:g}"
        assert 0 <= row[key + "_lo"] <= row[key] <= row[key + "_hi"] <= 1
    model = experiment.load_detector(config, tmp_path)
    assert sum(p.numel() for p in model.parameters()) > 0


# ------------------------------------------------------------------------------------------
# Kvasir-SEG download, against a local server with a zip built here
# ------------------------------------------------------------------------------------------

def kvasir_zip(n: int = 3, broken_mask: bool = False, seed: int = 0) -> bytes:
    """A zip in Kvasir-SEG's layout: Kvasir-SEG/images/*.jpg and Kvasir-SEG/masks/*.jpg."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for k in range(n):
            img = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
            mask = np.zeros((40, 60), np.uint8)
            mask[10:25, 20:40] = 255
            for sub, arr in (("images", img), ("masks", mask)):
                out = io.BytesIO()
                Image.fromarray(arr).save(out, format="JPEG")
                data = out.getvalue()[:40] if (broken_mask and sub == "masks" and k == 1) else out.getvalue()
                zf.writestr(f"Kvasir-SEG/{sub}/cju{k:04d}.jpg", data)
    return buffer.getvalue()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


def test_kvasir_fetch_unzips_checks_and_records_the_digest(server, tmp_path):
    server.routes["/kvasir-seg.zip"] = ("ok", kvasir_zip())
    folder = polyp_data.fetch_kvasir_seg(tmp_path, url=server.url("/kvasir-seg.zip"), progress=False)
    assert folder == tmp_path / "Kvasir-SEG"
    assert polyp_data.check_polyp_folder(folder)["frames"] == 3
    record = (tmp_path / "kvasir-seg.zip.sha256").read_text().strip()
    assert record == polyp_data.sha256sum(tmp_path / "kvasir-seg.zip")
    frames = video.load_polyp_frames(folder)
    assert len(frames) == 3 and not frames.has_sequences


def test_kvasir_a_different_later_copy_is_reported(server, tmp_path):
    server.routes["/kvasir-seg.zip"] = ("ok", kvasir_zip(seed=0))
    folder = polyp_data.fetch_kvasir_seg(tmp_path, url=server.url("/kvasir-seg.zip"), progress=False)
    first = (tmp_path / "kvasir-seg.zip.sha256").read_text()
    import shutil
    shutil.rmtree(folder)
    server.routes["/kvasir-seg.zip"] = ("ok", kvasir_zip(seed=1))
    with pytest.raises(polyp_data.KvasirChangedError, match="accept_new_copy"):
        polyp_data.fetch_kvasir_seg(tmp_path, url=server.url("/kvasir-seg.zip"), progress=False)
    assert (tmp_path / "kvasir-seg.zip.sha256").read_text() == first and not folder.exists()
    polyp_data.fetch_kvasir_seg(tmp_path, url=server.url("/kvasir-seg.zip"), progress=False, accept_new_copy=True)
    assert (tmp_path / "kvasir-seg.zip.sha256").read_text() != first


def test_kvasir_bad_mask_and_cut_download_leave_no_folder(server, tmp_path):
    server.routes["/bad.zip"] = ("ok", kvasir_zip(broken_mask=True))
    with pytest.raises(ValueError, match="unusable"):
        polyp_data.fetch_kvasir_seg(tmp_path, url=server.url("/bad.zip"), progress=False)
    assert not (tmp_path / "Kvasir-SEG").exists()
    server.routes["/cut.zip"] = ("cut", kvasir_zip())
    with pytest.raises(DownloadError):
        polyp_data.fetch_kvasir_seg(tmp_path / "other", url=server.url("/cut.zip"), progress=False)
    assert not (tmp_path / "other" / "Kvasir-SEG").exists()


def test_cli_find_and_synthetic(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FTLAB_POLYP_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("FTLAB_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setattr(polyp_data, "project_root", lambda: tmp_path)
    monkeypatch.setattr(video, "project_root", lambda: tmp_path)
    assert polyp_data.main(["find"]) == 1
    assert "fetch-kvasir" in capsys.readouterr().err
    assert polyp_data.main(["synthetic", str(tmp_path / "s"), "--frames", "4", "--sequences", "2"]) == 0
    monkeypatch.setenv("FTLAB_POLYP_DIR", str(tmp_path / "s"))
    assert polyp_data.main(["find"]) == 0
    assert capsys.readouterr().out.strip().endswith("s")
