"""The command line for sweeps that outgrow a notebook: ``ftlab sweep`` (also ``python -m helpers.sweep``, ``ftlab-sweep``).

    ftlab sweep plan        --store results/pneumonia --profile full --datasets pneumoniamnist
    ftlab sweep run         --store results/pneumonia --profile full --datasets pneumoniamnist \\
                            --executor local --workers 2 [--tensorboard runs/live]
    ftlab sweep run         ... --executor dask://scheduler-host:8786
    ftlab sweep run         ... --executor slurm --partition gpu --time-min 120 --gpus 1
    ftlab sweep summary     --store results/pneumonia --profile full --datasets pneumoniamnist
    ftlab sweep tensorboard results/pneumonia runs/pneumonia     # then: tensorboard --logdir runs/pneumonia

The grid is the profile's (strategies x fractions x seeds, its step budget and rate grids) for each data
set, with any of ``--strategies --fractions --seeds --steps`` overriding it. ``plan`` (and ``run``, before
it starts) prints how many runs the grid has, how many the store already holds, and an estimate of the
rest from a short probe run on this device. ``run`` resumes whatever is missing (run it again after a
crash or a killed job) and ends with the summary table of each data set; ``summary`` prints it again
(give it the same grid options as ``run``: the store also holds the rate-tuning runs). Every worker writes its own
records into the store folder, which may sit on a file system that all cluster nodes share.
``run --tensorboard DIR`` logs every run's training curves live into ``DIR/<run name>``; ``tensorboard STORE
OUT`` writes every stored run as hyperparameters, metrics and its validation curve for TensorBoard's HParams
view (:mod:`helpers.tboard`).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import Executor
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

import pandas as pd

from . import experiments, findings, profiles, runner, tboard
from .store import ResultsStore
from .schema import SCRATCH

EXECUTORS = "local, dask://HOST:PORT (dask://local starts a LocalCluster) or slurm"


def _grid_from_args(args: argparse.Namespace) -> list[experiments.RunConfig]:
    """The profile's grid for every data set, with the command line's overrides."""
    part = profiles.get_profile(args.profile).classification
    return experiments.profile_grid(part, args.datasets, [args.arch], args.strategies, args.fractions, args.seeds,
                                    **({"steps": args.steps} if args.steps else {}))


def _tuning_for(args: argparse.Namespace, configs: Sequence[experiments.RunConfig]
               ) -> tuple[dict[str, tuple[float, ...]], list[float] | None, list[experiments.RunConfig]]:
    """(rate grid, tuning fractions) as the profile says; the tuning runs of the grid."""
    p = profiles.get_profile(args.profile).classification
    fractions = sorted({c.fraction for c in configs}) if p.tune_at_every_fraction else None
    trials = []
    for dataset in args.datasets:
        mine = [c for c in configs if c.dataset == dataset]
        trials += runner.rate_trials(mine, p.lr_grid, fractions)
    return p.lr_grid, fractions, trials


def _probe_seconds_per_step(config: experiments.RunConfig, steps: int = 8) -> float:
    """Seconds per SGD step of a short scratch run of ``config`` on this device (the costliest arm)."""
    probe = replace(config, strategy=SCRATCH, fraction=1.0, lr=0.01, n_bootstrap=20,
                    budget=replace(config.budget, steps=steps, eval_every=steps, patience=None, min_steps=0))
    experiments.run_one(probe)                 # the first run pays for loading data and building the model
    started = time.perf_counter()
    experiments.run_one(probe)
    return (time.perf_counter() - started) / steps


def plan(configs: Sequence, trials: Sequence, store: ResultsStore, lr_grid: dict, tune_fractions: Sequence[float] | None,
         probe: bool = True) -> dict:
    """How many runs there are, how many are stored, and an estimate of the rest (seconds)."""
    done = store.done()
    final = runner.resolved_configs(configs, store, lr_grid, tune_fractions)
    if final is None:   # rates not chosen yet: the tuning runs, then every grid run they do not cover
        covered = {replace(t, lr=None).key() for t in trials}
        pending = [t for t in trials if t.key() not in done] + [c for c in configs if c.key() not in covered]
    else:
        pending = [c for c in final if c.key() not in done]
    n_final_done = 0 if final is None else len(final) - len(pending)
    out = {"runs": len(configs), "tuning_runs": len(trials), "done": len(done & {t.key() for t in trials}),
           "grid_done": n_final_done, "pending": len(pending), "estimate_s": math.nan}
    if probe and pending:
        per_step = _probe_seconds_per_step(pending[0])
        out["seconds_per_step"] = per_step
        out["estimate_s"] = sum(c.budget.steps for c in pending) * per_step
    return out


def describe(p: dict) -> str:
    text = (f"{p['runs']} runs in the grid, {p['tuning_runs']} rate-tuning runs (the one with the chosen rate is "
            f"also a grid run): {p['done']} tuning and {p['grid_done']} grid runs already in the store, "
            f"{p['pending']} runs to go.")
    if math.isfinite(p["estimate_s"]):
        cost = f"{p['estimate_s'] / 60:.0f} min" if p["estimate_s"] >= 120 else f"{p['estimate_s']:.0f} s"
        text += (f" Estimate: at most {cost} of one worker on this device "
                 f"(probe: {p['seconds_per_step']:.3f} s per SGD step of a scratch run; shallow fine-tuning "
                 "levels cost less), divided by the number of workers.")
    return text


def _make_executor(args: argparse.Namespace) -> tuple[Executor | None, Callable[[], None]]:
    """The executor ``--executor`` names, and how to close it."""
    spec = args.executor
    if spec in ("none", "serial"):
        return None, lambda: None
    if spec == "local":
        pool = runner.local_pool(args.workers)
        return pool, pool.shutdown
    if spec.startswith("dask://"):
        from distributed import Client, LocalCluster   # deferred: optional (the cluster extra)
        address = spec[len("dask://"):]
        if address == "local":
            cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, dashboard_address=None)
            client = Client(cluster)
            return client.get_executor(), lambda: (client.close(), cluster.close())
        client = Client(address)
        return client.get_executor(), client.close
    if spec == "slurm":
        import submitit   # deferred: an optional dependency (the cluster extra), needed only for Slurm
        executor = submitit.AutoExecutor(folder=str(args.store / "slurm-logs"))
        executor.update_parameters(timeout_min=args.time_min, cpus_per_task=args.cpus, gpus_per_node=args.gpus,
                                   slurm_partition=args.partition, slurm_array_parallelism=args.workers)
        return executor, lambda: None
    raise SystemExit(f"--executor {spec!r} is not one of: {EXECUTORS}.")


def summaries(table: pd.DataFrame) -> str:
    """The teacher's summary table of every data set in a results table."""
    parts = []
    for dataset, part in table.groupby("dataset"):
        parts.append(f"== {dataset}\n{findings.summary_table(part).to_string(index=False)}")
    return "\n\n".join(parts)


def _parser() -> argparse.ArgumentParser:
    grid = argparse.ArgumentParser(add_help=False)   # the grid's options, shared by plan, run and summary
    grid.add_argument("--store", type=Path, required=True,
                      help="results store folder (created if missing; share it between cluster nodes)")
    grid.add_argument("--profile", default=profiles.DEFAULT_PROFILE, choices=sorted(profiles.PROFILES))
    grid.add_argument("--datasets", nargs="+", default=["pneumoniamnist"])
    grid.add_argument("--arch", default="efficientnet_lite0")
    grid.add_argument("--strategies", nargs="+")
    grid.add_argument("--fractions", nargs="+", type=float)
    grid.add_argument("--seeds", nargs="+", type=int)
    grid.add_argument("--steps", type=int, help="SGD steps per run (default: the profile's)")
    grid.add_argument("--executor", default="local", help=EXECUTORS + "; 'none' runs here, one by one")
    grid.add_argument("--workers", type=int, default=2, help="local processes / Dask workers / Slurm jobs at once")
    grid.add_argument("--partition", help="Slurm partition")
    grid.add_argument("--time-min", type=int, default=60, help="Slurm time limit per run, minutes")
    grid.add_argument("--cpus", type=int, default=4, help="Slurm CPUs per run")
    grid.add_argument("--gpus", type=int, default=0, help="Slurm GPUs per run")
    grid.add_argument("--no-probe", action="store_true", help="skip the timing probe in the plan")
    grid.add_argument("--quiet", action="store_true", help="no progress bars")
    parser = argparse.ArgumentParser(prog="python -m helpers.sweep", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("plan", parents=[grid], help="how many runs the grid has, how many are stored, an estimate of the rest")
    run = sub.add_parser("run", parents=[grid], help="run every run the store lacks (resumes), then print the summary")
    run.add_argument("--tensorboard", type=Path, metavar="DIR",
                     help="log each run's training curves live into DIR/<run name> (needs the tensorboard extra)")
    sub.add_parser("summary", parents=[grid], help="the summary table of each data set's finished grid runs")
    export = sub.add_parser("tensorboard", help="write every stored run as a TensorBoard run (hparams, metrics, "
                                                "validation curve) for the HParams view")
    export.add_argument("store", type=Path, help="a results store folder")
    export.add_argument("out", type=Path, help="the TensorBoard log folder to write (tensorboard --logdir OUT)")
    return parser


def export(store: Path, out: Path) -> int:
    """``tensorboard STORE OUT``: the export, or what is missing (exit 1)."""
    try:
        written = tboard.export_store(store, out)
    except (FileNotFoundError, ModuleNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} runs of {store} to {out}; view them with: tensorboard --logdir {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parser().parse_args(argv)
    if args.command == "tensorboard":
        return export(args.store, args.out)
    if getattr(args, "tensorboard", None):
        tboard.require()   # before any training: say at once that the package is missing
    store = ResultsStore(args.store)
    configs = _grid_from_args(args)
    lr_grid, tune_fractions, trials = _tuning_for(args, configs)
    if args.command == "summary":   # the grid's own runs only: not the tuning runs at rates not chosen
        final = runner.resolved_configs(configs, store, lr_grid, tune_fractions)
        table = runner.select(store.load(), final) if final else pd.DataFrame()
        print(summaries(table) if not table.empty else
              f"{args.store} holds no finished grid runs for this grid yet (give the same grid options as 'run').")
        return 0
    print(describe(plan(configs, trials, store, lr_grid, tune_fractions, probe=not args.no_probe)), flush=True)
    if args.command == "plan":
        return 0
    executor, close = _make_executor(args)
    failed, tables = [], []
    try:
        for dataset in args.datasets:
            try:
                tables.append(runner.run_sweep([c for c in configs if c.dataset == dataset], store,
                                                    executor=executor, progress=not args.quiet, lr_grid=lr_grid,
                                                    tune_fractions=tune_fractions,
                                                    run_fn=tboard.Logged(args.tensorboard) if args.tensorboard else None))
            except RuntimeError as err:   # some runs failed; every finished run is stored
                failed.append(f"{dataset}: {err}")
    finally:
        close()
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    print(f"finished {len(table)} of {len(configs)} grid runs; {len(failed)} data set(s) with failed runs")
    if not table.empty:
        print(summaries(table))
    for line in failed:
        print("FAILED", line, "-- run the same command again to retry the missing runs.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
