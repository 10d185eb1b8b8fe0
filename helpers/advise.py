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
  training and 600 test images: minutes on a laptop CPU (3.7 min for 500 images on 2 cores: docs/advise.md).
- ``classroom``: 4 sizes x 5 seeds, 120 steps at 64 px, up to 2,000 training images: about an hour on a 2-core CPU.
- ``full``: 4 sizes x 6 seeds, the full profile's 3,000 steps at 224 px, rates tuned at every size: a GPU's work.
"""
from __future__ import annotations

import argparse
import base64
import difflib
import hashlib
import html
import json
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

from . import __version__, analysis, catalog, experiments, findings, loading, paths, plots, profiles, runner, sweep, tables
from .analysis import NI_MARGIN, SCRATCH
from .datasets import DataSet
from .env import cores, pick_device
from .finetune import resolve_level
from .progress import about
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
    if name in ARCHS:
        return name
    import timm   # deferred: seconds to import
    bare = name.split(":", 1)[1] if is_timm_arch(name) else name
    if timm.is_model(bare):
        return f"timm:{bare}"
    close = difflib.get_close_matches(bare, timm.list_models(), n=8, cutoff=0.6)
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
    command: str = ""          # the command line that reproduces the report (its stamp)
    modified: str = ""         # " (modified: --steps 4)" where the budget was overridden
    depth_names: dict[str, str] = field(default_factory=dict)   # "last" -> this network's level ("classifier")

    def depths_text(self) -> str:
        """``last: classifier, middle: ..., all: ...`` (the requested depths alone until the network was built)."""
        return ", ".join(f"{k}: {self.depth_names[k]}" if k in self.depth_names else k for k in LEVELS)

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
        part = part.changed(seeds=tuple(dict.fromkeys(int(s) for s in seeds)))
    if steps:
        part = part.changed(steps=int(steps), patience=max(1, steps // 2), min_steps=steps // 2,
                            eval_every=max(1, min(part.budget.eval_every, steps // 2)),
                            decay_steps=max(1, min(part.budget.decay_steps, steps // 2)))
    if len(set(part.seeds)) < 2:
        raise ValueError("advise needs at least 2 different seed values (--seeds takes the values, e.g. --seeds 0 1 2): "
                         "an interval over seeds needs their spread (3 or more is better).")
    intensity = _intensity_text(loading.parse_intensity(intensity))
    if catalog.is_medmnist_name(source) and catalog.entry(source).multi_label:   # said before any download
        raise ValueError(_MULTI_LABEL.format(source=source))
    data = experiments.cached_dataset(source, part.data_size, intensity)
    if data.multi_label:
        raise ValueError(_MULTI_LABEL.format(source=source))
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


_MULTI_LABEL = ("{source} is multi-label: advise answers for one label per image (two or more classes); notebook 04 "
                "analyses multi-label sets.")


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


def check_weights(arch: str, image_size: int) -> dict[str, str]:
    """Load the network's ImageNet weights once before any training: a missing file is said now, not after the
    scratch runs (:class:`helpers.weights.WeightsUnavailableError` names the ways to give them offline). Returns what
    each requested depth is in this network's ladder (``{"last": "classifier", ...}``)."""
    model = build_model(arch, 2, pretrained=True, image_size=input_size(arch, image_size))
    return {level: resolve_level(model, level).name for level in LEVELS}


# ----------------------------------------------------------------------------- the answer

@dataclass(frozen=True)
class Scope:
    """What the verdicts were drawn from, for the words around them: the sizes planned, the training and test
    images the data holds and how many the budget used, and the runs that diverged."""

    sizes: dict[float, int] = field(default_factory=dict)   # fraction -> training images planned
    pool: int = 0                  # training images the data holds
    used: int = 0                  # training images the largest size draws from (after the budget's cap)
    test: int = 0                  # test images scored
    test_pool: int = 0             # test images the data holds
    budget: str = "quick"
    diverged: int = 0              # runs of any arm that diverged (left out of every mean)
    val_share: float = 0.0         # share of each budget held out for validation


def size_verdicts(best: pd.DataFrame) -> list[str]:
    """Each size's class for the recommendation (:func:`helpers.findings.size_classes`): ``better``, ``matched``,
    ``matched-lower``, ``worse``, ``open``; "untested" where no paired test was possible."""
    classes = findings.size_classes(best)
    return [c if np.isfinite(p) else "untested" for c, p in zip(classes, best["p_holm"])]


ADVICE = {"better": "fine-tune", "matched": "fine-tune", "matched-lower": "either", "worse": "scratch"}
"""What each class recommends; ``open`` and ``untested`` recommend nothing."""

MORE = {"quick": "--budget classroom takes up to 2,000 training and 1,000 test images, full takes all",
        "classroom": "--budget full takes every image", "full": ""}


def _gap_text(r: pd.Series) -> str:
    return f"{r['gap']:+.3f} AUC (95% interval {r['gap_lo']:+.3f} to {r['gap_hi']:+.3f})"


def _where(n_train: int, scope: Scope | None) -> str:
    """"with all 280 training images", or, when the budget capped the data, what was left out."""
    if scope is None or scope.used >= scope.pool:
        held = (f" ({scope.used:,} less the {scope.val_share:.0%} held out for validation)"
                if scope is not None and scope.val_share and scope.used > n_train else "")
        return f"with all {n_train:,} training images{held}"
    more = f"; {MORE[scope.budget]}" if MORE.get(scope.budget) else ""
    return (f"at the largest size tried ({n_train:,} training images, drawn from {scope.used:,} of the {scope.pool:,} "
            f"your data holds: the {scope.budget} budget's cap{more})")


def _upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _headline(top: pd.Series, cls: str, tie: bool, where: str, k: int) -> str:
    depth = f"depth '{top['best_strategy']}'"
    if cls == "better":
        return (f"Fine-tune. {_upper(where)}, fine-tuning ({depth}) beat training from scratch by {_gap_text(top)}; "
                "the paired test holds it after Holm's correction across the sizes.")
    if cls == "matched":
        gain = (f" A gain is not established: the paired test does not hold after Holm's correction across the {k} "
                f"sizes (p {top['p_holm']:.3f})." if top["gap_lo"] > 0 and k > 1 else "")
        return (f"Fine-tune. {_upper(where)}, fine-tuning ({depth}) is not worse than scratch by more than "
                f"{NI_MARGIN:g} AUC: gap {_gap_text(top)}. Whatever scratch might gain stays below that margin.{gain}")
    if cls == "matched-lower":
        return (f"Either. {_upper(where)}, scratch is ahead of fine-tuning ({depth}), significantly but by less "
                f"than the {NI_MARGIN:g} AUC margin: gap {_gap_text(top)}.")
    if cls == "worse":
        return (f"Train from scratch. {_upper(where)}, scratch beat the fine-tuning depth chosen on validation "
                f"('{top['best_strategy']}') by more than the {NI_MARGIN:g} AUC margin: gap {_gap_text(top)}, "
                "significant after Holm's correction.")
    if cls == "untested":
        return (f"No verdict {where}: no paired test was possible (too few seeds of both arms survived, or the runs "
                "kept no test scores).")
    if tie:
        return (f"The data cannot decide {where}: validation tied '{top['best_strategy']}' with {top['val_tied_with']}, "
                f"and the verdict depends on which is taken (with '{top['best_strategy']}': gap {_gap_text(top)}).")
    if top["gap_hi"] < -NI_MARGIN:
        return (f"Leaning to scratch, not established: {where}, scratch was ahead by more than the {NI_MARGIN:g} AUC "
                f"margin (gap {_gap_text(top)}), but not after Holm's correction across the {k} sizes "
                f"(p {top['p_holm']:.3f}).")
    if top["gap_hi"] < 0:
        return (f"The data cannot decide {where}: fine-tuning ({depth}) was lower than scratch (gap {_gap_text(top)}), "
                f"and whether by more than the {NI_MARGIN:g} AUC margin cannot be told.")
    return (f"The data cannot decide {where}: the gap {_gap_text(top)} holds both a gain for fine-tuning ({depth}) "
            f"and a loss of more than the {NI_MARGIN:g} AUC margin.")


def _narrowing(scope: Scope | None) -> str:
    """What would narrow an interval that decides nothing."""
    test = f" (this run scored {scope.test:,} test images" if scope else ""
    if scope and scope.test < scope.test_pool:
        test += f" of the {scope.test_pool:,} your data holds; {MORE[scope.budget]}" if MORE.get(scope.budget) else ""
    test += ")" if scope else ""
    return (f"A larger test set narrows such an interval most where test noise dominates{test}; more seeds "
            "(--budget classroom: 5, full: 6) where the runs disagree.")


def _names(*texts: str) -> list[str]:
    out: list[str] = []
    for text in texts:
        out += [t.strip() for t in str(text or "").split(",") if t.strip() and t.strip() not in out]
    return out


def _depth_line(lv: pd.Series, cls: str, tie: bool, where: str) -> str:
    head = "If you fine-tune all the same, the depth" if cls == "worse" else "How deep"
    chosen = f"'{lv['best_strategy']}'"
    beaten = _names(lv.get("beaten_by", ""))
    tied = [t for t in _names(lv.get("val_tied_with", ""), lv.get("tied_with", "")) if t not in beaten]
    if beaten:
        return (f"{head}: validation chose {chosen} {where}, but {', '.join(beaten)} did better on the test set (paired "
                "95% interval above 0): validation and test disagree, so the depth is not settled.")
    if tied and tie:
        return (f"{head}: validation chose {chosen} {where}, tied with {', '.join(tied)}, and which of them is taken "
                "changes the verdict above: the depth is not settled.")
    if tied:
        return (f"{head}: validation chose {chosen} {where}; {', '.join(tied)} could not be told from it (tied on "
                f"validation, or inside its paired test interval), so the depth is not settled. The verdict above is "
                f"for {chosen}; each depth's own gap to scratch is in the table 'Each depth against scratch'.")
    return (f"{head}: {chosen}, chosen on validation {where}; every other depth did worse on the test set (paired 95% "
            "interval below 0).")


def recommendation(best: pd.DataFrame, levels: pd.DataFrame, scope: Scope | None = None) -> list[str]:
    """Plain words: what to do with the data as it is (the largest size), how deep, how the verdicts differ with
    the amount of data, and when the data cannot decide (and why). ``best``:
    :func:`helpers.analysis.best_per_fraction` with the test against scratch; ``levels``: the same over the
    fine-tuning depths only (the depth chosen); ``scope``: the sizes planned, the caps, the diverged runs."""
    lines = []
    if scope and scope.sizes and (best.empty or max(scope.sizes) not in set(best["fraction"])):
        n = scope.sizes[max(scope.sizes)]
        lines.append(f"No verdict at the largest size ({n:,} training images): every run of scratch or of the "
                     "fine-tuning depths diverged there (runs.csv names them)."
                     + (" The verdicts below are the smaller sizes'." if not best.empty else ""))
    if best.empty:
        return lines or ["No finished grid to read: run the command again to finish it."]
    best = best.sort_values("n_train").reset_index(drop=True)
    classes, ties = size_verdicts(best), findings.tie_decides(best)
    top, cls, tie = best.iloc[-1], classes[-1], ties[-1]
    where = _where(int(top["n_train"]), scope)
    lines.append(_headline(top, cls, tie, where, len(best)))
    if cls in ("open", "untested") and not tie:
        lines.append(_narrowing(scope))
    chosen = levels[levels["fraction"] == top["fraction"]] if len(levels) else levels
    if len(chosen):
        lines.append(_depth_line(chosen.iloc[0], cls, tie, where.split(" (")[0]))
    if len(best) > 1:
        words = {"better": "fine-tuning better", "matched": "fine-tuning not worse", "matched-lower":
                 "scratch ahead within the margin", "worse": "scratch better", "open": "cannot decide",
                 "untested": "no test"}
        steps = [f"{int(r['n_train']):,} images: {words[c]}" + (f" ({_open_reason(r, t)})" if c == "open" else "")
                 + (f", depth '{d}'" if d else "") + (f" (test preferred {b})" if b else "")
                 for (_, r), c, t, d, b in zip(best.iterrows(), classes, ties, _depths(best, levels),
                                               _beaten(best, levels))]
        advice = {ADVICE.get(c) for c in classes}
        lines.append("With less data: " + "; ".join(steps) + "."
                     + (" The verdicts differ by size: fine-tuning at some, scratch at others (a difference in "
                        "verdicts, not a tested trend)." if {"fine-tune", "scratch"} <= advice else ""))
    elif scope is not None and len(scope.sizes) < 2:
        lines.append("One training-set size only: the data is too small to spread sizes for a learning curve (the "
                     "smallest size needs about 10 images per class).")
    if all(c == "untested" for c in classes):
        lines.append("No paired test was possible at any size.")
    elif all(c in ("open", "untested") for c in classes):
        lines.append("At no size could this run tell fine-tuning from scratch: the intervals are too wide for this "
                     "budget and test set. That is not evidence that the two are equal.")
    diverged = scope.diverged if scope else int(best.get("diverged", pd.Series(0)).sum()
                                                + best.get("scratch_diverged", pd.Series(0)).sum())
    if diverged:
        lines.append(f"{diverged} run(s) diverged at their tuned rate and are left out of every mean (the verdict "
                     "table counts those of the chosen depth and of scratch per size): read those sizes with care.")
    return lines


def _open_reason(r: pd.Series, tie: bool) -> str:
    """Why a size cannot decide, in a few words (the causes :func:`_headline` words in full)."""
    if tie:
        return "a validation tie decides it"
    if r["gap_hi"] < -NI_MARGIN:
        return "scratch ahead before Holm's correction only"
    if r["gap_hi"] < 0:
        return "lower by an unknown amount"
    return "the interval holds a gain and a loss beyond the margin"


def _beaten(best: pd.DataFrame, levels: pd.DataFrame) -> list[str]:
    if levels.empty or "beaten_by" not in levels.columns:
        return [""] * len(best)
    beaten = dict(zip(levels["fraction"], levels["beaten_by"]))
    return [beaten.get(f, "") or "" for f in best["fraction"]]


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


_TUNED = {"every": "at every size",
          "ends": "at the smallest and the largest size that hold 10 or more validation images, the nearest one's "
                  "rate used between",
          "largest": "at the largest size, that rate used at every size: a quick budget's saving"}


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
        "Not told apart on test (paired interval holds 0)": levels["tied_with"].replace("", "-"),
        "Better on test (paired interval above 0)": levels["beaten_by"].replace("", "-"),
    })


def rates_table(df: pd.DataFrame) -> pd.DataFrame:
    """The learning rate each arm used at each size (one value when every seed used the same), ``*`` where its
    validation set held fewer than :data:`helpers.runner.MIN_TUNE_VAL` images and the recipe's default was used."""
    rows = []
    for (n, strategy), g in df.groupby([df["n_train"].astype(int), "strategy"]):
        rates = ", ".join(f"{v:g}" for v in sorted(set(g["lr_used"].astype(float))))
        untuned = bool((g["n_val"] < runner.MIN_TUNE_VAL).any()) if "n_val" in g else False
        rows.append({"Training images": n, "strategy": strategy, "rate": rates + ("*" if untuned else "")})
    order = tables.strategy_order(df)
    out = pd.DataFrame(rows).pivot(index="Training images", columns="strategy", values="rate")
    return out[[s for s in order if s in out.columns]].reset_index().rename_axis(columns=None)


def gap_table(gap: pd.DataFrame) -> pd.DataFrame:
    """Every depth's gap to scratch at every size: the figure's numbers (not only the depth validation chose)."""
    g = gap.sort_values(["n_train", "level_index"])
    return pd.DataFrame({
        "Training images": g["n_train"].astype(int),
        "Depth": g["strategy"],
        "Gap to scratch (95% CI)": [f"{d:+.3f} ({lo:+.3f} to {hi:+.3f})" if np.isfinite(lo) else f"{d:+.3f}"
                                    for d, lo, hi in zip(g["gap"], g["lo"], g["hi"])],
        f"Above -{NI_MARGIN:g} (not worse)": ["yes" if np.isfinite(lo) and lo > -NI_MARGIN else "no" for lo in g["lo"]],
        "p": [f"{p:.3f}" if np.isfinite(p) else "n/a" for p in g["p"]]})


def scope_of(plan: Plan, table: pd.DataFrame) -> Scope:
    capped = plan.capped()
    diverged = int(table["diverged"].fillna(False).astype(bool).sum()) if "diverged" in table.columns else 0
    return Scope(plan.sizes(), len(plan.data.train), len(capped.train), len(capped.test), len(plan.data.test),
                 plan.budget.name, diverged, plan.part.val_share)


def build_report(plan: Plan, table: pd.DataFrame, seconds: float) -> Report:
    """Analyse the finished grid: figures into ``plan.out``, tables, findings and the recommendation."""
    shown = _shown_source(plan.source)
    df = tables.decode_results(table).assign(dataset=shown)   # figures and tables name the data, not a folder path
    names = plan.depths_text()
    n_boot = plan.part.n_bootstrap
    best = analysis.best_per_fraction(df, "test_auc", n_boot=n_boot)
    depths = tables.level_strategies(df)
    levels = (analysis.best_per_fraction(df, "test_auc", candidates=depths, with_test=False, n_boot=n_boot)
              if depths else pd.DataFrame())
    figures = {}
    ax = plots.plot_learning_curves(df, "test_auc")
    figures["Learning curves: test AUC vs training-set size"] = plots.save_figure(ax, "learning_curves", plan.out)
    plt.close(ax.figure)
    gap = analysis.gap_to_scratch(df, "test_auc", n_boot=n_boot)
    if len(gap):
        ax = plots.plot_gap_to_scratch(gap)
        figures["Each depth minus scratch, paired by seed and test image (* p < .05 before Holm's correction)"] = \
            plots.save_figure(ax, "gap_to_scratch", plan.out)
        plt.close(ax.figure)
    summary = findings.summary_table(df, "test_auc", n_boot=n_boot) if len(best) else pd.DataFrame()
    summary.to_csv(plan.out / "verdicts.csv", index=False)
    table.drop(columns=[c for c in ("test_scores", "test_labels", "curve") if c in table.columns]).to_csv(
        plan.out / "runs.csv", index=False)
    data, capped, b, p = plan.data, plan.capped(), plan.budget, plan.part
    scope = scope_of(plan, table)
    device = pick_device()
    machine = (f"{device.type}" if device.type != "cuda" else "cuda") + f", {cores()} cores"
    cap = (f" (the {b.name} budget caps training images at {p.max_train:,}: {len(capped.train):,} of the "
           f"{len(data.train):,} were used)" if len(capped.train) < len(data.train) else "")
    test_cap = (f" ({len(capped.test):,} of the data's {len(data.test):,}: the budget's cap)"
                if len(capped.test) < len(data.test) else "")
    ran = len(plan.store.done() & ({c.key() for c in plan.configs} | {t.key() for t in plan.trials}
                                   | set(table["config_hash"])))
    settings = [
        f"Data: {loading.describe(data)}." + (f" {_named(data.meta['intensity'], data)}" if data.meta.get("intensity")
                                              else ""),
        f"Network: {plan.arch}, ImageNet weights for the fine-tuning arms, the new head Gaussian (std 0.01) as the "
        f"paper's; model input {input_size(plan.arch, p.image_size)} px.",
        f"Arms: scratch and three depths of the network's ladder ({names}); the depth a run fine-tunes "
        "trains with the rate multipliers of the paper's recipe; frozen stages keep ImageNet's BatchNorm statistics.",
        f"Sizes: {', '.join(f'{n:,}' for n in plan.sizes().values())} training images, nested{cap}; "
        f"{p.val_share:.0%} of each budget is held out for validation, so the data's own {len(data.val):,} validation "
        f"images are not used; the test set, {len(capped.test):,} images{test_cap}, is seen by no training and no choice"
        + (f"; left out for too few images of a class: fractions {plan.left_out}" if plan.left_out else "") + ".",
        f"Budget '{b.name}'{plan.modified}: {p.budget.steps} SGD steps a run (the same at every size), batch "
        f"{p.budget.batch_size}, {len(p.seeds)} seeds; rates tried per arm: scratch {list(p.lr_grid['scratch'])}, "
        f"fine-tuning {list(p.lr_grid['finetune'])}, chosen on validation {_TUNED[b.tune]}; where a size's "
        "validation set holds fewer than 10 images, the recipe's default rate (the table below gives the rate each "
        "arm used).",
        f"{len(table)} grid runs ({ran} with the rate tuning) kept in {plan.store.folder.name}/; their training took "
        f"{about(table['wall_s'].sum())} of one worker, this call {about(seconds)} on this machine ({machine}). "
        "The same command again, from the same folder on the same data, resumes or redraws the report without "
        "training.",
    ]
    notes = [
        "Every choice (rate, depth) is made on validation AUC; every verdict is read on the test set, which no "
        "choice saw. With more than two classes the AUC is the mean of the one-vs-rest AUCs (macro).",
        "Intervals are over seeds and test images together (docs/methods.md): they hold both the noise of "
        "retraining and that of a finite test set. Verdicts use paired differences (the same seeds and test "
        "images for both arms).",
        f"'Better' and 'worse' need the paired test to hold after Holm's correction across the sizes (and 'worse' a "
        f"loss beyond the {NI_MARGIN:g} AUC margin); 'not worse' needs only each size's 95% interval to stay above "
        f"-{NI_MARGIN:g}. The rules lean towards fine-tuning, as the paper's finding 1 ('beats or matches') does: a "
        "loss must be shown, a match only bounded. The margin is a convention of this suite, not of the paper.",
        "The verdict table's 'no clear difference' is the recommendation's 'cannot decide': not evidence that the two "
        "are equal. 'Still improving at the last step' is the share of runs whose best validation check was their "
        "last: where it is high, more --steps might change the curve. "
        "'Cannot decide' says why: the interval holds a gain and a loss beyond the margin, or a loss whose size "
        "against the margin is unknown, or a loss seen before Holm's correction only, or a depth tie whose "
        "tie-break would change the verdict.",
        "The depth choice is a tie where validation cannot separate two depths (within its resolution): the "
        "shallower is taken, and the report names the others instead of presenting a convention as evidence.",
    ]
    if b.name != "full":
        notes.append("This budget is small next to the paper's (training to convergence at 227 px): a fine-tuned "
                     "network converges in fewer steps, so a short budget can favour it. Where the decision matters, "
                     "rerun with --budget classroom or full.")
    tables_ = {"Verdict at each size (the depth chosen on validation against scratch)": summary}
    if len(gap):
        tables_["Each depth against scratch (paired by seed and test image; p before Holm's correction)"] = \
            gap_table(gap)
    if len(levels):
        tables_["The depth chosen at each size"] = depth_table(levels)
    tables_["The learning rate each arm used (* the recipe's default: under 10 validation images, too few to tune "
            "on)"] = rates_table(df)
    return Report(
        title=f"Fine-tune or train from scratch? {loading.dataset_label(plan.source)}, {plan.arch}",
        stamp=(f"ftlab {__version__}, budget {b.name}{plan.modified}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; "
               f"command: {plan.command}"),
        recommendation=recommendation(best, levels, scope),
        settings=settings, figures=figures, tables=tables_,
        findings=findings.findings(df, "test_auc", n_boot=n_boot) if len(best) else [], notes=notes)


def _named(text: str, data: DataSet) -> str:
    """``text`` with the data's folder named by its own name (a report names no folder of the machine it ran on)."""
    return text.replace(str(data.source), Path(str(data.source)).name) if data.source else text


def _shown_source(source: str) -> str:
    """The data as the stamp shows it: a name, or the folder's own name (no absolute path of this machine)."""
    return source if catalog.is_medmnist_name(source) else Path(source).name


# ----------------------------------------------------------------------------- the command

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m helpers.advise", description=__doc__.split("\n\n")[2].replace("``", ""),
                                epilog="Budgets: " + "; ".join(f"{b.name}: {b.cost}" for b in BUDGETS.values()),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="an image folder (one sub-folder per class, or train/ val/ test/ of them), a "
                                "MedMNIST-layout .npz, or a MedMNIST name")
    p.add_argument("--arch", default="efficientnet_lite0",
                   help="the network: efficientnet_lite0 (weights built in), resnet18, alexnet, or any timm model "
                        "such as timm:resnet50 (its ImageNet weights through timm; offline, from $FTLAB_WEIGHTS_DIR)")
    p.add_argument("--budget", default="quick", choices=sorted(BUDGETS), help="the grid's size (default quick)")
    p.add_argument("--out", type=Path, help="output folder (default: advice_<data>_<network>_<budget> in the current "
                                            "folder; a resume needs the same one)")
    p.add_argument("--workers", type=int, default=None, help="runs trained at once (default: 2, or $FTLAB_WORKERS)")
    p.add_argument("--intensity", default="auto", metavar="auto|minmax|LOW,HIGH",
                   help="how 16-bit, float or DICOM images become 0..255: auto (8-bit as they are, deeper ones min-max "
                        "per image, DICOM by its own window), minmax, or a fixed window such as 0,4095")
    p.add_argument("--plan", action="store_true", help="print the grid and the cost estimate, train nothing")
    p.add_argument("--seeds", type=int, nargs="+", help="the seed values to train with, e.g. --seeds 0 1 2 (at least 2 "
                                                        "different; default: the budget's)")
    p.add_argument("--steps", type=int, help="override the budget's SGD steps a run (a smoke test)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _default_out(source: str, arch: str, budget: str) -> Path:
    return Path(f"advice_{loading.dataset_label(source)}_{paths.arch_label(arch)}_{budget}")


def command_line(args: argparse.Namespace, arch: str) -> tuple[str, str]:
    """(the command that reproduces this report, with the data and output folders as ``.../name`` (a report names no
    path of the machine it ran on); " (modified: ...)" when the budget was overridden, else "")."""
    extra = [f"--{k} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in
             (("seeds", args.seeds), ("steps", args.steps), ("intensity", args.intensity)) if v and v != "auto"]
    source = str(args.data) if catalog.is_medmnist_name(str(args.data)) else f".../{Path(str(args.data)).name}"
    out = [f"--out .../{Path(args.out).name}"] if args.out else []   # ".../": the folders, not this machine's path
    modified = [e for e in extra if not e.startswith("--intensity")]
    return (" ".join(["ftlab advise", source, "--arch", arch, "--budget", args.budget, *extra, *out]),
            f" (modified: {' '.join(modified)})" if modified else "")


def fingerprint(data: DataSet) -> str:
    """A hash of the images and labels as the runs read them: resuming on changed data is refused."""
    digest = hashlib.sha1(json.dumps(list(data.class_names)).encode())
    for split in (data.train, data.val, data.test):
        digest.update(split.images.numpy().tobytes())
        digest.update(split.labels.numpy().tobytes())
    return digest.hexdigest()[:16]


def check_same_data(plan: Plan, write: bool = True) -> None:
    """Refuse a resume whose stored runs were made on other data (an image added, removed or relabelled since), and,
    with ``write``, record the data's fingerprint in the output folder. Fingerprints are kept per ``--intensity``:
    another scaling is other runs (its own hashes), not stale ones."""
    record = plan.out / "data.json"
    scaling = plan.configs[0].intensity if plan.configs else "auto"
    known = json.loads(record.read_text()) if record.exists() else {}
    prints = known.get("fingerprints", {})
    mine = fingerprint(plan.data)
    if scaling in prints and prints[scaling] != mine:
        raise ValueError(f"{plan.out} holds runs made on other images or labels than {plan.source} holds now (images "
                         f"added, removed or relabelled since; read with --intensity {scaling}): give another --out, or "
                         f"delete {plan.store.folder} to start again.")
    if write:
        plan.out.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"data": _shown_source(plan.source),
                                      "fingerprints": {**prints, scaling: mine}}) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2: the data, the network or its weights cannot be used; 130: stopped)."""
    args = _parser().parse_args(argv)
    try:
        return _advise(args)
    except KeyboardInterrupt:
        print("\nstopped before any run was stored or after every run was; nothing is lost.", file=sys.stderr)
        return 130


def _advise(args: argparse.Namespace) -> int:
    try:
        arch = resolve_arch(args.arch)
        out = (args.out or _default_out(str(args.data), arch, args.budget)).expanduser().resolve()
        plan = make_plan(args.data, arch, args.budget, out, args.seeds, args.steps, args.intensity)
        plan.command, plan.modified = command_line(args, arch)
        print(f"data: {loading.describe(plan.data)}")
        plan.depth_names = check_weights(arch, plan.part.image_size)
        check_same_data(plan, write=not args.plan)
    except WeightsUnavailableError as err:
        name = arch.split(":", 1)[-1]
        print(f"error: no ImageNet weights for {arch} here ({str(err).split(':')[0]}). On a machine without internet, "
              f"download the weights file elsewhere (model.safetensors of the model's Hugging Face repository), put it "
              f"in a folder as {name}.safetensors (or .pth / .bin) and run the same command with "
              f"FTLAB_WEIGHTS_DIR=that_folder; or choose --arch efficientnet_lite0, whose weights install with the "
              "suite.", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, loading.MissingDataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    sizes = plan.sizes()
    print(f"grid: scratch and {len(LEVELS)} depths ({plan.depths_text()}) of {arch} x {len(plan.fractions)} sizes "
          f"({', '.join(f'{n:,}' for n in sizes.values())} training images) x {len(plan.part.seeds)} seeds; "
          f"{plan.part.budget.steps} SGD steps a run at {input_size(arch, plan.part.image_size)} px; budget "
          f"'{plan.budget.name}'{plan.modified}\noutput: {plan.out}")
    workers = args.workers or profiles.get_profile("classroom").workers
    lr_grid = plan.part.lr_grid
    estimate = sweep.plan(plan.configs, plan.trials, plan.store, lr_grid, plan.tune_fractions, probe=True)
    print(sweep.describe(estimate))
    if math.isfinite(estimate["estimate_s"]):
        print(f"With {workers} worker(s): about {about(estimate['estimate_s'] / workers)} (an upper bound: "
              "early stopping and frozen depths end sooner).", flush=True)
    if args.plan:
        return 0
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
        print(f"\nstopped: the finished runs are kept in {plan.store.folder}; the same command again goes on from "
              "there.", file=sys.stderr)
        return 130
    report = build_report(plan, table, time.perf_counter() - started)
    md = write_markdown(report, plan.out / "report.md")
    page = write_html(report, plan.out / "report.html")
    print("\n".join(["", "Recommendation:", *[f"- {line}" for line in report.recommendation], "",
                     f"report: {page} (and {md.name}, figures and tables beside it)"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
