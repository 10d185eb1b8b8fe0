"""The statistics of a sweep's results table: tests, intervals and corrections (Holm), the gap to scratch, the
best depth per size, features or scale.

A sweep trains one model per (dataset, arch, strategy, fraction, seed); each finished run is one
row of a results table (see ``experiments``). This module turns that table into the numbers that
answer the four findings of Tajbakhsh et al. (2016):

1. does a fine-tuned CNN beat (or at worst match) the same CNN trained from scratch?
   -> :func:`gap_to_scratch`, :func:`best_per_fraction`, :func:`summary_table`
2. is fine-tuning more robust to smaller training sets?  -> :func:`robustness_contrast`; learning-curve power
   laws: :func:`helpers.learning_curves.power_law_table`
3. is one fine-tuning depth best everywhere?             -> :func:`best_per_fraction`
4. does the best depth get shallower with less data?     -> :func:`best_per_fraction`

and :mod:`helpers.findings` says, in one sentence per finding, what *this* run found. The table itself (reading it,
one row per run, strategies in order) is :mod:`helpers.tables`; convergence is :mod:`helpers.convergence`; the
power-law math is :mod:`helpers.powerlaw`.

Conventions
-----------
* ``strategy`` is ``"scratch"``, a fine-tuning level name, or ``"auto"``; ``level_index`` orders the
  levels (0 = only the new head tuned, larger = deeper).
* Every metric analysed here is "higher is better" (AUC, accuracy, sensitivity); a learning-curve
  *error* is ``1 - metric``.
* Table functions accept a table with several (dataset, arch) experiments and analyse each one
  separately (the output then starts with ``dataset`` and ``arch`` columns). :func:`summary_table`,
  :func:`findings` and :func:`helpers.learning_curves.fit_power_laws` speak about one experiment and refuse a mixed table.
* If a run was recorded twice for the same (dataset, arch, strategy, fraction, seed), for example by
  a resumed sweep, the last row wins.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import bootstrap
from .bootstrap import two_level_bootstrap
from .choice import auc_resolution, choose
from .convergence import best_at_end_share
from .schema import AUTO, SCRATCH, SELECT_BY, STATISTICS   # the strategy names, for the modules that read this one
from .tables import (decode_results, dedupe, fraction_sizes, has_scores, level_strategies, per_experiment,
                     score_tasks, single_experiment, strategy_order)

ALPHA = 0.05
MIN_WILCOXON_SEEDS = 6   # with n seeds the smallest two-sided Wilcoxon p is 2 / 2**n: 0.031 at 6, 0.0625 at 5
PAIRED_BOOTSTRAP = "paired interval over seeds and test images (t, docs/methods.md)"
TWO_LEVEL = "interval over seeds and test images (t, docs/methods.md)"
WILCOXON = "Wilcoxon signed-rank over seeds"
PAIRED_T = "paired t interval over seeds (no stored test scores)"
MIN_T_SEEDS = 3          # a t interval over seeds needs at least this many paired seeds (1 degree of freedom: t = 12.7)
NI_MARGIN = 0.02        # non-inferiority margin for "matches" (AUC): the gap's 95% interval must stay above -0.02
CHANCE = 0.5            # AUC of a random ranking




def cell_stats(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (strategy, fraction): mean metric over seeds, its spread and a 95% interval.

    For test AUC with stored test scores the interval holds the seeds' noise and the test images' noise,
    each counted once (:func:`helpers.bootstrap.two_level_bootstrap`, Student's t; docs/methods.md). Otherwise it is the across-seed t interval (for
    ``val_score``, say), or the run's own bootstrap CI when there is one seed. ``ci_method`` says which.
    """
    df = dedupe(decode_results(df)) if metric == "test_auc" else dedupe(df)
    lo_col, hi_col = f"{metric}_lo", f"{metric}_hi"
    rows = []
    for (strategy, fraction), g in df.groupby(["strategy", "fraction"], sort=False):
        values = g[metric].astype(float).to_numpy()
        k = len(values)
        mean = float(np.mean(values))
        sd = float(np.std(values, ddof=1)) if k > 1 else math.nan
        if metric == "test_auc" and has_scores(g):
            res = two_level_bootstrap(np.asarray(g["test_labels"].iloc[0], dtype=int),
                                      [np.asarray(s, dtype=float) for s in g["test_scores"]], n_boot=n_boot, seed=seed)
            lo, hi, method = res["lo"], res["hi"], TWO_LEVEL
        elif k > 1:
            half = float(stats.t.ppf(0.975, k - 1) * sd / math.sqrt(k))
            lo, hi, method = mean - half, mean + half, "t interval over seeds"
        elif lo_col in g.columns and hi_col in g.columns and g[lo_col].notna().all():
            lo, hi, method = float(g[lo_col].mean()), float(g[hi_col].mean()), "bootstrap over test images (one seed)"
        else:
            lo, hi, method = math.nan, math.nan, "none"
        rows.append(dict(strategy=str(strategy), fraction=float(fraction), n_train=int(round(g["n_train"].median())),
                         level_index=int(g["level_index"].median()),
                         mean=mean, sd=sd, n_seeds=k, ci_lo=lo, ci_hi=hi, ci_method=method,
                         best_at_end=best_at_end_share(g)))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- finding 1: gap to scratch


def paired_test(ft: pd.DataFrame, sc: pd.DataFrame, metric: str, n_boot: int, seed: int) -> dict[str, Any]:
    """Test one fine-tuned strategy against scratch on runs already paired by seed (same order)."""
    out: dict[str, Any] = dict(delta=math.nan, lo=math.nan, hi=math.nan, p=math.nan,
                               test="none (no paired seeds)", wilcoxon_p=math.nan)
    if ft.empty:
        return out
    diffs = ft[metric].to_numpy(float) - sc[metric].to_numpy(float)
    out["delta"] = float(np.mean(diffs))
    if len(diffs) >= MIN_WILCOXON_SEEDS:
        if np.allclose(diffs, 0.0):
            out["wilcoxon_p"] = 1.0
        else:
            out["wilcoxon_p"] = float(stats.wilcoxon(diffs).pvalue)
    both = pd.concat([ft, sc])
    if metric == "test_auc" and has_scores(both):
        res = two_level_bootstrap(np.asarray(ft["test_labels"].iloc[0], dtype=int),
                                  [np.asarray(s, dtype=float) for s in ft["test_scores"]],
                                  paired_with=[np.asarray(s, dtype=float) for s in sc["test_scores"]],
                                  n_boot=n_boot, seed=seed)
        out.update(delta=float(res["mean"]), lo=float(res["lo"]), hi=float(res["hi"]), p=float(res["p"]),
                   test=PAIRED_BOOTSTRAP)
    elif len(diffs) >= MIN_T_SEEDS:   # each run's metric holds its own test noise: a t interval over the seeds
        se = float(np.std(diffs, ddof=1) / math.sqrt(len(diffs)))
        q = float(stats.t.ppf(0.975, len(diffs) - 1))
        p = (1.0 if abs(out["delta"]) <= 1e-15 else 0.0) if se <= 1e-15 else \
            float(2 * stats.t.sf(abs(out["delta"]) / se, len(diffs) - 1))
        out.update(lo=out["delta"] - q * se, hi=out["delta"] + q * se, p=p, test=PAIRED_T)
    else:
        why = "not AUC" if metric != "test_auc" else "no stored test scores"
        out["test"] = f"none ({why}, fewer than {MIN_T_SEEDS} paired seeds)"
    return out


def _gap_one(df: pd.DataFrame, metric: str, n_boot: int, seed: int,
             strategies: Iterable[str] | None) -> pd.DataFrame:
    df = dedupe(decode_results(df))
    wanted = None if strategies is None else set(strategies)
    order = [s for s in strategy_order(df) if s != SCRATCH and (wanted is None or s in wanted)]
    sizes = fraction_sizes(df)
    rows = []
    for fraction in sorted(df["fraction"].unique()):
        at = df[df["fraction"] == fraction]
        sc = at[at["strategy"] == SCRATCH].set_index("seed")
        for strategy in order:
            ft = at[at["strategy"] == strategy].set_index("seed")
            if ft.empty:
                continue
            seeds = sorted(set(ft.index) & set(sc.index))
            mean, scratch_mean = float(ft[metric].mean()), float(sc[metric].mean()) if len(sc) else math.nan
            row = dict(fraction=float(fraction), n_train=sizes[float(fraction)], strategy=strategy,
                       level_index=int(ft["level_index"].median()), mean=mean, scratch_mean=scratch_mean,
                       gap=mean - scratch_mean, n_seeds=len(seeds))
            row.update(paired_test(ft.loc[seeds], sc.loc[seeds], metric, n_boot, seed))
            if seeds:   # the gap's sign from the same paired seeds as its interval and p
                row["gap"] = float(row["delta"])
            rows.append(row)
    return pd.DataFrame(rows)


def gap_to_scratch(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0,
                   strategies: Iterable[str] | None = None) -> pd.DataFrame:
    """Fine-tuned minus scratch, per (fraction, strategy), with a paired test.

    Columns: ``fraction, n_train, strategy, level_index, mean, scratch_mean, gap, n_seeds`` (seeds
    run by both arms), ``delta, lo, hi, p, test, wilcoxon_p``.

    * ``gap`` = the paired difference over the seeds both arms finished (``delta``), so its sign, its
      interval and its p come from the same data; ``mean`` and ``scratch_mean`` are each arm's own mean.
    * The main test pairs the runs of the same seed, over seeds *and* test cases: for AUC with stored
      ``test_scores`` it calls ``bootstrap.two_level_bootstrap`` with ``paired_with`` (each seed's pair
      of models on the same test images, seed noise and test noise each counted once, Student's t;
      ``delta`` is AUC(fine-tuned) - AUC(scratch) averaged over seeds, ``lo``/``hi`` its 95% interval,
      ``p`` two-sided), and ``test`` names it.
    * ``wilcoxon_p`` is a Wilcoxon signed-rank test over the per-seed differences, computed only
      with at least 6 paired seeds (NaN otherwise): with n seeds the smallest two-sided p it can
      ever give is 2 / 2**n (0.25 with 3 seeds, 0.0625 with 5, 0.031 with 6), so with fewer seeds it
      can never reach p < .05.
    * Without stored scores (or for a metric other than ``test_auc``) the interval and p are a paired t
      interval over the per-seed differences (each run's metric already holds its own test noise), from
      :data:`MIN_T_SEEDS` paired seeds on; with fewer, ``p`` is NaN and ``test`` says why.

    ``strategies`` limits the comparison to some strategies (saves bootstrap time).
    """
    return per_experiment(df, lambda d: _gap_one(d, metric, n_boot, seed, strategies))


# ----------------------------------------------------------------------------- finding 2: robustness
def robustness_contrast(df: pd.DataFrame, best: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000,
                        seed: int = 0) -> dict[str, Any]:
    """How much more scratch loses than the chosen fine-tuning when the training set shrinks from the
    largest size to the smallest: gap(smallest) - gap(largest), bootstrapped *directly*.

    ``best`` is :func:`best_per_fraction`'s table (the fine-tuning chosen at each size). With stored test
    scores, one replicate resamples the test images once for all four cells (chosen fine-tuning and
    scratch at both sizes, all scored on the same test set) and draws the seeds jointly
    (:func:`helpers.bootstrap.contrast_bootstrap`), so the correlation between the two gaps is kept
    instead of treating them as independent. Keys: ``diff, lo, hi, p, small_n, large_n, scratch_drop,
    ft_drop, n_seeds, test`` (``diff`` > 0: fine-tuning was more robust), and ``logit_diff, logit_lo,
    logit_hi, logit_p``: the same contrast on the logit of AUC, a scale that does not saturate near 1 (an arm
    near AUC 1 cannot drop much in absolute terms, which flatters it on the absolute scale).
    """
    df = dedupe(decode_results(df))
    best = best[np.isfinite(best["scratch_mean"])].sort_values("fraction")
    out: dict[str, Any] = dict(diff=math.nan, lo=math.nan, hi=math.nan, p=math.nan, n_seeds=0, test="none")
    if len(best) < 2:
        return out
    small, large = best.iloc[0], best.iloc[-1]
    cells = [(small["fraction"], small["best_strategy"]), (small["fraction"], SCRATCH),
             (large["fraction"], large["best_strategy"]), (large["fraction"], SCRATCH)]
    frames = [df[(df["fraction"] == f) & (df["strategy"] == s)].set_index("seed") for f, s in cells]
    seeds = sorted(set.intersection(*(set(f.index) for f in frames)))
    if not seeds:
        return out
    ft_s, sc_s, ft_l, sc_l = (float(f.loc[seeds, metric].mean()) for f in frames)   # the same seeds as the test
    out.update(small_n=int(small["n_train"]), large_n=int(large["n_train"]), scratch_drop=sc_l - sc_s,
               ft_drop=ft_l - ft_s, n_seeds=len(seeds))
    out["diff"] = out["scratch_drop"] - out["ft_drop"]
    both = pd.concat([f.loc[seeds] for f in frames])
    if metric != "test_auc" or not has_scores(both):
        out["test"] = "none (no stored test scores on a shared test set)"
        return out
    labels = np.asarray(both["test_labels"].iloc[0], dtype=int)
    arms = [[np.asarray(s, dtype=float) for s in f.loc[seeds, "test_scores"]] for f in frames]
    res = bootstrap.contrast_bootstrap(labels, arms, weights=[1.0, -1.0, -1.0, 1.0], n_boot=n_boot, seed=seed)
    out.update(diff=float(res["mean"]), lo=float(res["lo"]), hi=float(res["hi"]), p=float(res["p"]),
               test=PAIRED_BOOTSTRAP)
    logit = bootstrap.contrast_bootstrap(labels, arms, weights=[1.0, -1.0, -1.0, 1.0], scale="logit")
    out.update(logit_diff=float(logit["mean"]), logit_lo=float(logit["lo"]), logit_hi=float(logit["hi"]),
               logit_p=float(logit["p"]))
    return out




MIN_CATCH_UP_SIZES = 4
"""Sizes a power law needs before it may extrapolate a catch-up size: it has 3 parameters, so 3 points fit it
exactly and leave nothing to check it against."""




# ----------------------------------------------------------------------------- findings 1, 3, 4: the best strategy
def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of a family of p-values (NaN entries are left out of the family and
    stay NaN): the k-th smallest of m p-values becomes max over j <= k of min(1, (m - j + 1) * p_(j)).
    Reject where the adjusted p is below alpha: the chance of any false rejection stays at most alpha."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    if not m:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out


def _validation_ranking(df: pd.DataFrame, chooser: pd.DataFrame, fraction: float, pool: Sequence[str]) -> pd.DataFrame:
    """The candidates at one fraction ranked for the choice by the suite's one rule (:func:`helpers.choice.choose`):
    highest mean validation score over seeds; ties (closer than the validation set's resolution,
    :func:`helpers.choice.auc_resolution` of the runs' median validation size, when choosing on validation AUC)
    broken toward the shallower level, then the lower mean validation loss. Never the name, never a test
    column. Column ``tied`` marks the candidates tied with the top."""
    choice = chooser[chooser["fraction"] == fraction].copy()
    at = df[df["fraction"] == fraction]
    loss = at.groupby("strategy")["val_loss"].mean() if "val_loss" in at.columns else pd.Series(dtype=float)
    choice["val_loss"] = choice["strategy"].map(loss).astype(float)
    n_val = float(at["n_val"].median()) if "n_val" in at.columns and SELECT_BY in at.columns else math.nan
    return choose(choice, pool, value="mean", resolution=auc_resolution(n_val, score_tasks(at)))


def diverged_counts(df: pd.DataFrame) -> dict[tuple[float, str], int]:
    """(fraction, strategy) -> how many runs diverged there (they have no metrics and are left out of every
    mean; a verdict shows the count beside it, :func:`helpers.findings.findings` reads it again with each
    divergence counted as a failure)."""
    if "diverged" not in df.columns or df.empty:
        return {}
    bad = df[df["diverged"].fillna(False).astype(bool)]
    return {(float(f), str(s)): len(g) for (f, s), g in bad.groupby(["fraction", "strategy"])}


def _paired_rank(at: pd.DataFrame, best: str, others: Sequence[str], metric: str, n_boot: int,
                 seed: int) -> tuple[list[str], list[str]]:
    """(tied_with, beaten_by): the other candidates whose paired difference to ``best`` on test (other minus
    best, the same seeds and test images: :func:`paired_arms`) has a 95% interval holding 0, or lying above it.
    Without a paired interval (no stored scores, too few seeds) a candidate counts as tied: nothing shows
    the order."""
    tied, beaten = [], []
    for other in others:
        d = paired_arms(at, other, best, metric, n_boot, seed)
        if np.isfinite(d["lo"]) and d["lo"] > 0:
            beaten.append(other)
        elif not (np.isfinite(d["hi"]) and d["hi"] < 0):
            tied.append(other)
    return tied, beaten


def _best_one(df: pd.DataFrame, metric: str, candidates: Sequence[str] | None, with_test: bool,
              n_boot: int, seed: int) -> pd.DataFrame:
    diverged = diverged_counts(df)
    df = dedupe(decode_results(df))
    cells = cell_stats(df, metric, n_boot=n_boot, seed=seed)
    by = SELECT_BY if SELECT_BY in df.columns else metric    # a table without validation AUC: said in chosen_by
    chooser = cell_stats(df, by) if by != metric else cells
    pool = list(candidates) if candidates is not None else level_strategies(df)
    rows = []
    for fraction, g in sorted(cells.groupby("fraction"), key=lambda kv: kv[0]):
        ranking = _validation_ranking(df, chooser, fraction, pool)
        if ranking.empty:
            continue
        cand = g.set_index("strategy").loc[ranking["strategy"]].reset_index()
        best, others = cand.iloc[0], cand.iloc[1:]
        tied, beaten = _paired_rank(df[df["fraction"] == fraction], best["strategy"], list(others["strategy"]),
                                    metric, n_boot, seed)
        val_tied = ranking["strategy"][ranking["tied"]].tolist()
        sc = g[g["strategy"] == SCRATCH]
        sc_mean = float(sc["mean"].iloc[0]) if len(sc) else math.nan
        row = dict(fraction=float(fraction), n_train=int(best["n_train"]), best_strategy=best["strategy"],
                   best_level_index=int(best["level_index"]), chosen_by=by,
                   best_val=float(ranking["mean"].iloc[0]), val_tied=len(val_tied) > 1,
                   val_tied_with=", ".join(val_tied[1:]),
                   mean=float(best["mean"]), ci_lo=float(best["ci_lo"]), ci_hi=float(best["ci_hi"]),
                   ci_method=best["ci_method"], n_seeds=int(best["n_seeds"]),
                   runner_up=others["strategy"].iloc[0] if len(others) else "",
                   runner_up_mean=float(others["mean"].iloc[0]) if len(others) else math.nan,
                   tied_with=", ".join(tied), beaten_on_test=bool(beaten), beaten_by=", ".join(beaten),
                   best_at_end=float(best["best_at_end"]), scratch_mean=sc_mean,
                   scratch_ci_lo=float(sc["ci_lo"].iloc[0]) if len(sc) else math.nan,
                   scratch_ci_hi=float(sc["ci_hi"].iloc[0]) if len(sc) else math.nan,
                   scratch_best_at_end=float(sc["best_at_end"].iloc[0]) if len(sc) else math.nan,
                   gap=float(best["mean"]) - sc_mean, gap_lo=math.nan, gap_hi=math.nan, p=math.nan, test="not run",
                   diverged=diverged.get((float(fraction), best["strategy"]), 0),
                   scratch_diverged=diverged.get((float(fraction), SCRATCH), 0))
        row["tie_gaps"] = []
        if with_test and len(sc):
            test = _gap_one(df[df["fraction"] == fraction], metric, n_boot, seed, val_tied).set_index("strategy")
            if best["strategy"] in test.index:
                t = test.loc[best["strategy"]]   # the gap, its interval and p from the same paired seeds
                row.update(gap=t["gap"], gap_lo=t["lo"], gap_hi=t["hi"], p=t["p"], test=t["test"])
            row["tie_gaps"] = [dict(strategy=s, gap=float(test.loc[s, "gap"]), lo=float(test.loc[s, "lo"]),
                                    hi=float(test.loc[s, "hi"]), p=float(test.loc[s, "p"]))
                               for s in val_tied[1:] if s in test.index]
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out):
        out["p_holm"] = holm(out["p"].to_numpy(float))
    return out


def best_per_fraction(df: pd.DataFrame, metric: str = "test_auc", candidates: Sequence[str] | None = None,
                      with_test: bool = True, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per training fraction: the best strategy, chosen on mean *validation* AUC over seeds, with its
    test metric, interval and gap to scratch.

    The choice (:func:`_validation_ranking`): the highest mean validation AUC over seeds (each run's AUC
    at its restored step, which is the best of its validation checks: the criterion itself still
    saturates on tiny validation sets; what changed is that its ties are named and decide nothing). Validation sets of a few images saturate (2 images: AUC 0, 0.5 or 1), so
    exact ties happen; they are flagged (``val_tied``, ``val_tied_with``) and broken toward the
    shallower level, then the lower mean validation loss -- never by name. A tied choice decides nothing:
    :mod:`helpers.findings` calls such a size not decidable.

    ``candidates`` are the strategies allowed to win: by default the fine-tuning levels
    (:func:`level_strategies`: neither scratch nor ``auto``, whose validation AUC is already the best of
    its own search and which would otherwise take part in its own ranking); pass a list to widen it. The choice reads only ``val_score``
    (``chosen_by``); test columns are only reported, so the reported test figure is not flattered by
    the choice (shuffling the test columns never changes a choice).

    The interval (``ci_lo, ci_hi``) is the winner's interval over seeds and test images (see
    :func:`cell_stats`). ``tied_with`` lists the other candidates whose *paired* difference to the winner on
    test (the same seeds and test images, :func:`paired_arms`) has a 95% interval holding 0: the ranking
    between them is not established. ``beaten_on_test`` / ``beaten_by``: candidates whose paired difference
    to the winner lies above 0 (validation chose worse than test would have). ``diverged`` /
    ``scratch_diverged``: runs of the chosen arm and of scratch that diverged at that size (left out). ``best_at_end`` /
    ``scratch_best_at_end``: share of runs still improving at their last step (:func:`best_at_end_share`).
    ``gap, gap_lo, gap_hi, p, test`` compare the winner with scratch via :func:`gap_to_scratch`
    (skipped with ``with_test=False``); ``p_holm`` is ``p`` adjusted with :func:`holm` across the
    training-set sizes of the experiment (the family a finding is read from). ``tie_gaps``: where the
    choice was tied on validation, the same comparison for each other tied candidate (a verdict that
    changes with the tie-break rests on a convention; :mod:`helpers.findings` calls that size open).
    """
    return per_experiment(df, lambda d: _best_one(d, metric, candidates, with_test, n_boot, seed))


# ----------------------------------------------------------------------------- features or scale?
def paired_arms(at: pd.DataFrame, a: str, b: str, metric: str, n_boot: int, seed: int) -> dict[str, Any]:
    """Arm ``a`` minus arm ``b`` at one fraction, paired by seed (the two-level paired bootstrap)."""
    fa, fb = at[at["strategy"] == a].set_index("seed"), at[at["strategy"] == b].set_index("seed")
    seeds = sorted(set(fa.index) & set(fb.index))
    return paired_test(fa.loc[seeds], fb.loc[seeds], metric, n_boot, seed) | {"n_seeds": len(seeds)}


def _within(d: dict[str, Any], margin: float = NI_MARGIN) -> bool:
    return bool(-margin < d["lo"] and d["hi"] < margin)


def _features_verdict(feats: dict[str, Any], scale: dict[str, Any], margin: float = NI_MARGIN) -> str:
    """The verdict of :func:`features_or_scale` from its two paired contrasts (margin on both sides)."""
    if feats["lo"] > margin:
        return "features"
    if feats["hi"] < -margin:
        return "below the control"
    if _within(feats, margin) and scale["lo"] > margin:
        return "scale"
    if _within(feats, margin) and _within(scale, margin):
        return "neither"
    return "not decidable at this budget"


def features_or_scale(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per training size: does fine-tuning win through ImageNet's *features*, or would their *scale* do?

    Three arms trained alike (same steps, a rate tuned on validation each): scratch, the statistics-only
    control (every layer redrawn with its pretrained mean and standard deviation, :mod:`helpers.representations`)
    and the fine-tuning chosen on validation at that size (:func:`best_per_fraction`). Two paired contrasts,
    each over seeds and test images (:func:`gap_to_scratch`'s test):

    * ``scale``: statistics minus scratch: what the pretrained weights' scale alone buys;
    * ``features``: chosen fine-tuning minus statistics: what the features buy beyond their scale.

    ``verdict``, with the margin :data:`NI_MARGIN` on both sides of every contrast: "features" when the
    features contrast's 95% interval lies above +margin (the features buy more than the margin); "scale"
    when the features contrast lies within +-margin (the control matches fine-tuning) and the scale
    contrast above +margin; "neither" when both contrasts lie within +-margin (scratch, the control and
    fine-tuning all match); "below the control" when the features contrast lies below -margin
    (fine-tuning clearly worse than the statistics-only control); else "not decidable at this budget".
    Columns: ``fraction, n_train,
    chosen``, ``scale_delta, scale_lo, scale_hi, scale_p``, ``features_delta, features_lo, features_hi,
    features_p``, ``n_seeds, verdict``. Empty without a statistics arm.
    """
    single_experiment(df, "features_or_scale")
    df = dedupe(decode_results(df))
    if STATISTICS not in set(df["strategy"]) or SCRATCH not in set(df["strategy"]):
        return pd.DataFrame()
    best = best_per_fraction(df, metric, with_test=False).set_index("fraction")
    sizes = fraction_sizes(df)
    rows = []
    for fraction in sorted(df["fraction"].unique()):
        at = df[df["fraction"] == fraction]
        chosen = str(best.at[float(fraction), "best_strategy"]) if float(fraction) in best.index else ""
        scale = paired_arms(at, STATISTICS, SCRATCH, metric, n_boot, seed)
        feats = paired_arms(at, chosen, STATISTICS, metric, n_boot, seed) if chosen else dict(
            delta=math.nan, lo=math.nan, hi=math.nan, p=math.nan, n_seeds=0)
        verdict = _features_verdict(feats, scale)
        rows.append(dict(fraction=float(fraction), n_train=sizes[float(fraction)], chosen=chosen,
                         scale_delta=scale["delta"], scale_lo=scale["lo"], scale_hi=scale["hi"], scale_p=scale["p"],
                         features_delta=feats["delta"], features_lo=feats["lo"], features_hi=feats["hi"],
                         features_p=feats["p"], n_seeds=min(scale["n_seeds"], feats["n_seeds"]), verdict=verdict))
    return pd.DataFrame(rows)
