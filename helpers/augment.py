"""The paper's augmentation, applied to whole batches on the device in one resampling step.

Each image gets a random scale (1.0, 1.2 or 1.5: a zoom into the centre), a translation of up to 10%
and one of the eight flips / 90-degree rotations. All three are folded into one affine matrix per image
and applied with a single ``grid_sample`` call, so there is no per-sample Python.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# The dihedral group of the square: identity, 3 rotations, 4 reflections (as 2x2 matrices).
DIHEDRAL = torch.tensor([
    [[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]],
    [[-1, 0], [0, 1]], [[1, 0], [0, -1]], [[0, 1], [1, 0]], [[0, -1], [-1, 0]],
], dtype=torch.float32)


def random_affine(n: int, generator: torch.Generator, scales: tuple[float, ...] = (1.0, 1.2, 1.5),
                  shift: float = 0.1, dihedral: bool = True) -> torch.Tensor:
    """``n`` affine matrices (n, 2, 3) in ``affine_grid``'s normalised coordinates, drawn on the CPU."""
    scale = torch.tensor(scales)[torch.randint(len(scales), (n,), generator=generator)]
    flips = torch.randint(8 if dihedral else 1, (n,), generator=generator)
    linear = DIHEDRAL[flips] / scale.view(n, 1, 1)
    offset = (torch.rand(n, 2, generator=generator) * 2 - 1) * shift * 2  # 10% of the side = 0.2 in [-1, 1]
    return torch.cat([linear, offset.unsqueeze(-1)], dim=2)


def augment_batch(x: torch.Tensor, generator: torch.Generator, scales: tuple[float, ...] = (1.0, 1.2, 1.5),
                  shift: float = 0.1, dihedral: bool = True) -> torch.Tensor:
    """Randomly rescale, shift, flip and rotate a float batch (B, C, H, W) on its own device.

    Parameters are drawn from ``generator`` (a CPU generator, so a seed gives the same augmentation on
    every device). Pixels shifted in from outside the image are filled by border replication.
    """
    theta = random_affine(x.shape[0], generator, scales, shift, dihedral).to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
