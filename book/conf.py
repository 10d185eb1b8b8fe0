"""Sphinx + myst-nb configuration of the rendered book (``make book``).

The book is the notebooks of ``notebooks/`` executed in one profile (``FTLAB_PROFILE``, classroom by
default), a landing page (``index.md``) that includes the README's findings, and the pages of ``docs/``
(copied into ``book/docs`` at each build). ``book/notebooks`` is a link to ``../notebooks``, so every
notebook runs in its own folder, as it does in JupyterLab.

Execution goes through jupyter-cache: a notebook whose code is unchanged is not run again. The cache
only sees a notebook's code, so its folder is keyed by everything else that changes the outputs (the
profile, the data variables, the source of ``helpers/``); a new key starts a fresh cache, a fresh
reports folder and a full Sphinx rebuild, and old keys are removed.

Environment: ``FTLAB_BOOK_BUILD`` is the build folder (cache and reports go there; default
``book/_build/<profile>``); ``FTLAB_BOOK_NOTEBOOKS`` restricts the book to some notebooks (stems,
space-separated: the browser test builds only notebook 01); ``FTLAB_BOOK_POLYP=no`` says no polyp data set
was found (the landing page then leaves the polyp results out and says so).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from helpers.kernels import without_output_widget_mimicry

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PROFILE = os.environ.setdefault("FTLAB_PROFILE", "classroom")
BUILD = Path(os.environ.get("FTLAB_BOOK_BUILD", HERE / "_build" / PROFILE)).resolve()
ONLY = os.environ.get("FTLAB_BOOK_NOTEBOOKS", "").split()
OUTPUT_VARIABLES = ("FTLAB_PROFILE", "FTLAB_DATASET", "FTLAB_ARCH", "FTLAB_DATA_DIR", "FTLAB_POLYP_DIR")


def fingerprint() -> str:
    """A short hash of what changes a notebook's outputs besides its own code."""
    digest = hashlib.sha256()
    for name in OUTPUT_VARIABLES:
        digest.update(f"{name}={os.environ.get(name, '')}\n".encode())
    for path in sorted((ROOT / "helpers").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\n" + path.read_bytes())
    return digest.hexdigest()[:12]


def keyed_folder(parent: Path, key: str) -> Path:
    """``parent/key``, with every other key's folder under ``parent`` removed (stale outputs)."""
    if parent.is_dir():
        for old in parent.iterdir():
            if old.name != key:
                shutil.rmtree(old, ignore_errors=True)
    return parent / key


KEY = fingerprint()
os.environ["FTLAB_REPORTS_DIR"] = str(keyed_folder(BUILD / "reports", KEY))  # the kernels inherit it

project = "ftlab: full training or fine-tuning?"
author = "ftlab contributors"
copyright = "ftlab contributors (MIT licence)"
extensions = ["myst_nb"]
root_doc = "index"
notebooks = [f"notebooks/{stem}.ipynb" for stem in ONLY] or ["notebooks/[0-9]*.ipynb"]
include_patterns = ["index.md", *notebooks, "docs/*.md", "data/README.md"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# Execution: cached, in the notebook's own folder, errors stop the build.
nb_execution_mode = "cache"
# jupyter-cache executes through nbclient in this process: for the whole build its clients play no ipywidgets.Output
# front end, whose sends on the shell socket can leave a cell waiting for a reply already there (helpers/kernels.py)
_BUILD_STACK = contextlib.ExitStack()
_BUILD_STACK.enter_context(without_output_widget_mimicry())
nb_execution_cache_path = str(keyed_folder(BUILD / "cache", KEY))
nb_execution_in_temp = False
# Seconds per cell. The longest classroom cell, notebook 04's sweep, takes most of that notebook's 20 minutes on the
# 2-core machine (docs/notebook_times.json) and twice that with the machine busy: an hour leaves room for both.
nb_execution_timeout = 3600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
ftlab_fingerprint = KEY              # a new key re-reads every page (see setup)

# The polyp notebooks (05, 07) need a polyp data set: make book leaves them out without one
# (FTLAB_BOOK_POLYP=no) and the landing page then shows no polyp results (``{only} polyp`` blocks) and says why.
POLYP_STEMS = ("05_polyp_detection", "07_polyp_segmentation")
POLYP = os.environ.get("FTLAB_BOOK_POLYP", "yes") != "no" and (not ONLY or all(s in ONLY for s in POLYP_STEMS))
if POLYP:
    tags.add("polyp")  # noqa: F821 (Sphinx puts ``tags`` into this file's namespace)

# The docs pages (results, methods, teaching, ...) are book pages too: copied into book/docs at each build (a link
# would not do: MyST resolves a page's relative links from its real path, outside the book), and data/README.md
# with them. Without polyp data the polyp results page says why it is empty instead of showing a run's results.
shutil.rmtree(HERE / "docs", ignore_errors=True)
shutil.copytree(ROOT / "docs", HERE / "docs", ignore=shutil.ignore_patterns("reference", "*.json"))
(HERE / "data").mkdir(exist_ok=True)
shutil.copy(ROOT / "data" / "README.md", HERE / "data" / "README.md")
if not POLYP:
    (HERE / "docs" / "results_polyp.md").write_text(
        "# Results: polyp detection, segmentation, and finding 3 across applications\n\n"
        "Notebooks 05 and 07 were left out of this build because no polyp data set (CVC-ClinicDB or Kvasir-SEG) "
        "was found, so this page shows no results. `make data` fetches Kvasir-SEG; where to put either data set: "
        "[data/README.md](../data/README.md).\n")

myst_enable_extensions = ["dollarmath", "amsmath", "substitution"]
myst_substitutions = {"profile": PROFILE}
myst_heading_anchors = 3

html_theme = "sphinx_book_theme"
html_title = "ftlab"
html_theme_options = {"show_toc_level": 2}
html_last_updated_fmt = "%Y-%m-%d %H:%M UTC"


def setup(app):
    """Register the fingerprint as an 'env' value: when it changes, Sphinx reads every page again."""
    app.add_config_value("ftlab_fingerprint", "", "env")
