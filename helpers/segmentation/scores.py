"""Segmentation scores of a predicted mask against the true one: Dice, IoU and the mean boundary distance.

- **Dice** ``2 |P & T| / (|P| + |T|)`` and **IoU** ``|P & T| / |P | T|`` of the polyp region (1 when both
  masks are empty).
- **Mean boundary distance** (the study's boundary error): the mean, over the boundary pixels of both masks,
  of each pixel's distance to the nearest boundary pixel of the other mask (the average symmetric surface
  distance), in pixels and as a share of the frame width. A boundary pixel is a mask pixel with a
  4-neighbour outside the mask (the frame's border counts as outside). When exactly one mask is empty the
  distance is undefined; :func:`frame_scores` then charges the frame width (share 1.0) and flags the frame
  (``one_empty``), so a segmenter cannot improve its mean by predicting nothing where unsure.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from .labels import as_mask

SCORE_COLUMNS = ["dice", "iou", "boundary_px", "boundary_share", "one_empty"]


def dice(pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor) -> float:
    """Dice overlap of two bool masks (1.0 when both are empty)."""
    p, t = as_mask(pred), as_mask(true)
    total = int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * int((p & t).sum()) / total


def iou(pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty)."""
    p, t = as_mask(pred), as_mask(true)
    union = int((p | t).sum())
    return 1.0 if union == 0 else int((p & t).sum()) / union


def boundary(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    """Bool (H, W): the mask's pixels with a 4-neighbour outside it (or on the frame's border)."""
    m = as_mask(mask)
    return m & ~ndimage.binary_erosion(m, border_value=0)


def boundary_distance(pred: np.ndarray | torch.Tensor, true: np.ndarray | torch.Tensor) -> float:
    """Mean symmetric distance (px) between the boundaries of two masks; 0 if both are empty, NaN if one is."""
    bp, bt = boundary(pred), boundary(true)
    if not bp.any() and not bt.any():
        return 0.0
    if not bp.any() or not bt.any():
        return float("nan")
    to_true = ndimage.distance_transform_edt(~bt)[bp]     # each predicted boundary px to the true boundary
    to_pred = ndimage.distance_transform_edt(~bp)[bt]
    return float((to_true.sum() + to_pred.sum()) / (len(to_true) + len(to_pred)))


def frame_scores(preds: np.ndarray | torch.Tensor, trues: np.ndarray | torch.Tensor) -> pd.DataFrame:
    """One row per frame of bool masks (N, H, W): ``dice, iou, boundary_px, boundary_share, one_empty``.

    ``boundary_share`` is ``boundary_px`` over the frame width. A frame whose distance is undefined (one mask
    empty) is charged the frame width (see the module's note) and has ``one_empty`` True.
    """
    preds = preds.cpu().numpy() if isinstance(preds, torch.Tensor) else np.asarray(preds)
    trues = trues.cpu().numpy() if isinstance(trues, torch.Tensor) else np.asarray(trues)
    if preds.shape != trues.shape or preds.ndim != 3:
        raise ValueError(f"predicted and true masks must both be (N, H, W), got {preds.shape} and {trues.shape}.")
    width = preds.shape[2]
    rows = []
    for p, t in zip(preds, trues):
        distance = boundary_distance(p, t)
        undefined = not np.isfinite(distance)
        distance = float(width) if undefined else distance
        rows.append({"dice": dice(p, t), "iou": iou(p, t), "boundary_px": distance,
                     "boundary_share": distance / width, "one_empty": undefined})
    return pd.DataFrame(rows, columns=SCORE_COLUMNS)
