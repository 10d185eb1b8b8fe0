"""`make bench`: the training engine against the usual tutorial loop, its limit and its floor.

Everything is measured in this one process on this one machine, and every figure is a ratio of arms
measured *interleaved*: after a warm-up round, k rounds, each of which runs the arms in turn r times
(A B C, B C A, C A B, ...: rotated) and keeps each arm's fastest run (background load only ever adds time),
so a burst of load on one run does not decide a round. Each ratio is reported as its median over the k rounds with its
min-max; a ratio whose min-max straddles its target is "not decided", never "met".

1. All layers: images/s of ``helpers.train.fit`` vs (a) the usual tutorial loop (a torchvision
   ``Dataset`` + ``DataLoader`` with per-sample PIL transforms) and (b) the **limit**: the fastest way
   this machine runs the same model, batch, precision and optimizer on data already on the device in the
   best layout (each of: the threads torch uses and one thread, contiguous and channels-last, eager and
   ``torch.compile`` where it works). The engine must not beat the limit beyond the limit's own spread;
   if it does, the benchmark says the limit is wrong.
2. Head only, at the classroom profile's step count: the engine's whole ``fit`` vs the tutorial loop and
   vs the **floor**: one frozen forward pass over the training and validation images plus the head's
   steps on the cached features (target: engine / floor <= 1.2).
3. The fine-tuning ladder (a spread of levels) with and without frozen-feature caching.
4. The results store: appending run 1,000 vs run 10 (:mod:`benchmarks.store_bench`).
5. On a CPU: ``train.fit`` idle and with one core busy, for 2 spinning threads, 1 thread, 2 passive
   threads and the suite's policy (:mod:`benchmarks.threads_bench`; ``BENCH_THREADS=0`` skips it).

Prints a table and writes ``reports/bench.json``. ``BENCH_SCALE`` scales step counts, ``BENCH_REPEATS``
sets k (default 5), ``BENCH_BEST_OF`` sets r (default 4), ``BENCH_COMPILE=1`` adds a ``torch.compile``
limit variant (its compilation takes minutes on a 2-core CPU, so it is opt-in).
"""
from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from helpers import env, finetune, loading, models, paths, profiles, subsets, train
from helpers.batches import batch_slices, to_float
from helpers.datasets import DataSet

from .store_bench import bench_store, print_store
from .threads_bench import bench_threads, print_threads

PROFILE = profiles.get_profile("classroom").classification
ARCH, SIZE, BATCH = "efficientnet_lite0", PROFILE.image_size, PROFILE.budget.batch_size
SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
BEST_OF = int(os.environ.get("BENCH_BEST_OF", "4"))   # runs per arm per round; the round keeps the fastest
COMPILE = os.environ.get("BENCH_COMPILE", "0") == "1"   # compiling takes minutes on a 2-core CPU: opt in
RECIPE = train.TrainConfig()   # what the engine arms train with: the limit and the floor use its optimizer
TARGETS = {"all_layers/engine_vs_limit": 0.9, "head_only/engine_over_floor": 1.2}


def steps(n: int) -> int:
    return max(2, int(n * SCALE))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_model(level: str, device: torch.device) -> models.FTModel:
    model = models.build_model(ARCH, 2, pretrained=True, image_size=SIZE, seed=0)
    finetune.set_level(model, level)
    return model.to(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- the arms

Arm = Callable[[], Callable[[], None]]   # builds what one timed run needs (untimed), returns the run


def engine_arm(ds: DataSet, level: str, n_steps: int, device: torch.device) -> Arm:
    """The suite's engine: a whole ``fit`` call (caching decided by the engine, BatchNorm as in the tutorial)."""
    def prepare():
        model = make_model(level, device)
        return lambda: train.fit(model, ds, steps=n_steps, batch_size=BATCH, eval_every=0, patience=None,
                                 quiet=True, device=str(device), bn_mode="train")
    return prepare


class TutorialDataset(torch.utils.data.Dataset):
    """What most tutorials do: one PIL image per item, transformed one by one."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        from torchvision import transforms as T
        self.images, self.labels = images, labels
        self.transform = T.Compose([T.Resize((SIZE, SIZE)), T.Grayscale(3), T.ToTensor(),
                                    T.Normalize(models.LITE_MEAN, models.LITE_STD)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def tutorial_arm(ds: DataSet, level: str, n_steps: int, device: torch.device, workers: int) -> Arm:
    """The usual loop: DataLoader + per-sample PIL transforms, model.train(), SGD (worker start-up included).

    The model is built contiguous, as a tutorial leaves it."""
    dataset = TutorialDataset(ds.train.images[:, 0].numpy(), ds.train.labels.numpy())

    def prepare():
        model = make_model(level, device).to(memory_format=torch.contiguous_format)
        return lambda: _tutorial_run(dataset, model, n_steps, device, workers)
    return prepare


def _tutorial_run(dataset: TutorialDataset, model: models.FTModel, n_steps: int, device: torch.device,
                  workers: int) -> None:
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         drop_last=True)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    model.train()
    done = 0
    while done < n_steps:
        for x, y in loader:
            loss = F.cross_entropy(model.forward_from(1, x.to(device)), y.to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == n_steps:
                break


def limit_variants(n_steps: int, device: torch.device) -> dict[str, Arm]:
    """Tight loops on random, already-normalised input on the device; one per layout / threads / compile."""
    variants = {}
    threads = torch.get_num_threads()
    for layout in ("contiguous", "channels_last"):
        for n_threads in sorted({threads, 1}, reverse=True):
            variants[f"{layout}, {n_threads} thread(s)"] = _limit_arm(layout, n_threads, False, n_steps, device)
    if COMPILE:
        variants[f"compiled, {threads} thread(s)"] = _limit_arm("channels_last", threads, True, n_steps, device)
    return variants


def _limit_arm(layout: str, n_threads: int, compiled: bool, n_steps: int, device: torch.device) -> Arm:
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    x = torch.randn(BATCH, 3, SIZE, SIZE, device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, 2, (BATCH,), device=device)

    def prepare():
        model = make_model("all", device).to(memory_format=fmt)
        net = (lambda z: model.forward_from(1, z))
        if compiled:
            net = torch.compile(net)
        opt = train.make_optimizer(model, RECIPE)   # the engine's optimizer: the same update math
        return lambda: _limit_run(model, net, opt, x, y, n_threads, n_steps)
    return prepare


def _limit_run(model, net, opt, x: torch.Tensor, y: torch.Tensor, n_threads: int, n_steps: int) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        model.train()
        for _ in range(n_steps):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(before)


def floor_arm(ds: DataSet, level: str, n_steps: int, device: torch.device) -> Arm:
    """The least any head-only run must do: one frozen forward over train + val, then the head's steps."""
    def prepare():
        model = make_model(level, device)
        return lambda: _floor_run(model, ds, n_steps, device)
    return prepare


def _floor_run(model: models.FTModel, ds: DataSet, n_steps: int, device: torch.device) -> None:
    start = finetune.first_tuned_stage(model)
    model.eval()
    with torch.no_grad():
        feats = [model.forward_from(0, to_float(split.images[idx].to(device)), stop=start)
                 for split in (ds.train, ds.val) for idx in batch_slices(len(split), 512)]
    train_feats = torch.cat(feats)[: len(ds.train)]
    labels = ds.train.labels.to(device)
    opt = train.make_optimizer(model, RECIPE)
    model.train()
    gen = torch.Generator().manual_seed(0)
    for _ in range(n_steps):
        idx = torch.randint(0, len(train_feats), (BATCH,), generator=gen)
        loss = F.cross_entropy(model.forward_from(start, train_feats[idx]), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


# ----------------------------------------------------------------------------- interleaving and ratios

PRUNE_ABOVE = 1.25   # a limit variant this much slower than the fastest in the warm-up cannot be the limit


def interleave(arms: dict[str, Arm], device: torch.device, repeats: int = REPEATS, best_of: int = BEST_OF,
               prune: str | None = None) -> dict[str, list[float]]:
    """Seconds of each arm in each of ``repeats`` rounds, after one warm-up round.

    A round runs the arms in turn ``best_of`` times (A B C, B C A, C A B, ...: rotated, so that no arm
    always runs right after the same one, e.g. after the tutorial loop's worker processes) and keeps each
    arm's fastest run: background load only ever adds time, so the fastest of a few runs made close
    together is the arm's undisturbed time (the rule ``timeit`` uses), and a burst that hits one run of
    one arm no longer decides the round's ratio. Each arm is prepared (model built, weights loaded) before each run is timed. Arms
    whose name starts with ``prune`` and whose warm-up took over ``PRUNE_ABOVE`` times the fastest of them
    are reported and left out of the rounds (the slow limit variants: they cannot be the limit)."""
    warm = {}
    for name, arm in list(arms.items()):
        try:
            warm[name] = timed(arm(), device)
        except Exception as err:   # e.g. torch.compile without a working compiler: that variant is left out
            print(f"    {name}: left out ({type(err).__name__}: {str(err).splitlines()[0][:100]})", flush=True)
            arms = {k: v for k, v in arms.items() if k != name}
    if prune:
        fastest = min(t for k, t in warm.items() if k.startswith(prune))
        slow = [k for k in arms if k.startswith(prune) and warm[k] > PRUNE_ABOVE * fastest]
        for k in slow:
            print(f"    {k}: {warm[k]:.2f} s in the warm-up vs {fastest:.2f} s for the fastest; left out", flush=True)
        arms = {k: v for k, v in arms.items() if k not in slow}
    seconds = {name: [] for name in arms}
    names = list(arms)
    for _ in range(repeats):
        runs = {name: [] for name in arms}
        for turn in range(best_of):
            for name in names[turn % len(names):] + names[:turn % len(names)]:   # rotated: no arm always
                runs[name].append(timed(arms[name](), device))                  # follows the same one
        for name in arms:
            seconds[name].append(min(runs[name]))
    return seconds


def ratio(numerator: list[float], denominator: list[float], target: float | None = None) -> dict:
    """Speed ratio per round (time of the denominator arm / time of the numerator arm): median, min, max, verdict."""
    values = [d / n for n, d in zip(numerator, denominator)]
    out = {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values}
    if target is not None:
        out["target"] = target
        out["verdict"] = "met" if out["min"] >= target else "not met" if out["max"] < target else "not decided"
    return out


def time_over(numerator: list[float], denominator: list[float], target_max: float) -> dict:
    """Time ratio per round (numerator arm's seconds / denominator arm's): lower is better, met if <= target."""
    values = [n / d for n, d in zip(numerator, denominator)]
    out = {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values,
           "target": target_max}
    out["verdict"] = "met" if out["max"] <= target_max else "not met" if out["min"] > target_max else "not decided"
    return out


def fmt(r: dict) -> str:
    text = f"{r['median']:6.2f} ({r['min']:.2f}-{r['max']:.2f})"
    return text + (f"  target {r['target']:.2f}: {r['verdict'].upper()}" if "verdict" in r else "")


# ----------------------------------------------------------------------------- the benchmark

def bench_all_layers(ds: DataSet, device: torch.device, workers: int) -> dict:
    n = steps(40)
    sub = subsets.cap_dataset(ds, n * BATCH, 64)
    arms = {"engine": engine_arm(sub, "all", n, device)}   # the limit next to the engine, the tutorial last:
    arms.update({f"limit: {k}": v for k, v in limit_variants(n, device).items()})   # most turns pair them
    arms["tutorial"] = tutorial_arm(sub, "all", n, device, workers)                  # back to back
    print(f"all layers: {n} steps of {BATCH} images at {SIZE} px, {REPEATS} interleaved rounds of the best of "
          f"{BEST_OF} runs", flush=True)
    sec = interleave(arms, device, prune="limit")
    limits = [k for k in sec if k.startswith("limit")]
    best = [min(sec[k][i] for k in limits) for i in range(REPEATS)]
    vs_limit = ratio(sec["engine"], best, TARGETS["all_layers/engine_vs_limit"])
    vs_limit.update(limit_check(vs_limit, best))
    return {"steps": n, "seconds": sec, "best_limit_variant": min(limits, key=lambda k: statistics.median(sec[k])),
            "engine_vs_tutorial": ratio(sec["engine"], sec["tutorial"]), "engine_vs_limit": vs_limit}


def spread(seconds: list[float]) -> float:
    """How much an arm's own time moved between rounds (slowest round / fastest round - 1): the machine's
    noise as this run saw it."""
    return max(seconds) / min(seconds) - 1


def limit_check(vs_limit: dict, limit_seconds: list[float]) -> dict:
    """Whether the engine beat the limit beyond the noise: faster in every round by more than the limit's
    own round-to-round spread (:func:`spread`). Then the limit is wrong."""
    noise = spread(limit_seconds)
    return {"limit_spread": noise, "faster_every_round": vs_limit["min"] > 1.0,
            "limit_beaten": vs_limit["min"] > 1.0 + noise}


def repeated(arm: Arm, times: int) -> Arm:
    """The arm run ``times`` times in a row per timing (each run prepared afresh, untimed): a run under a
    second is at the mercy of the scheduler, a few in a row are not."""
    def prepare():
        runs = [arm() for _ in range(times)]
        return lambda: [run() for run in runs]
    return prepare


HEAD_ONLY_RUNS = 4   # fits per timing: one head-only fit takes about half a second on a 2-core CPU


def bench_head_only(ds: DataSet, device: torch.device, workers: int) -> dict:
    n = steps(PROFILE.budget.steps)
    sub = subsets.training_subset(subsets.cap_dataset(ds, PROFILE.max_train, 64), 1.0, val_share=PROFILE.val_share)
    arms = {"engine": repeated(engine_arm(sub, "classifier", n, device), HEAD_ONLY_RUNS),
            "tutorial": tutorial_arm(sub, "classifier", n, device, workers),
            "floor": repeated(floor_arm(sub, "classifier", n, device), HEAD_ONLY_RUNS)}
    print(f"head only: {n} steps (the classroom profile's), {len(sub.train)} training + {len(sub.val)} validation "
          f"images, {REPEATS} interleaved rounds of the best of {BEST_OF} runs; engine and floor timed over "
          f"{HEAD_ONLY_RUNS} fits in a row",
          flush=True)
    sec = interleave(arms, device)
    per_fit = [t / HEAD_ONLY_RUNS for t in sec["engine"]]
    return {"steps": n, "n_train": len(sub.train), "n_val": len(sub.val), "seconds": sec,
            "runs_per_timing": {"engine": HEAD_ONLY_RUNS, "floor": HEAD_ONLY_RUNS, "tutorial": 1},
            "engine_vs_tutorial": ratio(per_fit, sec["tutorial"]),
            "engine_time_over_floor": {**time_over(sec["engine"], sec["floor"], TARGETS["head_only/engine_over_floor"]),
                                       "floor_spread": spread(sec["floor"])}}


LADDER_LEVELS = ("classifier", "stage7-classifier", "stage5-classifier", "stage3-classifier", "stem-classifier")


def bench_ladder(ds: DataSet, device: torch.device) -> dict:
    sub = subsets.cap_dataset(ds, 256, 64)
    n = steps(3 * -(-len(sub.train) // BATCH))      # three passes over the images
    out = {}
    print(f"ladder: {len(LADDER_LEVELS)} levels, {n} steps over {len(sub.train)} images, cached vs not", flush=True)
    for level in LADDER_LEVELS:
        def arm(cache: bool, level=level) -> Arm:
            def prepare():
                model = make_model(level, device)
                return lambda: train.fit(model, sub, steps=n, batch_size=BATCH, eval_every=0, patience=None,
                                         quiet=True, cache=cache, device=str(device), bn_mode="train")
            return prepare
        sec = interleave({"cached": arm(True), "uncached": arm(False)}, device, repeats=max(3, REPEATS // 2),
                         best_of=min(2, BEST_OF))   # no target here: fewer runs keep make bench short
        out[level] = {"seconds": sec, "speedup": ratio(sec["cached"], sec["uncached"])}
        print(f"  {level:>22}: caching speed-up {fmt(out[level]['speedup'])}", flush=True)
    return out


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {torch.get_num_threads()} torch threads, {gpu}"


def main() -> dict:
    # the engine and the limit must run with the same threads: the suite's load-following policy is pinned
    # here (its own benchmark, threads_bench, runs in fresh processes without the pin)
    os.environ.setdefault("FTLAB_THREADS", str(torch.get_num_threads()))
    device = env.pick_device()
    print(env.environment_report(device, "classroom"), flush=True)
    ds = loading.load_dataset("pneumoniamnist", size=28)
    workers = min(2, os.cpu_count() or 1)
    results: dict = {"machine": machine(device), "device": str(device), "torch": torch.__version__, "model": ARCH,
                     "input_size": SIZE, "batch_size": BATCH, "repeats": REPEATS, "best_of": BEST_OF,
                     "tutorial_num_workers": workers,
                     "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
    results["all_layers"] = bench_all_layers(ds, device, workers)
    results["head_only"] = bench_head_only(ds, device, workers)
    results["ladder"] = bench_ladder(ds, device)
    print("results store: append cost at 10 and 1,000 runs", flush=True)
    results["store_append"] = bench_store()
    if device.type == "cpu" and os.environ.get("BENCH_THREADS", "1") != "0":
        print("CPU threads: idle and with one core busy (fresh processes)", flush=True)
        results["threads"] = bench_threads(max(1, min(REPEATS, 2)))
    results["peak_host_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    out = paths.project_root() / "reports" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"wrote {out}")
    return results


def print_table(r: dict) -> None:
    a, h = r["all_layers"], r["head_only"]
    print(f"\nmachine: {r['machine']}; median (min-max) over {r['repeats']} interleaved rounds, each arm's "
          f"fastest of {r['best_of']} runs per round")
    print(f"  all layers, engine / tutorial   {fmt(a['engine_vs_tutorial'])}")
    print(f"  all layers, engine / limit      {fmt(a['engine_vs_limit'])}   (best limit: {a['best_limit_variant']})")
    v = a["engine_vs_limit"]
    if v["limit_beaten"]:
        print(f"  !! the engine beat the limit in every round by more than the limit's own spread "
              f"({v['limit_spread']:.0%}): the limit is not a limit on this machine")
    elif v["faster_every_round"]:
        print(f"  (the engine was faster than the limit in every round, by less than the limit's own "
              f"round-to-round spread, {v['limit_spread']:.0%}: at the limit, within the noise)")
    print(f"  head only, engine / tutorial    {fmt(h['engine_vs_tutorial'])}")
    print(f"  head only, engine time / floor  {fmt(h['engine_time_over_floor'])}   (lower is better)")
    print(f"  the machine's noise in this run: the limit's own time moved {v['limit_spread']:.0%} between rounds, "
          f"the floor's {h['engine_time_over_floor']['floor_spread']:.0%}")
    for level, v in r["ladder"].items():
        print(f"  ladder {level:>22}: caching {fmt(v['speedup'])}")
    print(f"  peak host RSS {r['peak_host_rss_mib']:.0f} MiB")
    print_store(r["store_append"])
    if "threads" in r:
        print_threads(r["threads"])


if __name__ == "__main__":
    main()
