"""The resumable sweep runner: a grid of runs, one plain function per run, results persisted as they finish.

Each run is ``run_fn(config) -> dict`` (a result row), so runs can go to any
``concurrent.futures``-style executor (a process pool, or Dask's / submitit's for a cluster) without
changing the runner. Results land one row per run in a CSV table, rewritten atomically after every
finished run: a sweep killed at any moment (even ``kill -9``) loses at most the runs in progress and
resumes where it stopped. A row is keyed by the hash of every meaningful field of its config, so a
changed config is never answered with a stale result.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import tempfile
import time
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

SCHEMA_VERSION = 2
# The fixed parts of the training recipe; part of every run's hash, so changing one never reuses a result.
RECIPE = {"optimizer": "sgd", "momentum": 0.9, "lr_decay": 0.95, "head_lr_mult": 10.0, "bias_lr_mult": 2.0,
          "weight_decay": 5e-4}
JSON_COLUMNS = ("curve", "test_scores", "test_labels", "path", "froc", "matches", "frame_table")
FINETUNE_LR = 0.001   # the paper's rate for tuned layers (the new head gets 10x)
SCRATCH_LR = 0.01     # see notebook 02's sensitivity sweep: 0.001 barely moves in a few epochs


@dataclass(frozen=True)
class RunConfig:
    """One classification run of a sweep; every field is part of its identity (hash)."""

    dataset: str = "pneumoniamnist"
    arch: str = "efficientnet_lite0"
    strategy: str = "scratch"          # "scratch", a ladder level (name, or last/middle/all), or "auto"
    fraction: float = 1.0
    seed: int = 0
    image_size: int = 64
    data_size: int = 28
    epochs: int = 6
    patience: int = 2
    batch_size: int = 64
    lr: float | None = None            # None: SCRATCH_LR for scratch, FINETUNE_LR otherwise
    eval_every: int = 20
    max_train: int | None = None
    max_eval: int | None = None
    n_bootstrap: int = 1000
    balance: bool = False
    augment: bool = False
    init: str = "gaussian"

    def key(self) -> str:
        """A stable hash of every field (and the result schema's version)."""
        return config_hash(self)

    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (SCRATCH_LR if self.strategy == "scratch" else FINETUNE_LR)


def config_hash(config) -> str:
    """sha1 of the config's fields, the rate it resolves to and the fixed recipe (sorted JSON); 16 hex digits."""
    values = asdict(config)
    for f in fields(config):   # equal configs, equal hashes: fraction=1 == fraction=1.0
        if "float" in str(f.type) and isinstance(values[f.name], int) and not isinstance(values[f.name], bool):
            values[f.name] = float(values[f.name])
    resolved = {"resolved_lr": float(config.learning_rate())} if hasattr(config, "learning_rate") else {}
    payload = json.dumps({"schema": SCHEMA_VERSION, "type": type(config).__name__, "recipe": RECIPE,
                          **resolved, **values}, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


def grid(datasets: Sequence[str] = ("pneumoniamnist",), archs: Sequence[str] = ("efficientnet_lite0",),
         strategies: Sequence[str] = ("scratch", "last", "all"), fractions: Sequence[float] = (1.0,),
         seeds: Sequence[int] = (0,), **common) -> list[RunConfig]:
    """Every combination of data set, backbone, strategy, training fraction and seed."""
    return [RunConfig(dataset=d, arch=a, strategy=s, fraction=float(f), seed=int(r), **common)
            for d, a, s, f, r in itertools.product(datasets, archs, strategies, fractions, seeds)]


def versions() -> str:
    """Library versions that can change a result."""
    import torch
    import torchvision

    from . import __version__
    return (f"ftlab {__version__}; torch {torch.__version__}; torchvision {torchvision.__version__}; "
            f"numpy {np.__version__}; python {platform.python_version()}")


@lru_cache(maxsize=4)
def cached_dataset(dataset: str, size: int):
    """Load a data set once per process (runs of one sweep share it)."""
    from .data import load_dataset
    return load_dataset(dataset, size=size)


def prepare_data(config: RunConfig):
    """The run's data: the profile's caps, then the nested training fraction for this seed."""
    from .subsets import cap_dataset, training_subset
    data = cap_dataset(cached_dataset(config.dataset, config.data_size), config.max_train, config.max_eval, seed=0)
    return training_subset(data, config.fraction, seed=config.seed, balance=config.balance)


def run_one(config: RunConfig, quiet: bool = True) -> dict:
    """Train and test one run; return its result row (config, hash, metrics, curve, scores, bookkeeping)."""
    from .env import seed_everything
    from .finetune import auto_depth, set_level
    from .models import build_model, input_size
    from .train import TrainConfig, evaluate, fit

    t0 = time.perf_counter()
    data = prepare_data(config)
    scratch = config.strategy == "scratch"
    seed_everything(config.seed)   # the initial weights too: a run's result depends on its config only
    model = build_model(config.arch, data.num_classes, pretrained=not scratch,
                        image_size=input_size(config.arch, config.image_size),
                        init=config.init)
    train_cfg = TrainConfig(epochs=config.epochs, batch_size=config.batch_size, lr=config.learning_rate(),
                            head_lr_mult=1.0 if scratch else 10.0, patience=config.patience,
                            eval_every=config.eval_every, augment=config.augment, seed=config.seed, quiet=quiet)
    extra: dict = {}
    if config.strategy == "auto":
        found = auto_depth(model, data, train_cfg)
        level, index, result = found.chosen, found.chosen_index, None
        extra["path"] = found.path.to_dict("records")
    else:
        rung = None if scratch else set_level(model, config.strategy)
        level, index = ("", -1) if rung is None else (rung.name, rung.index)
        result = fit(model, data, train_cfg)
    metrics, scores = evaluate(model, data.test, n_boot=config.n_bootstrap, seed=config.seed)
    return result_row(config, data, level, index, metrics, scores, result, time.perf_counter() - t0, extra)


def result_row(config, data, level: str, index: int, metrics: dict, scores: np.ndarray, result,
               wall_s: float, extra: dict) -> dict:
    """Flatten one run into a table row."""
    row = {**asdict(config), "config_hash": config.key(), "level": level, "level_index": index,
           "strategy": "auto" if config.strategy == "auto" else (level or "scratch"),
           "requested": config.strategy, "n_train": len(data.train), "lr_used": config.learning_rate()}
    row.update({f"test_{k}": v for k, v in metrics.items()})
    if result is not None:
        row.update(val_auc=result.best_val_auc, best_epoch=result.best_epoch, epochs_run=len(result.history),
                   iterations=result.iterations, cached=result.cached, device=result.device,
                   curve=[[int(i), float(a)] for i, a in zip(result.curve["iteration"], result.curve["val_auc"])])
    else:
        path = extra.get("path", [])
        row.update(val_auc=max(p["val_auc"] for p in path), iterations=sum(p["iterations"] for p in path),
                   epochs_run=sum(p["epochs"] for p in path), best_epoch=-1, cached=None, curve=[], device="")
    positive = scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 else scores
    row.update(test_scores=np.round(positive, 6).tolist(), test_labels=data.test.labels.tolist(),
               wall_s=wall_s, versions=versions(), finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"), **extra)
    return row


# ----------------------------------------------------------------------------- the results table

class ResultsTable:
    """A CSV of result rows, rewritten atomically (temp file, fsync, rename) after every finished run."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> pd.DataFrame:
        """Every stored row (list columns decoded), or an empty table."""
        if not self.path.exists():
            return pd.DataFrame()
        try:
            table = pd.read_csv(self.path)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
        for col in JSON_COLUMNS:
            if col in table:
                table[col] = [json.loads(v) if isinstance(v, str) else v for v in table[col]]
        return table

    def done(self) -> set[str]:
        """Hashes of the finished runs."""
        table = self.load()
        return set(table["config_hash"]) if "config_hash" in table else set()

    def append(self, row: dict) -> None:
        """Add (or replace, by hash) one row and write the table atomically."""
        table = self.load()
        if "config_hash" in table:
            table = table[table["config_hash"] != row["config_hash"]]
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True)
        self._write(table)

    def _write(self, table: pd.DataFrame) -> None:
        table = table.copy()
        for col in JSON_COLUMNS:
            if col in table:
                table[col] = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in table[col]]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", newline="") as handle:
                table.to_csv(handle, index=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


def run_sweep(configs: Iterable, results_path: str | Path, run_fn: Callable = run_one,
              executor: Executor | None = None, progress: bool = True) -> pd.DataFrame:
    """Run every config not yet in the table, persisting each row as it finishes; return the configs' rows.

    Finished runs (same hash) are skipped, so re-running a sweep resumes it. With ``executor`` the runs
    are submitted to it (results are written by this process as they complete); without one they run
    one by one here with a progress bar over runs.
    """
    from tqdm.auto import tqdm

    configs = list(configs)
    table = ResultsTable(results_path)
    done = table.done()
    pending = list({c.key(): c for c in configs if c.key() not in done}.values())
    bar = tqdm(total=len(pending), desc="runs", disable=not progress or not pending)
    if executor is None:
        for config in pending:
            table.append(run_fn(config))
            bar.update(1)
    else:
        failures = []
        futures = {executor.submit(run_fn, config): config for config in pending}
        for future in as_completed(futures):
            try:
                table.append(future.result())
            except Exception as err:  # keep the finished runs; report the failed ones at the end
                failures.append((futures[future], err))
            bar.update(1)
        if failures:
            bar.close()
            config, err = failures[0]
            raise RuntimeError(f"{len(failures)} run(s) failed (finished runs were kept); the first: "
                               f"{config} -> {err!r}") from err
    bar.close()
    return select(table.load(), configs)


def select(table: pd.DataFrame, configs: Iterable) -> pd.DataFrame:
    """Only the rows whose hash belongs to ``configs`` (stale rows of changed configs are ignored)."""
    keys = [c.key() for c in configs]
    if table.empty:
        return table
    return table[table["config_hash"].isin(keys)].drop_duplicates("config_hash", keep="last").reset_index(drop=True)


# ----------------------------------------------------------------------------- one ladder (notebook 03)

@dataclass
class LadderRun:
    """Every level of a ladder (and scratch) trained once: result rows and the models worth keeping."""

    table: pd.DataFrame
    models: dict


def run_ladder(arch: str, data, levels: Sequence[str] | None, train_cfg, n_boot: int = 1000,
               image_size: int = 64, scratch: bool = True, keep: Sequence[str] = ("all",),
               scratch_lr: float = SCRATCH_LR) -> LadderRun:
    """Fine-tune a fresh ImageNet model at each level (all levels when ``levels`` is None), and scratch.

    Every level starts from the same pretrained weights. After training, every frozen parameter and
    buffer is compared with its value before training (column ``frozen_unchanged``). Rows follow the
    sweep's schema, so the analysis and plots of notebook 04 apply unchanged.
    """
    from .finetune import changed_entries, frozen_state, ladder, resolve_level, set_level
    from .models import build_model, input_size
    from .train import fit_and_test

    image_size = input_size(arch, image_size)
    probe = build_model(arch, data.num_classes, pretrained=True, image_size=image_size)
    chosen = ladder(probe) if levels is None else [resolve_level(probe, level) for level in levels]
    chosen = sorted({r.index: r for r in chosen}.values(), key=lambda r: r.index)
    keep_names = {resolve_level(probe, k).name if k != "scratch" else "scratch" for k in keep}
    rows, models = [], {}
    plans = ([("scratch", None)] if scratch else []) + [(r.name, r) for r in chosen]
    for name, rung in plans:
        model = build_model(arch, data.num_classes, pretrained=rung is not None, image_size=image_size,
                            seed=train_cfg.seed)   # the new head's (or scratch model's) initial weights too
        overrides = {"head_lr_mult": 1.0, "lr": scratch_lr} if rung is None else {}
        snapshot = frozen_state(model) if rung is None else (set_level(model, rung), frozen_state(model))[1]
        started = time.perf_counter()
        outcome = fit_and_test(name, model, data, train_cfg, n_boot=n_boot, **overrides)
        config = RunConfig(dataset=data.name, arch=arch, strategy=name, image_size=image_size,
                           epochs=train_cfg.epochs, patience=train_cfg.patience or 0,
                           batch_size=train_cfg.batch_size, lr=overrides.get("lr", train_cfg.lr),
                           eval_every=train_cfg.eval_every, n_bootstrap=n_boot, seed=train_cfg.seed)
        row = result_row(config, data, "" if rung is None else rung.name, -1 if rung is None else rung.index,
                         outcome.metrics, outcome.scores, outcome.result, time.perf_counter() - started, {})
        row.update(frozen_unchanged=not changed_entries(model, snapshot), frozen_entries=len(snapshot),
                   trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
        rows.append(row)
        if name in keep_names:
            models[name] = model
    return LadderRun(pd.DataFrame(rows), models)
