#!/usr/bin/env bash
# One prepared run on a lent GPU machine (JAX with CUDA, no TensorFlow, no internet):
# zoo bench (float32 and mixed bfloat16), the tune throughput benchmark, and the main job
# (zoo train lenet5) through the no-TensorFlow input path. Keras and keras-tuner travel as
# wheels in .whl/ (see .library device notes); results go to $OUT (or benchmarks/results).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
fi
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c 'import jax, keras, keras_tuner; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__, "keras-tuner", keras_tuner.__version__)'
    python3 -c 'import importlib.util as u; print("tensorflow installed:", u.find_spec("tensorflow") is not None)'
} 2>&1 | tee "$OUT/gpu-env.txt"
for policy in float32 mixed_bfloat16; do
    timeout 180 python3 -m zoo bench lenet5 vgg_small alexnet --batch-size 256 --steps 40 \
        --repeats 3 --inference-batch 256 --dtype-policy "$policy" \
        --json "$OUT/gpu-jax-$policy.json" --note "${NOTE:-}" 2>&1 | tail -25
done
timeout 100 python3 benchmarks/tune_throughput.py --trials 4 --epochs 3 \
    > "$OUT/gpu-tune-throughput.json" 2> "$OUT/gpu-tune-log.txt"
cat "$OUT/gpu-tune-throughput.json"
timeout 80 python3 -m zoo train lenet5 --out /tmp/gpu-lenet5 2>&1 | tail -4 | tee "$OUT/gpu-train-lenet5.txt"
