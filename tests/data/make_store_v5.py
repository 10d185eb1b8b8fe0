"""Write tests/data/store_v5: a small results store made by the code of commit 89c827f (before the
budget was composed), so the test can check every run is still found done by today's code."""
import os, shutil, sys
from pathlib import Path
os.environ.setdefault("FTLAB_PROGRESS", "off")
from helpers import profiles, runner, experiments
from helpers.detection import experiment as det, data as polyp_data
from helpers.segmentation import experiment as seg

out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
P = profiles.get_profile("fast")
folder = Path("/tmp/ftlab-store-v5/polyp")
if not folder.exists():
    polyp_data.make_synthetic_polyp_folder(folder, n_frames=24, n_sequences=6, size=(96, 128), seed=0)

cls = experiments.profile_grid(P, ["pneumoniamnist"], strategies=("scratch", "statistics", "last"),
                               fractions=(0.5, 1.0), seeds=(0, 1), steps=2, eval_every=1, patience=2)
runner.run_sweep(cls, out / "classification", lr_grid=P.lr_grid, progress=False)
common = dict(dataset=str(folder), patch=16, frame_size=(48, 64), max_train_frames=6, max_val_frames=3,
              max_test_frames=6, steps=2, hard_steps=1, hard_per_frame=1, hard_frames=2, batch_size=8,
              n_bootstrap=20)
pol = det.polyp_grid(("scratch", "all"), (0.5, 1.0), seeds=(0,), **common)
runner.run_sweep(pol, out / "detection", lr_grid={"scratch": (0.01, 0.03), "finetune": (0.001,)},
                 tune_fractions=(1.0,), progress=False)
scommon = dict(dataset=str(folder), patch=16, frame_size=(48, 64), max_train_frames=6, max_val_frames=3,
               max_test_frames=6, steps=2, batch_size=8, per_class=2, stride=8.0, n_bootstrap=20)
sg = seg.seg_grid(("scratch", "last"), (0.5, 1.0), seeds=(0,), **scommon)
runner.run_sweep(sg, out / "segmentation", lr_grid={"scratch": (0.01,), "finetune": (0.001, 0.003)},
                 tune_fractions=(1.0,), progress=False)
for sub in ("classification", "detection", "segmentation"):
    print(sub, len(list((out / sub / "runs").glob("*.row.json"))), "runs")
