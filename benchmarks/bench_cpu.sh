#!/usr/bin/env bash
# Reproduces the README's CPU performance tables (TensorFlow backend): every registered model,
# the zoo's training path against hand-written Keras, inference, and the fraction of matmul peak.
# The 224x224 VGGs run one image per step and few steps: on 2 cores one step takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results
NOTE=${NOTE:-}
zoo bench lenet5 lenet5_modern vgg_small alexnet --json "$OUT/cpu-small.json" --note "$NOTE"
zoo bench lenet5 --augment --repeats 2 --steps 20 --json "$OUT/cpu-augment-lenet5.json" \
    --note "$NOTE"
zoo bench vgg_small --augment --repeats 2 --steps 3 --json "$OUT/cpu-augment-vgg_small.json" \
    --note "$NOTE"
for model in vgg11 vgg13 vgg16 vgg19; do
    zoo bench "$model" --batch-size 1 --steps 1 --repeats 2 --json "$OUT/cpu-224-$model.json" \
        --note "$NOTE"
done
