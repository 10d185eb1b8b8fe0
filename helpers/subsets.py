"""Training-set-size subsets for learning curves: stratified, seeded, nested; class balancing."""
from __future__ import annotations

import math
from typing import Iterable

import torch

from .datasets import DataSet, Split


def _class_orders(labels: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """One seeded permutation of each class's positions (the same for every fraction: nesting)."""
    gen = torch.Generator().manual_seed(seed)
    orders = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = torch.nonzero(labels == c).flatten()
        orders.append(members[torch.randperm(len(members), generator=gen)])
    return orders


def smallest_fraction(labels: torch.Tensor) -> float:
    """The smallest fraction that keeps at least one example of every class."""
    counts = [int(n) for n in torch.bincount(labels) if n > 0]
    return 0.5 / min(counts)


def _check_fraction(fraction: float) -> None:
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"A training fraction must lie in (0, 1]; got {fraction!r}.")


def fraction_indices(labels: torch.Tensor, fraction: float, seed: int = 0, balance: bool = False) -> torch.Tensor:
    """Positions of a stratified, seeded subset holding ``fraction`` of every class.

    Subsets of one seed are nested: the 10% subset lies inside the 25% subset, because both take a
    prefix of the same per-class permutation. With ``balance`` the majority classes are down-sampled
    to the smallest class's count (as the paper did), which keeps the nesting.
    """
    _check_fraction(fraction)
    if len(labels) == 0:
        raise ValueError("The training split is empty.")
    orders = [o for o in _class_orders(labels, seed) if len(o)]
    keep = [math.floor(fraction * len(o) + 0.5) for o in orders]
    if min(keep) == 0:
        raise ValueError(f"A fraction of {fraction:g} leaves a class without any example; the smallest "
                         f"fraction that keeps every class is {smallest_fraction(labels):.4g}.")
    if balance:
        keep = [min(keep)] * len(keep)
    picked = torch.cat([o[:k] for o, k in zip(orders, keep)])
    return picked.sort().values


def nested_subsets(labels: torch.Tensor, fractions: Iterable[float], seed: int = 0,
                   balance: bool = False) -> dict[float, torch.Tensor]:
    """:func:`fraction_indices` for several fractions of one seed (nested by construction)."""
    return {float(f): fraction_indices(labels, f, seed, balance) for f in sorted(fractions)}


def cap_indices(labels: torch.Tensor, max_n: int | None, seed: int = 0) -> torch.Tensor:
    """A stratified subset of at most ``max_n`` examples (all when ``max_n`` is None or larger)."""
    if max_n is None or max_n >= len(labels):
        return torch.arange(len(labels))
    smallest = smallest_fraction(labels)
    fraction = max(max_n / len(labels), smallest)
    index = fraction_indices(labels, fraction, seed)
    while len(index) > max_n and fraction > smallest:  # per-class rounding up can overshoot the cap
        fraction = max(smallest, fraction - 0.5 / len(labels))
        index = fraction_indices(labels, fraction, seed)
    return index


def cap_split(split: Split, max_n: int | None, seed: int = 0) -> Split:
    """The split cut to at most ``max_n`` examples, stratified."""
    return split.subset(cap_indices(split.labels, max_n, seed))


def training_subset(data: DataSet, fraction: float, seed: int = 0, balance: bool = False) -> DataSet:
    """The data set with its training split reduced to ``fraction`` (val and test untouched)."""
    return data.with_train(data.train.subset(fraction_indices(data.train.labels, fraction, seed, balance)))


def cap_dataset(data: DataSet, max_train: int | None, max_eval: int | None, seed: int = 0) -> DataSet:
    """The profile's budget: at most ``max_train`` training and ``max_eval`` val/test examples."""
    return type(data)(data.name, cap_split(data.train, max_train, seed), cap_split(data.val, max_eval, seed),
                      cap_split(data.test, max_eval, seed), data.class_names, data.source, data.licence,
                      dict(data.meta))


def subset_table(labels: torch.Tensor, fractions: Iterable[float], class_names: list[str], seed: int = 0,
                 balance: bool = False) -> "pd.DataFrame":
    """Per fraction: the number of training images and the count of each class."""
    import pandas as pd
    rows = []
    for fraction, idx in nested_subsets(labels, fractions, seed, balance).items():
        counts = torch.bincount(labels[idx], minlength=len(class_names)).tolist()
        rows.append({"fraction": fraction, "images": len(idx),
                     **{f"class: {name}": n for name, n in zip(class_names, counts)}})
    return pd.DataFrame(rows)


def is_nested(subsets: dict[float, torch.Tensor]) -> bool:
    """True when every smaller subset lies inside every larger one."""
    ordered = [set(v.tolist()) for _, v in sorted(subsets.items())]
    return all(a <= b for a, b in zip(ordered, ordered[1:]))
