"""Notebook prose states no result of a run (issue 22).

A number typed into markdown is true of one run only: the next run contradicts it ("validation chose
stage1-classifier (test 0.898)"). The rule of the suite: code cells print a run's numbers, the markdown says
what to look for. This test reads the markdown of every notebook and flags result-like numbers:

* a decimal (``0.91``, ``.913``) or a percentage within 60 characters of a result word (AUC, sensitivity,
  accuracy, test, p-value, gap, chose, found, ...);
* a p-value (``p = 0.04``, ``p < .001``);
* a dated or named run ("the classroom run", "run of 2026-11-26");
* an image count next to a verdict ("from 48 images on the two could not be told apart").

Numbers that are not results are allowed by :data:`ALLOWED`, each entry a pattern with its reason:
parameters and definitions (chance 0.5, momentum 0.9 and 0.1, the rate times 0.95, 95% intervals, 10% FPR,
0.1 / 0.5 / 1 false positives per frame, ...), and yardsticks quoted from the paper or MedMNIST v2 when the
sentence names them (:data:`YARDSTICKS`). Code spans (``like this``) and LaTeX formulas (``$...$``) are
definitions, not prose, and are skipped. The scanner is tested on hand-made sentences below, then run on
every notebook.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from helpers.yardsticks import MEDMNIST_V2

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

RESULT_WORDS = re.compile(
    r"\b(AUCs?|ROC|sensitivit(?:y|ies)|specificit(?:y|ies)|accura(?:cy|te)|tests?|validation|p-values?|FROC|"
    r"scores?|gaps?|deltas?|loss(?:es)?|chose|chosen|choose|won|beat|better|worse|found|reached|detected|"
    r"scratch|fine-tun\w*|result\w*|achiev\w*|got|measured)\b", re.IGNORECASE)
DECIMAL = re.compile(r"(?<![\w.])(?:\d+\.\d+|\.\d+)(?![\w.]*\d)")
PERCENT = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?%")
P_VALUE = re.compile(r"\bp\s*(?:=|<|>|≤|≥|&lt;|&gt;)\s*0?\.\d+", re.IGNORECASE)
NAMED_RUN = re.compile(r"\b(?:classroom|fast|full|this|the|our|last|latest|README's)\s+run\s+(?:of|on|from)\s+\d{4}|"
                       r"\b(?:in )?the (?:classroom|README's|last|latest) run\b|\brun of 20\d\d\b|\b20\d\d-\d\d-\d\d\b",
                       re.IGNORECASE)
COUNT_VERDICT = re.compile(
    r"\b\d[\d,]*\s+(?:training\s+)?images?\b[^.]*\b(?:told apart|better|worse|beat|beats|caught up|catches up|"
    r"ahead|behind|won|matched|overtook)\b|\b(?:told apart|better|worse|beat|beats|caught up|ahead|behind|won|"
    r"matched|overtook)\b[^.]*\b\d[\d,]*\s+(?:training\s+)?images?\b", re.IGNORECASE)

# Published numbers that prose may quote when it names the source (MedMNIST v2 table, the paper's
# boundary errors in micrometres, other papers of docs/PAPER.md).
PAPER_BOUNDARY_ERRORS = ("101.0", "34.7", "27.9", "25.3", "25.0", "24.4", "24.7", "28.1", "98.2", "103.3", "43.9",
                         "34.6", "31.9", "30.6", "31.8", "31.7", "31.2", "33.5", "106.6")
YARDSTICKS = frozenset(
    {text for model in MEDMNIST_V2.values() for pair in model.values() for v in pair
     for text in (f"{v:.3f}", f"{v:.3f}".lstrip("0"))}
    | set(PAPER_BOUNDARY_ERRORS) | {"92.2", "94.6", "0.82", "0.96"})
SOURCE_NAMED = re.compile(r"MedMNIST|Tajbakhsh|the paper|the study|published|yardstick|Yang et al|Raghu|"
                          r"Transfusion|Kornblith|ColonSegNet|Jha et al", re.IGNORECASE)

# Numbers that are parameters or definitions, not results: (pattern, reason). A flagged number is allowed
# when it lies inside a match of one of these.
ALLOWED: tuple[tuple[str, str], ...] = (
    (r"\b95\s?%\s*(?:\w+[- ]){0,3}?(?:intervals?|bands?|CIs?|confidence)\b|\b95\s?%\s*of (?:the way|its best|it\b|what it)",
     "the level of every interval and band; the convergence yardstick"),
    (r"\b(?:2\.5|97\.5)(?:th)?\b", "the percentiles of a 95% percentile interval"),
    (r"\b0?\.975\b|\b0?\.025\b", "the quantiles of a 95% interval"),
    (r"\b0?\.05\b(?=[^.]*(?:significan|alpha|α|level|smallest possible|threshold))|"
     r"(?:above|below|under|than|α\s*=|alpha\s*=?)\s*0?\.05\b", "the significance level"),
    (r"momentum(?: of)?\s*(?:m\s*=\s*)?0?\.9\b|\b0?\.9\s*(?:momentum|\^)|0?\.9\^\{?k",
     "SGD momentum; the old statistics' weight"),
    (r"momentum(?: of| m)?\s*(?:=\s*)?0?\.1\b|\b0?\.1\s*(?:momentum|\(PyTorch)",
     "BatchNorm's running-statistics momentum"),
    (r"(?:times|by|of|multiplied by|decay(?:s|ed)?(?: of)?)\s*0?\.95\b|\b0?\.95\s*(?:per|every|once)",
     "the paper's learning-rate decay"),
    (r"\b0?\.95\s*\\,\s*\(|\b0?\.95\s*of the way|\b0?\.95\b(?=[^.]{0,30}of the way)",
     "the convergence yardstick: 95% of the way from chance to the best"),
    (r"(?:chance|random)[^.]{0,60}?\b0?\.5\b|\b0?\.5\b[^.]{0,60}?(?:chance|random)|\b0?\.5\s*\\ge|-\s*0?\.5\b",
     "AUC's chance level"),
    (r"(?:\b\d*\.?\d+\s*(?:,|and|or|to)\s*)*\b\d*\.?\d+\s*(?:FP/frame|FP per frame|false positives? per frame|"
     r"false alarms? per frame)", "FROC operating points (false positives per frame)"),
    (r"\\mathrm\{sens\}\(\d*\.?\d+\)", "the validation FROC score's operating points"),
    (r"\b\d+(?:\.\d+)?\s?%\s*(?:FPR|false[- ]positive rate|false positives\b|of the (?:negatives|healthy))",
     "the false-positive rate at which sensitivity is read"),
    (r"\b\d+\s?%\s*/\s*\d+\s?%\s*/\s*\d+\s?%", "a train/validation/test split"),
    (r"\b\d+\s?%\s*(?:of (?:it|the budget|each run's budget)|validation)", "the share held out for validation"),
    (r"\b(?:1\.0|1\.2|1\.5)\s*(?:,|and)\s*(?:1\.2|1\.5)|\b1\.2\b[^.]{0,20}\b1\.5\s*times",
     "the detector's window scales"),
    (r"best is 0\.60 reaches 95% of it \(0\.57\)",
     "a worked example of why the convergence yardstick starts at chance"),
    (r"constant score[^.]{0,30}0?\.5\b", "AUC's chance level"),
    (r"(?:threshold|cut-?off)(?:\s+of)?\s*0?\.\d+|\bat 0?\.5\b|(?:above|below) 0?\.5\b|"
     r"0?\.5 is simply the wrong threshold", "the default decision threshold of accuracy"),
    (r"(?:\d+\s?%[,\s]*(?:and|or)?\s*)+[^.]{0,40}operating points?|FPR\)?\s*(?:of\s*)?\d+\s?%",
     "the false-positive rates at which sensitivity is read"),
    (r"the paper:?\s*\d*\.?\d+|weight decay[*\s]*\(?\s*0?\.\d+|×\s*0?\.95", "the paper's training recipe"),
    (r"(?:at most|by more than|within|tolerance of|differ by)\s*0?\.\d+|of order\s*0?\.\d+(?:\s*to\s*\d+)?",
     "a tolerance stated for an assertion"),
    (r"\b1\.0,\s*1\.2,?\s*(?:and\s*)?1\.5\b", "the detector's window scales"),
    (r"0\.9\^k|0\.9\^\{?\d+", "how fast old running statistics fade"),
)
_ALLOWED = [(re.compile(pattern, re.IGNORECASE), reason) for pattern, reason in ALLOWED]
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.DOTALL)
NEAR = 60   # a number is result-like when a result word lies within this many characters of it
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z*(\[$>])|\n\s*\n|\n(?=\s*(?:[-*>]|\d+\.)\s)")


def _sentences(markdown: str) -> list[str]:
    """The prose of one markdown cell, code spans and LaTeX formulas blanked (code and definitions, not
    prose), split into sentences (and list items)."""
    prose = _CODE_SPAN.sub(lambda m: " " * len(m.group()), markdown)
    prose = _MATH.sub(lambda m: " " * len(m.group()), prose)
    return [s.strip() for s in _SENTENCE.split(prose) if s.strip()]


def _allowed(sentence: str, start: int, end: int) -> bool:
    """Whether the number at ``sentence[start:end]`` is a parameter, a definition or a named yardstick."""
    number = sentence[start:end].strip().rstrip("%").strip()
    if number in YARDSTICKS and SOURCE_NAMED.search(sentence):
        return True
    return any(m.start() <= start and end <= m.end() for rx, _ in _ALLOWED for m in rx.finditer(sentence))


def flag_sentence(sentence: str) -> list[str]:
    """The reasons why one sentence reads like a run's result (empty when it does not)."""
    found = []
    if NAMED_RUN.search(sentence):
        found.append(f"names a run: {NAMED_RUN.search(sentence).group()!r}")
    for m in P_VALUE.finditer(sentence):
        if not _allowed(sentence, m.start(), m.end()) and not re.search(r"smallest possible|could never", sentence):
            found.append(f"p-value {m.group()!r}")
    if COUNT_VERDICT.search(sentence):
        found.append(f"an image count with a verdict: {COUNT_VERDICT.search(sentence).group()[:60]!r}")
    for rx, kind in ((DECIMAL, "decimal"), (PERCENT, "percentage")):
        for m in rx.finditer(sentence):
            word = RESULT_WORDS.search(sentence[max(0, m.start() - NEAR):m.end() + NEAR])
            if word and not _allowed(sentence, m.start(), m.end()):
                found.append(f"{kind} {m.group().strip()!r} next to {word.group()!r}")
    return found


def scan_markdown(markdown: str) -> list[tuple[str, str]]:
    """(sentence, reason) for every result-like number in one markdown cell."""
    return [(s, reason) for s in _sentences(markdown) for reason in flag_sentence(s)]


def scan_notebook(path: Path) -> list[str]:
    """One line per flagged sentence: cell id, reason, the sentence."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    out = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "markdown":
            continue
        for sentence, reason in scan_markdown("".join(cell["source"])):
            out.append(f"cell {index} (id {cell.get('id')}): {reason}: {sentence[:160]!r}")
    return out


# ----------------------------------------------------------------------------- the scanner itself
STALE = [
    "validation chose `stage1-classifier` (test 0.898), and scratch reached 0.919.",
    "validation chose stage1-classifier (test 0.898)",
    "Both networks chose the larger rate, 0.03.",
    "In the classroom run of 2026-11-26 (PneumoniaMNIST, 3 seeds) fine-tuning was far ahead with 10 training images.",
    "Fine-tuning was far ahead (test AUC 0.890 against 0.708 from scratch; gap +0.18, paired p < 0.001).",
    "From 48 images on the two could not be told apart.",
    "Scratch was better at 60 images, p = 0.040.",
    "The detector found 78% of the test polyps at 0.5 FP/frame.",
    "The detector found 95% of the test polyps.",
    "Fine-tuning reached a test AUC of 0.95 (0.93-0.97).",
    "AlexNet's scores have a standard deviation of 0.001 and an AUC of 0.914.",
    "Sensitivity at 10% FPR was .83 on this run.",
    "The run of 2026 gave an accuracy of 0.85.",
    "The classroom run chose the larger rate.",
    "Scratch training reached an AUC of 0.907 while stem-classifier got 0.913.",
]
FINE = [
    "The band is a 95% confidence interval.",
    "MedMNIST v2 ResNet-18 (28): AUC .944 (yardstick)",
    "MedMNIST v2 reports a test AUC of 0.944 for ResNet-18 (28).",
    "The published MedMNIST v2 yardstick for PneumoniaMNIST is a test AUC of .944 with ResNet-18 (28).",
    "The paper's boundary errors fall from 101.0 to 24.4 micrometres as more layers are tuned.",
    "A random ranking gives an AUC of 0.5 (chance).",
    "SGD with momentum 0.9; the rate is multiplied by 0.95 every epoch.",
    "BatchNorm in PyTorch updates its running statistics with momentum 0.1.",
    "Sensitivity at 10% FPR is the share of positives found when 10% of the negatives are flagged.",
    "The validation FROC score is the mean sensitivity at 0.1, 0.5 and 1 FP/frame.",
    "A Wilcoxon test's smallest possible p-value is above 0.05 with five seeds.",
    "Read the `test_auc` column: 0.5 is chance.",
    "Each point is the mean over seeds with its 95% band.",
    "The first logged step at which AUC has come 95% of the way from chance to its best.",
    "A model whose best is 0.60 reaches 95% of it (0.57) almost at once.",
    "A run with 60 images has 60 labelled images in all.",
    "The folder is split by sequence (60% / 20% / 20% of the sequences).",
]


@pytest.mark.parametrize("sentence", STALE)
def test_scanner_flags_a_run_result(sentence: str) -> None:
    assert scan_markdown(sentence), f"not flagged: {sentence!r}"


@pytest.mark.parametrize("sentence", FINE)
def test_scanner_passes_definitions_and_yardsticks(sentence: str) -> None:
    assert scan_markdown(sentence) == [], scan_markdown(sentence)


def test_scanner_skips_code_spans_and_reports_cells(tmp_path: Path) -> None:
    cell = {"cell_type": "markdown", "id": "x1", "metadata": {},
            "source": ["Use `lr=0.003` for the test. ", "Validation chose last (test 0.91)."]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [cell]}), encoding="utf-8")
    flagged = scan_notebook(path)
    assert len(flagged) == 1 and "id x1" in flagged[0] and "0.91" in flagged[0]


# ----------------------------------------------------------------------------- the notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_markdown_quotes_no_run_result(path: Path) -> None:
    flagged = scan_notebook(path)
    assert not flagged, (f"{path.name}: markdown that quotes a run's numbers (print them from a code cell, "
                         "or add a parameter/yardstick pattern to ALLOWED with its reason):\n" + "\n".join(flagged))
