"""Finding 2 on a results table: learning-curve power laws per strategy (the fits are :mod:`helpers.powerlaw`), the
size at which scratch would catch up with the chosen fine-tuning, and its interval."""
from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np
import pandas as pd

from .analysis import MIN_CATCH_UP_SIZES, best_per_fraction, cell_stats
from . import bootstrap
from .powerlaw import PowerLawFit, catch_up_size, fit_power_law
from .schema import SCRATCH
from .tables import decode_results, dedupe, fraction_sizes, has_scores, per_experiment, single_experiment, strategy_order

NEAR_CHANCE = 0.55      # learning-curve points at or below this AUC are left out of power-law fits


CATCH_UP_LIMIT = 2.0    # a catch-up size beyond this multiple of the largest measured size is not reported



def curve_points(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (strategy, fraction): training images and mean error ``1 - metric`` over seeds."""
    cells = cell_stats(df, metric)
    cells["error"] = 1.0 - cells["mean"]
    return cells



def _fit_points(points: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The learning-curve points a power law is fitted to: for AUC, points at or below
    :data:`NEAR_CHANCE` are left out (a curve at chance has no error to shrink by a power law)."""
    return points[points["mean"] > NEAR_CHANCE] if metric.endswith("auc") else points



def fit_power_laws(df: pd.DataFrame, metric: str = "test_auc") -> dict[str, PowerLawFit]:
    """One :func:`fit_power_law` per strategy of one experiment (error = 1 - mean metric per size; AUC
    points near chance left out, see :func:`_fit_points`). Degrees of freedom: sizes minus 3."""
    single_experiment(df, "fit_power_laws")
    points = _fit_points(curve_points(df, metric), metric)
    fits = {}
    for strategy in strategy_order(df):
        mine = points[points["strategy"] == strategy]
        fits[strategy] = fit_power_law(mine["n_train"], mine["error"])
    return fits



def _catch_up(points: pd.DataFrame, target_metric: float, metric: str) -> tuple[float, bool]:
    """(size, extrapolated) at which one strategy's curve reaches ``target_metric``: the smallest measured
    size that already does, else its power law's (:func:`catch_up_size`)."""
    measured = _measured_catch_up(points, target_metric)
    if measured is not None:
        return measured, False
    fit_on = _fit_points(points, metric)
    return catch_up_size(fit_power_law(fit_on["n_train"], 1.0 - fit_on["mean"]), 1.0 - target_metric)



def _catch_up_interval(df: pd.DataFrame, strategy: str, target_strategy: str, metric: str, n_boot: int,
                       seed: int) -> tuple[float, float]:
    """Percentile 95% interval of the catch-up size over seeds and test images, both levels resampled and paired.

    Every replicate draws the seeds with replacement once for every cell (seed r of every size and of the
    target comes together: paired) and, for AUC with stored scores, resamples the test images once for every
    run (:func:`helpers.bootstrap.bootstrap_distribution` with one seed: the same resamples for all runs), then
    recomputes the cell means and the catch-up size. Replicates that never catch up count as infinite,
    replicates whose power law cannot be fitted are left out. Only the seeds every cell finished count. A
    percentile interval over both levels counts each run's own test noise twice (docs/methods.md) and reads
    normal quantiles from 3-5 seeds: it is rough, for the order of magnitude only, and errs wide."""
    rng = np.random.default_rng(seed)
    sizes = fraction_sizes(df)
    top = float(df["fraction"].max())
    cells = {float(f): g.set_index("seed") for f, g in df[df["strategy"] == strategy].groupby("fraction")}
    target = df[(df["strategy"] == target_strategy) & (df["fraction"] == top)].set_index("seed")
    if not cells or target.empty:
        return math.nan, math.nan
    seeds = sorted(set(target.index).intersection(*(set(c.index) for c in cells.values())))
    if not seeds:
        return math.nan, math.nan
    frames = {**{("mine", f): c.loc[seeds] for f, c in cells.items()}, ("target", top): target.loc[seeds]}
    both = pd.concat(frames.values())
    if metric == "test_auc" and has_scores(both):
        labels = np.asarray(both["test_labels"].iloc[0], dtype=int)
        reps = {k: np.stack([bootstrap.bootstrap_distribution(labels, np.asarray(s, dtype=float), "auc", n_boot, seed)
                             for s in f["test_scores"]]) for k, f in frames.items()}       # (R, B) per cell
    else:
        reps = {k: np.repeat(f[metric].to_numpy(float)[:, None], n_boot, axis=1) for k, f in frames.items()}
    values = []
    for b in range(n_boot):
        pick = rng.integers(0, len(seeds), len(seeds))
        means = {k: float(np.mean(v[pick, b])) for k, v in reps.items()}
        if not all(np.isfinite(m) for m in means.values()):
            continue
        curve = pd.DataFrame([dict(n_train=sizes[f], mean=means[("mine", f)]) for f in cells])
        n, _ = _catch_up(curve, means[("target", top)], metric)
        if not np.isnan(n):   # a replicate whose power law could not be fitted says nothing either way
            values.append(n)
    if not values:
        return math.nan, math.nan
    lo, hi = np.quantile(np.asarray(values, dtype=float), [0.025, 0.975], method="inverted_cdf")
    return float(lo), float(hi)



def _power_one(df: pd.DataFrame, metric: str, n_boot: int, seed: int) -> pd.DataFrame:
    df = dedupe(decode_results(df))
    points = curve_points(df, metric)
    tuned = points[points["strategy"] != SCRATCH]
    target_strategy, target_metric = "", math.nan
    if not tuned.empty:   # the target: the fine-tuning chosen on validation at the largest size, its test mean
        chosen = best_per_fraction(df, metric, with_test=False).sort_values("fraction").iloc[-1]
        target_strategy, target_metric = str(chosen["best_strategy"]), float(chosen["mean"])
    rows = []
    for strategy, fit in fit_power_laws(df, metric).items():
        n, extrapolated = _catch_up(points[points["strategy"] == strategy], target_metric, metric)
        lo, hi = (_catch_up_interval(df, strategy, target_strategy, metric, n_boot, seed)
                  if target_strategy and n_boot else (math.nan, math.nan))
        limit = CATCH_UP_LIMIT * float(points["n_train"].max())
        note = ""
        if not np.isfinite(target_metric):
            note = "no fine-tuned target"
        elif strategy == target_strategy:   # it defines the target at the largest size: nothing to catch up
            note = "the target itself"
            n, lo, hi, extrapolated = math.nan, math.nan, math.nan, False
        elif not fit.ok and extrapolated:
            note = f"no power law: {fit.reason}"
        elif extrapolated and fit.n_points < MIN_CATCH_UP_SIZES:
            note = (f"not reported: extrapolating needs at least {MIN_CATCH_UP_SIZES} sizes on the curve, and "
                    f"{fit.n_points} points fit the 3-parameter power law exactly")
            n, lo, hi = math.nan, math.nan, math.nan
        elif not np.isfinite(n) or n > limit:
            note = (f"not reported: the fit would reach the target only beyond {CATCH_UP_LIMIT:g}x the largest size "
                    f"measured ({int(points['n_train'].max()):,} images), where a power law fitted to "
                    f"{fit.n_points} points is no evidence")
            n, lo, hi = math.nan, math.nan, math.nan
        lo, hi = (math.inf if v > limit else v for v in (lo, hi))   # beyond the limit: only "more than 2x" is said
        rows.append(dict(strategy=strategy, **asdict(fit), dof=max(fit.n_points - 3, 0),
                         target_strategy=target_strategy, target_metric=target_metric, catch_up_n=n,
                         catch_up_extrapolated=extrapolated, catch_up_lo=lo, catch_up_hi=hi, catch_up_note=note,
                         catch_up_x=n / fit.n_max if fit.ok and np.isfinite(n) else math.nan))
    return pd.DataFrame(rows)



def _measured_catch_up(points: pd.DataFrame, target_metric: float) -> float | None:
    """The smallest measured training-set size whose mean metric reaches the target, if any."""
    reached = points[points["mean"] >= target_metric]
    return float(reached["n_train"].min()) if len(reached) else None



def power_law_table(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per strategy: the power-law fit of its learning curve and a catch-up size.

    The curve is ``error = 1 - metric`` (mean over seeds) against training images; for AUC, points at or
    below :data:`NEAR_CHANCE` are left out of the fit. ``dof`` is the fit's residual degrees of freedom
    (points minus 3 parameters: 4 sizes leave one). The *target* is the fine-tuning chosen on validation at
    the largest fraction (``target_strategy``) and its test mean (``target_metric``). ``catch_up_n`` is the
    smallest measured size that already reaches the target, else the size at which the strategy's fit
    reaches it -- read on the scratch row, it is how many images scratch would need to match fine-tuning;
    ``catch_up_extrapolated`` flags a size outside the measured range. The target's own row has no
    catch-up (NaN, note "the target itself"). A size beyond
    :data:`CATCH_UP_LIMIT` times the largest one measured is refused (NaN, ``catch_up_note`` says why).
    ``catch_up_lo, catch_up_hi``: a percentile 95% interval over seeds (``n_boot`` replicates); an end
    beyond the limit is inf ("more than 2x"), and a refused size has no interval. ``catch_up_x`` is the size over the largest size measured.

    Rebuild a fit with ``PowerLawFit.from_row``.
    """
    return per_experiment(df, lambda d: _power_one(d, metric, n_boot, seed))
