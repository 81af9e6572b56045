#!/usr/bin/env bash
# The zoo against its plain-PyTorch peer on one lent GPU (issue 16, item 1): JAX with CUDA and
# PyTorch with CUDA, no TensorFlow. lenet5, vgg_small, alexnet and vgg16 at 224x224, float32 and
# mixed bfloat16, each framework fed from uint8 host arrays its own way and from a device-
# resident data set; batch 256, or the largest below it that fits (vgg16); bf16 matmul peak at
# 8192^3 in the same run. About 3-4 minutes on an H100/H200 (estimated; docs/benchmarks.md).
# Results: $OUT/gpu-versus-torch.json and .md, written after each model's zoo and PyTorch
# processes, and on the timeout's SIGTERM, so a cut-off run keeps what it measured.
#
# Extra arguments go to benchmarks/versus_torch.py and override the ones below (the last value
# wins), e.g. the CPU check: PYTHON="python -S" benchmarks/gpu_versus_torch.sh --batch-size 2 --steps 1 ...
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
# Keras travels as wheels to the GPU machines (gpu_check.sh installs them the same way).
if ! $PYTHON -c "import keras" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
fi
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore
# JAX reserves 75% of the GPU's memory by default. Its side runs alone (PyTorch's process
# starts after it has exited), so it may take 90%, about what PyTorch can use.
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.90}"
timeout "${TIMEOUT:-330}" $PYTHON benchmarks/versus_torch.py lenet5 vgg_small alexnet vgg16 \
    --batch-size 256 --repeats 3 --json "$OUT/gpu-versus-torch.json" --note "${NOTE:-}" "$@"
