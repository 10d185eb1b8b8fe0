"""Published results to hold this suite's runs against (from the MedMNIST v2 paper, see docs/PAPER.md)."""
from __future__ import annotations

import pandas as pd

from .schema import SCRATCH

# Yang et al., Scientific Data 10:41 (2023), test AUC / ACC on the official splits.
MEDMNIST_V2 = {
    "ResNet-18 (28)": {"pneumoniamnist": (.944, .854), "breastmnist": (.901, .863), "dermamnist": (.917, .735),
                       "bloodmnist": (.998, .958), "pathmnist": (.983, .907), "organamnist": (.997, .935),
                       "retinamnist": (.717, .524), "octmnist": (.943, .743)},
    "ResNet-18 (224)": {"pneumoniamnist": (.956, .864), "breastmnist": (.891, .833), "dermamnist": (.920, .754),
                        "bloodmnist": (.998, .963), "pathmnist": (.989, .909), "organamnist": (.998, .951),
                        "retinamnist": (.710, .493), "octmnist": (.958, .763)},
    "ResNet-50 (224)": {"pneumoniamnist": (.962, .884), "breastmnist": (.866, .842), "dermamnist": (.912, .731),
                        "bloodmnist": (.997, .950), "pathmnist": (.989, .892), "organamnist": (.998, .947),
                        "retinamnist": (.716, .511), "octmnist": (.958, .776)},
    "Google AutoML Vision": {"pneumoniamnist": (.991, .946), "breastmnist": (.919, .861),
                             "dermamnist": (.914, .768), "bloodmnist": (.998, .966), "pathmnist": (.944, .728),
                             "organamnist": (.990, .886), "retinamnist": (.750, .531), "octmnist": (.963, .771)},
}


def yardstick_table(dataset: str) -> pd.DataFrame:
    """The MedMNIST v2 benchmark rows for ``dataset`` (empty when the paper has none)."""
    rows = [{"model": model, "test AUC": v[dataset.lower()][0], "test ACC": v[dataset.lower()][1],
             "source": "MedMNIST v2 (Yang et al. 2023)"}
            for model, v in MEDMNIST_V2.items() if dataset.lower() in v]
    return pd.DataFrame(rows)


def compare_sentence(dataset: str, runs: dict[str, dict], profile: str, reference: str = "ResNet-18 (28)") -> str:
    """One honest sentence per run on how its test AUC compares with the published yardstick."""
    table = yardstick_table(dataset)
    if table.empty:
        return f"MedMNIST v2 publishes no yardstick for {dataset}."
    ref = float(table.loc[table["model"] == reference, "test AUC"].iloc[0])
    lines = []
    for label, m in runs.items():
        if m["auc_hi"] < ref:
            verdict = "below"
        elif m["auc_lo"] > ref:
            verdict = "above"
        else:
            verdict = "statistically indistinguishable from"
        lines.append(f"{label}: test AUC {m['auc']:.3f} (95% CI {m['auc_lo']:.3f}-{m['auc_hi']:.3f}) is {verdict} "
                     f"the published {reference} result of {ref:.3f}.")
    lines.append(f"This run used the '{profile}' profile (a short budget at a small input size); the benchmark "
                 "trained for 100 epochs, so a gap here says more about the budget than about the network.")
    return "\n".join(lines)


# Tajbakhsh et al. (2016), intima-media boundary segmentation: mean boundary error (micrometres) per depth,
# from only fc8 tuned to all layers, then scratch and the hand-crafted method (the only numbers in the text).
STUDY_DEPTHS = ("fc8", "fc7-fc8", "fc6-fc8", "conv5-fc8", "conv4-fc8", "conv3-fc8", "conv2-fc8", "conv1-fc8 (all)")
STUDY_BOUNDARY_ERRORS = {
    "lumen-intima": ((101.0, 34.7, 27.9, 25.3, 25.0, 24.4, 24.7, 24.7), 28.1, 98.2),
    "media-adventitia": ((103.3, 43.9, 34.6, 31.9, 30.6, 31.8, 31.7, 31.2), 33.5, 106.6),
}


def study_boundary_errors() -> pd.DataFrame:
    """The study's printed boundary errors: one row per arm (eight depths, shallow to deep, then scratch and
    hand-crafted), one column per boundary (micrometres, carotid ultrasound: a shape to compare with, not a target)."""
    arms = [*STUDY_DEPTHS, SCRATCH, "hand-crafted"]
    table = {b: [*levels, scratch, hand] for b, (levels, scratch, hand) in STUDY_BOUNDARY_ERRORS.items()}
    return pd.DataFrame({"arm": arms, **{f"{b} (um)": v for b, v in table.items()}})
