"""helpers.train: deterministic on the CPU, a budget in steps, early stopping restores the best step,
frozen-feature caching changes nothing but the speed, BatchNorm modes do what they say, diverging and
NaN losses stop with clear messages, bad input is refused, and every option runs."""
import copy

import numpy as np
import pytest
import torch

from helpers import finetune as FT
from helpers import train as T
from helpers import tuning as TU
from helpers.datasets import Split
from helpers.metrics import roc_auc
from helpers.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = dict(batch_size=16, eval_every=0, quiet=True, eval_batch_size=64, device="cpu", decay_steps=4)


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
    runs = [TU.fit_and_test(f"seed {s}", make_lite("conv_head-classifier"), tiny_data, n_boot=20, steps=8,
                           patience=None, seed=s, **{**SMALL, "eval_every": 4}) for s in (3, 3, 4)]
    a, b, c = runs
    assert _history(a.result).equals(_history(b.result))
    assert a.result.curve.equals(b.result.curve)
    assert a.metrics == b.metrics
    np.testing.assert_array_equal(a.scores, b.scores)
    assert not np.allclose(a.result.history["train_loss"], c.result.history["train_loss"])
    assert not np.array_equal(a.scores, c.scores)
    assert {"auc", "auc_lo", "auc_hi", "acc", "n"} <= set(a.metrics) and a.metrics["n"] == 32


def test_early_stopping_restores_the_best_step(make_lite, tiny_data):
    model = make_lite("conv_head-classifier")
    result = T.fit(model, tiny_data, steps=24, patience=8, lr=0.01, seed=0, **{**SMALL, "eval_every": 4})
    history = result.history
    assert result.best_val_auc == history["val_auc"].max()
    assert history.set_index("step").loc[result.best_step, "val_auc"] == result.best_val_auc
    assert result.iterations <= 24 and list(history["step"]) == list(range(4, result.iterations + 1, 4))
    scores = T.predict(model, tiny_data.val, device="cpu")
    assert abs(roc_auc(tiny_data.val.labels.numpy(), scores) - result.best_val_auc) < 1e-6
    # the restored weights are those of the best step, not the last: their validation loss says so
    val_loss = float(torch.nn.functional.nll_loss(torch.log(torch.from_numpy(scores).clamp_min(1e-12)),
                                                  tiny_data.val.labels))
    assert val_loss == pytest.approx(history.set_index("step").loc[result.best_step, "val_loss"], abs=1e-5)
    assert val_loss == pytest.approx(result.best_val_loss, abs=1e-5)


def test_the_best_step_is_restored_for_plain_modules_and_frozen_stages_are_untouched(make_lite, tiny_data):
    """Best-weight copies hold what training can change: every tensor of a plain module, the tuned stages
    of an FTModel (frozen stages, BatchNorm statistics included, stay as they were)."""
    torch.manual_seed(0)
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2))
    result = T.fit(plain, tiny_data, steps=24, patience=None, lr=1.0, seed=0, **{**SMALL, "eval_every": 4})
    assert result.best_step < 24   # an earlier check won, so its weights had to be copied back
    scores = torch.from_numpy(T.predict(plain, tiny_data.val, device="cpu"))
    assert T.probability_loss(scores, tiny_data.val.labels) == pytest.approx(result.best_val_loss, abs=1e-6)
    model = make_lite("conv_head-classifier")
    frozen = {k: v.clone() for k, v in model.stages["stage7"].state_dict().items()}
    T.fit(model, tiny_data, steps=24, patience=8, lr=0.01, seed=0, **{**SMALL, "eval_every": 4})
    for key, value in model.stages["stage7"].state_dict().items():
        assert torch.equal(value, frozen[key]), key


def test_budget_is_steps_whatever_the_data_size(make_lite, tiny_data, mini_data):
    """16 and 64 training images get the same number of SGD steps (no early stop): the budget is steps."""
    for data in (mini_data, tiny_data):
        result = T.fit(make_lite("classifier"), data, steps=10, patience=None, **SMALL)
        assert result.iterations == 10 and list(result.history["step"]) == [10]


def test_patience_and_min_steps_in_steps(make_lite, tiny_data):
    result = T.fit(make_lite("classifier"), tiny_data, steps=40, patience=4, min_steps=20, lr=1e-30,
                   **{**SMALL, "eval_every": 2})
    # a rate of 1e-30 leaves the weights as they are: no check beats the first, but no stop before min_steps
    assert result.iterations == 20 and result.best_step == 2


def test_cached_and_uncached_training_agree(make_lite, tiny_data):
    runs = {}
    for cache in (True, False):
        model = make_lite("conv_head-classifier")
        result = T.fit(model, tiny_data, steps=8, patience=None, lr=0.01, seed=1, cache=cache, **SMALL)
        assert result.cached is cache
        runs[cache] = (model, result)
    (m1, r1), (m0, r0) = runs[True], runs[False]
    for col in ("step", "train_loss", "val_loss", "val_auc", "head_lr"):
        np.testing.assert_allclose(r1.history[col], r0.history[col], rtol=1e-4, atol=1e-4, err_msg=col)
    for stage in ("conv_head", "classifier"):
        s1, s0 = m1.stages[stage].state_dict(), m0.stages[stage].state_dict()
        for key in s1:
            torch.testing.assert_close(s1[key], s0[key], rtol=1e-4, atol=1e-4, msg=f"{stage}.{key}")
    assert r1.iterations == r0.iterations == 8


def test_cache_memory_limit_and_plan(make_lite, tiny_data, mini_data):
    model = make_lite("conv_head-classifier")
    for cache in (True, "auto"):
        result = T.fit(model, mini_data, steps=1, cache=cache, cache_limit_bytes=16, **SMALL)
        assert result.cached is False
    start = FT.first_tuned_stage(model)
    images = tiny_data.train.images
    with torch.no_grad():
        per_image = model.forward_from(0, images[:1].float() / 255, stop=start).numel()
    n = len(images)
    plan = lambda **kw: T.cache_plan(model, start, T.TrainConfig(**kw), n, per_image)  # noqa: E731
    assert plan() is torch.float32
    assert plan(cache_limit_bytes=per_image * n * 2) is torch.float16
    assert plan(cache_limit_bytes=per_image * n * 2 - 1) is None
    assert plan(cache=False) is None and plan(augment=True) is None
    FT.set_level(model, "all")  # nothing frozen but the input adapter: nothing worth caching
    assert T.cache_plan(model, FT.first_tuned_stage(model), T.TrainConfig(), n, per_image) is None


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
    with pytest.raises(ValueError, match="steps"):
        T.fit(model, tiny_data, steps=0, **SMALL)
    with pytest.raises(ValueError, match=r"bn_mode.*recalibrate"):
        T.fit(model, tiny_data, bn_mode="sometimes", **SMALL)


def test_nan_loss_stops_with_the_step(make_lite, tiny_data):
    model = make_lite("classifier")
    with torch.no_grad():
        model.stages["classifier"][1].weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"at step 1 \(learning rate"):
        T.fit(model, tiny_data, steps=4, **SMALL)


@pytest.mark.parametrize("lr", [1e3, 1e6])
def test_a_diverging_run_stops_naming_the_rate(make_lite, tiny_data, lr):
    """lr = 1e3 used to "succeed" with a training loss of 1e9 and validation AUC 0.5; now it stops."""
    model = make_lite("all")
    with pytest.raises(FloatingPointError) as info:
        T.fit(model, tiny_data, steps=30, lr=lr, patience=None, **SMALL)
    message = str(info.value)
    assert f"{lr:g}" in message and ("smaller learning rate" in message or "Lower the learning rate" in message)


def test_divergence_error_type_for_an_exploding_loss(make_lite, tiny_data):
    model = make_lite("all")
    with pytest.raises(T.TrainingDivergedError, match=r"diverged.*learning rate 1000.*try 100"):
        T.fit(model, tiny_data, steps=30, lr=1e3, patience=None, **SMALL)


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam_and_adamw_run(make_lite, tiny_data, optimizer):
    model = make_lite("conv_head-classifier")
    opt = T.make_optimizer(model, T.TrainConfig(optimizer=optimizer, lr=1e-3))
    assert type(opt).__name__ == {"adam": "Adam", "adamw": "AdamW"}[optimizer]
    result = T.fit(model, tiny_data, steps=8, optimizer=optimizer, lr=1e-3, patience=None, **SMALL)
    assert np.isfinite(result.history["train_loss"]).all() and result.best_val_auc > 0.5


def test_augmented_training_runs_uncached(make_lite, tiny_data):
    model = make_lite("conv_head-classifier")
    result = T.fit(model, tiny_data, steps=4, augment=True, cache=True, **SMALL)
    assert result.cached is False and np.isfinite(result.history["train_loss"]).all()


def test_history_and_curve_columns(make_lite, tiny_data):
    model = make_lite("classifier")
    result = T.fit(model, tiny_data, steps=12, patience=None, lr=0.01, **{**SMALL, "eval_every": 3})
    assert list(result.history.columns) == ["step", "train_loss", "val_loss", "val_auc", "head_lr", "seconds"]
    assert list(result.history["step"]) == [3, 6, 9, 12]
    lrs = result.history["head_lr"].to_numpy()
    # the first group is the new head (10x the base rate), decayed by 0.95 every decay_steps (4) steps
    np.testing.assert_allclose(lrs, 0.1 * 0.95 ** (np.array([3, 6, 9, 12]) / 4))
    assert list(result.curve["iteration"]) == [3, 6, 9, 12]
    assert result.iterations == 12 and result.device == "cpu"
    assert result.curve["val_auc"].between(0, 1).all()


def test_evaluate_and_rate_tuning(make_lite, tiny_data, mini_data):
    model = make_lite("classifier")
    metrics, scores = T.evaluate(model, tiny_data.test, n_boot=20, device="cpu")
    assert scores.shape == (32, 2) and np.allclose(scores.sum(1), 1, atol=1e-5)
    assert metrics["auc_lo"] <= metrics["auc"] <= metrics["auc_hi"] and metrics["score_sd"] > 0
    search = TU.tune_lr(lambda: make_lite("classifier"), tiny_data, [1e-3, 1e-2, 1e4],
                       T.TrainConfig(steps=12, **{**SMALL, "eval_every": 4}), label="lite")
    table = search.table
    assert list(table["lr"]) == [1e-3, 1e-2, 1e4] and list(table["model"]) == ["lite"] * 3
    assert bool(table.loc[2, "diverged"]) and search.lr != 1e4      # a diverged rate is never chosen
    best = table[~table["diverged"]].sort_values("val_auc").iloc[-1]
    assert search.lr == best["lr"] or table[~table["diverged"]]["val_auc"].nunique() == 1
    assert table["chosen"].sum() == 1 and search.result.best_val_auc == table.loc[table["chosen"], "val_auc"].item()


def test_choose_rate_prefers_auc_then_loss_and_refuses_all_diverged():
    import pandas as pd
    table = pd.DataFrame({"lr": [0.1, 0.01, 0.001], "val_auc": [0.9, 0.9, 0.8], "val_loss": [0.5, 0.3, 0.2],
                          "diverged": [False, False, False]})
    assert TU.choose_rate(table) == 0.01
    with pytest.raises(ValueError, match="diverged; add smaller rates"):
        TU.choose_rate(table.assign(diverged=True))


# ----------------------------------------------------------------------------- BatchNorm modes

def _bn_buffers(model):
    return {k: v.clone() for k, v in model.state_dict().items() if "running_" in k or "num_batches" in k}


def test_bn_frozen_keeps_running_statistics_bit_identical(make_lite, tiny_data):
    model = make_lite("all")
    before = _bn_buffers(model)
    T.fit(model, tiny_data, steps=6, patience=None, lr=0.01, bn_mode="frozen", **{**SMALL, "eval_every": 3})
    after = _bn_buffers(model)
    assert before.keys() == after.keys() and len(before) > 0
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(not torch.equal(a, b) for a, b in zip(make_lite("all").parameters(), model.parameters()))


def test_pretrained_stages_keep_imagenet_statistics_by_default(make_lite, tiny_data):
    """The default ``bn_mode="auto"``: a pretrained model tuned at every level keeps ImageNet's running
    statistics bit for bit, and the result says which mode was used."""
    model = make_lite("all")
    before = _bn_buffers(model)
    result = T.fit(model, tiny_data, steps=6, patience=None, lr=0.01, **{**SMALL, "eval_every": 3})
    assert T.TrainConfig().bn_mode == "auto" and result.bn_mode == "frozen"
    after = _bn_buffers(model)
    assert len(before) > 0 and all(torch.equal(before[k], after[k]) for k in before)


def test_scratch_models_recalibrate_by_default(tiny_data):
    """From scratch there are no statistics worth keeping: ``auto`` recomputes them on the training images."""
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", pretrained=False, image_size=32)
    before = _bn_buffers(model)
    result = T.fit(model, tiny_data, steps=4, patience=None, lr=0.01, **{**SMALL, "eval_every": 2})
    assert result.bn_mode == "recalibrate"
    assert any(not torch.equal(before[k], v) for k, v in _bn_buffers(model).items() if "running_mean" in k)
    assert T.resolve_bn_mode(model, "train") == "train" and T.resolve_bn_mode(torch.nn.Linear(2, 2), "auto") == "recalibrate"


def test_bn_recalibrate_sets_running_statistics_to_the_training_images(make_lite, tiny_data):
    model = make_lite("all")
    T.fit(model, tiny_data, steps=6, patience=None, lr=0.01, bn_mode="recalibrate", recalibrate_images=1000,
          **{**SMALL, "eval_every": 3})
    bn = model.stages["stem"][1]     # the first BatchNorm: its input depends on no other BatchNorm
    model.eval()
    with torch.no_grad():
        x = model.stages["stem"][0](model.stages["input"](tiny_data.train.images.float() / 255))
    torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, x.var(dim=(0, 2, 3), unbiased=True), rtol=1e-3, atol=1e-5)


def test_bn_train_mode_lets_statistics_drift(make_lite, tiny_data):
    model = make_lite("all")
    before = _bn_buffers(model)
    T.fit(model, tiny_data, steps=4, patience=None, lr=0.01, bn_mode="train", **{**SMALL, "eval_every": 2})
    after = _bn_buffers(model)
    assert any(not torch.equal(before[k], after[k]) for k in before if "running_mean" in k)


def test_recalibration_leaves_frozen_stages_alone(make_lite, tiny_data):
    model = make_lite("stage6-classifier")
    frozen = {k: v.clone() for k, v in model.stages["stage1"].state_dict().items()}
    T.fit(model, tiny_data, steps=4, patience=None, lr=0.01, bn_mode="recalibrate", cache=False,
          **{**SMALL, "eval_every": 2})
    assert all(torch.equal(frozen[k], v) for k, v in model.stages["stage1"].state_dict().items())


def test_the_constant_score_guard_fires_on_a_collapsed_model(make_lite, tiny_data):
    """A model whose head outputs a constant (zero weights) gives every image the same score: flagged."""
    from helpers.metrics import is_collapsed
    model = make_lite("classifier")
    with torch.no_grad():
        model.stages["classifier"][1].weight.zero_()
    metrics, scores = T.evaluate(model, tiny_data.test, n_boot=20, device="cpu")
    assert is_collapsed(metrics["score_sd"]) and metrics["auc"] == 0.5
    healthy, _ = T.evaluate(make_lite("classifier"), tiny_data.test, n_boot=20, device="cpu")
    assert not is_collapsed(healthy["score_sd"])


def test_choose_rate_never_picks_a_rate_whose_validation_scores_collapsed():
    import pandas as pd
    table = pd.DataFrame({"lr": [0.01, 0.03], "val_auc": [0.55, 0.71], "val_loss": [0.6, 0.6],
                          "diverged": [False, False], "val_collapsed": [False, True]})
    assert TU.choose_rate(table) == 0.01   # 0.71 came from rounding noise on constant scores
    table["val_collapsed"] = True
    assert TU.choose_rate(table) == 0.03   # when every rate collapsed, the notebook's guard reports it


def test_multi_label_loss_and_probabilities_are_per_finding():
    logits = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 0.5, 1.0]])
    labels = torch.tensor([[1, 0, 1], [0, 0, 1]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float())
    assert torch.allclose(T.classification_loss(logits, labels), expected)
    probs = T.probabilities(logits, multi_label=True)
    assert torch.allclose(probs, logits.sigmoid())
    assert T.probability_loss(probs, labels) == pytest.approx(float(expected), rel=1e-5)
    single = torch.tensor([0, 2])
    assert torch.allclose(T.classification_loss(logits, single), torch.nn.functional.cross_entropy(logits, single))
    assert torch.allclose(T.probabilities(logits, multi_label=False).sum(1), torch.ones(2))


def test_auto_cache_skipped_when_the_run_draws_fewer_images_than_the_cache_holds(make_lite, tiny_data):
    # 64 training images; 2 steps of 8 draw 16 of them: computing 64 frozen features first would cost more
    short = T.fit(make_lite("conv_head-classifier"), tiny_data, steps=2, patience=None, lr=0.01, seed=1,
                  **{**SMALL, "batch_size": 8})
    assert short.cached is False
    long = T.fit(make_lite("conv_head-classifier"), tiny_data, steps=8, patience=None, lr=0.01, seed=1,
                 **{**SMALL, "batch_size": 8})
    assert long.cached is True
    forced = T.fit(make_lite("conv_head-classifier"), tiny_data, steps=2, patience=None, lr=0.01, seed=1,
                   cache=True, **{**SMALL, "batch_size": 8})
    assert forced.cached is True
