"""The study's findings in plain words: the summary table a teacher reads out, one sentence per finding
of Tajbakhsh et al. (2016) for *this* run's results, and the ladder report of notebook 03.

The numbers come from :mod:`helpers.analysis`; this module only chooses words for them.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .analysis import (ALPHA, SCRATCH, SELECT_BY, _single_experiment, best_per_fraction, decode_results,
                       level_strategies, metric_label)


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _verdict(gap: float, p: float) -> str:
    if not np.isfinite(p):
        return "no test possible"
    if p < ALPHA:
        return "fine-tuning better" if gap > 0 else "scratch better"
    return "no clear difference"


def summary_table(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per training fraction, in words a teacher can read out.

    Columns: "Training fraction", "Training images", "Fine-tuning chosen on validation" (the strategy
    with the highest mean validation AUC over seeds), "<Metric> (95% CI)", "From scratch (95% CI)", "Gap to scratch" (best minus
    scratch, with the paired test's 95% CI), "Paired test p", "Verdict". See
    :func:`best_per_fraction` for how the CI and the test are made.
    """
    _single_experiment(df, "summary_table")
    best = best_per_fraction(df, metric, n_boot=n_boot, seed=seed)
    label = metric_label(metric)

    def ci(m: float, lo: float, hi: float) -> str:
        if not np.isfinite(m):
            return "n/a"
        return f"{m:.3f} ({lo:.3f}-{hi:.3f})" if np.isfinite(lo) else f"{m:.3f}"

    def gap(g: float, lo: float, hi: float) -> str:
        if not np.isfinite(g):
            return "n/a"
        return f"{g:+.3f} ({lo:+.3f} to {hi:+.3f})" if np.isfinite(lo) else f"{g:+.3f}"

    return pd.DataFrame({
        "Training fraction": [f"{f:.0%}" if f >= 0.01 else f"{f:.1%}" for f in best["fraction"]],
        "Training images": best["n_train"].astype(int),
        "Fine-tuning chosen on validation": best["best_strategy"],
        f"{label} (95% CI)": [ci(*r) for r in best[["mean", "ci_lo", "ci_hi"]].itertuples(index=False)],
        "From scratch (95% CI)": [ci(*r) for r in best[["scratch_mean", "scratch_ci_lo", "scratch_ci_hi"]]
                                  .itertuples(index=False)],
        "Gap to scratch": [gap(*r) for r in best[["gap", "gap_lo", "gap_hi"]].itertuples(index=False)],
        "Paired test p": [_fmt_p(p) for p in best["p"]],
        "Verdict": [_verdict(g, p) for g, p in zip(best["gap"], best["p"])],
    })


def _n(n: float) -> str:
    return f"{int(n):,} training images"


HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "not decidable at this budget"


def _finding1(best: pd.DataFrame, unit: str) -> str:
    head = "Finding 1 (fine-tuning beats or matches scratch): "
    best = best[np.isfinite(best["scratch_mean"])]
    if best.empty:
        return head + f"{UNDECIDED}: this table has no scratch runs to compare with."
    tested = np.isfinite(best["p"])
    better = best[tested & (best["p"] < ALPHA) & (best["gap"] > 0)]
    worse = best[tested & (best["p"] < ALPHA) & (best["gap"] < 0)]
    unclear = len(best) - len(better) - len(worse)
    k = len(best)
    gaps = f"gaps {best['gap'].min():+.3f} to {best['gap'].max():+.3f} {unit}" if k > 1 else f"gap {best['gap'].iloc[0]:+.3f} {unit}"
    if not tested.any():
        return (head + f"{UNDECIDED}: the best fine-tuned model was ahead of scratch at {int((best['gap'] > 0).sum())} "
                f"of {k} training-set sizes ({gaps}), but no paired test was possible.")
    verdict = FAILS if len(worse) else HOLDS if len(better) else UNDECIDED
    text = head + f"{verdict}. The fine-tuning depth chosen on validation data beat scratch significantly " \
                  f"(paired p < .05) at {len(better)} of {k} training-set sizes"
    if unclear:
        text += f", was within the interval of scratch at {unclear}"
    if len(worse):
        text += f", and lost to scratch at {', '.join(_n(n) for n in worse['n_train'])}"
    text += f" ({gaps}). "
    if len(worse):
        return text + "Scratch training won at those sizes, unlike the paper."
    if len(better):
        return text + "Scratch never won, in line with the paper."
    return text + ("No difference was significant either way: consistent with 'matched', but without an "
                   "equivalence margin this budget cannot show it.")


def _finding2(best: pd.DataFrame, unit: str) -> str:
    head = "Finding 2 (fine-tuning is more robust to less data): "
    best = best[np.isfinite(best["scratch_mean"])].sort_values("fraction")
    if len(best) < 2:
        return head + f"{UNDECIDED}: it needs scratch and fine-tuned runs at two or more training-set sizes."
    small, large = best.iloc[0], best.iloc[-1]
    sc_drop = large["scratch_mean"] - small["scratch_mean"]
    ft_drop = large["mean"] - small["mean"]
    diff = sc_drop - ft_drop  # = gap(small) - gap(large)

    def half(row: pd.Series) -> float:
        if np.isfinite(row["gap_lo"]):
            return (row["gap_hi"] - row["gap_lo"]) / 2
        return math.hypot((row["ci_hi"] - row["ci_lo"]) / 2, (row["scratch_ci_hi"] - row["scratch_ci_lo"]) / 2)

    hw = math.hypot(half(small), half(large))
    detail = (f"going from {_n(large['n_train'])} down to {int(small['n_train']):,}, scratch lost {sc_drop:.3f} "
              f"{unit} and the best fine-tuned model lost {ft_drop:.3f}")
    if not np.isfinite(hw):
        return head + f"{UNDECIDED}: {detail} (no uncertainty available, point estimates only)."
    if diff > hw:
        return head + f"{HOLDS}: {detail}; fine-tuning was more robust (difference {diff:.3f}, beyond the +/-{hw:.3f} uncertainty)."
    if diff < -hw:
        return head + f"{FAILS}: {detail}; scratch was more robust here (difference {-diff:.3f}, beyond +/-{hw:.3f})."
    return head + (f"{UNDECIDED}: {detail}; the difference ({diff:+.3f}) is within the uncertainty (+/-{hw:.3f}).")


def _finding3(levels: pd.DataFrame, n_levels: int) -> str:
    head = "Finding 3 (no single depth is best everywhere): "
    if n_levels < 2 or levels.empty:
        return head + f"{UNDECIDED}: fewer than two fine-tuning depths were trained."
    winners = list(levels["best_strategy"])
    ties = levels[levels["tied_with"] != ""]
    tie_note = (f"; at {len(ties)} of {len(levels)} sizes other depths were within the winner's test interval "
                f"({'; '.join(f'{int(n):,}: {t}' for n, t in zip(ties['n_train'], ties['tied_with']))})"
                if len(ties) else "")
    pairs = ", ".join(f"{w} at {int(n):,} images" for w, n in zip(winners, levels["n_train"]))
    if len(ties) == len(levels):
        return head + f"{UNDECIDED}: validation chose {pairs}{tie_note}, so no depth is established as best anywhere."
    if len(set(winners)) == 1:
        verdict = UNDECIDED if len(ties) else FAILS
        return (head + f"{verdict} on this data set: validation chose {winners[0]} at every training-set size"
                f"{tie_note}. The paper's point is that the winner changes between applications; one data set "
                "cannot show that.")
    verdict = UNDECIDED if len(ties) else HOLDS
    return head + f"{verdict}: the depth chosen on validation changed with training-set size ({pairs}){tie_note}."


def _finding4(levels: pd.DataFrame, n_levels: int) -> str:
    head = "Finding 4 (less data, shallower best depth): "
    if n_levels < 2 or len(levels) < 2:
        return head + f"{UNDECIDED}: it needs two or more depths at two or more training-set sizes."
    small, large = levels.iloc[0], levels.iloc[-1]
    detail = (f"validation chose {small['best_strategy']} (level {int(small['best_level_index'])}) with "
              f"{int(small['n_train']):,} images and {large['best_strategy']} (level {int(large['best_level_index'])}) "
              f"with {int(large['n_train']):,}")
    if len(levels) >= 3 and levels["best_level_index"].nunique() > 1:
        rho = stats.spearmanr(levels["fraction"], levels["best_level_index"]).statistic
        detail += f" (Spearman rho between data size and chosen depth {rho:+.2f} over {len(levels)} sizes)"
    d = int(large["best_level_index"]) - int(small["best_level_index"])
    tied = bool(small["tied_with"] or large["tied_with"])
    if d == 0:
        return head + f"{UNDECIDED}: {detail}: the same depth, so no shift was seen."
    verdict = UNDECIDED if tied else (HOLDS if d > 0 else FAILS)
    text = head + f"{verdict}: {detail}: " + ("shallower with less data, as the paper suggests" if d > 0 else
                                               "deeper with less data, the opposite of the paper's advice")
    if tied:
        text += "; other depths were within the test interval at one or both sizes, so the shift is not established"
    return text + "."


def findings(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0) -> list[str]:
    """Four sentences, one per finding of the paper, saying what THIS run found: each starts with
    "holds", "does not hold" or "not decidable at this budget", computed from the table (choices on
    validation AUC, verdicts from the test intervals).

    1. best fine-tuned vs scratch at each size, with the paired test (:func:`best_per_fraction`);
    2. the drop from the largest to the smallest size, scratch vs the best fine-tuning at each size
       (the difference of the drops equals gap(smallest) - gap(largest); its uncertainty combines
       the two gaps' CIs);
    3. whether one depth (levels only, no scratch/auto) wins at every size, with ties flagged;
    4. whether the winning depth's ``level_index`` is lower at the smallest size than at the largest.
    """
    _single_experiment(df, "findings")
    unit = "AUC" if metric.endswith("auc") else "points"
    best = best_per_fraction(df, metric, n_boot=n_boot, seed=seed)
    names = level_strategies(df)
    levels = best_per_fraction(df, metric, candidates=names, with_test=False) if names else pd.DataFrame()
    if names:
        index = df[df["strategy"].isin(names)]["level_index"]
        levels.attrs.update(min_index=int(index.min()), max_index=int(index.max()))
    return [_finding1(best, unit), _finding2(best, unit), _finding3(levels, len(names)), _finding4(levels, len(names))]


def chosen_level(table: pd.DataFrame) -> pd.Series:
    """The fine-tuning level of a ladder run with the best validation AUC (the shallower one on a tie)."""
    tuned = table[table["strategy"] != SCRATCH].sort_values("level_index")
    return tuned.loc[tuned[SELECT_BY].idxmax()]


def ladder_report(table: pd.DataFrame, profile: str, metric: str = "test_auc") -> str:
    """Plain words on one ladder run (notebook 03): best level vs scratch, and where this differs from the paper."""
    table = decode_results(table)
    tuned = table[table["strategy"] != SCRATCH].sort_values("level_index")
    scratch = table[table["strategy"] == SCRATCH]
    best = chosen_level(table)   # chosen on validation, reported on test
    lines = [f"Level chosen on validation AUC: {best['strategy']}; on the test set, {metric_label(metric)} {best[metric]:.3f} "
             f"(95% CI {best[f'{metric}_lo']:.3f}-{best[f'{metric}_hi']:.3f})."]
    if len(scratch):
        s = scratch.iloc[0]
        if best[f"{metric}_lo"] > s[f"{metric}_hi"]:
            verdict = "better than"
        elif best[f"{metric}_hi"] < s[f"{metric}_lo"]:
            verdict = "worse than"
        else:
            verdict = "not distinguishable (overlapping 95% CIs) from"
        lines.append(f"Scratch training reached {s[metric]:.3f} (95% CI {s[f'{metric}_lo']:.3f}-{s[f'{metric}_hi']:.3f}): "
                     f"the best fine-tuned level is {verdict} scratch.")
    shallow, deep = tuned.iloc[0], tuned.iloc[-1]
    lines.append(f"Shallowest level ({shallow['strategy']}): {shallow[metric]:.3f}; deepest ({deep['strategy']}): "
                 f"{deep[metric]:.3f}. The paper found no depth best everywhere: all layers for polyp detection, "
                 "middle layers for frame classification.")
    lines.append(f"Where this differs from the paper: public 28 px MedMNIST images upsampled to the model's input, "
                 f"a '{profile}' training budget ({int(table['steps'].max())} SGD steps, a rate tuned per arm), "
                 f"one seed, and {table['arch'].iloc[0]} rather than Caffe's AlexNet "
                 "unless chosen; read the CIs before reading the ranking.")
    return "\n".join(lines)
