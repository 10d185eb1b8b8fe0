"""Shared fixtures: a tiny learnable synthetic data set, and the map from an FTModel's stages back to
the reference network (torchvision AlexNet / ResNet-18, timm tf_efficientnet_lite0) they came from."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers.classroom import GRADED, tags
from helpers.datasets import DataSet, Split
from helpers.detection import froc

REPO = Path(__file__).resolve().parents[1]


def medmnist_file(name: str = "pneumoniamnist") -> Path | None:
    """The official 28 px file of MedMNIST ``name`` if this machine has it, looked for where the suite looks
    (``$FTLAB_DATA_DIR`` and its ``medmnist/``; the project's ``data/`` and ``data/medmnist/``) and in the
    shared test data beside the checkout (``../shared/data/medmnist``). The one place tests find data."""
    env = os.environ.get("FTLAB_DATA_DIR", "").strip()
    folders = [Path(env), Path(env) / "medmnist"] if env else []
    folders += [REPO.parent / "shared/data/medmnist", REPO / "data", REPO / "data/medmnist"]
    return next((f / f"{name}.npz" for f in folders if (f / f"{name}.npz").is_file()), None)


def make_bright_square_dataset(n_train: int = 64, n_val: int = 32, n_test: int = 32, size: int = 16,
                               channels: int = 1, seed: int = 0, name: str = "bright-squares") -> DataSet:
    """A tiny two-class data set of uint8 images (N, channels, size, size).

    Every image is dim noise; class 1 images also hold a bright 5x5 square at a random place, so even a
    tiny network can learn the task. Classes alternate (0, 1, 0, 1, ...), so every split is balanced.
    """
    gen = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        images = torch.randint(0, 80, (n, channels, size, size), generator=gen, dtype=torch.int64)
        labels = torch.arange(n) % 2
        side = 5
        for i in torch.nonzero(labels).flatten().tolist():
            r, c = torch.randint(0, size - side + 1, (2,), generator=gen).tolist()
            images[i, :, r:r + side, c:c + side] = 230
        return Split(images.to(torch.uint8), labels.to(torch.int64))

    return DataSet(name, split(n_train), split(n_val), split(n_test), ["background", "square"],
                   source="synthetic (tests/conftest.py)", licence="CC0")


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a test module (restored afterwards).

    The test machine's two cores are shared; with tiny tensors, two OpenMP threads that keep getting
    preempted spin at barriers and run several times slower than one thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def alexnet_63():
    """One AlexNet at its minimum input size (63 px), Gaussian init, 2 classes, shared by the session
    because building AlexNet (61M parameters) is the slowest step of these tests. Tests that change its
    fine-tuning level must restore ``set_level(model, "all")``; nobody trains it."""
    from helpers.models import build_model
    return build_model("alexnet", image_size=63)


@pytest.fixture(scope="session")
def tiny_data() -> DataSet:
    """64 train / 32 val / 32 test 1x16x16 images; class 1 has a bright square."""
    return make_bright_square_dataset()


@pytest.fixture(scope="session")
def mini_data() -> DataSet:
    """16 train / 8 val / 8 test images: for runs that only need one or two optimizer steps."""
    return make_bright_square_dataset(16, 8, 8, seed=1)


def reference_modules(model) -> dict[str, torch.nn.Module]:
    """Reference-network module name -> the FTModel stage module that IS that module."""
    s = model.stages
    if model.arch == "alexnet":
        feats = [*s["conv1"], *s["conv2"], *s["conv3"], *s["conv4"], *list(s["conv5"])[:3]]
        clf = [*s["fc6"], *s["fc7"], s["fc8"][1]]   # torchvision's classifier.1 .. classifier.6 (0 is a dropout)
        return {**{f"features.{i}": m for i, m in enumerate(feats)},
                **{f"classifier.{i + 1}": m for i, m in enumerate(clf)}}
    if model.arch == "resnet18":
        return {"conv1": s["stem"][0], "bn1": s["stem"][1], "layer1": s["layer1"], "layer2": s["layer2"],
                "layer3": s["layer3"], "layer4": s["layer4"][0], "fc": s["fc"]}
    if model.arch == "efficientnet_lite0":
        return {"conv_stem": s["stem"][0], "bn1": s["stem"][1],
                **{f"blocks.{i}": s[f"stage{i + 1}"] for i in range(7)},
                "conv_head": s["conv_head"][0], "bn2": s["conv_head"][1], "classifier": s["classifier"][1]}
    raise ValueError(model.arch)


def reference_state_dict_of(model) -> dict[str, torch.Tensor]:
    """The FTModel's weights and buffers under the reference network's key names."""
    return {f"{prefix}.{key}": value for prefix, module in reference_modules(model).items()
            for key, value in module.state_dict().items()}


@pytest.fixture
def reference_state_dict():
    """``reference_state_dict(model)``: the model's state under torchvision / timm key names."""
    return reference_state_dict_of


# ----------------------------------------------------------------------------- the data-set matrix

MATRIX_KINDS = {
    # kind: (split sizes, classes or findings, channels, multi-label, share of the rarest class)
    "binary": ((300, 60, 100), 2, 1, False, 0.5),
    "rgb-3-class": ((240, 48, 90), 3, 3, False, None),
    "8-class": ((320, 64, 96), 8, 1, False, None),
    "multi-label-14": ((400, 80, 120), 14, 1, True, None),
    "tiny-40": ((24, 8, 8), 2, 1, False, 0.5),
    "imbalanced-1-20": ((420, 84, 126), 2, 1, False, 1 / 21),
}
"""Synthetic data sets in the MedMNIST layout that the matrix tests run the suite's core path on."""


def _matrix_labels(rng, n: int, classes: int, multi_label: bool, rare_share: float | None):
    """Labels of one split: classes in turn (or with the given share of class 1), or 0/1 findings of
    falling frequency (finding j in about 45% / (j + 1) of the images)."""
    if multi_label:
        rates = 0.45 / (np.arange(classes) + 1)
        labels = (rng.random((n, classes)) < rates).astype(np.uint8)
        labels[: classes, :] = np.eye(classes, dtype=np.uint8)   # every finding occurs in every split
        return labels
    if rare_share is not None:
        rare = max(2, round(n * rare_share))
        return (np.arange(n) < rare).astype(np.uint8)[rng.permutation(n)]
    return (np.arange(n) % classes).astype(np.uint8)


def _matrix_images(rng, labels, classes: int, channels: int, size: int = 28):
    """Dim noise; class c (or finding c) adds a bright square at its own cell of a 4x4 grid, so it is learnable."""
    n = len(labels)
    images = rng.integers(0, 90, (n, size, size, channels), dtype=np.uint8)
    hits = labels if labels.ndim == 2 else np.eye(classes, dtype=np.uint8)[labels]
    cell = size // 4
    for i, c in zip(*np.nonzero(hits)):
        r, col = divmod(int(c) % 16, 4)
        images[i, r * cell:(r + 1) * cell, col * cell:(col + 1) * cell, :] = 220
    return images[..., 0] if channels == 1 else images


def matrix_arrays(kind: str, seed: int = 0) -> dict:
    """The MedMNIST-layout arrays of one synthetic matrix data set (see MATRIX_KINDS)."""
    sizes, classes, channels, multi_label, rare_share = MATRIX_KINDS[kind]
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in zip(("train", "val", "test"), sizes):
        labels = _matrix_labels(rng, n, classes, multi_label, rare_share)
        arrays[f"{split}_images"] = _matrix_images(rng, labels, classes, channels)
        arrays[f"{split}_labels"] = labels if multi_label else labels[:, None]
    return arrays


def write_matrix_npz(folder, kind: str):
    """Write the synthetic ``kind`` set as ``<folder>/<kind>.npz`` and return its path."""
    path = Path(folder) / f"{kind}.npz"
    np.savez(path, **matrix_arrays(kind))
    return path


def sequence_run(hits_per_sequence: list[int], frames: int = 4):
    """A detection run on len(hits) test sequences of ``frames`` frames (one polyp each): the polyps of the first
    ``hits[j]`` frames of sequence j found (score 0.9), one false positive per frame (score 0.5). Returns the
    (matches, frame table) pair of :mod:`helpers.detection.froc` (used by the FROC and report tests)."""
    n = len(hits_per_sequence) * frames
    masks = np.zeros((n, 20, 20), dtype=bool)
    masks[:, 2:8, 2:8] = True
    seqs = [f"S{j}" for j in range(len(hits_per_sequence)) for _ in range(frames)]
    cands = [([(4, 4, 0.9)] if i % frames < hits_per_sequence[i // frames] else []) + [(16, 16, 0.5)]
             for i in range(n)]
    return froc.match_candidates(cands, masks, seqs), froc.make_frame_table(masks, seqs)


def ungraded_student_cell(item) -> bool:
    """Whether an nbval item is a cell of a student copy (student/*.ipynb) without the ``graded`` tag."""
    cell = getattr(item, "cell", None)
    return (item.path.suffix == ".ipynb" and item.path.parent.name == "student" and cell is not None
            and GRADED not in tags(cell))


PER_TEST_GROUPS = ("test_full_toy.py", "test_notebook_matrix.py")
"""Test files whose tests share no fixture: under pytest-xdist each of their tests is a group of its own, so the
long ones spread over both workers."""
LONGEST_FIRST = ("tests/test_full_toy.py::test_full_profile_code_paths_at_toy_scale", "notebooks",
                 "tests/test_notebook_matrix.py", "tests/test_full_toy.py", "tests/test_browser.py")
"""The order in which the longest groups are handed out, so that neither worker is left with one at the end."""


def xdist_group_of(nodeid: str) -> str:
    """The group a test runs in under pytest-xdist (one worker runs a whole group, in order): every notebook and
    student copy together (notebook 06 reads notebook 04's store, notebook 07 the stores of 04 and 05); each test of
    :data:`PER_TEST_GROUPS` alone; every other test with its file (module-scoped fixtures are made once)."""
    path = nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        return "notebooks"
    return nodeid if path.rsplit("/", 1)[-1] in PER_TEST_GROUPS else path


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scheduling by :func:`xdist_group_of`, the groups handed out in collection order (longest first,
    :func:`pytest_collection_modifyitems`). xdist's own ``--dist loadgroup`` cannot do it here: it renames items
    through an attribute that pytest 9 no longer reads, so its groups were silently ignored."""
    from xdist.scheduler import LoadScopeScheduling

    class ByGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_group_of(nodeid)

    config.option.loadscopereorder = False   # keep the longest-first order, not xdist's by-count order
    return ByGroup(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Two things.

    A student copy (student/*.ipynb, written by ``make test`` with nbgrader) runs only its ``graded`` cells
    under nbval: every other cell is the teacher's cell unchanged (tests/test_grading.py checks that, cell by
    cell), and the teacher's notebook runs whole in the same session. The graded cells run on their own after
    their set-up cell (helpers.classroom), so the stubs and the checks are what a student copy adds.

    The items are put in the order in which pytest-xdist hands out their groups (:func:`xdist_group_of`): the longest
    groups first. Kernels start on IPC sockets (the project's conftest.py, helpers/kernels.py), so the two workers
    may start notebooks at the same moment."""
    left_out = [item for item in items if ungraded_student_cell(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not ungraded_student_cell(item)]

    def rank(item) -> int:
        name = xdist_group_of(item.nodeid)
        return next((i for i, first in enumerate(LONGEST_FIRST) if name.startswith(first)), len(LONGEST_FIRST))

    items.sort(key=rank)   # stable: every group keeps its own order, the notebooks and student copies theirs
