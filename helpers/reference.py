"""Reference copies: the executed notebooks as HTML pages a student opens without building anything.

``make reference`` builds the book (``make book``, classroom profile by default), then exports each notebook
the book executed (``book/_build/<profile>/jupyter_execute/notebooks/*.ipynb``) to ``docs/reference/NN.html``
with this module::

    python -m helpers.reference BOOK_BUILD OUT_DIR [--profile P]

Each page starts with a stamp: the commit the notebooks ran at (``+ local changes`` when the working tree
differed from it), the date, the profile, the machine and how long the notebook took to execute (from the
book's execution cache). The graded answers are left out, as in the student
copies: an answer cell's solution region becomes a one-line note and a manually graded answer becomes
"answer left out", so a reference copy can be handed to students; the outputs (what each cell printed, the
figures) are the teacher's run. ``OUT_DIR/index.md`` lists the pages with their stamps.
"""
from __future__ import annotations

import argparse
import copy
import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Sequence

from helpers import classroom as CL
from helpers.progress import about as duration

LEFT_OUT_CODE = "    # (the answer is left out of the reference copy: write your own)"
LEFT_OUT_TEXT = "*The answer is left out of the reference copy: write your own, then compare with your teacher.*"
MAX_BYTES = 5_000_000   # a page a student downloads: a few MB at most (tests/test_project.py)


def without_answers(nb: dict) -> dict:
    """A copy of ``nb`` with every graded answer left out (solution regions and manually graded answers)."""
    out = copy.deepcopy(nb)
    for cell in out["cells"]:
        meta = CL.nbgrader_meta(cell)
        if not meta.get("solution"):
            continue
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            cell["source"] = LEFT_OUT_TEXT
            continue
        kept, inside = [], False
        for line in source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
                kept.append(LEFT_OUT_CODE)
            elif "### END SOLUTION" in line:
                inside = False
            elif not inside:
                kept.append(line)
        cell["source"] = "\n".join(kept)
    for cell in out["cells"]:   # hidden tests are the grader's, not the student's
        if cell["cell_type"] == "code" and "### BEGIN HIDDEN TESTS" in "".join(cell["source"]):
            cell["source"] = "\n".join(text for _, text in CL.visible_code({"cells": [cell]}))
    return out


def commit_stamp(root: Path) -> str:
    """``abc1234 (2026-12-07)``, with ``+ local changes`` when notebooks/ or helpers/ differ from that commit."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True).stdout.strip()
    head = git("log", "-1", "--format=%h (%cs)") or "no git commit"
    dirty = git("status", "--porcelain", "--", "notebooks", "helpers")
    return head + (" + local changes" if dirty else "")


def machine() -> str:
    """The machine in words: cores, processor, GPU if torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        import torch   # slow to import, and only to name a GPU
        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    return f"{os.cpu_count()} cores, {cpu}{gpu}"


def execution_seconds(build: Path) -> dict[str, float]:
    """Notebook stem -> seconds its last execution took, from the book's execution cache (jupyter-cache keeps
    them: a notebook served from the cache keeps the time of the run that filled it)."""
    from jupyter_cache import get_cache   # the book's tools (the docs extra), not a notebook's

    times: dict[str, float] = {}
    for folder in sorted((build / "cache").glob("*")):
        for record in get_cache(folder).list_cache_records():
            seconds = (record.data or {}).get("execution_seconds")
            if seconds is not None:
                times[Path(record.uri).stem] = float(seconds)
    return times


MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work|root|home|Users|tmp)/[^\s'\"<>]*?(?=[\w.-]*(?:[\s'\"<>]|$))")


def without_machine_paths(text: str, known: dict[str, str]) -> str:
    """``text`` with this machine's folders replaced: each ``known`` folder by its name (the build folder, the
    checkout, the data folders), any other absolute path under /work, /root, /home, /Users or /tmp by ``.../``
    plus its last part. A reference copy is read on other machines, and says nothing about this one's disks."""
    for folder, name in sorted(known.items(), key=lambda kv: -len(kv[0])):
        if folder and folder != "/":
            text = text.replace(folder.rstrip("/"), name)
    return MACHINE_PATH.sub(".../", text)


def known_folders(build: Path, root: Path) -> dict[str, str]:
    """The folders a build's outputs name, and what a reader sees instead."""
    known = {str(build.resolve()): "book/_build/<profile>", str(root.resolve()): "<checkout>",
             str(Path.home()): "~"}
    for var in ("FTLAB_DATA_DIR", "FTLAB_POLYP_DIR", "FTLAB_REPORTS_DIR"):
        if os.environ.get(var):
            known[str(Path(os.environ[var]).resolve())] = f"${var}"
    return known


def stamp_cell(name: str, stamp: str, profile: str, when: str, where: str, seconds: float | None) -> dict:
    took = f" It took {duration(seconds)} to execute." if seconds else ""
    return {"cell_type": "markdown", "id": "reference-stamp", "metadata": {},
            "source": f"> **Reference copy of `{name}`**, executed in the **{profile}** profile at commit {stamp}, "
                      f"{when}, on {where}.{took} Your numbers will differ in the last digits (training is "
                      "stochastic and machines differ); compare the shapes of the curves and the verdicts. "
                      "The graded answers are left out."}


def export(executed: Sequence[Path], out_dir: Path, profile: str, root: Path,
           seconds: dict[str, float] | None = None, known: dict[str, str] | None = None) -> list[Path]:
    """Each executed notebook as ``out_dir/<stem>.html`` (answers left out, stamp first) and an index page."""
    import nbformat                      # the book's tools (the docs extra), not a notebook's
    from nbconvert import HTMLExporter   # likewise

    out_dir.mkdir(parents=True, exist_ok=True)
    stamp, when, where = commit_stamp(root), dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"), machine()
    seconds = seconds or {}
    exporter = HTMLExporter()
    written = []
    for path in sorted(executed):
        nb = without_answers(nbformat.read(path, as_version=4))
        nb["cells"].insert(0, stamp_cell(path.name, stamp, profile, when, where, seconds.get(path.stem)))
        body, _ = exporter.from_notebook_node(nbformat.from_dict(nb))
        body = without_machine_paths(body, known or {})
        target = out_dir / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        size = target.stat().st_size
        if size > MAX_BYTES:
            raise SystemExit(f"{target} is {size / 1e6:.1f} MB, over {MAX_BYTES / 1e6:.0f} MB: save smaller figures")
        written.append(target)
    lines = ["# Reference copies of the notebooks", "",
             f"Executed in the **{profile}** profile at commit {stamp}, {when}, on {where}"
             + (f"; executing them took {duration(sum(seconds.values()))} in all." if seconds else ".")
             + " Open a page in any browser; the graded answers are left out. Regenerate with `make reference`.", "",
             "| notebook | executed in | page |", "|---|---|---|"]
    lines += [f"| {p.stem} | {duration(seconds[p.stem]) if p.stem in seconds else '?'} | [{p.name}]({p.name}) "
              f"({p.stat().st_size / 1e6:.1f} MB) |" for p in written]
    (out_dir / "index.md").write_text("\n".join(lines) + "\n")
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("build", type=Path, help="the book's build folder, e.g. book/_build/classroom")
    parser.add_argument("out", type=Path, help="where the pages go, e.g. docs/reference")
    parser.add_argument("--profile", default=os.environ.get("FTLAB_PROFILE", "classroom"))
    args = parser.parse_args(argv)
    executed = sorted((args.build / "jupyter_execute" / "notebooks").glob("[0-9]*.ipynb"))
    if not executed:
        raise SystemExit(f"No executed notebooks under {args.build / 'jupyter_execute' / 'notebooks'}: "
                         "run make book first (make reference does).")
    for path in export(executed, args.out, args.profile, Path.cwd(), execution_seconds(args.build),
                       known_folders(args.build, Path.cwd())):
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
