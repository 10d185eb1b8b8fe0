"""Student copies and autograding with nbgrader: ``make student`` (``python -m helpers.classroom student``).

The notebooks in ``notebooks/`` are the teacher's version, in nbgrader's format (cell metadata under
``nbgrader``, as JupyterLab's nbgrader "Create Assignment" tool writes it):

- a graded exercise is a markdown prompt, an *autograded answer* cell (a function whose body lies between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION``) and a read-only *autograder test* cell that compares the
  function with the helpers on small arrays (:func:`helpers.grading.check`; tests between ``### BEGIN HIDDEN
  TESTS`` and ``### END HIDDEN TESTS`` are left out of the student copy and put back for grading);
- a "predict first" or open question has a *manually graded answer* cell (markdown, replaced whole);
- every cell of the graded exercises (prompt, answer, tests and the read-only set-up cell that makes their
  small inputs) carries the tag ``graded``: together they run on their own, after nothing but that set-up.

``nbgrader generate_assignment`` writes the student copies: answers replaced by ``raise NotImplementedError()``
(code) or "YOUR ANSWER HERE" (markdown), hidden tests removed, outputs cleared. A course directory
(``build/nbgrader``: ``source/``, ``release/``, ``submitted/``, ``autograded/``, ``gradebook.db`` and an
``nbgrader_config.py``) holds nbgrader's state; ``student/`` gets the copies to hand out.

``python -m helpers.classroom round`` is the autograde round ``make test`` runs (tests/test_grading.py): one
notebook gathering every notebook's ``graded`` cells is released, submitted twice (with the teacher's
answers and blank) and graded by ``nbgrader autograde``, which executes the submitted code.
"""
from __future__ import annotations

import argparse
import copy
import io
import json
import keyword
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path
from typing import Sequence

ASSIGNMENT = "ftlab"
GRADED = "graded"
COURSE = Path("build/nbgrader")
ROUND_NOTEBOOK = "graded_exercises.ipynb"
MIN_GRADED = 2
CONFIG = '''# nbgrader's settings for ftlab (written by python -m helpers.classroom; see its docstring).
c = get_config()
c.CourseDirectory.course_id = "ftlab"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"
# A classroom-profile notebook has cells that train for minutes: autograde must not stop them at 30 s.
c.Execute.timeout = 3600
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
'''


def nbgrader_meta(cell: dict) -> dict:
    """A cell's nbgrader metadata (empty when it has none)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def tags(cell: dict) -> list[str]:
    """A cell's tags (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def autograded_tests(nb: dict) -> list[dict]:
    """The autograder test cells: code cells nbgrader grades by running them."""
    return [c for c in nb["cells"] if c["cell_type"] == "code" and nbgrader_meta(c).get("grade")
            and not nbgrader_meta(c).get("solution")]


def _defines_only(source: str) -> bool:
    """Whether every top-level statement of a code cell is a ``def``, an import or a decorator (so that
    nbgrader's stub, ``raise NotImplementedError()`` in the function body, raises only when called)."""
    top = [line for line in source.splitlines() if line.strip() and not line[0].isspace()
           and not line.startswith("#")]
    return bool(top) and all(line.startswith(("def ", "import ", "from ", "@")) for line in top)


def graded_problems(nb: dict, name: str = "notebook") -> list[str]:
    """What is wrong with a notebook's graded exercises (empty when nothing is): too few autograded tests,
    a code answer without solution markers, outside the ``graded`` cells or not a function, a test cell that
    does not go through :func:`helpers.grading.check` (a markdown answer is replaced whole: it needs no markers)."""
    problems = []
    tests = autograded_tests(nb)
    if len(tests) < MIN_GRADED:
        problems.append(f"{name}: {len(tests)} autograded test cell(s); every notebook needs at least {MIN_GRADED}.")
    for cell in nb["cells"]:
        meta, src = nbgrader_meta(cell), "".join(cell["source"])
        if meta.get("solution") and cell["cell_type"] == "code" and "### BEGIN SOLUTION" not in src:
            problems.append(f"{name}: answer cell {meta.get('grade_id')} has no '### BEGIN SOLUTION' marker.")
        if meta.get("solution") and cell["cell_type"] == "code" and GRADED not in tags(cell):
            problems.append(f"{name}: code answer cell {meta.get('grade_id')} is not tagged '{GRADED}'.")
        if meta.get("solution") and cell["cell_type"] == "code" and not _defines_only(src):
            problems.append(f"{name}: code answer cell {meta.get('grade_id')} must define a function (a stub "
                            "raising at the top level would stop the student copy).")
    for cell in tests:
        if "grading.check(" not in "".join(cell["source"]) or GRADED not in tags(cell):
            problems.append(f"{name}: test cell {nbgrader_meta(cell).get('grade_id')} must be tagged "
                            f"'{GRADED}' and run its tests inside grading.check(...).")
    return problems


# ----------------------------------------------------------------------------- answers that cannot be copied
# How alike a graded solution and a code cell the student copy shows are: both are cut into tokens with Python's
# own tokenizer (comments, blank lines and indentation dropped), every name that is not a keyword or an attribute
# (``x``, ``np``, ``my_labels``) becomes one token ``v``, every number ``n`` and every string ``s``, so renaming
# variables or changing constants does not hide a copy. The similarity is the share of the solution's runs of
# SHINGLE tokens that also occur in the cell (containment, as plagiarism detectors measure it); a solution is a
# near-copy when that share reaches NEAR_COPY for some visible cell.
SHINGLE = 6
NEAR_COPY = 0.25
ANSWER_PREFIX = "**Answer"


def _code_lines(source: str) -> str:
    """A code cell's text without IPython magics and shell lines (``%time``, ``!pip``)."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def normalised_tokens(source: str) -> list[str]:
    """The tokens of ``source`` with names as ``v``, numbers as ``n`` and strings as ``s`` (see above)."""
    text = textwrap.dedent(_code_lines(source))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENCODING, tokenize.ENDMARKER}
    try:
        words = [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type not in skip]
    except (tokenize.TokenError, IndentationError, SyntaxError):   # a fragment: a plain regular-expression split
        words = [(tokenize.NAME if w[0].isalpha() or w[0] == "_" else tokenize.NUMBER if w[0].isdigit()
                  else tokenize.STRING if w[0] in "\"'" else tokenize.OP, w)
                 for w in re.findall(r"[A-Za-z_]\w*|\d[\w.]*|\"[^\"]*\"|'[^']*'|\S", re.sub(r"#[^\n]*", "", text))]
    out: list[str] = []
    for kind, word in words:
        if kind == tokenize.NAME:   # an attribute (after ".") and a keyword stay themselves
            out.append(word if keyword.iskeyword(word) or (out and out[-1] == ".") else "v")
        elif kind == tokenize.NUMBER:
            out.append("n")
        elif kind == tokenize.STRING or tokenize.tok_name[kind].startswith("FSTRING"):   # f-string parts, 3.12+
            out.append("s")
        else:
            out.append(word)
    return out


def _shingles(tokens: list[str], k: int = SHINGLE) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + k]) for i in range(max(len(tokens) - k + 1, 1))} if tokens else set()


def containment(solution: str, cell: str, k: int = SHINGLE) -> float:
    """The share of the solution's ``k``-token runs (normalised) that also occur in ``cell``: 0 to 1."""
    mine = _shingles(normalised_tokens(solution), k)
    return len(mine & _shingles(normalised_tokens(cell), k)) / len(mine) if mine else 0.0


def solution_code(source: str) -> str:
    """The text between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of an answer cell (every region)."""
    keep, inside = [], False
    for line in source.splitlines():
        if "### BEGIN SOLUTION" in line:
            inside = True
        elif "### END SOLUTION" in line:
            inside = False
        elif inside:
            keep.append(line)
    return "\n".join(keep)


def visible_code(nb: dict) -> list[tuple[int, str]]:
    """(cell index, text) of the code cells a student sees: every code cell except answers (stubbed), with any
    hidden tests cut out."""
    shown = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or nbgrader_meta(cell).get("solution"):
            continue
        text, cut = [], False
        for line in "".join(cell["source"]).splitlines():
            if "### BEGIN HIDDEN TESTS" in line:
                cut = True
            elif "### END HIDDEN TESTS" in line:
                cut = False
            elif not cut:
                text.append(line)
        shown.append((i, "\n".join(text)))
    return shown


def near_copies(teacher: dict, shown: dict | None = None, threshold: float = NEAR_COPY) -> list[str]:
    """Each graded solution of ``teacher`` whose containment in a code cell of ``shown`` (the student copy;
    default: the teacher's notebook with answers and hidden tests left out) reaches ``threshold``, said in
    words: an exercise a student could answer by copying a cell they can see."""
    found = []
    cells = visible_code(shown if shown is not None else teacher)
    for cell in teacher["cells"]:
        meta = nbgrader_meta(cell)
        if cell["cell_type"] != "code" or not meta.get("solution"):
            continue
        answer = solution_code("".join(cell["source"]))
        scores = [(containment(answer, text), i) for i, text in cells]
        best, where = max(scores, default=(0.0, -1))
        if best >= threshold:
            found.append(f"{meta.get('grade_id')}: {best:.0%} of its solution's {SHINGLE}-token runs are in "
                         f"visible code cell {where}")
    return found


def visible_answers(nb: dict) -> list[int]:
    """Indices of markdown cells that give an answer (they start with ``**Answer``) but are not nbgrader
    answer cells: a student copy would show them under the question."""
    return [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown"
            and ANSWER_PREFIX in "".join(c["source"]) and not nbgrader_meta(c).get("solution")]


def graded_notebook(notebooks: Sequence[Path]) -> dict:
    """One notebook holding every notebook's ``graded`` cells, in order (the autograde round's assignment)."""
    loaded = [json.loads(Path(p).read_text()) for p in notebooks]
    cells = [{"cell_type": "markdown", "id": "graded-title", "metadata": {},
              "source": "# ftlab: the graded exercises of every notebook\n"
                        "Gathered by `python -m helpers.classroom round` for one cheap autograde round."}]
    for path, nb in zip(notebooks, loaded):
        cells.append({"cell_type": "markdown", "id": f"graded-{Path(path).stem[:2]}", "metadata": {},
                      "source": f"## From {Path(path).name}"})
        cells += [copy.deepcopy(c) for c in nb["cells"] if GRADED in tags(c)]
    return {"cells": cells, "metadata": copy.deepcopy(loaded[0]["metadata"]), "nbformat": 4,
            "nbformat_minor": loaded[0].get("nbformat_minor", 5)}


def _nbgrader(root: Path, *args: str) -> str:
    """Run one nbgrader command in the course directory; raises with nbgrader's log when it fails."""
    env = dict(os.environ)   # nbgrader runs the `alembic` command: the venv's bin must be on PATH
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True, text=True, env=env)
    log = done.stdout + done.stderr
    if done.returncode != 0 or "[ERROR]" in log:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{log}")
    return log


def new_course(root: Path, fresh: bool = False) -> Path:
    """A course directory with ftlab's ``nbgrader_config.py``. ``fresh`` removes an old one first (the
    autograde round's scratch course); otherwise a teacher's gradebook and submissions are kept."""
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(CONFIG)
    return root


def release(root: Path, notebooks: dict[str, dict]) -> list[Path]:
    """Put the teacher's notebooks (file name -> notebook) into ``source/`` and run ``generate_assignment``;
    returns the student copies in ``release/``. Refuses notebooks whose graded exercises need fixing."""
    problems = [p for name, nb in notebooks.items() for p in graded_problems(nb, name)]
    if problems:
        raise ValueError("Graded exercises need fixing before student copies are made:\n  " + "\n  ".join(problems))
    source = root / "source" / ASSIGNMENT
    shutil.rmtree(source, ignore_errors=True)   # only what is released now: no stale notebook
    source.mkdir(parents=True)
    for name, nb in notebooks.items():
        (source / name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    _nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    return [root / "release" / ASSIGNMENT / name for name in notebooks]


def student_copies(notebooks: Sequence[Path], out_dir: Path, root: Path = COURSE) -> list[Path]:
    """``make student``: the student copies generated in the course ``root`` and copied to ``out_dir``."""
    new_course(root)
    released = release(root, {Path(p).name: json.loads(Path(p).read_text()) for p in notebooks})
    out_dir.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(p, out_dir / p.name)) for p in released]


def submit(root: Path, student: str, files: Sequence[Path]) -> None:
    """Put ``files`` where nbgrader looks for ``student``'s submission (``submitted/STUDENT/ftlab/``)."""
    target = root / "submitted" / student / ASSIGNMENT
    target.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy(f, target / Path(f).name)


def autograde(root: Path) -> None:
    """``nbgrader autograde`` of every submission in the course (it executes the submitted notebooks)."""
    _nbgrader(root, "autograde", ASSIGNMENT, "--force")


def grades(root: Path, student: str) -> dict[str, dict[str, dict]]:
    """The gradebook's grades of one student's autograded submission:
    notebook -> grade id -> {auto_score, max_score, needs_manual_grade, cell_type}."""
    from nbgrader.api import Gradebook   # imported here: the notebooks never need nbgrader

    with Gradebook(f"sqlite:///{(root / 'gradebook.db').resolve()}") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        return {nb.name: {g.name: {"auto_score": g.auto_score, "max_score": g.max_score,
                                   "needs_manual_grade": g.needs_manual_grade, "cell_type": g.cell_type}
                          for g in nb.grades}
                for nb in submission.notebooks}


def autograde_round(notebooks: Sequence[Path], root: Path) -> dict[str, dict[str, dict]]:
    """The round ``make test`` runs: every notebook's graded cells in one notebook, released, then autograded
    as submitted with the teacher's answers (student "solutions") and blank (student "blank")."""
    new_course(root, fresh=True)
    source = graded_notebook(notebooks)
    (blank,) = release(root, {ROUND_NOTEBOOK: source})
    submit(root, "solutions", [root / "source" / ASSIGNMENT / ROUND_NOTEBOOK])
    submit(root, "blank", [blank])
    autograde(root)   # one nbgrader run grades both submissions
    name = Path(ROUND_NOTEBOOK).stem
    return {who: grades(root, who)[name] for who in ("solutions", "blank")}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m helpers.classroom student|round|copies [NOTEBOOK...]`` (default: every ``notebooks/NN_*.ipynb``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("student", "round", "copies"))
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("student"), help="folder for the student copies")
    parser.add_argument("--course", type=Path, default=COURSE, help="nbgrader's course directory")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
    if args.command == "copies":   # how close each solution is to the code a student sees, and visible answers
        bad = False
        for path in paths:
            nb = json.loads(Path(path).read_text())
            for line in near_copies(nb, threshold=0.0):
                print(f"{Path(path).name}: {line}")
            for i in visible_answers(nb):
                print(f"{Path(path).name}: cell {i} gives an answer but is not an nbgrader answer cell")
            bad |= bool(near_copies(nb) or visible_answers(nb))
        if bad:
            raise SystemExit(f"near-copies (at least {NEAR_COPY:.0%} of a solution in one visible cell) or visible "
                             "answers found")
    elif args.command == "student":
        for path in student_copies(paths, args.out, args.course):
            print(f"wrote {path}")
    else:
        for who, cells in autograde_round(paths, args.course).items():
            auto = [g for g in cells.values() if g["cell_type"] == "code"]
            print(f"{who}: {sum(g['auto_score'] or 0 for g in auto):g} of {sum(g['max_score'] for g in auto):g} "
                  f"autograded points; {sum(g['needs_manual_grade'] for g in cells.values())} answer(s) to grade by hand")


if __name__ == "__main__":
    main()
