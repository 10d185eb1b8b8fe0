"""Summaries of a polyp-detection results table: FROC bands, sensitivity tables, the hard-negative round,
and the study's polyp claim in plain words.

Every function reads the table that :func:`helpers.runner.run_sweep` builds from
:func:`helpers.detection.experiment.run_polyp` rows (one row per strategy, training fraction and seed);
nothing here trains or detects. Choices (the best tuned level) are made on the validation FROC figure
(``val_auc``), bands come from a bootstrap over seeds and test sequences (:mod:`helpers.detection.froc`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..finetune import ladder
from ..metrics import format_ci
from ..models import build_model
from . import froc

HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "not decidable at this budget"


def finished(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs that did not diverge."""
    if "diverged" not in table:
        return table
    return table[~table["diverged"].fillna(False).astype(bool)]


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
               "rate": ", ".join(f"{v:g}" for v in sorted(mine["lr"].unique())),
               "validation figure": round(float(mine["val_auc"].mean()), 3)}
        for _, r in band.iterrows():
            row[f"sensitivity at {r['fp_per_frame']:g} FP/frame"] = format_ci(r["sensitivity"], r["lo"], r["hi"], 2)
        rows.append((fraction, band["level_index"].iloc[0], row))
    return pd.DataFrame([r for _, _, r in sorted(rows, key=lambda t: (-t[0], t[1]))])


def hard_negative_table(table: pd.DataFrame) -> pd.DataFrame:
    """Validation FROC figure before and after the hard-negative round, mean over seeds, per strategy."""
    done = finished(table)
    done = done[done["fraction"] == done["fraction"].max()]
    out = done.groupby("strategy").agg(before=("val_figure_before", "mean"), after=("val_figure_after", "mean"),
                                       hard_negatives=("n_hard_negatives", "mean"),
                                       kept_after=("kept", lambda k: int((k == "after").sum())),
                                       runs=("kept", "size"))
    return out.loc[[s for s in _ordered(done) if s in out.index]].round(3)


def best_tuned_level(table: pd.DataFrame) -> str | None:
    """The tuned level with the best mean validation figure over seeds, at the largest fraction."""
    done = finished(table)
    done = done[(done["fraction"] == done["fraction"].max()) & (done["strategy"] != "scratch")]
    if done.empty:
        return None
    return str(done.groupby("strategy")["val_auc"].mean().idxmax())


def _is_all_layers(arch: str, level: str) -> bool:
    """Whether ``level`` is the last rung of its architecture's ladder (every layer tuned)."""
    return ladder(build_model(arch, 2, image_size=64))[-1].name == level


def all_layers_verdict(bands: pd.DataFrame, rate: float, n_sequences: int = 2) -> tuple[str, str]:
    """The study's polyp claim, "tuning all layers is best", at one FP rate: (verdict, reason).

    ``bands`` from :func:`froc_bands` at the largest fraction. Read as the study read its figures:
    non-overlapping 95% bands count as a difference. holds: all layers has the highest sensitivity
    and its band lies above every other tuned level's; does not hold: some tuned level's band lies
    above it; otherwise not decidable at this budget.
    """
    at = bands[np.isclose(bands["fp_per_frame"], rate) & (bands["strategy"] != "scratch")]
    if at["strategy"].nunique() < 2:
        return UNDECIDED, "fewer than two tuned levels were trained"
    if n_sequences < 2:
        return UNDECIDED, "the test frames come from one sequence, so there is no band to compare"
    deepest = at.loc[at["level_index"].idxmax()]
    others = at[at["strategy"] != deepest["strategy"]]
    above = others[others["lo"] > deepest["hi"]]
    if len(above):
        return FAILS, f"{', '.join(above['strategy'])} lies above all layers ({deepest['sensitivity']:.2f})"
    if deepest["sensitivity"] >= others["sensitivity"].max() and (deepest["lo"] > others["hi"]).all():
        return HOLDS, f"all layers {deepest['sensitivity']:.2f}, its band above every other tuned level"
    return UNDECIDED, (f"all layers {deepest['sensitivity']:.2f} ({deepest['lo']:.2f}-{deepest['hi']:.2f}); "
                       "the bands overlap")


def detection_report(table: pd.DataFrame, rates: Sequence[float] = froc.FP_RATES, n_boot: int = 500,
                     seed: int = 0) -> list[str]:
    """Plain sentences, computed from the table, on this run against the study's polyp finding."""
    done = finished(table)
    full = done[done["fraction"] == done["fraction"].max()]
    bands = froc_bands(full, rates, n_boot, seed)
    lines = [f"{len(full)} runs at {full['fraction'].max():.0%} of the training sequences, "
             f"{full.groupby('strategy').size().min()} seed(s) each, every run scored on the same "
             f"{int(full['test_frames'].iloc[0])} test frames ({int(full['test_sequences'].iloc[0])} sequences)."]
    best = best_tuned_level(full)
    if best is not None:
        lines.append(f"The tuned level with the best validation FROC figure is {best} (chosen on validation "
                     "sequences, never on test).")
        deepest = full.loc[full["level_index"].idxmax(), "strategy"]
        if not _is_all_layers(full["arch"].iloc[0], deepest):
            lines.append("The deepest level trained does not tune every layer: the study's claim is not tested.")
        else:
            for rate in rates:
                verdict, why = all_layers_verdict(bands, rate, int(full["test_sequences"].iloc[0]))
                lines.append(f"Study's claim 'tuning all layers is best' at {rate:g} FP/frame: {verdict} ({why}).")
    if "scratch" in set(full["strategy"]) and best is not None:
        for rate in rates:
            at = bands[np.isclose(bands["fp_per_frame"], rate)].set_index("strategy")
            s, b = at.loc["scratch"], at.loc[best]
            word = ("not distinguishable (one test sequence) from" if full["test_sequences"].iloc[0] < 2 else
                    "above" if b["lo"] > s["hi"] else "below" if b["hi"] < s["lo"] else "not distinguishable from")
            lines.append(f"At {rate:g} FP/frame the chosen level {best} ({b['sensitivity']:.2f}) is {word} scratch "
                         f"({s['sensitivity']:.2f}, {s['lo']:.2f}-{s['hi']:.2f}).")
    if done["fraction"].nunique() > 1:
        key = "froc_sens@0.5"
        means = done.groupby(["strategy", "fraction"])[key].mean().unstack()
        gain = (means.iloc[:, -1] - means.iloc[:, 0]).dropna()
        lines.append("Sensitivity at 0.5 FP/frame gained from the smallest to the largest training set "
                     "(negative: lost): " + ", ".join(f"{k} {v:+.2f}" for k, v in gain.items()) + ".")
    return lines
