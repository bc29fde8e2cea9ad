#!/usr/bin/env bash
# The GPU check, under 8 minutes on one GPU, with no data: step ratios and epochs per second
# of the packed network against a bare loop, which precisions keep earlier tasks bit for bit
# (benchmarks/results/gpu.json, docs/results/gpu.md), then the CUDA tests (pytest -m cuda).
#   benchmarks/gpu.sh               on the GPU
#   benchmarks/gpu.sh --device cpu  a dry run with tiny sizes (results under results/quick)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
device=cuda
if [ "${1:-}" = "--device" ]; then device=${2:?--device needs a value}; fi
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}
if [ "$device" = cpu ]; then
    export CLEARN_BENCH_RESULTS=${CLEARN_BENCH_RESULTS:-benchmarks/results/quick}
    exec timeout 300 "$python" -m benchmarks.gpu --device cpu
fi
timeout 300 "$python" -m benchmarks.gpu --device "$device"
timeout 180 "$python" -m pytest -q -m cuda tests/cuda
