#!/usr/bin/env bash
# Reproduces the README's CPU performance tables (TensorFlow backend): every registered model,
# the zoo's training path against hand-written Keras, inference, and the fraction of matmul peak.
# The 224x224 VGGs run one image per step and few steps: on 2 cores one step takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results
NOTE=${NOTE:-}
zoo bench lenet5 lenet5_modern vgg_small alexnet --json "$OUT/cpu-small.json" --note "$NOTE"
zoo bench lenet5 lenet5_modern vgg_small --augment --json "$OUT/cpu-augment.json" --note "$NOTE"
zoo bench vgg11 vgg13 vgg16 vgg19 --batch-size 1 --steps 2 --repeats 2 \
    --json "$OUT/cpu-vgg224.json" --note "$NOTE"
