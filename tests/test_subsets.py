"""helpers.subsets: training-set reductions are nested, stratified, seeded and (optionally) balanced."""
import pytest
import torch

from helpers import subsets as S

FRACTIONS = (0.1, 0.25, 1.0)


@pytest.fixture
def labels():
    """300 labels: 200 of class 0, 70 of class 1, 30 of class 2, shuffled."""
    y = torch.cat([torch.zeros(200), torch.ones(70), torch.full((30,), 2)]).long()
    return y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))]


def _as_set(idx):
    return set(idx.tolist())


def test_subsets_are_nested(labels):
    subsets = S.nested_subsets(labels, FRACTIONS, seed=5)
    assert list(subsets) == [0.1, 0.25, 1.0]
    assert _as_set(subsets[0.1]) <= _as_set(subsets[0.25]) <= _as_set(subsets[1.0])
    assert _as_set(subsets[1.0]) == set(range(len(labels)))
    assert S.is_nested(subsets)
    # computed one at a time, they are the same subsets
    for f in FRACTIONS:
        assert torch.equal(S.fraction_indices(labels, f, seed=5), subsets[f])
    assert not S.is_nested({0.1: torch.tensor([1, 2]), 0.2: torch.tensor([2, 3, 4])})


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.25, 0.33, 0.5, 1.0])
def test_subsets_are_stratified(labels, fraction):
    idx = S.fraction_indices(labels, fraction, seed=1)
    assert len(set(idx.tolist())) == len(idx)  # no repeats
    full = torch.bincount(labels).tolist()
    part = torch.bincount(labels[idx], minlength=3).tolist()
    for n_full, n_part in zip(full, part):
        assert abs(n_part - fraction * n_full) <= 1, (fraction, full, part)
        assert n_part >= 1


def test_subsets_are_seeded(labels):
    a = S.fraction_indices(labels, 0.25, seed=3)
    assert torch.equal(a, S.fraction_indices(labels, 0.25, seed=3))
    b = S.fraction_indices(labels, 0.25, seed=4)
    assert len(a) == len(b) and not torch.equal(a, b)
    assert torch.equal(S.fraction_indices(labels, 1.0, seed=3), S.fraction_indices(labels, 1.0, seed=4))


def test_balanced_subsets_have_equal_classes_and_stay_nested(labels):
    subsets = S.nested_subsets(labels, FRACTIONS, seed=2, balance=True)
    for f, idx in subsets.items():
        counts = torch.bincount(labels[idx], minlength=3).tolist()
        assert len(set(counts)) == 1, (f, counts)
        assert counts[0] == round(f * 30)  # the smallest class sets the count
    assert S.is_nested(subsets)
    # balancing down-samples within the same order: a balanced subset lies inside the unbalanced one
    plain = S.nested_subsets(labels, FRACTIONS, seed=2)
    for f in FRACTIONS:
        assert _as_set(subsets[f]) <= _as_set(plain[f])


@pytest.mark.parametrize("bad", [0, 0.0, -0.1, 1.01, 2, float("nan"), "0.5", None])
def test_fraction_outside_unit_interval_is_refused(labels, bad):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        S.fraction_indices(labels, bad)


def test_fraction_that_empties_a_class_names_the_smallest_that_works():
    labels = torch.tensor([0] * 40 + [1] * 4)
    assert S.smallest_fraction(labels) == pytest.approx(0.125)
    with pytest.raises(ValueError, match=r"0\.125") as info:
        S.fraction_indices(labels, 0.1)
    assert "class" in str(info.value)
    # the fraction the message names does work, and keeps one example of the small class
    idx = S.fraction_indices(labels, 0.125)
    assert torch.bincount(labels[idx]).tolist() == [5, 1]
    with pytest.raises(ValueError):
        S.fraction_indices(labels, 0.12)
    with pytest.raises(ValueError, match="empty"):
        S.fraction_indices(labels[:0], 0.5)


def test_training_subset_and_cap_dataset(tiny_data):
    half = S.training_subset(tiny_data, 0.5, seed=0)
    assert len(half.train) == 32 and half.train.class_counts(2) == [16, 16]
    assert half.val is tiny_data.val and half.test is tiny_data.test
    capped = S.cap_dataset(tiny_data, max_train=20, max_eval=10, seed=0)
    assert len(capped.train) <= 20 and len(capped.val) <= 10 and len(capped.test) <= 10
    assert capped.train.class_counts(2) == [10, 10]
    assert capped.val.class_counts(2) == [5, 5] and capped.test.class_counts(2) == [5, 5]
    assert capped.class_names == tiny_data.class_names and capped.name == tiny_data.name
    # rows really come from the original split
    originals = {tuple(img.flatten().tolist()) for img in tiny_data.train.images}
    assert all(tuple(img.flatten().tolist()) in originals for img in capped.train.images)
    same = S.cap_dataset(tiny_data, None, 1000)
    assert len(same.train) == 64 and len(same.val) == 32 and len(same.test) == 32


@pytest.mark.parametrize("max_n", [1, 2, 3, 7, 21, 33, 63])
def test_cap_indices_never_exceeds_the_cap(max_n):
    labels = torch.arange(64) % 2
    idx = S.cap_indices(labels, max_n)
    counts = torch.bincount(labels[idx], minlength=2).tolist()
    assert min(counts) >= 1  # every class kept ...
    assert len(idx) <= max(max_n, 2)  # ... and never more than the cap (unless the cap is below the classes)
    assert len(set(idx.tolist())) == len(idx)


def test_subset_table_counts(labels):
    table = S.subset_table(labels, [1.0, 0.1, 0.5], ["a", "b", "c"], seed=0)
    assert list(table["fraction"]) == [0.1, 0.5, 1.0]
    assert list(table.columns) == ["fraction", "images", "class: a", "class: b", "class: c"]
    assert table.iloc[-1][["class: a", "class: b", "class: c"]].tolist() == [200, 70, 30]
    assert (table[["class: a", "class: b", "class: c"]].sum(axis=1) == table["images"]).all()
    assert table.iloc[0][["class: a", "class: b", "class: c"]].tolist() == [20, 7, 3]
    balanced = S.subset_table(labels, [0.5], ["a", "b", "c"], balance=True)
    assert balanced.iloc[0][["class: a", "class: b", "class: c"]].tolist() == [15, 15, 15]


# ----------------------------------------------------------------------------- validation from the budget
def test_budget_split_holds_validation_out_of_the_fraction():
    labels = torch.tensor([0] * 300 + [1] * 900)
    previous = None
    for fraction in (0.01, 0.05, 0.25, 1.0):
        train, val = S.budget_split(labels, fraction, seed=3, val_share=0.2)
        budget = S.fraction_indices(labels, fraction, seed=3)
        assert sorted(train.tolist() + val.tolist()) == budget.tolist()      # exactly the fraction's images
        assert not set(train.tolist()) & set(val.tolist())
        counts = torch.bincount(labels[val], minlength=2)
        assert (counts >= 1).all() and (torch.bincount(labels[train], minlength=2) >= 1).all()
        if fraction >= 0.25:
            assert abs(len(val) / len(budget) - 0.2) < 0.01
        if previous is not None:
            assert set(previous[0].tolist()) <= set(train.tolist())          # training images nested
        previous = (train, val)


def test_budget_split_refuses_a_class_with_one_image():
    labels = torch.tensor([0] * 3 + [1] * 300)
    with pytest.raises(ValueError, match="at least 2 per class"):
        S.budget_split(labels, 0.1, val_share=0.2)


def test_training_subset_with_val_share_leaves_test_alone(tiny_data):
    data = S.training_subset(tiny_data, 0.5, seed=0, val_share=0.25)
    assert len(data.train) + len(data.val) == 32 and len(data.val) == 8
    assert data.test is tiny_data.test and "validation" in data.meta
    assert S.training_subset(tiny_data, 0.5, seed=0).val is tiny_data.val


def test_multi_label_strata_are_the_rarest_finding_shown():
    labels = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 1], [0, 0, 0], [1, 1, 0]])
    # finding frequencies 4, 2, 1: an image joins its rarest finding; no finding -> group 3
    assert S.strata(labels).tolist() == [0, 1, 2, 3, 1]


def test_balanced_multi_label_subsets_stay_nested():
    gen = torch.Generator().manual_seed(0)
    labels = (torch.rand(40, 4, generator=gen) < torch.tensor([0.5, 0.3, 0.1, 0.05])).long()
    subsets = S.nested_subsets(labels, (0.3, 0.6, 1.0), seed=1, balance=True)
    assert S.is_nested(subsets)
