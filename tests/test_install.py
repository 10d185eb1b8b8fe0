"""The runtime install on a hosted notebook service: torch and the service's kernel are kept.

A hosted service (Colab, Kaggle, a JupyterHub image) already has torch, torchvision and a kernel, often an older
ipykernel than the newest. The README tells its users to run ``pip install ./ftlab`` in a cell. This test builds
such an environment and runs exactly that:

1. A fresh virtual environment (no system site-packages) sees torch and torchvision through a ``.pth`` file that
   points at a folder holding only them and their dependency closure (numpy, pillow, sympy, the CUDA libraries of
   this build...), linked from the test's own environment. That is how a service's torch looks to pip: installed,
   on ``sys.path``, with its requirements satisfied, put there by someone else. pip cannot remove anything from
   that folder, so if it wanted to replace torch it would install a second copy into the environment, which the
   checks below see.
2. ``pip install ipykernel==6.17.1``: an older kernel than the ``lab`` extra would pick.
3. ``pip install ./ftlab`` (a copy of pyproject.toml, README.md and helpers/): the runtime set alone.

Then: torch, torchvision and ipykernel have the same versions and torch is still the one in the service's folder;
no JupyterLab, papermill or nbconvert arrived; ``pip check`` finds nothing broken; and ``import helpers`` plus
the imports of notebook 01's first code cell run in that environment, from outside the checkout. It needs a package
index (it skips, saying so, when the older ipykernel cannot be installed) and takes about 1.5 minutes here.
"""
from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
OLD_IPYKERNEL = "6.17.1"
HOSTED = ("torch", "torchvision")
pytestmark = pytest.mark.slow


def dependency_closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The installed distributions ``names`` and everything they require (extras and markers followed)."""
    seen: dict[tuple[str, tuple[str, ...]], metadata.Distribution] = {}

    def walk(name: str, extras: tuple[str, ...] = ()) -> None:
        key = (canonicalize_name(name), tuple(sorted(extras)))
        if key in seen:
            return
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return   # a requirement for another platform
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras)):
                walk(req.name, tuple(req.extras))

    for name in names:
        walk(name)
    return list({canonicalize_name(d.metadata["Name"]): d for d in seen.values()}.values())


def link_distributions(dists: list[metadata.Distribution], folder: Path) -> None:
    """A folder that holds ``dists`` only (their packages and .dist-info), as links into this environment."""
    folder.mkdir()
    for dist in dists:
        base = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or []} - {"..", "bin"}:
            if (base / top).exists() and not (folder / top).exists():
                (folder / top).symlink_to(base / top)


def run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", MPLBACKEND="Agg")
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def versions(python: Path, cwd: Path) -> dict[str, list[list[str]]]:
    """{distribution: [[version, location], ...]} in the environment of ``python`` (a second copy of a
    distribution, installed next to the service's, shows as a second entry)."""
    code = ("import importlib.metadata as m, json\n"
            "out = {}\n"
            "for d in m.distributions():\n"
            "    out.setdefault(d.metadata['Name'].lower().replace('_', '-'), []).append("
            "[d.version, str(d.locate_file(''))])\n"
            "print(json.dumps(out))")
    done = run([str(python), "-c", code], cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def first_cell_imports() -> str:
    """The import lines of notebook 01's first code cell."""
    nb = json.loads(next((ROOT / "notebooks").glob("01_*.ipynb")).read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    lines = [line for line in source.splitlines() if re.match(r"(import|from) \w", line)]
    assert any("helpers" in line for line in lines), "notebook 01's first cell imports the helpers"
    return "\n".join(lines)


def test_runtime_install_keeps_a_hosted_services_torch_and_kernel(tmp_path):
    started = time.perf_counter()
    link_distributions(dependency_closure(HOSTED), tmp_path / "service")
    venv = tmp_path / "venv"
    done = run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    assert done.returncode == 0, done.stderr
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path)
    (Path(purelib.stdout.strip()) / "hosted_service.pth").write_text(str(tmp_path / "service") + "\n")

    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile"]
    kernel = run(pip + [f"ipykernel=={OLD_IPYKERNEL}"], tmp_path)
    if kernel.returncode != 0:
        pytest.skip(f"ipykernel {OLD_IPYKERNEL} could not be installed (no package index?): {kernel.stderr[-500:]}")
    before = versions(python, tmp_path)
    assert [version for version, _ in before["ipykernel"]] == [OLD_IPYKERNEL]
    assert [where for _, where in before["torch"]] == [str(tmp_path / "service")]

    source = tmp_path / "ftlab"   # what `git clone` gives a service: the package's files (no build outputs)
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "helpers", source / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    install = run(pip + ["./ftlab"], tmp_path)
    assert install.returncode == 0, install.stderr[-3000:]

    after = versions(python, tmp_path)
    for name in (*HOSTED, "ipykernel"):
        assert after[name] == before[name], f"{name} was replaced: {before[name]} -> {after[name]}"
    assert "ftlab" in after
    assert not {"jupyterlab", "papermill", "nbconvert", "nbgrader", "sphinx", "pytest"} & set(after), \
        "the runtime set pulled in a tool of an extra"
    check = run([str(python), "-m", "pip", "check"], tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr

    code = ("import helpers, torch, ipykernel\n" + first_cell_imports() + "\n"
            "print(helpers.__file__, torch.__version__, ipykernel.__version__, sep='\\n')")
    imported = run([str(python), "-c", code], tmp_path)   # from outside the checkout
    assert imported.returncode == 0, imported.stderr[-3000:]
    where, torch_version, kernel_version = imported.stdout.split()[-3:]
    assert Path(where).is_relative_to(venv), "helpers came from the installed package"
    assert (torch_version, kernel_version) == (torch.__version__, OLD_IPYKERNEL)   # the service's torch
    print(f"hosted-service install checked in {time.perf_counter() - started:.0f} s")
