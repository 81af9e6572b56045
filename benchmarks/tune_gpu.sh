#!/usr/bin/env bash
# Trials per hour of the fixed small search in benchmarks/tune_throughput.py, on whatever
# accelerator is visible. On the GPU machines: JAX with CUDA, no TensorFlow.
#   bash benchmarks/tune_gpu.sh                 # 6 trials x 3 epochs
#   bash benchmarks/tune_gpu.sh --trials 12     # longer
set -euo pipefail
cd "$(dirname "$0")/.."
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore
python -c 'import jax; print("devices:", jax.devices())' 1>&2 || true
python benchmarks/tune_throughput.py "$@"
