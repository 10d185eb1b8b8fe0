"""The study's findings in plain words: the summary table a teacher reads out, one sentence per finding
of Tajbakhsh et al. (2016) for *this* run's results, and the ladder report of notebook 03.

The numbers come from :mod:`helpers.analysis`; this module only chooses words for them.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from .schema import SELECT_BY
from .analysis import ALPHA, NI_MARGIN, SCRATCH, best_per_fraction, holm, robustness_contrast
from .tables import decode_results, has_scores, level_strategies, metric_label, score_tasks, single_experiment
from .choice import auc_resolution, choose
from .bootstrap import paired_bootstrap_delta_multi
from .verdicts import FAILS, HOLDS, UNDECIDED


def with_failures(df: pd.DataFrame) -> pd.DataFrame:
    """The table with every diverged run counted as a failure: constant test scores (AUC 0.5, chance) on the
    experiment's test labels and a validation AUC of 0.5, so a sensitivity reading sees the divergences that the
    main analysis leaves out (a cell whose surviving seeds are a selected subset)."""
    table = decode_results(df).copy()
    if "diverged" not in table.columns:
        return table
    bad = table["diverged"].fillna(False).astype(bool)
    good = table[~bad]
    if not bad.any() or good.empty:
        return table
    labels = list(good["test_labels"].iloc[0]) if "test_labels" in good.columns else []
    first = good["test_scores"].iloc[0] if "test_scores" in good.columns and len(labels) else []
    k = len(first[0]) if len(first) and isinstance(first[0], (list, tuple, np.ndarray)) else 0
    chance = [[1.0 / k] * k] * len(labels) if k else [0.5] * len(labels)
    table = table.astype({c: object for c in ("test_scores", "test_labels") if c in table.columns})
    for i in table.index[bad]:
        table.at[i, "test_auc"], table.at[i, "val_score"], table.at[i, "diverged"] = 0.5, 0.5, False
        if labels:
            table.at[i, "test_labels"] = labels
            table.at[i, "test_scores"] = chance
    return table


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


_VERDICT_WORDS = {"better": "fine-tuning better", "worse": "scratch better",
                  "matched": f"fine-tuning not worse (margin {NI_MARGIN:g})",
                  "matched-lower": f"fine-tuning not worse (margin {NI_MARGIN:g}; statistically lower)",
                  "open": "no clear difference"}
SUPPORTS = {"better": "supports", "matched": "supports", "matched-lower": "supports", "worse": "against",
            "open": "open"}
"""What a size's class contributes to finding 1: a win or a match (even a statistically lower one inside the
margin) supports "holds", a loss beyond the margin is against it, and "open" leaves it undecided."""


def _row_class(best: pd.DataFrame, i) -> str:
    r = best.loc[i]
    return _size_class(r["gap"], r["gap_lo"], r["gap_hi"], r["p_holm"])


def _verdicts(best: pd.DataFrame) -> list[str]:
    """Each size's verdict in words: :func:`_size_class` of its Holm-adjusted p and gap interval, or "depends on
    the tie-break" where a level tied with the choice on validation would contribute otherwise to the finding."""
    return ["no test possible" if not np.isfinite(best.at[i, "p_holm"]) else
            "depends on the tie-break" if _tie_flips(best, i) else
            _VERDICT_WORDS[_row_class(best, i)] for i in best.index]


def summary_table(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per training fraction, in words a teacher can read out.

    Columns: "Training fraction", "Training images", "Fine-tuning chosen on validation" (the strategy
    with the highest mean validation AUC over seeds; "(tie)" when validation could not separate it from
    another level), "<Metric> (95% CI)", "From scratch (95% CI)", "Gap to scratch" (best minus
    scratch, with the paired test's 95% CI), "Paired test p", "Holm p" (adjusted across the sizes),
    "Still improving at the last step (chosen / scratch)" (share of the chosen arm's and of scratch's
    runs whose best check was their last), "Diverged runs (chosen / scratch)" (left out of the means; the
    findings read them again as failures), "Verdict" (from
    the Holm p, and the non-inferiority margin :data:`helpers.analysis.NI_MARGIN` for "not worse"). See
    :func:`best_per_fraction` for how the CI and the test are made.
    """
    single_experiment(df, "summary_table")
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
        "Fine-tuning chosen on validation": [f"{b} (tie)" if t else b for b, t in zip(best["best_strategy"],
                                                                                  best["val_tied"])],
        f"{label} (95% CI)": [ci(*r) for r in best[["mean", "ci_lo", "ci_hi"]].itertuples(index=False)],
        "From scratch (95% CI)": [ci(*r) for r in best[["scratch_mean", "scratch_ci_lo", "scratch_ci_hi"]]
                                  .itertuples(index=False)],
        "Gap to scratch": [gap(*r) for r in best[["gap", "gap_lo", "gap_hi"]].itertuples(index=False)],
        "Paired test p": [_fmt_p(p) for p in best["p"]],
        "Holm p": [_fmt_p(p) for p in best["p_holm"]],
        "Still improving at the last step (chosen / scratch)": [f"{_share(a)} / {_share(b)}" for a, b in
                                             zip(best["best_at_end"], best["scratch_best_at_end"])],
        "Diverged runs (chosen / scratch)": [f"{int(a)} / {int(b)}" for a, b in
                                             zip(best.get("diverged", pd.Series(0, index=best.index)),
                                                 best.get("scratch_diverged", pd.Series(0, index=best.index)))],
        "Verdict": _verdicts(best),
    })


def _share(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.0%}"


def _n(n: float) -> str:
    return f"{int(n):,} training images"




def _size_class(gap: float, lo: float, hi: float, p_adj: float) -> str:
    """One size of finding 1, with the non-inferiority margin :data:`NI_MARGIN` on both readings:

    - ``better``: a significant gain (Holm-adjusted p below alpha, gap above 0);
    - ``worse``: a significant loss whose whole 95% interval lies below -margin (scratch clearly better);
    - ``matched``: the interval's lower end above -margin; ``matched-lower`` when the loss is significant
      but the whole interval stays inside the margin (fine-tuning statistically lower, by less than the
      margin: not worse by the suite's own rule);
    - ``open``: anything else (the interval reaches past -margin without lying below it).
    """
    significant = bool(np.isfinite(p_adj) and p_adj < ALPHA)
    if significant and gap > 0:
        return "better"
    if significant and np.isfinite(hi) and hi < -NI_MARGIN:
        return "worse"
    if np.isfinite(lo) and lo > -NI_MARGIN:
        return "matched-lower" if significant else "matched"
    return "open"


def _tie_flips(best: pd.DataFrame, i) -> bool:
    """Whether another level tied with the choice on validation at size ``i`` would contribute otherwise to
    finding 1 (:data:`SUPPORTS`): the alternative's p goes into the same Holm family as the chosen one's (the
    other sizes' p-values unchanged), so identical evidence never counts as a flip."""
    row = best.loc[i]
    mine = SUPPORTS[_row_class(best, i)]
    position = list(best.index).index(i)
    for t in row.get("tie_gaps") or []:
        family = best["p"].to_numpy(float).copy()
        family[position] = t["p"]
        p_adj = holm(family)[position]
        if SUPPORTS[_size_class(t["gap"], t["lo"], t["hi"], p_adj)] != mine:
            return True
    return False


def _finding1_classes(best: pd.DataFrame) -> list[str]:
    """Each size's class; a size whose choice was tied on validation is ``open`` when the tie-break decides
    what it contributes (:func:`_tie_flips`)."""
    return ["open" if _tie_flips(best, i) else _row_class(best, i) for i in best.index]


def size_classes(best: pd.DataFrame) -> list[str]:
    """Each size's class in finding 1's reading (``better``, ``worse``, ``matched``, ``matched-lower``, ``open``),
    from :func:`helpers.analysis.best_per_fraction`'s table with the test against scratch; ``open`` where a tie on
    validation decides the class. :mod:`helpers.advise` words its recommendation from these."""
    return _finding1_classes(best)


def tie_decides(best: pd.DataFrame) -> list[bool]:
    """Per size: whether a depth tied with the choice on validation would give another verdict (the class
    :func:`size_classes` then calls ``open``)."""
    return [_tie_flips(best, i) for i in best.index]


def _finding1(best: pd.DataFrame, unit: str) -> str:
    head = "Finding 1 (fine-tuning beats or matches scratch): "
    best = best[np.isfinite(best["scratch_mean"])]
    if best.empty:
        return head + f"{UNDECIDED}: this table has no scratch runs to compare with."
    k = len(best)
    gaps = f"gaps {best['gap'].min():+.3f} to {best['gap'].max():+.3f} {unit}" if k > 1 else f"gap {best['gap'].iloc[0]:+.3f} {unit}"
    if not np.isfinite(best["p_holm"]).any():
        return (head + f"{UNDECIDED}: the best fine-tuned model was ahead of scratch at {int((best['gap'] > 0).sum())} "
                f"of {k} training-set sizes ({gaps}), but no paired test was possible.")
    classes = pd.Series(_finding1_classes(best), index=best.index)
    worse = best[classes == "worse"]
    counts = classes.value_counts()
    tie_open = int(((classes == "open") & best["val_tied"].astype(bool)).sum())
    verdict = _finding1_verdict(classes)
    text = (head + f"{verdict}. Across {k} training-set sizes (paired tests, Holm-corrected across the sizes), the "
            f"fine-tuning depth chosen on validation beat scratch at {counts.get('better', 0)}")
    matched = counts.get("matched", 0) + counts.get("matched-lower", 0)
    if matched:
        text += (f", matched it at {matched} (the gap's 95% interval stays above -{NI_MARGIN:g} {unit}, the "
                 "non-inferiority margin")
        if counts.get("matched-lower", 0):
            text += f"; at {counts['matched-lower']} of them statistically lower, but by less than the margin"
        text += ")"
    if counts.get("open", 0):
        text += f", could not be told from it at {counts['open']}"
        if tie_open:
            text += f" ({tie_open} of them because levels tied on validation would give different verdicts)"
    if len(worse):
        text += f", and lost to it at {', '.join(_n(n) for n in worse['n_train'])}"
    text += f" ({gaps}). "
    if len(worse):
        text += "Scratch training won at those sizes by more than the margin, unlike the paper."
    elif verdict == HOLDS:
        text += "Fine-tuning was better or as good at every size, in line with the paper."
    else:
        text += ("Neither better nor shown to be as good at every size: the paper's 'beat or matched' needs both "
                 "a win or a non-inferiority margin at each size.")
    return text + _diverged_note(best)


def _finding1_verdict(classes: pd.Series) -> str:
    contributions = {SUPPORTS[c] for c in classes}
    return FAILS if "against" in contributions else HOLDS if contributions == {"supports"} else UNDECIDED


def _diverged_note(best: pd.DataFrame) -> str:
    """Diverged runs beside the verdict, and what the verdict would be with each counted as a failure."""
    if "diverged" not in best.columns:
        return ""
    n_ft, n_sc = int(best["diverged"].sum()), int(best["scratch_diverged"].sum())
    if not n_ft and not n_sc:
        return " No run diverged."
    note = (f" Diverged runs left out: {n_ft} of the chosen fine-tuning, {n_sc} of scratch (per size: "
            + ", ".join(f"{int(n):,} images {int(a)}/{int(b)}" for n, a, b in
                        zip(best["n_train"], best["diverged"], best["scratch_diverged"]) if a or b) + ")")
    sens = best.attrs.get("verdict_with_failures")
    if sens:
        note += f"; counting each divergence as a failure (chance AUC), the verdict would be: {sens}"
    return note + "."


def _finding2(df: pd.DataFrame, best: pd.DataFrame, metric: str, unit: str, n_boot: int, seed: int) -> str:
    head = "Finding 2 (fine-tuning is more robust to less data): "
    r = robustness_contrast(df, best, metric, n_boot=n_boot, seed=seed)
    if "small_n" not in r:
        return head + f"{UNDECIDED}: it needs scratch and fine-tuned runs at two or more training-set sizes."
    detail = (f"going from {_n(r['large_n'])} down to {r['small_n']:,}, scratch lost {r['scratch_drop']:.3f} "
              f"{unit} and the chosen fine-tuning lost {r['ft_drop']:.3f}")
    if not np.isfinite(r["lo"]):
        return head + f"{UNDECIDED}: {detail} (no paired bootstrap possible: point estimates only)."
    ci = f"difference {r['diff']:+.3f}, 95% interval {r['lo']:+.3f} to {r['hi']:+.3f}, {r['test']}"
    if np.isfinite(r.get("logit_lo", math.nan)):
        ci += (f"; on the logit scale, which does not saturate near AUC 1: {r['logit_diff']:+.2f} "
               f"({r['logit_lo']:+.2f} to {r['logit_hi']:+.2f})")
    if r["lo"] > 0:
        return head + f"{HOLDS}: {detail}; fine-tuning was more robust ({ci})."
    if r["hi"] < 0:
        return head + f"{FAILS}: {detail}; scratch was more robust here ({ci})."
    return head + f"{UNDECIDED}: {detail}; the difference is within its interval ({ci})."


def _unclear_sizes(levels: pd.DataFrame) -> pd.DataFrame:
    """Sizes where the depth choice decides nothing: tied on validation, or beaten on test."""
    return levels[levels["val_tied"].astype(bool) | levels["beaten_on_test"].astype(bool)]


def _why_unclear(levels: pd.DataFrame) -> str:
    parts = []
    for _, r in _unclear_sizes(levels).iterrows():
        why = []
        if r["val_tied"]:
            why.append(f"tied on validation with {r['val_tied_with']}")
        if r["beaten_on_test"]:
            why.append(f"beaten on test by {r['beaten_by']}")
        parts.append(f"{int(r['n_train']):,}: {r['best_strategy']} {' and '.join(why)}")
    return "; ".join(parts)


def _finding3(levels: pd.DataFrame, n_levels: int) -> str:
    head = ("Depth by size, within this data set (the best depth changes with training-set size; the paper's "
            "finding 3 is across applications, notebook 07): ")
    if n_levels < 2 or levels.empty:
        return head + f"{UNDECIDED}: fewer than two fine-tuning depths were trained."
    winners = list(levels["best_strategy"])
    pairs = ", ".join(f"{w} at {int(n):,} images" for w, n in zip(winners, levels["n_train"]))
    unclear = _unclear_sizes(levels)
    ties = levels[levels["tied_with"] != ""]
    notes = []
    if len(unclear):
        notes.append(f"the choice decides nothing at {len(unclear)} of {len(levels)} sizes ({_why_unclear(levels)})")
    if len(ties):
        notes.append(f"other depths were within the winner's test interval at {len(ties)} of {len(levels)} sizes "
                     f"({'; '.join(f'{int(n):,}: {t}' for n, t in zip(ties['n_train'], ties['tied_with']))})")
    note = ("; " + "; ".join(notes)) if notes else ""
    clear = levels.drop(unclear.index)
    clear = clear[clear["tied_with"] == ""]   # a choice whose test interval holds another depth is not clear either
    if clear["best_strategy"].nunique() >= 2:
        return head + f"{HOLDS}: the depth chosen on validation changed with training-set size ({pairs}){note}."
    if len(clear) == len(levels) >= 2:
        return (head + f"{FAILS} on this data set: validation chose {winners[0]} at every size{note}. The paper's "
                "finding 3 is about applications; one data set cannot show that.")
    return head + (f"{UNDECIDED}: validation chose {pairs}{note}; fewer than two sizes have a clear and different "
                   "winner, so no change of the best depth is established.")


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
    ends = levels.loc[[small.name, large.name]]
    unclear = _unclear_sizes(ends)
    tied = bool(small["tied_with"] or large["tied_with"])
    if d == 0 and unclear.empty:
        return head + f"{UNDECIDED}: {detail}: the same depth, so no shift was seen."
    verdict = UNDECIDED if tied or len(unclear) or d == 0 else (HOLDS if d > 0 else FAILS)
    text = head + f"{verdict}: {detail}"
    if d:
        settled = verdict != UNDECIDED
        text += ": " + ("shallower with less data" + (", as the paper suggests" if settled else "") if d > 0 else
                        "deeper with less data" + (", the opposite of the paper's advice" if settled else ""))
    if len(unclear):
        text += f"; the choice decides nothing at {_why_unclear(ends)}"
    if tied:
        text += "; other depths were within the test interval at one or both sizes, so the shift is not established"
    return text + "."


def findings(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0) -> list[str]:
    """Four sentences, one per finding of the paper, saying what THIS run found: each starts with
    "holds", "does not hold" or "not decidable at this budget", computed from the table (choices on
    validation AUC, verdicts from the test intervals).

    1. best fine-tuned vs scratch at each size, with the paired test (:func:`best_per_fraction`), Holm-
       corrected across the sizes; "holds" needs a win or non-inferiority (margin
       :data:`helpers.analysis.NI_MARGIN`) at every size, "does not hold" a significant loss at one;
    2. the drop from the largest to the smallest size, scratch vs the chosen fine-tuning: gap(smallest) -
       gap(largest), bootstrapped directly over seeds and test images
       (:func:`helpers.analysis.robustness_contrast`);
    3. "depth by size", within this data set (not the paper's finding 3, which is across applications:
       :mod:`helpers.applications`): whether the depth chosen on validation changes with the training-set size
       (levels only), not decidable where a choice was tied on validation or beaten on test, or where
       other depths sit inside the winner's test interval (the paper's finding 3 is about applications);
    4. whether the winning depth's ``level_index`` is lower at the smallest size than at the largest, not
       decidable where either choice was tied or beaten.
    """
    single_experiment(df, "findings")
    unit = "AUC" if metric.endswith("auc") else "points"
    best = best_per_fraction(df, metric, n_boot=n_boot, seed=seed)
    if len(best) and "diverged" in best.columns and (best["diverged"].sum() or best["scratch_diverged"].sum()):
        failed = best_per_fraction(with_failures(df), metric, n_boot=n_boot, seed=seed)
        failed = failed[np.isfinite(failed["scratch_mean"])]
        if len(failed):
            best.attrs["verdict_with_failures"] = _finding1_verdict(pd.Series(_finding1_classes(failed)))
    names = level_strategies(df)
    levels = best_per_fraction(df, metric, candidates=names, with_test=False) if names else pd.DataFrame()
    if names:
        index = df[df["strategy"].isin(names)]["level_index"]
        levels.attrs.update(min_index=int(index.min()), max_index=int(index.max()))
    return [_finding1(best, unit), _finding2(df, best, metric, unit, n_boot, seed), _finding3(levels, len(names)),
            _finding4(levels, len(names))]


def chosen_level(table: pd.DataFrame, pool: list[str] | None = None) -> pd.Series:
    """The fine-tuning level of a ladder run with the best validation AUC, by the suite's one rule
    (:func:`helpers.choice.choose`: ties within the validation set's resolution go to the shallower level, then
    the lower validation loss). ``pool``: the candidates (default: the ladder's levels, never scratch, the
    statistics-only control or ``auto``). ``val_tied`` on the returned row says whether validation tied it
    with another level, ``val_tied_with`` names them."""
    pool = level_strategies(table) if pool is None else pool
    n_val = float(table["n_val"].median()) if "n_val" in table.columns else math.nan
    ranked = choose(table.rename(columns={SELECT_BY: "_val"}), pool, value="_val",
                    resolution=auc_resolution(n_val, score_tasks(table)))
    if ranked.empty:
        raise ValueError(f"no candidate of {pool} in the table: nothing to choose")
    best = table.loc[ranked.index[0]].copy()
    tied = ranked[ranked["tied"]]
    best["val_tied"] = len(tied) > 1
    best["val_tied_with"] = ", ".join(s for s in tied["strategy"] if s != best["strategy"])
    return best


def ladder_report(table: pd.DataFrame, profile: str, metric: str = "test_auc", n_boot: int = 2000) -> str:
    """Plain words on one ladder run (notebook 03): best level vs scratch (a paired bootstrap over the shared
    test images), and where this differs from the paper."""
    table = decode_results(table)
    tuned = table[table["strategy"] != SCRATCH].sort_values("level_index")
    scratch = table[table["strategy"] == SCRATCH]
    best = chosen_level(table)   # chosen on validation, reported on test
    lines = [f"Level chosen on validation AUC: {best['strategy']}"
             + (f" (tied on validation with {best['val_tied_with']}: the shallower level is taken, so the "
                "choice is a convention, not evidence)" if best["val_tied"] else "")
             + f"; on the test set, {metric_label(metric)} {best[metric]:.3f} "
               f"(95% CI {best[f'{metric}_lo']:.3f}-{best[f'{metric}_hi']:.3f})."]
    if len(scratch):
        s = scratch.iloc[0]
        text = f"Scratch training reached {s[metric]:.3f} (95% CI {s[f'{metric}_lo']:.3f}-{s[f'{metric}_hi']:.3f})"
        if metric == "test_auc" and has_scores(pd.concat([best.to_frame().T, scratch.iloc[:1]])):
            d = paired_bootstrap_delta_multi(np.asarray(s["test_labels"], dtype=int),
                                             [np.asarray(best["test_scores"], dtype=float)],
                                             [np.asarray(s["test_scores"], dtype=float)], n_boot=n_boot)
            verdict = ("better than" if d["lo"] > 0 else "worse than" if d["hi"] < 0 else
                       "not distinguishable from")
            text += (f": the chosen level is {verdict} scratch (paired difference {d['delta']:+.3f}, 95% CI "
                     f"{d['lo']:+.3f} to {d['hi']:+.3f}, p {_fmt_p(d['p'])}, bootstrap over the shared test images; "
                     "one seed, so retraining noise is not in this interval).")
        else:
            text += "."
        lines.append(text)
    shallow, deep = tuned.iloc[0], tuned.iloc[-1]
    lines.append(f"Shallowest level ({shallow['strategy']}): {shallow[metric]:.3f}; deepest ({deep['strategy']}): "
                 f"{deep[metric]:.3f}. The paper found no depth best everywhere: all layers for polyp detection, "
                 "middle layers for frame classification.")
    lines.append(f"Where this differs from the paper: public 28 px MedMNIST images upsampled to the model's input, "
                 f"a '{profile}' training budget ({int(table['steps'].max())} SGD steps, a rate tuned per arm), "
                 f"one seed, and {table['arch'].iloc[0]} rather than Caffe's AlexNet "
                 "unless chosen; read the paired test, not the overlap of two intervals.")
    return "\n".join(lines)
