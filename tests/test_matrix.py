"""The suite's core path on every kind of data set a user may bring, in the fast profile.

For each synthetic set (binary, 3-class RGB, 8-class, 14-finding multi-label, a 40-image set, a 1:20
imbalance; built by ``conftest.matrix_arrays``), for an RGB image folder of non-square images, and for
the real PneumoniaMNIST and RetinaMNIST files: load -> nested budget subsets -> fit -> evaluate ->
sweep (a results store) -> analysis. The checks are properties (finite losses, AUC in [0, 1], one
probability per class or finding, nested subsets, every run present), never exact metrics.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import MATRIX_KINDS, matrix_arrays, medmnist_file, write_matrix_npz
from helpers import experiments, findings, loading, models, profiles, runner, subsets, train

FAST = profiles.get_profile("fast").classification
EXPECTED_TASK = {"binary": "binary", "rgb-3-class": "multi-class", "8-class": "multi-class",
                 "multi-label-14": "multi-label", "tiny-40": "binary", "imbalanced-1-20": "binary"}


def write_image_folder(folder: Path, kind: str = "rgb-3-class", size: tuple[int, int] = (40, 28)) -> Path:
    """The synthetic ``kind`` set's train and test images as PNGs in one sub-folder per class, resized to
    ``size`` (width x height, so not square)."""
    arrays = matrix_arrays(kind)
    for split in ("train", "test"):
        for i, (image, label) in enumerate(zip(arrays[f"{split}_images"], arrays[f"{split}_labels"][:, 0])):
            target = folder / f"class_{label}"
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).resize(size).save(target / f"{split}_{i:04d}.png")
    return folder


def fast_grid(dataset: str, fractions) -> list[experiments.RunConfig]:
    """The fast profile's sweep on ``dataset``: scratch and the head-only level, one seed."""
    return experiments.profile_grid(FAST, [dataset], strategies=("scratch", "last"), fractions=fractions, seeds=(0,),
                                    n_bootstrap=50)


def check_subsets(capped) -> tuple[float, ...]:
    """Nested, stratified (within one image per class or stratum) budgets; returns the usable fractions."""
    labels = capped.train.labels
    fractions, _ = subsets.usable_fractions(labels, FAST.fractions)
    assert 1.0 in fractions, "the whole budget must always be usable"
    trained = {f: subsets.budget_split(labels, f, seed=0, val_share=FAST.val_share)[0] for f in fractions}
    assert subsets.is_nested(trained)
    for fraction, index in subsets.nested_subsets(labels, subsets.feasible_fractions(labels, FAST.fractions)[0]).items():
        assert subsets.share_deviation(labels, index, fraction) <= 0.5
    return fractions


def check_fit_and_evaluate(capped) -> None:
    """One scratch run of the fast profile: finite losses, one probability per class or finding, AUC in [0, 1]."""
    run = subsets.training_subset(capped, 1.0, val_share=FAST.val_share)
    model = models.build_model("efficientnet_lite0", run.num_classes, image_size=FAST.image_size, seed=0)
    config = train.TrainConfig.from_budget(FAST.budget, patience=None, lr=0.01, head_lr_mult=1.0, quiet=True)
    result = train.fit(model, run, config)
    assert np.isfinite(result.history[["train_loss", "val_loss"]].to_numpy()).all()
    metrics, scores = train.evaluate(model, run.test, n_boot=50)
    assert scores.shape == (len(run.test), run.num_classes)
    assert np.all((scores >= 0) & (scores <= 1))
    if run.multi_label:
        assert not np.allclose(scores.sum(1), 1.0), "multi-label scores are one sigmoid per finding"
    else:
        assert np.allclose(scores.sum(1), 1.0, atol=1e-4), "class probabilities sum to one"
    assert 0.0 <= metrics["auc"] <= 1.0 and 0.0 <= metrics["acc"] <= 1.0


def check_sweep_and_analysis(dataset: str, fractions, store: Path) -> None:
    """The fast sweep into a results store, then the learning-curve analysis on it."""
    configs = fast_grid(dataset, fractions)
    df = runner.run_sweep(configs, store, progress=False)
    assert len(df) == len(configs) and not df["diverged"].any()
    assert df["test_auc"].between(0, 1).all() and df["val_score"].between(0, 1).all()
    summary = findings.summary_table(df, n_boot=50)
    assert len(summary) == len(fractions)
    assert all(isinstance(s, str) and s for s in findings.findings(df, n_boot=50))


def core_path(dataset: str, tmp_path: Path, expected_task: str) -> None:
    """load -> subsets -> fit -> evaluate -> sweep -> analysis, for one data set."""
    ds = loading.load_dataset(dataset, size=FAST.data_size)
    assert ds.task == expected_task
    capped = subsets.cap_dataset(ds, FAST.max_train, FAST.max_eval)
    fractions = check_subsets(capped)
    check_fit_and_evaluate(capped)
    check_sweep_and_analysis(dataset, fractions, tmp_path / "store")


@pytest.fixture(autouse=True)
def fresh_dataset_cache():
    """Each test loads its own files (paths in tmp folders can repeat across tests)."""
    experiments.cached_dataset.cache_clear()
    yield
    experiments.cached_dataset.cache_clear()


@pytest.mark.slow   # a sweep per data kind
@pytest.mark.parametrize("kind", list(MATRIX_KINDS))
def test_core_path_on_synthetic_sets(kind, tmp_path, single_thread):
    core_path(str(write_matrix_npz(tmp_path, kind)), tmp_path, EXPECTED_TASK[kind])


@pytest.mark.slow
def test_core_path_on_an_rgb_image_folder_of_non_square_images(tmp_path, single_thread):
    folder = write_image_folder(tmp_path / "my_images")
    ds = loading.load_dataset(str(folder), size=None)
    assert ds.channels == 3 and ds.image_size == (28, 40) and ds.class_names == ["class_0", "class_1", "class_2"]
    core_path(str(folder), tmp_path, "multi-class")


@pytest.mark.slow
@pytest.mark.parametrize("name,task", [("pneumoniamnist", "binary"), ("retinamnist", "multi-class")])
def test_core_path_on_real_medmnist(name, task, tmp_path, single_thread, monkeypatch):
    path = medmnist_file(name)
    if path is None:
        pytest.skip(f"{name}.npz is not in $FTLAB_DATA_DIR, ../shared/data/medmnist or data/")
    monkeypatch.setenv("FTLAB_DATA_DIR", str(path.parent))
    core_path(name, tmp_path, task)


def test_multi_label_subsets_keep_rare_findings_in_proportion():
    labels = torch.from_numpy(matrix_arrays("multi-label-14")["train_labels"]).long()
    index = subsets.fraction_indices(labels, 0.5, seed=3)
    full, half = labels.sum(0).double(), labels[index].sum(0).double()
    assert torch.all(half > 0), "every finding keeps an image at half the data"
    assert torch.all((half - 0.5 * full).abs() <= torch.maximum(0.25 * full, torch.full_like(full, 2.0)))
    assert subsets.is_nested(subsets.nested_subsets(labels, (0.1, 0.25, 0.5, 1.0), seed=3))


def test_small_imbalanced_set_is_stratified_to_the_image():
    labels = torch.tensor([1] * 3 + [0] * 60)
    for fraction in (0.2, 0.5, 1.0):
        index = subsets.fraction_indices(labels, fraction)
        assert subsets.share_deviation(labels, index, fraction) <= 0.5
    kept, left_out = subsets.feasible_fractions(labels, (0.01, 0.1, 0.2, 1.0))
    assert kept == (0.2, 1.0) and left_out == [0.01, 0.1]
    assert math.isclose(subsets.smallest_fraction(labels), 0.5 / 3)


def test_usable_fractions_are_exactly_those_that_can_hold_out_validation():
    labels = torch.tensor([1] * 20 + [0] * 400)
    usable, left_out = subsets.usable_fractions(labels, (0.05, 0.08, 0.25))
    assert usable == (0.08, 0.25) and left_out == [0.05]   # 5% keeps 1 rare image: none to hold out
    for fraction in usable:
        train_idx, val_idx = subsets.budget_split(labels, fraction)
        assert set(labels[val_idx].tolist()) == {0, 1} == set(labels[train_idx].tolist())
    with pytest.raises(ValueError, match="at least 2 per class"):
        subsets.budget_split(labels, 0.05)
