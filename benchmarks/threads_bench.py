"""CPU threads on an idle and a busy machine: ``train.fit``, 40 steps, EfficientNet-Lite0 at 32 px, timed in
fresh processes with and without one core kept busy by another process.

A run's thread count is part of its configuration (``helpers.env.run_threads``: 1 in every profile), so
that the same seed gives the same numbers whatever the load. This measures what that costs or gains:

- ``one run, 2 threads``          what the old load-following policy chose on an idle 2-core machine;
- ``one run, 1 thread``           the suite's fixed count (a notebook that trains one model at a time);
- ``two runs at once, 1 thread each`` the suite's sweeps (two worker processes); the figure is the wall
                                  time of the pair divided by two (seconds per run);
- ``two runs in turn, 2 threads each`` the same two runs one after the other with two threads (per run).

Each setting runs ``rounds`` times per machine state, interleaved (rotated order), keeping the fastest, so a
burst of other load does not decide it. Ratios are to ``one run, 2 threads`` in the same state.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHILD = """
import time, sys
t0 = time.perf_counter()
import torch
from helpers import env, loading, models, subsets, train
data = subsets.training_subset(subsets.cap_dataset(loading.load_dataset("pneumoniamnist"), 400, 64), 1.0, val_share=0.2)
model = models.build_model("efficientnet_lite0", data.num_classes, pretrained=True, image_size=32)
config = train.TrainConfig(steps=40, batch_size=32, eval_every=40, patience=None, quiet=True, device="cpu", cache=False)
start = time.perf_counter()
train.fit(model, data, config)
print(time.perf_counter() - start, torch.get_num_threads())
"""
SETTINGS = {"one run, 2 threads": ("2", 1), "one run, 1 thread": ("1", 1),
            "two runs at once, 1 thread each": ("1", 2), "two runs in turn, 2 threads each": ("2", -2)}


def _child(threads: str):
    environ = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FTLAB_THREADS")}
    environ["FTLAB_THREADS"] = threads
    return subprocess.Popen([sys.executable, "-c", CHILD, "fixed"], cwd=REPO, env=environ, stdout=subprocess.PIPE,
                            text=True)


def _run(threads: str, runs: int) -> tuple[float, int]:
    """Seconds per run: ``runs`` > 0 processes at once, < 0 that many one after the other."""
    start = time.perf_counter()
    if runs > 0:
        children = [_child(threads) for _ in range(runs)]
    else:
        children = []
        for _ in range(-runs):
            children.append(_child(threads))
            children[-1].wait(timeout=600)
    for child in children:
        out, _ = child.communicate(timeout=600)
        if child.returncode:
            raise RuntimeError(f"benchmark child failed ({child.returncode})")
    return (time.perf_counter() - start) / abs(runs), int(out.split()[-1])


def bench_threads(rounds: int = 2) -> dict:
    """{state: {setting: {"seconds": best per run, "threads": used, "vs_two_threads": ratio}}}."""
    results = {}
    for state in ("idle", "one core busy"):
        busy = None
        if state != "idle":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            names = list(SETTINGS)
            best: dict[str, tuple[float, int]] = {}
            for r in range(rounds):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    seconds, threads = _run(*SETTINGS[name])
                    if name not in best or seconds < best[name][0]:
                        best[name] = (seconds, threads)
        finally:
            if busy is not None:
                busy.kill()
        reference = best["one run, 2 threads"][0]
        results[state] = {name: {"seconds": s, "threads": t, "vs_two_threads": s / reference}
                          for name, (s, t) in best.items()}
    return results


def print_threads(results: dict) -> None:
    print("\nCPU threads (train.fit, 40 steps, EfficientNet-Lite0 32 px; seconds per run, fastest of the rounds; "
          "ratio to one run with 2 threads in the same state):")
    for state, rows in results.items():
        cells = ", ".join(f"{name} {r['seconds']:.1f} s ({r['threads']} thr, x{r['vs_two_threads']:.2f})"
                          for name, r in rows.items())
        print(f"  {state}: {cells}")


if __name__ == "__main__":
    out = bench_threads(int(os.environ.get("BENCH_REPEATS", "2")))
    print_threads(out)
    (REPO / "reports").mkdir(exist_ok=True)
    (REPO / "reports" / "threads_bench.json").write_text(json.dumps(out, indent=1))
