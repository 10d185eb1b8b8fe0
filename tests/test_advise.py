"""``ftlab advise`` (``python -m helpers.advise``): the sizes it picks, the words of its recommendation, the errors it
gives, and one whole run as a user would make it, on a folder of 16-bit PNG files this test writes."""
from __future__ import annotations

import os
import re
import shutil
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
    with pytest.raises(ValueError, match=r"neither a built-in"):
        advise.resolve_arch("timm:no_such_network_xyz")


def test_the_command_that_reproduces_a_report():
    args = advise._parser().parse_args(["/data/scans", "--steps", "4", "--seeds", "0", "1", "--intensity", "0,4095",
                                        "--out", "/data/advice"])
    command, modified = advise.command_line(args, "efficientnet_lite0")
    assert command == ("ftlab advise .../scans --arch efficientnet_lite0 --budget quick --seeds 0 1 --steps 4 "
                       "--intensity 0,4095 --out .../advice"), "the folders by name: the stamp names no path of the machine"
    assert modified == " (modified: --seeds 0 1 --steps 4)"
    assert advise.command_line(advise._parser().parse_args(["x"]), "resnet18")[1] == ""
    assert advise._intensity_text((0.0, 4095.0)) == advise._intensity_text((0, 4095)) == "0,4095"


# ----------------------------------------------------------------------------- the words of the answer

def best_table(rows: list[dict]) -> pd.DataFrame:
    """A best_per_fraction-shaped table: what the recommendation reads."""
    base = dict(fraction=1.0, n_train=280, best_strategy="stage5-classifier", best_level_index=1, val_tied=False,
                val_tied_with="", tied_with="", beaten_on_test=False, beaten_by="", gap=0.1, gap_lo=0.05, gap_hi=0.15,
                p=0.001, p_holm=0.003, tie_gaps=[], diverged=0, scratch_diverged=0, best_val=0.8, mean=0.8,
                ci_lo=0.75, ci_hi=0.85)
    return pd.DataFrame([{**base, **r} for r in rows])


def said(rows: list[dict], scope: advise.Scope | None = None) -> list[str]:
    best = best_table(rows)
    return advise.recommendation(best, best, scope)


def test_a_clear_gain_says_fine_tune_and_the_depth():
    lines = said([{}])
    assert lines[0].startswith("Fine-tune. With all 280 training images")
    assert "+0.100 AUC (95% interval +0.050 to +0.150)" in lines[0] and "after Holm's correction" in lines[0]
    assert lines[1].startswith("How deep: 'stage5-classifier', chosen on validation")
    assert "every other depth did worse on the test set" in lines[1]


def test_a_clear_loss_says_scratch_and_frames_the_depth_as_an_if():
    lines = said([{"gap": -0.1, "gap_lo": -0.15, "gap_hi": -0.05}])
    assert lines[0].startswith("Train from scratch.")
    assert lines[1].startswith("If you fine-tune all the same, the depth:")


def test_not_worse_is_bounded_not_equal():
    lines = said([{"gap": -0.005, "gap_lo": -NI_MARGIN / 2, "gap_hi": 0.01, "p": 0.4, "p_holm": 0.4}])
    assert lines[0].startswith("Fine-tune.") and "not worse than scratch by more than 0.02 AUC" in lines[0]
    assert "at least as good" not in lines[0]


def test_a_significant_loss_inside_the_margin_says_either():
    lines = said([{"gap": -0.01, "gap_lo": -0.015, "gap_hi": -0.005, "p": 0.01, "p_holm": 0.01}])
    assert lines[0].startswith("Either.") and "scratch is ahead" in lines[0]


def test_cannot_decide_says_why():
    wide = said([{"gap": 0.01, "gap_lo": -0.08, "gap_hi": 0.1, "p": 0.6, "p_holm": 0.6}])
    assert wide[0].startswith("The data cannot decide") and "holds both a gain for fine-tuning" in wide[0]
    assert wide[1].startswith("A larger test set narrows")
    assert wide[-1].startswith("At no size could this run tell") and "not evidence that the two are equal" in wide[-1]
    lower = said([{"gap": -0.04, "gap_lo": -0.08, "gap_hi": -0.01, "p": 0.02, "p_holm": 0.2}])
    assert "was lower than scratch" in lower[0] and "holds both" not in lower[0]
    leaning = said([{"gap": -0.1, "gap_lo": -0.15, "gap_hi": -0.05, "p": 0.04, "p_holm": 0.08}])
    assert leaning[0].startswith("Leaning to scratch, not established") and "Holm's correction" in leaning[0]


def test_a_tie_that_decides_the_verdict_is_named_as_such():
    lines = said([{"val_tied": True, "val_tied_with": "classifier",
                   "tie_gaps": [{"strategy": "classifier", "gap": -0.1, "lo": -0.15, "hi": -0.05, "p": 0.001}]}])
    assert lines[0].startswith("The data cannot decide") and "depends on which is taken" in lines[0]
    assert "changes the verdict above" in lines[1] and "defensible" not in lines[1]


def test_depth_ties_and_test_disagreements():
    tied = said([{"val_tied": True, "val_tied_with": "classifier", "tied_with": "classifier, stem-classifier",
                  "tie_gaps": [{"strategy": "classifier", "gap": 0.09, "lo": 0.04, "hi": 0.14, "p": 0.002}]}])
    assert "classifier, stem-classifier could not be told from it" in tied[1], "each name once"
    assert "The verdict above is for 'stage5-classifier'" in tied[1] and "defensible" not in tied[1]
    beaten = said([{"beaten_on_test": True, "beaten_by": "classifier"}])
    assert "classifier did better on the test set" in beaten[1] and "could not be told" not in beaten[1]


def test_no_test_at_all_is_said_as_such():
    lines = said([{"p": float("nan"), "p_holm": float("nan")}])
    assert lines[0].startswith("No verdict") and lines[-1] == "No paired test was possible at any size."


def test_the_answer_per_size_and_when_the_verdicts_differ():
    differ = said([{"fraction": 0.15, "n_train": 41, "gap": 0.2, "gap_lo": 0.1, "gap_hi": 0.3},
                   {"fraction": 1.0, "n_train": 280, "gap": -0.1, "gap_lo": -0.15, "gap_hi": -0.05}])
    trend = next(line for line in differ if line.startswith("With less data"))
    assert "41 images: fine-tuning better" in trend and "280 images: scratch better" in trend
    assert "The verdicts differ by size" in trend
    opened = said([{"fraction": 0.15, "n_train": 41, "gap": 0.01, "gap_lo": -0.08, "gap_hi": 0.1, "p": 0.6,
                    "p_holm": 0.6, "beaten_on_test": True, "beaten_by": "classifier"}, {"fraction": 1.0}])
    trend = next(line for line in opened if line.startswith("With less data"))
    assert "41 images: cannot decide (the interval holds a gain and a loss beyond the margin)" in trend
    assert "(test preferred classifier)" in trend
    same = said([{"fraction": 0.15, "n_train": 41}, {"fraction": 1.0, "n_train": 280, "gap": 0.01, "gap_lo": -0.01,
                                                      "gap_hi": 0.03, "p": 0.3, "p_holm": 0.3}])
    trend = next(line for line in same if line.startswith("With less data"))
    assert "fine-tuning not worse" in trend and "differ" not in trend, "better and not worse both say fine-tune"


def test_a_capped_budget_says_what_it_left_out():
    scope = advise.Scope({1.0: 800}, pool=3500, used=1000, test=600, test_pool=1500, budget="quick")
    held = said([{"n_train": 224}], advise.Scope({1.0: 224}, pool=280, used=280, test=100, test_pool=100, val_share=0.2))
    assert "With all 224 training images (280 less the 20% held out for validation)" in held[0]
    lines = said([{"n_train": 800, "gap": 0.01, "gap_lo": -0.08, "gap_hi": 0.1, "p": 0.6, "p_holm": 0.6}], scope)
    assert "at the largest size tried (800 training images, drawn from 1,000 of the 3,500" in lines[0]
    assert "--budget classroom" in lines[0]
    assert "this run scored 600 test images of the 1,500 your data holds" in lines[1]


def test_a_largest_size_lost_to_divergence_is_not_passed_off_as_all_the_data():
    scope = advise.Scope({0.15: 41, 1.0: 280}, pool=280, used=280, test=100, test_pool=100, diverged=6)
    lines = said([{"fraction": 0.15, "n_train": 41}], scope)
    assert lines[0].startswith("No verdict at the largest size (280 training images)")
    assert "With all 41" in lines[1]
    assert lines[-1].startswith("6 run(s) diverged")


def test_one_size_only_is_said():
    lines = said([{}], advise.Scope({1.0: 280}, pool=280, used=280, test=100, test_pool=100))
    assert any(line.startswith("One training-set size only") for line in lines)


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


def test_repeated_seeds_are_not_two_seeds(tmp_path):
    folder = write_folder(tmp_path / "data", per_class=12)
    done = run_advise(str(folder), "--plan", "--seeds", "0", "0")
    assert done.returncode == 2 and "at least 2 different seed values" in done.stderr and "Traceback" not in done.stderr


def test_a_multi_label_set_is_refused_before_any_download(tmp_path):
    done = run_advise("chestmnist", "--plan", "--budget", "full", FTLAB_DATA_DIR=str(tmp_path))
    assert done.returncode == 2 and "chestmnist is multi-label" in done.stderr and "Traceback" not in done.stderr
    assert not any(tmp_path.iterdir()), "nothing downloaded"


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
    assert "has 1 class folder(s) (centre); a classifier needs at least 2" in done.stderr, done.stderr


@pytest.mark.slow   # builds a timm model and asks for its weights (offline: refused at once)
def test_a_network_without_weights_says_how_to_give_them(tmp_path):
    folder = write_folder(tmp_path / "data", per_class=30)
    done = run_advise(str(folder), "--arch", "resnet10t", "--plan", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "timm:resnet10t" in done.stderr and "FTLAB_WEIGHTS_DIR=that_folder" in done.stderr
    assert "resnet10t.safetensors" in done.stderr and "weights_path" not in done.stderr, "the command line's ways"
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
    assert re.search(r"Intensity scaling: 120 images in .* \(16-bit\) scaled to 0..255 uint8 by min-max", said), \
        "16-bit files are scaled, and the command says how"
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
        assert "Verdict at each size" in text and "Finding 1" in text and "The learning rate each arm used" in text
        assert str(tmp_path) not in text, "the report names no folder of this machine"
    assert page.count("data:image/png;base64,") == 2, "learning curves and gaps, embedded: one file to send"
    assert (out / "learning_curves.png").stat().st_size > 10_000
    assert "![Learning curves" in md

    stored = sorted(p.name for p in (out / "store").rglob("*") if p.is_file())
    drawn = (out / "report.html").stat().st_mtime_ns
    again = run_advise(*args)   # resumes: everything is stored, nothing trains, the report is redrawn
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 runs to go" in again.stdout
    assert sorted(p.name for p in (out / "store").rglob("*") if p.is_file()) == stored, "no run trained again"
    assert (out / "report.html").stat().st_mtime_ns > drawn, "the report is drawn again"

    shutil.copy(folder / "corner" / "000.png", folder / "centre" / "relabelled.png")   # the data changed
    changed = run_advise(*args)
    assert changed.returncode == 2 and "other images or labels" in changed.stderr and "Traceback" not in changed.stderr
    assert sorted(p.name for p in (out / "store").rglob("*") if p.is_file()) == stored, "refused before training"


@pytest.mark.slow   # the ftlab command line hands over to the module
def test_ftlab_advise_is_the_same_command():
    done = subprocess.run([sys.executable, "-m", "helpers.cli", "advise", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "usage: ftlab advise" in done.stdout
    assert "--budget {classroom,full,quick}" in done.stdout and "quick:" in done.stdout
