"""Learning-curve analysis of a sweep's results table.

A sweep trains one model per (dataset, arch, strategy, fraction, seed); each finished run is one
row of a results table (see ``experiments``). This module turns that table into the numbers that
answer the four findings of Tajbakhsh et al. (2016):

1. does a fine-tuned CNN beat (or at worst match) the same CNN trained from scratch?
   -> :func:`gap_to_scratch`, :func:`best_per_fraction`, :func:`summary_table`
2. is fine-tuning more robust to smaller training sets?  -> learning curves, :func:`power_law_table`
3. is one fine-tuning depth best everywhere?             -> :func:`best_per_fraction`
4. does the best depth get shallower with less data?     -> :func:`best_per_fraction`

and :func:`findings` says, in one sentence per finding, what *this* run found.

Conventions
-----------
* ``strategy`` is ``"scratch"``, a fine-tuning level name, or ``"auto"``; ``level_index`` orders the
  levels (0 = only the new head tuned, larger = deeper).
* Every metric analysed here is "higher is better" (AUC, accuracy, sensitivity); a learning-curve
  *error* is ``1 - metric``.
* Table functions accept a table with several (dataset, arch) experiments and analyse each one
  separately (the output then starts with ``dataset`` and ``arch`` columns). :func:`summary_table`,
  :func:`findings` and :func:`fit_power_laws` speak about one experiment and refuse a mixed table.
* If a run was recorded twice for the same (dataset, arch, strategy, fraction, seed), for example by
  a resumed sweep, the last row wins.
"""
from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .metrics import auc_defined, two_level_bootstrap

SCRATCH = "scratch"
AUTO = "auto"
JSON_COLUMNS = ("curve", "test_scores", "test_labels")
EXPERIMENT_KEYS = ("dataset", "arch")
RUN_KEYS = ("dataset", "arch", "strategy", "fraction", "seed")
ALPHA = 0.05
MIN_WILCOXON_SEEDS = 6   # with n seeds the smallest two-sided Wilcoxon p is 2 / 2**n: 0.031 at 6, 0.0625 at 5
PAIRED_BOOTSTRAP = "paired bootstrap over seeds and test images"
TWO_LEVEL = "bootstrap over seeds and test images"
SELECT_BY = "val_auc"   # the column every "best" choice is made on: validation, never test
WILCOXON = "Wilcoxon signed-rank over seeds"

_METRIC_LABELS = {
    "test_auc": "Test AUC",
    "test_acc": "Test accuracy",
    "val_auc": "Validation AUC",
}


# ----------------------------------------------------------------------------- small utilities
def metric_label(metric: str) -> str:
    """A reader-friendly name for a metric column (``"test_sens@10"`` -> ``"Sensitivity at 10% FPR"``)."""
    if metric in _METRIC_LABELS:
        return _METRIC_LABELS[metric]
    match = re.fullmatch(r"(test|val)_sens@(\d+)", metric)
    if match:
        return f"Sensitivity at {match.group(2)}% FPR"
    return metric.replace("_", " ")


def _decode_value(value: Any) -> Any:
    """One JSON cell -> Python list (missing -> empty list); lists pass through unchanged."""
    if isinstance(value, str):
        value = value.strip()
        return json.loads(value) if value else []
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def decode_results(df: pd.DataFrame) -> pd.DataFrame:
    """Parse the JSON list columns (``curve``, ``test_scores``, ``test_labels``) into Python lists.

    Idempotent: cells that are already lists are left alone, so it is safe to call on a table that
    was decoded before. Returns a copy; also turns the empty ``level`` of scratch runs (read back
    from CSV as NaN) into ``""``.
    """
    out = df.copy()
    for col in JSON_COLUMNS:
        if col in out.columns:
            out[col] = pd.Series([_decode_value(v) for v in out[col]], index=out.index, dtype=object)
    if "level" in out.columns:
        out["level"] = out["level"].fillna("").astype(str)
    return out


def _dedupe(df: pd.DataFrame) -> pd.DataFrame:
    """Leave out diverged runs (they have no metrics) and keep the last row of each
    (dataset, arch, strategy, fraction, seed)."""
    if "diverged" in df.columns:
        df = df[~df["diverged"].fillna(False).astype(bool)]
    keys = [k for k in RUN_KEYS if k in df.columns]
    return df.drop_duplicates(subset=keys, keep="last")


def _experiment_keys(df: pd.DataFrame) -> list[str]:
    return [k for k in EXPERIMENT_KEYS if k in df.columns]


def _per_experiment(df: pd.DataFrame, fn: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    """Apply ``fn`` to each (dataset, arch) experiment; prepend the keys; concatenate."""
    keys = _experiment_keys(df)
    if not keys:
        return fn(df)
    parts = []
    for values, sub in df.groupby(keys, sort=False):
        values = values if isinstance(values, tuple) else (values,)
        part = fn(sub)
        for i, (k, v) in enumerate(zip(keys, values)):
            part.insert(i, k, v)
        parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _single_experiment(df: pd.DataFrame, what: str) -> None:
    """Refuse a table that mixes (dataset, arch) experiments."""
    keys = _experiment_keys(df)
    if keys and len(df.groupby(keys)) > 1:
        raise ValueError(f"{what} speaks about one experiment, but the table holds several "
                         f"{'/'.join(keys)} combinations; filter it first, e.g. df[df.dataset == 'pneumoniamnist'].")


def strategy_order(df: pd.DataFrame) -> list[str]:
    """Strategies in teaching order: scratch first, then levels by ``level_index`` ascending, auto last."""
    names = [str(s) for s in pd.unique(df["strategy"])]
    levels = [s for s in names if s not in (SCRATCH, AUTO)]
    index = df[df["strategy"].isin(levels)].groupby("strategy")["level_index"].min()
    levels.sort(key=lambda s: (float(index.get(s, 0)), s))
    return ([SCRATCH] if SCRATCH in names else []) + levels + ([AUTO] if AUTO in names else [])


def level_strategies(df: pd.DataFrame) -> list[str]:
    """The fine-tuning levels only (no scratch, no auto), shallowest first."""
    return [s for s in strategy_order(df) if s not in (SCRATCH, AUTO)]


def fraction_sizes(df: pd.DataFrame) -> dict[float, int]:
    """Training fraction -> training images (median ``n_train`` over the runs at that fraction)."""
    return {float(f): int(round(g.median())) for f, g in df.groupby("fraction")["n_train"]}


def cell_stats(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per (strategy, fraction): mean metric over seeds, its spread and a 95% interval.

    For test AUC with stored test scores the interval is a two-level bootstrap
    (:func:`helpers.metrics.two_level_bootstrap`): every replicate resamples the seeds *and* the test
    images, so it holds both sources of noise. Otherwise it is the across-seed t interval (for
    ``val_auc``, say), or the run's own bootstrap CI when there is one seed. ``ci_method`` says which.
    """
    df = _dedupe(decode_results(df)) if metric == "test_auc" else _dedupe(df)
    lo_col, hi_col = f"{metric}_lo", f"{metric}_hi"
    rows = []
    for (strategy, fraction), g in df.groupby(["strategy", "fraction"], sort=False):
        values = g[metric].astype(float).to_numpy()
        k = len(values)
        mean = float(np.mean(values))
        sd = float(np.std(values, ddof=1)) if k > 1 else math.nan
        if metric == "test_auc" and _has_scores(g):
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
                         mean=mean, sd=sd, n_seeds=k, ci_lo=lo, ci_hi=hi, ci_method=method))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- finding 1: gap to scratch
def _has_scores(frame: pd.DataFrame) -> bool:
    """True when every run stored one score (or one probability row) per test case, on the same labels."""
    if "test_scores" not in frame.columns or "test_labels" not in frame.columns or frame.empty:
        return False
    first = list(frame["test_labels"].iloc[0])
    if not auc_defined(first):
        return False
    return all(len(scores) == len(first) and list(labels) == first
               for scores, labels in zip(frame["test_scores"], frame["test_labels"]))


def _paired_test(ft: pd.DataFrame, sc: pd.DataFrame, metric: str, n_boot: int, seed: int) -> dict[str, Any]:
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
    if metric == "test_auc" and _has_scores(both):
        res = two_level_bootstrap(np.asarray(ft["test_labels"].iloc[0], dtype=int),
                                  [np.asarray(s, dtype=float) for s in ft["test_scores"]],
                                  paired_with=[np.asarray(s, dtype=float) for s in sc["test_scores"]],
                                  n_boot=n_boot, seed=seed)
        out.update(delta=float(res["mean"]), lo=float(res["lo"]), hi=float(res["hi"]), p=float(res["p"]),
                   test=PAIRED_BOOTSTRAP)
    elif not math.isnan(out["wilcoxon_p"]):
        out.update(p=out["wilcoxon_p"], test=WILCOXON)
    else:
        why = "not AUC" if metric != "test_auc" else "no stored test scores"
        out["test"] = f"none ({why}, fewer than {MIN_WILCOXON_SEEDS} seeds)"
    return out


def _gap_one(df: pd.DataFrame, metric: str, n_boot: int, seed: int,
             strategies: Iterable[str] | None) -> pd.DataFrame:
    df = _dedupe(decode_results(df))
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
            row.update(_paired_test(ft.loc[seeds], sc.loc[seeds], metric, n_boot, seed))
            rows.append(row)
    return pd.DataFrame(rows)


def gap_to_scratch(df: pd.DataFrame, metric: str = "test_auc", n_boot: int = 2000, seed: int = 0,
                   strategies: Iterable[str] | None = None) -> pd.DataFrame:
    """Fine-tuned minus scratch, per (fraction, strategy), with a paired test.

    Columns: ``fraction, n_train, strategy, level_index, mean, scratch_mean, gap, n_seeds`` (seeds
    run by both arms), ``delta, lo, hi, p, test, wilcoxon_p``.

    * ``gap`` = mean over seeds of the strategy minus the mean over seeds of scratch.
    * The main test pairs the runs of the same seed and resamples seeds *and* test cases: for AUC with
      stored ``test_scores`` it calls ``metrics.two_level_bootstrap`` with ``paired_with`` (one
      resample of the test set is applied to every seed's pair of models, and the seed pairs are
      drawn with replacement; ``delta`` is AUC(fine-tuned) - AUC(scratch) averaged over seeds,
      ``lo``/``hi`` its 95% interval, ``p`` two-sided), and ``test`` names it.
    * ``wilcoxon_p`` is a Wilcoxon signed-rank test over the per-seed differences, computed only
      with at least 6 paired seeds (NaN otherwise): with n seeds the smallest two-sided p it can
      ever give is 2 / 2**n (0.25 with 3 seeds, 0.0625 with 5, 0.031 with 6), so with fewer seeds it
      can never reach p < .05.
    * Without stored scores (or for a metric other than ``test_auc``) the Wilcoxon p becomes the
      main ``p`` when available; otherwise ``p`` is NaN and ``test`` says why.

    ``strategies`` limits the comparison to some strategies (saves bootstrap time).
    """
    return _per_experiment(df, lambda d: _gap_one(d, metric, n_boot, seed, strategies))


# ----------------------------------------------------------------------------- finding 2: power laws
@dataclass
class PowerLawFit:
    """A learning-curve fit ``error = a * n**-b + c`` (``n`` = training images).

    ``c`` is the error the model would approach with unlimited data, ``b`` how fast it gets there.
    ``*_se`` are standard errors from the fit's covariance matrix (``pcov``); NaN when the fit
    has no residual degrees of freedom (exactly 3 sizes) or the covariance could not be estimated.
    ``ok`` is False when no fit was possible; ``reason`` says why (or carries a caveat when ok).
    """

    a: float = math.nan
    b: float = math.nan
    c: float = math.nan
    a_se: float = math.nan
    b_se: float = math.nan
    c_se: float = math.nan
    n_min: float = math.nan
    n_max: float = math.nan
    n_points: int = 0
    rmse: float = math.nan
    ok: bool = False
    reason: str = ""

    def predict(self, n: Any) -> np.ndarray:
        """Predicted error at training-set size(s) ``n``."""
        return self.a * np.asarray(n, dtype=float) ** (-self.b) + self.c

    @classmethod
    def from_row(cls, row: Any) -> "PowerLawFit":
        """Rebuild a fit from one row of :func:`power_law_table`."""
        get = row.get if hasattr(row, "get") else row.__getitem__
        return cls(**{k: get(k) for k in cls.__dataclass_fields__})


def _power(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * x ** (-b) + c


def fit_power_law(n: Sequence[float], error: Sequence[float]) -> PowerLawFit:
    """Least-squares fit of ``error = a * n**-b + c`` with ``scipy.optimize.curve_fit``.

    Bounds: ``a >= 0``, ``0 <= b <= 2``, ``0 <= c <= 1``. The fit runs on ``n / n_min`` (better
    conditioned; ``a`` and its standard error are converted back with the delta method). The
    initial guess is ``b = 0.5``, ``c`` = half the smallest error, ``a`` = the error at the smallest
    ``n`` minus ``c``. Points may repeat an ``n`` (one per seed) or be means per ``n``; they are
    weighted equally. Uncertainty comes from ``pcov`` only (no bootstrap over seeds: a sweep has
    2-5 seeds, too few to resample).

    With fewer than 3 distinct ``n`` the three parameters are not identifiable: returns
    ``ok=False`` with a reason instead of raising. With exactly 3 the curve passes through the
    points and the standard errors are NaN.
    """
    n_arr, e_arr = np.asarray(n, dtype=float).ravel(), np.asarray(error, dtype=float).ravel()
    keep = np.isfinite(n_arr) & np.isfinite(e_arr) & (n_arr > 0)
    n_arr, e_arr = n_arr[keep], e_arr[keep]
    distinct = int(np.unique(n_arr).size)
    base = PowerLawFit(n_min=float(n_arr.min()) if n_arr.size else math.nan,
                       n_max=float(n_arr.max()) if n_arr.size else math.nan, n_points=int(n_arr.size))
    if distinct < 3:
        return replace(base, reason=f"only {distinct} distinct training-set size(s): a*n^-b + c has 3 "
                                    "parameters, so at least 3 sizes are needed")
    n0 = float(n_arr.min())
    x = n_arr / n0
    c0 = float(np.clip(0.5 * e_arr.min(), 1e-6, 1 - 1e-6))
    a0 = float(max(e_arr[n_arr == n0].mean() - c0, 1e-3))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OptimizeWarning when pcov cannot be estimated
            popt, pcov = optimize.curve_fit(_power, x, e_arr, p0=[a0, 0.5, c0],
                                            bounds=([0.0, 0.0, 0.0], [np.inf, 2.0, 1.0]), maxfev=20000)
    except (RuntimeError, ValueError) as exc:
        return replace(base, reason=f"fit failed: {exc}")
    a_scaled, b, c = (float(v) for v in popt)
    a = a_scaled * n0 ** b
    se = [math.nan] * 3
    if distinct > 3 and np.all(np.isfinite(pcov)):
        jac = np.array([[n0 ** b, a_scaled * n0 ** b * math.log(n0), 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        se = np.sqrt(np.clip(np.diag(jac @ pcov @ jac.T), 0, None))
    notes = []
    if distinct == 3:
        notes.append("exactly 3 sizes: the curve passes through the points, no standard errors")
    for name, value, lo, hi in (("b", b, 0.0, 2.0), ("c", c, 0.0, 1.0)):
        if math.isclose(value, lo, abs_tol=1e-6) or math.isclose(value, hi, abs_tol=1e-6):
            notes.append(f"{name} sits on its bound ({value:g}); its standard error is unreliable")
    rmse = float(np.sqrt(np.mean((_power(x, *popt) - e_arr) ** 2)))
    return replace(base, a=a, b=b, c=c, a_se=float(se[0]), b_se=float(se[1]), c_se=float(se[2]),
                   rmse=rmse, ok=True, reason="; ".join(notes))


def catch_up_size(fit: PowerLawFit, target_error: float) -> tuple[float, bool]:
    """Training images at which ``fit`` reaches ``target_error``: ``n = (a / (target - c))**(1/b)``.

    Returns ``(n, extrapolated)``; ``extrapolated`` is True when ``n`` lies outside the measured
    range ``[fit.n_min, fit.n_max]`` (the power law is then a guess, not a measurement). ``n`` is
    ``inf`` when the target is at or below the fit's floor ``c`` (never reached), ``0.0`` when the
    fit is flat (``b == 0``) and already at or below the target, NaN when the fit is not ok.
    """
    if not fit.ok or not np.isfinite(target_error):
        return math.nan, True
    if target_error <= fit.c:
        return math.inf, True
    if fit.a <= 0 or fit.b <= 0:
        return (0.0, True) if target_error >= fit.a + fit.c else (math.inf, True)
    with np.errstate(over="ignore"):
        n = float(np.power(fit.a / (target_error - fit.c), 1.0 / fit.b))
    return n, bool(n > fit.n_max or n < fit.n_min)


def _curve_points(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (strategy, fraction): training images and mean error ``1 - metric`` over seeds."""
    cells = cell_stats(df, metric)
    cells["error"] = 1.0 - cells["mean"]
    return cells


def fit_power_laws(df: pd.DataFrame, metric: str = "test_auc") -> dict[str, PowerLawFit]:
    """One :func:`fit_power_law` per strategy of one experiment (error = 1 - mean metric per size)."""
    _single_experiment(df, "fit_power_laws")
    points = _curve_points(df, metric)
    fits = {}
    for strategy in strategy_order(df):
        mine = points[points["strategy"] == strategy]
        fits[strategy] = fit_power_law(mine["n_train"], mine["error"])
    return fits


def _power_one(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    points = _curve_points(df, metric)
    tuned = points[points["strategy"] != SCRATCH]
    target_strategy, target_metric = "", math.nan
    if not tuned.empty:   # the target: the fine-tuning chosen on validation at the largest size, its test mean
        chosen = best_per_fraction(df, metric, with_test=False).sort_values("fraction").iloc[-1]
        target_strategy, target_metric = str(chosen["best_strategy"]), float(chosen["mean"])
    rows = []
    for strategy, fit in fit_power_laws(df, metric).items():
        n, extrapolated = catch_up_size(fit, 1.0 - target_metric)
        measured = _measured_catch_up(points[points["strategy"] == strategy], target_metric)
        if measured is not None:   # a measured size already reaches the target: no extrapolation needed
            n, extrapolated = measured, False
        rows.append(dict(strategy=strategy, **asdict(fit), target_strategy=target_strategy,
                         target_metric=target_metric, catch_up_n=n, catch_up_extrapolated=extrapolated,
                         catch_up_x=n / fit.n_max if fit.ok else math.nan))
    return pd.DataFrame(rows)


def _measured_catch_up(points: pd.DataFrame, target_metric: float) -> float | None:
    """The smallest measured training-set size whose mean metric reaches the target, if any."""
    reached = points[points["mean"] >= target_metric]
    return float(reached["n_train"].min()) if len(reached) else None


def power_law_table(df: pd.DataFrame, metric: str = "test_auc") -> pd.DataFrame:
    """Per strategy: the power-law fit of its learning curve and a catch-up size.

    The curve is ``error = 1 - metric`` (mean over seeds) against training images. The *target* is
    the best fine-tuned result: the highest mean metric among non-scratch strategies at the largest
    fraction (``target_strategy``, ``target_metric``). ``catch_up_n`` is the smallest measured size
    that already reaches the target, else the training-set size at which the strategy's fit reaches it -- read on the scratch row, it is how many images
    scratch would need to match fine-tuning; ``catch_up_x`` is that size over the largest size
    measured; ``catch_up_extrapolated`` flags sizes outside the measured range (a guess).

    Columns: ``strategy``, the :class:`PowerLawFit` fields, ``target_strategy, target_metric,
    catch_up_n, catch_up_extrapolated, catch_up_x``. Rebuild a fit with ``PowerLawFit.from_row``.
    """
    return _per_experiment(df, lambda d: _power_one(d, metric))


# ----------------------------------------------------------------------------- convergence
def iterations_to_fraction(curve: Any, fraction: float = 0.95) -> int | None:
    """First logged iteration at which validation AUC reaches ``fraction`` of the curve's *maximum*.

    The maximum (not the final value) is the reference because training keeps the best-validation
    model and early stopping logs a few worse points after it. ``curve`` is a list of
    ``[iteration, val_auc]`` pairs (or its JSON string). Note that AUC's chance level is 0.5, so
    95% of a best AUC of 0.90 is 0.855. Returns None for an empty curve.
    """
    points = sorted((int(it), float(v)) for it, v in _decode_value(curve) if v is not None and np.isfinite(v))
    if not points:
        return None
    threshold = fraction * max(v for _, v in points)
    return next(it for it, v in points if v >= threshold - 1e-12)


def _convergence_one(df: pd.DataFrame, fraction: float) -> pd.DataFrame:
    df = _dedupe(decode_results(df))
    rows = []
    for (strategy, frac), g in df.groupby(["strategy", "fraction"], sort=False):
        reach = [iterations_to_fraction(c, fraction) for c in g["curve"]]
        reach = [r for r in reach if r is not None]
        best = [max(c, key=lambda p: p[1])[0] for c in g["curve"] if len(c)]
        rows.append(dict(strategy=str(strategy), fraction=float(frac), n_train=int(round(g["n_train"].median())),
                         median_iterations=float(np.median(reach)) if reach else math.nan,
                         median_best_iteration=float(np.median(best)) if best else math.nan,
                         n_runs=len(g), n_with_curve=len(reach)))
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {s: i for i, s in enumerate(strategy_order(df))}
    out = out.sort_values(["fraction", "strategy"], key=lambda col: col.map(order) if col.name == "strategy" else col)
    scratch = out[out["strategy"] == SCRATCH].set_index("fraction")["median_iterations"]
    out["speedup_vs_scratch"] = [scratch.get(f, math.nan) / m if m and m > 0 else math.nan
                                 for f, m in zip(out["fraction"], out["median_iterations"])]
    return out.reset_index(drop=True)


def convergence_table(df: pd.DataFrame, fraction: float = 0.95) -> pd.DataFrame:
    """Per strategy and training fraction: median iterations to reach ``fraction`` of the best val AUC.

    Columns: ``strategy, fraction, n_train, median_iterations`` (see :func:`iterations_to_fraction`),
    ``median_best_iteration`` (where validation AUC peaked), ``n_runs, n_with_curve`` and
    ``speedup_vs_scratch`` (scratch's median iterations / this strategy's, same fraction).
    """
    return _per_experiment(df, lambda d: _convergence_one(d, fraction))


# ----------------------------------------------------------------------------- findings 1, 3, 4: the best strategy
def _best_one(df: pd.DataFrame, metric: str, candidates: Sequence[str] | None, with_test: bool,
              n_boot: int, seed: int) -> pd.DataFrame:
    cells = cell_stats(df, metric, n_boot=n_boot, seed=seed)
    by = SELECT_BY if SELECT_BY in df.columns else metric    # a table without validation AUC: said in chosen_by
    chooser = cell_stats(df, by) if by != metric else cells
    pool = list(candidates) if candidates is not None else [s for s in strategy_order(df) if s != SCRATCH]
    rows = []
    for fraction, g in sorted(cells.groupby("fraction"), key=lambda kv: kv[0]):
        choice = chooser[(chooser["fraction"] == fraction) & chooser["strategy"].isin(pool)]
        if choice.empty:
            continue
        ranked = choice.sort_values(["mean", "strategy"], ascending=[False, True])["strategy"].tolist()
        cand = g.set_index("strategy").loc[ranked].reset_index()
        best, others = cand.iloc[0], cand.iloc[1:]
        tied = [s for s, m in zip(others["strategy"], others["mean"]) if best["ci_lo"] <= m <= best["ci_hi"]]
        sc = g[g["strategy"] == SCRATCH]
        sc_mean = float(sc["mean"].iloc[0]) if len(sc) else math.nan
        row = dict(fraction=float(fraction), n_train=int(best["n_train"]), best_strategy=best["strategy"],
                   best_level_index=int(best["level_index"]), chosen_by=by,
                   best_val=float(choice.set_index("strategy").loc[best["strategy"], "mean"]),
                   mean=float(best["mean"]), ci_lo=float(best["ci_lo"]), ci_hi=float(best["ci_hi"]),
                   ci_method=best["ci_method"], n_seeds=int(best["n_seeds"]),
                   runner_up=others["strategy"].iloc[0] if len(others) else "",
                   runner_up_mean=float(others["mean"].iloc[0]) if len(others) else math.nan,
                   tied_with=", ".join(tied), scratch_mean=sc_mean,
                   scratch_ci_lo=float(sc["ci_lo"].iloc[0]) if len(sc) else math.nan,
                   scratch_ci_hi=float(sc["ci_hi"].iloc[0]) if len(sc) else math.nan,
                   gap=float(best["mean"]) - sc_mean, gap_lo=math.nan, gap_hi=math.nan, p=math.nan, test="not run")
        if with_test and len(sc):
            test = _gap_one(df[df["fraction"] == fraction], metric, n_boot, seed, [best["strategy"]])
            if len(test):
                t = test.iloc[0]
                row.update(gap_lo=t["lo"], gap_hi=t["hi"], p=t["p"], test=t["test"])
        rows.append(row)
    return pd.DataFrame(rows)


def best_per_fraction(df: pd.DataFrame, metric: str = "test_auc", candidates: Sequence[str] | None = None,
                      with_test: bool = True, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per training fraction: the best strategy, chosen on mean *validation* AUC over seeds, with its
    test metric, interval and gap to scratch.

    ``candidates`` are the strategies allowed to win: by default every strategy except scratch
    (the question is how the best fine-tuning compares with scratch); pass
    ``level_strategies(df)`` to ask which *depth* is best. The choice reads only ``val_auc``
    (``chosen_by``); test columns are only reported, so the reported test figure is not flattered by
    the choice (shuffling the test columns never changes a choice).

    The interval (``ci_lo, ci_hi``) is the winner's two-level bootstrap interval over seeds and
    test images (see :func:`cell_stats`). ``tied_with`` lists other candidates whose test mean lies
    inside that interval: the ranking between them is not established.
    ``gap, gap_lo, gap_hi, p, test`` compare the winner with scratch via :func:`gap_to_scratch`
    (skipped with ``with_test=False``).
    """
    return _per_experiment(df, lambda d: _best_one(d, metric, candidates, with_test, n_boot, seed))


# ----------------------------------------------------------------------------- plain-words output
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
