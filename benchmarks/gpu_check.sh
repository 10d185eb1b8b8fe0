#!/usr/bin/env bash
# GPU check, one command, within 5 minutes on one H100-class GPU; everything goes to reports/gpu/:
#   1. make bench, shortened (engine vs tutorial loop vs the device's limit; frozen-feature caching)  bench.log, bench.json
#   2. the full profile's code paths at toy scale on CUDA: notebooks 02-05 under full-toy               full_toy.log
#   3. a slice of the real full sweep (224 px, batch 64), timed, and the whole grid's cost ESTIMATED  full_slice.log, full_slice.json
# Run from the repository root on a machine with an NVIDIA GPU:  bash benchmarks/gpu_check.sh
# Prove the script itself on a CPU (about 15 minutes on 2 cores, most of it the toy test; a tiny slice):
#   FTLAB_DEVICE=cpu bash benchmarks/gpu_check.sh
# On a machine that cannot install (no package index), point PY at a Python that already has the suite's
# dependencies (pyproject.toml, test extra) and FTLAB_DATA_DIR at the MedMNIST files:
#   PY=python3 FTLAB_DATA_DIR=/path/to/medmnist bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PY:-}" ]; then
    make install >/dev/null
    PY=.venv/bin/python
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # the helpers package without installing it
fi
OUT=reports/gpu
mkdir -p "$OUT"
export FTLAB_DEVICE="${FTLAB_DEVICE:-cuda}" FTLAB_PROGRESS=off
started=$(date +%s)
stamp() { echo "== $1 ($(( $(date +%s) - started )) s)"; }
if [ "$FTLAB_DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
    $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device visible to torch'; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
    SLICE_ARGS=(--steps 10 40)
    BENCH=(env BENCH_SCALE=0.5 BENCH_REPEATS=2 BENCH_BEST_OF=2)
    TIMEOUTS=(60 150 90)                 # seconds for steps 1, 2, 3: within 5 minutes in all
    export FTLAB_WORKERS="${FTLAB_WORKERS:-8}"   # the toy sweeps' runs are small: eight processes share the GPU
else
    echo "FTLAB_DEVICE=$FTLAB_DEVICE: proving the script on this device with a tiny slice (no GPU numbers)"
    SLICE_ARGS=(--steps 1 2 --images 200 60 60)
    BENCH=(env BENCH_SCALE=0.1 BENCH_REPEATS=1 BENCH_BEST_OF=1 BENCH_THREADS=0)
    TIMEOUTS=(300 1200 300)
fi
stamp "1. benchmark"
"${BENCH[@]}" timeout "${TIMEOUTS[0]}" $PY -m benchmarks.run 2>&1 | tee "$OUT/bench.log" || echo "benchmark: stopped (timeout or error), see $OUT/bench.log"
cp reports/bench.json "$OUT/bench.json" 2>/dev/null || true
stamp "2. full profile at toy scale (notebooks 02-05)"
timeout "${TIMEOUTS[1]}" $PY -m pytest -q -s tests/test_full_toy.py -p no:cacheprovider 2>&1 | tee "$OUT/full_toy.log"
stamp "3. a slice of the full sweep, and the grid's cost estimated"
timeout "${TIMEOUTS[2]}" $PY -m benchmarks.full_slice --out "$OUT" "${SLICE_ARGS[@]}" 2>&1 | tee "$OUT/full_slice.log"
stamp "done: reports in $OUT"
