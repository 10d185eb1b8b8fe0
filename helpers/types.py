"""Type aliases the package's signatures share, and the one shape check of a label array."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]
"""Labels or scores as a NumPy array, a (CPU) tensor or nested lists: whatever :func:`numpy.asarray` reads."""


def label_array(labels: np.ndarray, what: str = "Labels") -> np.ndarray:
    """Labels in one of the two shapes the package reads: class indices (N,) (an (N, 1) column is flattened) or, for
    a multi-label set, a 0/1 matrix (N, findings); any other shape is refused with a message naming ``what``."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim not in (1, 2):
        raise ValueError(f"{what} have shape {tuple(labels.shape)}; they must be class indices (N,) or, for a "
                         f"multi-label set, a 0/1 matrix (N, findings).")
    return labels
