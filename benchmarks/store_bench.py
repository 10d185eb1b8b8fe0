"""Appending to a results store: the cost of run 1,000 against the cost of run 10 (it must not grow).

Run alone with ``python -m benchmarks.store_bench``; ``make bench`` includes it. Each append writes a
realistic row (624 test scores, as PneumoniaMNIST's test split). The single-CSV table it replaced is
measured beside it at 10 and 200 rows to show what grew.
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from helpers.store import ResultsStore, ResultsTable

REPEATS = 7


def _row(i: int, rng: np.random.Generator) -> dict:
    return {"config_hash": f"{i:016x}", "test_auc": float(rng.random()), "finished_at": f"{i:08d}",
            "strategy": "scratch", "fraction": 1.0, "seed": i % 6, "test_scores": rng.random(624).tolist(),
            "test_labels": rng.integers(0, 2, 624).tolist(), "curve": [[20 * k, float(rng.random())] for k in range(6)]}


def _fill(results, start: int, stop: int, rng: np.random.Generator) -> None:
    for i in range(start, stop):
        results.append(_row(i, rng))


def bench_store(sizes: tuple[int, int] = (10, 1000), csv_sizes: tuple[int, int] = (10, 200)) -> dict:
    """Append time at a small and a large size, interleaved (small, large, small, large ...), for the store
    and for the old CSV table: median seconds of each, and the ratio large / small per pair (median, min-max)."""
    rng = np.random.default_rng(0)
    out: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, make, (small, large) in (("store", lambda n: ResultsStore(Path(folder) / f"store{n}"), sizes),
                                           ("csv", lambda n: ResultsTable(Path(folder) / f"t{n}.csv"), csv_sizes)):
            tables = {small: make(small), large: make(large)}
            for n, results in tables.items():
                _fill(results, 0, n, rng)
            times = {small: [], large: []}
            for k in range(REPEATS + 1):          # the first pair is a warm-up
                for n, results in tables.items():
                    row = _row(10**9 + k, rng)
                    started = time.perf_counter()
                    results.append(row)
                    if k:
                        times[n].append(time.perf_counter() - started)
            pairs = [b / a for a, b in zip(times[small], times[large])]
            out[name] = {f"append_at_{small}_s": statistics.median(times[small]),
                         f"append_at_{large}_s": statistics.median(times[large]),
                         "ratio": statistics.median(pairs), "ratio_min": min(pairs), "ratio_max": max(pairs)}
    return out


def print_store(r: dict) -> None:
    s, c = r["store"], r["csv"]
    verdict = "met" if s["ratio_max"] < 2 else "not met" if s["ratio_min"] >= 2 else "not decided"
    print(f"  results store: append at 10 runs {s['append_at_10_s'] * 1e3:.1f} ms, at 1,000 runs "
          f"{s['append_at_1000_s'] * 1e3:.1f} ms, ratio {s['ratio']:.2f} ({s['ratio_min']:.2f}-"
          f"{s['ratio_max']:.2f}), target below 2: {verdict.upper()}")
    print(f"  old CSV table: append at 10 runs {c['append_at_10_s'] * 1e3:.1f} ms, at 200 runs "
          f"{c['append_at_200_s'] * 1e3:.1f} ms, ratio {c['ratio']:.1f} ({c['ratio_min']:.1f}-{c['ratio_max']:.1f})")


if __name__ == "__main__":
    print_store(bench_store())
