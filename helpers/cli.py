"""``ftlab``: one command line for everything done outside the notebooks.

    ftlab advise DATA [--arch NAME] [--budget quick|classroom|full]   the three questions on your own images
    ftlab data preflight [--profile P]   the MedMNIST files the notebooks read: found, MD5-checked or downloaded
    ftlab data find | fetch-kvasir | synthetic DEST | check FOLDER      polyp folders
    ftlab sweep plan | run | summary | tensorboard ...                  sweeps beyond a notebook
    ftlab applications [REPORTS]         finding 3 across classification, detection and segmentation
    ftlab student | round | copies [NOTEBOOK...]                        nbgrader: copies, autograding, checks
    ftlab reference BUILD OUT            executed notebooks as stamped HTML pages
    ftlab book [--profile P]             the notebooks executed as an HTML book

Each subcommand hands the rest of the command line to one module's ``main(argv)``, the same function its
``python -m`` form runs (``ftlab sweep run ...`` is ``python -m helpers.sweep run ...``, ``ftlab data find`` is
``python -m helpers.detection.data find``): the two forms are aliases, and every subcommand's help is that
module's argparse help, with ``ftlab ...`` in its usage line. A new subcommand is one more :class:`Command` in
:data:`COMMANDS` (or in a group such as ``data``).
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

PROG = "ftlab"
REPO = Path(__file__).resolve().parents[1]   # the checkout an editable install runs from (book/ lives there)


@dataclass(frozen=True)
class Command:
    """One subcommand: ``module``'s ``main(argv)`` runs it, with ``fixed`` put before the user's arguments
    (the module's own subcommand, e.g. ``student`` for :mod:`helpers.classroom`)."""

    module: str
    summary: str          # the one line ``ftlab --help`` shows
    fixed: tuple[str, ...] = ()
    entry: str = "main"
    prog: str = ""        # its parser's own ``prog`` (default ``python -m MODULE``)

    @property
    def alias(self) -> str:
        """The ``python -m`` form (its argparse ``prog``)."""
        return self.prog or f"python -m {self.module}"

    def run(self, name: str, argv: Sequence[str]) -> int:
        """Run it as ``name`` (``ftlab data find``) with the user's arguments ``argv``; the exit status."""
        main: Callable = getattr(importlib.import_module(self.module), self.entry)
        # the module's parser stands where its alias stood: before the subcommand when it takes one (``fixed``)
        shown = name.rsplit(" ", 1)[0] if self.fixed else name
        with _prog(self.alias, shown):
            try:
                code = main([*self.fixed, *argv])
            except SystemExit as stop:   # argparse's --help and errors, and modules that exit with a message
                code = stop.code
        if isinstance(code, str):        # SystemExit("message"): the message, exit status 1
            print(code, file=sys.stderr)
            return 1
        return int(code or 0)


DATA = {
    "preflight": Command("helpers.preflight", "find, MD5-check or fetch the notebooks' MedMNIST files"),
    "find": Command("helpers.detection.data", "the polyp folder notebooks 05 and 07 would use", ("find",)),
    "fetch-kvasir": Command("helpers.detection.data", "download, unzip and check Kvasir-SEG", ("fetch-kvasir",)),
    "synthetic": Command("helpers.detection.data", "write a synthetic polyp folder", ("synthetic",)),
    "check": Command("helpers.detection.data", "check a polyp folder's frames and masks", ("check",)),
}
"""``ftlab data``'s subcommands."""

COMMANDS: dict[str, Command | dict[str, Command]] = {
    "advise": Command("helpers.advise", "fine-tune or train from scratch, how deep, and with how much data: on your images"),
    "data": DATA,
    "sweep": Command("helpers.sweep", "plan, run, summarise a sweep; export to TensorBoard"),
    "applications": Command("helpers.applications", "finding 3 across the applications (notebook 07)"),
    "student": Command("helpers.classroom", "nbgrader's student copies of the notebooks", ("student",)),
    "round": Command("helpers.classroom", "an autograde round: teacher's answers and a blank", ("round",)),
    "copies": Command("helpers.classroom", "check that no visible cell gives a graded answer", ("copies",)),
    "reference": Command("helpers.reference", "a built book's notebooks as stamped HTML pages"),
    "book": Command("helpers.cli", "the notebooks executed in a profile, as an HTML book", entry="book",
                    prog="python -m helpers.cli book"),
}
"""Every subcommand: a :class:`Command`, or a group of them (``data``)."""

GROUPS = {"data": "MedMNIST files and polyp folders: find, fetch, check, synthesise"}
"""The one line of each group of :data:`COMMANDS`."""


@contextlib.contextmanager
def _prog(alias: str, shown: str) -> Iterator[None]:
    """Parsers made in this block say ``shown`` where their ``prog`` said ``alias`` (``python -m helpers.sweep
    run`` -> ``ftlab sweep run``); a parser with no ``prog`` of its own says ``shown`` too. argparse has no
    other hook for a caller to rename a parser another module builds."""
    init = argparse.ArgumentParser.__init__

    def renamed(self, *args, **kwargs) -> None:
        init(self, *args, **kwargs)
        given = args[0] if args else kwargs.get("prog")
        if given is None:
            self.prog = shown
        elif given.startswith(alias):
            self.prog = shown + given[len(alias):]

    argparse.ArgumentParser.__init__ = renamed
    try:
        yield
    finally:
        argparse.ArgumentParser.__init__ = init


def _parser(prog: str, commands: dict, description: str) -> argparse.ArgumentParser:
    """The help of ``ftlab`` (or of a group): each subcommand with its one line. Parsing is by hand
    (:func:`_dispatch`): a subcommand's arguments are its module's to parse."""
    width = max(len(name) for name in commands) + 2
    lines = [f"  {name:<{width}}{c.summary if isinstance(c, Command) else GROUPS[name]}" for name, c in commands.items()]
    return argparse.ArgumentParser(prog=prog, usage="%(prog)s [-h] COMMAND [ARGUMENTS ...]",
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   description=description + "\n\ncommands:\n" + "\n".join(lines),
                                   epilog=f"'{prog} COMMAND --help' shows a command's own arguments.")


def _dispatch(prog: str, commands: dict, description: str, argv: Sequence[str]) -> int:
    parser = _parser(prog, commands, description)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name, rest = argv[0], list(argv[1:])
    command = commands.get(name)
    if command is None:
        close = difflib.get_close_matches(name, list(commands), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        parser.print_usage(sys.stderr)
        print(f"{prog}: error: unknown command '{name}'.{hint} The commands are: {', '.join(commands)} "
              f"('{prog} --help' says what each does).", file=sys.stderr)
        return 2
    if isinstance(command, dict):
        return _dispatch(f"{prog} {name}", command, GROUPS[name] + ".", rest)
    return command.run(f"{prog} {name}", rest)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ftlab`` console script; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return _dispatch(PROG, COMMANDS, __doc__.split("\n\n")[0].replace("``", ""), argv)


# ----------------------------------------------------------------------------- ftlab book

def book(argv: Sequence[str] | None = None) -> int:
    """``ftlab book``: what ``make book`` does, without make: the data preflight, then Sphinx on ``book/`` with
    the profile's settings (notebooks 05 and 07 left out without a polyp data set)."""
    parser = argparse.ArgumentParser(prog="python -m helpers.cli book", description=book.__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default=os.environ.get("FTLAB_PROFILE", "classroom"),
                        help="fast, classroom or full (default: $FTLAB_PROFILE or classroom)")
    parser.add_argument("--build", type=Path, help="build folder (default: book/_build/PROFILE)")
    parser.add_argument("--dry-run", action="store_true", help="print the Sphinx command and its settings only")
    args = parser.parse_args(argv)
    if not (REPO / "book" / "conf.py").exists():
        print(f"error: no book/ sources beside {Path(__file__).parent} (the book builds from a git checkout "
              "installed with pip install -e).", file=sys.stderr)
        return 1
    build = (args.build or REPO / "book" / "_build" / args.profile).resolve()
    polyp = _have_polyp()
    stems = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9]*.ipynb"))
    left_out = () if polyp else ("05_polyp_detection", "07_polyp_segmentation")
    settings = {"FTLAB_PROGRESS": "off", "FTLAB_PROFILE": args.profile, "FTLAB_BOOK_BUILD": str(build),
                "FTLAB_BOOK_NOTEBOOKS": "" if polyp else " ".join(s for s in stems if s not in left_out),
                "FTLAB_BOOK_POLYP": "yes" if polyp else "no"}
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-d", str(build / "doctrees"), "book",
               str(build / "html")]
    if args.dry_run:
        print(" ".join(f"{k}={v!r}" for k, v in settings.items()), " ".join(command))
        return 0
    from . import preflight   # deferred: loads the data catalogue, which only a real build needs
    if preflight.main(["--profile", args.profile]) != 0:
        return 1
    done = subprocess.run(command, cwd=REPO, env={**os.environ, **settings})
    if done.returncode == 0:
        print(f"== the book ({args.profile} profile): {build / 'html' / 'index.html'}")
    return done.returncode


def _have_polyp() -> bool:
    """Whether ``ftlab data find`` finds a polyp data set (notebooks 05 and 07 then go into the book), as
    ``make book`` asks it."""
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        return DATA["find"].run(f"{PROG} data find", []) == 0


if __name__ == "__main__":
    sys.exit(main())
