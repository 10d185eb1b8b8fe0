"""Three-class pixel labels of a polyp mask (background / boundary band / interior) and the mask read back.

The study's segmentation classified the patch around each pixel as background or one of two boundaries
(lumen-intima, media-adventitia). A polyp has one boundary, so its three classes are:

- ``BACKGROUND`` (0): outside the polyp;
- ``BOUNDARY`` (1): polyp pixels within ``band`` px of its edge (the inner band, ``band`` px wide);
- ``INTERIOR`` (2): polyp pixels deeper than that.

Boundary and interior together are the polyp: a pixel's P(polyp) is ``1 - P(background)``, and the
predicted mask is every pixel whose P(polyp) reaches a cut. The classifier is trained on windows balanced
over the three classes, so its probabilities assume a third of the pixels are background, while a polyp
covers a small share of a frame; the cut is therefore chosen on the validation frames (the best mean Dice
over :data:`THRESHOLDS`), never on test frames.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

BACKGROUND, BOUNDARY, INTERIOR = 0, 1, 2
CLASS_NAMES = ["background", "boundary band", "interior"]
BAND_SHARE = 0.02   # the boundary band's width as a share of the frame width (4 px at 192 px, 8 px at 384 px)


def band_width(frame_size: tuple[int, int], share: float = BAND_SHARE) -> int:
    """The boundary band in pixels for frames of ``frame_size`` = (H, W): ``share`` of the width, at least 1."""
    if share <= 0:
        raise ValueError(f"the band share must be positive, got {share}.")
    return max(1, int(round(share * frame_size[1])))


def as_mask(mask: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    if arr.ndim != 2:
        raise ValueError(f"a mask must be 2-D (H, W), got shape {arr.shape}.")
    return arr.astype(bool)


def three_class_labels(mask: np.ndarray | torch.Tensor, band: int) -> np.ndarray:
    """uint8 (H, W) labels of a bool mask: 0 background, 1 within ``band`` px inside the edge, 2 deeper.

    The edge is where the mask meets the background (the frame's border counts as background); a pixel
    is in the band when its Euclidean distance to the nearest background pixel is at most ``band``.
    A polyp thinner than ``2 * band`` has no interior.
    """
    if band < 1:
        raise ValueError(f"band must be at least 1 px, got {band}.")
    m = as_mask(mask)
    depth = ndimage.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]   # distance to the nearest background px
    out = np.zeros(m.shape, dtype=np.uint8)
    out[m] = BOUNDARY
    out[depth > band] = INTERIOR
    return out


THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95) # cuts on P(polyp) tried on validation frames


def polyp_probability(probs: torch.Tensor, fov: torch.Tensor | None = None) -> torch.Tensor:
    """Float (..., H, W): P(polyp) = 1 - P(background) from class probabilities (..., 3, H, W); 0 outside ``fov``."""
    out = 1.0 - probs[..., BACKGROUND, :, :]
    return out * fov.to(out.device) if fov is not None else out
