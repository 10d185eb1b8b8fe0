"""Summaries of a polyp-detection results table: FROC bands, sensitivity tables, the hard-negative round,
and the study's polyp claim in plain words.

Every function reads the table that :func:`helpers.runner.run_sweep` builds from
:func:`helpers.detection.experiment.run_polyp` rows (one row per strategy, training fraction and seed);
nothing here trains or detects. Choices (the best tuned level) are made on the validation FROC score
(``val_score``; ties broken toward the shallower level and flagged), bands for plots come from a bootstrap over
seeds and test sequences, and comparisons from a paired bootstrap of the differences, which resamples the
test sequences and seeds jointly for both arms (:mod:`helpers.detection.froc`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..bootstrap import MIN_TEST_SEQUENCES
from ..choice import choose
from ..finetune import ladder
from ..metrics import format_ci
from ..models import build_model
from . import froc
from ..schema import AUTO, SCRATCH, SELECT_BY, STATISTICS
from ..verdicts import FAILS, HOLDS, UNDECIDED



def finished(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that did not diverge (:func:`diverged_note` counts the others beside every verdict)."""
    if "diverged" not in table:
        return table
    return table[~table["diverged"].fillna(False).astype(bool)]


def diverged_note(table: pd.DataFrame) -> str:
    """One sentence: how many runs diverged, per strategy and training share (left out of every mean and
    interval; if one arm diverges more at small sizes, its surviving seeds are a selected subset)."""
    if "diverged" not in table or table.empty:
        return "No run diverged."
    bad = table[table["diverged"].fillna(False).astype(bool)]
    if bad.empty:
        return "No run diverged."
    per = bad.groupby(["strategy", "fraction"]).size()
    return (f"Diverged runs left out: {len(bad)} of {len(table)} (" + ", ".join(
        f"{s} at {f:.0%}: {n}" for (s, f), n in per.items()) + "); their arms' means rest on the seeds that finished.")


def matches_frame(row: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored candidate matches and frame table of one result row, as DataFrames."""
    return pd.DataFrame(row["matches"]), pd.DataFrame(row["frame_table"])


def _ordered(table: pd.DataFrame) -> list[str]:
    """Strategies: scratch first, then the ladder from shallow to deep."""
    order = table.groupby("strategy")["level_index"].first().sort_values()
    return list(order.index)


def froc_bands(table: pd.DataFrame, fp_grid: Sequence[float] | None = None, n_boot: int = 300,
               seed: int = 0) -> pd.DataFrame:
    """FROC per strategy and fraction, averaged over seeds, with a 95% band over seeds and test sequences."""
    grid = froc.FP_GRID if fp_grid is None else np.asarray(fp_grid, dtype=float)
    parts = []
    for (strategy, fraction), rows in finished(table).groupby(["strategy", "fraction"], sort=False):
        runs = [matches_frame(r) for _, r in rows.iterrows()]
        band = froc.froc_band_over_seeds(runs, grid, n_boot=n_boot, seed=seed)
        parts.append(band.assign(strategy=strategy, fraction=fraction, level_index=rows["level_index"].iloc[0]))
    return pd.concat(parts, ignore_index=True)


def sensitivity_table(table: pd.DataFrame, rates: Sequence[float] = froc.FP_RATES, n_boot: int = 500,
                      seed: int = 0) -> pd.DataFrame:
    """Sensitivity (95% band over seeds and test sequences) at each rate, one row per strategy and fraction."""
    bands = froc_bands(table, rates, n_boot, seed)
    done = finished(table)
    rows = []
    for (fraction, strategy), band in bands.groupby(["fraction", "strategy"], sort=False):
        mine = done[(done["strategy"] == strategy) & (done["fraction"] == fraction)]
        row = {"strategy": strategy, "training sequences": f"{fraction:.0%}", "seeds": len(mine),
               "rate": ", ".join(f"{v:g}" for v in sorted(mine["lr_used"].unique())),
               "validation FROC score": round(float(mine["val_score"].mean()), 3)}
        for _, r in band.iterrows():
            row[f"sensitivity at {r['fp_per_frame']:g} FP/frame"] = format_ci(r["sensitivity"], r["lo"], r["hi"], 2)
        rows.append((fraction, band["level_index"].iloc[0], row))
    return pd.DataFrame([r for _, _, r in sorted(rows, key=lambda t: (-t[0], t[1]))])


def _sensitivity_at(curve, rate: float) -> float:
    """The best sensitivity of a stored FROC curve (``[[fp_per_frame, sensitivity], ...]``) at or below
    ``rate`` false positives per frame; NaN for a run without a curve."""
    points = [(float(fp), float(sens)) for fp, sens in curve] if isinstance(curve, (list, tuple)) else []
    if not points:
        return float("nan")
    return max((sens for fp, sens in points if fp <= rate + 1e-12), default=0.0)


def hard_negative_table(table: pd.DataFrame, rates: Sequence[float] = (froc.FP_RATES[0], froc.FP_RATES[-1])) -> pd.DataFrame:
    """Validation FROC score before and after the hard-negative round, mean over seeds, per strategy.

    Besides the score (``before``, ``after``), the validation sensitivity at each of ``rates`` false
    positives per frame before and after the round (``sens@<rate> before`` / ``after``, means over seeds),
    to read *where* on the curve the round moved it: at the low-FP end (the most confident false alarms,
    which are what the round mines) or at the high-FP end."""
    done = finished(table).copy()
    done = done[done["fraction"] == done["fraction"].max()]
    extra = {}
    for rate in rates:
        for when in ("before", "after"):
            column = f"sens@{rate:g} {when}"
            done[column] = [_sensitivity_at(c, rate) for c in done.get(f"val_froc_{when}", [None] * len(done))]
            extra[column] = (column, "mean")
    out = done.groupby("strategy").agg(before=("val_figure_before", "mean"), after=("val_figure_after", "mean"),
                                       **extra, hard_negatives=("n_hard_negatives", "mean"),
                                       kept_after=("kept", lambda k: int((k == "after").sum())),
                                       runs=("kept", "size"))
    return out.loc[[s for s in _ordered(done) if s in out.index]].round(3)




def best_tuned_choice(table: pd.DataFrame, pool: Sequence[str] | None = None) -> tuple[str | None, bool, list[str]]:
    """The tuned level chosen on validation at the largest fraction: ``(level, tied, tied_with)``.

    The suite's one rule (:func:`helpers.choice.choose`): the highest mean validation figure over seeds
    (``val_score``: the FROC score for detection, Dice for segmentation) wins; exact ties (common: a validation
    set of a few dozen frames saturates the figure) go to the shallower level (lower ``level_index``: fewer
    trainable parameters), then the lower mean validation loss, never the name. ``pool``: the candidates
    (default: every level, never scratch, the statistics-only control or ``auto``). ``tied`` says whether
    another level reached the same figure, ``tied_with`` names those levels (shallow to deep). Test columns
    are never read. ``(None, False, [])`` when no tuned level finished.
    """
    done = finished(table)
    done = done[done["fraction"] == done["fraction"].max()]
    pool = [s for s in dict.fromkeys(done["strategy"]) if s not in (SCRATCH, STATISTICS, AUTO)] \
        if pool is None else list(pool)
    agg = {"val": (SELECT_BY, "mean"), "level_index": ("level_index", "first")}
    if "val_loss" in done:
        agg["val_loss"] = ("val_loss", "mean")
    per = done.groupby("strategy").agg(**agg).reset_index() if len(done) else pd.DataFrame()
    ranked = choose(per, pool, value="val") if len(per) else per
    if ranked.empty:
        return None, False, []
    tied = [str(s) for s in ranked["strategy"][ranked["tied"]]]
    return str(ranked["strategy"].iloc[0]), len(tied) > 1, tied[1:]


def best_tuned_level(table: pd.DataFrame) -> str | None:
    """The tuned level chosen on validation at the largest fraction (see :func:`best_tuned_choice` for ties)."""
    return best_tuned_choice(table)[0]


def paired_differences(table: pd.DataFrame, reference: str, rates: Sequence[float] = froc.FP_RATES,
                       n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Sensitivity of ``reference`` minus every other strategy, paired by seed and test sequence.

    One row per other strategy and rate, at the largest fraction: ``strategy, level_index, fp_per_frame``
    and the columns of :func:`froc.paired_froc_difference` (``delta`` = reference - strategy, ``lo``, ``hi``,
    ``p``, ...). Runs are paired by ``seed``; only seeds that both strategies finished count.
    """
    done = finished(table)
    full = done[done["fraction"] == done["fraction"].max()]
    if full.duplicated(["strategy", "seed"]).any():
        raise ValueError("paired_differences needs one row per strategy and seed at the largest fraction")
    ref = full[full["strategy"] == reference].set_index("seed")
    parts = []
    for strategy in _ordered(full):
        if strategy == reference:
            continue
        other = full[full["strategy"] == strategy].set_index("seed")
        seeds = sorted(set(ref.index) & set(other.index))
        if not seeds:
            continue
        diff = froc.paired_froc_difference([matches_frame(ref.loc[s]) for s in seeds],
                                           [matches_frame(other.loc[s]) for s in seeds], rates, n_boot, seed)
        parts.append(diff.assign(strategy=strategy, level_index=int(other["level_index"].iloc[0])))
    columns = ["strategy", "level_index", "fp_per_frame", "sensitivity_a", "sensitivity_b", "delta", "lo", "hi",
               "p", "n_runs", "n_boot"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def _is_all_layers(arch: str, level: str) -> bool:
    """Whether ``level`` is the last rung of its architecture's ladder (every layer tuned)."""
    return ladder(build_model(arch, 2, image_size=64))[-1].name == level


def _diff_text(row: pd.Series) -> str:
    return f"{row['delta']:+.2f} ({row['lo']:+.2f} to {row['hi']:+.2f}, p = {row['p']:.2g})"


def all_layers_verdict(paired: pd.DataFrame, rate: float, n_sequences: int = MIN_TEST_SEQUENCES) -> tuple[str, str]:
    """The study's polyp claim, "tuning all layers is best", at one FP rate: (verdict, reason).

    ``paired`` from :func:`paired_differences` with the all-layers level as reference (rows: all layers
    minus each other strategy; scratch rows are ignored: the claim compares tuned levels). Read from the
    paired differences, not from overlapping bands: every level is scored on the same test sequences and
    seeds. holds: the 95% interval of all layers minus every other tuned level lies above 0; does not
    hold: some tuned level's difference lies below 0 (that level is better); otherwise not decidable.
    """
    at = paired[np.isclose(paired["fp_per_frame"], rate) & (paired["strategy"] != SCRATCH)]
    if at.empty:
        return UNDECIDED, "fewer than two tuned levels were trained"
    if n_sequences < MIN_TEST_SEQUENCES:
        return UNDECIDED, (f"the test frames come from {n_sequences} sequence(s), fewer than {MIN_TEST_SEQUENCES}: "
                           "no interval is honest")
    diffs = "; ".join(f"minus {r['strategy']} {_diff_text(r)}" for _, r in at.iterrows())
    better = at[at["hi"] < 0]
    if len(better):
        return FAILS, f"{', '.join(better['strategy'])} better than all layers (all layers {diffs})"
    if (at["lo"] > 0).all():
        return HOLDS, f"all layers above every other tuned level (all layers {diffs})"
    return UNDECIDED, f"some paired interval holds 0 (all layers {diffs})"


def detection_report(table: pd.DataFrame, rates: Sequence[float] = froc.FP_RATES, n_boot: int = 500,
                     seed: int = 0) -> list[str]:
    """Plain sentences, computed from the table, on this run against the study's polyp finding.

    Comparisons are paired (:func:`paired_differences`): the same test sequences and seeds for both arms.
    """
    done = finished(table)
    full = done[done["fraction"] == done["fraction"].max()]
    n_seq = int(full["test_sequences"].iloc[0])
    lines = [f"{len(full)} runs at {full['fraction'].max():.0%} of the training sequences, "
             f"{full.groupby('strategy').size().min()} seed(s) each, every run scored on the same "
             f"{int(full['test_frames'].iloc[0])} test frames ({n_seq} sequences). {diverged_note(table)}"]
    best, tied, tied_with = best_tuned_choice(full)
    if best is not None:
        lines.append(f"The tuned level with the best validation FROC score is {best} (chosen on validation "
                     "sequences, never on test).")
        if tied:
            lines.append(f"That choice was a tie on validation with {', '.join(tied_with)}, broken toward the "
                         "shallower level: validation did not decide it.")
        deepest = full.loc[full["level_index"].idxmax(), "strategy"]
        if not _is_all_layers(full["arch"].iloc[0], deepest):
            lines.append("The deepest level trained does not tune every layer: the study's claim is not tested.")
        else:
            paired = paired_differences(full[full["strategy"] != SCRATCH], deepest, rates, n_boot, seed)
            for rate in rates:
                verdict, why = all_layers_verdict(paired, rate, n_seq)
                lines.append(f"Study's claim 'tuning all layers is best' at {rate:g} FP/frame: {verdict} ({why}).")
    if SCRATCH in set(full["strategy"]) and best is not None:
        vs = paired_differences(full[full["strategy"].isin([best, SCRATCH])], best, rates, n_boot, seed)
        for rate in rates:
            at = vs[np.isclose(vs["fp_per_frame"], rate)] if len(vs) else vs
            if at.empty:
                lines.append(f"At {rate:g} FP/frame the chosen level {best} and scratch share no finished seed: "
                             "no paired comparison.")
                continue
            d = at.iloc[0]
            few = n_seq < MIN_TEST_SEQUENCES
            word = (f"not distinguishable (fewer than {MIN_TEST_SEQUENCES} test sequences) from" if few else
                    "above" if d["lo"] > 0 else "below" if d["hi"] < 0 else "not distinguishable from")
            diff = _diff_text(d) if not few else f"{d['delta']:+.2f}, no interval from {n_seq} sequence(s)"
            lines.append(f"At {rate:g} FP/frame the chosen level {best} ({d['sensitivity_a']:.2f}) is {word} scratch "
                         f"({d['sensitivity_b']:.2f}; paired difference {diff}).")
    if done["fraction"].nunique() > 1:
        key = "froc_sens@0.5"
        means = done.groupby(["strategy", "fraction"])[key].mean().unstack()
        gain = (means.iloc[:, -1] - means.iloc[:, 0]).dropna()
        lines.append("Sensitivity at 0.5 FP/frame gained from the smallest to the largest training set "
                     "(negative: lost): " + ", ".join(f"{k} {v:+.2f}" for k, v in gain.items()) + ".")
    return lines
