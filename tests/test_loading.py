"""helpers.loading: MedMNIST files, bring-your-own .npz files and image folders into uint8 tensors."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import medmnist_file
from helpers import catalog, download, loading
from helpers.loading import CorruptDataError, MissingDataError
from helpers.datasets import DataSet

PNEUMONIA_MD5 = "28209eda62fecd6e6a2d98b1501bb15f"


def shared_medmnist_dir() -> Path | None:
    """The folder holding the official pneumoniamnist.npz, if this machine has it."""
    path = medmnist_file("pneumoniamnist")
    return None if path is None else path.parent


@pytest.fixture
def isolated(tmp_path, monkeypatch) -> Path:
    """No data dir, no mirror, and a project root in tmp_path: nothing is read from or written to the repo."""
    monkeypatch.delenv(loading.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.setattr(loading, "project_root", lambda: root)
    return root


@pytest.fixture
def shared(isolated, monkeypatch) -> Path:
    """FTLAB_DATA_DIR pointing at the shared official PneumoniaMNIST (skip if absent)."""
    folder = shared_medmnist_dir()
    if folder is None:
        pytest.skip("the shared PneumoniaMNIST test file (../shared/data/medmnist) is not on this machine")
    monkeypatch.setenv(loading.DATA_DIR_ENV, str(folder))
    return folder


def synthetic(n=(12, 4, 6), shape=(17, 23), channels=None, classes=3, seed=0, label_shape="column"):
    """MedMNIST-layout arrays: images (N,H,W[,C]) uint8, labels (N,1) uint8, every class in every split."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in zip(loading.SPLITS, n):
        dims = (count, *shape) + ((channels,) if channels else ())
        arrays[f"{split}_images"] = rng.integers(0, 256, dims, dtype=np.uint8)
        labels = (np.arange(count) % classes).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None] if label_shape == "column" else labels
    return arrays


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/mirror"


# --------------------------------------------------------------------------- the real file


def test_official_pneumoniamnist(shared):
    path = loading.locate_medmnist("pneumoniamnist")
    assert path == shared / "pneumoniamnist.npz"
    assert loading.fetch_medmnist("PneumoniaMNIST", download=False) == path  # MD5 checked
    assert loading.verified_md5(path) == PNEUMONIA_MD5 == catalog.entry("pneumoniamnist").md5
    ds = loading.load_medmnist("pneumoniamnist", download=False)
    assert isinstance(ds, DataSet) and ds.name == "pneumoniamnist"
    assert (len(ds.train), len(ds.val), len(ds.test)) == (4708, 524, 624)
    assert ds.train.images.shape == (4708, 1, 28, 28) and ds.train.images.dtype == torch.uint8
    assert ds.train.images.is_contiguous()
    assert ds.test.labels.shape == (624,) and ds.test.labels.dtype == torch.int64
    assert ds.num_classes == 2 and ds.class_names == ["normal", "pneumonia"] and ds.task == "binary"
    assert ds.channels == 1 and ds.image_size == (28, 28)
    assert set(ds.train.labels.unique().tolist()) == {0, 1}
    assert ds.licence == "CC BY 4.0" and ds.source == str(path)
    assert ds.meta["task"] == "binary-class" and ds.meta["size"] == 28 and ds.meta["description"]


def test_md5_is_hashed_once_per_file_version(shared, monkeypatch):
    loading.fetch_medmnist("pneumoniamnist", download=False)
    monkeypatch.setattr(loading, "md5sum", lambda p: pytest.fail("the MD5 should come from the cache"))
    loading.fetch_medmnist("pneumoniamnist", download=False)
    ds = loading.load_dataset("pneumoniamnist", download=False)
    assert len(ds.train) == 4708


def test_data_dir_may_be_the_parent_of_medmnist(shared, monkeypatch):
    monkeypatch.setenv(loading.DATA_DIR_ENV, str(shared.parent))
    assert loading.locate_medmnist("pneumoniamnist") == shared.parent / "medmnist" / "pneumoniamnist.npz"


# --------------------------------------------------------------------------- locating and fetching


@pytest.mark.parametrize("sub", ["", "medmnist"])
def test_files_are_found_in_the_project_data_folder(isolated, sub):
    folder = isolated / "data" / sub
    folder.mkdir(parents=True)
    write_npz(folder / "bloodmnist_64.npz", synthetic())
    assert loading.locate_medmnist("BloodMNIST", 64) == folder / "bloodmnist_64.npz"
    assert loading.locate_medmnist("bloodmnist", 28) is None


def test_local_md5_mismatch_is_refused_and_the_file_kept(isolated, tmp_path, monkeypatch):
    folder = tmp_path / "mine"
    folder.mkdir()
    fake = write_npz(folder / "pneumoniamnist.npz", synthetic(classes=2))
    monkeypatch.setenv(loading.DATA_DIR_ENV, str(folder))
    with pytest.raises(CorruptDataError) as err:
        loading.load_medmnist("pneumoniamnist")
    text = str(err.value)
    assert str(fake) in text and PNEUMONIA_MD5 in text and "not the official" in text
    assert "Delete or replace" in text
    assert fake.is_file()


def test_missing_offline_names_the_file_the_folders_and_the_url(isolated, monkeypatch):
    mirror = closed_port_url()
    monkeypatch.setenv(download.MIRROR_ENV, mirror)
    entry = catalog.entry("dermamnist")
    with pytest.raises(MissingDataError) as err:
        loading.fetch_medmnist("dermamnist", progress=False)
    text = str(err.value)
    assert "dermamnist.npz" in text and entry.url in text and "could not be downloaded" in text
    assert str(isolated / "data") in text and "FTLAB_DATA_DIR" in text
    assert f"{mirror}/dermamnist.npz" in text  # the mirror URL that failed is quoted too
    data = isolated / "data"
    assert not data.exists() or not any(data.iterdir()), "a failed download leaves no temporary file"


def test_missing_with_download_off(isolated):
    with pytest.raises(MissingDataError, match="downloading is off") as err:
        loading.load_medmnist("breastmnist", download=False)
    assert catalog.entry("breastmnist").url in str(err.value)
    assert isinstance(err.value, FileNotFoundError)


def test_multi_label_medmnist_is_looked_for_like_any_other(isolated):
    with pytest.raises(loading.MissingDataError, match="chestmnist.npz"):
        loading.load_dataset("chestmnist", download=False)


def test_unknown_size_and_name(isolated):
    with pytest.raises(ValueError, match="28, 64, 128, 224"):
        loading.fetch_medmnist("pneumoniamnist", size=100)
    with pytest.raises(ValueError) as err:
        loading.load_dataset("pneumonia-mnist")
    assert all(name in str(err.value) for name in catalog.medmnist_names())
    assert "Did you mean 'pneumoniamnist'" in str(err.value)


# --------------------------------------------------------------------------- read_npz errors


def test_truncated_npz(tmp_path):
    path = write_npz(tmp_path / "cut.npz", synthetic())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CorruptDataError, match="truncated or corrupt") as err:
        loading.read_npz(path)
    assert str(path) in str(err.value) and "Delete it and download it again" in str(err.value)


def test_damaged_member_and_non_npz_files(tmp_path):
    path = write_npz(tmp_path / "bad.npz", synthetic())
    raw = bytearray(path.read_bytes())
    raw[200:260] = b"\0" * 60  # inside the first array's data: CRC check fails
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptDataError):
        loading.read_npz(path)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all" * 10)
    with pytest.raises(CorruptDataError):
        loading.read_npz(junk)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(CorruptDataError, match="not an .npz archive"):
        loading.read_npz(single)
    with pytest.raises(FileNotFoundError):
        loading.read_npz(tmp_path / "absent.npz")


def test_missing_keys_are_listed_with_the_expected_layout(tmp_path):
    arrays = synthetic()
    del arrays["val_images"], arrays["test_labels"]
    with pytest.raises(ValueError) as err:
        loading.read_npz(write_npz(tmp_path / "partial.npz", arrays))
    text = str(err.value)
    assert "val_images, test_labels" in text and "expected layout" in text
    assert all(key in text for key in loading.EXPECTED_KEYS)


def test_length_mismatch_names_the_split_and_both_lengths(tmp_path):
    arrays = synthetic(n=(12, 4, 6))
    arrays["val_labels"] = arrays["val_labels"][:3]
    with pytest.raises(ValueError, match=r"'val' split has 4 images but 3 labels"):
        loading.read_npz(write_npz(tmp_path / "mismatch.npz", arrays))


def test_labels_out_of_range(tmp_path):
    arrays = synthetic(classes=3)
    path = write_npz(tmp_path / "ok.npz", arrays)
    assert loading.read_npz(path, num_classes=3)["train_labels"].max() == 2
    with pytest.raises(ValueError, match=r"'train' labels run from 0 to 2.*0\.\.1"):
        loading.read_npz(path, num_classes=2)
    arrays["test_labels"] = arrays["test_labels"].astype(np.int64) - 1
    with pytest.raises(ValueError, match=r"'test' labels run from -1"):
        loading.read_npz(write_npz(tmp_path / "neg.npz", arrays))
    with pytest.raises(ValueError, match="labels must be class indices 0..1"):
        loading.load_npz_dataset(path, class_names=["a", "b"])


# --------------------------------------------------------------------------- arrays_to_split


def test_grayscale_and_rgb_layouts():
    gray = np.arange(2 * 17 * 23, dtype=np.uint8).reshape(2, 17, 23)
    split = loading.arrays_to_split(gray, np.array([[1], [0]], dtype=np.uint8))
    assert split.images.shape == (2, 1, 17, 23) and split.images.dtype == torch.uint8
    assert split.labels.tolist() == [1, 0] and split.labels.dtype == torch.int64
    assert torch.equal(split.images[:, 0], torch.from_numpy(gray))

    rgb = np.random.default_rng(0).integers(0, 256, (3, 17, 23, 3), dtype=np.uint8)
    split = loading.arrays_to_split(rgb, np.array([0, 1, 2]))
    assert split.images.shape == (3, 3, 17, 23) and split.images.is_contiguous()
    assert split.images[2, 1, 5, 7].item() == rgb[2, 5, 7, 1]


def test_multi_label_labels_are_kept_as_a_0_1_matrix():
    labels = np.zeros((4, 14), np.uint8)
    labels[1, [0, 5]] = 1
    split = loading.arrays_to_split(np.zeros((4, 8, 8), np.uint8), labels)
    assert split.multi_label and split.labels.shape == (4, 14) and split.labels.dtype == torch.int64
    assert split.class_counts(14)[0] == 1 and sum(split.class_counts(14)) == 2


def test_multi_label_labels_must_be_0_or_1():
    with pytest.raises(ValueError, match="multi-label.*0 or 1"):
        loading.arrays_to_split(np.zeros((4, 8, 8), np.uint8), np.full((4, 3), 2))


def test_float_images_are_converted_with_a_warning():
    unit = np.array([[[0.0, 0.5], [1.0, 0.2]]])
    with pytest.warns(UserWarning, match="scaled by 255"):
        split = loading.arrays_to_split(unit, np.array([0]))
    assert split.images.flatten().tolist() == [0, 128, 255, 51]
    with pytest.warns(UserWarning, match="rounded"):
        split = loading.arrays_to_split(unit * 200 + 10.4, np.array([0]))
    assert split.images.flatten().tolist() == [10, 110, 210, 50]
    assert loading.arrays_to_split(np.full((1, 2, 2), 7, np.int64), np.array([0])).images.dtype == torch.uint8


@pytest.mark.parametrize("images, match", [
    (np.full((1, 4, 4), 300.0), "floats in"),
    (np.full((1, 4, 4), -1, np.int16), "integers in 0..255"),
    (np.zeros((1, 4, 4, 4), np.uint8), "C = 1 or 3"),
    (np.zeros((4, 4), np.uint8), "shape"),
])
def test_bad_images_are_refused(images, match):
    with pytest.raises(ValueError, match=match):
        loading.arrays_to_split(images, np.zeros(len(images), np.uint8))


def test_images_and_labels_must_match_in_length():
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        loading.arrays_to_split(np.zeros((3, 4, 4), np.uint8), np.zeros(2, np.uint8))


# --------------------------------------------------------------------------- bring-your-own .npz


def test_own_npz_rgb_multi_class_odd_size(tmp_path):
    path = write_npz(tmp_path / "my_set.npz", synthetic(shape=(17, 23), channels=3, classes=4,
                                                        label_shape="flat"))
    ds = loading.load_dataset(str(path))
    assert ds.name == "my_set" and ds.source == str(path)
    assert ds.class_names == ["class 0", "class 1", "class 2", "class 3"] and ds.task == "multi-class"
    assert ds.train.images.shape == (12, 3, 17, 23) and ds.channels == 3 and ds.image_size == (17, 23)
    assert ds.val.labels.tolist() == [0, 1, 2, 3]
    named = loading.load_npz_dataset(path, class_names=["a", "b", "c", "d"])
    assert named.class_names == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="label\\(s\\) 4 have no training image.*one name per class"):
        loading.load_npz_dataset(path, class_names=["a", "b", "c", "d", "e"])


def test_own_npz_labels_that_skip_values_are_refused_or_remapped(tmp_path):
    arrays = synthetic(classes=3, label_shape="flat")
    for split in ("train", "val", "test"):
        labels = arrays[f"{split}_labels"]
        arrays[f"{split}_labels"] = np.where(labels == 2, 7, labels)
    path = write_npz(tmp_path / "gaps.npz", arrays)
    with pytest.raises(ValueError, match="2, 3, 4, 5, 6 have no training image"):
        loading.load_npz_dataset(path)
    with pytest.warns(UserWarning, match="renumbered 0->0, 1->1, 7->2"):
        ds = loading.load_dataset(path, remap_labels=True)
    assert ds.num_classes == 3 and ds.meta["label_map"] == {0: 0, 1: 1, 7: 2}
    assert set(ds.train.labels.tolist()) == {0, 1, 2}
    with pytest.warns(UserWarning):
        named = loading.load_npz_dataset(path, class_names=["normal", "benign", "malignant"], remap_labels=True)
    assert named.class_names == ["normal", "benign", "malignant"]


def test_a_class_only_in_the_test_split_is_named_with_where_it_occurs(tmp_path):
    arrays = synthetic(classes=2, label_shape="flat")
    arrays["test_labels"][0] = 2
    with pytest.raises(ValueError, match="class 2 occurs only in test.*Move some images"):
        loading.load_npz_dataset(write_npz(tmp_path / "test_only.npz", arrays))


def test_own_npz_multi_label(tmp_path):
    arrays = synthetic(classes=2, label_shape="flat")
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        arrays[f"{split}_labels"] = (rng.random((len(arrays[f"{split}_images"]), 5)) < 0.4).astype(np.uint8)
    ds = loading.load_dataset(write_npz(tmp_path / "findings.npz", arrays))
    assert ds.task == "multi-label" and ds.num_classes == 5 and ds.class_names[0] == "finding 0"
    assert ds.train.labels.shape == (len(ds.train), 5)
    with pytest.raises(ValueError, match="5 (finding )?columns but .*2"):
        loading.load_npz_dataset(tmp_path / "findings.npz", class_names=["a", "b"])


def test_own_npz_with_a_medmnist_file_name_gets_the_official_class_names(tmp_path):
    path = write_npz(tmp_path / "pneumoniamnist_64.npz", synthetic(classes=2, shape=(64, 64)))
    assert loading.load_dataset(path).class_names == ["normal", "pneumonia"]


def test_a_medmnist_file_name_declares_its_image_size(tmp_path):
    # a MedMNIST+ layout file at 224 px reads; the same images under a 64-px or 28-px name are refused
    path = write_npz(tmp_path / "pneumoniamnist_224.npz", synthetic(n=(4, 2, 2), classes=2, shape=(224, 224)))
    data = loading.load_dataset(path, size=224)
    assert tuple(data.train.images.shape[-2:]) == (224, 224)
    for wrong in ("pneumoniamnist_64.npz", "pneumoniamnist.npz"):
        (tmp_path / wrong).write_bytes(path.read_bytes())
        with pytest.raises(ValueError, match=r"declares (64x64|28x28) px images, but the 'train' split holds 224x224"):
            loading.load_dataset(tmp_path / wrong)
    # any other name keeps its own size
    (tmp_path / "my_scans.npz").write_bytes(path.read_bytes())
    assert tuple(loading.load_dataset(tmp_path / "my_scans.npz").test.images.shape[-2:]) == (224, 224)


def test_own_npz_needs_two_classes(tmp_path):
    path = write_npz(tmp_path / "one.npz", synthetic(classes=1))
    with pytest.raises(ValueError, match="at least 2"):
        loading.load_npz_dataset(path)


# --------------------------------------------------------------------------- image folders


def make_folder(root: Path, counts: dict[str, int], size=(20, 16), mode="L", seed=0) -> Path:
    """Class folders of PIL-written PNGs (``size`` is width x height)."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / name / f"{i}.png")
    return root


def test_image_folder_happy_path(tmp_path):
    folder = make_folder(tmp_path / "xrays", {"normal": 10, "pneumonia": 20})
    (folder / "normal" / "notes.txt").write_text("ignored")
    ds = loading.load_dataset(folder, size=None)
    assert ds.name == "xrays" and ds.class_names == ["normal", "pneumonia"]
    assert ds.channels == 1 and ds.image_size == (16, 20)
    assert ds.train.images.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
    assert ds.test.class_counts(2) == [2, 4] and ds.val.class_counts(2) == [1, 2]
    assert ds.train.class_counts(2) == [7, 14]
    pixels = np.array(Image.open(folder / "normal" / "0.png"))
    all_images = torch.cat([ds.train.images, ds.val.images, ds.test.images])
    assert any(torch.equal(img[0], torch.from_numpy(pixels)) for img in all_images)
    again = loading.load_image_folder(folder, seed=0)
    assert torch.equal(again.test.images, ds.test.images)
    other = loading.load_image_folder(folder, seed=1)
    assert not torch.equal(other.test.images, ds.test.images)


def test_image_folder_rgb_resize_and_mixed_sizes(tmp_path):
    folder = make_folder(tmp_path / "skin", {"a": 5, "b": 5}, size=(20, 16))
    make_folder(folder, {"c": 5}, size=(30, 30), mode="RGB")
    with pytest.warns(UserWarning, match="2 different sizes.*20x16"):
        ds = loading.load_image_folder(folder)
    assert ds.channels == 3 and ds.image_size == (16, 20) and ds.num_classes == 3
    sized = loading.load_dataset(str(folder), size=28)
    assert sized.image_size == (28, 28)


def test_image_folder_with_given_splits(tmp_path):
    for split, n in (("train", 6), ("val", 2), ("test", 3)):
        make_folder(tmp_path / "given" / split, {"cat": n, "dog": n}, seed=len(split))
    ds = loading.load_image_folder(tmp_path / "given")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (12, 4, 6)
    assert ds.class_names == ["cat", "dog"] and "given" in ds.meta["layout"]
    (tmp_path / "given" / "val" / "cat").rename(tmp_path / "val_cat")
    (tmp_path / "given" / "val" / "dog").rename(tmp_path / "val_dog")
    (tmp_path / "given" / "val").rmdir()
    carved = loading.load_image_folder(tmp_path / "given", val_fraction=0.5)
    assert (len(carved.train), len(carved.val), len(carved.test)) == (6, 6, 6)


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        loading.load_image_folder(tmp_path / "absent")
    (tmp_path / "flat").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "flat" / "x.png")
    with pytest.raises(ValueError, match="no class folders"):
        loading.load_image_folder(tmp_path / "flat")
    one = make_folder(tmp_path / "one", {"only": 5})
    with pytest.raises(ValueError, match="at least 2"):
        loading.load_image_folder(one)
    empty = make_folder(tmp_path / "empty", {"a": 5, "b": 5})
    (empty / "c_empty").mkdir()
    with pytest.raises(ValueError, match="c_empty holds no images"):
        loading.load_image_folder(empty)
    broken = make_folder(tmp_path / "broken", {"a": 5, "b": 5})
    (broken / "b" / "3.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ValueError, match=r"Cannot read the image .*3\.png"):
        loading.load_image_folder(broken)
    small = make_folder(tmp_path / "small", {"a": 2, "b": 5})
    with pytest.raises(ValueError, match="'a' has only 2"):
        loading.load_image_folder(small)
    with pytest.raises(ValueError, match="add up to less than 1"):
        loading.load_image_folder(small, val_fraction=0.5, test_fraction=0.5)
