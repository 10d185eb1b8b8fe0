"""One contract for the three applications' runs (classification, detection, segmentation), all made by the one
run skeleton (helpers.runner.execute): the row's shared keys, the diverged row, hash stability and reload."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest

from helpers import experiments, runner
from helpers.budget import TrainBudget
from helpers.detection import data as polyp_data
from helpers.detection.experiment import PolypRunConfig
from helpers.segmentation.experiment import SegRunConfig
from helpers.store import ResultsStore

from conftest import medmnist_file

needs_data = pytest.mark.skipif(medmnist_file("pneumoniamnist") is None,
                                reason="the classification run needs the PneumoniaMNIST file (FTLAB_DATA_DIR)")

SHARED = {"config_hash", "task", "requested", "strategy", "level", "level_index", "lr_used", "val_score", "val_metric",
          "val_loss", "collapsed", "diverged", "n_train", "wall_s", "versions", "finished_at"}
TRAINED = {"iterations", "bn_mode_used", "precision", "device"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return polyp_data.make_synthetic_polyp_folder(tmp_path_factory.mktemp("contract") / "polyp", n_frames=24,
                                                  n_sequences=6, size=(72, 96), seed=0)


def configs(folder) -> dict:
    frames = dict(dataset=str(folder), patch=16, frame_size=(48, 64), max_train_frames=6, max_val_frames=3,
                  max_test_frames=6, n_bootstrap=20, strategy="last", lr=0.003)
    return {"classification": experiments.RunConfig.from_flat(strategy="last", lr=0.003, max_train=48, max_eval=32,
                                                              steps=4, eval_every=2, patience=None, batch_size=8,
                                                              image_size=32, n_bootstrap=20),
            "polyp": PolypRunConfig(budget=TrainBudget(steps=4, batch_size=8), hard_steps=2, hard_per_frame=1,
                                    hard_frames=2, **frames),
            "segmentation": SegRunConfig(budget=TrainBudget(steps=4, batch_size=8), per_class=2, stride=8.0, **frames)}


METRIC = {"classification": "auc", "polyp": "froc_score", "segmentation": "dice"}


@needs_data
@pytest.mark.parametrize("task", ["classification", "polyp", "segmentation"])
def test_every_application_keeps_the_run_contract(folder, tmp_path, task, single_thread):
    config = configs(folder)[task]
    row = config.run()
    assert SHARED | TRAINED <= set(row), sorted(SHARED | TRAINED - set(row))
    assert set(config.flat()) <= set(row) and all(row[k] == v for k, v in config.flat().items() if k not in ("strategy", "frame_size"))
    assert row["task"] == task and row["val_metric"] == METRIC[task] and not row["diverged"]
    assert 0.0 <= row["val_score"] <= 1.0 and row["lr_used"] == 0.003 and row["requested"] == "last"
    assert row["config_hash"] == config.key() == type(config).from_row(row).key()
    store = ResultsStore(tmp_path / task)
    store.append(row)
    again = store.load().iloc[0]
    assert type(config).from_row(again).key() == config.key() and again["val_score"] == pytest.approx(row["val_score"])

    failed = replace(config, strategy="all", lr=1e4).with_budget(steps=12).run()   # every layer at an absurd rate
    assert failed["diverged"] and math.isnan(failed["val_score"]) and failed["note"]
    assert SHARED <= set(failed), sorted(SHARED - set(failed))
    assert failed["config_hash"] == type(config).from_row(failed).key() != config.key()
