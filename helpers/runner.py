"""The generic sweep machinery both applications use (classification in :mod:`helpers.experiments`,
polyp detection in :mod:`helpers.detection`): run identities and their hashes, resumable sweeps over any
executor, and learning rates tuned on validation data.

A run config is a frozen dataclass deriving from :class:`RunIdentity`, with at least ``strategy``,
``lr`` (None: tuned or defaulted), ``seed`` and ``fraction`` fields and a ``run`` method (one result row).
Each run is ``run_fn(config) -> dict`` (a result row), so runs can go to a process pool
(:func:`local_pool`), Dask (``Client(...).get_executor()``) or submitit (a Slurm job array) without
changing the runner. The worker that runs a config stores its row in a results store
(:mod:`helpers.store`: one atomically written record per run, shared safely by any number of processes
and machines): a sweep killed at any moment (even ``kill -9``) loses at most the runs in progress and
resumes where it stopped. A row is keyed by the hash of every meaningful field of its config, so a
changed config is never answered with a stale result.
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import platform
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, ClassVar, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torchvision
from .progress import about, tqdm

from . import __version__
from .recipe import PAPER, default_rate, rate_family
from .schema import SELECT_BY
from .store import Results, ResultsStore, StoreWriter, open_results
from .budget import BUDGET_FIELDS, TrainBudget
from .env import seed_everything
from .tuning import choose_rate

SCHEMA_VERSION = 5   # 5: BatchNorm "auto" by default (ImageNet statistics kept when pretrained); rates tuned over seeds
DEFAULT_BUDGET = TrainBudget()
MIN_TUNE_VAL = 10    # validation images a run needs before its rate is tuned; below: the recipe's default rate

class RunIdentity:
    """What every run config shares: a training budget (``budget``, a :class:`helpers.train.TrainBudget`), a flat
    view of its fields (:meth:`flat`: the hash's payload and the result row's columns), a stable hash of that
    view (:meth:`key`) and its rate.

    ``budget_fields`` names the budget fields the application reads; they are part of the run's identity. The
    others must stay at the budget's defaults (a detection run has no early stopping: setting its ``patience``
    would change nothing, so it is refused rather than silently ignored).
    """

    budget_fields: ClassVar[tuple[str, ...]] = BUDGET_FIELDS
    late_fields: ClassVar[tuple[str, ...]] = ()   # fields older rows lack (their default then): :meth:`from_row`

    def __post_init__(self) -> None:
        unused = {k for k in BUDGET_FIELDS if k not in self.budget_fields
                  and getattr(self.budget, k) != getattr(DEFAULT_BUDGET, k)}
        if unused:
            raise ValueError(f"{type(self).__name__} does not read budget field(s) {sorted(unused)}: they would change "
                             f"nothing. It reads {list(self.budget_fields)}; leave the others at their defaults.")

    def flat(self) -> dict:
        """The config's fields with the budget's read fields beside them (not nested): the hash's payload
        and the columns of its result row."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "budget"}
        values.update({k: getattr(self.budget, k) for k in self.budget_fields})
        return values

    @classmethod
    def from_flat(cls, **values):
        """The config of a flat view (:meth:`flat`, a row, or keyword arguments with budget fields beside the
        others): budget fields go into ``budget``, on top of the class's default budget."""
        default = next(f.default for f in fields(cls) if f.name == "budget")
        changes = {k: values.pop(k) for k in list(values) if k in BUDGET_FIELDS}
        budget = values.pop("budget", default)
        return cls(budget=replace(budget, **changes), **values)

    @classmethod
    def from_row(cls, row):
        """The config of a result row (a dict or a table's row), its own identity: ``from_row(row).key()`` is
        the row's ``config_hash`` (checked), e.g. to reload that run's network. A row's ``strategy`` is the
        resolved level name; the config asked for ``requested``."""
        types = {f.name: str(f.type) for f in fields(cls) if f.name != "budget"}
        types.update({f.name: str(f.type) for f in fields(TrainBudget) if f.name in cls.budget_fields})
        # a field added after rows were stored (absent from them, or blank in a table mixing old and new rows): its default
        values = {name: _typed(row[name], kind) for name, kind in types.items()
                  if name not in cls.late_fields or (name in row and not _blank(row[name]))}
        if "requested" in row:
            values["strategy"] = str(row["requested"])
        config = cls.from_flat(**values)
        if "config_hash" in row and config.key() != row["config_hash"]:
            raise ValueError(f"row {row['config_hash']} does not rebuild to its own config (got {config.key()}): "
                             f"it was written by another version of {cls.__name__}")
        return config

    def with_budget(self, **changes):
        """The same run with some budget fields changed (``config.with_budget(steps=240)``)."""
        return replace(self, budget=replace(self.budget, **changes))

    def key(self) -> str:
        """A stable hash of the flat view (and the result schema's version)."""
        return config_hash(self)

    def learning_rate(self) -> float:
        """The rate the run uses: its own ``lr``, else the recipe's default for its strategy."""
        return self.lr if self.lr is not None else default_rate(self.strategy)

    def validation_size(self) -> int | None:
        """How many validation images the run will have (None: unknown, never too few to tune on)."""
        return None


def _blank(value) -> bool:
    """A missing cell: None, or NaN (a column another row has)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _typed(value, kind: str):
    """A row's cell as its config field's type (``kind``, the annotation as text): None for an empty cell of
    an optional field, tuples for tuples (a store gives lists), numbers and flags as themselves."""
    if value is None or (isinstance(value, float) and math.isnan(value) and "None" in kind):
        return None
    if kind.startswith("tuple"):
        return tuple(int(x) if float(x).is_integer() else float(x) for x in value)
    for name, cast in (("bool", bool), ("int", int), ("float", float)):
        if kind.startswith(name):
            return cast(value)
    return str(value)


def sweep_grid(config_type: type, part, strategies: Sequence[str] | None = None,
               fractions: Sequence[float] | None = None, seeds: Sequence[int] | None = None, **fixed) -> list:
    """The one mapping from a profile's part to a grid: every strategy x fraction x seed (the part's own unless
    given) as ``config_type`` runs, with every field of ``part`` named like a field of ``config_type`` (its
    ``budget`` included) taken over as it is, and ``fixed`` on top (``dataset=``, ``arch=``, budget fields flat:
    ``steps=``). Notebooks 04-07, the sweep command line and the GPU slice build their grids here. ``part`` None:
    the config's own defaults (then strategies, fractions and seeds must be given)."""
    names = {f.name for f in fields(config_type)} - {"strategy", "fraction", "seed"}
    shared = {} if part is None else {f.name: getattr(part, f.name) for f in fields(part) if f.name in names}
    return [config_type.from_flat(**{**shared, **fixed, "strategy": s, "fraction": float(f), "seed": int(r)})
            for s in (strategies or part.strategies) for f in (fractions or part.fractions)
            for r in (seeds or part.seeds)]


def too_small_to_tune(config: RunIdentity) -> bool:
    """Whether ``config``'s validation set is below :data:`MIN_TUNE_VAL` images: an AUC on so few images
    takes a handful of values (2 images: 0, 0.5 or 1), so a rate chosen on it is chosen by chance."""
    n = config.validation_size()
    return n is not None and n < MIN_TUNE_VAL


def config_hash(config: RunIdentity) -> str:
    """sha1 of the config's flat view (:meth:`RunIdentity.flat`: its fields and the budget fields it reads, not
    nested, so composing the budget changed no stored key), the rate it resolves to and the fixed recipe
    (sorted JSON); 16 hex digits."""
    values = config.flat() if isinstance(config, RunIdentity) else asdict(config)
    for f in fields(config):   # equal configs, equal hashes: fraction=1 == fraction=1.0
        if f.name in values and "float" in str(f.type) and isinstance(values[f.name], int) \
                and not isinstance(values[f.name], bool):
            values[f.name] = float(values[f.name])
    resolved = {"resolved_lr": float(config.learning_rate())} if hasattr(config, "learning_rate") else {}
    payload = json.dumps({"schema": SCHEMA_VERSION, "type": type(config).__name__, "recipe": PAPER.fixed_parts(),
                          **resolved, **values}, sort_keys=True, default=str)
    return hashlib.sha1(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Application:
    """What one application (classification, detection, segmentation) supplies to the one run skeleton,
    :func:`execute`; the skeleton does the rest (time, seed and threads, the diverged row, the shared columns,
    versions and the finishing time). The core imports no application: each builds its own.

    - ``prepare(config) -> data``: the run's data (frames, patches, windows, images);
    - ``build(config, data) -> built``: the network at its depth (called right after the run's seed and threads
      are set, so the initial weights depend on the config only);
    - ``fit(config, data, built, quiet) -> trained``: training; raises ``FloatingPointError`` when it diverges;
    - ``score(config, data, built, trained) -> dict``: the row's own fields (``val_score`` and the test figures);
    - ``failed(config, data, built) -> dict``: a diverged row's own fields (what is known without training);
    - ``save(config, data, built, trained, row, where) -> dict``: optional, fields to add after saving.
    """

    task: str
    metric: str            # what ``val_score`` is: auc, froc_score or dice
    prepare: Callable
    build: Callable
    fit: Callable
    score: Callable
    failed: Callable
    save: Callable | None = None


def base_row(config: RunIdentity, task: str, metric: str) -> dict:
    """The columns every run row starts with: the config's flat view, its hash, the task, the strategy asked for,
    the rate used and what ``val_score`` is (:mod:`helpers.schema`)."""
    return {**config.flat(), "config_hash": config.key(), "task": task, "requested": config.strategy,
            "lr_used": config.learning_rate(), "val_metric": metric}


def stamp(row: dict, started: float) -> dict:
    """``row`` with its wall time since ``started`` (``time.perf_counter()``), library versions and finishing time."""
    return {**row, "wall_s": time.perf_counter() - started, "versions": versions(),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S")}


def execute(app: Application, config: RunIdentity, quiet: bool = True, where: str | Path | None = None) -> dict:
    """One run of any application: prepare, seed, build, fit, score, stamp, save. A run whose training diverges
    (``FloatingPointError``, :class:`helpers.train.TrainingDivergedError` included) returns a row with ``diverged``
    True, ``val_score`` NaN and the engine's message in ``note``: rate tuning never chooses it and summaries
    leave it out. ``where``: a folder the application's ``save`` writes the trained network into."""
    started = time.perf_counter()
    data = app.prepare(config)
    seed_everything(config.seed, config.threads)
    built = app.build(config, data)
    try:
        trained = app.fit(config, data, built, quiet)
    except FloatingPointError as err:
        return stamp({**base_row(config, app.task, app.metric), "val_score": math.nan, "val_loss": math.nan,
                      "collapsed": False, "diverged": True, "note": str(err), **app.failed(config, data, built)},
                     started)
    row = stamp({**base_row(config, app.task, app.metric), "diverged": False,
                 **app.score(config, data, built, trained)}, started)
    if where is not None and app.save is not None:
        row.update(app.save(config, data, built, trained, row, where))
    return row


def versions() -> str:
    """Library versions that can change a result."""
    return (f"ftlab {__version__}; torch {torch.__version__}; torchvision {torchvision.__version__}; "
            f"numpy {np.__version__}; python {platform.python_version()}")


def _completed(handles: dict) -> Iterable:
    """Yield the handles as they finish: ``concurrent.futures`` (process pools, Dask's executor) or
    submitit jobs (whose ``Job`` is no Future: submitit's own helper waits on them)."""
    if all(isinstance(h, Future) for h in handles):
        yield from as_completed(handles)
        return
    from submitit.helpers import as_completed as jobs_completed  # only a submitit executor gets here
    yield from jobs_completed(list(handles), poll_frequency=1)


def _run_pending(configs: list, results: Results, run_fn: Callable, executor: Executor | None,
                 progress: bool, desc: str) -> list[tuple]:
    """Run the configs whose hash is not stored yet; with a store, each worker stores its own row.

    Returns the failures as (config, error); finished runs are stored whatever else fails.
    """
    keys = {c.key() for c in configs}
    if isinstance(results, ResultsStore):
        results.verify(keys)          # a damaged record is set aside (with a warning) and its run redone
    done = results.done()
    unique = {c.key(): c for c in configs}
    pending = [c for k, c in unique.items() if k not in done]
    if progress and pending:
        print(f"{desc}: {len(pending)} to train, {len(unique) - len(pending)} of {len(unique)} already stored", flush=True)
    bar = tqdm(total=len(pending), desc=desc, disable=not progress or not pending)
    writer = StoreWriter(results, run_fn)
    failures = []
    if progress and len(pending) > 1:   # the first run here, timed: the estimate costs no extra training
        pending, failures = pending[1:], _timed_first(writer, pending[0], len(pending) - 1, executor)
        bar.update(1)
    if executor is None:
        for config in pending:
            writer(config)
            bar.update(1)
        bar.close()
        return failures
    # A store takes rows from every worker at once; the single-file CSV table only from this process.
    in_worker = isinstance(results, ResultsStore)
    handles = {executor.submit(writer if in_worker else run_fn, config): config for config in pending}
    for handle in _completed(handles):
        try:
            value = handle.result()
            if not in_worker:
                results.append(value)
        except Exception as err:  # keep the finished runs; report the failed ones at the end
            failures.append((handles[handle], err))
        bar.update(1)
    bar.close()
    return failures


def _timed_first(writer: StoreWriter, config, n_rest: int, executor: Executor | None) -> list[tuple]:
    """Run ``config`` in this process and print an estimate of the other ``n_rest`` runs from its time (one run:
    deeper levels and the first run's loading make it rough, and it says so). Returns its failure, if any."""
    started = time.perf_counter()
    try:
        writer(config)
    except Exception as err:
        return [(config, err)]
    seconds = time.perf_counter() - started
    workers = 1 if executor is None else getattr(executor, "_max_workers", None)
    how = f"{workers} worker{'s' if workers != 1 else ''}" if workers else "per worker"
    print(f"  the first run took {seconds:.1f} s on this machine: about {about(seconds * n_rest / (workers or 1))} "
          f"for the other {n_rest} ({how}; "
          "an estimate from one run, the first one also loads the data)", flush=True)
    return []


def _raise_failures(failures: list[tuple]) -> None:
    if failures:
        config, err = failures[0]
        raise RuntimeError(f"{len(failures)} run(s) failed (finished runs were kept; run the sweep again to "
                           f"retry them); the first: {config} -> {err!r}") from err


def _group(config: RunIdentity) -> str:
    """What a tuned rate is shared by: everything but the rate, the seed and the fraction."""
    return replace(config, lr=None, seed=0, fraction=1.0).key()


def rate_trials(configs: Sequence[RunIdentity], lr_grid: dict[str, Sequence[float]],
                tune_fractions: Sequence[float] | None = None) -> list[RunIdentity]:
    """The tuning runs: each strategy (with ``lr`` None) at each tuning fraction, every seed, every rate.

    ``lr_grid`` maps ``scratch`` / ``finetune`` (see :func:`rate_family`) to the rates to try.
    ``tune_fractions`` default to the smallest and the largest fraction of the sweep whose runs have
    enough validation images (:func:`too_small_to_tune`); runs below that get the recipe's default rate.
    Every seed is tuned, so the choice rests on the mean validation score over seeds, not on one
    seed's validation images; the tuning run with the chosen rate is the sweep's own run for that seed.
    """
    untuned = [c for c in configs if c.lr is None and not too_small_to_tune(c)]
    if not untuned:
        return []
    trials = {}
    for config in untuned:
        fractions = tune_fractions or (min(c.fraction for c in untuned), max(c.fraction for c in untuned))
        for fraction in fractions:
            for lr in lr_grid[rate_family(config.strategy)]:
                trial = replace(config, fraction=float(fraction), lr=float(lr))
                if not too_small_to_tune(trial):
                    trials[trial.key()] = trial
    return list(trials.values())


def _chosen_rates(table: pd.DataFrame, trials: Sequence[RunIdentity]) -> pd.DataFrame:
    """One row per tuning run (strategy, fraction, seed, lr, validation score and loss, collapsed) with
    ``chosen`` marking the rate picked for its (strategy, fraction): the best *mean* validation score over
    seeds, then the lower mean validation loss (:func:`helpers.tuning.choose_rate` on the means; a rate
    that diverged for any seed is never chosen, nor one whose validation scores collapsed for any seed
    unless every rate's did: a collapsed seed's AUC is noise and would enter the mean).
    Test columns are never read."""
    rows = select(table, trials)
    if rows.empty:
        return pd.DataFrame()
    keys = {c.key(): _group(c) for c in trials}
    columns = ["requested", "strategy", "fraction", "n_train", "seed", "lr", "val_score", "val_metric", "val_loss",
               "val_collapsed", "collapsed", "diverged"]
    out = _with_flags(rows.reindex(columns=columns).copy())
    out["group"] = rows["config_hash"].map(keys)
    out["chosen"] = False
    for _, g in out.groupby(["group", "fraction"]):
        out.loc[g.index, "chosen"] = g["lr"] == _best_rate(g)
    return out.reset_index(drop=True)


def _with_flags(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` with ``diverged`` and ``val_collapsed`` as plain bools (missing: False)."""
    return rows.assign(**{c: (rows[c] if c in rows else pd.Series(False, index=rows.index))
                          .astype("boolean").fillna(False).astype(bool) for c in ("diverged", "val_collapsed")})


def _best_rate(runs: pd.DataFrame) -> float:
    """The rate :func:`helpers.tuning.choose_rate` picks from the per-rate means over seeds of one cell's runs
    (``lr``, ``val_score``, ``val_loss``, ``diverged``, ``val_collapsed``)."""
    means = runs.groupby("lr").agg(val_score=("val_score", "mean"), val_loss=("val_loss", "mean"),
                                   diverged=("diverged", "any"), val_collapsed=("val_collapsed", "any"))
    return choose_rate(means.reset_index(), score=SELECT_BY)


def _with_rates(configs: Sequence[RunIdentity], rates: pd.DataFrame) -> list[RunIdentity]:
    """Each untuned config with the rate chosen at the tuning fraction nearest its own (log scale), or the
    recipe's default rate when its validation set is too small to tune on (:func:`too_small_to_tune`)."""
    picked = rates[rates["chosen"]] if len(rates) else rates
    out = []
    for config in configs:
        if config.lr is not None:
            out.append(config)
            continue
        mine = picked[picked["group"] == _group(config)] if len(picked) else picked
        if too_small_to_tune(config) or mine.empty:
            out.append(replace(config, lr=float(default_rate(config.strategy))))
            continue
        nearest = mine.iloc[int(np.argmin(np.abs(np.log(mine["fraction"].to_numpy(float)) - math.log(config.fraction))))]
        out.append(replace(config, lr=float(nearest["lr"])))
    return out


def resolved_configs(configs: Sequence[RunIdentity], results_path: str | Path | Results,
                     lr_grid: dict[str, Sequence[float]] | None, tune_fractions: Sequence[float] | None = None
                     ) -> list[RunIdentity] | None:
    """The configs with their tuned rates filled in, once every tuning run is stored (else None)."""
    if not lr_grid or all(c.lr is not None for c in configs):
        return list(configs)
    results = open_results(results_path)
    trials = rate_trials(configs, lr_grid, tune_fractions)
    if not {t.key() for t in trials} <= results.done():
        return None
    return _with_rates(configs, _chosen_rates(results.load({t.key() for t in trials}), trials))


def run_sweep(configs: Iterable, results_path: str | Path | Results, run_fn: Callable | None = None,
              executor: Executor | None = None, progress: bool = True,
              lr_grid: dict[str, Sequence[float]] | None = None,
              tune_fractions: Sequence[float] | None = None) -> pd.DataFrame:
    """Run every config not yet stored, storing each row as it finishes; return the configs' rows.

    ``run_fn(config) -> dict`` makes one result row (default: the configs' own ``run`` method, e.g.
    :meth:`helpers.experiments.RunIdentity.run`).

    ``results_path`` is a results store folder (:class:`helpers.store.ResultsStore`: any number of
    processes and machines may write into one at once), a ``.csv`` path (the older single-file table)
    or either object. Finished runs (same hash) are skipped, so re-running a sweep resumes it. With
    ``executor`` (a process pool such as :func:`local_pool`, Dask's ``Client.get_executor()``, or a
    submitit executor) each run goes to a worker, which stores its own row; without one they run one
    by one here with a progress bar over runs. Failed runs are reported at the end, after every other
    run has finished and been stored.

    With ``lr_grid`` every config whose ``lr`` is None gets a tuned rate: first the tuning runs of
    :func:`rate_trials` (every rate of its family's grid, at ``tune_fractions``, every seed), then the
    rate with the best mean *validation* AUC over seeds is used at the nearest tuning fraction. Runs
    whose validation set is below :data:`MIN_TUNE_VAL` images get the recipe's default rate instead. The
    tuning runs with the chosen rate are the sweep's own runs for that cell (same hash), so tuning costs
    only the other rates. The returned table's ``attrs["rates"]`` holds the tuning table
    (:func:`_chosen_rates`) as records: ``pd.DataFrame(df.attrs["rates"])``.
    """
    configs = list(configs)
    run_fn = run_fn or (type(configs[0]).run if configs else None)
    results = open_results(results_path)
    rates = pd.DataFrame()
    if lr_grid:
        trials = rate_trials(configs, lr_grid, tune_fractions)
        _raise_failures(_run_pending(trials, results, run_fn, executor, progress, "rate tuning runs"))
        rates = _chosen_rates(results.load({t.key() for t in trials}), trials)
        configs = _with_rates(configs, rates)
    _raise_failures(_run_pending(configs, results, run_fn, executor, progress, "runs"))
    out = select(results.load({c.key() for c in configs}), configs)
    out.attrs["rates"] = Records(rates.to_dict("records"))
    return out


class Records(tuple):
    """A table's records kept in a frame's ``attrs`` (``pd.DataFrame(records)`` rebuilds the table).

    pandas deep-copies ``attrs`` into every frame and series derived from the frame, at every operation:
    a list of hundreds of dicts there made notebook 04's analysis cells minutes long. A tuple that deep-copies
    to itself costs nothing to carry, and compares by value where pandas compares attrs (on concat). Its
    records are not to be changed in place: copy one first."""

    def __deepcopy__(self, memo: dict) -> "Records":
        return self


def _single_torch_thread() -> None:
    """Worker initialiser: one torch thread per process (two workers share two cores without contention)."""
    torch.set_num_threads(1)


@contextmanager
def pool(workers: int) -> Iterator[Executor | None]:
    """``with runner.pool(WORKERS) as executor:``: a :func:`local_pool` of ``workers`` processes, or None for
    one worker (the runs then train in this process), shut down when the block ends; on an error (Ctrl-C included)
    the runs not started yet are cancelled, so the error shows at once (every finished run is stored)."""
    executor = local_pool(workers) if workers > 1 else None
    try:
        yield executor
    except BaseException:   # Ctrl-C or a failure: the queued runs are dropped, not trained before the error shows
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        raise
    if executor is not None:
        executor.shutdown()


def local_pool(workers: int = 2) -> Executor:
    """A process pool for independent runs that is safe after CUDA was initialised (spawn, not fork),
    one torch thread per worker. Small runs on a 2-core CPU finish about 1.5x sooner in two workers."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_single_torch_thread)


def select(table: pd.DataFrame, configs: Iterable) -> pd.DataFrame:
    """Only the rows whose hash belongs to ``configs`` (stale rows of changed configs are ignored), in the
    order of ``configs`` (never in the order the workers finished: same configs, same table)."""
    keys = list(dict.fromkeys(c.key() for c in configs))
    if table.empty:
        return table
    kept = table[table["config_hash"].isin(keys)].drop_duplicates("config_hash", keep="last")
    order = {k: i for i, k in enumerate(keys)}
    return kept.sort_values("config_hash", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)


SETTING_KEYS = ("dataset", "arch", "steps", "patience", "min_steps", "batch_size", "image_size", "bn_mode",
                "max_train", "max_eval", "data_size", "decay_steps", "split_seed", "frame_size", "frame_step",
                "max_train_frames", "max_val_frames", "max_test_frames", "patch", "hard_steps", "per_class", "stride",
                "band_share", "threads", "intensity")
"""Config fields that set a sweep's budget: :func:`sweep_rows` keeps the runs of the store's most common setting."""


def sweep_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows a sweep with tuned rates returned, recovered from its store alone (no configs at hand).

    A store holds the sweep's runs and its rate-tuning runs, and may hold runs of another budget beside them
    (notebook 04's check at twice the steps): only the most common setting of :data:`SETTING_KEYS` is kept.
    Where a (strategy, fraction) cell holds runs at several rates, the rate is chosen as :func:`run_sweep` chose it (the best mean validation AUC over seeds,
    then the lower mean validation loss, never a rate that diverged or collapsed for a seed:
    :func:`helpers.tuning.choose_rate`) and only its runs are kept. Raises ``ValueError`` when a strategy,
    fraction and seed still hold more than one run: the store then mixes runs of different settings (two
    profiles, say) and needs the configs (:func:`select`) to be read.
    """
    if table.empty:
        return table
    settings = [k for k in SETTING_KEYS if k in table.columns]
    if settings:   # the sweep is the most common setting; a few longer runs (a budget check) are not part of it
        as_text = table[settings].map(str).agg("|".join, axis=1)   # map(str): missing values become "nan" too
        table = table[as_text == as_text.mode().iloc[0]]
    keep = []
    for _, cell in table.groupby(["strategy", "fraction"], sort=False):
        if cell["lr"].nunique() > 1:
            cell = cell[cell["lr"] == _best_rate(_with_flags(cell))]
        keep.append(cell)
    out = pd.concat(keep)
    clash = out.duplicated(["strategy", "fraction", "seed"], keep=False)
    if clash.any():
        first = out[clash].iloc[0]
        raise ValueError(f"The store holds {int(clash.sum())} runs that share a strategy, fraction and seed (e.g. "
                         f"{first['strategy']} at {first['fraction']:g}, seed {first['seed']}) with different settings: "
                         "it mixes sweeps (two profiles?). Give each sweep its own store, or read it with "
                         "runner.select(table, configs).")
    return out.reset_index(drop=True)

