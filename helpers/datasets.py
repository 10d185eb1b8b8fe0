"""The in-memory containers every part of the suite passes around."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """One split: ``images`` uint8 (N, C, H, W) with C in {1, 3}; ``labels`` int64 (N,)."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, index: torch.Tensor) -> "Split":
        """The rows at ``index`` (a LongTensor of positions)."""
        return Split(self.images[index], self.labels[index])

    def to(self, device: torch.device | str) -> "Split":
        """The same split on ``device`` (images stay uint8)."""
        return Split(self.images.to(device), self.labels.to(device))

    def class_counts(self, num_classes: int) -> list[int]:
        """How many examples of each class."""
        return torch.bincount(self.labels, minlength=num_classes).tolist()


@dataclass
class DataSet:
    """A classification data set with train / val / test splits."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: list[str]
    source: str = ""
    licence: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def task(self) -> str:
        """``binary`` or ``multi-class``."""
        return "binary" if self.num_classes == 2 else "multi-class"

    @property
    def channels(self) -> int:
        return int(self.train.images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train.images.shape[2]), int(self.train.images.shape[3])

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def with_train(self, train: Split) -> "DataSet":
        """A copy whose training split is replaced (for subsets and balancing)."""
        return DataSet(self.name, train, self.val, self.test, self.class_names, self.source, self.licence,
                       dict(self.meta))
