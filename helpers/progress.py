"""Progress bars: tqdm's bar (a widget in a notebook, text in a terminal) wherever a person watches the
run, and none where nobody does.

A notebook executed in batch (``make reproduce``, ``make book``) keeps each widget bar only as its
first text frame, so its saved HTML would show every bar stuck at 0%. Those targets set
``FTLAB_PROGRESS=off``, and every bar of the suite is made here, so the setting reaches them all.
"""
from __future__ import annotations

import os
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
