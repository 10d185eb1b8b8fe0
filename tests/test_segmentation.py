"""Segmentation without private data: three-class labels, Dice / IoU / boundary distance with known answers
(Dice and IoU cross-checked against scikit-learn), dense class maps equal to classifying each window alone,
the two-level bootstrap, a whole run on a synthetic folder, selection blind to test columns, the study's
printed boundary errors, and finding 3 across applications from hand-made tables."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.metrics import f1_score, jaccard_score

from helpers import applications, runner, yardsticks
from helpers.detection import data as polyp_data
from helpers.detection import maps as dmaps
from helpers.detection import report as detection_report
from helpers.detection import video
from helpers.segmentation import experiment, labels, maps, report, scores


def square(size: tuple[int, int], top: int, left: int, side: int, width: int | None = None) -> np.ndarray:
    m = np.zeros(size, dtype=bool)
    m[top:top + side, left:left + (width or side)] = True
    return m


# ------------------------------------------------------------------------------------------ labels

def test_three_class_labels_of_a_square_have_known_counts():
    mask = square((40, 40), 10, 10, 20)
    lab = labels.three_class_labels(mask, band=3)
    assert (lab == labels.BACKGROUND).sum() == 1600 - 400
    assert (lab == labels.INTERIOR).sum() == 14 * 14          # 3 px off every side
    assert (lab == labels.BOUNDARY).sum() == 400 - 196
    assert ((lab != labels.BACKGROUND) == mask).all()        # boundary + interior = the polyp
    assert lab[10, 20] == labels.BOUNDARY and lab[12, 20] == labels.BOUNDARY and lab[13, 20] == labels.INTERIOR


def test_three_class_labels_thin_polyp_and_frame_edge():
    thin = square((20, 20), 5, 2, 4, 12)                     # 4 px tall: no pixel deeper than 2 px
    assert labels.INTERIOR not in labels.three_class_labels(thin, band=2)
    edge = square((20, 20), 0, 0, 10)                        # touching the frame: the border counts as outside
    assert labels.three_class_labels(edge, band=1)[0, 5] == labels.BOUNDARY
    with pytest.raises(ValueError, match="band"):
        labels.three_class_labels(edge, band=0)
    assert labels.band_width((144, 192)) == 4 and labels.band_width((10, 10)) == 1


def test_synthetic_folder_masks_give_three_classes(tmp_path):
    folder = polyp_data.make_synthetic_polyp_folder(tmp_path / "synth", n_frames=6, n_sequences=3)
    frames = video.load_polyp_frames(folder)
    band = labels.band_width(frames.frame_size)
    for mask in frames.masks:
        lab = labels.three_class_labels(mask, band)
        assert set(np.unique(lab)) == {0, 1, 2}
        assert ((lab > 0) == mask.numpy()).all()


# ------------------------------------------------------------------------------------------ scores

def test_scores_known_answers():
    a = square((30, 30), 5, 5, 10)
    half = square((30, 30), 5, 5, 10, 5)
    far = square((30, 30), 20, 20, 5)
    assert scores.dice(a, a) == 1 and scores.iou(a, a) == 1 and scores.boundary_distance(a, a) == 0
    assert scores.dice(a, far) == 0 and scores.iou(a, far) == 0
    assert scores.dice(a, half) == pytest.approx(2 * 50 / 150) and scores.iou(a, half) == pytest.approx(0.5)
    p, t = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    p[5, 5], t[5, 10] = True, True
    assert scores.boundary_distance(p, t) == pytest.approx(5.0)
    empty = np.zeros((30, 30), bool)
    assert scores.dice(empty, empty) == 1 and scores.boundary_distance(empty, empty) == 0
    assert np.isnan(scores.boundary_distance(empty, a))


def test_boundary_distance_matches_brute_force():
    outer, inner = square((40, 40), 10, 10, 20), square((40, 40), 12, 12, 16)
    bo, bi = np.argwhere(scores.boundary(outer)), np.argwhere(scores.boundary(inner))
    assert len(bo) == 4 * 19 and len(bi) == 4 * 15                    # one-pixel rings
    d = np.sqrt(((bo[:, None, :] - bi[None, :, :]) ** 2).sum(-1))
    expected = (d.min(1).sum() + d.min(0).sum()) / (len(bo) + len(bi))
    assert scores.boundary_distance(outer, inner) == pytest.approx(expected)
    assert scores.boundary_distance(inner, outer) == pytest.approx(expected)   # symmetric


def test_dice_and_iou_match_scikit_learn():
    rng = np.random.default_rng(0)
    for _ in range(5):
        p, t = rng.random((24, 32)) < 0.3, rng.random((24, 32)) < 0.4
        assert scores.dice(p, t) == pytest.approx(f1_score(t.ravel(), p.ravel()))
        assert scores.iou(p, t) == pytest.approx(jaccard_score(t.ravel(), p.ravel()))


def test_frame_scores_charge_the_width_when_one_mask_is_empty():
    t = np.stack([square((20, 40), 5, 5, 8), square((20, 40), 5, 5, 8)])
    p = np.stack([t[0], np.zeros((20, 40), bool)])
    table = scores.frame_scores(p, t)
    assert table["dice"].tolist() == [1.0, 0.0]
    assert table["boundary_px"].tolist() == [0.0, 40.0] and table["boundary_share"].tolist() == [0.0, 1.0]
    assert table["one_empty"].tolist() == [False, True]
    with pytest.raises(ValueError, match="both be"):
        scores.frame_scores(p[:1], t)


# ------------------------------------------------------------------------------------------ dense maps

class ThreeWay(torch.nn.Module):
    """A fixed random conv net with three outputs (any deterministic window classifier will do)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 5, stride=2)
        self.head = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.conv(x).relu().mean((2, 3)) * 5)


def test_dense_class_maps_equal_classifying_each_window_alone():
    torch.manual_seed(1)
    image = (torch.rand(3, 30, 44) * 255).to(torch.uint8)
    model, patch, window, stride = ThreeWay().eval(), 16, 20.0, 5.0
    cells = dmaps.class_maps(model, image[None], patch, stride, window)[0]            # (3, h, w)
    geo = dmaps.map_geometry((30, 44), patch, stride, window)
    small = F.interpolate(image[None].float() / 255, size=geo.small_size, mode="bilinear", align_corners=False,
                          antialias=True)[0]
    padded = torch.zeros(3, small.shape[1] + 2 * geo.pad, small.shape[2] + 2 * geo.pad)
    padded[:, geo.pad:geo.pad + small.shape[1], geo.pad:geo.pad + small.shape[2]] = small
    assert cells.shape[1:] == geo.map_size
    with torch.no_grad():
        for i in range(geo.map_size[0]):
            for j in range(geo.map_size[1]):
                y, x = i * geo.step, j * geo.step
                one = torch.softmax(model(padded[None, :, y:y + patch, x:x + patch]), 1)[0]
                torch.testing.assert_close(cells[:, i, j], one, atol=1e-5, rtol=1e-5)
    assert torch.allclose(cells.sum(0), torch.ones(geo.map_size))


def test_test_map_equals_the_cut_windows_classified():
    torch.manual_seed(3)
    image = (torch.rand(3, 30, 44) * 255).to(torch.uint8)
    model = ThreeWay().eval()
    settings = maps.SegmenterSettings(patch=16, window=20.0, stride=5.0, band=1)
    geo = settings.geometry((30, 44))                                   # the test map's cells, not the dense grid
    assert geo.step > 1
    cells = np.argwhere(np.ones(geo.map_size, bool))
    with torch.no_grad():
        one_by_one = torch.softmax(model(maps.cut_windows(image, geo, cells).float() / 255), 1)
    dense = dmaps.class_maps(model, image[None], 16, settings.stride, settings.window)[0]
    torch.testing.assert_close(one_by_one.T.reshape(3, *geo.map_size), dense, atol=2e-2, rtol=0)   # uint8 rounding


def test_training_windows_are_cut_like_test_windows():
    torch.manual_seed(2)
    image = (torch.rand(3, 30, 44) * 255).to(torch.uint8)
    settings = maps.SegmenterSettings(patch=16, window=20.0, stride=5.0, band=1)
    geo = settings.geometry((30, 44), dense=True)
    assert geo.step == 1
    cells = np.array([[0, 0], [3, 7], [geo.map_size[0] - 1, geo.map_size[1] - 1]])
    cut = maps.cut_windows(image, geo, cells).float() / 255
    every = dmaps._windows(dmaps.resize_frames(image[None], geo), geo).reshape(*geo.map_size, 3, 16, 16)
    for k, (i, j) in enumerate(cells):
        torch.testing.assert_close(cut[k], every[i, j], atol=0.5 / 255 + 1e-6, rtol=0)


def test_choose_threshold_best_dice_then_nearest_half():
    true = torch.zeros(2, 10, 10, dtype=torch.bool)
    true[:, 2:6, 2:6] = True
    prob = torch.where(true, torch.tensor(0.85), torch.tensor(0.75))    # only a cut above 0.75 separates them
    cut, value = maps.choose_threshold(prob, true)
    assert cut == 0.8 and value == 1.0
    flat = torch.where(true, torch.tensor(0.99), torch.tensor(0.01))    # every cut of the grid is perfect: a tie
    assert maps.choose_threshold(flat, true) == (0.5, 1.0)
    assert maps.mean_dice(prob, true, 0.5) == pytest.approx(2 * 16 / (100 + 16))


# ------------------------------------------------------------------------------------------ bootstrap

def test_frame_bootstrap_resamples_sequences_not_frames():
    values = np.r_[np.ones(50), np.zeros(25), np.ones(25)][None]   # four sequences, each all 1 or all 0
    seqs = ["a"] * 25 + ["b"] * 25 + ["c"] * 25 + ["d"] * 25
    by_sequence = report.frame_bootstrap(values, seqs, n_boot=2000)
    by_frame = report.frame_bootstrap(values, [str(k) for k in range(100)], n_boot=2000)
    assert by_sequence["mean"] == 0.75 and by_sequence["n_sequences"] == 4 and by_sequence["df"] == 3
    assert by_sequence["hi"] - by_sequence["lo"] > 2 * (by_frame["hi"] - by_frame["lo"])
    # the small-cluster interval: CR1 variance of 4 sequence means, t with 3 degrees of freedom
    from scipy import stats
    se = np.sqrt(np.var([1, 1, 0, 1], ddof=1) / 4)
    assert by_sequence["lo"] == pytest.approx(max(0.75 - stats.t.ppf(0.975, 3) * se, -np.inf))
    two = report.frame_bootstrap(values[:, :50], ["a"] * 25 + ["b"] * 25)
    assert np.isnan(two["lo"]) and np.isnan(two["p"])            # below 3 test sequences: no interval, no verdict
    constant = report.frame_bootstrap(np.full((3, 10), 0.7), list("aabbccddee"))
    assert constant["lo"] == pytest.approx(0.7) and constant["hi"] == pytest.approx(0.7)
    single = report.frame_bootstrap(np.array([[0.2, 0.4, 0.9]]), ["a", "a", "a"])
    assert single["mean"] == pytest.approx(0.5) and np.isnan(single["lo"]) and np.isnan(single["p"])
    with pytest.raises(ValueError, match="one sequence per frame"):
        report.frame_bootstrap(np.ones((1, 3)), ["a", "b"])


# ------------------------------------------------------------------------------------------ whole runs

@pytest.fixture(scope="module")
def seg_table(tmp_path_factory):
    folder = polyp_data.make_synthetic_polyp_folder(tmp_path_factory.mktemp("seg") / "synth", n_frames=30,
                                                    n_sequences=10, size=(72, 96))   # test: 2 sequences
    common = dict(dataset=str(folder), frame_size=(72, 96), max_train_frames=6, max_val_frames=4,
                  max_test_frames=6, steps=4, batch_size=16, per_class=4, stride=8.0, n_bootstrap=50)
    configs = runner.sweep_grid(experiment.SegRunConfig, None, ["scratch", "classifier", "all"], [0.5, 1.0], [0, 1],
                                **common)
    store = tmp_path_factory.mktemp("store") / "07_store"
    table = runner.run_sweep(configs, store, progress=False, tune_fractions=(1.0,),
                             lr_grid={"scratch": (0.01,), "finetune": (0.001, 0.003)})
    table.attrs["store"] = store
    return table


def test_segmentation_runs_score_every_test_frame(seg_table):
    done = detection_report.finished(seg_table)
    assert len(done) == len(seg_table) == 12
    assert done["val_score"].between(0, 1).all() and done["test_dice"].between(0, 1).all()
    assert done["threshold"].isin(labels.THRESHOLDS).all()
    assert (done["test_frames"] == done["test_frames"].iloc[0]).all()
    for fs in done["frame_scores"]:
        assert len(fs["dice"]) == done["test_frames"].iloc[0]
        assert len(fs["sequence"]) == len(fs["frame"]) == len(fs["boundary_px"])   # sequences recorded per frame
    small, large = done[done["fraction"] == 0.5], done[done["fraction"] == 1.0]
    assert small["n_train"].max() < large["n_train"].min(), "half the training sequences, fewer frames"
    summary = report.summary_table(seg_table, n_boot=100)
    assert (summary["dice_lo"].isna() | (summary["dice_lo"] <= summary["dice_hi"])).all()
    assert summary["dice"].between(0, 1).all()
    assert (done["test_sequences"] == 2).all()
    assert set(summary["strategy"]) == {"scratch", "classifier", "stem-classifier"}


def test_selection_ignores_test_columns(seg_table):
    done = detection_report.finished(seg_table).reset_index(drop=True)
    before = detection_report.best_tuned_choice(done)
    shuffled = done.copy()
    order = np.random.default_rng(0).permutation(len(done))
    for column in ("frame_scores", "test_dice", "test_iou", "test_boundary_px"):
        shuffled[column] = done[column].to_numpy()[order]
    assert detection_report.best_tuned_choice(shuffled) == before
    paired = report.paired_differences(done, before[0], n_boot=100)
    assert set(paired["metric"]) == {"dice", "boundary_px"}
    assert (paired["lo"].isna() | (paired["lo"] <= paired["hi"])).all()   # NaN: fewer than 3 test sequences
    assert report.segmentation_report(done, n_boot=100)[0].startswith("Depth chosen on the validation Dice")


def test_study_boundary_errors_are_the_printed_numbers():
    study = yardsticks.study_boundary_errors()
    assert len(study) == 10 and study["arm"].iloc[-2:].tolist() == ["scratch", "hand-crafted"]
    assert study["lumen-intima (um)"].iloc[0] == 101.0 and study["media-adventitia (um)"].iloc[-1] == 106.6
    curve = report.depth_curve(pd.DataFrame({"fraction": [1.0] * 3, "strategy": ["scratch", "a", "b"],
                                             "level_index": [-1, 0, 3], "boundary_px": [9.0, 8.0, 4.0]}), n_levels=4)
    ours = curve[curve["source"] == "this run"]
    assert ours["relative"].tolist() == [2.0, 1.0, 2.25]
    assert ours["share tuned"].tolist()[:2] == [0.25, 1.0] and np.isnan(ours["share tuned"].iloc[2])
    study = curve[curve["source"] == "study, lumen-intima"]
    assert study["share tuned"].iloc[0] == 1 / 8 and study["relative"].iloc[7] == 1.0


# ------------------------------------------------------------------------------------------ sweep rows

def test_sweep_rows_keep_the_chosen_rate_and_the_main_budget():
    rows = []
    for seed in (0, 1):
        for lr, val in ((0.01, 0.7), (0.03, 0.8)):
            rows.append(dict(strategy="scratch", fraction=1.0, seed=seed, lr=lr, val_score=val, val_loss=1.0, steps=100))
        rows.append(dict(strategy="scratch", fraction=0.5, seed=seed, lr=0.03, val_score=0.6, val_loss=1.0, steps=100))
    rows.append(dict(strategy="scratch", fraction=1.0, seed=0, lr=0.03, val_score=0.99, val_loss=1.0, steps=200))
    out = runner.sweep_rows(pd.DataFrame(rows))
    assert len(out) == 4 and (out["lr"] == 0.03).all() and (out["steps"] == 100).all()
    clash = pd.DataFrame(rows[:1] * 2)
    with pytest.raises(ValueError, match="mixes sweeps"):
        runner.sweep_rows(clash.assign(val_score=[0.1, 0.2]))


# ------------------------------------------------------------------------------------------ across applications

def across(rows: list[tuple]) -> pd.DataFrame:
    """(application, chosen, tied, strategy, difference, lo, hi) -> the table of across_applications."""
    out = [dict(application=a, metric="m", n_train=100, chosen=c, tied_on_validation=t, strategy=s, level_index=0,
                difference=d, lo=lo, hi=hi, reading="") for a, c, t, s, d, lo, hi in rows]
    return pd.DataFrame(out, columns=applications.COLUMNS)


def test_finding3_across_conditions_exclude_each_other():
    # a clear but small cost (interval below 0, above minus the margin) is "one depth serves all", not "holds"
    small = across([("A", "deep", False, "deep", 0, 0, 0), ("A", "deep", False, "mid", -0.011, -0.018, -0.004),
                    ("B", "mid", False, "mid", 0, 0, 0), ("B", "mid", False, "deep", -0.05, -0.2, 0.1)])
    assert applications.FAILS in applications.finding3_across(small)
    # with a tiny margin mid is costly in A, but deep is shown costly nowhere: one depth might still serve all
    assert applications.UNDECIDED in applications.finding3_across(small, margin=0.001)


def test_finding3_across_holds_fails_and_undecided():
    holds = across([("A", "deep", False, "deep", 0, 0, 0), ("A", "deep", False, "shallow", -0.1, -0.15, -0.05),
                    ("B", "shallow", False, "shallow", 0, 0, 0), ("B", "shallow", False, "deep", -0.05, -0.08, -0.03)])
    assert applications.HOLDS in applications.finding3_across(holds)
    one_way = across([("A", "deep", False, "deep", 0, 0, 0), ("A", "deep", False, "shallow", -0.1, -0.15, -0.05),
                      ("B", "shallow", False, "shallow", 0, 0, 0), ("B", "shallow", False, "deep", -0.01, -0.05, 0.03)])
    assert applications.UNDECIDED in applications.finding3_across(one_way)   # deep may serve B: not shown costly
    fails = across([("A", "deep", False, "deep", 0, 0, 0), ("A", "deep", False, "shallow", -0.005, -0.01, 0.0),
                    ("B", "shallow", False, "shallow", 0, 0, 0), ("B", "shallow", False, "deep", 0.0, -0.01, 0.01)])
    assert applications.FAILS in applications.finding3_across(fails)
    open_ = across([("A", "deep", False, "deep", 0, 0, 0), ("A", "deep", False, "shallow", -0.05, -0.2, 0.1),
                    ("B", "shallow", False, "shallow", 0, 0, 0), ("B", "shallow", False, "deep", -0.05, -0.2, 0.1)])
    assert applications.UNDECIDED in applications.finding3_across(open_)
    tied = across([("A", "deep", True, "deep", 0, 0, 0), ("B", "shallow", False, "shallow", 0, 0, 0)])
    assert applications.UNDECIDED in applications.finding3_across(tied)
    alone = across([("A", "deep", False, "deep", 0, 0, 0)])
    assert "fewer than two applications" in applications.finding3_across(alone)


def test_across_applications_reads_stores_and_names_missing_ones(seg_table, tmp_path):
    apps = [applications.Application("segmentation", "segmentation", seg_table.attrs["store"]),
            applications.Application("missing", "classification", tmp_path / "nothing")]
    table = applications.across_applications(apps, n_boot=50)
    seg = table[table["application"] == "segmentation"]
    chosen = detection_report.best_tuned_choice(seg_table)[0]
    assert (seg["chosen"] == chosen).all() and len(seg) == 3              # the choice, then the two other arms
    assert seg.iloc[0]["strategy"] == chosen and seg.iloc[0]["difference"] == 0
    assert (seg["lo"].isna() | (seg["lo"] <= seg["hi"])).all()   # NaN: fewer than 3 test sequences
    missing = table[table["application"] == "missing"]
    assert missing["chosen"].tolist() == [""] and "run its notebook first" in missing["reading"].iloc[0]
    assert applications.finding3_across(table).startswith("Finding 3 across applications")
    # the sign: arm minus chosen, the mean paired Dice difference over the shared seeds and frames
    done = detection_report.finished(seg_table)
    at = done[done["fraction"] == done["fraction"].max()]
    mean = {s: np.mean([np.mean(fs["dice"]) for fs in g["frame_scores"]]) for s, g in at.groupby("strategy")}
    for r in seg.iloc[1:].itertuples():
        assert r.difference == pytest.approx(mean[r.strategy] - mean[chosen])
        assert r.lo <= r.difference + 1e-9 or np.isnan(r.lo)


def test_the_cut_and_the_selection_figure_never_read_test_masks(tmp_path):
    folder = polyp_data.make_synthetic_polyp_folder(tmp_path / "a", n_frames=30, n_sequences=10, size=(72, 96))
    changed = tmp_path / "b"

    shutil.copytree(folder, changed)
    index = video.index_polyp_folder(changed)
    test = video.split_sequences(index.sequences, seed=0)["test"]
    for k in test:                                                   # every test mask replaced by another shape
        _, _, mask_path = index.pairs[int(k)]

        m = np.zeros((72, 96), np.uint8)
        m[5:30, 50:90] = 255
        Image.fromarray(m).save(mask_path)
    common = dict(frame_size=(72, 96), max_train_frames=6, max_val_frames=4, steps=4, batch_size=16, per_class=4,
                  stride=8.0, strategy="classifier", lr=0.001)
    rows = [experiment.run_segmentation(experiment.SegRunConfig.from_flat(dataset=str(f), **common)) for f in (folder, changed)]
    assert rows[0]["val_score"] == rows[1]["val_score"] and rows[0]["threshold"] == rows[1]["threshold"]
    assert rows[0]["test_dice"] != rows[1]["test_dice"], "the test masks did change the test figure"


def test_config_from_row_rebuilds_each_run_and_its_network(seg_table, tmp_path):
    done = detection_report.finished(seg_table)
    for _, row in done.iterrows():
        assert experiment.config_from_row(row).key() == row["config_hash"]
    row = done.iloc[0]
    config = experiment.config_from_row(row)
    first = experiment.trained_segmenter(config, tmp_path)           # no weights yet: the run is made again, saved
    assert (tmp_path / f"{config.key()}.pt").exists()
    again = experiment.load_segmenter(config, tmp_path)
    for a, b in zip(first.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="does not rebuild"):
        experiment.config_from_row({**row.to_dict(), "config_hash": "0" * 16})
