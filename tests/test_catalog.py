"""helpers.catalog: MedMNIST metadata comes from the medmnist package, never retyped."""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path

import pytest

from helpers import catalog

INFO = catalog.INFO


def test_names_are_the_2d_sets_in_package_order():
    names = catalog.medmnist_names()
    assert names == [n for n in INFO if not n.endswith("3d")]
    assert "pneumoniamnist" in names and "chestmnist" in names
    assert len(names) == 12 and not any(n.endswith("3d") for n in names)


def test_info_is_read_from_the_installed_package_without_importing_it_whole():
    package_dir = Path(next(iter(importlib.util.find_spec("medmnist").submodule_search_locations)))
    assert Path(catalog._INFO_MODULE.__file__) == package_dir / "info.py"
    assert catalog.HOMEPAGE.startswith("https://") and catalog.MEDMNIST_VERSION
    assert catalog.SIZES == (28, 64, 128, 224)


def test_pneumoniamnist_entry_at_28_px():
    e = catalog.entry("pneumoniamnist")
    info = INFO["pneumoniamnist"]
    assert e.name == "pneumoniamnist" and e.size == 28
    assert e.file_name == "pneumoniamnist.npz"
    assert e.url == info["url"] and e.md5 == info["MD5"] == "28209eda62fecd6e6a2d98b1501bb15f"
    assert e.class_names == ["normal", "pneumonia"]
    assert e.n_channels == 1 and e.task == "binary-class"
    assert e.n_samples == {"train": 4708, "val": 524, "test": 624}
    assert e.licence == info["license"] and e.description == info["description"]
    assert not e.multi_label


@pytest.mark.parametrize("size", [64, 128, 224])
def test_larger_sizes_use_their_own_file_url_and_md5(size):
    e = catalog.entry("bloodmnist", size)
    assert e.file_name == f"bloodmnist_{size}.npz"
    assert e.url == INFO["bloodmnist"][f"url_{size}"]
    assert e.md5 == INFO["bloodmnist"][f"MD5_{size}"]
    assert e.n_channels == 3


def test_every_name_and_size_builds_with_labels_in_index_order():
    for name in catalog.medmnist_names():
        labels = INFO[name]["label"]
        for size in catalog.SIZES:
            e = catalog.entry(name, size)
            assert e.class_names == [labels[str(i)] for i in range(len(labels))]
    # organamnist has 11 classes: string order would put "10" before "2".
    assert catalog.entry("organamnist").class_names[10] == INFO["organamnist"]["label"]["10"]


def test_name_matching_ignores_case_and_spaces():
    assert catalog.entry(" PneumoniaMNIST ").name == "pneumoniamnist"
    assert catalog.is_medmnist_name("BloodMNIST")
    assert not catalog.is_medmnist_name("organmnist3d")
    assert not catalog.is_medmnist_name(3)


def test_chestmnist_is_flagged_multi_label():
    assert catalog.entry("chestmnist").multi_label


def test_entry_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        catalog.entry("pneumoniamnist").md5 = "0" * 32


def test_unknown_name_lists_valid_names_and_suggests_the_closest():
    with pytest.raises(ValueError) as err:
        catalog.entry("pneumonimnist")
    text = str(err.value)
    assert "Did you mean 'pneumoniamnist'" in text
    assert all(name in text for name in catalog.medmnist_names())


def test_3d_name_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="3D"):
        catalog.entry("organmnist3d")


@pytest.mark.parametrize("size", [32, 0, "28", 28.0, True])
def test_unknown_size_lists_valid_sizes(size):
    with pytest.raises(ValueError, match="28, 64, 128, 224"):
        catalog.entry("pneumoniamnist", size)


def test_missing_url_for_a_size_is_a_clear_error(monkeypatch):
    record = {k: v for k, v in INFO["pneumoniamnist"].items() if k not in ("url_64", "MD5_64")}
    monkeypatch.setitem(catalog.INFO, "pneumoniamnist", record)
    with pytest.raises(ValueError, match="no 'url_64'"):
        catalog.entry("pneumoniamnist", 64)
    assert catalog.entry("pneumoniamnist", 28).file_name == "pneumoniamnist.npz"
