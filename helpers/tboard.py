"""Runs in TensorBoard: a results store exported for the HParams view, and training curves logged live.

``ftlab sweep tensorboard STORE OUT`` (:func:`export_store`) writes every stored run of a results store
(:mod:`helpers.store`: grid runs and rate-tuning runs alike) as one TensorBoard run, ``OUT/<run name>``
(:func:`run_name`), holding

- its hyperparameters, through the HParams plugin's summary API: data set, network, the strategy asked for and
  the level it resolved to, training fraction and size, seed, rate, budget... (:data:`HPARAMS`, those the run's
  row has);
- its final figures as scalars: every test and validation figure of the row (``test_auc``, ``val_score``...;
  interval ends left out) and its wall time (:func:`metrics_of`);
- its validation curve by SGD step (``val/auc``; ``val/<metric>`` for detection and segmentation), where the
  row stores one.

``OUT`` itself gets the experiment's configuration (each hyperparameter that differs between runs, with the
values it takes in the store, and each metric), so that ``tensorboard --logdir OUT`` opens on a table, a
parallel-coordinates and a scatter view that compare the arms run by run. A hyperparameter with one value in
the whole store (the network, the budget...) is no column there; each run's own record still holds it.

Live curves: with ``TrainConfig(tensorboard_dir=DIR)`` (``fit(model, data, tensorboard_dir=DIR)``) the engine
writes the training loss, the validation AUC and loss and the head's rate at every validation check into
``DIR``; ``ftlab sweep run --tensorboard DIR`` (:class:`Logged`) does so for every run of a sweep, each into
``DIR/<run name>``, the name the export gives the same run. A run that trains more than once (``auto``
tries several depths; detection retrains after mining hard negatives) writes its later fits into
``fit2``, ``fit3``... below its folder. Off by default: nothing is imported and nothing is written then.

Both need the ``tensorboard`` package (``pip install -e .[tensorboard]``); :func:`require` says so when it is
missing.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pandas as pd

HPARAMS = ("task", "dataset", "arch", "requested", "strategy", "level", "fraction", "n_train", "seed", "lr_used",
           "steps", "batch_size", "patience", "eval_every", "bn_mode_used", "augment", "balance", "val_share",
           "image_size", "precision", "diverged")
"""Row fields shown as hyperparameters, in this order (those a row has; ``requested`` is the strategy asked for,
``strategy`` the level it resolved to)."""

EXTRA_METRICS = ("best_step", "iterations", "wall_s")
"""Row fields shown as metrics besides the test and validation figures."""

NOT_METRICS = ("test_n", "val_share", "test_frames", "test_polyps", "test_sequences", "val_frames", "test_one_empty")
"""``test_*`` / ``val_*`` fields that are settings or counts, not figures."""

CURVE_TAG = "val/{metric}"
"""The validation curve's scalar tag: ``val/auc`` for classification, as the live curve's."""


def require() -> None:
    """Raise ``ModuleNotFoundError`` saying how to install TensorBoard when it is missing."""
    try:
        import tensorboard  # noqa: F401  (deferred: an optional extra, needed only here)
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("TensorBoard is not installed: pip install -e '.[tensorboard]' "
                                  "(or pip install tensorboard) to export or log runs for it.") from err


def _writer(folder: Path):
    """A ``torch.utils.tensorboard.SummaryWriter`` writing into ``folder``."""
    require()
    from torch.utils.tensorboard import SummaryWriter  # deferred: needs the optional tensorboard package
    return SummaryWriter(str(folder))


def run_name(values: Mapping[str, Any]) -> str:
    """A run's folder name, the same from its stored row and from its config (:func:`config_values`): data set,
    strategy asked for, training fraction, seed, rate and the first 8 digits of its hash
    (``pneumoniamnist-last-f0.5-seed1-lr0.001-084d3f94``)."""
    dataset = Path(str(values.get("dataset", ""))).name   # a polyp folder's path: its name
    parts = [dataset, str(values["requested"]), f"f{float(values['fraction']):g}", f"seed{int(values['seed'])}",
             f"lr{float(values['lr_used']):g}", str(values["config_hash"])[:8]]
    return re.sub(r"[^A-Za-z0-9._@+-]+", "_", "-".join(p for p in parts if p))


def config_values(config) -> dict:
    """What :func:`run_name` reads, from a run config (:class:`helpers.runner.RunIdentity`) before it runs."""
    return {**config.flat(), "requested": config.strategy, "lr_used": config.learning_rate(),
            "config_hash": config.key()}


def _plain(value: Any) -> Any:
    """A hyperparameter value TensorBoard takes (str, bool, int, float), or None for a missing one."""
    if hasattr(value, "item"):   # NumPy scalars
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def hparams_of(row: Mapping[str, Any]) -> dict:
    """The run's hyperparameters (:data:`HPARAMS` the row has, missing values left out)."""
    values = {k: _plain(row.get(k)) for k in HPARAMS}
    return {k: v for k, v in values.items() if v is not None}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metrics_of(row: Mapping[str, Any]) -> dict[str, float]:
    """The run's final figures: every finite number among its ``test_*`` and ``val_*`` fields (interval ends
    ``*_lo`` / ``*_hi``, settings and counts, :data:`NOT_METRICS`, left out) and :data:`EXTRA_METRICS`."""
    out = {}
    for key, value in row.items():
        value = _plain(value)
        figure = key.startswith(("test_", "val_")) and not key.endswith(("_lo", "_hi")) and key not in NOT_METRICS
        if (figure or key in EXTRA_METRICS) and _is_number(value):
            out[key] = float(value)
    return out


def curve_of(row: Mapping[str, Any]) -> list[tuple[int, float]]:
    """The stored validation curve as (step, value) pairs (empty when the row has none)."""
    curve = row.get("curve")
    if not isinstance(curve, (list, tuple)):
        return []
    return [(int(p[0]), float(p[1])) for p in curve
            if isinstance(p, (list, tuple)) and len(p) == 2 and _is_number(_plain(p[1]))]


def _domains(rows: list[dict]) -> dict[str, list]:
    """Each hyperparameter's values across the runs (sorted), when all are of one kind: a discrete domain."""
    values: dict[str, set] = {}
    for row in rows:
        for k, v in row.items():
            values.setdefault(k, set()).add(v)
    domains = {}
    for k, vs in values.items():
        kinds = {bool if isinstance(v, bool) else str if isinstance(v, str) else float for v in vs}
        if len(kinds) == 1:
            domains[k] = sorted(float(v) if kinds == {float} else v for v in vs)
    return domains


def export_table(table: pd.DataFrame, out: str | Path) -> list[Path]:
    """Write every row of a results table (:meth:`helpers.store.ResultsStore.load`) as one TensorBoard run
    under ``out`` (see the module docstring); returns the run folders, in the table's order."""
    require()
    from tensorboard.plugins.hparams import summary_v2 as hp  # deferred: the optional tensorboard package
    out = Path(out)
    rows = [dict(r) for r in table.to_dict("records")]
    hparams = [hparams_of(r) for r in rows]
    metrics = [metrics_of(r) for r in rows]
    domains = _domains(hparams)
    shown = [k for k in HPARAMS if any(k in h for h in hparams)]
    varied = [k for k in shown if len({str(h.get(k)) for h in hparams}) > 1]
    order = varied or shown   # a column that holds one value in every run tells nothing apart
    metric_names = sorted({m for ms in metrics for m in ms})
    config = hp.hparams_config_pb(
        hparams=[hp.HParam(k, hp.Discrete(domains[k]) if k in domains else None) for k in order],
        metrics=[hp.Metric(m) for m in metric_names])
    with _writer(out) as root:   # the experiment: every hyperparameter and metric, for the HParams view
        root.file_writer.add_summary(config)
    written = []
    for row, params, figures in zip(rows, hparams, metrics):
        folder = out / run_name(row)
        with _writer(folder) as writer:
            writer.file_writer.add_summary(hp.hparams_pb(params, trial_id=folder.name))
            for name, value in figures.items():
                writer.add_scalar(name, value, 0)
            tag = CURVE_TAG.format(metric=row.get("val_metric") or "auc")
            for step, value in curve_of(row):
                writer.add_scalar(tag, value, step)
        written.append(folder)
    return written


def export_store(store, out: str | Path) -> list[Path]:
    """``ftlab sweep tensorboard STORE OUT``: every stored run of a results store (a folder or a
    :class:`helpers.store.ResultsStore`) as one TensorBoard run under ``out`` (:func:`export_table`); returns the
    run folders."""
    from .store import ResultsStore   # deferred: the results layer sits above the engine, which imports this module
    results = store if isinstance(store, ResultsStore) else ResultsStore(store)
    if not results.done():
        raise FileNotFoundError(f"{results.folder} holds no finished runs (a results store has runs/*.row.json).")
    return export_table(results.load(), out)


# ----------------------------------------------------------------------------- live curves

@dataclass
class _LiveFolder:
    """Where the fits of one run log (set by :func:`logging_into`); counts them, so each fit gets its own run."""
    folder: Path
    fits: int = field(default=0)

    def next(self) -> Path:
        self.fits += 1
        return self.folder if self.fits == 1 else self.folder / f"fit{self.fits}"


_LIVE: contextvars.ContextVar[_LiveFolder | None] = contextvars.ContextVar("ftlab_tensorboard", default=None)


@contextlib.contextmanager
def logging_into(folder: str | Path) -> Iterator[None]:
    """Every :func:`helpers.train.fit` inside the block logs its curves into ``folder`` (later fits into
    ``folder/fit2``...), whatever its config says."""
    require()
    token = _LIVE.set(_LiveFolder(Path(folder)))
    try:
        yield
    finally:
        _LIVE.reset(token)


@contextlib.contextmanager
def live_curves(folder: str | Path | None) -> Iterator[Callable[[dict], None] | None]:
    """The engine's live log: yields None when neither ``folder`` (``TrainConfig.tensorboard_dir``) nor an
    enclosing :func:`logging_into` asks for one (nothing imported, nothing written), else a function that
    writes one validation check's row of :attr:`helpers.train.TrainResult.history` as scalars by step:
    ``train/loss``, ``val/auc``, ``val/loss``, ``train/head_lr``."""
    live = _LIVE.get()
    if folder is None and live is None:
        yield None
        return
    writer = _writer(Path(folder) if folder is not None else live.next())

    def log(check: dict) -> None:
        step = int(check["step"])
        writer.add_scalar("train/loss", check["train_loss"], step)
        writer.add_scalar("val/auc", check["val_auc"], step)
        writer.add_scalar("val/loss", check["val_loss"], step)
        writer.add_scalar("train/head_lr", check["head_lr"], step)
        writer.flush()   # live: TensorBoard shows each check as it comes

    try:
        yield log
    finally:
        writer.close()


class Logged:
    """A sweep's ``run_fn`` whose runs log their curves live into ``folder/<run name>`` (:func:`run_name`).

    Picklable (a module-level class holding a path and a module-level function or None), so process pools,
    Dask and submitit ship it with each run; ``run_fn`` None runs the config's own ``run`` method."""

    def __init__(self, folder: str | Path, run_fn: Callable | None = None) -> None:
        self.folder, self.run_fn = Path(folder), run_fn

    def __call__(self, config) -> dict:
        with logging_into(self.folder / run_name(config_values(config))):
            return (self.run_fn or type(config).run)(config)
