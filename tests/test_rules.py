"""The verdict rules without holes: each rule change of the calibrated-verdicts work has its test here.

Finding 3 across applications (both conditions exclusive, the reviewer's example), finding 1's size classes
with the margin on both readings, tie flips read in one Holm family, the one choice rule (explicit pool, ties
at the validation set's resolution), the catch-up size's minimum of four sizes and the divergence count with
its sensitivity reading.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import analysis, applications, choice, findings, learning_curves


def across(rows: list[tuple]) -> pd.DataFrame:
    out = [dict(application=a, metric="m", n_train=100, chosen=c, tied_on_validation=False, strategy=s, level_index=0,
                difference=(lo + hi) / 2, lo=lo, hi=hi, reading="") for a, c, s, lo, hi in rows]
    return pd.DataFrame(out, columns=applications.COLUMNS)


def test_finding3_across_the_reviewers_example_does_not_hold():
    """A chooses X and Y costs A -0.10 to -0.05; B chooses Y and X costs B -0.01 to +0.008: X serves both."""
    table = across([("A", "X", "X", 0, 0), ("A", "X", "Y", -0.10, -0.05),
                    ("B", "Y", "Y", 0, 0), ("B", "Y", "X", -0.01, 0.008)])
    out = applications.finding3_across(table)
    assert applications.FAILS in out and applications.HOLDS not in out.split(":")[1]
    assert "X is the choice or within" in out


def test_finding3_across_conditions_can_never_both_be_met():
    rng = np.random.default_rng(0)
    for _ in range(300):
        rows = []
        for app, chosen in (("A", "X"), ("B", "Y"), ("C", str(rng.choice(["X", "Y", "Z"])))):
            for level in ("X", "Y", "Z"):
                lo = float(rng.uniform(-0.1, 0.02))
                rows.append((app, chosen, level, 0.0, 0.0) if level == chosen else
                            (app, chosen, level, lo, lo + float(rng.uniform(0, 0.08))))
        table = across(rows)
        holds = all(any(r["strategy"] != r["chosen"] and r["hi"] < -0.02
                        for _, r in table[table["strategy"] == lv].iterrows()) for lv in "XYZ")
        fails = any(all(r["strategy"] == r["chosen"] or r["lo"] > -0.02
                        for _, r in table[table["strategy"] == lv].iterrows()) for lv in "XYZ")
        assert not (holds and fails)
        out = applications.finding3_across(table)
        expected = applications.FAILS if fails else applications.HOLDS if holds else applications.UNDECIDED
        assert out.split(": ")[1].startswith(expected), (out, holds, fails)


@pytest.mark.parametrize("gap, lo, hi, p_adj, cls", [
    (0.05, 0.02, 0.08, 0.001, "better"),
    (-0.004, -0.008, -0.001, 0.01, "matched-lower"),     # significant, but inside the margin: not "worse"
    (-0.05, -0.08, -0.03, 0.001, "worse"),               # the whole interval below -margin
    (-0.02, -0.03, -0.01, 0.01, "open"),                 # significant, reaches past -margin, not wholly below
    (-0.001, -0.015, 0.012, 0.8, "matched"),
    (-0.01, -0.05, 0.03, 0.6, "open"),
])
def test_finding1_classes_read_the_margin_on_both_sides(gap, lo, hi, p_adj, cls):
    assert findings._size_class(gap, lo, hi, p_adj) == cls


def _best(rows: list[dict]) -> pd.DataFrame:
    best = pd.DataFrame(rows)
    best["p_holm"] = analysis.holm(best["p"].to_numpy(float))
    return best


def test_a_tie_with_identical_evidence_is_no_flip_and_a_real_one_is():
    same = dict(strategy="b", gap=0.03, lo=0.01, hi=0.05, p=0.004)
    best = _best([dict(gap=0.03, gap_lo=0.01, gap_hi=0.05, p=0.004, tie_gaps=[same]),
                  dict(gap=0.02, gap_lo=0.001, gap_hi=0.04, p=0.03, tie_gaps=[])])
    assert not findings._tie_flips(best, 0), "identical evidence in the same Holm family cannot flip"
    better_vs_matched = dict(strategy="b", gap=0.0, lo=-0.01, hi=0.01, p=0.9)   # "matched": still supports
    best.at[0, "tie_gaps"] = [better_vs_matched]
    assert not findings._tie_flips(best, 0)
    against = dict(strategy="b", gap=-0.06, lo=-0.09, hi=-0.03, p=0.0001)       # "worse": another contribution
    best.at[0, "tie_gaps"] = [against]
    assert findings._tie_flips(best, 0)


def test_one_choice_rule_with_an_explicit_pool_and_the_validation_resolution():
    cells = pd.DataFrame(dict(strategy=["scratch", "statistics", "head", "mid", "all", "auto"],
                              level_index=[-1, -1, 0, 1, 2, 9], val=[0.99, 0.99, 0.900, 0.9004, 0.95, 0.99],
                              val_loss=[1, 1, 0.5, 0.4, 0.6, 1]))
    ranked = choice.choose(cells, ["head", "mid", "all"])
    assert ranked["strategy"].iloc[0] == "all" and not ranked["tied"].iloc[1]
    assert set(ranked["strategy"]) == {"head", "mid", "all"}       # never the control or auto unless asked
    close = cells.assign(val=[0.99, 0.99, 0.9500, 0.9504, 0.9, 0.99])
    exact = choice.choose(close, ["head", "mid", "all"])
    assert exact["strategy"].iloc[0] == "mid" and exact["tied"].sum() == 1
    # 100 validation images: AUC steps of at least 4 / 100**2 = 0.0004; 0.9500 and 0.9504 are one step apart
    # at most, less than one pair per seed: tied, and the shallower level takes it
    assert choice.auc_resolution(100) == pytest.approx(4e-4)
    coarse = choice.choose(close, ["head", "mid", "all"], resolution=choice.auc_resolution(60))
    assert coarse["strategy"].iloc[0] == "head" and coarse["tied"].sum() == 2


def test_a_catch_up_size_needs_four_sizes(monkeypatch):
    rows = []
    for strategy, errors in (("scratch", (0.4, 0.3, 0.25)), ("all", (0.2, 0.15, 0.1))):
        for f, n, e in zip((0.25, 0.5, 1.0), (100, 200, 400), errors):
            for seed in range(3):
                rows.append(dict(dataset="d", arch="a", strategy=strategy, fraction=f, seed=seed, n_train=n,
                                 level_index=-1 if strategy == "scratch" else 2, test_auc=1 - e + 0.001 * seed,
                                 val_score=1 - e, diverged=False))
    table = learning_curves.power_law_table(pd.DataFrame(rows), n_boot=20)
    scratch = table[table["strategy"] == "scratch"].iloc[0]
    assert np.isnan(scratch["catch_up_n"]) and "at least 4 sizes" in scratch["catch_up_note"]


def test_diverged_runs_are_counted_and_read_as_failures():
    rng = np.random.default_rng(0)
    labels = [0, 1] * 40
    rows = []
    for f, n in ((0.1, 50), (1.0, 500)):
        for strategy, signal, level in (("scratch", 0.6, -1), ("head", 1.5, 0), ("all", 1.2, 1)):
            for seed in range(3):
                scores = (np.asarray(labels) * signal + rng.normal(0, 1, 80)).tolist()
                rows.append(dict(dataset="d", arch="a", strategy=strategy, fraction=f, seed=seed, n_train=n, n_val=20,
                                 level_index=level, test_labels=labels, test_scores=scores,
                                 test_auc=float(pd.Series(scores)[np.asarray(labels) == 1].mean()),
                                 val_score=0.8 + 0.01 * level, val_loss=0.5, diverged=False))
    table = pd.DataFrame(rows)
    from sklearn.metrics import roc_auc_score
    table["test_auc"] = [roc_auc_score(r["test_labels"], r["test_scores"]) for _, r in table.iterrows()]
    table.loc[(table["strategy"] == "all") & (table["fraction"] == 0.1) & (table["seed"] == 2), "diverged"] = True
    assert analysis.diverged_counts(table) == {(0.1, "all"): 1}
    best = analysis.best_per_fraction(table, n_boot=50)
    assert "diverged" in best.columns and best["scratch_diverged"].sum() == 0
    failed = findings.with_failures(table)
    assert not failed["diverged"].any() and failed.loc[table["diverged"], "test_auc"].eq(0.5).all()
    text = findings.findings(table, n_boot=50)[0]
    assert "Diverged runs left out" in text or "No run diverged" in text
