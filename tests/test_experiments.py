"""The resumable sweep runner, for real: tiny runs of the real ``run_one`` on the official PneumoniaMNIST.

Every run trains EfficientNet-Lite0 for 4 SGD steps on a 32-image budget at 32 px and tests on 32
images (a couple of seconds each with one torch thread). Covered: one row per config with the
config's fields and sane metrics; a re-run runs nothing; a changed config is run again and never
answered with its stale row; a sweep killed with SIGKILL leaves a valid table and resumes without
re-running finished runs; an executor gives the same rows; the atomic CSV table; the config hash.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import medmnist_file
from helpers import experiments as E
from helpers import runner as R
from helpers import store as ST
from helpers.experiments import RunConfig, grid, run_one
from helpers.metrics import roc_auc
from helpers.recipe import PAPER
from helpers.runner import run_sweep, select
from helpers.store import ResultsTable

REPO = Path(__file__).resolve().parents[1]
DATA_FILE = "pneumoniamnist.npz"
ARCHS = ("efficientnet_lite0",)
TINY = dict(max_train=32, max_eval=32, steps=4, patience=None, eval_every=2, decay_steps=2, batch_size=8,
            n_bootstrap=50, image_size=32)
CHILD = """
import json, sys
import torch
torch.set_num_threads(1)
from helpers.experiments import RunConfig
from helpers.runner import run_sweep
configs = [RunConfig.from_flat(**d) for d in json.loads(open(sys.argv[1]).read())]
run_sweep(configs, sys.argv[2], progress=False)
"""


DATA_DIR = None if medmnist_file("pneumoniamnist") is None else medmnist_file("pneumoniamnist").parent
needs_data = pytest.mark.skipif(
    DATA_DIR is None, reason=f"{DATA_FILE} not found in $FTLAB_DATA_DIR, ../shared/data/medmnist or data/; "
                             "the sweep tests train real (tiny) models on it")


@pytest.fixture(scope="module", autouse=True)
def tiny_env():
    """FTLAB_DATA_DIR set; one torch thread (several threads on busy shared cores are 5x slower)."""
    import torch
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        if DATA_DIR is not None:
            mp.setenv("FTLAB_DATA_DIR", str(DATA_DIR))
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)


def tiny_configs(seeds=(0,), **overrides) -> list[RunConfig]:
    return grid(archs=ARCHS, strategies=("scratch", "last"), fractions=(0.5, 1.0), seeds=seeds,
                **{**TINY, **overrides})


class Counting:
    """The real run function, counting which configs it was called with."""

    def __init__(self, fn=run_one):
        self.fn, self.calls = fn, []

    def __call__(self, config):
        self.calls.append(config)
        return self.fn(config)


def row_of(table: pd.DataFrame, config: RunConfig) -> pd.Series:
    rows = table[table["config_hash"] == config.key()]
    assert len(rows) == 1, f"{len(rows)} rows for {config}"
    return rows.iloc[0]


def same(a, b) -> bool:
    """Equal, NaN equal to NaN and to None (a CSV turns None into NaN)."""
    missing = lambda v: v is None or (isinstance(v, float) and math.isnan(v))  # noqa: E731
    return (missing(a) and missing(b)) or a == b


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Four tiny real runs (scratch and last x fractions 0.5 and 1.0), run serially once per module."""
    path = tmp_path_factory.mktemp("sweep") / "results.csv"
    configs = tiny_configs()
    counting = Counting()
    table = run_sweep(configs, path, run_fn=counting, progress=False)
    return {"path": path, "configs": configs, "table": table, "calls": counting.calls}


# ----------------------------------------------------------------------------- 1. one row per config

@needs_data
def test_sweep_writes_one_row_per_config(sweep):
    configs, table = sweep["configs"], sweep["table"]
    assert len(sweep["calls"]) == 4
    assert len(table) == 4 and table["config_hash"].is_unique
    assert set(table["config_hash"]) == {c.key() for c in configs}
    assert set(table["precision"]) == {"float32"}   # the precision used is recorded (mixed only when asked, or on CUDA)
    # every row records the BatchNorm mode it used: ImageNet statistics kept when fine-tuning, recomputed from scratch
    used = dict(zip(table["strategy"], table["bn_mode_used"]))
    assert (table["bn_mode"] == "auto").all() and used["scratch"] == "recalibrate"
    assert {m for s, m in zip(table["strategy"], table["bn_mode_used"]) if s != "scratch"} == {"frozen"}
    on_disk = ResultsTable(sweep["path"]).load()
    assert len(on_disk) == 4 and on_disk["config_hash"].is_unique
    for config in configs:
        row = row_of(table, config)
        for name, value in config.flat().items():
            stored = row["requested"] if name == "strategy" else row[name]
            assert same(stored, value), (name, stored, value)
        assert row["strategy"] == ("scratch" if config.strategy == "scratch" else row["level"])
        assert 0.0 <= row["test_auc"] <= 1.0
        assert row["test_auc_lo"] <= row["test_auc"] <= row["test_auc_hi"]
        for col in ("curve", "test_scores", "test_labels"):
            assert isinstance(row[col], list), (col, type(row[col]))
        assert len(row["test_scores"]) == len(row["test_labels"]) == row["test_n"] == 32
        assert set(row["test_labels"]) == {0, 1}
        assert all(0.0 <= s <= 1.0 for s in row["test_scores"])
        assert row["curve"] and all(len(point) == 2 for point in row["curve"])
        assert isinstance(row["versions"], str) and "torch" in row["versions"] and "ftlab" in row["versions"]
        assert row["wall_s"] > 0 and isinstance(row["finished_at"], str)
    for strategy in ("scratch", "last"):
        n = {c.fraction: row_of(table, c)["n_train"] for c in configs if c.strategy == strategy}
        budget = {c.fraction: row_of(table, c)["n_train"] + row_of(table, c)["n_val"] for c in configs
                  if c.strategy == strategy}
        assert budget[1.0] == 32 and 0 < n[0.5] < n[1.0] < 32, n


@needs_data
def test_run_one_is_reproducible(sweep):
    """The same config gives the same result, whatever ran before it in the process."""
    config = next(c for c in sweep["configs"] if c.strategy == "scratch" and c.fraction == 0.5)
    again = run_one(config)
    stored = row_of(sweep["table"], config)
    assert again["config_hash"] == stored["config_hash"]
    assert again["test_scores"] == stored["test_scores"]
    assert again["curve"] == stored["curve"]


# ----------------------------------------------------------------------------- 2. a re-run runs nothing

@needs_data
def test_rerun_runs_nothing(sweep):
    before = sweep["path"].read_bytes()
    counting = Counting()
    again = run_sweep(sweep["configs"] + sweep["configs"][:1], sweep["path"], run_fn=counting, progress=False)
    assert counting.calls == []
    assert sweep["path"].read_bytes() == before
    pd.testing.assert_frame_equal(again, sweep["table"])


# ----------------------------------------------------------------------------- 3. no stale results

@needs_data
def test_changed_config_is_run_again_never_answered_stale(sweep, tmp_path):
    path = tmp_path / "results.csv"
    path.write_bytes(sweep["path"].read_bytes())
    old = next(c for c in sweep["configs"] if c.strategy == "scratch" and c.fraction == 0.5)
    new = replace(old, lr=0.02)
    assert new.key() != old.key()
    configs = [new if c == old else c for c in sweep["configs"]]
    counting = Counting()
    table = run_sweep(configs, path, run_fn=counting, progress=False)
    assert counting.calls == [new]
    assert len(table) == 4 and set(table["config_hash"]) == {c.key() for c in configs}
    assert old.key() not in set(table["config_hash"])
    assert row_of(table, new)["lr"] == 0.02
    stored = ResultsTable(path).load()
    assert len(stored) == 5 and stored["config_hash"].is_unique  # the stale row stays in the file ...
    assert math.isnan(row_of(stored, old)["lr"])
    only_new = select(stored, [new])                               # ... but never answers the new config
    assert list(only_new["config_hash"]) == [new.key()] and only_new["lr"].iloc[0] == 0.02
    assert list(select(stored, [old])["config_hash"]) == [old.key()]


# ----------------------------------------------------------------------------- 4. kill -9 and resume

@needs_data
def test_sweep_survives_sigkill_and_resumes(tmp_path):
    configs = tiny_configs(seeds=(1,))
    spec, path, log = tmp_path / "configs.json", tmp_path / "results.csv", tmp_path / "child.log"
    spec.write_text(json.dumps([c.flat() for c in configs]))
    env = {**os.environ, "FTLAB_DATA_DIR": str(DATA_DIR), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-c", CHILD, str(spec), str(path)]
    table = ResultsTable(path)

    with open(log, "w") as out:
        child = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not path.exists() or len(table.load()) < 1:   # any table read must be whole
                assert child.poll() is None, f"child exited early ({child.returncode}):\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no row after 120 s:\n{log.read_text()}"
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    before = table.load()
    assert 1 <= len(before) < len(configs), "the child finished before the kill; nothing was interrupted"
    assert before["config_hash"].is_unique and set(before["config_hash"]) <= {c.key() for c in configs}
    assert before[["config_hash", "test_auc", "finished_at", "versions"]].notna().all().all()
    assert all(isinstance(v, list) and len(v) == 32 for v in before["test_scores"])
    # A leftover temp file (a killed write, or garbage) must never be read as the table.
    (tmp_path / f".{path.name}.garbage.tmp").write_text("config_hash,half a row")

    # Resume (here rather than in a second child: that would pay the ~15 s of imports again).
    counting = Counting()
    result = run_sweep(configs, path, run_fn=counting, progress=False)
    missing = {c.key() for c in configs} - set(before["config_hash"])
    assert sorted(c.key() for c in counting.calls) == sorted(missing)   # only the unfinished runs
    after = table.load()
    assert sorted(after["config_hash"]) == sorted(c.key() for c in configs)
    assert sorted(result["config_hash"]) == sorted(after["config_hash"])
    for _, row in before.iterrows():                # finished before the kill: not run again
        kept = after[after["config_hash"] == row["config_hash"]].iloc[0]
        assert kept["finished_at"] == row["finished_at"] and kept["wall_s"] == row["wall_s"]
        assert kept["test_scores"] == row["test_scores"]


# ----------------------------------------------------------------------------- 5. an executor

@needs_data
def test_local_pool_is_spawned_with_one_thread_per_worker():
    pool = R.local_pool(2)
    try:
        assert pool._mp_context.get_start_method() == "spawn"
        assert pool.submit(_torch_threads).result(timeout=120) == 1
    finally:
        pool.shutdown()


def _torch_threads() -> int:
    import torch
    return torch.get_num_threads()


@needs_data
def test_executor_gives_the_same_rows(sweep, tmp_path):
    """Two runs left of four (a resumed sweep), run by a thread pool of two workers.

    Only the data-determined fields are compared for the re-run rows: threads share torch's global RNG
    (weight init, dropout), so a threaded run is not bit-reproducible; a process pool is.
    """
    kept = sweep["table"][sweep["table"]["fraction"] == 1.0]
    path = tmp_path / "results.csv"
    for row in kept.to_dict("records"):
        ResultsTable(path).append(row)
    counting = Counting()
    with ThreadPoolExecutor(max_workers=2) as pool:
        table = run_sweep(sweep["configs"], path, run_fn=counting, executor=pool, progress=False)
    left = [c for c in sweep["configs"] if c.fraction == 0.5]
    assert sorted(c.key() for c in counting.calls) == sorted(c.key() for c in left)
    assert len(table) == 4 and sorted(table["config_hash"]) == sorted(sweep["table"]["config_hash"])
    for config in sweep["configs"]:
        got, want = row_of(table, config), row_of(sweep["table"], config)
        for col in ("n_train", "test_n", "test_labels", "level", "strategy", "requested"):
            assert same(got[col], want[col]), col
        assert 0.0 <= got["test_auc"] <= 1.0
        if config.fraction == 1.0:                  # copied rows survive the round trip unchanged
            assert got["test_scores"] == want["test_scores"] and got["curve"] == want["curve"]


# ----------------------------------------------------------------------------- 6. the results table

def fake_row(key: str, auc: float = 0.5) -> dict:
    return {"config_hash": key, "fraction": 0.5, "lr": None, "test_auc": auc, "curve": [[1, 0.5], [2, 0.75]],
            "test_scores": [0.25, 0.75], "test_labels": [0, 1], "versions": "x"}


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tmp")) + sorted(folder.glob(".*.tmp"))


def test_results_table_missing_and_empty_files_load_empty(tmp_path):
    missing = ResultsTable(tmp_path / "nowhere" / "results.csv")
    assert missing.load().empty and isinstance(missing.load(), pd.DataFrame) and missing.done() == set()
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert ResultsTable(empty).load().empty and ResultsTable(empty).done() == set()
    assert select(ResultsTable(empty).load(), [RunConfig()]).empty


def test_results_table_append_replaces_by_hash_and_leaves_no_temp_file(tmp_path):
    table = ResultsTable(tmp_path / "sub" / "results.csv")
    table.append(fake_row("a", 0.5))
    table.append(fake_row("b", 0.6))
    table.append(fake_row("a", 0.9))
    loaded = table.load()
    assert sorted(loaded["config_hash"]) == ["a", "b"] and table.done() == {"a", "b"}
    assert loaded.set_index("config_hash").loc["a", "test_auc"] == 0.9
    row = loaded.set_index("config_hash").loc["b"]
    assert row["curve"] == [[1, 0.5], [2, 0.75]] and row["test_scores"] == [0.25, 0.75]
    assert row["test_labels"] == [0, 1] and math.isnan(row["lr"])
    assert temp_files(tmp_path / "sub") == []


def test_results_table_failed_write_keeps_the_old_table(tmp_path, monkeypatch):
    table = ResultsTable(tmp_path / "results.csv")
    table.append(fake_row("a"))
    before = table.path.read_bytes()

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(ST.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        table.append(fake_row("b"))
    assert table.path.read_bytes() == before and temp_files(tmp_path) == []


# ----------------------------------------------------------------------------- 7. the config hash

def changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value / 2 if isinstance(value, float) else value + 1
    if isinstance(value, str):
        return value + "x"
    return 0.005                                    # None (lr, max_train, max_eval)


def test_key_equal_for_equal_configs_and_differs_for_any_field():
    base = RunConfig.from_flat(**TINY)
    assert base.key() == RunConfig.from_flat(**TINY).key() and len(base.key()) == 16
    assert RunConfig(fraction=1).key() == RunConfig(fraction=1.0).key()   # equal configs (1 == 1.0)
    assert RunConfig(lr=1).key() == RunConfig(lr=1.0).key()
    variants = [RunConfig.from_flat(**{**base.flat(), name: changed(value)}) for name, value in base.flat().items()]
    assert set(base.flat()) >= {"steps", "patience", "min_steps", "batch_size", "eval_every", "decay_steps",
                                "bn_mode", "augment"}, "the budget's fields are part of the flat view"
    keys = [base.key()] + [v.key() for v in variants]
    assert len(set(keys)) == len(keys), "a field is missing from the hash"


def test_key_changes_with_the_schema_version(monkeypatch):
    before = RunConfig().key()
    monkeypatch.setattr(R, "SCHEMA_VERSION", R.SCHEMA_VERSION + 1)
    assert RunConfig().key() != before


def test_key_is_stable_across_processes():
    configs = [RunConfig(), RunConfig.from_flat(**TINY), *tiny_configs(seeds=(7,), lr=0.003)]
    script = ("import json, sys; from helpers.experiments import RunConfig; "
              "print(json.dumps([RunConfig.from_flat(**d).key() for d in json.loads(sys.argv[1])]))")
    out = subprocess.run([sys.executable, "-c", script, json.dumps([c.flat() for c in configs])], cwd=REPO,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}, capture_output=True, text=True,
                         timeout=120, check=True)
    assert json.loads(out.stdout) == [c.key() for c in configs]


# ----------------------------------------------------------------------------- fair budgets and tuned rates

@needs_data
def test_runs_of_one_sweep_take_the_same_steps_at_every_size(sweep):
    """A budget in steps: 8 and 16 labelled images both get TINY['steps'] SGD steps (no early stopping here)."""
    table = sweep["table"]
    assert table["n_train"].nunique() == 2
    assert (table["iterations"] == TINY["steps"]).all()
    assert (table["n_val"] >= 2).all() and not table["collapsed"].any()
    # validation is held out of each run's own budget, not the official split
    assert (table["n_train"] + table["n_val"]).tolist() == [round(32 * f) for f in table["fraction"]]


@needs_data
def test_sweep_tunes_a_rate_per_strategy_on_validation(tmp_path, monkeypatch):
    """Every seed is tuned and the rate with the best MEAN validation AUC over seeds is chosen."""
    monkeypatch.setattr(R, "MIN_TUNE_VAL", 0)    # these tiny runs hold 2-4 validation images
    configs = grid(archs=ARCHS, strategies=("scratch", "last"), fractions=(0.5, 1.0), seeds=(0, 1), **TINY)
    grids = {"scratch": (0.01, 0.03), "finetune": (0.001, 0.01)}
    trials = R.rate_trials(configs, grids)
    assert len(trials) == 2 * 2 * 2 * 2 and {t.seed for t in trials} == {0, 1}
    counting = Counting()
    table = run_sweep(configs, tmp_path / "r.csv", run_fn=counting, progress=False, lr_grid=grids)
    rates = pd.DataFrame(table.attrs["rates"])
    assert len(rates) == 16 and rates.groupby(["strategy", "fraction"])["chosen"].sum().eq(2).all()
    for _, row in table.iterrows():
        tried = rates[(rates["strategy"] == row["strategy"]) & (rates["fraction"] == row["fraction"])]
        pick = tried[tried["chosen"] & (tried["seed"] == row["seed"])]
        assert row["lr_used"] == pick["lr"].item()
        means = tried.groupby("lr")[["val_score", "val_loss"]].mean().sort_values(["val_score", "val_loss"],
                                                                               ascending=[False, True])
        assert pick["lr"].item() == means.index[0]
    # the tuning runs with the chosen rate are the sweep's own runs: nothing is run twice
    assert len(counting.calls) == 16 and len(table) == len(configs)


@needs_data
def test_too_little_validation_falls_back_to_the_recipe_rates(tmp_path):
    """With fewer than MIN_TUNE_VAL validation images no rate is tuned: the recipe's defaults are used."""
    configs = grid(archs=ARCHS, strategies=("scratch", "last"), fractions=(1.0,), seeds=(0,), **TINY)
    assert all(c.validation_size() < R.MIN_TUNE_VAL for c in configs)
    assert R.rate_trials(configs, {"scratch": (0.01, 0.03), "finetune": (0.001, 0.01)}) == []
    table = run_sweep(configs, tmp_path / "r.csv", run_fn=Counting(), progress=False,
                      lr_grid={"scratch": (0.03,), "finetune": (0.01,)})
    assert sorted(table["lr_used"]) == [PAPER.finetune_lr, PAPER.scratch_lr]


@needs_data
def test_a_diverging_rate_is_a_row_not_a_crash(tmp_path):
    config = RunConfig.from_flat(strategy="all", lr=1e4, **{**TINY, "steps": 12, "eval_every": 4})
    row = run_one(config)
    assert row["diverged"] and math.isnan(row["val_score"]) and "learning rate" in row["note"]


def test_budget_configs_double_the_steps_of_scratch_at_the_largest_sizes():
    configs = grid(strategies=("scratch", "last"), fractions=(0.1, 0.5, 1.0), seeds=(0, 1), steps=120, patience=60,
                   min_steps=60)
    table = pd.DataFrame([{"dataset": c.dataset, "arch": c.arch, "strategy": c.strategy, "fraction": c.fraction,
                           "seed": c.seed, "lr_used": 0.03 if c.seed else 0.01} for c in configs])
    other = table.assign(dataset="retinamnist", lr_used=0.1)     # another experiment's rates are never borrowed
    table = pd.concat([table, other], ignore_index=True)
    longer = E.budget_configs(configs, table, factor=2)
    assert {(c.strategy, c.fraction) for c in longer} == {("scratch", 0.5), ("scratch", 1.0)} and len(longer) == 4
    assert all(c.budget.steps == 240 and c.budget.patience == 120 and c.budget.min_steps == 120 for c in longer)
    assert {c.seed: c.lr for c in longer} == {0: 0.01, 1: 0.03}      # each seed's own tuned rate
    assert len({c.key() for c in longer} | {c.key() for c in configs}) == len(longer) + len(configs)


def test_budget_check_pairs_the_longer_runs_with_the_sweep():
    rng = np.random.default_rng(0)
    labels = [0] * 50 + [1] * 50

    def row(steps, seed, shift):
        scores = rng.normal(0, 1, 100) + shift * np.array(labels)
        return {"strategy": "scratch", "fraction": 1.0, "seed": seed, "n_train": 961, "steps": steps,
                "test_auc": float(roc_auc(np.array(labels), scores)), "test_scores": scores.tolist(),
                "test_labels": labels, "best_step": steps, "iterations": steps}
    base = pd.DataFrame([row(120, s, 0.5) for s in range(3)])
    longer = pd.DataFrame([row(240, s, 3.0) for s in range(3)] + [{**row(240, 3, 3.0), "diverged": True,
                                                                  "test_scores": [], "test_auc": float("nan")}])
    out = E.budget_check(base, longer, n_boot=200).iloc[0]
    assert out["longer_steps"] == 240 and out["steps"] == 120 and out["seeds"] == 3
    assert out["delta"] > 0.2 and out["lo"] > 0 and out["best_at_end"] == 1.0   # the diverged seed 3 is left out


@needs_data
def test_the_statistics_only_arm_is_a_strategy_like_the_others():
    from helpers.recipe import default_rate, head_multiplier, rate_family
    config = RunConfig.from_flat(strategy="statistics", fraction=1.0, seed=0, **TINY)
    assert rate_family("statistics") == "scratch" and head_multiplier("statistics") == 1.0
    assert config.learning_rate() == default_rate("scratch")
    assert config.key() not in {RunConfig.from_flat(strategy=s, fraction=1.0, seed=0, **TINY).key() for s in ("scratch", "all")}
    row = run_one(config)
    assert row["strategy"] == "statistics" and row["requested"] == "statistics"
    assert row["bn_mode_used"] == "recalibrate"        # no features to protect: statistics follow the new weights
    assert 0 <= row["test_auc"] <= 1 and not row["diverged"]
    # tuned on validation like every arm: its trials draw from the scratch grid
    from dataclasses import replace
    untuned = replace(config, lr=None, max_train=100)   # enough validation images to tune on
    trials = R.rate_trials([untuned], {"scratch": (0.01, 0.03), "finetune": (0.001,)}, (1.0,))
    assert sorted(t.lr for t in trials) == [0.01, 0.03]


def test_sweep_store_copies_an_old_csv_table_once_and_into_a_given_store(tmp_path):
    default = tmp_path / "04_sweep_x"
    store, copied = E.sweep_store(default)
    assert copied == 0 and store.done() == set(), "no old table: an empty store, nothing copied"
    old = ResultsTable(tmp_path / "04_sweep_x.csv")   # the format before stores, beside the default folder
    old.append(fake_row("a", 0.7))
    old.append(fake_row("b", 0.8))
    store, copied = E.sweep_store(default)
    assert copied == 2 and store.done() == {"a", "b"} and store.folder == default
    assert E.sweep_store(default)[1] == 0, "runs already stored are not copied again"
    elsewhere, copied = E.sweep_store(default, tmp_path / "cluster")
    assert copied == 2 and elsewhere.folder == tmp_path / "cluster" and elsewhere.done() == {"a", "b"}
    assert elsewhere.load().set_index("config_hash").loc["b", "test_auc"] == 0.8
