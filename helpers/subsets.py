"""Training-set-size subsets for learning curves: stratified, seeded, nested; class balancing."""
from __future__ import annotations

import math
from typing import Iterable

import pandas as pd
import torch

from .datasets import DataSet, Split, label_counts
from .metrics import auc_defined


def strata(labels: torch.Tensor) -> torch.Tensor:
    """The group each example is stratified by: its class, or for a multi-label set its rarest finding.

    A multi-label image (a 0/1 row) joins the stratum of the least frequent finding it shows (the
    frequencies counted over ``labels``), and images without any finding form one more stratum. This
    keeps rare findings represented in proportion, which is as far as stratification can go when one
    image carries several labels.
    """
    if labels.ndim == 1:
        return labels
    frequency = labels.sum(0).double()
    rarity = torch.where(labels.bool(), frequency[None, :], torch.tensor(math.inf, dtype=torch.double))
    key = rarity.argmin(1)
    return torch.where(labels.any(1), key, torch.full_like(key, labels.shape[1]))


def _class_orders(labels: torch.Tensor, seed: int) -> list[torch.Tensor]:
    """One seeded permutation of each stratum's positions (the same for every fraction: nesting)."""
    groups = strata(labels)
    gen = torch.Generator().manual_seed(seed)
    orders = []
    for c in range(int(groups.max()) + 1 if len(groups) else 0):
        members = torch.nonzero(groups == c).flatten()
        orders.append(members[torch.randperm(len(members), generator=gen)])
    return orders


def smallest_fraction(labels: torch.Tensor, per_class: int = 1) -> float:
    """The smallest fraction that keeps at least ``per_class`` examples of every class (of every stratum,
    multi-label), given that each class's share is rounded half up."""
    counts = [int(n) for n in torch.bincount(strata(labels)) if n > 0]
    return (per_class - 0.5) / min(counts)


def _check_fraction(fraction: float) -> None:
    if not (isinstance(fraction, (int, float)) and 0 < fraction <= 1):
        raise ValueError(f"A training fraction must lie in (0, 1]; got {fraction!r}.")


def _share(fraction: float, n: int) -> int:
    """``fraction`` of ``n`` images rounded half up (a hair of tolerance, so 1.5/n of n keeps 2, not 1)."""
    return math.floor(fraction * n + 0.5 + 1e-9)


def _kept_per_stratum(labels: torch.Tensor, fraction: float, seed: int, balance: bool,
                      need: int = 1) -> tuple[list[torch.Tensor], list[int]]:
    """(each stratum's seeded order, how many of it the fraction keeps), rounding half up per stratum.

    One label per image: ValueError when a class would keep fewer than ``need`` examples. Multi-label: a
    rare stratum may keep none (its findings can still occur in other strata); only an empty subset is
    refused.
    """
    orders = [o for o in _class_orders(labels, seed) if len(o)]
    keep = [_share(fraction, len(o)) for o in orders]
    if labels.ndim == 1 and min(keep) < need:
        raise ValueError(_too_small_message(labels, fraction, min(keep), need))
    if sum(keep) == 0:
        raise ValueError(f"A fraction of {fraction:g} of {len(labels)} examples keeps none; use a larger fraction.")
    if balance:   # every group down to the smallest group's share: grows with the fraction, so still nested
        cap = max(1, _share(fraction, min(len(o) for o in orders)))
        keep = [min(k, cap) for k in keep]
    return orders, keep


def _too_small_message(labels: torch.Tensor, fraction: float, smallest_kept: int, need: int) -> str:
    """Why a fraction is too small for a one-label-per-image set, and the smallest that works."""
    smallest = math.ceil(smallest_fraction(labels, need) * 1e4) / 1e4   # printed rounded up, so it works
    if need == 1:
        return (f"A fraction of {fraction:g} leaves a class without any example; the smallest fraction that "
                f"keeps every class is {smallest:g}.")
    return (f"A fraction of {fraction:g} leaves a class with {smallest_kept} image(s); holding out a validation "
            f"image needs at least 2 per class. Use a fraction of at least {smallest:g}.")


def fraction_indices(labels: torch.Tensor, fraction: float, seed: int = 0, balance: bool = False) -> torch.Tensor:
    """Positions of a stratified, seeded subset holding ``fraction`` of every class.

    Subsets of one seed are nested: the 10% subset lies inside the 25% subset, because both take a
    prefix of the same per-class permutation. With ``balance`` the majority classes are down-sampled
    to the smallest class's count (as the paper did), which keeps the nesting. Multi-label sets are
    stratified by :func:`strata`.
    """
    _check_fraction(fraction)
    if len(labels) == 0:
        raise ValueError("The training split is empty.")
    orders, keep = _kept_per_stratum(labels, fraction, seed, balance)
    picked = torch.cat([o[:k] for o, k in zip(orders, keep)])
    return picked.sort().values


def share_deviation(labels: torch.Tensor, index: torch.Tensor, fraction: float) -> float:
    """The largest gap, in images, between a stratum's count in a subset and ``fraction`` of its full count.

    A stratified subset keeps every class within one image of its share (rounding half up gives at
    most 0.5), however small the data set; a 5-image subset of an imbalanced set cannot hold the class
    shares to a percentage, but it can to an image.
    """
    full = torch.bincount(strata(labels)).double()
    kept = torch.bincount(strata(labels)[index], minlength=len(full)).double()
    return float((kept - fraction * full).abs().max())


def feasible_fractions(labels: torch.Tensor, fractions: Iterable[float]) -> tuple[tuple[float, ...], list[float]]:
    """(fractions that give a subset, in the order given; those left out because a class would be empty)."""
    kept, left_out = [], []
    for fraction in fractions:
        try:
            _kept_per_stratum(labels, fraction, 0, False)
            kept.append(fraction)
        except ValueError:
            left_out.append(fraction)
    return tuple(kept), left_out


def nested_subsets(labels: torch.Tensor, fractions: Iterable[float], seed: int = 0,
                   balance: bool = False) -> dict[float, torch.Tensor]:
    """:func:`fraction_indices` for several fractions of one seed (nested by construction)."""
    return {float(f): fraction_indices(labels, f, seed, balance) for f in sorted(fractions)}


def cap_indices(labels: torch.Tensor, max_n: int | None, seed: int = 0) -> torch.Tensor:
    """A stratified subset of at most ``max_n`` examples (all when ``max_n`` is None or larger)."""
    if max_n is None or max_n >= len(labels):
        return torch.arange(len(labels))
    smallest = smallest_fraction(labels) if labels.ndim == 1 else 0.5 / len(labels)
    fraction = max(max_n / len(labels), smallest)
    index = fraction_indices(labels, fraction, seed)
    while len(index) > max_n and fraction > smallest:  # per-class rounding up can overshoot the cap
        fraction = max(smallest, fraction - 0.5 / len(labels))
        index = fraction_indices(labels, fraction, seed)
    return index


def _cap_split(split: Split, max_n: int | None, seed: int = 0) -> Split:
    """The split cut to at most ``max_n`` examples, stratified."""
    return split.subset(cap_indices(split.labels, max_n, seed))


def _spread_positions(k: int, share: float) -> list[int]:
    """Evenly spread positions among 0..k-1, floor(k * share) of them; a prefix of k gives a prefix's picks."""
    return [i for i in range(k) if math.floor((i + 1) * share) > math.floor(i * share)]


def budget_split(labels: torch.Tensor, fraction: float, seed: int = 0, val_share: float = 0.2,
                 min_val_per_class: int = 1, balance: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(training positions, validation positions) inside the ``fraction`` subset of ``labels``.

    The validation images come out of the same budget as the training images, as the paper held out
    20% of its training data: per class, ``val_share`` of the subset (evenly spread over the class's
    seeded order), but at least ``min_val_per_class`` (every class is validated) and at most all but one
    (every class is trained). Training sets of growing fractions are nested; validation sets are too,
    except where the ``min_val_per_class`` floor had to add an image. Multi-label sets are split per
    stratum (:func:`strata`); a stratum of one image is trained on, and a ValueError says when no
    stratum could give a validation image.
    """
    if not 0 < val_share < 1:
        raise ValueError(f"val_share must lie in (0, 1); got {val_share!r}.")
    _check_fraction(fraction)
    orders, keep = _kept_per_stratum(labels, fraction, seed, balance, need=2)
    train, val = [], []
    for order, k in zip(orders, keep):
        n_val = min(max(min_val_per_class, math.floor(k * val_share)), k - 1)   # multi-label: 0 when k < 2
        chosen = set(_spread_positions(k, val_share)[:n_val])
        for i in range(k - 1, -1, -1):   # the floor of min_val_per_class: take from the end of the order
            if len(chosen) >= n_val:
                break
            chosen.add(i)
        val.append(order[sorted(chosen)])
        train.append(order[[i for i in range(k) if i not in chosen]])
    val_idx = torch.cat(val).sort().values
    if len(val_idx) == 0:
        raise ValueError(f"A fraction of {fraction:g} keeps too few images of each group to hold any out for "
                         f"validation; use a larger fraction.")
    return torch.cat(train).sort().values, val_idx


def _can_validate(labels: torch.Tensor, fraction: float, val_share: float, seeds: Iterable[int]) -> bool:
    """Whether, for every seed, the fraction's budget splits into training and validation images on both
    of which AUC is defined."""
    for seed in seeds:
        try:
            train, val = budget_split(labels, fraction, seed, val_share)
        except ValueError:
            return False
        if not (auc_defined(labels[val]) and auc_defined(labels[train])):
            return False
    return True


def usable_fractions(labels: torch.Tensor, fractions: Iterable[float], val_share: float = 0.2,
                     seeds: Iterable[int] = (0,)) -> tuple[tuple[float, ...], list[float]]:
    """(fractions whose budget can hold out a validation set, in order; those left out).

    One label per image: at least two images of every class, so one can be held out. Multi-label: the
    validation and training images each show some finding with both answers (so AUC is defined).
    """
    fractions = list(fractions)
    seeds = tuple(seeds)
    kept = tuple(f for f in fractions if _can_validate(labels, f, val_share, seeds))
    return kept, [f for f in fractions if f not in kept]


def budget_table(labels: torch.Tensor, fractions: Iterable[float], seed: int = 0,
                 val_share: float = 0.2) -> pd.DataFrame:
    """Per usable fraction: the labelled budget and how :func:`budget_split` divides it."""
    rows = []
    for fraction in usable_fractions(labels, fractions, val_share, (seed,))[0]:
        train, val = budget_split(labels, fraction, seed, val_share)
        rows.append({"fraction": fraction, "budget": len(train) + len(val), "training": len(train),
                     "validation": len(val)})
    return pd.DataFrame(rows)


def training_subset(data: DataSet, fraction: float, seed: int = 0, balance: bool = False,
                    val_share: float = 0.0, min_val_per_class: int = 1) -> DataSet:
    """The data set with its training split reduced to ``fraction``.

    With ``val_share`` 0 the official validation split is kept. With ``val_share`` > 0 the validation
    images are held out of the fraction itself (:func:`budget_split`): a user with 60 labelled images
    has 60 images for training *and* validation, not 60 plus the official validation split.
    The test split is never touched.
    """
    if not val_share:
        return data.with_train(data.train.subset(fraction_indices(data.train.labels, fraction, seed, balance)))
    train, val = budget_split(data.train.labels, fraction, seed, val_share, min_val_per_class, balance)
    return type(data)(data.name, data.train.subset(train), data.train.subset(val), data.test, data.class_names,
                      data.source, data.licence, {**data.meta, "validation": f"{val_share:.0%} of the training budget"})


def cap_dataset(data: DataSet, max_train: int | None, max_eval: int | None, seed: int = 0) -> DataSet:
    """The profile's budget: at most ``max_train`` training and ``max_eval`` val/test examples."""
    return type(data)(data.name, _cap_split(data.train, max_train, seed), _cap_split(data.val, max_eval, seed),
                      _cap_split(data.test, max_eval, seed), data.class_names, data.source, data.licence,
                      dict(data.meta))


def subset_table(labels: torch.Tensor, fractions: Iterable[float], class_names: list[str], seed: int = 0,
                 balance: bool = False) -> pd.DataFrame:
    """Per fraction: the number of training images and the count of each class (multi-label: of each finding)."""
    rows = []
    prefix = "finding" if labels.ndim == 2 else "class"
    for fraction, idx in nested_subsets(labels, fractions, seed, balance).items():
        counts = label_counts(labels[idx], len(class_names))
        rows.append({"fraction": fraction, "images": len(idx),
                     **{f"{prefix}: {name}": n for name, n in zip(class_names, counts)}})
    return pd.DataFrame(rows)


def is_nested(subsets: dict[float, torch.Tensor]) -> bool:
    """True when every smaller subset lies inside every larger one."""
    ordered = [set(v.tolist()) for _, v in sorted(subsets.items())]
    return all(a <= b for a, b in zip(ordered, ordered[1:]))
