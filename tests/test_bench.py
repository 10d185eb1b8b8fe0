"""benchmarks.run: how `make bench` decides a verdict (the timing itself runs in `make bench`, not here)."""
import time

import pytest
import torch

from benchmarks import run as bench


def _sleeper(durations: list[float]) -> bench.Arm:
    """An arm whose successive runs sleep for the given seconds, in turn."""
    calls = iter(durations * 100)
    return lambda: (lambda: time.sleep(next(calls)))


def test_a_round_keeps_each_arms_fastest_run():
    # the "bursty" arm is slowed 10x in one of every three runs; the round keeps its undisturbed time
    arms = {"steady": _sleeper([0.004]), "bursty": _sleeper([0.04, 0.004, 0.004])}
    seconds = bench.interleave(arms, torch.device("cpu"), repeats=3, best_of=3)
    assert {k: len(v) for k, v in seconds.items()} == {"steady": 3, "bursty": 3}
    assert max(seconds["bursty"]) < 0.03 and min(seconds["bursty"]) >= 0.004


def test_slow_limit_variants_are_left_out():
    arms = {"limit: fast": _sleeper([0.002]), "limit: slow": _sleeper([0.02]), "engine": _sleeper([0.002])}
    seconds = bench.interleave(arms, torch.device("cpu"), repeats=2, best_of=1, prune="limit")
    assert set(seconds) == {"limit: fast", "engine"}


@pytest.mark.parametrize("rounds, verdict", [([1.0, 0.95, 0.92], "met"), ([0.95, 0.85, 1.0], "not decided"),
                                             ([0.5, 0.6, 0.89], "not met")])
def test_a_speed_ratio_is_met_only_when_its_whole_spread_clears_the_target(rounds, verdict):
    # ratio(numerator, denominator) = denominator seconds / numerator seconds per round
    r = bench.ratio([1.0] * len(rounds), rounds, target=0.9)
    assert r["verdict"] == verdict and r["min"] == min(rounds) and r["max"] == max(rounds)


@pytest.mark.parametrize("rounds, verdict", [([1.0, 1.1, 1.2], "met"), ([1.0, 1.3, 1.1], "not decided"),
                                             ([1.25, 1.4, 1.3], "not met")])
def test_a_time_ratio_is_met_only_when_its_whole_spread_stays_under_the_target(rounds, verdict):
    r = bench.time_over(rounds, [1.0] * len(rounds), target_max=1.2)
    assert r["verdict"] == verdict and r["median"] == pytest.approx(sorted(rounds)[len(rounds) // 2])


def test_turns_are_rotated_so_no_arm_always_follows_the_same_one():
    order: list[str] = []

    def arm(name: str) -> bench.Arm:
        return lambda: (lambda: order.append(name))
    bench.interleave({"a": arm("a"), "b": arm("b"), "c": arm("c")}, torch.device("cpu"), repeats=1, best_of=3)
    assert order == list("abc") + list("abc") + list("bca") + list("cab")   # the warm-up, then the round


def test_the_limit_is_wrong_only_when_beaten_beyond_its_own_spread():
    within = bench.limit_check(bench.ratio([1.0, 1.0], [1.05, 1.10]), [1.05, 1.10])   # spread 4.8%, beaten 5%+
    assert within["faster_every_round"] and within["limit_beaten"]
    noisy = bench.limit_check(bench.ratio([1.0, 1.0], [1.02, 1.20]), [1.02, 1.20])    # spread 18%
    assert noisy["faster_every_round"] and not noisy["limit_beaten"]
    slower = bench.limit_check(bench.ratio([1.0, 1.0], [0.95, 1.1]), [0.95, 1.1])
    assert not slower["faster_every_round"] and not slower["limit_beaten"]
