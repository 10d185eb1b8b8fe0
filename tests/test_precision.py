"""Mixed precision, tested on the CPU: bfloat16 autocast trains within a stated tolerance of float32, the
scores, metrics and BatchNorm recalibration stay float32, every row records the precision, and the
float16 branch's gradient-scaler logic (scale, unscale, skip a step on inf, halve the scale, step order)
runs here with the device abstracted, so the CUDA-only path is not untested code."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers import finetune as FT
from helpers import train as T
from helpers.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

RUN = dict(batch_size=16, eval_every=4, patience=None, quiet=True, eval_batch_size=64, device="cpu", decay_steps=4,
           lr=0.001, seed=0, steps=12, cache=False)
LOSS_TOLERANCE = 0.05
"""Largest gap allowed between the bfloat16 and float32 training losses, step by step: bfloat16 keeps 8
bits of mantissa (about 2-3 significant digits), and 12 SGD steps let rounding differences grow a little;
a wrong recipe (another batch order, a missing group) moves the loss by far more (0.1-0.5 here)."""


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    model = build_model("efficientnet_lite0", pretrained=True, image_size=32)
    FT.set_level(model, "stage7-classifier")
    return model


def test_precision_choice_per_device():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert T._autocast_for(cpu, None).name == "float32"          # off on the CPU by default
    assert T._autocast_for(cpu, False).name == "float32"
    on = T._autocast_for(cpu, True)
    assert on.name == "bfloat16" and on.scaler is None
    half = T._autocast_for(cpu, True, "float16")
    assert half.name == "float16" and isinstance(half.scaler, torch.amp.GradScaler)
    assert T._autocast_for(cuda, False).name == "float32"
    assert T._autocast_for(torch.device("mps"), True).name == "float32"   # no autocast there: float32, said so
    with pytest.raises(ValueError, match="'bfloat16' or 'float16'"):
        T._autocast_for(cpu, True, "int8")
    assert T.precision_of(T.TrainConfig(device="cpu", amp=True)) == "bfloat16"


def test_bfloat16_training_stays_close_to_float32_and_scores_stay_float32(lite, tiny_data):
    runs = {}
    for name, amp in (("float32", False), ("bfloat16", True)):
        model = copy.deepcopy(lite)
        runs[name] = (model, T.fit(model, tiny_data, amp=amp, **RUN))
    (m32, r32), (m16, r16) = runs["float32"], runs["bfloat16"]
    assert r32.precision == "float32" and r16.precision == "bfloat16"
    loss32, loss16 = r32.history["train_loss"].to_numpy(), r16.history["train_loss"].to_numpy()
    assert np.isfinite(loss16).all()
    gap = float(np.abs(loss32 - loss16).max())
    print(f"bfloat16 vs float32: largest training-loss gap {gap:.4f} over {len(loss32)} checks")
    assert 0 < gap <= LOSS_TOLERANCE, f"bfloat16 vs float32 training loss gap {gap:.4f}"   # 0: autocast did nothing
    scores = T.predict(m16, tiny_data.test, device="cpu")
    assert scores.dtype == np.float32 and np.isfinite(scores).all()
    assert np.allclose(scores.sum(1), 1, atol=1e-5)
    # the weights stay float32 (autocast casts per operation, the parameters are not converted)
    assert all(p.dtype == torch.float32 for p in m16.parameters())


def test_batchnorm_recalibration_runs_in_float32(tiny_data):
    model = build_model("efficientnet_lite0", image_size=32, seed=0)   # scratch: recalibrates before each check
    seen = []   # (is this pass a recalibration?, the dtype the BatchNorm layer received)

    def hook(module, inputs, output):
        seen.append((module.momentum is None, inputs[0].dtype))   # recalibration sets momentum None

    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    handle = bns[len(bns) // 2].register_forward_hook(hook)
    result = T.fit(model, tiny_data, amp=True, bn_mode="recalibrate", **{**RUN, "steps": 4})
    handle.remove()
    assert result.precision == "bfloat16"
    training = {dtype for recal, dtype in seen if not recal}
    recalibrating = {dtype for recal, dtype in seen if recal}
    assert torch.bfloat16 in training, "the training passes ran in bfloat16"
    assert recalibrating == {torch.float32}, f"recalibration saw {recalibrating}"
    for m in bns:
        assert m.running_mean.dtype == m.running_var.dtype == torch.float32
        assert torch.isfinite(m.running_var).all()


# ----------------------------------------------------------------------------- the float16 scaler, device-free

def _linear(seed=0):
    torch.manual_seed(seed)
    return nn.Linear(4, 2)


def test_scaler_step_matches_a_float32_step_when_nothing_overflows():
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    plain, scaled = _linear(), _linear()
    opt_a = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9)
    opt_b = torch.optim.SGD(scaled.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 10)
    from contextlib import nullcontext
    T._sgd_step(plain, opt_a, None, nullcontext(), 0, x, y)
    T._sgd_step(scaled, opt_b, scaler, nullcontext(), 0, x, y)
    for a, b in zip(plain.parameters(), scaled.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)    # scaled, then unscaled before the step
    assert scaler.get_scale() == 2.0 ** 10                         # no overflow: the scale is kept


def test_scaler_skips_a_step_whose_gradients_overflow_and_halves_the_scale():
    from contextlib import nullcontext
    model = _linear()
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16)
    handle = model.weight.register_hook(lambda g: torch.full_like(g, float("inf")))   # float16 overflow, simulated
    loss = T._sgd_step(model, opt, scaler, nullcontext(), 0, torch.randn(8, 4), torch.randint(0, 2, (8,)))
    handle.remove()
    assert torch.isfinite(loss)
    for p, q in zip(model.parameters(), before):
        assert torch.equal(p, q), "a step with inf gradients must be skipped"
    assert scaler.get_scale() == 2.0 ** 15
    # the next, finite step is taken, and gradients of the skipped step are not carried into it
    T._sgd_step(model, opt, scaler, nullcontext(), 0, torch.randn(8, 4), torch.randint(0, 2, (8,)))
    assert not torch.equal(model.weight, before[0]) and torch.isfinite(model.weight).all()


def test_float16_training_runs_end_to_end_with_its_scaler(lite, tiny_data):
    model = copy.deepcopy(lite)
    result = T.fit(model, tiny_data, amp=True, amp_dtype="float16", **{**RUN, "steps": 4})
    assert result.precision == "float16"
    assert np.isfinite(result.history["train_loss"]).all() and 0 <= result.best_val_auc <= 1
