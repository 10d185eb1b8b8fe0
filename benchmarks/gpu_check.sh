#!/usr/bin/env bash
# GPU check: the benchmark and the fast-profile notebooks on CUDA, in well under 5 minutes.
# Run from the repository root on a machine with an NVIDIA GPU:  bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
make install >/dev/null
PY=.venv/bin/python
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
export FTLAB_DEVICE=cuda
BENCH_SCALE=${BENCH_SCALE:-1.0} timeout 240 $PY -m benchmarks.run
FTLAB_PROFILE=fast timeout 200 $PY -m pytest -q notebooks --nbval-lax --nbval-current-env -p no:cacheprovider
cat reports/bench.json
