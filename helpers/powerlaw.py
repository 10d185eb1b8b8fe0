"""Learning-curve power laws: fit ``error = a * n**-b + c`` to (training images, error) points and ask
where a curve reaches a given error. Pure numbers; :mod:`helpers.analysis` applies them to results tables.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
from scipy import optimize


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
