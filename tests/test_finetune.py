"""helpers.finetune: the depth ladder, freezing that really freezes (parameters AND BatchNorm buffers),
the paper's learning-rate groups, and auto-depth's walk down the ladder."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import finetune as FT
from helpers import tuning as TU
from helpers import train as T
from helpers.models import build_model, count_parameters

ALEXNET_LADDER = ["fc8", "fc7-fc8", "fc6-fc8", "conv5-fc8", "conv4-fc8", "conv3-fc8", "conv2-fc8", "conv1-fc8"]
QUIET = dict(quiet=True, eval_batch_size=64)

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture
def alexnet(alexnet_63):
    yield alexnet_63
    FT.set_level(alexnet_63, "all")


@pytest.fixture
def lite():
    """Pretrained EfficientNet-Lite0 on 32 px inputs with a new 2-class head."""
    torch.manual_seed(0)
    return build_model("efficientnet_lite0", pretrained=True, image_size=32)


def test_alexnet_ladder_has_the_paper_levels(alexnet):
    rungs = FT.ladder(alexnet)
    assert [r.name for r in rungs] == ALEXNET_LADDER
    assert [r.index for r in rungs] == list(range(8))
    assert rungs[0].tuned == ("fc8",) and rungs[-1].tuned == tuple(alexnet.stage_names[1:])
    assert rungs[3].tuned == ("conv5", "fc6", "fc7", "fc8")
    assert rungs[3].frozen == ("input", "conv1", "conv2", "conv3", "conv4")
    for r in rungs:  # tuned and frozen partition the stages
        assert sorted(r.tuned + r.frozen) == sorted(alexnet.stage_names)
    assert list(FT.ladder_table(alexnet)["level"]) == ALEXNET_LADDER


def test_other_ladders():
    resnet = build_model("resnet18", image_size=32)
    assert [r.name for r in FT.ladder(resnet)] == [
        "fc", "layer4-fc", "layer3-fc", "layer2-fc", "layer1-fc", "stem-fc"]
    lite = build_model("efficientnet_lite0", image_size=32)
    assert [r.name for r in FT.ladder(lite)] == [
        "classifier", "conv_head-classifier", *[f"stage{i}-classifier" for i in range(7, 0, -1)],
        "stem-classifier"]


def test_trainable_parameters_grow_strictly_with_depth(alexnet):
    counts = []
    try:
        for rung in FT.ladder(alexnet):
            assert FT.set_level(alexnet, rung.name) == rung
            counts.append(count_parameters(alexnet, trainable_only=True))
            assert alexnet.frozen == set(rung.frozen)
            for name, stage in alexnet.stages.items():
                assert all(p.requires_grad == (name in rung.tuned) for p in stage.parameters())
    finally:
        FT.set_level(alexnet, "all")
    assert all(a < b for a, b in zip(counts, counts[1:])), counts
    assert counts[-1] == count_parameters(alexnet)
    assert list(FT.ladder_table(alexnet)["trainable parameters"]) == counts


def test_aliases_indices_and_unknown_levels(alexnet):
    assert FT.resolve_level(alexnet, "last").name == "fc8"
    assert FT.resolve_level(alexnet, "all").name == "conv1-fc8"
    assert FT.resolve_level(alexnet, "middle").name == "conv5-fc8"
    assert FT.resolve_level(alexnet, 2).name == "fc6-fc8"
    with pytest.raises(ValueError) as info:
        FT.resolve_level(alexnet, "fc9")
    assert "fc9" in str(info.value)
    for name in ALEXNET_LADDER + ["last", "middle", "all"]:
        assert repr(name) in str(info.value) or name in str(info.value)
    with pytest.raises(ValueError, match="out of range"):
        FT.resolve_level(alexnet, 8)
    with pytest.raises(ValueError):
        FT.resolve_level(alexnet, True)


def test_frozen_stages_do_not_change_during_training(lite, mini_data):
    """Two SGD steps at a middle level WITHOUT caching, so the frozen stages really run."""
    rung = FT.set_level(lite, "middle")
    assert rung.name == "stage5-classifier"
    frozen_stages = [s for s in rung.frozen if s != "input"]
    before = {k: v.clone() for k, v in lite.state_dict().items()}
    snapshot = FT.frozen_state(lite)
    assert any(k.endswith("running_mean") for k in snapshot) and any(k.endswith("num_batches_tracked")
                                                                      for k in snapshot)

    # frozen parameters: no gradient, no place in the optimizer
    frozen_params = [p for s in frozen_stages for p in lite.stages[s].parameters()]
    assert frozen_params and not any(p.requires_grad for p in frozen_params)
    optimizer = T.make_optimizer(lite, T.TrainConfig())
    in_groups = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not in_groups & {id(p) for p in frozen_params}
    tuned_params = [p for s in rung.tuned for p in lite.stages[s].parameters()]
    assert in_groups == {id(p) for p in tuned_params}

    # frozen stages stay in eval mode when the model is put in training mode
    lite.train()
    for name, stage in lite.stages.items():
        assert all(m.training == (name in rung.tuned) for m in stage.modules()), name

    # Adam: the new head (std 0.01) shrinks the gradients reaching stage5 to ~1e-9, so an SGD step would
    # fall below float32 resolution there; Adam's normalised steps make "every tuned tensor moved" testable.
    result = T.fit(lite, mini_data, steps=2, batch_size=8, cache=False, patience=None, eval_every=0, lr=1e-3,
                   optimizer="adam", bn_mode="train", **QUIET)
    assert result.cached is False and result.iterations == 2

    assert FT.changed_entries(lite, snapshot) == []
    after = lite.state_dict()
    prefixes = tuple(f"stages.{s}." for s in rung.frozen)
    frozen_keys = [k for k in before if k.startswith(prefixes)]
    assert len(frozen_keys) == len(snapshot)
    for key in frozen_keys:
        assert torch.equal(before[key], after[key]), f"frozen {key} changed"
    for name, p in lite.named_parameters():
        if p.requires_grad:
            assert not torch.equal(before[name], p.detach()), f"tuned {name} did not change"
    # the tuned BatchNorm layers did run in training mode (their statistics moved): the test is not vacuous
    assert not torch.equal(before["stages.stage5.0.bn1.running_mean"], after["stages.stage5.0.bn1.running_mean"])
    tracked = "stages.stage5.0.bn1.num_batches_tracked"
    assert int(after[tracked]) == int(before[tracked]) + 2


def test_param_groups_follow_the_paper_recipe(alexnet):
    FT.set_level(alexnet, "fc6-fc8")
    try:
        groups = FT.param_groups(alexnet, 0.001)
        by = {(g["stage"], "bias" if g["weight_decay"] == 0 else "weight"): g for g in groups}
        assert set(by) == {(s, k) for s in ("fc6", "fc7", "fc8") for k in ("weight", "bias")}
        assert by[("fc8", "weight")]["lr"] == pytest.approx(0.01)
        assert by[("fc8", "bias")]["lr"] == pytest.approx(0.02)
        for stage in ("fc6", "fc7"):
            assert by[(stage, "weight")]["lr"] == pytest.approx(0.001)
            assert by[(stage, "bias")]["lr"] == pytest.approx(0.002)
            assert by[(stage, "weight")]["weight_decay"] == 5e-4
        assert all(p.ndim == 1 for (_, kind), g in by.items() if kind == "bias" for p in g["params"])

        decayed = FT.param_groups(alexnet, 0.001, layer_decay=0.5)
        lr = {(g["stage"], g["weight_decay"] == 0): g["lr"] for g in decayed}
        assert lr[("fc8", False)] == pytest.approx(0.01)
        assert lr[("fc7", False)] == pytest.approx(0.0005)
        assert lr[("fc6", False)] == pytest.approx(0.00025)
        assert lr[("fc6", True)] == pytest.approx(0.0005)

        scratch = FT.param_groups(alexnet, 0.001, head_lr_mult=1.0)
        assert all(g["lr"] == pytest.approx(0.001) for g in scratch if g["weight_decay"])

        FT.set_level(alexnet, "all")
        stages = [g["stage"] for g in FT.param_groups(alexnet, 0.001, layer_decay=0.9)]
        assert list(dict.fromkeys(stages)) == ["fc8", "fc7", "fc6", "conv5", "conv4", "conv3", "conv2", "conv1"]
        for bad in (0, -0.001):
            with pytest.raises(ValueError, match="positive"):
                FT.param_groups(alexnet, bad)
    finally:
        FT.set_level(alexnet, "all")


def test_auto_depth_walks_down_the_ladder(lite, tiny_data):
    result = TU.auto_depth(lite, tiny_data, max_levels=3, patience_levels=1, steps=4, batch_size=32,
                           eval_every=0, lr=0.01, rates={"conv_head-classifier": 0.003}, **QUIET)
    path = result.path
    assert list(path["index"]) == list(range(len(path))) and 1 <= len(path) <= 3
    assert list(path["level"]) == ["classifier", "conv_head-classifier", "stage7-classifier"][: len(path)]
    best = int(path["val_auc"].to_numpy().argmax())  # the first best one
    assert result.chosen == path["level"][best] and result.chosen_index == best
    if len(path) < 3:  # it stopped early: the last level was no better than the best before it
        assert path["val_auc"].iloc[-1] <= path["val_auc"].iloc[:-1].max()
    assert result.model is lite
    assert lite.frozen == set(FT.ladder(lite)[best].frozen)
    assert {"lr", "val_auc", "val_loss", "best_step", "iterations", "seconds", "cached"} <= set(path.columns)
    assert path["lr"].iloc[0] == 0.01 and (len(path) < 2 or path["lr"].iloc[1] == 0.003)   # per-level rates


def test_auto_depth_stops_after_patience(lite, tiny_data, monkeypatch):
    """With scripted validation AUCs the stopping rule is checked exactly."""
    aucs = iter([0.70, 0.80, 0.75, 0.79, 0.95])
    seen = []

    def fake_fit(model, data, config=None, **overrides):
        seen.append(sorted(model.frozen))
        with torch.no_grad():  # mark the weights so the chosen level's state can be recognised
            model.stages["classifier"][1].bias.fill_(len(seen))
        return T.TrainResult(pd.DataFrame([{"step": 1}]), pd.DataFrame(), 1, next(aucs), 1, 0.0, True, "cpu")

    monkeypatch.setattr(TU, "fit", fake_fit)
    result = TU.auto_depth(lite, tiny_data, patience_levels=2)
    assert list(result.path["val_auc"]) == [0.70, 0.80, 0.75, 0.79]  # two levels without gain, then stop
    assert result.chosen == "conv_head-classifier" and result.chosen_index == 1
    assert float(lite.stages["classifier"][1].bias.detach()[0]) == 2.0  # the weights of the chosen level restored
    assert [len(f) for f in seen] == [10, 9, 8, 7]  # one more stage tuned at each level


def test_auto_depth_treats_a_diverging_level_as_no_gain(lite, tiny_data, monkeypatch):
    """A level whose training diverges (warm-started at its rate) is recorded and counts as a level without gain;
    the next level starts from the best weights, and the best level's weights are the ones returned."""
    outcomes = iter([0.70, "diverge", 0.75, 0.72, 0.71])
    starts = []

    def fake_fit(model, data, config=None, **overrides):
        starts.append(float(model.stages["classifier"][1].bias.detach()[0]))
        outcome = next(outcomes)
        with torch.no_grad():
            model.stages["classifier"][1].bias.fill_(100.0 if outcome == "diverge" else len(starts))
        if outcome == "diverge":
            raise T.TrainingDivergedError("Training diverged: the training loss rose")
        return T.TrainResult(pd.DataFrame([{"step": 1}]), pd.DataFrame(), 1, outcome, 1, 0.0, True, "cpu")

    monkeypatch.setattr(TU, "fit", fake_fit)
    result = TU.auto_depth(lite, tiny_data, patience_levels=2)
    assert result.path["diverged"].tolist() == [False, True, False, False, False]
    assert np.isnan(result.path["val_auc"].iloc[1]) and "diverged" in result.path["note"].iloc[1]
    assert starts[2] == 1.0                       # level 3 started from the best weights (level 1's), not garbage
    assert result.chosen == "stage7-classifier" and float(lite.stages["classifier"][1].bias.detach()[0]) == 3.0
    # the first level has nothing to fall back on: its divergence is raised
    monkeypatch.setattr(TU, "fit", lambda *a, **k: (_ for _ in ()).throw(T.TrainingDivergedError("diverged")))
    with pytest.raises(T.TrainingDivergedError):
        TU.auto_depth(lite, tiny_data)


def test_first_conv_and_first_tuned_stage(alexnet, lite):
    assert FT.first_conv(alexnet) is alexnet.stages["conv1"][0]
    assert FT.first_conv(lite) is lite.stages["stem"][0]
    FT.set_level(lite, "conv_head-classifier")
    assert lite.stage_names[FT.first_tuned_stage(lite)] == "conv_head"
    for p in lite.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="frozen"):
        FT.first_tuned_stage(lite)
    with pytest.raises(ValueError, match="frozen"):
        FT.param_groups(lite, 0.001)
