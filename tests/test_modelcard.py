"""Saved models: a real tiny run is saved with its card, reloaded, and re-scored on the same test images.

The run is the real ``run_one`` (EfficientNet-Lite0 from ImageNet weights, all layers tuned so BatchNorm
running statistics are part of what must round-trip) on the official PneumoniaMNIST; the reloaded model
must give the card's test AUC to 1e-6.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import experiments as E
from helpers import modelcard
from helpers.bootstrap import score_metrics
from helpers.train import predict
from test_experiments import DATA_DIR, TINY, needs_data, tiny_env  # noqa: F401  (fixture: data dir, one thread)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One tiny run with ``save_dir``: its config, row and card path."""
    config = E.RunConfig.from_flat(strategy="all", lr=0.003, **TINY)
    row = E.run_one(config, save_dir=tmp_path_factory.mktemp("models"))
    return config, row


@needs_data
def test_saved_model_reloads_and_reproduces_its_test_auc(saved):
    config, row = saved
    model, card = modelcard.load_model(row["model_card"])
    data = E.prepare_data(E.RunConfig.from_flat(**card["config"]))   # the card alone says how to rebuild the test split
    scores = predict(model, data.test)
    auc = score_metrics(data.test.labels.numpy(), scores, n_boot=10, seed=0)["auc"]
    assert abs(auc - card["test"]["test_auc"]) <= 1e-6
    assert abs(auc - row["test_auc"]) <= 1e-6
    assert np.allclose(scores[:, 1], row["test_scores"], atol=1e-6)


@needs_data
def test_card_records_what_the_issue_asks(saved):
    config, row = saved
    card = modelcard.read_card(row["model_card"])
    assert card["config"] == json.loads(json.dumps(config.flat()))
    assert card["dataset"]["name"] == config.dataset
    assert card["dataset"]["n_train"] == row["n_train"] and card["dataset"]["n_val"] == row["n_val"]
    assert card["dataset"]["n_test"] == len(row["test_labels"])
    assert card["bn_mode"] == "frozen" == row["bn_mode_used"]   # "auto" resolved: a pretrained model keeps ImageNet statistics
    assert config.budget.bn_mode == "auto" and card["learning_rate"] == pytest.approx(0.003)
    assert card["validation"]["auc"] == pytest.approx(row["val_score"])
    assert {"test_auc", "test_auc_lo", "test_auc_hi"} <= set(card["test"])
    assert set(card["versions"]) >= {"torch", "torchvision", "numpy", "ftlab", "python"}
    assert card["versions"]["torch"] == torch.__version__


@needs_data
def test_changed_weights_are_refused(saved, tmp_path):
    _, row = saved
    card = modelcard.read_card(row["model_card"])
    src = Path(row["model_card"])
    for suffix in (".json", ".pt"):
        (tmp_path / ("m" + suffix)).write_bytes(src.with_suffix(suffix).read_bytes())
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key] + 1.0
    torch.save(state, tmp_path / "m.pt")
    assert card["weights_sha256"] != modelcard.sha256(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="SHA-256"):
        modelcard.load_model(tmp_path / "m.json")


def test_missing_card_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_dir"):
        modelcard.read_card(tmp_path / "nothing.json")


def test_card_is_plain_json_without_nan():
    assert modelcard._plain({"a": float("nan"), "b": (np.float32(0.5), np.int64(3))}) == {"a": None, "b": [0.5, 3]}


TEMPLATE = E.RunConfig.from_flat(arch="efficientnet_lite0", steps=2, batch_size=8, eval_every=1, patience=None,
                                  n_bootstrap=10, image_size=32, val_share=0.0)


def test_run_ladder_saves_every_arm(mini_data, tmp_path):
    """The ladder's hook: each kept arm saved with a card that reloads to the same outputs; others not saved."""
    run = E.run_ladder(TEMPLATE, mini_data, ["last", "all"], progress=False, save_dir=tmp_path, keep=("scratch", "last"))
    assert len(run.table) == 3 and len(run.saved) == 2 and "scratch" in run.saved
    assert set(run.saved) == set(run.models) and len(list(tmp_path.glob("*.pt"))) == 2
    for name, path in run.saved.items():
        model, card = modelcard.load_model(path)
        row = run.table.set_index("strategy").loc[name]
        scores = predict(model, mini_data.test)[:, 1]
        assert np.allclose(scores, row["test_scores"], atol=1e-6), name
        assert card["run"]["strategy"] == name


def test_run_ladder_trains_the_statistics_only_control_beside_scratch(mini_data, tmp_path):
    run = E.run_ladder(TEMPLATE, mini_data, ["last"], progress=False, arms=("scratch", "statistics"),
                       keep=("statistics",), save_dir=tmp_path)
    table = run.table.set_index("strategy")
    assert list(run.table["strategy"]) == ["scratch", "statistics", "classifier"]
    assert table.loc["statistics", "bn_mode_used"] == "recalibrate" and table.loc["statistics", "level_index"] == -1
    assert table.loc["statistics", "lr_grid"] == table.loc["scratch", "lr_grid"]       # the scratch family's rates
    model, card = modelcard.load_model(run.saved["statistics"])
    assert card["run"]["strategy"] == "statistics"


def test_run_ladder_says_what_it_will_train_and_how_long_before_the_rest(mini_data, capsys):
    """The heavy cell of notebook 03 says, before the bulk of its work, how many trainings it makes and about how
    long the rest will take (from the first arm's time)."""
    grid = {"scratch": (0.01,), "finetune": (0.001, 0.003)}
    E.run_ladder(TEMPLATE, mini_data, ["last", "all"], lr_grid=grid, progress=True)
    out = capsys.readouterr().out
    assert "3 arms x their rate grids = 5 trainings of 2 SGD steps" in out
    assert out.index("trainings of") < out.index("the first arm took") and "for the other 4" in out
