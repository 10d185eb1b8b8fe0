"""Long steps show progress, and quiet=True silences it (tqdm.auto writes text bars to stderr outside Jupyter)."""
from __future__ import annotations

import pytest
import torch

from helpers import loading as D
from helpers import finetune as FT
from helpers import train as T
from helpers import tuning as TU
from helpers.models import build_model

RUN = dict(steps=2, batch_size=16, eval_every=1, patience=None)


@pytest.fixture
def lite(single_thread):
    return build_model("efficientnet_lite0", 2, pretrained=True, image_size=32, seed=0)


@pytest.mark.parametrize("quiet", [False, True])
def test_auto_depth_progress(lite, mini_data, capsys, quiet):
    TU.auto_depth(lite, mini_data, max_levels=2, patience_levels=2, quiet=quiet, **RUN)
    err = capsys.readouterr().err
    assert ("auto-depth levels" in err) is not quiet
    assert ("training" in err) is not quiet   # quiet=True silences each level's bar over steps too


@pytest.mark.parametrize("quiet", [False, True])
def test_rate_tuning_progress(lite, mini_data, capsys, quiet):
    def build():
        model = build_model("efficientnet_lite0", 2, pretrained=True, image_size=32, seed=0)
        FT.set_level(model, "last")
        return model
    TU.tune_lr(build, mini_data, [1e-3, 1e-2], T.TrainConfig(**RUN, quiet=quiet), label="lite")
    assert ("rates for lite" in capsys.readouterr().err) is not quiet


@pytest.mark.parametrize("quiet", [False, True])
def test_image_folder_progress(mini_data, tmp_path, capsys, quiet):
    split = D.Split(torch.cat([mini_data.train.images] * 2), torch.cat([mini_data.train.labels] * 2))
    D.write_image_folder(split, ["a", "b"], tmp_path / "own")
    capsys.readouterr()
    ds = D.load_image_folder(tmp_path / "own", quiet=quiet)
    err = capsys.readouterr().err
    assert len(ds.train) + len(ds.val) + len(ds.test) == 32
    assert ("decoding train" in err and "reading own" in err) is not quiet
