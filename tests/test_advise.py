"""``ftlab advise`` (``python -m helpers.advise``): the sizes it picks, the words of its recommendation, the errors it
gives, and one whole run as a user would make it, on a folder of 16-bit PNG files this test writes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import advise
from helpers.analysis import NI_MARGIN

REPO = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- sizes and names

@pytest.mark.parametrize("n_pool, classes, sizes", [(280, 5, 3), (1000, 2, 3), (400, 2, 4), (60, 2, 3)])
def test_sizes_are_nested_log_spaced_and_end_at_everything(n_pool, classes, sizes):
    f = advise.size_fractions(n_pool, classes, sizes)
    assert f[-1] == 1.0 and list(f) == sorted(set(f)) and 1 <= len(f) <= sizes
    assert f[0] * n_pool >= min(n_pool, 10 * classes) - 1, "the smallest budget holds about 10 images per class"
    if len(f) >= 3:
        ratios = np.diff(np.log(f))
        assert ratios.max() - ratios.min() < 0.05, "evenly spaced on a log scale"


def test_a_pool_too_small_to_spread_gives_one_size():
    assert advise.size_fractions(30, 3, 3) == (1.0,)


def test_network_names():
    assert advise.resolve_arch("efficientnet_lite0") == "efficientnet_lite0"
    assert advise.resolve_arch("timm:convnext_atto") == "timm:convnext_atto"
    assert advise.resolve_arch("resnet10t") == "timm:resnet10t", "a bare timm name is a timm model"
    with pytest.raises(ValueError, match=r"neither a built-in .*similar name: .*resnet10t"):
        advise.resolve_arch("resnet10tt")


# ----------------------------------------------------------------------------- the words of the answer

def best_table(rows: list[dict]) -> pd.DataFrame:
    """A best_per_fraction-shaped table: what the recommendation reads."""
    base = dict(fraction=1.0, n_train=280, best_strategy="stage5-classifier", best_level_index=1, val_tied=False,
                val_tied_with="", tied_with="", beaten_on_test=False, beaten_by="", gap=0.1, gap_lo=0.05, gap_hi=0.15,
                p=0.001, p_holm=0.003, tie_gaps=[], diverged=0, scratch_diverged=0, best_val=0.8, mean=0.8,
                ci_lo=0.75, ci_hi=0.85)
    return pd.DataFrame([{**base, **r} for r in rows])


def test_a_clear_gain_says_fine_tune():
    best = best_table([{}])
    lines = advise.recommendation(best, best)
    assert lines[0].startswith("Fine-tune.") and "+0.100 AUC (95% interval +0.050 to +0.150)" in lines[0]
    assert lines[1].startswith("How deep: 'stage5-classifier'")


def test_a_clear_loss_says_scratch():
    best = best_table([{"gap": -0.1, "gap_lo": -0.15, "gap_hi": -0.05}])
    assert advise.recommendation(best, best)[0].startswith("Train from scratch.")


def test_an_interval_across_the_margin_cannot_decide():
    best = best_table([{"gap": 0.01, "gap_lo": -0.08, "gap_hi": 0.1, "p": 0.6, "p_holm": 0.6}])
    lines = advise.recommendation(best, best)
    assert lines[0].startswith("The data cannot decide") and "-0.080 to +0.100" in lines[0]
    assert any(line.startswith("At no size could the data decide") for line in lines)


def test_inside_the_margin_is_not_worse():
    best = best_table([{"gap": -0.005, "gap_lo": -NI_MARGIN / 2, "gap_hi": 0.01, "p": 0.4, "p_holm": 0.4}])
    assert "at least as good as scratch" in advise.recommendation(best, best)[0]


def test_a_depth_validation_cannot_settle_is_named():
    best = best_table([{"val_tied": True, "val_tied_with": "classifier"}])
    lines = advise.recommendation(best, best)
    assert "not settled: classifier could not be told from it" in lines[1]


def test_the_answer_per_size_and_its_change_with_data():
    best = best_table([{"fraction": 0.15, "n_train": 41, "gap": 0.2, "gap_lo": 0.1, "gap_hi": 0.3},
                       {"fraction": 1.0, "n_train": 280, "gap": -0.1, "gap_lo": -0.15, "gap_hi": -0.05}])
    lines = advise.recommendation(best, best)
    trend = next(line for line in lines if line.startswith("With less data"))
    assert "41 images: fine-tuning better" in trend and "280 images: scratch better" in trend
    assert trend.endswith("The answer changes with the amount of data.")


def test_diverged_runs_are_counted():
    best = best_table([{"diverged": 1, "scratch_diverged": 2}])
    assert any(line.startswith("3 run(s) diverged") for line in advise.recommendation(best, best))


# ----------------------------------------------------------------------------- what it refuses

def run_advise(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([sys.executable, "-m", "helpers.advise", *args], cwd=REPO, env=environ,
                          capture_output=True, text=True, timeout=900)


def write_folder(folder: Path, per_class: int = 60, bits: int = 16, seed: int = 0) -> Path:
    """Two classes a network can learn: a bright disc at the centre or at a corner, on 16-bit noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    top = 2 ** bits - 1
    for name, (cy, cx) in {"centre": (14, 14), "corner": (8, 8)}.items():
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            disc = ((yy - cy - rng.integers(-2, 3)) ** 2 + (xx - cx - rng.integers(-2, 3)) ** 2) < 25
            pixels = np.clip(rng.normal(0.3, 0.1, (28, 28)) + 0.4 * disc, 0, 1) * (top * 0.06)   # a narrow range
            dtype = np.uint16 if bits == 16 else np.uint8
            Image.fromarray(pixels.astype(dtype)).save(folder / name / f"{i:03d}.png")
    return folder


def test_a_missing_folder_is_said_plainly(tmp_path):
    done = run_advise(str(tmp_path / "nowhere"), "--plan")
    assert done.returncode == 2 and "no such folder or file" in done.stderr and "Traceback" not in done.stderr


def test_one_class_is_refused(tmp_path):
    folder = write_folder(tmp_path / "data", per_class=12)
    for f in (folder / "corner").iterdir():
        f.unlink()
    (folder / "corner").rmdir()
    done = run_advise(str(folder), "--plan")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.search(r"class", done.stderr), done.stderr


@pytest.mark.slow   # builds a timm model and asks for its weights (offline: refused at once)
def test_a_network_without_weights_says_how_to_give_them(tmp_path):
    folder = write_folder(tmp_path / "data", per_class=30)
    done = run_advise(str(folder), "--arch", "resnet10t", "--plan", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "resnet10t" in done.stderr and "FTLAB_WEIGHTS_DIR" in done.stderr and "pretrained_cfg_overlay" in done.stderr
    assert not (tmp_path / "out" / "store").exists() or not any((tmp_path / "out" / "store").iterdir()), \
        "nothing trained before the weights were found"


# ----------------------------------------------------------------------------- one whole run

@pytest.mark.slow   # 40 short runs on two workers, then a resume
def test_a_folder_it_has_never_seen_gets_a_report(tmp_path):
    folder = write_folder(tmp_path / "scans", per_class=60)
    out = tmp_path / "advice"
    args = (str(folder), "--out", str(out), "--steps", "4", "--seeds", "0", "1", "--workers", "2", "--quiet")
    done = run_advise(*args)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    said = done.stdout
    assert "Intensity scaling: 16-bit" in said, "16-bit files are scaled, and the command says how"
    assert re.search(r"runs to go\. Estimate: at most .* of one worker", said), "the cost estimate comes first"
    assert said.index("Estimate") < said.index("Recommendation:")
    assert "Recommendation:" in said and "report.html" in said

    runs = pd.read_csv(out / "runs.csv")
    assert runs["strategy"].nunique() == 4 and runs["seed"].nunique() == 2
    sizes = sorted(runs["n_train"].unique())
    assert len(sizes) == 3 and len(runs) == 4 * 3 * 2
    assert runs["test_auc"].between(0, 1).all() and not runs["diverged"].any()
    assert (runs.groupby("fraction")["n_train"].nunique() == 1).all(), "every arm sees the same images at a size"

    verdicts = pd.read_csv(out / "verdicts.csv")
    assert len(verdicts) == 3 and verdicts["Verdict"].notna().all()
    assert verdicts["Gap to scratch"].str.contains(r"\(.* to .*\)").all(), "every verdict carries its interval"
    assert "Diverged runs (chosen / scratch)" in verdicts.columns

    page = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    for text in (page, md):
        assert "Recommendation" in text and "The depth chosen at each size" in text
        assert "Verdict at each size" in text and "Finding 1" in text
        assert str(tmp_path) not in text, "the report names no folder of this machine"
    assert page.count("data:image/png;base64,") == 2, "learning curves and gaps, embedded: one file to send"
    assert (out / "learning_curves.png").stat().st_size > 10_000
    assert "![Learning curves" in md

    again = run_advise(*args)   # resumes: everything is stored, nothing trains, the report is redrawn
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 runs to go" in again.stdout and "Estimate" not in again.stdout.split("0 runs to go")[1][:20]
    assert (out / "report.html").stat().st_mtime >= (out / "runs.csv").stat().st_mtime - 1


@pytest.mark.slow   # the ftlab command line hands over to the module
def test_ftlab_advise_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "helpers.cli", "advise", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "usage: ftlab advise" in done.stdout
    assert "--budget {classroom,full,quick}" in done.stdout and "quick:" in done.stdout
