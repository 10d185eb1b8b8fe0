"""The in-memory containers every part of the suite passes around."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


def label_counts(labels: torch.Tensor, num_classes: int) -> list[int]:
    """Examples per class of class indices (N,), or per finding of a multi-label 0/1 matrix (N, L)."""
    if labels.ndim == 2:
        return labels.sum(0).tolist()
    return torch.bincount(labels, minlength=num_classes).tolist()


@dataclass
class Split:
    """One split: ``images`` uint8 (N, C, H, W) with C in {1, 3}; ``labels`` int64.

    Labels are class indices of shape (N,) for binary and multi-class sets, or a 0/1 matrix of shape
    (N, L) for multi-label sets (one column per finding, as ChestMNIST stores them).
    """

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

    @property
    def multi_label(self) -> bool:
        """True when each example carries a 0/1 vector of findings instead of one class index."""
        return self.labels.ndim == 2

    def examples_of(self, c: int) -> torch.Tensor:
        """Positions of the examples of class ``c`` (multi-label: of the examples that show finding ``c``)."""
        hits = self.labels[:, c] == 1 if self.multi_label else self.labels == c
        return torch.nonzero(hits).flatten()

    def class_counts(self, num_classes: int) -> list[int]:
        """How many examples of each class (multi-label: how many examples show each finding)."""
        return label_counts(self.labels, num_classes)


@dataclass
class DataSet:
    """A classification data set with train / val / test splits.

    ``class_names`` names the classes (binary, multi-class) or the findings (multi-label), in label order.
    """

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
    def multi_label(self) -> bool:
        """True for multi-label sets: every image has a yes/no answer for each of ``class_names``."""
        return self.train.multi_label

    @property
    def task(self) -> str:
        """``binary``, ``multi-class`` or ``multi-label``."""
        if self.multi_label:
            return "multi-label"
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
