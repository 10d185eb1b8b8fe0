"""The words every verdict of the suite is said in, written once: the findings of notebook 04, detection's and
segmentation's reports and finding 3 across applications (docs/methods.md says when each is used)."""
from __future__ import annotations

HOLDS = "holds"
FAILS = "does not hold"
UNDECIDED = "not decidable at this budget"
"""The data at hand cannot tell the readings apart: not a verdict of "no difference"."""
