"""How long a ladder takes per run for each network the suite was tried with: one run per ladder level and one from
scratch, classroom budget (120 SGD steps of 32 images, 32 px inputs, PneumoniaMNIST capped at 1,200 training
images), one worker, one thread, so the figures are what one run costs on the machine it runs on.

    python -m benchmarks.timm_ladders [--out reports/timm_ladders.json] [--archs timm:resnet10t ...]

timm networks get random weights written to a file and loaded through the real weights path
(``$FTLAB_WEIGHTS_DIR``, :func:`helpers.weights.load_timm_weights`): this machine reaches no weights host, and the
cost of a run does not depend on what the weights are. EfficientNet-Lite0 loads its real ImageNet weights. Early
stopping is off (every run takes its 120 steps) so the networks compare on the same work.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

ARCHS = ("efficientnet_lite0", "timm:resnet10t", "timm:convnext_atto", "timm:vit_tiny_patch16_224",
         "timm:efficientnet_b0", "timm:resnet50")


def write_random_weights(arch: str, folder: Path) -> None:
    """A weights file for timm network ``arch`` where the real loading path finds it."""
    import timm
    import torch
    name = arch.split(":", 1)[1]
    torch.save(timm.create_model(name, pretrained=False).state_dict(), folder / f"{name}.pth")


def time_ladder(arch: str, dataset: str = "pneumoniamnist") -> dict:
    """Seconds of each ladder level's run and of the scratch run (each one run, fresh model)."""
    from helpers import experiments, finetune, models, profiles
    part = profiles.get_profile("classroom").classification.changed(patience=None, min_steps=0)
    template = experiments.profile_grid(part, [dataset], [arch], strategies=["scratch"], fractions=[1.0],
                                        seeds=[0])[0]
    template = replace(template, n_bootstrap=200)
    size = models.input_size(arch, part.image_size)
    levels = finetune.ladder(models.build_model(arch, 2, pretrained=True, image_size=size))
    experiments.cached_dataset(dataset, part.data_size)   # loading the data is not a run's cost
    runs = {}
    for strategy in ["scratch", *[lv.name for lv in levels]]:
        config = replace(template, strategy=strategy, lr=0.01 if strategy == "scratch" else 0.001)
        started = time.perf_counter()
        row = experiments.run_one(config)
        runs[strategy] = {"seconds": round(time.perf_counter() - started, 2), "iterations": int(row["iterations"]),
                          "test_auc": round(float(row["test_auc"]), 3)}
    level_s = [runs[lv.name]["seconds"] for lv in levels]
    return {"arch": arch, "levels": len(levels), "runs": runs, "level_min_s": min(level_s),
            "level_max_s": max(level_s), "ladder_s": round(sum(level_s), 1), "scratch_s": runs["scratch"]["seconds"]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timm_ladders", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports/timm_ladders.json"))
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    args = parser.parse_args(argv)
    os.environ.setdefault("FTLAB_THREADS", "1")
    results = []
    with tempfile.TemporaryDirectory() as weights:
        os.environ["FTLAB_WEIGHTS_DIR"] = weights
        for arch in args.archs:
            if arch.startswith("timm:"):
                write_random_weights(arch, Path(weights))
            r = time_ladder(arch)
            results.append(r)
            print(f"{arch}: {r['levels']} levels, one run {r['level_min_s']:.1f}-{r['level_max_s']:.1f} s "
                  f"(scratch {r['scratch_s']:.1f} s), the whole ladder {r['ladder_s']:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": f"{os.cpu_count()} cores", "results": results}, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
