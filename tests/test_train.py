"""helpers.train: deterministic on the CPU, early stopping restores the best epoch, frozen-feature caching
changes nothing but the speed, bad input is refused with clear messages, and every option runs."""
import copy

import numpy as np
import pytest
import torch

from helpers import finetune as FT
from helpers import train as T
from helpers.datasets import Split
from helpers.metrics import roc_auc
from helpers.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = dict(batch_size=16, eval_every=0, quiet=True, eval_batch_size=64, device="cpu")


@pytest.fixture(scope="module")
def lite_state():
    """One pretrained EfficientNet-Lite0 (32 px, new 2-class head): every test starts from its weights."""
    torch.manual_seed(0)
    return build_model("efficientnet_lite0", pretrained=True, image_size=32)


@pytest.fixture
def make_lite(lite_state):
    def make(level="conv_head-classifier"):
        model = copy.deepcopy(lite_state)
        FT.set_level(model, level)
        return model
    return make


def _history(result):
    return result.history.drop(columns="seconds")


def test_same_seed_same_run_other_seed_other_run(make_lite, tiny_data):
    runs = [T.fit_and_test(f"seed {s}", make_lite("conv_head-classifier"), tiny_data, n_boot=20, epochs=2,
                           patience=None, seed=s, **SMALL) for s in (3, 3, 4)]
    a, b, c = runs
    assert _history(a.result).equals(_history(b.result))
    assert a.result.curve.equals(b.result.curve)
    assert a.metrics == b.metrics
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.allclose(a.result.history["train_loss"], c.result.history["train_loss"])
    assert not np.array_equal(a.scores, c.scores)
    assert {"auc", "auc_lo", "auc_hi", "acc", "n"} <= set(a.metrics) and a.metrics["n"] == 32


def test_early_stopping_restores_the_best_epoch(make_lite, tiny_data):
    model = make_lite("conv_head-classifier")
    result = T.fit(model, tiny_data, epochs=6, patience=2, lr=0.01, seed=0, **SMALL)
    history = result.history
    assert result.best_val_auc == history["val_auc"].max()
    assert history["val_auc"].iloc[result.best_epoch - 1] == result.best_val_auc
    assert len(history) <= 6
    scores = T.predict(model, tiny_data.val, device="cpu")
    assert abs(roc_auc(tiny_data.val.labels.numpy(), scores) - result.best_val_auc) < 1e-6
    # the restored weights are those of the best epoch, not the last: their validation loss says so
    val_loss = float(torch.nn.functional.nll_loss(torch.log(torch.from_numpy(scores).clamp_min(1e-12)),
                                                  tiny_data.val.labels))
    assert val_loss == pytest.approx(history["val_loss"].iloc[result.best_epoch - 1], abs=1e-5)
    if result.best_epoch < len(history):
        assert val_loss != pytest.approx(history["val_loss"].iloc[-1], abs=1e-5)


def test_cached_and_uncached_training_agree(make_lite, tiny_data):
    runs = {}
    for cache in (True, False):
        model = make_lite("conv_head-classifier")
        result = T.fit(model, tiny_data, epochs=2, patience=None, lr=0.01, seed=1, cache=cache, **SMALL)
        assert result.cached is cache
        runs[cache] = (model, result)
    (m1, r1), (m0, r0) = runs[True], runs[False]
    for col in ("train_loss", "val_loss", "val_auc", "head_lr"):
        np.testing.assert_allclose(r1.history[col], r0.history[col], rtol=1e-4, atol=1e-4, err_msg=col)
    for stage in ("conv_head", "classifier"):
        s1, s0 = m1.stages[stage].state_dict(), m0.stages[stage].state_dict()
        for key in s1:
            torch.testing.assert_close(s1[key], s0[key], rtol=1e-4, atol=1e-4, msg=f"{stage}.{key}")
    assert r1.iterations == r0.iterations == 8


def test_cache_memory_limit_and_plan(make_lite, tiny_data, mini_data):
    model = make_lite("conv_head-classifier")
    for cache in (True, "auto"):
        result = T.fit(model, mini_data, epochs=1, cache=cache, cache_limit_bytes=16, **SMALL)
        assert result.cached is False
    start = FT.first_tuned_stage(model)
    images = tiny_data.train.images
    with torch.no_grad():
        per_image = model.forward_from(0, images[:1].float() / 255, stop=start).numel()
    n = len(images)
    plan = lambda **kw: T.cache_plan(model, start, T.TrainConfig(**kw), n, images, torch.device("cpu"))  # noqa: E731
    assert plan() is torch.float32
    assert plan(cache_limit_bytes=per_image * n * 2) is torch.float16
    assert plan(cache_limit_bytes=per_image * n * 2 - 1) is None
    assert plan(cache=False) is None and plan(augment=True) is None
    FT.set_level(model, "all")  # nothing frozen but the input adapter: nothing worth caching
    assert T.cache_plan(model, FT.first_tuned_stage(model), T.TrainConfig(), n, images,
                        torch.device("cpu")) is None


def test_bad_input_is_refused(make_lite, tiny_data):
    model = make_lite("classifier")
    three = build_model("efficientnet_lite0", num_classes=3, image_size=32)
    with pytest.raises(ValueError, match=r"3 outputs.*2 classes"):
        T.fit(three, tiny_data, **SMALL)
    empty = tiny_data.with_train(Split(tiny_data.train.images[:0], tiny_data.train.labels[:0]))
    with pytest.raises(ValueError, match="training set is empty"):
        T.fit(model, empty, **SMALL)
    no_val = copy.copy(tiny_data)
    no_val.val = Split(tiny_data.val.images[:0], tiny_data.val.labels[:0])
    with pytest.raises(ValueError, match="validation set is empty"):
        T.fit(model, no_val, **SMALL)
    for lr in (0, 0.0, -0.01, float("nan")):
        with pytest.raises(ValueError, match="learning rate must be positive"):
            T.fit(model, tiny_data, lr=lr, **SMALL)
    with pytest.raises(ValueError, match=r"'rmsprop'.*sgd"):
        T.fit(model, tiny_data, optimizer="rmsprop", **SMALL)
    with pytest.raises(ValueError, match="epochs"):
        T.fit(model, tiny_data, epochs=0, **SMALL)


def test_nan_loss_stops_with_epoch_and_iteration(make_lite, tiny_data):
    model = make_lite("classifier")
    with torch.no_grad():
        model.stages["classifier"][1].weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"epoch 1 at iteration 1\b"):
        T.fit(model, tiny_data, epochs=2, **SMALL)


@pytest.mark.parametrize("lr, what", [(1e6, "training loss"), (1e12, "validation scores")])
def test_divergence_stops_with_epoch_and_iteration(make_lite, tiny_data, lr, what):
    """lr=1e6 makes the loss NaN mid-training; lr=1e12 wrecks the weights in the epoch's last step, after
    the last finite loss: both stop with a FloatingPointError naming where (not a metrics error)."""
    model = make_lite("classifier")
    with pytest.raises(FloatingPointError, match=rf"{what} became .* in epoch \d+ at iteration \d+") as info:
        T.fit(model, tiny_data, epochs=3, lr=lr, patience=None, **SMALL)
    assert "Lower the learning rate" in str(info.value)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_and_adamw_run(make_lite, tiny_data, optimizer):
    model = make_lite("conv_head-classifier")
    opt = T.make_optimizer(model, T.TrainConfig(optimizer=optimizer, lr=1e-3))
    assert type(opt).__name__ == {"adam": "Adam", "adamw": "AdamW"}[optimizer]
    result = T.fit(model, tiny_data, epochs=2, optimizer=optimizer, lr=1e-3, patience=None, **SMALL)
    assert np.isfinite(result.history["train_loss"]).all() and result.best_val_auc > 0.5


def test_augmented_training_runs_uncached(make_lite, tiny_data):
    model = make_lite("conv_head-classifier")
    result = T.fit(model, tiny_data, epochs=1, augment=True, cache=True, **SMALL)
    assert result.cached is False and np.isfinite(result.history["train_loss"]).all()


def test_history_and_curve_columns(make_lite, tiny_data):
    model = make_lite("classifier")
    result = T.fit(model, tiny_data, epochs=3, patience=None, lr=0.01, **{**SMALL, "eval_every": 3})
    assert list(result.history.columns) == ["epoch", "train_loss", "val_loss", "val_auc", "head_lr", "seconds"]
    assert list(result.history["epoch"]) == [1, 2, 3]
    lrs = result.history["head_lr"].to_numpy()
    assert lrs[0] == pytest.approx(0.1)  # the first group is the new head: 10x the base rate
    np.testing.assert_allclose(lrs[1:] / lrs[:-1], 0.95)
    assert {"iteration", "val_auc"} <= set(result.curve.columns)
    # every 3 iterations, plus each epoch's end (4 iterations an epoch)
    assert list(result.curve["iteration"]) == [3, 4, 6, 8, 9, 12]
    assert list(result.curve["epoch"]) == [1, 1, 2, 2, 3, 3]
    assert result.iterations == 12 and result.device == "cpu"
    assert result.curve["val_auc"].between(0, 1).all()


def test_evaluate_and_lr_sensitivity(make_lite, tiny_data, mini_data):
    model = make_lite("classifier")
    metrics, scores = T.evaluate(model, tiny_data.test, n_boot=20, device="cpu")
    assert scores.shape == (32, 2) and np.allclose(scores.sum(1), 1, atol=1e-5)
    assert metrics["auc_lo"] <= metrics["auc"] <= metrics["auc_hi"]
    table = T.lr_sensitivity(lambda: make_lite("classifier"), mini_data, [1e-3, 1e-2],
                             T.TrainConfig(epochs=1, **SMALL), label="lite")
    assert list(table["lr"]) == [1e-3, 1e-2] and list(table["model"]) == ["lite", "lite"]
    assert {"val_auc", "epochs", "final_train_loss"} <= set(table.columns)
