"""A store written before the training budget was composed (tests/data/store_v5, made by the code of commit
89c827f) is read by today's code with every run found done: the configs keep their keys, the rows rebuild to
their configs, and the old column names are mapped to today's (helpers.schema)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import experiments, profiles, runner, schema
from helpers.budget import TrainBudget
from helpers.detection.experiment import PolypRunConfig
from helpers.segmentation.experiment import SegRunConfig
from helpers.store import ResultsStore

STORE = Path(__file__).parent / "data" / "store_v5"
FOLDER = "/tmp/ftlab-store-v5/polyp"      # the folder string the runs were made with (only its name is hashed)
FAST = profiles.PROFILES["fast"].classification
FRAMES = dict(dataset=FOLDER, patch=16, frame_size=(48, 64), max_train_frames=6, max_val_frames=3, max_test_frames=6,
              n_bootstrap=20)


def sweeps() -> dict:
    """The three sweeps of tests/data/make_store_v5.py, built through today's API: (configs, rate grid, tuning fractions)."""
    classification = experiments.profile_grid(FAST.changed(steps=2, eval_every=1, patience=2), ["pneumoniamnist"],
                                              strategies=("scratch", "statistics", "last"), fractions=(0.5, 1.0),
                                              seeds=(0, 1))
    detection = runner.sweep_grid(PolypRunConfig, None, ("scratch", "all"), (0.5, 1.0), (0,), hard_steps=1,
                                  hard_per_frame=1, hard_frames=2, budget=TrainBudget(steps=2, batch_size=8), **FRAMES)
    segmentation = runner.sweep_grid(SegRunConfig, None, ("scratch", "last"), (0.5, 1.0), (0,), per_class=2, stride=8.0,
                                     budget=TrainBudget(steps=2, batch_size=8), **FRAMES)
    return {"classification": (classification, FAST.lr_grid, None),
            "detection": (detection, {"scratch": (0.01, 0.03), "finetune": (0.001,)}, (1.0,)),
            "segmentation": (segmentation, {"scratch": (0.01,), "finetune": (0.001, 0.003)}, (1.0,))}


@pytest.fixture()
def store_copy(tmp_path) -> Path:
    shutil.copytree(STORE, tmp_path / "store")
    return tmp_path / "store"


@pytest.mark.parametrize("name", ["classification", "detection", "segmentation"])
def test_every_run_of_an_old_store_is_found_done(store_copy, name):
    configs, lr_grid, tune = sweeps()[name]
    store = ResultsStore(store_copy / name)
    done = store.done()
    trials = runner.rate_trials(configs, lr_grid, tune)
    assert {t.key() for t in trials} <= done, "a rate-tuning run's key changed"
    resolved = runner.resolved_configs(configs, store, lr_grid, tune)
    assert resolved is not None and {c.key() for c in resolved} <= done, "a sweep run's key changed"
    assert done == {c.key() for c in trials} | {c.key() for c in resolved}, "every stored run is one of the sweep's"

    def must_not_run(config):
        raise AssertionError(f"{config} ran again: its key changed")
    table = runner.run_sweep(configs, store, run_fn=must_not_run, lr_grid=lr_grid, tune_fractions=tune, progress=False)
    assert len(table) == len(configs)


@pytest.mark.parametrize("name, config_type, metric", [("classification", experiments.RunConfig, "auc"),
                                                      ("detection", PolypRunConfig, "froc_score"),
                                                      ("segmentation", SegRunConfig, "dice")])
def test_old_rows_rebuild_their_configs_and_read_with_todays_names(store_copy, name, config_type, metric):
    table = ResultsStore(store_copy / name).load()
    assert "val_auc" not in table and table["val_metric"].eq(metric).all()
    assert table["val_score"].notna().all() and "steps_run" not in table and table["lr_used"].notna().all()
    for _, row in table.iterrows():
        assert config_type.from_row(row).key() == row["config_hash"]


def test_a_row_names_its_validation_figure():
    row = {"task": "polyp", "val_auc": 0.4, "lr": 0.01, "steps_run": 12}
    import pandas as pd
    new = schema.upgrade(pd.DataFrame([row])).iloc[0]
    assert new["val_score"] == 0.4 and new["val_metric"] == "froc_score" and new["lr_used"] == 0.01
    assert "steps_run" not in new and "val_auc" not in new
    assert schema.upgrade(pd.DataFrame([{"val_auc": 0.7}])).iloc[0]["val_metric"] == "auc"


def test_a_budget_field_an_application_does_not_read_is_refused():
    with pytest.raises(ValueError, match="does not read budget field.*patience"):
        PolypRunConfig(budget=TrainBudget(steps=8, patience=3))
    assert PolypRunConfig().flat().keys() >= {"steps", "batch_size", "decay_steps"}
    assert "patience" not in PolypRunConfig().flat()
