"""``ftlab``, the one command line: its help lists every subcommand, each subcommand's help works and names
``ftlab ...`` in its usage, an unknown subcommand is refused clearly, and the ``python -m`` forms stay aliases."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli

REPO = Path(__file__).resolve().parents[1]
TOP = ("advise", "data", "sweep", "applications", "student", "round", "copies", "reference", "book")
EVERY = [(name,) for name in TOP if name != "data"] + [("data", sub) for sub in cli.DATA] + [
    ("sweep", sub) for sub in ("plan", "run", "summary", "tensorboard")]


def ftlab_script() -> str:
    """The installed console script (pip install -e . registers it beside the interpreter)."""
    script = Path(sys.executable).parent / "ftlab"
    found = str(script) if script.exists() else shutil.which("ftlab")
    if not found:
        pytest.fail("the ftlab console script is not installed: pip install -e . --no-deps -c constraints.txt")
    return found


def test_installed_console_script_lists_every_subcommand():
    out = subprocess.run([ftlab_script(), "--help"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: ftlab")
    listed = {line.split()[0] for line in out.stdout.split("commands:\n", 1)[1].split("\n\n")[0].splitlines()}
    assert listed == set(TOP)
    for line in out.stdout.splitlines():   # one line each: a name then its summary
        if line.strip().split(" ")[0] in TOP:
            assert len(line.split()) > 2, line


def test_help_in_process_matches_the_table(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    for name, command in cli.COMMANDS.items():
        summary = command.summary if isinstance(command, cli.Command) else cli.GROUPS[name]
        assert f"  {name}" in text and summary in text


@pytest.mark.parametrize("words", EVERY, ids=" ".join)
def test_every_subcommands_help_exits_0_and_names_ftlab(words, capsys):
    assert cli.main([*words, "--help"]) == 0
    out = capsys.readouterr().out
    usage = out.split("\n\n")[0]
    assert usage.startswith("usage: ftlab"), usage
    assert "python -m" not in usage
    if words[0] in ("data", "sweep", "book", "applications", "reference"):   # their own parsers' names
        assert usage.startswith(f"usage: ftlab {' '.join(words)}"), usage


def test_data_group_lists_its_commands(capsys):
    assert cli.main(["data", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in cli.DATA)


@pytest.mark.parametrize("argv", [["swep"], ["data", "fetch"], ["no-such-command"]])
def test_unknown_subcommand_is_refused_clearly(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"unknown command '{argv[-1]}'" in err and "--help" in err
    if argv == ["swep"]:
        assert "Did you mean 'sweep'?" in err


def test_no_command_prints_the_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "commands:" in capsys.readouterr().out


def test_subcommand_errors_and_exit_codes_pass_through(tmp_path, capsys):
    assert cli.main(["sweep", "plan"]) == 2   # --store missing: argparse's error, as ftlab sweep
    assert "usage: ftlab sweep plan" in capsys.readouterr().err
    assert cli.main(["data", "check", str(tmp_path / "nothing")]) == 1
    assert "error:" in capsys.readouterr().err


def test_argparse_is_left_as_it_was():
    """The usage renaming lasts only while a subcommand runs."""
    import argparse
    before = argparse.ArgumentParser.__init__
    cli.main(["data", "find", "--help"])
    assert argparse.ArgumentParser.__init__ is before
    assert argparse.ArgumentParser(prog="x").prog == "x"


def test_book_dry_run_says_what_it_would_build(tmp_path, capsys):
    assert cli.main(["book", "--profile", "fast", "--build", str(tmp_path / "b"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "FTLAB_PROFILE='fast'" in out and "-m sphinx -b html" in out and str(tmp_path / "b" / "html") in out


def test_python_m_forms_stay_aliases():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for module, words in (("helpers.sweep", ["tensorboard", "--help"]), ("helpers.detection.data", ["find", "--help"]),
                          ("helpers.cli", ["--help"])):
        out = subprocess.run([sys.executable, "-m", module, *words], capture_output=True, text=True, timeout=120,
                             cwd=REPO, env=env)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("usage: ")
    sweep = subprocess.run([str(Path(ftlab_script()).with_name("ftlab-sweep")), "--help"], capture_output=True, text=True,
                           timeout=120)
    assert sweep.returncode == 0 and "tensorboard" in sweep.stdout
