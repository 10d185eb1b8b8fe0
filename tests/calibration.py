"""Simulations with a known truth for the calibration tests and docs/methods.md (``python -m tests.calibration``).

Scores: run r of arm a scores case i as ``y_i (mu_a + b_ar) + x_i + z_ai + e_ari``: ``x`` how hard the case is
(shared by every arm and run), ``z`` what arm a finds hard on its own (the contrast's test-set noise), ``e``
what one run gets wrong on one case (run x case), ``b`` the seed's shift. Given the seed, a run's AUC on a new
test population is ``Phi((mu_a + b) / sqrt(2 (sx^2 + sz^2 + se^2)))``; the estimand, its mean over seeds, is
``Phi(mu_a / sqrt(2 (sx^2 + sz^2 + se^2) + sb^2))`` (normal seeds). A "failing" seed model draws b = -fail
with probability 0.1 (a seed that occasionally learns much less); its truth is the mixture's.

Frames: run r's value on frame f of sequence k is ``mu + b_r + u_k + w_rk + eps_rf`` (sequence and run x
sequence effects); the estimand is ``mu``.
"""
from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import gammaln

from helpers.bootstrap import cluster_mean_interval, contrast_bootstrap

Z = stats.norm.ppf(0.975)
REGIMES = {   # sb: seed sd, sx/sz/se: case, arm x case and run x case sd
    "test-dominated": dict(sb=0.01, sx=1.0, sz=0.6, se=0.6),
    "mixed": dict(sb=0.12, sx=1.0, sz=0.5, se=0.5),
    "seed-dominated": dict(sb=0.6, sx=1.0, sz=0.15, se=0.15),
    "failing seed": dict(sb=0.05, sx=1.0, sz=0.3, se=0.3, fail=1.0),
    "seeds and shared test": dict(sb=0.25, sx=1.0, sz=0.8, se=0.1),
}
CONTRASTS = {"mean": ([1.0], [1.0]), "paired": ([1.2, 0.9], [1.0, -1.0]),
             "four-cell": ([1.2, 0.9, 1.0, 0.5], [1.0, -1.0, -1.0, 1.0])}
NULLS = {"paired": ([1.0, 1.0], [1.0, -1.0])}


def exact_t_ratio(r: int) -> float:
    """Half-width / 1.96 / true sd of an exact t interval from r runs (t quantile times E[S] / sigma)."""
    c4 = np.sqrt(2 / (r - 1)) * np.exp(gammaln(r / 2) - gammaln((r - 1) / 2))
    return float(stats.t.ppf(0.975, r - 1) / Z * c4)


def _truth_arm(mu: float, sb: float, sx: float, sz: float, se: float, fail: float = 0.0) -> float:
    tau2 = 2 * (sx ** 2 + sz ** 2 + se ** 2)
    if not fail:
        return float(stats.norm.cdf(mu / np.sqrt(tau2 + sb ** 2)))
    return float(0.9 * stats.norm.cdf(mu / np.sqrt(tau2 + sb ** 2)) + 0.1 * stats.norm.cdf((mu - fail) / np.sqrt(tau2)))


def auc_experiments(regime: str, contrast: str, r: int, n_experiments: int, n_cases: int = 200, seed: int = 0,
                    nulls: bool = False) -> dict[str, float]:
    """Coverage, width / oracle and P(p < alpha) of :func:`contrast_bootstrap` over simulated experiments."""
    mus, weights = (NULLS if nulls else CONTRASTS)[contrast]
    setting = REGIMES[regime]
    sb, sx, sz, se, fail = (setting[k] for k in ("sb", "sx", "sz", "se")), 0, 0, 0, setting.get("fail", 0.0)
    sb, sx, sz, se = (setting[k] for k in ("sb", "sx", "sz", "se"))
    truth = sum(w * _truth_arm(m, sb, sx, sz, se, fail) for m, w in zip(mus, weights))
    rng = np.random.default_rng(seed)
    y = (np.arange(n_cases) < n_cases // 2).astype(int)
    est, half, hit, ps = [], [], [], []
    for _ in range(n_experiments):
        x = rng.normal(0, sx, n_cases)
        arms = []
        for mu in mus:
            z = rng.normal(0, sz, n_cases)
            b = rng.normal(0, sb, r)
            if fail:
                b = np.where(rng.random(r) < 0.1, -fail, b)
            arms.append([y * (mu + b_r) + x + z + rng.normal(0, se, n_cases) for b_r in b])
        out = contrast_bootstrap(y, arms, weights)
        est.append(out["mean"])
        half.append((out["hi"] - out["lo"]) / 2)
        hit.append(out["lo"] <= truth <= out["hi"])
        ps.append(out["p"])
    sd = float(np.std(est, ddof=1))
    ps = np.asarray(ps)
    return {"coverage": float(np.mean(hit)), "width": float(np.mean(half) / Z / sd), "sd": sd,
            "p05": float(np.mean(ps < 0.05)), "p0125": float(np.mean(ps < 0.0125)), "truth": truth}


def frame_experiments(n_sequences: int, r: int, n_experiments: int, frames: int = 20, seed: int = 0,
                      sb: float = 0.03, su: float = 0.08, sw: float = 0.03, seps: float = 0.1) -> dict[str, float]:
    """Coverage and width / oracle of :func:`cluster_mean_interval` with a sequence random effect."""
    rng = np.random.default_rng(seed)
    seqs = np.repeat(np.arange(n_sequences), frames)
    est, half, hit, refused = [], [], [], 0
    for _ in range(n_experiments):
        u = rng.normal(0, su, n_sequences)
        v = np.stack([0.6 + rng.normal(0, sb) + u[seqs] + rng.normal(0, sw, n_sequences)[seqs]
                      + rng.normal(0, seps, len(seqs)) for _ in range(r)])
        out = cluster_mean_interval(v, seqs)
        est.append(out["mean"])
        if np.isnan(out["lo"]):
            refused += 1
            continue
        half.append((out["hi"] - out["lo"]) / 2)
        hit.append(out["lo"] <= 0.6 <= out["hi"])
    sd = float(np.std(est, ddof=1))
    return {"coverage": float(np.mean(hit)) if hit else float("nan"),
            "width": float(np.mean(half) / Z / sd) if half else float("nan"), "refused": refused / n_experiments}


if __name__ == "__main__":
    import sys
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print("| statistic | regime | R | coverage | width / oracle sd | exact t (R-1) | P(p<0.05) null | P(p<0.0125) null |")
    print("|---|---|---|---|---|---|---|---|")
    for contrast in CONTRASTS:
        for regime in REGIMES:
            for r in (3, 5, 10):
                out = auc_experiments(regime, contrast, r, n, seed=r)
                null = auc_experiments(regime, "paired", r, n, seed=100 + r, nulls=True) if contrast == "paired" else None
                nulls = f"{null['p05']:.3f} | {null['p0125']:.4f}" if null else "| "
                print(f"| {contrast} | {regime} | {r} | {out['coverage']:.3f} | {out['width']:.2f} | "
                      f"{exact_t_ratio(r):.2f} | {nulls} |", flush=True)
    print("\n| test sequences | R | coverage | width / oracle sd | refused |\n|---|---|---|---|---|")
    for k in (2, 3, 4, 6, 12):
        for r in (3, 5):
            out = frame_experiments(k, r, n, seed=k * 10 + r)
            print(f"| {k} | {r} | {out['coverage']:.3f} | {out['width']:.2f} | {out['refused']:.2f} |", flush=True)
