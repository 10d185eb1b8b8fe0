"""Student copies of the notebooks: ``make student`` (``python -m helpers.handout notebooks student``).

The notebooks hold exercises and their answers side by side: an exercise is a markdown cell tagged
``exercise`` ("predict first" before a result cell, or a small code task that calls the helpers); its
answer follows in one or more cells tagged ``solution`` (markdown or code). A student copy is the same
notebook without the ``solution`` cells and without outputs; every other cell, the exercises included,
stays and runs. Cells after a solution must never need a name that only a solution defines: ``make
test`` runs the student copies under nbval to prove it.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path
from typing import Sequence

EXERCISE, SOLUTION = "exercise", "solution"
MIN_EXERCISES = 2
STUDENT_NOTE = ("*Student copy: the answers to the exercises are left out. Write yours in new cells below "
                "each exercise.*")


def tags(cell: dict) -> list[str]:
    """A cell's tags (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_problems(nb: dict, name: str = "notebook") -> list[str]:
    """What is wrong with a notebook's exercises (empty when nothing is): too few exercises, an exercise
    that is not markdown, an exercise with no solution before the next exercise, a solution before any
    exercise. A solution may come a few cells later, e.g. after the result a "predict first" asks about."""
    problems, cells = [], nb["cells"]
    exercises = [i for i, c in enumerate(cells) if EXERCISE in tags(c)]
    solutions = [i for i, c in enumerate(cells) if SOLUTION in tags(c)]
    if len(exercises) < MIN_EXERCISES:
        problems.append(f"{name}: {len(exercises)} exercise(s); every notebook needs at least {MIN_EXERCISES}.")
    for i in exercises:
        if cells[i]["cell_type"] != "markdown":
            problems.append(f"{name}: cell {i} is tagged 'exercise' but is not markdown.")
        if i in solutions:
            problems.append(f"{name}: cell {i} is tagged both 'exercise' and 'solution'.")
    for i, nxt in zip(exercises, exercises[1:] + [len(cells)]):
        if not any(i < j < nxt for j in solutions):
            problems.append(f"{name}: the exercise in cell {i} has no solution cell before the next exercise.")
    for j in solutions:
        if not exercises or j < exercises[0]:
            problems.append(f"{name}: cell {j} is a solution that comes before any exercise.")
    return problems


def student_copy(nb: dict) -> dict:
    """The notebook without ``solution`` cells and without outputs, with a note under the title."""
    out = copy.deepcopy(nb)
    out["cells"] = [c for c in out["cells"] if SOLUTION not in tags(c)]
    for cell in out["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    note = {"cell_type": "markdown", "metadata": {"tags": ["student-note"]}, "source": STUDENT_NOTE}
    if any("id" in c for c in out["cells"]):   # nbformat 4.5: every cell has a unique id
        note["id"] = "student-note"
    out["cells"].insert(1, note)
    return out


def _write_student_copies(notebooks: Sequence[Path], out_dir: Path) -> list[Path]:
    """Check every notebook's exercises, then write each student copy into ``out_dir``; returns the paths.

    Raises ``ValueError`` listing every problem found (nothing is written then).
    """
    loaded = {Path(p): json.loads(Path(p).read_text()) for p in notebooks}
    problems = [msg for path, nb in loaded.items() for msg in exercise_problems(nb, path.name)]
    if problems:
        raise ValueError("Exercise cells need fixing before student copies are made:\n  " + "\n  ".join(problems))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in loaded.items():
        target = out_dir / path.name
        target.write_text(json.dumps(student_copy(nb), indent=1, ensure_ascii=False) + "\n")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m helpers.handout SRC_DIR OUT_DIR [NAMES...]``: student copies of SRC_DIR's numbered notebooks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", type=Path, help="folder of the notebooks with solutions (notebooks/)")
    parser.add_argument("out", type=Path, help="folder for the student copies (student/)")
    parser.add_argument("names", nargs="*", help="notebook file names (default: every NN_*.ipynb)")
    args = parser.parse_args(argv)
    paths = [args.src / n for n in args.names] if args.names else sorted(args.src.glob("[0-9]*.ipynb"))
    for path in _write_student_copies(paths, args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
