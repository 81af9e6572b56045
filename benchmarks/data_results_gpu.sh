#!/usr/bin/env bash
# The real-data results (docs/data.md) on a lent GPU machine (JAX with CUDA, no TensorFlow, no
# internet): import the genuine MNIST and Fashion-MNIST files with their checksums verified,
# then train four recipes of issue 13 with seeds 0, 1, 2, all twelve runs at once (small
# models leave the GPU mostly idle, so they share it). Keras travels as wheels.
#   DATA: folder with mnist/ and fashion/ (the official IDX files) and wheels/ (keras, namex,
#   optree for cp312). Results: $OUT/results.txt, $OUT/runs.tgz (config, history, metrics).
set -uo pipefail
cd "$(dirname "$0")/.."
DATA="${DATA:-saved_models/device}"
OUT="${OUT:-/tmp/data-results}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$DATA"/wheels/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore
export ZOO_HOME=/tmp/zoo-home XLA_PYTHON_CLIENT_PREALLOCATE=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/results.txt"
python3 -c 'import jax, keras; print("jax", jax.__version__, "keras", keras.__version__)' | tee -a "$OUT/results.txt"
python3 -m zoo data import mnist "$DATA/mnist" | tee -a "$OUT/results.txt" || exit 1
python3 -m zoo data import fashion_mnist "$DATA/fashion" | tee -a "$OUT/results.txt" || exit 1

declare -A RECIPES=(
    [lenet5-mnist]="lenet5 --dataset mnist --epochs 15 --batch-size 64 --recipe schedule:kind=cosine"
    [lenet5-augment-mnist]="lenet5 --dataset mnist --epochs 20 --batch-size 128 --recipe augment:flip=none,fill=constant --recipe schedule:kind=cosine"
    [lenet5_modern-augment-mnist]="lenet5_modern --dataset mnist --epochs 20 --batch-size 128 --recipe augment:flip=none,fill=constant --recipe schedule:kind=cosine"
    [vgg_small-bn-augment-fashion]="vgg_small --dataset fashion_mnist --input-shape 32,32,1 --epochs 15 --batch-size 128 --recipe batchnorm --recipe augment:flip=horizontal,fill=constant,rotation=0.0 --recipe schedule:kind=cosine"
)
KEYS="${ONLY:-${!RECIPES[*]}}"  # ONLY="key ..." runs a selection
for key in $KEYS; do
    for seed in 0 1 2; do
        timeout "${RUN_LIMIT_S:-480}" python3 -m zoo train ${RECIPES[$key]} --seed $seed \
            --out "/tmp/runs/$key-s$seed" > "/tmp/runs-$key-s$seed.log" 2>&1 &
    done
done
wait
for key in $KEYS; do
    echo "$key: zoo train ${RECIPES[$key]} --seed S" | tee -a "$OUT/results.txt"
    for seed in 0 1 2; do
        echo "  seed $seed: $(tail -n 2 "/tmp/runs-$key-s$seed.log" | tr '\r\n' '\n\n' | grep -v '━' | tr '\n' ' ')" | tee -a "$OUT/results.txt"
    done
done
tar czf "$OUT/runs.tgz" --exclude='*.keras' --exclude=backup --exclude=logs -C /tmp runs \
    $(cd /tmp && ls runs-*.log)
