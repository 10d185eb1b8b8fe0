"""What a training step moves between host and device, counted on the CPU (no GPU needed): every call
that on CUDA would copy to or from the device, or wait for it, is recorded with a torch function mode
while ``train.fit`` runs. A step must stay at two tiny index copies (the batch's row numbers, for the
images and for the labels) and no read-back: reading a loss or a score on the host makes the host wait
for the GPU, so the engine reads losses only every 20 steps on CUDA (``check_every``) and scores only at
validation checks (docs/benchmarks.md, "What a GPU step copies")."""
from __future__ import annotations

import collections

import pytest
import torch
from torch.overrides import TorchFunctionMode

from helpers import train as T
from helpers.models import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

MOVES = {torch.Tensor.to: "to", torch.Tensor.cpu: "cpu", torch.Tensor.cuda: "cuda", torch.Tensor.item: "item",
         torch.Tensor.tolist: "tolist", torch.Tensor.numpy: "numpy", torch.Tensor.__float__: "float()",
         torch.Tensor.__bool__: "bool()", torch.Tensor.__int__: "int()"}


class CountMoves(TorchFunctionMode):
    """Counts device moves (``.to`` with a device) and host reads, per phase."""

    def __init__(self) -> None:
        super().__init__()
        self.phase, self.counts = "setup", collections.Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = MOVES.get(func)
        if name == "to":   # only a move to a device counts (a dtype change does not cross the bus)
            targets = list(args[1:]) + list(kwargs.values())
            if not any(isinstance(a, (torch.device, str)) or (isinstance(a, torch.Tensor) and a is not args[0])
                       for a in targets):
                name = None
        if name:
            self.counts[(self.phase, name)] += 1
        return func(*args, **(kwargs or {}))


def _count(tiny_data, monkeypatch, steps: int) -> tuple[dict, dict]:
    """(moves and reads inside the optimizer step, those around it) of one run of ``steps`` steps with a
    single validation check at the end."""
    model = build_model("efficientnet_lite0", 2, pretrained=False, image_size=32, seed=0)
    mode = CountMoves()
    real_step = T._sgd_step

    def step(*args, **kwargs):
        mode.phase = "step"
        try:
            return real_step(*args, **kwargs)
        finally:
            mode.phase = "around"

    monkeypatch.setattr(T, "_sgd_step", step)
    monkeypatch.setattr(T._LossGuard, "check", lambda self, losses, step: None)   # reads losses: every 20 steps on CUDA
    with mode:
        T.fit(model, tiny_data, steps=steps, eval_every=steps, patience=None, batch_size=8, device="cpu",
              quiet=True, cache=False, bn_mode="train")
    in_step = {name: n for (phase, name), n in mode.counts.items() if phase == "step"}
    around = {name: n for (phase, name), n in mode.counts.items() if phase != "step"}
    return in_step, around


def test_a_training_step_moves_its_batch_indices_and_reads_nothing_back(tiny_data, monkeypatch):
    in_6, around_6 = _count(tiny_data, monkeypatch, 6)
    in_12, around_12 = _count(tiny_data, monkeypatch, 12)
    print("6 steps:", in_6, around_6, "| 12 steps:", in_12, around_12)
    assert in_6 == in_12 == {}, "the optimizer step itself moves nothing and reads nothing back"
    per_step = (around_12.get("to", 0) - around_6.get("to", 0)) / 6
    # the row indices to the images' device, the gathered uint8 batch to the model's device (a no-op when the
    # images are resident, as they are on a GPU up to 4 GiB), the row indices to the labels' device
    assert per_step == 3, f"{per_step} device moves per step"
    reads = {k: v for k, v in around_12.items() if k != "to"}
    assert reads == {k: v for k, v in around_6.items() if k != "to"} and reads, \
        "host reads happen at validation checks only: as many for 12 steps as for 6"
