"""The paper's finding 3 as the paper meant it: across applications.

Tajbakhsh et al. found that no fine-tuning depth was best everywhere: polyp detection wanted all layers,
frame classification the middle ones, PE detection saturated after the late fully connected layers and
boundary segmentation was flat from conv5 upward. This module reads the results stores of the suite's
applications (classification in notebook 04, detection in 05, segmentation in 07), and per application, at
its largest training size:

- the depth chosen on validation (the suite's rule: the best mean validation figure over seeds, a tie broken
  toward the shallower level and flagged);
- every other arm's paired test difference to it (arm minus chosen, paired by seed and by test image,
  sequence or frame; a 95% interval).

:func:`finding3_across` then states the finding: **holds** when every depth costs more than
:data:`helpers.analysis.NI_MARGIN` against the choice in some application (no single depth serves all);
**does not hold** when one depth is, in every application, the choice or within the margin of it (its
interval's lower end above minus the margin); otherwise **not decidable at this budget** (the proof that the
two cannot both be met is in its docstring). Depths are compared by level name, so the applications must share the network.
"""
from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis, tables
from .paths import arch_label
from .analysis import NI_MARGIN, SCRATCH
from .detection import report as detection_report
from .segmentation import report as segmentation_report
from .runner import sweep_rows
from .store import ResultsStore
from .verdicts import FAILS, HOLDS, UNDECIDED

DETECTION_RATE = 0.5     # detection arms are compared on sensitivity at this many false positives per frame


@dataclass(frozen=True)
class Application:
    """One application's results: a name, its kind (``classification``, ``detection`` or ``segmentation``)
    and the results store (folder) its notebook wrote. ``dataset`` keeps only the store's runs on that data
    set (the polyp stores hold the runs of every folder a notebook was pointed at); ``rows``, when given, are
    the application's own sweep rows (a notebook's table) and are read instead of the store."""

    name: str
    kind: str
    store: Path
    dataset: str | None = None
    rows: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def metric(self) -> str:
        """The test figure the arms are compared on."""
        return {"classification": "test AUC", "detection": f"sensitivity at {DETECTION_RATE:g} FP/frame",
                "segmentation": "test Dice"}[self.kind]


COLUMNS = ["application", "metric", "n_train", "chosen", "tied_on_validation", "strategy", "level_index",
           "difference", "lo", "hi", "reading"]


def _classification(table: pd.DataFrame, n_boot: int, seed: int) -> tuple[str, bool, int, list[dict]]:
    df = tables.decode_results(table)
    names = tables.level_strategies(df)
    best = analysis.best_per_fraction(df, candidates=names, with_test=False).iloc[-1]
    at = df[np.isclose(df["fraction"], best["fraction"])]
    chosen = str(best["best_strategy"])
    rows = []
    for strategy in tables.strategy_order(at):
        if strategy in (chosen, analysis.AUTO):
            continue
        d = analysis.paired_arms(at, strategy, chosen, "test_auc", n_boot, seed)
        rows.append({"strategy": strategy, "difference": d["delta"], "lo": d["lo"], "hi": d["hi"]})
    return chosen, bool(best["val_tied"]), int(best["n_train"]), rows


def _polyp(kind: str, table: pd.DataFrame, n_boot: int, seed: int) -> tuple[str, bool, int, list[dict]]:
    """Detection or segmentation: the depth chosen on validation and every arm minus it (their reports give
    chosen minus arm: the sign and the interval are turned round)."""
    chosen, tied, _ = detection_report.best_tuned_choice(table)
    if kind == "detection":
        paired = detection_report.paired_differences(table, chosen, (DETECTION_RATE,), n_boot, seed)
    else:
        paired = segmentation_report.paired_differences(table, chosen, ("dice",), n_boot=n_boot, seed=seed)
    rows = [{"strategy": r.strategy, "difference": -r.delta, "lo": -r.hi, "hi": -r.lo} for r in paired.itertuples()]
    largest = table[table["fraction"] == table["fraction"].max()]
    return chosen, tied, int(largest["n_train"].median()), rows


_READERS = {"classification": _classification, "detection": functools.partial(_polyp, "detection"),
            "segmentation": functools.partial(_polyp, "segmentation")}


def _reading(lo: float, hi: float, margin: float = NI_MARGIN) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "no interval (fewer than 3 test sequences, or no paired runs)"
    if hi < -margin:
        return "worse than the chosen depth by more than the margin"
    if hi < 0:
        return "worse than the chosen depth" + (", by less than the margin" if lo > -margin else "")
    if lo > 0:
        return "better than the chosen depth on test"
    return "within noise of the chosen depth" + (" (within the margin)" if lo > -margin else "")


def _sweep_of(app: Application) -> pd.DataFrame:
    """The application's sweep rows: its own ``rows``, else its store's (on ``dataset``, without notebook 06's
    statistics-only control, which is no depth; :func:`helpers.runner.sweep_rows`); empty when there is none."""
    if app.rows is not None:
        return app.rows
    table = ResultsStore(app.store).load() if Path(app.store).exists() else pd.DataFrame()
    if table.empty:
        return table
    if app.dataset is not None and "dataset" in table:
        table = table[table["dataset"].astype(str) == str(app.dataset)]
    if "strategy" in table:
        table = table[table["strategy"] != analysis.STATISTICS]
    return sweep_rows(table)


def across_applications(applications: list[Application], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per application and arm at the application's largest training size: the depth chosen on
    validation, and the arm's paired test difference to it (arm minus chosen) with its 95% interval.

    An application whose store is missing or holds no finished run gets one row saying so (``chosen`` empty),
    so a reader sees what was not run rather than a shorter table.
    """
    rows = []
    for app in applications:
        table = _sweep_of(app)
        finished = detection_report.finished(table) if len(table) else table
        base = {"application": app.name, "metric": app.metric()}
        if finished.empty or "level_index" not in finished or not (finished["strategy"] != SCRATCH).any():
            rows.append({**base, "chosen": "", "reading": f"no results in {app.store}: run its notebook first"})
            continue
        chosen, tied, n_train, arms = _READERS[app.kind](finished, n_boot, seed)
        index = finished.groupby("strategy")["level_index"].first()
        head = {**base, "n_train": n_train, "chosen": chosen, "tied_on_validation": tied}
        rows.append({**head, "strategy": chosen, "level_index": int(index[chosen]), "difference": 0.0,
                     "lo": 0.0, "hi": 0.0, "reading": "chosen on validation"})
        for arm in arms:
            rows.append({**head, **arm, "level_index": int(index.get(arm["strategy"], -1)),
                         "reading": _reading(arm["lo"], arm["hi"])})
    return pd.DataFrame(rows, columns=COLUMNS)


def finding3_across(table: pd.DataFrame, margin: float = NI_MARGIN) -> str:
    """One sentence: the paper's finding 3 (no depth best everywhere) holds / does not hold / is not decidable
    at this budget, from :func:`across_applications`'s table.

    The finding says that no single depth serves every application. With ``D`` the depths and, for depth ``L``
    in application ``a``, ``d(a, L)`` the 95% interval of L minus a's choice on test (``[0, 0]`` for the choice
    itself):

    - *holds* when for every depth ``L`` some application shows it costing more than ``margin``:
      ``hi(a, L) < -margin`` for some ``a``;
    - *does not hold* when one depth ``L`` is, in every application, the choice or within ``margin`` of it:
      ``L = choice(a)`` or ``lo(a, L) > -margin`` for every ``a``;
    - otherwise *not decidable at this budget*.

    The two cannot both be met. Suppose *does not hold* through depth ``L``. For every application ``a``, either
    L is a's choice, whose own row is ``[0, 0]`` and so ``hi(a, L) = 0 > -margin``, or ``lo(a, L) > -margin``,
    and then ``hi(a, L) >= lo(a, L) > -margin``. So no application has ``hi(a, L) < -margin``: depth L breaks
    the condition of *holds*, which asks it of every depth. Conversely *holds* rules out every depth as the
    witness of *does not hold*. (The order in which the rules are read therefore does not matter.)

    ``margin`` is :data:`helpers.analysis.NI_MARGIN` (0.02) on every figure: AUC, sensitivity and Dice all run
    from 0 to 1, and 0.02 is the suite's margin for "matches". A depth that an application did not train
    counts as unknown there. Ties on validation are named in the sentence: they decide nothing.
    """
    head = "Finding 3 across applications (no fine-tuning depth is best everywhere): "
    ran = table[table["chosen"].fillna("") != ""]
    apps = list(dict.fromkeys(ran["application"]))
    choices = {a: ran[ran["application"] == a].iloc[0] for a in apps}
    listing = "; ".join(f"{a}: {choices[a]['chosen']}" + (" (tied on validation)"
                                                         if bool(choices[a]["tied_on_validation"]) else "")
                        for a in apps)
    if len(apps) < 2:
        return head + f"{UNDECIDED}: fewer than two applications have results ({listing or 'none ran'})."

    def cell(app: str, level: str) -> pd.Series | None:
        hit = ran[(ran["application"] == app) & (ran["strategy"] == level)]
        return hit.iloc[0] if len(hit) else None

    levels = sorted(set(ran["strategy"]) - {SCRATCH, analysis.STATISTICS, analysis.AUTO})
    for level in levels:
        rows = [cell(a, level) for a in apps]
        if all(r is not None and (r["strategy"] == r["chosen"] or r["lo"] > -margin) for r in rows):
            return head + (f"{FAILS}: {level} is the choice or within {margin} of it (95% interval) in every "
                           f"application ({listing}); one depth serves them all at this budget.")
    costly = {}
    for level in levels:
        for a in apps:
            r = cell(a, level)
            if r is not None and r["strategy"] != r["chosen"] and r["hi"] < -margin:
                costly[level] = (a, r)
                break
    if levels and len(costly) == len(levels):
        shown = "; ".join(f"{lv} in {a} ({r['difference']:+.3f}, 95% CI {r['lo']:+.3f} to {r['hi']:+.3f}, "
                          f"{r['metric']})" for lv, (a, r) in costly.items())
        return head + (f"{HOLDS}: every depth costs more than {margin} against the choice in some application "
                       f"({listing}): {shown}.")
    missing = [lv for lv in levels if lv not in costly]
    return head + (f"{UNDECIDED}: the chosen depths are {listing}; no depth is shown within {margin} of the "
                   f"choice everywhere, and {', '.join(missing)} is not shown costing more than {margin} in any "
                   "application.")


def default_applications(reports: str | Path, polyp_name: str = "CVC-ClinicDB", arch: str = "efficientnet_lite0",
                         classification_sets: tuple[str, ...] = ("pneumoniamnist", "retinamnist"),
                         polyp_dataset: str | None = None, segmentation_rows: pd.DataFrame | None = None
                         ) -> list[Application]:
    """The applications notebook 07 reads from a reports folder: notebook 04's stores (one per data set), notebook
    05's detection store and notebook 07's segmentation store (or its own table, ``segmentation_rows``); with
    ``polyp_dataset`` (a folder path as the runs record it) only the polyp runs on that folder count."""
    reports = Path(reports)
    apps = [Application(f"{name} (classification)", "classification", reports / f"04_sweep_{name}_{arch_label(arch)}")
            for name in classification_sets]
    return apps + [Application(f"{polyp_name} (detection)", "detection", reports / "05_polyp_store", polyp_dataset),
                   Application(f"{polyp_name} (segmentation)", "segmentation", reports / "07_segmentation_store",
                               polyp_dataset, segmentation_rows)]


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers.applications [REPORTS]``: the across-applications table and the finding-3 verdict."""

    parser = argparse.ArgumentParser(prog="python -m helpers.applications", description=main.__doc__)
    parser.add_argument("reports", nargs="?", default="reports", help="the reports folder (default: reports)")
    parser.add_argument("--polyp-name", default="CVC-ClinicDB")
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args(argv)
    table = across_applications(default_applications(args.reports, args.polyp_name), n_boot=args.n_boot)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(table.round(3).to_string(index=False))
    print(finding3_across(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
