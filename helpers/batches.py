"""Mini-batches straight from uint8 tensors: slicing, conversion to float and moving to the device."""
from __future__ import annotations

from typing import Iterator

import torch

from .datasets import Split


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, C, H, W) -> float32 in [0, 1] (on the images' device)."""
    return images.float().div_(255.0)


def batch_slices(n: int, batch_size: int, order: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """Index tensors of consecutive batches over ``order`` (or 0..n-1)."""
    order = torch.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def iterate(split: Split, batch_size: int, device: torch.device, order: torch.Tensor | None = None
            ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (float images in [0, 1], labels) on ``device``; images are converted per batch."""
    for idx in batch_slices(len(split), batch_size, order):
        idx_dev = idx.to(split.images.device)
        x = split.images[idx_dev].to(device, non_blocking=True)
        y = split.labels[idx_dev].to(device, non_blocking=True)
        yield to_float(x), y


def place(split: Split, device: torch.device, max_bytes: int = 4 << 30) -> Split:
    """The split on ``device`` as uint8 when it fits in ``max_bytes`` (else left where it is)."""
    size = split.images.numel() * split.images.element_size()
    if split.images.device == torch.device(device) or size > max_bytes:
        return split
    return split.to(device)
