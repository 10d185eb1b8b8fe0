"""Checks for the graded exercises: ``with grading.check("Exercise 4"):`` around an exercise's tests.

The graded exercises follow nbgrader's conventions (see :mod:`helpers.classroom`): the student writes the
body of a function in an answer cell (nbgrader's student copy leaves ``raise NotImplementedError()`` there),
and a read-only test cell compares the function's output with the helpers' on small arrays. nbgrader's
autograder gives a test cell full marks when it runs without an error and without output on stderr, and
zero otherwise. :func:`check` uses that rule so that a blank student copy still runs to the end:

- answer not written yet (``NotImplementedError``): prints "not done" on stderr and does not raise, so the
  notebook runs on (nbval passes) and the autograder scores the cell 0;
- wrong answer: the test's ``AssertionError`` (or any other error) is raised as usual, scored 0;
- right answer: prints "passed" on stdout, full marks.

Warnings raised inside the block are printed on stdout instead of stderr, so a harmless warning from the
student's code does not cost the marks.
"""
from __future__ import annotations

import sys
import warnings
from contextlib import contextmanager
from typing import Iterator

NOT_DONE = "not done"
PASSED = "passed"


@contextmanager
def check(name: str) -> Iterator[None]:
    """Run one exercise's tests inside a ``with`` block; see the module docstring for what it prints."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except NotImplementedError:
            print(f"{name}: {NOT_DONE} -- write your answer in the cell above, run it, then run this cell again.",
                  file=sys.stderr)
            return
        finally:
            for w in caught:
                print(f"(warning from the checks: {w.category.__name__}: {w.message})")
    print(f"{name}: {PASSED}")
