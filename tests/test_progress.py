"""helpers.progress: one switch turns every progress bar of the suite off (for batch-executed reports)."""
from __future__ import annotations

import io

import pytest

from helpers import progress, runner, train, tuning


@pytest.mark.parametrize("value, on", [("off", False), ("0", False), ("No", False), ("on", True), ("", True)])
def test_the_switch(monkeypatch, value, on):
    monkeypatch.setenv("FTLAB_PROGRESS", value)
    assert progress.enabled() is on
    bar = progress.tqdm(range(3), file=io.StringIO())
    assert bar.disable is (not on)
    bar.close()


def test_the_suites_bars_go_through_it():
    # every module that draws a bar uses the switch, not tqdm directly
    assert runner.tqdm is train.tqdm is tuning.tqdm is progress.tqdm


def test_a_countdown_says_the_count_first_and_an_estimate_after_the_first(capsys):
    from helpers.progress import Countdown
    countdown = Countdown(3, "BatchNorm modes x seeds", steps=120)
    assert capsys.readouterr().out == "BatchNorm modes x seeds: 3 trainings of 120 SGD steps\n"
    countdown.tick()
    out = capsys.readouterr().out
    assert out.startswith("  the first training took ") and "for the other 2 (an estimate from one)" in out
    countdown.tick()
    countdown.tick()
    assert capsys.readouterr().out == "", "one estimate, after the first only"
    Countdown(1, "one run", quiet=True).tick()
    assert capsys.readouterr().out == ""
