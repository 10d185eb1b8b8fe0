"""Graded exercises: the checks' rules, the notebooks' nbgrader cells, and one autograde round (nbgrader).

The round is what ``make test`` proves about grading: every notebook's graded cells, released by
``nbgrader generate_assignment`` and executed by ``nbgrader autograde``, earn full marks with the teacher's
answers and zero when left blank. The student copies (``make student`` writes them) run their graded cells under
nbval in ``make test``; their other cells are the teacher's, unchanged (checked here cell by cell), and no
other cell calls an answer's function, so a blank copy runs to the end wherever the teacher's notebook does.
"""
from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import pytest

from helpers import classroom as CL
from helpers import grading

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


# ----------------------------------------------------------------------------- grading.check
def test_check_says_not_done_on_stderr_without_raising(capsys):
    with grading.check("Exercise 9"):
        raise NotImplementedError()
    out, err = capsys.readouterr()
    assert "Exercise 9: not done" in err and out == ""


def test_check_raises_a_wrong_answer_and_passes_a_right_one(capsys):
    with pytest.raises(AssertionError, match="off by one"):
        with grading.check("Exercise 9"):
            assert 1 == 2, "off by one"
    with grading.check("Exercise 9"):
        assert 1 == 1
    out, err = capsys.readouterr()
    assert "Exercise 9: passed" in out and err == ""


def test_check_prints_warnings_on_stdout_so_they_cost_no_marks(capsys):
    with grading.check("Exercise 9"):
        warnings.warn("harmless")
    out, err = capsys.readouterr()
    assert "harmless" in out and "passed" in out and err == ""


def test_nbgrader_scores_stderr_as_zero_and_a_quiet_cell_as_full():
    """The rule grading.check relies on (nbgrader.utils.determine_grade)."""
    from nbformat.v4 import new_code_cell, new_output
    from nbgrader.utils import determine_grade

    meta = {"nbgrader": {"grade": True, "solution": False, "points": 2, "grade_id": "t", "schema_version": 3}}
    quiet = new_code_cell("x", metadata=meta, outputs=[new_output("stream", name="stdout", text="passed")])
    stderr = new_code_cell("x", metadata=meta, outputs=[new_output("stream", name="stderr", text="not done")])
    assert determine_grade(quiet) == (2, 2)
    assert determine_grade(stderr) == (0, 2)


# ----------------------------------------------------------------------------- the notebooks' graded cells
def code(cid: str, source: str, **nbgrader) -> dict:
    meta = {"tags": ["graded"], "nbgrader": dict(nbgrader, grade_id=cid, schema_version=3)}
    return {"cell_type": "code", "id": cid, "metadata": meta, "source": source, "outputs": [], "execution_count": None}


GOOD = {"cells": [
    code("a1", "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", grade=False, solution=True, locked=False),
    code("t1", 'with grading.check("E1"):\n    assert f() == 1', grade=True, solution=False, locked=True, points=1),
    code("a2", "def g():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION", grade=False, solution=True, locked=False),
    code("t2", 'with grading.check("E2"):\n    assert g() == 2', grade=True, solution=False, locked=True, points=1),
], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_a_well_formed_notebook_has_no_problems():
    assert CL.graded_problems(GOOD) == []


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb["cells"].pop(), "1 autograded test cell"),
    (lambda nb: nb["cells"][0].update(source="x = 1\n### BEGIN SOLUTION\n### END SOLUTION"), "must define a function"),
    (lambda nb: nb["cells"][0].update(source="def f():\n    return 1"), "no '### BEGIN SOLUTION'"),
    (lambda nb: nb["cells"][1].update(source="assert f() == 1"), "grading.check"),
    (lambda nb: nb["cells"][2]["metadata"].update(tags=[]), "not tagged 'graded'"),
])
def test_graded_problems_are_found(change, message):
    nb = json.loads(json.dumps(GOOD))
    change(nb)
    assert any(message in p for p in CL.graded_problems(nb))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_graded_exercises_in_nbgrader_form(path):
    nb = json.loads(path.read_text())
    assert CL.graded_problems(nb, path.name) == []
    assert not [c["id"] for c in nb["cells"] if "solution" in CL.tags(c)], "old 'solution' tags: use nbgrader's cells"
    ids = [CL.nbgrader_meta(c)["grade_id"] for c in nb["cells"] if CL.nbgrader_meta(c)]
    assert len(ids) == len(set(ids)) and all(i.startswith(f"nb{path.name[:2]}-") for i in ids), "grade ids: unique, per notebook"


# ----------------------------------------------------------------------------- answers a student cannot copy
def test_containment_sees_a_renamed_copy_and_not_another_algorithm():
    shown = "pos, neg = scores[labels == 1], scores[labels == 0]\nauc = (pos[:, None] > neg[None, :]).mean()\n"
    renamed = "    p, n = s[y == 1], s[y == 0]   # renamed, re-indented, commented\n    return (p[:, None] > n[None, :]).mean()"
    other = "    order = np.argsort(s)\n    ranks = np.empty(len(s))\n    ranks[order] = np.arange(1, len(s) + 1)\n" \
            "    return (ranks[y == 1].sum() - k * (k + 1) / 2) / (k * (len(y) - k))"
    assert CL.containment(renamed, shown) >= 0.7
    assert CL.containment(other, shown) < 0.1
    assert CL.normalised_tokens("x.mean(1)  # c") == ["v", ".", "mean", "(", "n", ")"]


def test_a_near_copy_and_a_visible_answer_are_found():
    nb = {"cells": [
        {"cell_type": "code", "metadata": {}, "source": "m = w.std() * torch.randn(w.shape, generator=g) + w.mean()"},
        code("nb-a", "def f(w, g):\n    ### BEGIN SOLUTION\n    return torch.randn(w.shape, generator=g) * w.std() + w.mean()\n"
                  "    ### END SOLUTION", grade=False, solution=True, locked=False),
        {"cell_type": "markdown", "metadata": {}, "source": "**Answer.** The mean moves."}]}
    assert CL.near_copies(nb) and "nb-a" in CL.near_copies(nb)[0]
    assert CL.visible_answers(nb) == [2]
    nb["cells"][0]["source"] = "print(w.shape)"
    nb["cells"][2]["metadata"] = {"nbgrader": {"grade": True, "solution": True, "grade_id": "nb-b", "points": 0}}
    assert not CL.near_copies(nb) and not CL.visible_answers(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_graded_solution_is_a_near_copy_of_a_visible_cell(path):
    """Containment of 6-token runs of normalised code (helpers.classroom.near_copies): below NEAR_COPY."""
    nb = json.loads(path.read_text())
    assert not CL.near_copies(nb), CL.near_copies(nb)
    assert not CL.visible_answers(nb), f"cells {CL.visible_answers(nb)} give an answer the student copy would show"


# ----------------------------------------------------------------------------- one autograde round
@pytest.fixture(scope="module")
def autograded(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    return root, CL.autograde_round(NOTEBOOKS, root)


@pytest.mark.slow   # the autograde round: every notebook run by nbgrader, twice
def test_the_student_version_has_stubs_and_no_answers_or_hidden_tests(autograded):
    root, _ = autograded
    released = json.loads((root / "release" / CL.ASSIGNMENT / CL.ROUND_NOTEBOOK).read_text())
    text = json.dumps(released)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    answers = [c for c in released["cells"] if CL.nbgrader_meta(c).get("solution") and c["cell_type"] == "code"]
    assert len(answers) >= 2 * len(NOTEBOOKS)
    assert all("raise NotImplementedError()" in "".join(c["source"]) for c in answers)


@pytest.mark.slow
def test_autograde_gives_full_marks_to_the_solutions_and_zero_to_the_blank_copy(autograded):
    _, scores = autograded
    auto = {who: {k: g for k, g in cells.items() if g["cell_type"] == "code"} for who, cells in scores.items()}
    assert len(auto["solutions"]) >= 2 * len(NOTEBOOKS)
    assert {k for k in auto["solutions"]} == {k for k in auto["blank"]}
    for gid, g in auto["solutions"].items():
        assert g["auto_score"] == g["max_score"] > 0, f"{gid}: the teacher's answer lost marks"
    for gid, g in auto["blank"].items():
        assert g["auto_score"] == 0, f"{gid}: a blank answer earned marks"
    manual = {who: [g for g in cells.values() if g["cell_type"] == "markdown"] for who, cells in scores.items()}
    assert manual["solutions"] and all(g["needs_manual_grade"] for g in manual["solutions"])
    assert all(g["auto_score"] == 0 and not g["needs_manual_grade"] for g in manual["blank"]), "blank: no response, 0"


@pytest.mark.slow
def test_the_blank_copy_ran_to_the_end_and_every_check_says_not_done(autograded):
    root, _ = autograded
    done = json.loads((root / "autograded" / "blank" / CL.ASSIGNMENT / CL.ROUND_NOTEBOOK).read_text())
    outputs = [o for c in done["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], "no cell of the blank copy raised"
    tests = CL.autograded_tests(done)
    for cell in tests:
        err = "".join("".join(o["text"]) for o in cell["outputs"] if o.get("name") == "stderr")
        assert grading.NOT_DONE in err, f"{CL.nbgrader_meta(cell)['grade_id']}: says 'not done' on stderr"


# ----------------------------------------------------------------------------- student copies = teacher's outside the graded cells
def code_names(source: str) -> set[str]:
    """Every name a code cell reads (IPython magics and shell lines left out)."""
    body = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return {n.id for n in ast.walk(ast.parse(body)) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@pytest.mark.slow   # nbgrader generate_assignment on the seven notebooks
def test_a_student_copy_is_the_notebook_outside_its_graded_cells(tmp_path):
    copies = CL.student_copies(NOTEBOOKS, tmp_path / "student", root=tmp_path / "course")
    for path, copy in zip(NOTEBOOKS, copies):
        teacher, student = (json.loads(Path(p).read_text())["cells"] for p in (path, copy))
        outside = [[(c["cell_type"], "".join(c["source"])) for c in cells  # a markdown answer is replaced whole
                    if CL.GRADED not in CL.tags(c) and not CL.nbgrader_meta(c).get("solution")] for cells in (teacher, student)]
        assert outside[0] == outside[1], f"{path.name}: the student copy changed a cell outside the graded ones"
        answers = {node.name for c in teacher if CL.nbgrader_meta(c).get("solution") and c["cell_type"] == "code"
                   for node in ast.parse("".join(c["source"])).body if isinstance(node, ast.FunctionDef)}
        assert answers, f"{path.name}: no answer function found"
        users = {n for c in teacher if c["cell_type"] == "code" and CL.GRADED not in CL.tags(c)
                 for n in code_names("".join(c["source"])) & answers}
        assert not users, f"{path.name}: cells outside the graded ones call {users}, a stub in the student copy"
        shown = json.loads(Path(copy).read_text())
        assert CL.ANSWER_PREFIX not in json.dumps(shown), f"{copy.name}: an answer is visible in the student copy"
        assert not CL.near_copies(json.loads(path.read_text()), shown), f"{copy.name}: a solution is a near-copy"
