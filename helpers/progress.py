"""Progress bars: tqdm's bar (a widget in a notebook, text in a terminal) wherever a person watches the
run, and none where nobody does.

A notebook executed in batch (``make reproduce``, ``make book``) keeps each widget bar only as its
first text frame, so its saved HTML would show every bar stuck at 0%. Those targets set
``FTLAB_PROGRESS=off``, and every bar of the suite is made here, so the setting reaches them all.
"""
from __future__ import annotations

import os
import time
from typing import Any

from tqdm.auto import tqdm as _tqdm

OFF = ("0", "off", "false", "no")


def enabled() -> bool:
    """False when ``FTLAB_PROGRESS`` is off (``0``, ``off``, ``false`` or ``no``)."""
    return os.environ.get("FTLAB_PROGRESS", "on").strip().lower() not in OFF


def tqdm(*args: Any, **kwargs: Any) -> _tqdm:
    """``tqdm.auto.tqdm`` with the same arguments, disabled when :func:`enabled` is False."""
    if not enabled():
        kwargs["disable"] = True
    return _tqdm(*args, **kwargs)


def about(seconds: float) -> str:
    """A time estimate as a person reads it: ``95 s``, or ``4 min`` from two minutes on."""
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


class Countdown:
    """What a heavy loop says before and during its work: how many trainings it makes, and, after the first,
    about how long the rest will take on this machine (an estimate from one; it says so).

    ``countdown = Countdown(9, "BatchNorm modes x seeds", steps=120)`` prints the count at once; call
    ``countdown.tick()`` after each training. ``quiet`` prints nothing."""

    def __init__(self, total: int, what: str, steps: int | None = None, unit: str = "training",
                 quiet: bool = False):
        self.total, self.unit, self.quiet, self.done = int(total), unit, quiet, 0
        self.started = time.perf_counter()
        if not quiet:
            each = f" of {steps} SGD steps" if steps else ""
            print(f"{what}: {self.total} {unit}{'s' if self.total != 1 else ''}{each}", flush=True)

    def tick(self) -> None:
        self.done += 1
        if self.quiet or self.done != 1 or self.total < 2:
            return
        first = time.perf_counter() - self.started
        rest = about(first * (self.total - 1))
        print(f"  the first {self.unit} took {first:.1f} s on this machine: about {rest} for the other "
              f"{self.total - 1} (an estimate from one)", flush=True)
