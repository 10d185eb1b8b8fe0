"""TensorBoard: a real (tiny) results store exported by ``ftlab sweep tensorboard`` and read back with
TensorBoard's own reader (the HParams plugin's experiment and session data, every metric and curve equal to the
store's), and the engine's live curves, from ``fit(tensorboard_dir=...)`` and from a sweep's ``--tensorboard``."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pytest.importorskip("tensorboard", reason="the tensorboard extra: pip install -e .[tensorboard]")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from helpers import cli, tboard
from helpers import train as T
from helpers.experiments import grid
from helpers.models import build_model
from helpers.runner import run_sweep
from helpers.store import ResultsStore

from test_experiments import DATA_DIR, TINY, needs_data

pytestmark = pytest.mark.usefixtures("single_thread")


def read(folder: Path) -> EventAccumulator:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    return events


def plugin_data(events: EventAccumulator, tag: str) -> plugin_data_pb2.HParamsPluginData:
    return plugin_data_pb2.HParamsPluginData.FromString(events.PluginTagToContent(metadata.PLUGIN_NAME)[tag])


def hparam_value(value) -> object:
    kind = value.WhichOneof("kind")
    return {"string_value": value.string_value, "number_value": value.number_value,
            "bool_value": value.bool_value}[kind]


def scalars(events: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events.Scalars(tag)]


@pytest.fixture(scope="module", autouse=True)
def data_env():
    """FTLAB_DATA_DIR set where the shared PneumoniaMNIST file is."""
    with pytest.MonkeyPatch.context() as mp:
        if DATA_DIR is not None:
            mp.setenv("FTLAB_DATA_DIR", str(DATA_DIR))
        yield


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """Four real runs (scratch and last, two seeds) of the tiny sweep of test_experiments, stored."""
    store = ResultsStore(tmp_path_factory.mktemp("tb") / "store")
    run_sweep(grid(strategies=("scratch", "last"), seeds=(0, 1), **TINY), store, progress=False)
    return store


@needs_data
def test_exported_store_reads_back_with_tensorboards_reader(tiny_store, tmp_path, capsys):
    out = tmp_path / "tb"
    assert cli.main(["sweep", "tensorboard", str(tiny_store.folder), str(out)]) == 0
    assert "wrote 4 runs" in capsys.readouterr().out
    table = tiny_store.load()
    assert len(table) == 4

    root = read(out)   # the experiment: every hyperparameter (with the values it takes) and metric
    experiment = plugin_data(root, metadata.EXPERIMENT_TAG).experiment
    infos = {h.name: h for h in experiment.hparam_infos}
    assert {"requested", "strategy", "seed", "lr_used"} <= set(infos)   # what differs between the four runs
    assert not {"dataset", "arch", "fraction", "steps"} & set(infos)    # one value in every run: no column
    assert infos["requested"].type == api_pb2.DATA_TYPE_STRING
    assert sorted(v.string_value for v in infos["requested"].domain_discrete.values) == ["last", "scratch"]
    assert sorted(v.number_value for v in infos["seed"].domain_discrete.values) == [0, 1]
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"test_auc", "val_score", "wall_s"} <= metric_tags
    assert not {"test_auc_lo", "test_auc_hi", "test_n", "val_share"} & metric_tags

    runs = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in runs] == sorted(tboard.run_name(r) for r in table.to_dict("records"))
    for row in table.to_dict("records"):
        events = read(out / tboard.run_name(row))
        start = plugin_data(events, metadata.SESSION_START_INFO_TAG).session_start_info
        params = {k: hparam_value(v) for k, v in start.hparams.items()}
        assert params["requested"] == row["requested"] and params["strategy"] == row["strategy"]
        assert params["dataset"] == "pneumoniamnist" and params["arch"] == row["arch"]
        assert params["seed"] == row["seed"] and params["n_train"] == row["n_train"]
        assert params["fraction"] == row["fraction"] and params["lr_used"] == pytest.approx(row["lr_used"])
        assert params["steps"] == TINY["steps"] and params["diverged"] is False
        for tag in ("test_auc", "val_score", "test_acc", "wall_s"):
            ((step, value),) = scalars(events, tag)
            assert step == 0 and value == pytest.approx(row[tag], rel=1e-6)   # float32 in the event file
        curve = scalars(events, "val/auc")
        assert [s for s, _ in curve] == [s for s, _ in row["curve"]] and len(curve) == TINY["steps"] // TINY["eval_every"]
        assert [v for _, v in curve] == pytest.approx([v for _, v in row["curve"]], rel=1e-6)


def test_an_empty_store_is_refused_clearly(tmp_path, capsys):
    assert cli.main(["sweep", "tensorboard", str(tmp_path / "none"), str(tmp_path / "out")]) == 1
    assert "holds no finished runs" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_metrics_and_hparams_skip_what_tensorboard_cannot_show():
    row = {"requested": "last", "strategy": "classifier", "seed": 1, "fraction": 0.5, "lr_used": 0.001,
           "config_hash": "084d3f94fbaa5598", "dataset": "/data/polyp/Kvasir-SEG", "init": None, "n_train": 12,
           "test_auc": 0.75, "test_auc_lo": 0.6, "test_auc_hi": 0.9, "test_n": 32, "val_score": math.nan,
           "val_collapsed": False, "test_scores": [0.1, 0.9], "wall_s": 1.5, "augment": False, "val_share": 0.2}
    assert tboard.metrics_of(row) == {"test_auc": 0.75, "wall_s": 1.5}
    params = tboard.hparams_of(row)
    assert "init" not in params and params["augment"] is False and params["dataset"] == "/data/polyp/Kvasir-SEG"
    assert tboard.run_name(row) == "Kvasir-SEG-last-f0.5-seed1-lr0.001-084d3f94"


def test_fit_logs_curves_live_when_asked(tiny_data, tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", pretrained=False, image_size=32)
    settings = dict(steps=6, eval_every=2, batch_size=16, patience=None, quiet=True, device="cpu", decay_steps=2)
    result = T.fit(model, tiny_data, tensorboard_dir=str(tmp_path / "live"), **settings)
    events = read(tmp_path / "live")
    assert set(events.Tags()["scalars"]) == {"train/loss", "val/auc", "val/loss", "train/head_lr"}
    history = result.history
    for tag, column in (("train/loss", "train_loss"), ("val/auc", "val_auc"), ("val/loss", "val_loss")):
        logged = scalars(events, tag)
        assert [s for s, _ in logged] == history["step"].tolist() == [2, 4, 6]
        assert [v for _, v in logged] == pytest.approx(history[column].tolist(), rel=1e-6)


def test_live_logging_is_off_by_default(tiny_data, tmp_path, monkeypatch):
    with tboard.live_curves(None) as log:
        assert log is None
    assert T.TrainConfig().tensorboard_dir is None
    here = tmp_path / "cwd"
    here.mkdir()
    monkeypatch.chdir(here)   # a SummaryWriter made without a folder would write ./runs here
    T.fit(build_model("efficientnet_lite0", pretrained=False, image_size=32), tiny_data, steps=2, eval_every=2,
          batch_size=16, quiet=True, device="cpu")
    assert list(here.iterdir()) == []


@needs_data
def test_sweep_logs_each_run_live_under_its_export_name(tmp_path):
    configs = grid(strategies=("last",), seeds=(2,), **TINY)
    store = ResultsStore(tmp_path / "store")
    run_sweep(configs, store, run_fn=tboard.Logged(tmp_path / "live"), progress=False)
    (row,) = store.load().to_dict("records")
    folder = tmp_path / "live" / tboard.run_name(row)
    assert [p.name for p in (tmp_path / "live").iterdir()] == [folder.name]
    events = read(folder)
    assert [s for s, _ in scalars(events, "val/auc")] == [s for s, _ in row["curve"]]
    assert [v for _, v in scalars(events, "val/auc")] == pytest.approx([v for _, v in row["curve"]], rel=1e-6)
    assert len(scalars(events, "train/loss")) == len(row["curve"])
