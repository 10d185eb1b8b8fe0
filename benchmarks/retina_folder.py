"""Write RetinaMNIST as a folder of PNG files, the way a researcher's own images arrive: the public set that
``ftlab advise`` is shown on in the README (the notebooks default to PneumoniaMNIST).

    python -m benchmarks.retina_folder OUT [--images 500] [--seed 0]

Every split of the official file is pooled, ``--images`` are drawn stratified by grade (seeded), and each is
written as ``OUT/grade<k>/<index>.png`` (one sub-folder per class; no train/val/test folders, so the command
splits them itself). The file is found (MD5-checked) or downloaded as the notebooks do (``FTLAB_DATA_DIR``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from helpers import loading


def write(out: Path, images: int = 500, seed: int = 0) -> dict[str, int]:
    """Write the folder; the images written per class folder."""
    data = loading.load_dataset("retinamnist", size=28)
    pixels = torch.cat([s.images for s in (data.train, data.val, data.test)])
    labels = torch.cat([s.labels for s in (data.train, data.val, data.test)]).numpy()
    if not 0 < images <= len(labels):
        raise SystemExit(f"--images {images}: choose 1 to {len(labels)} (RetinaMNIST holds {len(labels)} images)")
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    share = np.floor(counts / counts.sum() * images).astype(int)
    share[np.argsort(-(counts / counts.sum() * images - share))[: images - share.sum()]] += 1   # largest remainders
    written = {}
    for k, n in enumerate(share):
        chosen = rng.choice(np.flatnonzero(labels == k), size=n, replace=False)
        folder = out / f"grade{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in sorted(chosen.tolist()):
            Image.fromarray(pixels[i].permute(1, 2, 0).numpy()).save(folder / f"{i:04d}.png")
        written[folder.name] = int(n)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.retina_folder", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder to write (class sub-folders go inside)")
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    written = write(args.out, args.images, args.seed)
    print(f"wrote {sum(written.values())} PNG files to {args.out}: " + ", ".join(f"{k} {n}" for k, n in written.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
