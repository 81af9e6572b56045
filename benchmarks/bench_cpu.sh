#!/usr/bin/env bash
# Reproduces the CPU performance tables in docs/benchmarks.md (TensorFlow backend): every
# registered model, the zoo's training path against hand-written Keras, inference, the fraction
# of matmul peak, and plain PyTorch (in its own process) for LeNet-5 and vgg_small
# (benchmarks/bench_peers.py: `zoo bench` with the peers timed beside the zoo).
# Each timed repeat is about 5 s of work (zoo/bench/run.py: TRAIN_FLOPS_PER_REPEAT); the
# 224x224 VGGs run batch 4 and only 2 repeats: on 2 cores one step takes seconds. On a shared machine, run it as `chrt -r 10 benchmarks/bench_cpu.sh` (root) and
# say so in NOTE: other jobs' load otherwise scatters the wall-clock repeats.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=benchmarks/results
NOTE=${NOTE:-}
python3 benchmarks/bench_peers.py lenet5 lenet5_modern vgg_small alexnet alexnet_torchvision --no-torch --json "$OUT/cpu-small.json" \
    --note "$NOTE"
for model in lenet5 vgg_small; do
    python3 benchmarks/bench_peers.py "$model" --repeats 4 --json "$OUT/cpu-torch-$model.json" --note "$NOTE"
done
python3 benchmarks/bench_peers.py lenet5 --augment --repeats 3 --steps 200 --json "$OUT/cpu-augment-lenet5.json" \
    --note "$NOTE"
python3 benchmarks/bench_peers.py vgg_small --augment --repeats 3 --steps 20 --json "$OUT/cpu-augment-vgg_small.json" \
    --note "$NOTE"
for model in vgg11 vgg13 vgg16 vgg19; do
    python3 benchmarks/bench_peers.py "$model" --repeats 2 --no-torch --json "$OUT/cpu-224-$model.json" --note "$NOTE"
done
