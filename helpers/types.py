"""Type aliases the package's signatures share."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]
"""Labels or scores as a NumPy array, a (CPU) tensor or nested lists: whatever :func:`numpy.asarray` reads."""
