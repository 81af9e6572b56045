#!/usr/bin/env bash
# GPU benchmark under JAX (no TensorFlow on the GPU machines: the SavedModel columns are skipped),
# float32 and bfloat16 mixed precision, the zoo against hand-written Keras (bench_peers.py). Larger batches and more steps than the CPU defaults, so
# that a repeat takes long enough to time on a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results
export KERAS_BACKEND=jax
for policy in float32 mixed_bfloat16; do
    python3 benchmarks/bench_peers.py lenet5 vgg_small alexnet --no-torch --batch-size 256 \
        --steps 40 --repeats 3 \
        --inference-batch 256 --dtype-policy "$policy" --json "$OUT/gpu-jax-$policy.json" \
        --note "${NOTE:-}"
done
