"""Reference copies (``make reference``, helpers/reference.py): answers left out, a stamp, a page a student can open."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from helpers import classroom as CL
from helpers import reference

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
PAGES = sorted((ROOT / "docs" / "reference").glob("[0-9]*.html"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_reference_copy_leaves_every_answer_out_and_keeps_the_rest(path):
    nb = json.loads(path.read_text())
    out = reference.without_answers(nb)
    text = json.dumps(out)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and CL.ANSWER_PREFIX not in text
    answers = [i for i, c in enumerate(nb["cells"]) if CL.nbgrader_meta(c).get("solution")]
    assert answers, "every notebook has graded answers"
    for i, (before, after) in enumerate(zip(nb["cells"], out["cells"])):
        hidden = "### BEGIN HIDDEN TESTS" in "".join(before["source"])
        if i not in answers and not hidden:
            assert before == after, f"cell {i} changed"
    code_answers = [out["cells"][i] for i in answers if out["cells"][i]["cell_type"] == "code"]
    assert all(reference.LEFT_OUT_CODE in c["source"] and c["source"].lstrip().startswith(("def", "from", "import"))
               for c in code_answers), "the function's signature stays, its body is left out"


def executed_notebook(tmp_path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 99 · A tiny notebook"),
                nbformat.v4.new_code_cell("print(1 + 1)", outputs=[nbformat.v4.new_output("stream", text="2\n")]),
                nbformat.v4.new_markdown_cell("**Answer.** Two.", metadata={"nbgrader": {
                    "grade": True, "solution": True, "locked": False, "grade_id": "x", "points": 0, "schema_version": 3}})]
    path = tmp_path / "jupyter_execute" / "notebooks" / "99_tiny.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_export_writes_a_stamped_page_and_an_index_with_execution_times(tmp_path):
    from jupyter_cache import get_cache

    path = executed_notebook(tmp_path)
    get_cache(tmp_path / "cache" / "abc123").cache_notebook_file(str(path), data={"execution_seconds": 754.0},
                                                               check_validity=False)
    seconds = reference.execution_seconds(tmp_path)
    assert seconds == {"99_tiny": 754.0}
    (page,) = reference.export([path], tmp_path / "out", "classroom", ROOT, seconds)
    html = page.read_text()
    assert "Reference copy of" in html and "classroom" in html and "13 min" in html and "cores" in html
    assert "Two." not in html and "left out of the reference copy" in html
    assert ">2\n<" in html or "2\n" in html, "the cell's output is on the page"
    index = (tmp_path / "out" / "index.md").read_text()
    assert "[99_tiny.html](99_tiny.html)" in index and "13 min" in index


def test_reference_without_a_built_book_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit, match="make book"):
        reference.main([str(tmp_path), str(tmp_path / "out")])


@pytest.mark.skipif(not PAGES, reason="no reference copies in docs/reference yet (make reference)")
def test_the_shipped_reference_copies_are_stamped_small_and_answer_free():
    assert {p.stem for p in PAGES} >= {p.stem for p in NOTEBOOKS if not p.stem.startswith(("05", "07"))}
    for page in PAGES:
        html = page.read_text()
        assert page.stat().st_size <= reference.MAX_BYTES, f"{page.name}: over {reference.MAX_BYTES / 1e6:.0f} MB"
        assert "Reference copy of" in html and "at commit" in html, f"{page.name}: no stamp"
        assert "BEGIN SOLUTION" not in html and "HIDDEN TESTS" not in html, f"{page.name}: an answer is visible"


def test_a_reference_copy_names_no_folder_of_this_machine():
    def at(*parts):   # built here, so that this file holds no machine path itself (test_project checks)
        return "/" + "/".join(parts)
    build, data, checkout = at("work", "b", "book", "_build", "classroom"), at("work", "shared", "data"), at("home", "me", "ftlab")
    text = (f"source: {data}/x.npz | PosixPath('{build}/reports/k/01.png') {checkout}/notebooks/04.ipynb "
            f"{at('tmp', 'abc', 'def.txt')}<br>")
    out = reference.without_machine_paths(text, {build: "book/_build/<profile>", data: "$FTLAB_DATA_DIR",
                                                 checkout: "<checkout>"})
    assert out == ("source: $FTLAB_DATA_DIR/x.npz | PosixPath('book/_build/<profile>/reports/k/01.png') "
                   "<checkout>/notebooks/04.ipynb .../def.txt<br>")
    assert not reference.MACHINE_PATH.search(out)
