"""Ladders for any timm backbone (``build_model("timm:<name>")``): one ResNet, one ConvNeXt and one ViT from
timm, random weights, 32 px inputs. Levels come from each network's own structure; the recipe (frozen stages in
eval mode, untouched by SGD) holds; weights load offline from a file; one real sweep row each."""
from __future__ import annotations

import time
from pathlib import Path

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from conftest import write_matrix_npz
from helpers import weights as W
from helpers.experiments import RunConfig
from helpers.finetune import changed_entries, frozen_state, ladder, ladder_table, param_groups, set_level
from helpers.models import build_model, count_parameters, default_init
from helpers.plots import plot_ladder
from helpers.runner import run_sweep

timm = pytest.importorskip("timm")

# network -> its stage names (input side first): the stem joins the first stage, ViT blocks in groups of three
STAGES = {
    "timm:resnet10t": ["layer1", "layer2", "layer3", "layer4", "head"],
    "timm:convnext_atto": ["stages_0", "stages_1", "stages_2", "stages_3", "head"],
    "timm:vit_tiny_patch16_224": ["blocks_0to2", "blocks_3to5", "blocks_6to8", "blocks_9to11", "head"],
}
NORMS = {"timm:resnet10t": "batchnorm", "timm:convnext_atto": "layernorm", "timm:vit_tiny_patch16_224": "layernorm"}
SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network for timm's downloads: the Hugging Face hub offline and an empty cache (no hang, no hit)."""
    import huggingface_hub.constants as hub
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.delenv(W.TIMM_WEIGHTS_DIR_ENV, raising=False)


@pytest.mark.parametrize("arch", list(STAGES))
def test_levels_follow_the_network_input_side_first_and_trainable_counts_rise(arch):
    model = build_model(arch, num_classes=2, image_size=SIZE, seed=0)
    assert model.stage_names == ["input", *STAGES[arch]]
    rungs = ladder(model)
    assert [r.name for r in rungs] == ["head", *[f"{s}-head" for s in reversed(STAGES[arch][:-1])]]
    counts = ladder_table(model)["trainable parameters"].tolist()
    assert all(a < b for a, b in zip(counts, counts[1:])), counts
    # every parameter of the timm network is in exactly one level: the deepest level trains them all
    reference = timm.create_model(arch.split(":", 1)[1], num_classes=2,
                                  **({"img_size": SIZE} if "vit" in arch else {}))
    assert counts[-1] == count_parameters(reference) == count_parameters(model)
    assert model.norm_kind == NORMS[arch]
    assert default_init(arch) == "timm"
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 2)   # grey 28 px in, as the data sets come


@pytest.mark.parametrize("arch", list(STAGES))
def test_chain_of_stages_is_the_network_itself(arch):
    model = build_model(arch, num_classes=2, image_size=SIZE, seed=0).eval()
    net = model.stages["head"]._net
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        inside = model.stages["input"](x)
        assert torch.allclose(model.forward_from(1, inside), net(inside), atol=1e-5)


@pytest.mark.parametrize("arch", list(STAGES))
def test_frozen_stages_are_untouched_by_sgd_in_training_mode(arch):
    model = build_model(arch, num_classes=2, image_size=SIZE, seed=0)
    rung = set_level(model, 1)                      # the last stage and the head tuned, the rest frozen
    assert rung.tuned == tuple(STAGES[arch][-2:])
    model.train()
    assert all(not model.stages[s].training for s in rung.frozen) and model.stages["head"].training
    before = frozen_state(model)
    tuned_before = {k: v.detach().clone() for k, v in model.stages[rung.tuned[0]].state_dict().items()}
    opt = torch.optim.SGD(param_groups(model, 0.05), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        x, y = torch.rand(8, 1, SIZE, SIZE, generator=gen), torch.randint(0, 2, (8,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert before and changed_entries(model, before) == []    # weights and BatchNorm buffers alike
    moved = [k for k, v in model.stages[rung.tuned[0]].state_dict().items() if not torch.equal(v, tuned_before[k])]
    assert moved                                                # the tuned stage did train
    if NORMS[arch] == "batchnorm":
        assert any(k.endswith("running_mean") for k in before)   # frozen BN statistics were among those checked
        assert any(k.endswith("running_mean") for k in moved)    # and the tuned stage's did update (train mode)


def test_a_bare_timm_name_is_refused_with_the_prefix_rule():
    with pytest.raises(ValueError, match="timm:<name>"):
        build_model("convnext_atto", image_size=SIZE)
    with pytest.raises(ValueError, match="Unknown timm model"):
        build_model("timm:no_such_network_xyz", image_size=SIZE)


def test_weights_from_a_local_file_load_exactly(offline, tmp_path, monkeypatch):
    source = timm.create_model("resnet10t", pretrained=False)
    torch.manual_seed(1)
    for p in source.parameters():
        torch.nn.init.normal_(p, 0.0, 0.1)
    source.layer1[0].bn1.running_mean.uniform_(-1, 1)
    state = {k: v.clone() for k, v in source.state_dict().items()}
    path = tmp_path / "mine.pth"
    torch.save(state, path)

    def loaded(model):
        net = model.stages["head"]._net
        return net.state_dict()

    model = build_model("timm:resnet10t", pretrained=True, image_size=SIZE, weights_path=str(path),
                        keep_imagenet_head=True)
    got = loaded(model)
    assert model.pretrained and set(got) == set(state)
    assert all(torch.equal(got[k], state[k]) for k in state)
    # the same file found by name in $FTLAB_WEIGHTS_DIR; the new head replaces only the classifier
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(state, folder / "resnet10t.pth")
    monkeypatch.setenv(W.TIMM_WEIGHTS_DIR_ENV, str(folder))
    got = loaded(build_model("timm:resnet10t", num_classes=3, pretrained=True, image_size=SIZE))
    assert all(torch.equal(got[k], state[k]) for k in state if not k.startswith("fc."))
    assert got["fc.weight"].shape == (3, state["fc.weight"].shape[1])


def test_unreachable_weights_give_a_clear_offline_error(offline):
    started = time.perf_counter()
    with pytest.raises(W.WeightsUnavailableError) as info:
        build_model("timm:resnet10t", pretrained=True, image_size=SIZE)
    message = str(info.value)
    assert time.perf_counter() - started < 30
    for needed in ("'resnet10t'", "weights_path", "FTLAB_WEIGHTS_DIR", "pretrained_cfg_overlay=dict(file=PATH)"):
        assert needed in message, needed
    with pytest.raises(W.WeightsUnavailableError, match="does not exist"):
        build_model("timm:resnet10t", pretrained=True, image_size=SIZE, weights_path="/no/such/file.pth")


@pytest.mark.parametrize("arch", list(STAGES))
def test_plot_ladder_draws_a_timm_network(arch):
    import matplotlib.pyplot as plt
    model = build_model(arch, num_classes=2, image_size=SIZE, seed=0)
    ax = plot_ladder(model)
    assert [t.get_text() for t in ax.get_xticklabels()] == STAGES[arch]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(STAGES[arch]) and labels[0].startswith("0: head (")
    assert ax.get_images()[0].get_array().shape == (len(STAGES[arch]), len(STAGES[arch]))
    plt.close(ax.figure)


@pytest.mark.parametrize("arch", list(STAGES))
def test_one_ladder_sweep_row(arch, offline, tmp_path, monkeypatch):
    """A real tiny run through the sweep's runner: ImageNet-style weights from a local file (a randomly
    initialised network's, saved here), a middle level tuned, one row stored."""
    name = arch.split(":", 1)[1]
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(timm.create_model(name, pretrained=False).state_dict(), folder / f"{name}.pth")
    monkeypatch.setenv(W.TIMM_WEIGHTS_DIR_ENV, str(folder))
    data = write_matrix_npz(tmp_path, "tiny-40")
    config = RunConfig.from_flat(dataset=str(data), arch=arch, strategy="middle", max_train=32, max_eval=32,
                                 steps=4, patience=None, eval_every=2, decay_steps=2, batch_size=8,
                                 n_bootstrap=50, image_size=SIZE, threads=1)
    started = time.perf_counter()
    table = run_sweep([config], tmp_path / "store", progress=False)
    print(f"{arch}: one ladder sweep row in {time.perf_counter() - started:.1f} s")
    assert len(table) == 1
    row = table.iloc[0]
    middle = (len(STAGES[arch]) - 1) // 2
    assert row["arch"] == arch and row["level_index"] == middle
    assert row["level"] == f"{STAGES[arch][-1 - middle]}-head"
    assert row["iterations"] > 0 and 0.0 <= row["test_auc"] <= 1.0
    assert row["bn_mode_used"] == "frozen"


def test_a_vit_moved_as_a_whole_keeps_its_shared_parameters_and_a_seed_its_weights():
    """``.to()`` (here to float64, as to a device) converts the ViT's class token and position embedding in place,
    so the stem, which holds them with the network, still computes the network's output; the same seed gives the
    same random weights."""
    arch = "timm:vit_tiny_patch16_224"
    model = build_model(arch, num_classes=2, image_size=SIZE, seed=3).double().eval()
    stem = model.stages["blocks_0to2"][0]
    assert stem.cls_token is stem._net.cls_token and stem.cls_token.dtype == torch.float64
    x = torch.rand(2, 3, SIZE, SIZE, dtype=torch.float64)
    with torch.no_grad():
        inside = model.stages["input"](x)
        assert torch.allclose(model.forward_from(1, inside), stem._net(inside))
    again = build_model(arch, num_classes=2, image_size=SIZE, seed=3).double()
    other = build_model(arch, num_classes=2, image_size=SIZE, seed=4).double()
    same = [torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values())]
    assert all(same)
    assert not all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))


@pytest.mark.slow   # notebook 03 in its own process, fast profile, on a timm ConvNeXt (about a minute)
def test_notebook_03_takes_any_timm_network(tmp_path):
    """``FTLAB_ARCH=timm:convnext_atto``: notebook 03 runs whole under nbval on a LayerNorm network, its ladder figure
    and every level included; the weights are a file this test writes, loaded through the real path
    (``$FTLAB_WEIGHTS_DIR``)."""
    import os
    import subprocess
    import sys
    from conftest import medmnist_file
    path = medmnist_file("pneumoniamnist")
    if path is None:
        pytest.skip("pneumoniamnist.npz is not in $FTLAB_DATA_DIR, ../shared/data/medmnist or data/")
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save(timm.create_model("convnext_atto", pretrained=False).state_dict(), folder / "convnext_atto.pth")
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "FTLAB_ARCH": "timm:convnext_atto", "FTLAB_WEIGHTS_DIR": str(folder), "HF_HUB_OFFLINE": "1",
           "FTLAB_PROFILE": "fast", "FTLAB_REPORTS_DIR": str(tmp_path / "reports"), "FTLAB_DATA_DIR": str(path.parent)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", str(repo / "notebooks" / "03_layerwise_fine_tuning.ipynb"),
                           "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600", "-p", "no:cacheprovider",
                           "-x"], cwd=repo, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    figures = {p.name for p in (tmp_path / "reports" / "_fast").glob("*.png")}
    assert any("ladder" in name for name in figures), figures
