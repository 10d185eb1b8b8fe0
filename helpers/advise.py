"""``ftlab advise``: the study's three questions answered on your own images, in one command.

    python -m helpers.advise FOLDER_OR_NPZ [--arch NAME] [--budget quick|classroom|full] [--out DIR]
    ftlab advise ~/xrays --arch timm:resnet50 --budget classroom

Should I fine-tune a pretrained network or train it from scratch, how deep should I fine-tune, and how does the
answer change with the amount of data? The command trains, on the data given (an image folder with one
sub-folder per class, a MedMNIST-layout ``.npz`` or a MedMNIST name), scratch and three fine-tuning depths of
the network's ladder (``last``: the new head only; ``middle``; ``all`` layers) at three or four nested training-set
sizes, each with several seeds, every arm with the same step budget, its own tuned rate and ImageNet's
BatchNorm statistics kept (the suite's recipe, docs/methods.md). Before training it prints what the grid holds
and an estimate of its cost on this machine; while training, progress bars; at the end a report in the output
folder (``report.html``, the same as ``report.md`` with its figures beside it): the learning curves, the depth
chosen on validation at each size, every verdict with its 95% interval over seeds and test images and its count of
diverged runs, and a recommendation in plain words that says when the data cannot decide.

Every run is kept in ``OUT/store`` as it finishes: the same command again resumes where it stopped (after a
crash, a closed laptop or Ctrl-C) and only rewrites the report once the grid is complete.

Budgets (the grid's size and each run's cost; ``--plan`` prints the estimate for this machine and stops):

- ``quick``: 3 sizes x 3 seeds, 80 SGD steps of 16 images a run at 32 px, rates tuned at the largest size, at most 1,000
  training and 600 test images: minutes on a laptop CPU (measured: docs/advise.md).
- ``classroom``: 4 sizes x 5 seeds, 120 steps at 64 px, up to 2,000 training images: about an hour on a 2-core CPU.
- ``full``: 4 sizes x 6 seeds, the full profile's 3,000 steps at 224 px, rates tuned at every size: a GPU's work.
"""
from __future__ import annotations

import argparse
import base64
import html
import math
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from . import __version__, analysis, catalog, experiments, findings, loading, plots, profiles, runner, sweep, tables
from .analysis import NI_MARGIN, SCRATCH
from .datasets import DataSet
from .env import cores, pick_device
from .models import ARCHS, build_model, input_size, is_timm_arch
from .profiles import Classification
from .store import ResultsStore
from .subsets import budget_split, cap_dataset, usable_fractions
from .weights import WeightsUnavailableError

LEVELS = ("last", "middle", "all")   # the three ladder depths: head only, the middle, every layer
STRATEGIES = (SCRATCH, *LEVELS)


@dataclass(frozen=True)
class Budget:
    """One ``--budget``: a classification part of a profile with the grid's sizes and the caps for your data."""

    name: str
    part: Classification       # steps, batch, rates, seeds, caps, model input (image_size)
    sizes: int                 # training-set sizes (nested fractions of the training pool)
    folder_size: int           # the square size an image folder is read at (a MedMNIST name: the nearest file)
    medmnist_size: int         # which MedMNIST file a name reads (28, 64, 128 or 224)
    tune: str                  # where rates are tuned: "largest" size, both "ends", or "every" size
    cost: str                  # what it costs, in words


def _budgets() -> dict[str, Budget]:
    room, full = profiles.PROFILES["classroom"].classification, profiles.PROFILES["full"].classification
    return {
        "quick": Budget("quick", room.changed(image_size=32, max_train=1000, max_eval=600, seeds=(0, 1, 2), steps=80,
                                              patience=40, min_steps=40, batch_size=16),
                        sizes=3, folder_size=32, medmnist_size=28, tune="largest",
                        cost="minutes on a laptop CPU: a first answer"),
        "classroom": Budget("classroom", room.changed(image_size=64, data_size=64, max_train=2000, max_eval=1000,
                                                      seeds=(0, 1, 2, 3, 4)),
                            sizes=4, folder_size=64, medmnist_size=64, tune="ends",
                            cost="about an hour on a 2-core CPU for a few hundred images"),
        "full": Budget("full", full.changed(seeds=(0, 1, 2, 3, 4, 5)), sizes=4, folder_size=224, medmnist_size=224,
                       tune="every", cost="the full profile's runs: a GPU's work"),
    }


BUDGETS = _budgets()


# ----------------------------------------------------------------------------- the grid

def resolve_arch(name: str) -> str:
    """The network ``--arch`` names: a built-in (``efficientnet_lite0``, ``resnet18``, ``alexnet``), ``timm:<name>``,
    or a bare timm model name (taken as ``timm:<name>``). An unknown name is refused with what would work."""
    name = name.strip()
    if name in ARCHS or is_timm_arch(name):
        return name
    import timm   # deferred: seconds to import
    if timm.is_model(name):
        return f"timm:{name}"
    close = timm.list_models(f"*{name.split('.')[0][:12]}*")[:8]
    raise ValueError(f"--arch {name!r} is neither a built-in network ({', '.join(ARCHS)}) nor a timm model"
                     + (f"; timm models with a similar name: {', '.join(close)}" if close else "")
                     + ". Give timm models as timm:<name> or by their bare name (timm.list_models() lists them).")


def data_size(source: str, budget: Budget) -> int:
    """The ``data_size`` runs read ``source`` at: a MedMNIST name picks its file, a folder is resized to it (an
    ``.npz`` keeps its own size whatever this says)."""
    return budget.medmnist_size if catalog.is_medmnist_name(source) else budget.folder_size


def size_fractions(n_pool: int, n_classes: int, sizes: int) -> tuple[float, ...]:
    """``sizes`` nested training fractions, evenly spaced on a log scale from the smallest useful budget to the
    whole pool: at least 10 images per class, and at least 5% of the pool (a budget of 2 images teaches nothing
    about the user's question). Fewer when the pool is too small to spread them."""
    smallest = min(1.0, max(10 * n_classes, 0.05 * n_pool) / max(n_pool, 1))
    if sizes < 2 or smallest > 0.5:
        return (1.0,)
    grid = np.geomspace(smallest, 1.0, sizes)
    return tuple(sorted({float(f"{f:.3g}") for f in grid}))


@dataclass
class Plan:
    """What the command will run: the data it read, the grid and where its runs are kept."""

    source: str
    arch: str
    budget: Budget
    part: Classification
    data: DataSet
    fractions: tuple[float, ...]
    left_out: list[float]
    configs: list[experiments.RunConfig]
    store: ResultsStore
    out: Path
    tune_fractions: list[float] | None = field(default=None)

    @property
    def trials(self) -> list:
        return runner.rate_trials(self.configs, self.part.lr_grid, self.tune_fractions)

    def sizes(self) -> dict[float, int]:
        """Training images (after the validation share) per fraction, for the first seed."""
        capped = self.capped()
        return {f: len(budget_split(capped.train.labels, f, seed=self.part.seeds[0], val_share=self.part.val_share)[0])
                for f in self.fractions}

    def capped(self) -> DataSet:
        return cap_dataset(self.data, self.part.max_train, self.part.max_eval, seed=0)


def make_plan(source: str | Path, arch: str, budget: str | Budget, out: str | Path,
              seeds: Sequence[int] | None = None, steps: int | None = None, intensity: str = "auto") -> Plan:
    """Read the data (clear errors for what cannot be read), choose the sizes, and lay out the grid. ``intensity``:
    how an image folder's 16-bit, float or DICOM samples become 0..255 ("auto", "minmax" or "LOW,HIGH",
    :func:`helpers.loading.parse_intensity`)."""
    b = BUDGETS[budget] if isinstance(budget, str) else budget
    source = _source(source)
    part = b.part.changed(data_size=data_size(source, b))
    if seeds:
        part = part.changed(seeds=tuple(int(s) for s in seeds))
    if steps:
        part = part.changed(steps=int(steps), patience=max(1, steps // 2), min_steps=steps // 2,
                            eval_every=max(1, min(part.budget.eval_every, steps // 2)),
                            decay_steps=max(1, min(part.budget.decay_steps, steps // 2)))
    if len(part.seeds) < 2:
        raise ValueError("advise needs at least 2 seeds: an interval over seeds needs their spread (3 or more is better).")
    intensity = _intensity_text(loading.parse_intensity(intensity))
    data = experiments.cached_dataset(source, part.data_size, intensity)
    if data.multi_label:
        raise ValueError(f"{source} is multi-label; advise answers for one label per image (single- or multi-class). "
                         "Notebook 04 analyses multi-label sets.")
    capped = cap_dataset(data, part.max_train, part.max_eval, seed=0)
    wanted = size_fractions(len(capped.train), data.num_classes, b.sizes)
    fractions, left_out = usable_fractions(capped.train.labels, wanted, part.val_share, part.seeds)
    if not fractions:
        raise ValueError(f"{source}: {len(capped.train)} training images are too few to hold out a validation set "
                         f"with every class at any size; add images (at least 10 per class).")
    configs = experiments.profile_grid(part, [source], [arch], strategies=STRATEGIES, fractions=fractions,
                                       intensity=intensity)
    out = Path(out).expanduser()
    tune = {"every": list(fractions), "largest": [max(fractions)], "ends": None}[b.tune]
    return Plan(source, arch, b, part, data, tuple(fractions), left_out, configs, ResultsStore(out / "store"), out, tune)


def _intensity_text(value: str | tuple[float, float]) -> str:
    """The one text form a run config keeps: "auto", "minmax" or "LOW,HIGH" (so "0,4095" and "0.0,4095" are one run)."""
    return value if isinstance(value, str) else f"{float(value[0]):g},{float(value[1]):g}"


def _source(source: str | Path) -> str:
    """A MedMNIST name as given; a path made absolute (its runs are stored under it, whatever the working folder)."""
    text = str(source)
    if catalog.is_medmnist_name(text):
        return text.strip().lower()
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{text}: no such folder or file. Give an image folder (one sub-folder per class, or "
                                "train/ val/ test/ of such folders), a MedMNIST-layout .npz, or a MedMNIST name.")
    return str(path.resolve())


def check_weights(arch: str, image_size: int) -> None:
    """Load the network's ImageNet weights once before any training: a missing file is said now, not after the
    scratch runs (:class:`helpers.weights.WeightsUnavailableError` names the ways to give them offline)."""
    build_model(arch, 2, pretrained=True, image_size=input_size(arch, image_size))


# ----------------------------------------------------------------------------- the answer

def size_verdicts(best: pd.DataFrame) -> list[str]:
    """Each size's class for the recommendation (:func:`helpers.findings.size_classes`): ``better``, ``matched``,
    ``matched-lower``, ``worse``, ``open``; "untested" where no paired test was possible."""
    classes = findings.size_classes(best)
    return [c if np.isfinite(p) else "untested" for c, p in zip(classes, best["p_holm"])]


def _images(n: float) -> str:
    return f"{int(n):,} training images"


def _gap_text(r: pd.Series) -> str:
    return f"{r['gap']:+.3f} AUC (95% interval {r['gap_lo']:+.3f} to {r['gap_hi']:+.3f})"


def recommendation(best: pd.DataFrame, levels: pd.DataFrame) -> list[str]:
    """Plain words: what to do with the data as it is (the largest size), how deep, how the answer changes with
    the amount of data, and when the data cannot decide. ``best``: :func:`helpers.analysis.best_per_fraction`
    with the test against scratch; ``levels``: the same over the fine-tuning depths only (the depth chosen)."""
    if best.empty:
        return ["No finished grid to read: run the command again to finish it."]
    best = best.sort_values("n_train").reset_index(drop=True)
    classes = size_verdicts(best)
    top, cls = best.iloc[-1], classes[-1]
    n = _images(top["n_train"])
    lines = []
    if cls == "better":
        lines.append(f"Fine-tune. With all {n}, fine-tuning (depth '{top['best_strategy']}') beat training from scratch by "
                     f"{_gap_text(top)}, a difference the paired test holds after Holm's correction.")
    elif cls in ("matched", "matched-lower"):
        lower = " (statistically lower, but by less than the margin)" if cls == "matched-lower" else ""
        lines.append(f"Fine-tuning is at least as good as scratch with all {n}: the gap {_gap_text(top)} stays above "
                     f"-{NI_MARGIN:g} AUC, the margin this suite calls 'not worse'{lower}. Fine-tune (depth "
                     f"'{top['best_strategy']}'): scratch gains nothing here.")
    elif cls == "worse":
        lines.append(f"Train from scratch. With all {n}, scratch beat the fine-tuning depth chosen on validation "
                     f"('{top['best_strategy']}') by more than the {NI_MARGIN:g} AUC margin: gap {_gap_text(top)}.")
    elif cls == "untested":
        lines.append(f"No verdict with all {n}: no paired test was possible (too few seeds or no test scores).")
    else:
        lines.append(f"The data cannot decide between fine-tuning and scratch with all {n}: the gap {_gap_text(top)} "
                     f"holds both a gain and a loss of more than {NI_MARGIN:g} AUC. More test images narrow it most "
                     "where test noise dominates; more seeds (--budget classroom or full) where the runs disagree.")
    if len(levels):
        lv = levels.sort_values("n_train").iloc[-1]
        if lv["val_tied"] or lv.get("beaten_on_test") or lv.get("tied_with"):
            others = ", ".join(x for x in (lv["val_tied_with"], lv.get("tied_with", ""), lv.get("beaten_by", "")) if x)
            lines.append(f"How deep: '{lv['best_strategy']}' was chosen on validation with all {n}, but the depth is not "
                         f"settled: {others} could not be told from it. Any of them is defensible; the shallower trains "
                         "fewer layers and costs less.")
        else:
            lines.append(f"How deep: '{lv['best_strategy']}' (chosen on validation with all {n}; the other depths were "
                         "outside its test interval).")
    if len(best) > 1:
        words = {"better": "fine-tuning better", "matched": "fine-tuning not worse", "matched-lower":
                 "fine-tuning not worse (lower within the margin)", "worse": "scratch better",
                 "open": "cannot decide", "untested": "no test"}
        steps = [f"{int(r['n_train']):,} images: {words[c]}" + (f", depth '{d}'" if d else "")
                 for (_, r), c, d in zip(best.iterrows(), classes, _depths(best, levels))]
        changed = len(set(classes) - {"open", "untested"}) > 1
        lines.append("With less data: " + "; ".join(steps) + "."
                     + (" The answer changes with the amount of data." if changed else ""))
    decided = [c for c in classes if c not in ("open", "untested")]
    if not decided:
        lines.append("At no size could the data decide: the intervals are too wide for this budget and test set. "
                     "This is an answer too: on this data the two are not far apart, or the test set is too small to "
                     "show it.")
    diverged = int(best.get("diverged", pd.Series(0)).sum() + best.get("scratch_diverged", pd.Series(0)).sum())
    if diverged:
        lines.append(f"{diverged} run(s) diverged at their tuned rate and are left out of the means (the verdict table "
                     "counts them per size): read the verdicts at those sizes with care.")
    return lines


def _depths(best: pd.DataFrame, levels: pd.DataFrame) -> list[str]:
    if levels.empty:
        return [""] * len(best)
    chosen = dict(zip(levels["fraction"], levels["best_strategy"]))
    return [chosen.get(f, "") for f in best["fraction"]]


# ----------------------------------------------------------------------------- the report

@dataclass
class Report:
    """What the report holds, ready to write as Markdown or HTML."""

    title: str
    stamp: str
    recommendation: list[str]
    settings: list[str]
    figures: dict[str, Path]                       # caption -> PNG
    tables: dict[str, pd.DataFrame]                # heading -> table
    findings: list[str]
    notes: list[str]


def _md_table(df: pd.DataFrame) -> str:
    cells = [[str(v).replace("|", "\\|") for v in row] for row in df.astype(object).itertuples(index=False)]
    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "".join("| " + " | ".join(r) + " |\n" for r in cells)


def write_markdown(report: Report, path: Path) -> Path:
    parts = [f"# {report.title}\n", f"_{report.stamp}_\n", "## Recommendation\n",
             *[f"- {line}" for line in report.recommendation], "", "## What was run\n",
             *[f"- {line}" for line in report.settings], ""]
    for caption, png in report.figures.items():
        parts += [f"## {caption}\n", f"![{caption}]({png.name})\n"]
    for heading, table in report.tables.items():
        parts += [f"## {heading}\n", _md_table(table)]
    parts += ["## The paper's findings, read on this data\n", *[f"- {s}" for s in report.findings], "",
              "## How to read this\n", *[f"- {s}" for s in report.notes], ""]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


_CSS = ("body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#222}"
        "table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1.5rem}th,td{border:1px solid #ccc;"
        "padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%}"
        ".advice{background:#eef6ee;border-left:4px solid #3a7d44;padding:.5rem 1rem}.stamp{color:#666}")


def write_html(report: Report, path: Path) -> Path:
    """One self-contained page (figures embedded), readable offline and safe to mail."""
    e = html.escape
    body = [f"<h1>{e(report.title)}</h1>", f"<p class='stamp'>{e(report.stamp)}</p>", "<h2>Recommendation</h2>",
            "<div class='advice'><ul>" + "".join(f"<li>{e(s)}</li>" for s in report.recommendation) + "</ul></div>",
            "<h2>What was run</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in report.settings) + "</ul>"]
    for caption, png in report.figures.items():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        body.append(f"<h2>{e(caption)}</h2><img alt='{e(caption)}' src='data:image/png;base64,{data}'>")
    for heading, table in report.tables.items():
        body.append(f"<h2>{e(heading)}</h2>" + table.to_html(index=False, escape=True, border=0))
    body.append("<h2>The paper's findings, read on this data</h2><ul>"
                + "".join(f"<li>{e(s)}</li>" for s in report.findings) + "</ul>")
    body.append("<h2>How to read this</h2><ul>" + "".join(f"<li>{e(s)}</li>" for s in report.notes) + "</ul>")
    path.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(report.title)}</title>"
                    f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n", encoding="utf-8")
    return path


_TUNED = {"every": "at every size", "ends": "at the smallest and the largest size (the nearest one's rate between)",
          "largest": "at the largest size, and used at every size (a quick budget's saving)"}


def depth_table(levels: pd.DataFrame) -> pd.DataFrame:
    """The depth chosen on validation at each size, in words."""
    def ci(r):
        return f"{r['mean']:.3f} ({r['ci_lo']:.3f}-{r['ci_hi']:.3f})" if np.isfinite(r["ci_lo"]) else f"{r['mean']:.3f}"
    return pd.DataFrame({
        "Training images": levels["n_train"].astype(int),
        "Depth chosen on validation": levels["best_strategy"],
        "Validation AUC (mean over seeds)": levels["best_val"].map(lambda v: f"{v:.3f}"),
        "Tied on validation with": levels["val_tied_with"].replace("", "-"),
        "Test AUC (95% CI)": [ci(r) for _, r in levels.iterrows()],
        "Within its test interval": levels["tied_with"].replace("", "-"),
        "Better on test": levels["beaten_by"].replace("", "-"),
    })


def build_report(plan: Plan, table: pd.DataFrame, seconds: float) -> Report:
    """Analyse the finished grid: figures into ``plan.out``, tables, findings and the recommendation."""
    shown = _shown_source(plan.source)
    df = tables.decode_results(table).assign(dataset=shown)   # figures and tables name the data, not a folder path
    names = _level_names(plan, table)
    best = analysis.best_per_fraction(df, "test_auc", n_boot=plan.part.n_bootstrap)
    levels = analysis.best_per_fraction(df, "test_auc", candidates=tables.level_strategies(df), with_test=False,
                                        n_boot=plan.part.n_bootstrap)
    gap = analysis.gap_to_scratch(df, "test_auc", n_boot=plan.part.n_bootstrap)
    figures = {}
    ax = plots.plot_learning_curves(df, "test_auc")
    figures["Learning curves: test AUC vs training-set size"] = plots.save_figure(ax, "learning_curves", plan.out)
    plt.close(ax.figure)
    ax = plots.plot_gap_to_scratch(gap)
    figures["Each depth minus scratch, paired by seed and test image"] = plots.save_figure(ax, "gap_to_scratch", plan.out)
    plt.close(ax.figure)
    summary = findings.summary_table(df, "test_auc", n_boot=plan.part.n_bootstrap)
    summary.to_csv(plan.out / "verdicts.csv", index=False)
    table.drop(columns=[c for c in ("test_scores", "test_labels", "curve") if c in table.columns]).to_csv(
        plan.out / "runs.csv", index=False)
    data, capped, b, p = plan.data, plan.capped(), plan.budget, plan.part
    device = pick_device()
    machine = (f"{device.type}" if device.type != "cuda" else "cuda") + f", {cores()} cores"
    settings = [
        f"Data: {loading.describe(data)}." + (f" {_named(data.meta['intensity'], data)}" if data.meta.get("intensity")
                                              else ""),
        f"Network: {plan.arch}, ImageNet weights for the fine-tuning arms, the new head Gaussian (std 0.01) as the "
        f"paper's; model input {p.image_size} px.",
        f"Arms: scratch and three depths of the network's ladder ({names}); the depth a run fine-tunes "
        "trains with the rate multipliers of the paper's recipe; frozen stages keep ImageNet's BatchNorm statistics.",
        f"Sizes: {', '.join(f'{n:,}' for n in plan.sizes().values())} training images (nested; {p.val_share:.0%} of each "
        f"budget held out for validation; test set {len(capped.test):,} images, never seen in training or choice)"
        + (f"; left out for too few images of a class: fractions {plan.left_out}" if plan.left_out else "") + ".",
        f"Budget '{b.name}': {p.budget.steps} SGD steps a run (the same at every size), batch {p.budget.batch_size}, "
        f"{len(p.seeds)} seeds; rates tried per arm: scratch {list(p.lr_grid['scratch'])}, fine-tuning "
        f"{list(p.lr_grid['finetune'])}, chosen on validation "
        + _TUNED[b.tune] + ".",
        f"{len(table)} grid runs ({len(plan.store.done())} runs with the rate tuning) kept in {plan.store.folder.name}/; "
        f"their training took {table['wall_s'].sum() / 60:.1f} min of one worker, this call {seconds / 60:.1f} min "
        f"on this machine ({machine}). The same command again resumes, or redraws the report without training.",
    ]
    notes = [
        "Every choice (rate, depth) is made on validation AUC; every verdict is read on the test set, which no "
        "choice saw.",
        "Intervals are over seeds and test images together (docs/methods.md): they hold both the noise of "
        "retraining and that of a finite test set. Verdicts use paired differences (the same seeds and test "
        "images for both arms), Holm-corrected across the sizes.",
        f"'Not worse' means the gap's 95% interval stays above -{NI_MARGIN:g} AUC: a convention of this suite, "
        "not of the paper. 'Cannot decide' means the interval holds both a real gain and a real loss.",
        "The depth choice is a tie where validation cannot separate two depths (within its resolution): the "
        "shallower is taken, and the verdict says so instead of presenting a convention as evidence.",
        "This budget is small next to the paper's (thousands of steps at 224 px): a fine-tuned network converges in "
        "fewer steps, so a short budget can favour it. Where the decision matters, rerun with --budget classroom "
        "or full.",
    ]
    return Report(
        title=f"Fine-tune or train from scratch? {loading.dataset_label(plan.source)}, {plan.arch}",
        stamp=(f"ftlab {__version__}, budget {b.name}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
               f"command: ftlab advise {shown} --arch {plan.arch} --budget {b.name}"),
        recommendation=recommendation(best, levels),
        settings=settings, figures=figures,
        tables={"Verdict at each size (the depth chosen on validation against scratch)": summary,
                "The depth chosen at each size": depth_table(levels)},
        findings=findings.findings(df, "test_auc", n_boot=plan.part.n_bootstrap), notes=notes)


def _level_names(plan: Plan, table: pd.DataFrame) -> str:
    """``last`` = ``classifier``, ...: what each requested depth is in this network's ladder (read off the runs)."""
    found = dict(zip(table["requested"], table["strategy"])) if "requested" in table.columns else {}
    return ", ".join(f"{k}: {found[k]}" if found.get(k) else k for k in LEVELS)


def _named(text: str, data: DataSet) -> str:
    """``text`` with the data's folder named by its own name (a report names no folder of the machine it ran on)."""
    return text.replace(str(data.source), Path(str(data.source)).name) if data.source else text


def _shown_source(source: str) -> str:
    """The data as the stamp shows it: a name, or the folder's own name (no absolute path of this machine)."""
    return source if catalog.is_medmnist_name(source) else Path(source).name


# ----------------------------------------------------------------------------- the command

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.advise", description=__doc__.split("\n\n")[2],
                                epilog="Budgets: " + "; ".join(f"{b.name}: {b.cost}" for b in BUDGETS.values()),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="an image folder (one sub-folder per class, or train/ val/ test/ of them), a "
                                "MedMNIST-layout .npz, or a MedMNIST name")
    p.add_argument("--arch", default="efficientnet_lite0",
                   help="the network: efficientnet_lite0 (weights built in), resnet18, alexnet, or any timm model "
                        "(timm:resnet50, convnext_atto, vit_tiny_patch16_224; weights: $FTLAB_WEIGHTS_DIR offline)")
    p.add_argument("--budget", default="quick", choices=sorted(BUDGETS), help="the grid's size (default quick)")
    p.add_argument("--out", type=Path, help="output folder (default: advice_<data>_<network> here)")
    p.add_argument("--workers", type=int, default=None, help="runs trained at once (default: 2, or $FTLAB_WORKERS)")
    p.add_argument("--intensity", default="auto", metavar="auto|minmax|LOW,HIGH",
                   help="how 16-bit, float or DICOM images become 0..255: auto (8-bit as they are, deeper ones min-max "
                        "per image, DICOM by its own window), minmax, or a fixed window such as 0,4095")
    p.add_argument("--plan", action="store_true", help="print the grid and the cost estimate, train nothing")
    p.add_argument("--seeds", type=int, nargs="+", help="override the budget's seeds (at least 2)")
    p.add_argument("--steps", type=int, help="override the budget's SGD steps a run (a smoke test)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _default_out(source: str, arch: str) -> Path:
    return Path(f"advice_{loading.dataset_label(source)}_{arch.replace(':', '-')}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2: the data, the network or its weights cannot be used)."""
    args = _parser().parse_args(argv)
    try:
        arch = resolve_arch(args.arch)
        out = args.out or _default_out(str(args.data), arch)
        plan = make_plan(args.data, arch, args.budget, out, args.seeds, args.steps, args.intensity)
        print(f"data: {loading.describe(plan.data)}")
        check_weights(arch, plan.part.image_size)
    except (FileNotFoundError, ValueError, WeightsUnavailableError, loading.MissingDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sizes = plan.sizes()
    print(f"grid: scratch and {len(LEVELS)} depths ({', '.join(LEVELS)}) of {arch} x {len(plan.fractions)} sizes "
          f"({', '.join(f'{n:,}' for n in sizes.values())} training images) x {len(plan.part.seeds)} seeds; "
          f"{plan.part.budget.steps} SGD steps a run at {plan.part.image_size} px; budget '{plan.budget.name}'")
    workers = args.workers or profiles.get_profile("classroom").workers
    lr_grid = plan.part.lr_grid
    estimate = sweep.plan(plan.configs, plan.trials, plan.store, lr_grid, plan.tune_fractions, probe=True)
    print(sweep.describe(estimate))
    if math.isfinite(estimate["estimate_s"]):
        print(f"With {workers} worker(s): about {_minutes(estimate['estimate_s'] / workers)} (an upper bound: "
              "early stopping and frozen depths end sooner).", flush=True)
    if args.plan:
        return 0
    plan.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with runner.pool(workers) as pool:
            table = runner.run_sweep(plan.configs, plan.store, executor=pool, progress=not args.quiet,
                                     lr_grid=lr_grid, tune_fractions=plan.tune_fractions)
    except RuntimeError as err:
        print(f"error: {err}\nEvery finished run is kept in {plan.store.folder}: run the same command again to "
              "retry the missing ones.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nstopped: {len(plan.store.done())} finished runs are kept in {plan.store.folder}; the same command "
              "again goes on from there.", file=sys.stderr)
        return 130
    report = build_report(plan, table, time.perf_counter() - started)
    md = write_markdown(report, plan.out / "report.md")
    page = write_html(report, plan.out / "report.html")
    print("\n".join(["", "Recommendation:", *[f"- {line}" for line in report.recommendation], "",
                     f"report: {page} (and {md.name}, figures and tables beside it)"]))
    return 0


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


if __name__ == "__main__":
    sys.exit(main())
