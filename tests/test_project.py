"""Project hygiene: dependency lists agree, notebooks are clean and follow the template."""
from __future__ import annotations

import json
import re
import subprocess
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
CONDA_NAMES = {"pytorch": "torch"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for group in meta["optional-dependencies"].values() for r in group]
    return {_name(r) for r in meta["dependencies"] + extras
            if "python_version" not in r}   # back-ports for old Pythons are not conda packages


def environment_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        item = line.split("#")[0].strip()
        if not item.startswith("- ") or item.endswith(":"):
            continue
        item = item[2:].strip()
        if item.startswith("-e") or item in ("pip",) or item.startswith("python="):
            continue
        names.add(CONDA_NAMES.get(_name(item), _name(item)))
    return names


def test_environment_yml_lists_the_same_packages_as_pyproject():
    """Every runtime package and every extra's (pyproject.toml) is in environment.yml, and nothing else."""
    assert pyproject_packages() == environment_packages()


def test_the_runtime_set_holds_no_jupyter_front_end_kernel_or_runner():
    """A hosted notebook service keeps its own kernel: the runtime set is what a notebook imports (tests/test_install.py
    installs it next to an older ipykernel); JupyterLab, the kernel and the notebook runners are the lab extra."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {_name(r) for r in meta["dependencies"]}
    tools = {"jupyterlab", "ipykernel", "papermill", "nbconvert", "nbgrader", "sphinx", "pytest"}
    assert not runtime & tools
    assert {"jupyterlab", "ipykernel", "papermill", "nbconvert"} <= {_name(r) for r in meta["optional-dependencies"]["lab"]}


def test_torch_floor_is_the_one_the_code_needs():
    """torch.amp.GradScaler (helpers/train.py) exists from torch 2.3; torchvision 0.18 is 2.3's pair."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {_name(r): r.split(">=")[1] for r in meta["dependencies"] if ">=" in r}
    assert (floors["torch"], floors["torchvision"]) == ("2.3", "0.18")
    assert "from torch.amp import GradScaler" in (ROOT / "helpers" / "train.py").read_text()
    conda = (ROOT / "environment.yml").read_text()
    assert "pytorch>=2.3 " in conda and "torchvision>=0.18 " in conda


def _extras_installed(text: str) -> set[str]:
    """The extras named in the first ``-e .[...]`` (or ``-e '.[...]'``) of a file's text."""
    found = re.search(r"-e '?\.\[([^\]]*)\]", text)
    return set(found.group(1).split(",")) if found else set()


def test_environment_yml_installs_the_project_with_its_extras():
    pip_lines = [l.strip() for l in (ROOT / "environment.yml").read_text().splitlines() if "-e ." in l]
    extras = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    assert {"test", "cluster", "tensorboard"} <= extras
    assert pip_lines and _extras_installed(pip_lines[-1]) == extras, "environment.yml installs every extra"
    assert _extras_installed((ROOT / "Makefile").read_text()) == extras, "make install installs every extra"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_follows_the_template(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    source = ["".join(c["source"]) for c in cells]
    assert cells[0]["cell_type"] == "markdown" and source[0].startswith("# "), "starts with a title"
    assert "What you will learn" in source[0]
    tagged = [s for c, s in zip(cells, source) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    names = re.findall(r"^([A-Za-z_]\w*)\s*=", tagged[0], flags=re.M)
    assert "DATASET" in names and "SEED" in names
    assert all(n.isupper() for n in names if n != "P"), f"parameters are UPPER_CASE: {names}"
    assert any("environment_report()" in s for s in source), "prints the environment report"
    assert "What to try next" in source[-1]
    # two exceptions, both tagged: graded exercises (the student writes a function, helpers.classroom) and the
    # mechanism written out once in the open (tag "mechanism"), which the next cells check against the helper
    exempt = {"graded", "mechanism"}
    code = "\n".join(s for c, s in zip(cells, source)
                     if c["cell_type"] == "code" and not exempt & set(c.get("metadata", {}).get("tags", [])))
    assert "sys.path" not in code and not re.search(r"^\s*def ", code, flags=re.M), "logic lives in helpers/"


def test_no_machine_paths_in_the_repository():
    """Nothing tracked may name a folder of the machine it was written on (tests find data by fixture)."""
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    pattern = re.compile(r"(?<![\w.])/(work|root|home|Users|tmp/pytest-of)/")
    offenders = []
    for name in tracked:
        path = ROOT / name
        if path.suffix in {".png", ".jpg", ".npz", ".zip"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{name}: {line.strip()[:80]}" for line in text.splitlines() if pattern.search(line)]
    assert not offenders, "machine paths in the repository:\n" + "\n".join(offenders)


def test_notebook_times_come_from_one_measurement():
    """Each notebook's header line and the README's table of times are generated from docs/notebook_times.json."""
    from benchmarks import notebook_times as NT
    times = NT.load()
    assert "fast" in times["profiles"], "the fast profile's times are measured (python -m benchmarks.notebook_times measure)"
    for path in NT.NOTEBOOKS:
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert NT.header_line(times, path.stem) in first.split("\n"), f"{path.name}: run python -m benchmarks.notebook_times write"
        assert all(path.stem in p["seconds"] for p in times["profiles"].values()), f"{path.stem} was not measured"
    assert NT.readme_table(times) in (ROOT / "README.md").read_text(), "README: run python -m benchmarks.notebook_times write"
