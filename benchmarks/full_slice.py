"""A slice of the real ``full`` sweep, timed, and the whole grid's cost estimated from it.

    python -m benchmarks.full_slice [--out reports/gpu] [--steps 10 40] [--images 4708 524 624]

For each strategy of the ``full`` learning-curve sweep (scratch, last, middle, all) one real run is timed
at two step counts, with every other setting of ``full`` (224-px inputs, batch 64, the recipe, test
scores with 2,000 bootstrap resamples): the difference gives the seconds per SGD step, the rest the
fixed cost of a run (building the model, caching frozen features, the final validation check, testing).
One validation pass is timed on its own. The data are a MedMNIST+-layout 224-px file written from the
official 28-px PneumoniaMNIST images (the timing does not depend on what the pixels show; the real
``pneumoniamnist_224.npz``, 4,708 / 524 / 624 images, is what ``make data PROFILE=full`` fetches), with
the real split sizes unless ``--images`` says otherwise.

The estimate multiplies these measurements by the grid ``python -m helpers.sweep plan --profile full``
runs on the written file (with the default ``--images``, PneumoniaMNIST's own split sizes) (the rate-tuning runs at every fraction, then the grid runs they do not cover), each run at its full
step budget (early stopping can only shorten it: an upper bound) with its validation checks, scaled by
its own validation-set size. ``auto`` walks the ladder one level at a time; its cost is given as a range,
from two levels to every level. Everything is labelled as an estimate. Writes ``full_slice.json`` and
prints a table; on a CPU, ``--steps 1 2 --images 200 60 60`` proves the script in about a minute.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

import torch

from helpers import env, experiments, loading, paths, profiles, runner, train
from helpers.finetune import ladder
from helpers.models import build_model
from helpers.recipe import default_rate

FULL = profiles.get_profile("full").classification
STRATEGIES = ("scratch", "last", "middle", "all")


def write_224_file(folder: Path, sizes: tuple[int, int, int]) -> Path:
    """Official PneumoniaMNIST images (cycled where more are asked for) resized to 224 px, MedMNIST+ layout."""
    source = loading.fetch_medmnist("pneumoniamnist", 28, download=False)
    return loading.upsample_medmnist(source, folder, dict(zip(loading.SPLITS, sizes)))


def full_config(dataset: Path, strategy: str, steps: int) -> experiments.RunConfig:
    """One run of the full sweep (all of ``full``'s settings), with its step budget replaced."""
    grid = experiments.profile_grid(FULL, [str(dataset)], strategies=[strategy], fractions=[1.0], seeds=[0],
                                    steps=steps, patience=None, min_steps=0, eval_every=steps)
    return replace(grid[0], lr=default_rate(strategy))   # timing does not depend on the rate; no tuning in the slice


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_run(config: experiments.RunConfig) -> float:
    sync()
    started = time.perf_counter()
    experiments.run_one(config)
    sync()
    return time.perf_counter() - started


def time_validation(dataset: Path) -> tuple[float, int]:
    """Seconds of one validation pass of the full model over the validation split, and its size."""
    data = experiments.prepare_data(full_config(dataset, "all", 1))
    model = build_model("efficientnet_lite0", data.num_classes, pretrained=True, image_size=FULL.image_size)
    train.predict(model, data.val)        # warm-up (cuDNN picks its algorithms)
    sync()
    started = time.perf_counter()
    train.predict(model, data.val)
    sync()
    return time.perf_counter() - started, len(data.val)


def measure(dataset: Path, steps: tuple[int, int]) -> dict:
    """Per strategy: seconds per SGD step and fixed seconds per run, from two timed runs."""
    out = {}
    time_run(full_config(dataset, "scratch", 1))   # warm-up: data loading, weights, kernels
    for strategy in STRATEGIES:
        short, long = (time_run(full_config(dataset, strategy, k)) for k in steps)
        per_step = max((long - short) / (steps[1] - steps[0]), 0.0)
        out[strategy] = {"seconds_per_step": per_step, "fixed_s": max(short - steps[0] * per_step, 0.0),
                         "short_s": short, "long_s": long}
        print(f"  {strategy}: {per_step:.4f} s per step, {out[strategy]['fixed_s']:.1f} s fixed per run "
              f"({steps[0]} steps {short:.1f} s, {steps[1]} steps {long:.1f} s)", flush=True)
    return out


def estimate(measured: dict, val_s: float, val_n: int, dataset: str) -> dict:
    """The full grid's cost (seconds of one worker), per strategy, from the measurements."""
    configs = experiments.profile_grid(FULL, [dataset])
    fractions = sorted({c.fraction for c in configs}) if FULL.tune_at_every_fraction else None
    trials = runner.rate_trials(configs, FULL.lr_grid, fractions)
    covered = {replace(t, lr=None).key() for t in trials}
    runs = trials + [c for c in configs if c.key() not in covered]
    n_levels = len(ladder(build_model("efficientnet_lite0", image_size=32)))
    rows, low, high = {}, 0.0, 0.0
    for config in runs:
        family = config.strategy if config.strategy in measured else "middle"
        m = measured["all" if config.strategy == "auto" else family]
        checks = math.ceil(config.budget.steps / config.budget.eval_every)
        n_val = config.validation_size() or 1
        one = m["fixed_s"] + config.budget.steps * m["seconds_per_step"] + (checks - 1) * val_s * n_val / max(val_n, 1)
        lo, hi = (2 * one, n_levels * one) if config.strategy == "auto" else (one, one)
        row = rows.setdefault(config.strategy, {"runs": 0, "low_s": 0.0, "high_s": 0.0})
        row["runs"] += 1
        row["low_s"] += lo
        row["high_s"] += hi
        low, high = low + lo, high + hi
    return {"runs": len(runs), "grid_runs": len(configs), "tuning_runs": len(trials), "per_strategy": rows,
            "low_s": low, "high_s": high}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=paths.project_root() / "reports" / "gpu")
    parser.add_argument("--steps", type=int, nargs=2, default=(10, 40), help="the two timed step counts")
    parser.add_argument("--images", type=int, nargs=3, default=(4708, 524, 624), help="train, val, test images")
    args = parser.parse_args(argv)
    device = env.pick_device()
    print(env.environment_report(device), flush=True)
    started = time.perf_counter()
    dataset = write_224_file(args.out / "data", tuple(args.images))
    print(f"timed runs of the full sweep on {device} ({dataset.name}: {args.images} images):", flush=True)
    measured = measure(dataset, tuple(args.steps))
    val_s, val_n = time_validation(dataset)
    cost = estimate(measured, val_s, val_n, str(dataset))   # the grid on the written file: its split sizes
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({env.cores()} cores)"
    result = {"device": name, "torch": torch.__version__, "precision": train.precision_of(train.TrainConfig()),
              "steps_timed": list(args.steps), "images": list(args.images), "measured": measured,
              "validation_pass_s": val_s, "validation_images": val_n, "estimate": cost,
              "slice_wall_s": time.perf_counter() - started}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "full_slice.json").write_text(json.dumps(result, indent=1))
    print(f"\nESTIMATE (from the timed slice, not a measurement of the grid) for the full learning-curve sweep "
          f"on PneumoniaMNIST, one worker on {name}: {cost['runs']} runs ({cost['tuning_runs']} rate-tuning runs, "
          f"{cost['grid_runs']} grid runs, the chosen-rate tuning run being the grid run)")
    for strategy, row in cost["per_strategy"].items():
        span = (f"{row['low_s'] / 3600:.1f} h" if row["low_s"] == row["high_s"]
                else f"{row['low_s'] / 3600:.1f}-{row['high_s'] / 3600:.1f} h (auto: 2 levels to every level)")
        print(f"  {strategy:8s} {row['runs']:4d} runs  {span}")
    print(f"  total: {cost['low_s'] / 3600:.1f}-{cost['high_s'] / 3600:.1f} h at the full step budget (early stopping "
          f"only shortens it); divide by the number of workers sharing the device(s). Slice took "
          f"{result['slice_wall_s']:.0f} s.")
    return result


if __name__ == "__main__":
    main()
