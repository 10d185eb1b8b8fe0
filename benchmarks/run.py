"""`make bench`: the training engine against the usual tutorial loop and against the device's limit.

Everything is measured in this one process on this one machine, side by side:

1. images/s of the suite's engine (``helpers.train.fit``) vs (a) the usual tutorial loop (a torchvision
   ``Dataset`` + ``DataLoader`` with per-sample PIL transforms) and (b) the limit (a tight loop on random
   tensors already on the device), same model, data, input size, batch size, step count and precision,
   for all-layer training and for the head-only level;
2. the wall time of a whole fine-tuning ladder with and without frozen-feature caching, per level;
3. achieved training FLOP/s against a measured large-GEMM peak;
4. peak memory (host RSS; GPU memory on CUDA).

Prints a table and writes ``reports/bench.json``. ``BENCH_SCALE`` (default 1.0) scales the step counts.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import time

import numpy as np
import torch
import torch.nn.functional as F

from helpers import data, env, finetune, models, profiles, subsets, train
from helpers.datasets import DataSet

from .store_bench import bench_store, print_store

ARCH, SIZE, BATCH = "efficientnet_lite0", 64, 64
SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))


def steps(n: int) -> int:
    return max(2, int(n * SCALE))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_model(level: str, device: torch.device) -> models.FTModel:
    model = models.build_model(ARCH, 2, pretrained=True, image_size=SIZE)
    finetune.set_level(model, level)
    return model.to(device)


def bench_engine(ds: DataSet, level: str, n_steps: int, epochs: int, device: torch.device) -> float:
    """images/s of helpers.train.fit (caching decided by the engine, as in a real run), whole call timed."""
    n = n_steps * BATCH // epochs
    sub = ds.with_train(ds.train.subset(torch.arange(n)))
    sub = DataSet(sub.name, sub.train, sub.val.subset(torch.arange(BATCH)), sub.test, sub.class_names)
    model = make_model(level, device)
    sync(device)
    t0 = time.perf_counter()
    # n_steps SGD steps over n images (``epochs`` passes); BatchNorm as the tutorial loop (no recalibration)
    train.fit(model, sub, steps=n_steps, batch_size=BATCH, eval_every=0, patience=None, quiet=True,
              device=str(device), eval_batch_size=512, bn_mode="train")
    sync(device)
    return n_steps * BATCH / (time.perf_counter() - t0)


class TutorialDataset(torch.utils.data.Dataset):
    """What most tutorials do: one PIL image per item, transformed one by one."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        from torchvision import transforms as T
        self.images, self.labels = images, labels
        self.transform = T.Compose([T.Resize((SIZE, SIZE)), T.Grayscale(3), T.ToTensor(),
                                    T.Normalize(models.LITE_MEAN, models.LITE_STD)])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        from PIL import Image
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def bench_tutorial(ds: DataSet, level: str, n_steps: int, device: torch.device, workers: int) -> float:
    """images/s of the usual loop: DataLoader + per-sample PIL transforms, model.train(), SGD."""
    images = ds.train.images[:, 0].numpy()
    loader = torch.utils.data.DataLoader(TutorialDataset(images, ds.train.labels.numpy()), batch_size=BATCH,
                                         shuffle=True, num_workers=workers, drop_last=True,
                                         persistent_workers=workers > 0)
    model = make_model(level, device)
    net = lambda x: model.forward_from(1, x)  # the tutorial's transforms already resized and normalised
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    autocast, _ = train.autocast_for(device, None)
    model.train()
    done, t0 = 0, None
    while done < n_steps + 1:
        for x, y in loader:
            if done == 1:            # the first batch pays for worker start-up; time from the second
                sync(device)
                t0 = time.perf_counter()
            x, y = x.to(device), y.to(device)
            with autocast:
                loss = F.cross_entropy(net(x).float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == n_steps + 1:
                break
    sync(device)
    return n_steps * BATCH / (time.perf_counter() - t0)


def bench_limit(level: str, n_steps: int, device: torch.device) -> float:
    """images/s of a tight loop on random, already-normalised tensors on the device (no data work)."""
    model = make_model(level, device)
    x = torch.randn(BATCH, 3, SIZE, SIZE, device=device)
    y = torch.randint(0, 2, (BATCH,), device=device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    autocast, _ = train.autocast_for(device, None)
    model.train()
    for i in range(n_steps + 1):
        if i == 1:
            sync(device)
            t0 = time.perf_counter()
        with autocast:
            loss = F.cross_entropy(model.forward_from(1, x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return n_steps * BATCH / (time.perf_counter() - t0)


def bench_ladder(ds: DataSet, n_train: int, epochs: int, device: torch.device) -> list[dict]:
    """Wall time of every level of the ladder, with and without frozen-feature caching."""
    sub = subsets.cap_dataset(ds, n_train, 256)
    rows = []
    for rung in finetune.ladder(models.build_model(ARCH, 2, pretrained=False, image_size=SIZE)):
        row = {"level": rung.name}
        for cache in (True, False):
            model = make_model(rung.name, device)
            t0 = time.perf_counter()
            result = train.fit(model, sub, steps=epochs * -(-len(sub.train) // BATCH), batch_size=BATCH,
                               eval_every=0, patience=None, quiet=True, cache=cache, device=str(device),
                               bn_mode="train")
            sync(device)
            row["cached_s" if cache else "uncached_s"] = time.perf_counter() - t0
            row["engine_cached" if cache else "_"] = result.cached
        row.pop("_", None)
        row["speedup"] = row["uncached_s"] / row["cached_s"]
        rows.append(row)
        print(f"  ladder {rung.name:>22}: cached {row['cached_s']:6.1f} s, uncached {row['uncached_s']:6.1f} s,"
              f" x{row['speedup']:.2f}", flush=True)
    return rows


def gemm_peak(device: torch.device) -> float:
    """FLOP/s of a large square matrix product at the training precision of the device."""
    n = 8192 if device.type == "cuda" else 2048
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    reps = 20 if device.type == "cuda" else 5
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def training_flops_per_image(device: torch.device) -> float:
    """FLOPs of one all-layer training step per image (forward + backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode
    model = make_model("all", device)
    x = torch.randn(BATCH, 3, SIZE, SIZE, device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model.forward_from(1, x), torch.zeros(BATCH, dtype=torch.long, device=device)).backward()
    return counter.get_total_flops() / BATCH


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {torch.get_num_threads()} torch threads, {gpu}"


def main() -> dict:
    device = env.pick_device()
    print(env.environment_report(device, "classroom"), flush=True)
    ds = data.load_dataset("pneumoniamnist", size=28)
    workers = min(2, os.cpu_count() or 1)
    n_all, n_head = (steps(40), steps(200)) if device.type == "cpu" else (steps(300), steps(1000))
    results: dict = {"machine": machine(device), "device": str(device), "torch": torch.__version__,
                     "model": ARCH, "input_size": SIZE, "batch_size": BATCH, "tutorial_num_workers": workers}
    ips = {}
    for level, n_steps, epochs in (("all", n_all, 1), ("classifier", n_head, 10)):
        print(f"{level}: {n_steps} steps of {BATCH} images", flush=True)
        ips[(level, "engine")] = bench_engine(ds, level, n_steps, epochs, device)
        ips[(level, "tutorial")] = bench_tutorial(ds, level, n_steps, device, workers)
        ips[(level, "limit")] = bench_limit(level, n_steps, device)
        for kind in ("engine", "tutorial", "limit"):
            print(f"  {kind:>8}: {ips[(level, kind)]:9.1f} images/s", flush=True)
    results["images_per_s"] = {f"{lvl}/{kind}": v for (lvl, kind), v in ips.items()}
    results["engine_vs_tutorial_all_layers"] = ips[("all", "engine")] / ips[("all", "tutorial")]
    results["engine_vs_limit_all_layers"] = ips[("all", "engine")] / ips[("all", "limit")]
    results["engine_vs_tutorial_head_only"] = ips[("classifier", "engine")] / ips[("classifier", "tutorial")]
    results["engine_vs_limit_head_only"] = ips[("classifier", "engine")] / ips[("classifier", "limit")]
    n_train, ladder_epochs = (256, 3) if device.type == "cpu" else (4096, 5)
    print(f"ladder: every level, {n_train} images, {ladder_epochs} epochs", flush=True)
    ladder = bench_ladder(ds, n_train, ladder_epochs, device)
    results["ladder"] = ladder
    results["ladder_cached_s"] = sum(r["cached_s"] for r in ladder)
    results["ladder_uncached_s"] = sum(r["uncached_s"] for r in ladder)
    results["ladder_speedup_with_caching"] = results["ladder_uncached_s"] / results["ladder_cached_s"]
    peak = gemm_peak(device)
    flops = training_flops_per_image(device)
    results.update(gemm_peak_flops=peak, training_flops_per_image=flops,
                   achieved_training_flops=flops * ips[("all", "engine")],
                   fraction_of_gemm_peak=flops * ips[("all", "engine")] / peak,
                   peak_host_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                   peak_gpu_mib=torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None)
    print("results store: append cost at 10 and 1,000 runs", flush=True)
    results["store_append"] = bench_store()
    out = profiles.project_root() / "reports" / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print_table(results)
    print(f"wrote {out}")
    return results


def print_table(r: dict) -> None:
    print(f"\nmachine: {r['machine']}")
    for key in ("engine_vs_tutorial_all_layers", "engine_vs_limit_all_layers", "engine_vs_tutorial_head_only",
                "engine_vs_limit_head_only", "ladder_speedup_with_caching", "fraction_of_gemm_peak"):
        print(f"  {key:<32} {r[key]:8.2f}")
    print(f"  ladder: {r['ladder_cached_s']:.0f} s cached vs {r['ladder_uncached_s']:.0f} s uncached")
    print(f"  achieved {r['achieved_training_flops'] / 1e9:.1f} GFLOP/s of a {r['gemm_peak_flops'] / 1e9:.0f} "
          f"GFLOP/s GEMM peak; peak host RSS {r['peak_host_rss_mib']:.0f} MiB")
    print_store(r["store_append"])


if __name__ == "__main__":
    main()
