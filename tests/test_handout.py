"""make student: solution cells go, everything else stays; exercise rules are enforced; every notebook qualifies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import handout as H

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def cell(kind: str, source: str, *tag: str) -> dict:
    c = {"cell_type": kind, "metadata": {"tags": list(tag)} if tag else {}, "source": source, "id": source[:8]}
    if kind == "code":
        c.update(outputs=[{"output_type": "stream", "name": "stdout", "text": "x"}], execution_count=3)
    return c


def notebook(*cells: dict) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


GOOD = notebook(cell("markdown", "# T"), cell("code", "x = 1"),
                cell("markdown", "Predict first: ...", "exercise"), cell("markdown", "Answer: ...", "solution"),
                cell("code", "print(x)"),
                cell("markdown", "Add a level", "exercise"), cell("code", "y = x + 1", "solution"),
                cell("markdown", "why?", "solution"), cell("markdown", "## What to try next"))


def test_student_copy_drops_solutions_and_outputs_keeps_the_rest():
    out = H.student_copy(GOOD)
    sources = [c["source"] for c in out["cells"]]
    assert sources == ["# T", H.STUDENT_NOTE, "x = 1", "Predict first: ...", "print(x)", "Add a level",
                       "## What to try next"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in out["cells"] if c["cell_type"] == "code")
    ids = [c["id"] for c in out["cells"]]
    assert len(ids) == len(set(ids))
    assert len(GOOD["cells"]) == 9, "the source notebook is not changed"


@pytest.mark.parametrize("cells, message", [
    ([cell("markdown", "ex", "exercise"), cell("markdown", "a", "solution")], "at least 2"),
    ([cell("markdown", "ex", "exercise"), cell("code", "x"), cell("markdown", "ex2", "exercise"),
      cell("markdown", "a", "solution")], "no solution cell before the next exercise"),
    ([cell("code", "ex", "exercise"), cell("markdown", "a", "solution"), cell("markdown", "ex", "exercise"),
      cell("markdown", "a", "solution")], "not markdown"),
    ([cell("markdown", "stray", "solution"), cell("markdown", "ex", "exercise"), cell("markdown", "a", "solution"),
      cell("markdown", "ex", "exercise"), cell("code", "x"), cell("markdown", "a", "solution")], "before any exercise"),
])
def test_exercise_problems_are_found(cells, message):
    assert any(message in p for p in H.exercise_problems(notebook(*cells)))


def test_write_refuses_bad_notebooks_and_writes_good_ones(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "01_good.ipynb").write_text(json.dumps(GOOD))
    (tmp_path / "src" / "02_bad.ipynb").write_text(json.dumps(notebook(cell("markdown", "# T"))))
    with pytest.raises(ValueError, match="02_bad.ipynb: 0 exercise"):
        H.main([str(tmp_path / "src"), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()
    H.main([str(tmp_path / "src"), str(tmp_path / "out"), "01_good.ipynb"])
    written = json.loads((tmp_path / "out" / "01_good.ipynb").read_text())
    assert not any("solution" in H.tags(c) for c in written["cells"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_exercises_with_solutions(path):
    assert H.exercise_problems(json.loads(path.read_text()), path.name) == []
