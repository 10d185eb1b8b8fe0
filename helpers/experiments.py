"""Classification runs of the study: one run of a sweep (:class:`RunConfig`, :func:`run_one`), the
fine-tuning ladder of notebook 03 (:func:`run_ladder`) and the BatchNorm-mode comparison.

Every run makes one result row (the schema the analysis reads); sweeps over many runs, their storage and
the learning-rate tuning are the generic machinery of :mod:`helpers.runner`.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd
from torch import nn
from .progress import Countdown, about, tqdm

from .convergence import best_at_end_share
from .tables import dedupe
from .bootstrap import two_level_bootstrap
from .datasets import DataSet

from .env import run_threads
from .finetune import Level, changed_entries, frozen_state, ladder, resolve_level, set_level
from .loading import load_dataset, parse_intensity
from .metrics import is_collapsed
from .modelcard import model_card, save_model, stem_for
from .models import FTModel, build_model, default_init, input_size
from .profiles import Classification
from .recipe import PAPER, head_multiplier, rate_family
from .representations import statistics_init
from .runner import Application, RunIdentity, base_row, execute, stamp, sweep_grid
from .store import ResultsStore
from .schema import AUTO, SCRATCH, STATISTICS
from .subsets import cap_dataset, training_subset
from .train import TrainBudget, TrainConfig, TrainResult, evaluate, fit, precision_of, resolve_bn_mode
from .tuning import auto_depth, tune_lr


@dataclass(frozen=True)
class RunConfig(RunIdentity):
    """One classification run of a sweep; every field is part of its identity (hash).

    The training budget (``budget``, :class:`helpers.train.TrainBudget`) counts optimizer steps whatever the
    training-set size; validation images are ``val_share`` of the run's own training images (0: the official
    validation split). ``lr`` None
    means: chosen on validation data by :func:`helpers.runner.run_sweep` from its ``lr_grid`` (or the default rate
    of :meth:`learning_rate` when the sweep has no grid).
    """
    dataset: str = "pneumoniamnist"
    arch: str = "efficientnet_lite0"
    strategy: str = SCRATCH          # "scratch", "statistics", a ladder level (name, or last/middle/all), or "auto"
    fraction: float = 1.0
    seed: int = 0
    image_size: int = 64
    data_size: int = 28
    budget: TrainBudget = TrainBudget()   # steps, batch, stopping, BatchNorm mode ("auto": ImageNet's kept), augmentation
    lr: float | None = None
    val_share: float = 0.2
    max_train: int | None = None
    max_eval: int | None = None
    n_bootstrap: int = 1000
    balance: bool = False
    init: str | None = None            # scratch initialisation; None = models.default_init(arch)
    threads: int = field(default_factory=run_threads)   # torch threads: fixed per run (same seed, same numbers)
    intensity: str = "auto"            # how an image folder's deep samples become 0..255: auto, minmax or "LOW,HIGH"

    late_fields: ClassVar[tuple[str, ...]] = ("intensity",)   # rows stored before it existed read it as "auto"

    def flat(self) -> dict:
        """:meth:`helpers.runner.RunIdentity.flat`, with ``intensity`` only where it is not "auto" (every run
        stored before the field existed keeps its hash)."""
        values = super().flat()
        if values.get("intensity") == "auto":
            del values["intensity"]
        return values

    def run(self, quiet: bool = True) -> dict:
        """Run it (:func:`run_one`): what :func:`helpers.runner.run_sweep` calls by default."""
        return run_one(self, quiet)

    def validation_size(self) -> int | None:
        """The run's validation images (held out of its budget), read off the data set without training:
        the sweep tunes no rate on fewer than :data:`helpers.runner.MIN_TUNE_VAL`."""
        return _validation_size(self.dataset, self.data_size, self.max_train, self.max_eval, float(self.fraction),
                                self.seed, self.balance, self.val_share, self.intensity)

    def train_config(self, quiet: bool = True) -> TrainConfig:
        """The engine's settings for this run (the paper's recipe, this run's budget and rate)."""
        return TrainConfig.for_strategy(self.strategy, lr=self.learning_rate(), budget=self.budget, seed=self.seed,
                                        threads=self.threads, quiet=quiet)


def grid(datasets: Sequence[str] = ("pneumoniamnist",), archs: Sequence[str] = ("efficientnet_lite0",),
         strategies: Sequence[str] = (SCRATCH, "last", "all"), fractions: Sequence[float] = (1.0,),
         seeds: Sequence[int] = (0,), **common) -> list[RunConfig]:
    """Every combination of data set, backbone, strategy, training fraction and seed; ``common`` holds the
    other fields, budget fields flat beside them or as ``budget=`` (:meth:`helpers.runner.RunIdentity.from_flat`)."""
    return [RunConfig.from_flat(dataset=d, arch=a, strategy=s, fraction=float(f), seed=int(r), **common)
            for d, a, s, f, r in itertools.product(datasets, archs, strategies, fractions, seeds)]


def profile_grid(part: Classification, datasets: Sequence[str], archs: Sequence[str] = ("efficientnet_lite0",),
                 strategies: Sequence[str] | None = None, fractions: Sequence[float] | None = None,
                 seeds: Sequence[int] | None = None, **fixed) -> list[RunConfig]:
    """The sweep a profile's classification part defines, for each data set and backbone
    (:func:`helpers.runner.sweep_grid`): its strategies, fractions and seeds unless given, its budget and caps,
    ``fixed`` on top (``steps=...``)."""
    return [c for d in datasets for a in archs
            for c in sweep_grid(RunConfig, part, strategies, fractions, seeds, dataset=d, arch=a, **fixed)]


def sweep_store(default: str | Path, store: str | Path | None = None) -> tuple[ResultsStore, int]:
    """The results store of a notebook's sweep (notebook 04): the folder ``store`` if given, else ``default``.

    A results table in the format before stores, ``<default>.csv`` beside the default folder, has its finished
    runs copied in (:meth:`helpers.store.ResultsStore.import_csv`; a run already stored is not copied again).
    Returns the store and how many runs were copied.
    """
    results = ResultsStore(store or default)
    legacy = Path(f"{default}.csv")
    return results, (results.import_csv(legacy) if legacy.exists() else 0)


@lru_cache(maxsize=4)
def cached_dataset(dataset: str, size: int, intensity: str = "auto") -> DataSet:
    """Load a data set once per process (runs of one sweep share it); ``intensity`` in its text form
    (:func:`helpers.loading.parse_intensity`)."""
    return load_dataset(dataset, size=size, intensity=parse_intensity(intensity))


@lru_cache(maxsize=1024)
def _validation_size(dataset: str, data_size: int, max_train: int | None, max_eval: int | None, fraction: float,
                     seed: int, balance: bool, val_share: float, intensity: str = "auto") -> int | None:
    config = RunConfig(dataset=dataset, data_size=data_size, max_train=max_train, max_eval=max_eval,
                       fraction=fraction, seed=seed, balance=balance, val_share=val_share, intensity=intensity)
    try:
        return len(prepare_data(config).val)
    except ValueError:   # a fraction too small for this data set: the run itself says so
        return None


def prepare_data(config: RunConfig) -> DataSet:
    """The run's data: the profile's caps, then the nested training fraction for this seed, with its
    validation images held out of that fraction (``val_share``)."""
    data = cap_dataset(cached_dataset(config.dataset, config.data_size, config.intensity), config.max_train,
                       config.max_eval, seed=0)
    return training_subset(data, config.fraction, seed=config.seed, balance=config.balance,
                           val_share=config.val_share)


@dataclass
class Built:
    """A classification run's network at its depth, before training (:func:`build`)."""
    model: FTModel
    level: str                 # the ladder level's name ("" for scratch and statistics, "auto" until chosen)
    index: int                 # its index (-1 for none)
    train_cfg: TrainConfig
    extra: dict                # row fields known before training: BatchNorm mode used, precision (and auto's path)


def build(config: RunConfig, data: DataSet) -> Built:
    """The run's network (ImageNet weights unless scratch; the statistics-only control redrawn from them) at its
    depth, and the engine's settings."""
    scratch, statistics = config.strategy == SCRATCH, config.strategy == STATISTICS
    model = build_model(config.arch, data.num_classes, pretrained=not scratch,
                        image_size=input_size(config.arch, config.image_size),
                        init=config.init or default_init(config.arch))
    if statistics:   # the pretrained weights' scale without their features (Raghu et al. 2019, "Mean Var")
        statistics_init(model, seed=config.seed, keep=(model.stage_names[-1],))
        model.pretrained = False   # no features to protect: BatchNorm recalibrates (auto), every layer trains
    train_cfg = config.train_config()
    extra: dict = {"bn_mode_used": resolve_bn_mode(model, train_cfg.bn_mode), "precision": precision_of(train_cfg)}
    auto = config.strategy == "auto"
    rung = None if scratch or statistics or auto else set_level(model, config.strategy)
    level, index = ("auto" if auto else "", -1) if rung is None else (rung.name, rung.index)
    return Built(model, level, index, train_cfg, extra)


def _fit(config: RunConfig, data: DataSet, built: Built, quiet: bool) -> TrainResult | None:
    train_cfg = replace(built.train_cfg, quiet=quiet)
    if config.strategy != "auto":
        return fit(built.model, data, train_cfg)
    found = auto_depth(built.model, data, train_cfg, quiet=quiet)   # one step budget per level tried, as the paper's scheme spends it
    built.level, built.index = found.chosen, found.chosen_index
    built.extra["path"] = found.path.to_dict("records")
    return None


def _score(config: RunConfig, data: DataSet, built: Built, result: TrainResult | None) -> dict:
    metrics, scores = evaluate(built.model, data.test, n_boot=config.n_bootstrap, seed=config.seed)
    return {**result_fields(config, data, built.level, built.index, metrics, scores, result, built.extra.get("path")),
            **built.extra}


def _failed(config: RunConfig, data: DataSet, built: Built) -> dict:
    """A diverged run's own fields: no metrics (analyses leave diverged rows out, ``tables.dedupe``; a notebook
    that reports a sweep asserts that none of its reported runs diverged)."""
    return {"level": built.level, "level_index": built.index,
            "strategy": STATISTICS if config.strategy == STATISTICS else built.level or SCRATCH,
            "n_train": len(data.train), "n_val": len(data.val), "test_auc": math.nan, "val_collapsed": False,
            "iterations": -1, "best_step": -1, "curve": [], "test_scores": [], "test_labels": [], **built.extra}


def _card(model: nn.Module, data: DataSet, config: RunConfig, row: dict, save_dir: str | Path) -> str:
    """Save a trained model and its card (:mod:`helpers.modelcard`) into ``save_dir``; the card's path."""
    return str(save_model(model, model_card(model, data, config.flat(), row), stem_for(save_dir, row)))


def _save(config: RunConfig, data: DataSet, built: Built, result, row: dict, save_dir: str | Path) -> dict:
    return {"model_card": _card(built.model, data, config, row, save_dir)}


CLASSIFICATION = Application(task="classification", metric="auc", prepare=lambda config: prepare_data(config),
                             build=build, fit=_fit, score=_score, failed=_failed, save=_save)
"""Classification as an application of the one run skeleton (:func:`helpers.runner.execute`)."""


def run_one(config: RunConfig, quiet: bool = True, save_dir: str | Path | None = None) -> dict:
    """Train and test one run; return its result row (config, hash, metrics, curve, scores, bookkeeping).

    With ``save_dir`` the trained model is saved there with its model card (:mod:`helpers.modelcard`)
    and the row's ``model_card`` names the card.
    """
    return execute(CLASSIFICATION, config, quiet, save_dir)


def result_fields(config: RunConfig, data: DataSet, level: str, index: int, metrics: dict, scores: np.ndarray,
                  result: TrainResult | None, path: list | None = None) -> dict:
    """One classification run's own row fields (test scores unrounded, so paired tests see the real values);
    :func:`helpers.runner.base_row` and :func:`helpers.runner.stamp` add the shared ones. ``result`` None: an
    ``auto`` run, whose validation figures come from its ``path`` of levels tried."""
    row = {"level": level, "level_index": index,
           "strategy": config.strategy if config.strategy in (AUTO, STATISTICS) else (level or SCRATCH),
           "n_train": len(data.train), "n_val": len(data.val)}
    if result is not None:
        row["bn_mode_used"] = result.bn_mode
        row["precision"] = result.precision   # float32, or the mixed precision the training forward used
    row.update({f"test_{k}": v for k, v in metrics.items()})
    row["collapsed"] = is_collapsed(metrics.get("score_sd", float("nan")))
    if result is not None:
        row.update(val_score=result.best_val_auc, val_loss=result.best_val_loss, best_step=result.best_step,
                   val_score_sd=result.best_val_score_sd, val_collapsed=is_collapsed(result.best_val_score_sd),
                   iterations=result.iterations, cached=result.cached, device=result.device,
                   curve=[[int(i), float(a)] for i, a in zip(result.curve["iteration"], result.curve["val_auc"])])
    else:
        best = max(path or [], key=lambda p: p["val_auc"], default={"val_auc": math.nan})
        row.update(val_score=best["val_auc"], val_loss=best.get("val_loss", math.nan),
                   iterations=sum(p.get("iterations", 0) or 0 for p in path or []), best_step=-1, cached=None,
                   curve=[], device="")
    positive = scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 and not data.multi_label else scores
    row.update(test_scores=np.asarray(positive, dtype=float).tolist(), test_labels=data.test.labels.tolist())
    return row


# ----------------------------------------------------------------------------- equal steps, equal convergence?

def budget_configs(configs: Sequence[RunConfig], table: pd.DataFrame, factor: int = 2, strategy: str = SCRATCH,
                   n_fractions: int = 2) -> list[RunConfig]:
    """The runs of a budget check: ``strategy``'s runs at the ``n_fractions`` largest fractions of a finished
    sweep, again with ``factor`` times the steps (patience and minimum steps scaled alike) at the rate each
    run was given (``table``'s ``lr_used``). Equal steps are not equal convergence: 120 steps are 120 passes
    over 10 images but 4 passes over 961, so the large sizes are where a curve may still be rising."""
    fractions = sorted({c.fraction for c in configs})[-n_fractions:]
    rates = {(r["dataset"], r["arch"], r["strategy"], float(r["fraction"]), int(r["seed"])): float(r["lr_used"])
             for _, r in table.iterrows()}
    out = []
    for c in configs:
        if c.strategy == strategy and c.fraction in fractions:
            lr = rates.get((c.dataset, c.arch, strategy, float(c.fraction), int(c.seed)), c.lr)
            out.append(replace(c, lr=lr, budget=c.budget.scaled(factor)))
    return out


def budget_check(table: pd.DataFrame, longer: pd.DataFrame, metric: str = "test_auc", n_boot: int = 1000,
                 seed: int = 0) -> pd.DataFrame:
    """Per fraction: the longer runs (:func:`budget_configs`) against the sweep's own, paired by seed.

    Columns: ``strategy, fraction, n_train, steps, longer_steps, mean, longer_mean, delta, lo, hi, p`` (a
    paired interval over seeds and test images, :func:`helpers.bootstrap.two_level_bootstrap` with
    ``paired_with``) and ``best_at_end`` / ``longer_best_at_end`` (share of runs still improving at their
    last step), over the seeds both tables hold (diverged runs left out). A ``delta`` whose interval lies
    above 0 means the curve at that size was not converged."""
    rows = []
    table, longer = (dedupe(t) for t in (table, longer))   # diverged runs have no scores to pair
    for (strategy, fraction), g in longer.groupby(["strategy", "fraction"]):
        base = table[(table["strategy"] == strategy) & (table["fraction"] == fraction)].set_index("seed")
        g = g.set_index("seed")
        seeds = sorted(set(base.index) & set(g.index))
        if not seeds:
            continue
        base, g = base.loc[seeds], g.loc[seeds]
        res = two_level_bootstrap(np.asarray(g["test_labels"].iloc[0], dtype=int),
                                  [np.asarray(s, dtype=float) for s in g["test_scores"]],
                                  paired_with=[np.asarray(s, dtype=float) for s in base["test_scores"]],
                                  n_boot=n_boot, seed=seed)
        rows.append(dict(strategy=strategy, fraction=float(fraction), n_train=int(g["n_train"].median()),
                         steps=int(base["steps"].iloc[0]), longer_steps=int(g["steps"].iloc[0]),
                         mean=float(base[metric].mean()), longer_mean=float(g[metric].mean()),
                         delta=res["mean"], lo=res["lo"], hi=res["hi"], p=res["p"], seeds=len(seeds),
                         best_at_end=best_at_end_share(base), longer_best_at_end=best_at_end_share(g)))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- one ladder (notebook 03)

@dataclass
class LadderRun:
    """Every level of a ladder (and scratch) trained once at its tuned rate: result rows, the rate
    search of every arm, and the models worth keeping."""
    table: pd.DataFrame
    models: dict
    rates: pd.DataFrame
    saved: dict = field(default_factory=dict)   # arm -> model card path (run_ladder's save_dir)


def run_ladder(template: RunConfig, data: DataSet, levels: Sequence[str] | None = None,
               lr_grid: dict[str, Sequence[float]] | None = None, arms: Sequence[str] = (SCRATCH,),
               keep: Sequence[str] = ("all",), progress: bool = True, save_dir: str | Path | None = None) -> LadderRun:
    """Fine-tune a fresh ImageNet model at each level (all levels when ``levels`` is None), and train the extra
    ``arms``: ``scratch`` and, when named, ``statistics`` (the statistics-only control: every layer trains, like
    scratch, from the pretrained weights redrawn with each layer's mean and standard deviation,
    :func:`helpers.representations.statistics_init`).

    ``template`` is the run config every arm shares: its network (``arch``, ``image_size``, the scratch ``init``),
    its budget (steps, stopping, BatchNorm mode), ``seed``, ``n_bootstrap`` and ``val_share`` (which only records
    how ``data``'s validation split was made: 0, the official one; notebook 03 holds it out of the budget). Each
    arm's row carries the template with its own strategy and rate.

    Every arm gets the same step budget and BatchNorm handling, and its own learning rate: every rate
    of its family's grid (``lr_grid["scratch"]`` / ``lr_grid["finetune"]``; default: the paper's
    single rates) is tried and the best *validation* AUC decides (:func:`helpers.tuning.tune_lr`).
    The models of the arms in ``keep`` are kept (``LadderRun.models``) and,
    with ``save_dir``, saved there with their model cards (``LadderRun.saved``). Every level starts from the same pretrained weights. After training, every frozen parameter and
    buffer is compared with its value before training (column ``frozen_unchanged``). Rows follow the
    sweep's schema, so the analysis and plots of notebook 04 apply unchanged.
    """
    arch, train_cfg = template.arch, template.train_config(quiet=True)
    init = template.init or default_init(arch)
    image_size = input_size(arch, template.image_size)
    n_boot = template.n_bootstrap
    grids = lr_grid or {"scratch": (PAPER.scratch_lr,), "finetune": (PAPER.finetune_lr,)}
    probe = build_model(arch, data.num_classes, pretrained=True, image_size=image_size)
    chosen = ladder(probe) if levels is None else [resolve_level(probe, level) for level in levels]
    chosen = sorted({r.index: r for r in chosen}.values(), key=lambda r: r.index)
    keep_names = {k if k in (SCRATCH, STATISTICS) else resolve_level(probe, k).name for k in keep}
    rows, models, searches, saved = [], {}, [], {}
    plans = [(a, None) for a in (SCRATCH, STATISTICS) if a in arms] + [(r.name, r) for r in chosen]
    trainings = sum(len(grids[rate_family(name)]) for name, _ in plans)
    if progress:
        print(f"ladder: {len(plans)} arms x their rate grids = {trainings} trainings of {train_cfg.steps} SGD steps "
              "(nothing stored: a ladder is trained again each time it runs)", flush=True)
    for arm, (name, rung) in enumerate(tqdm(plans, desc="ladder arms", disable=not progress)):
        snapshots = {}

        def build(rung: Level | None = rung, name: str = name) -> FTModel:
            model = build_model(arch, data.num_classes, pretrained=name != SCRATCH, image_size=image_size,
                                init=init, seed=train_cfg.seed)   # the same initial weights for every rate
            if name == "statistics":
                statistics_init(model, seed=train_cfg.seed, keep=(model.stage_names[-1],))
                model.pretrained = False
            if rung is not None:
                set_level(model, rung)
            snapshots[id(model)] = frozen_state(model)
            return model

        started = time.perf_counter()
        search = tune_lr(build, data, grids[rate_family(name)], train_cfg, label=name,
                         head_lr_mult=head_multiplier(name), quiet=not progress)
        model = search.model
        metrics, scores = evaluate(model, data.test, n_boot=n_boot, seed=train_cfg.seed)
        config = replace(template, dataset=data.name, strategy=name, image_size=image_size, lr=search.lr,
                         max_train=len(data.train) + len(data.val), init=init if name == SCRATCH else None)
        row = stamp({**base_row(config, CLASSIFICATION.task, CLASSIFICATION.metric), "diverged": False,
                     **result_fields(config, data, "" if rung is None else rung.name, -1 if rung is None else rung.index,
                                     metrics, scores, search.result)}, started)
        snapshot = snapshots[id(model)]
        row.update(frozen_unchanged=not changed_entries(model, snapshot), frozen_entries=len(snapshot),
                   trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
                   lr_grid=list(grids[rate_family(name)]))
        if save_dir is not None and name in keep_names:
            row["model_card"] = _card(model, data, config, row, save_dir)
        if "model_card" in row:
            saved[name] = Path(row["model_card"])
        rows.append(row)
        searches.append(search.table.assign(strategy=name))
        if name in keep_names:
            models[name] = model
        if progress and arm == 0 and len(plans) > 1:
            first = len(grids[rate_family(name)])
            each = (time.perf_counter() - started) / first
            print(f"  the first arm took {each:.1f} s a training on this machine: about "
                  f"{about(each * (trainings - first))} for the other {trainings - first} (an estimate from one arm; "
                  "frozen levels train faster)", flush=True)
    return LadderRun(pd.DataFrame(rows), models, pd.concat(searches, ignore_index=True), saved)


def bn_mode_comparison(arch: str, data: DataSet, level: str, train_cfg: TrainConfig, lr: float,
                       modes: Sequence[str] = ("frozen", "train", "recalibrate"), seeds: Sequence[int] = (0,),
                       n_boot: int = 200, image_size: int = 64, quiet: bool = False) -> pd.DataFrame:
    """One fine-tuning level trained once per BatchNorm mode and seed (same data, rate and steps; per seed
    the same starting weights and batches for every mode, so modes are paired by seed).

    A bar over the runs (and each run's bar over steps) shows unless ``quiet``.

    Columns: ``bn_mode, seed, val_auc, val_loss, test_auc, test_auc_lo, test_auc_hi, score_sd, collapsed,
    best_step, test_scores, test_labels``; :func:`bn_mode_differences` compares the modes.
    """
    rows = []
    plans = list(itertools.product(seeds, modes))
    countdown = Countdown(len(plans), f"BatchNorm modes x seeds ({len(modes)} x {len(seeds)})", train_cfg.steps,
                          quiet=quiet)
    for seed, mode in tqdm(plans, desc="BatchNorm modes x seeds", disable=quiet):
        model = build_model(arch, data.num_classes, pretrained=True, image_size=input_size(arch, image_size),
                            seed=seed)
        set_level(model, level)
        result = fit(model, data, train_cfg, lr=lr, bn_mode=mode, seed=seed, quiet=quiet)
        metrics, scores = evaluate(model, data.test, n_boot=n_boot, seed=seed)
        positive = scores[:, 1] if scores.ndim == 2 and scores.shape[1] == 2 and not data.multi_label else scores
        rows.append({"bn_mode": mode, "seed": seed, "val_auc": result.best_val_auc, "val_loss": result.best_val_loss,
                     "test_auc": metrics["auc"], "test_auc_lo": metrics["auc_lo"], "test_auc_hi": metrics["auc_hi"],
                     "score_sd": metrics["score_sd"], "collapsed": is_collapsed(metrics["score_sd"]),
                     "best_step": result.best_step, "test_scores": np.asarray(positive, dtype=float).tolist(),
                     "test_labels": data.test.labels.tolist()})
        countdown.tick()
    return pd.DataFrame(rows)


def bn_mode_differences(table: pd.DataFrame, reference: str = "frozen", n_boot: int = 1000,
                        seed: int = 0) -> pd.DataFrame:
    """Each BatchNorm mode of :func:`bn_mode_comparison` against ``reference``, paired by seed.

    Per mode: mean validation and test AUC over seeds; ``delta`` = mean test AUC(mode) - AUC(reference)
    with a 95% interval and p from :func:`helpers.bootstrap.two_level_bootstrap` (seeds and test images
    resampled together, each seed's pair of models on the same resample); ``val_delta`` the same
    difference on validation, and ``val_tied`` whether the two modes' mean validation AUCs are equal
    (validation cannot tell them apart, so it cannot choose between them). The reference row has NaNs.
    """
    ref = table[table["bn_mode"] == reference].set_index("seed")
    rows = []
    for mode, g in table.groupby("bn_mode", sort=False):
        g = g.set_index("seed")
        seeds = sorted(set(g.index) & set(ref.index))
        row = {"bn_mode": mode, "seeds": len(seeds), "val_auc": float(g["val_auc"].mean()),
               "test_auc": float(g["test_auc"].mean()), "collapsed_runs": int(g["collapsed"].sum()),
               "delta": math.nan, "lo": math.nan, "hi": math.nan, "p": math.nan, "val_delta": math.nan,
               "val_tied": False}
        if mode != reference and seeds:
            res = two_level_bootstrap(np.asarray(ref["test_labels"].iloc[0], dtype=int),
                                      [np.asarray(s, dtype=float) for s in g.loc[seeds, "test_scores"]],
                                      paired_with=[np.asarray(s, dtype=float) for s in ref.loc[seeds, "test_scores"]],
                                      n_boot=n_boot, seed=seed)
            val_delta = float(g.loc[seeds, "val_auc"].mean() - ref.loc[seeds, "val_auc"].mean())
            row.update(delta=res["mean"], lo=res["lo"], hi=res["hi"], p=res["p"], val_delta=val_delta,
                       val_tied=abs(val_delta) <= 1e-9)
        rows.append(row)
    return pd.DataFrame(rows)
