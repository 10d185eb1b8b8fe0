"""Coverage of the two-level bootstrap (seeds x test cases) in simulation, where the truth is known.

Each simulated experiment trains R = 3 "models" (seeds) and scores them on one test set of n = 200 cases,
half positive. Run r scores case i as ``y_i * (mu + b_r) + x_i + e_ri``:

- ``x_i ~ N(0, sx^2)``: how hard the case is, shared by every run (the test-set noise);
- ``b_r ~ N(0, sb^2)``: the seed's shift of the positives' signal (the seed-to-seed noise);
- ``e_ri ~ N(0, se^2)``: what one run gets wrong on one case on its own.

Given the seed, the AUC of a run on a new test population is ``Phi((mu + b_r) / sqrt(2 (sx^2 + se^2)))``, and the
estimand, its expectation over seeds, is ``Phi(mu / sqrt(2 (sx^2 + se^2) + sb^2))`` (the Mann-Whitney AUC is
unbiased for it). Two settings: test-dominated (sb = 0.05: a run's AUC moves by about 0.01 from seed to seed,
against a test-set standard error of about 0.03) and seed-dominated (sb = 0.5: about 0.11 from seed to seed).

Measured on the 2-core machine (n_boot = 300 per experiment; share of experiments whose 95% interval holds
the truth; 600 experiments as in the tests, 1000 in a longer run with the same seeds):

==============  ===========================  ==============================================
setting         corrected (the default)      uncorrected (``small_r_correction=False``)
==============  ===========================  ==============================================
test-dominated  0.963 (600), 0.971 (1000)    0.925 (600), 0.939 (1000)
seed-dominated  0.963 (600), 0.964 (1000)    0.838 (600), 0.842 (1000)
==============  ===========================  ==============================================

The uncorrected bootstrap draws 3 seeds with replacement (variance shrunk by 2/3) and reads normal quantiles
where t with 2 degrees of freedom applies: it undercovers once the seeds dominate, which the last test shows.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from helpers.bootstrap import two_level_bootstrap

N_CASES, N_RUNS, N_EXPERIMENTS, N_BOOT = 200, 3, 600, 300
TEST_DOMINATED = dict(mu=1.0, sb=0.05, sx=1.0, se=0.3)
SEED_DOMINATED = dict(mu=1.0, sb=0.5, sx=1.0, se=0.3)


def _truth(mu: float, sb: float, sx: float, se: float) -> float:
    """Expected AUC over seeds and test populations (see the module docstring)."""
    return float(stats.norm.cdf(mu / np.sqrt(2 * (sx ** 2 + se ** 2) + sb ** 2)))


def _experiment(rng: np.random.Generator, mu: float, sb: float, sx: float,
                se: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels and R runs' scores on one simulated test set."""
    y = (np.arange(N_CASES) < N_CASES // 2).astype(int)
    x = rng.normal(0, sx, N_CASES)
    shifts = rng.normal(0, sb, N_RUNS)
    return y, [y * (mu + b) + x + rng.normal(0, se, N_CASES) for b in shifts]


def _coverage(setting: dict, corrected: bool, seed: int = 0) -> float:
    """Share of simulated experiments whose 95% two-level interval holds the true expected AUC."""
    rng = np.random.default_rng(seed)
    truth = _truth(**setting)
    hits = 0
    for e in range(N_EXPERIMENTS):
        y, runs = _experiment(rng, **setting)
        out = two_level_bootstrap(y, runs, n_boot=N_BOOT, seed=e, small_r_correction=corrected)
        hits += out["lo"] <= truth <= out["hi"]
    return hits / N_EXPERIMENTS


def test_the_analytic_truth_matches_a_monte_carlo():
    rng = np.random.default_rng(1)
    for s in (TEST_DOMINATED, SEED_DOMINATED):
        b = rng.normal(0, s["sb"], 200_000)
        mc = stats.norm.cdf((s["mu"] + b) / np.sqrt(2 * (s["sx"] ** 2 + s["se"] ** 2))).mean()
        assert mc == pytest.approx(_truth(**s), abs=2e-3)


@pytest.mark.parametrize("setting", [TEST_DOMINATED, SEED_DOMINATED], ids=["test-dominated", "seed-dominated"])
def test_the_corrected_interval_covers_at_three_seeds(setting):
    assert _coverage(setting, corrected=True) >= 0.93


def test_without_the_correction_the_interval_undercovers_when_seeds_dominate():
    assert _coverage(SEED_DOMINATED, corrected=False) < 0.90
