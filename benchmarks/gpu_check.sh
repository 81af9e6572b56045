#!/usr/bin/env bash
# Issue 16's GPU checks, prepared to run on a lent GPU machine (JAX and PyTorch with CUDA, no
# TensorFlow, no internet; 15 minutes of device time per session, at most 10 per command).
#
# Once, here:   bash benchmarks/gpu_prepare.sh MNIST_DIR FASHION_DIR
#               (keras/keras-tuner wheels into .whl/, the official IDX files into
#               saved_models/device/: 46 MB, under the 64 MiB a device call carries)
# Then two calls on one warm machine, each carrying [".whl", "saved_models/device"]:
#   bash benchmarks/gpu_check.sh versus              # timeout_s 330: at most 5 minutes
#   bash benchmarks/gpu_check.sh accuracy workers    # timeout_s 480: at most 7.5 minutes
#   bash benchmarks/gpu_check.sh train devices       # timeout_s 300: at most 4.5 minutes
# (`all` runs every part in one command where a call may last longer.)
#
# Parts, each capped by `timeout` so that a slow part cannot eat the next one's time, and each
# writing what it measured even when cut off:
#   versus    benchmarks/versus_torch.py: lenet5, vgg_small, alexnet, vgg16@224 in float32 and
#             mixed bf16, zoo vs its PyTorch peer fed from uint8 host arrays and device-resident,
#             8192^3 bf16 matmul peak (benchmarks/gpu_versus_torch.sh)          cap 270 s
#   accuracy  seconds from process start to 99.0 % (lenet5_modern, MNIST) and 92 % (vgg_small,
#             Fashion-MNIST), zoo vs PyTorch (benchmarks/time_to_accuracy.py)  cap 250 s
#   workers   trials per hour of the vgg_small Fashion-MNIST search with zoo tune --workers
#             N = 1, 2, 4, 8 (benchmarks/tune_workers.py)                      cap 190 s
#   train     the main job, zoo train lenet5 on the embedded digits            cap 60 s
#   devices   zoo train vgg_small on Fashion-MNIST, 2 epochs, on one device and with
#             --devices all (keras.distribution.DataParallel over every GPU), the same global
#             batch of 256: seconds, test accuracy and the distribution each run recorded
#             (DEVICES_ARGS adds arguments to both runs)                       cap 2 x 100 s
# VERSUS_ARGS, ACCURACY_ARGS and WORKERS_ARGS add arguments to a part's command (the last value
# of an option wins): tiny settings for the CPU check of this script.
# Results under $OUT (or benchmarks/results): gpu-*.json/.md, gpu-env.txt and gpu-logs.tgz
# (at most 8 files come back from a call, so the logs travel as one archive, rewritten after
# each part).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results}"
DATA="${DATA:-saved_models/device}"
LOGS=/tmp/gpu-check-logs
mkdir -p "$OUT" "$LOGS"
[ $# -gt 0 ] || { echo "usage: gpu_check.sh versus|accuracy|workers|train|devices|all ..." >&2; exit 2; }

# Keras and keras-tuner travel as wheels; a python3 that has them already (a CPU check) keeps its own.
if ! python3 -c "import keras, keras_tuner" 2>/dev/null && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH="/tmp/site:$PWD"
fi
export KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1
export ZOO_HOME=/tmp/zoo-home
{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c 'import jax, keras, keras_tuner, torch; print("jax", jax.__version__, jax.devices(), "keras", keras.__version__, "keras-tuner", keras_tuner.__version__, "torch", torch.__version__)'
    python3 -c 'import importlib.util as u; print("tensorflow installed:", u.find_spec("tensorflow") is not None)'
} 2>&1 | tee -a "$OUT/gpu-env.txt"

import_data() {  # importing twice is harmless: the second import finds the verified cache
    python3 -m zoo data import mnist "$DATA/mnist" >> "$LOGS/data-import.txt" 2>&1 &&
        python3 -m zoo data import fashion_mnist "$DATA/fashion" >> "$LOGS/data-import.txt" 2>&1 ||
        { tail -3 "$LOGS/data-import.txt"; return 1; }
}

run_part() {
    local part=$1 start=$SECONDS
    echo "== $part ($(date -u +%T))"
    case $part in
        versus)
            OUT="$OUT" TIMEOUT=270 bash benchmarks/gpu_versus_torch.sh --repeats 2 ${VERSUS_ARGS:-} \
                > "$LOGS/versus.txt" 2>&1
            tail -30 "$LOGS/versus.txt" ;;
        accuracy)
            import_data || return 1
            timeout 250 python3 benchmarks/time_to_accuracy.py \
                --json "$OUT/gpu-time-to-accuracy.json" --log-dir "$LOGS/tta" ${ACCURACY_ARGS:-} \
                > "$LOGS/accuracy.txt" 2>&1
            tail -15 "$LOGS/accuracy.txt" ;;
        workers)
            timeout 190 python3 benchmarks/tune_workers.py --workers 1 2 4 8 --timeout 40 \
                --fashion-idx "$DATA/fashion" --json "$OUT/gpu-tune-workers.json" ${WORKERS_ARGS:-} \
                > "$LOGS/workers.txt" 2>&1
            tail -20 "$LOGS/workers.txt" ;;
        train)
            timeout 60 python3 -m zoo train lenet5 --out /tmp/gpu-lenet5 > "$LOGS/train.txt" 2>&1
            grep -v '━' "$LOGS/train.txt" | tail -3 | tee "$OUT/gpu-train-lenet5.txt" ;;
        devices)
            import_data || return 1
            for devices in 1 all; do
                rm -rf "/tmp/gpu-devices-$devices"
                timeout 100 python3 -m zoo train vgg_small --dataset fashion_mnist --epochs 2 \
                    --batch-size 256 --devices "$devices" --out "/tmp/gpu-devices-$devices" \
                    ${DEVICES_ARGS:-} > "$LOGS/devices-$devices.txt" 2>&1
                grep -v '━' "$LOGS/devices-$devices.txt" | tail -3
            done
            python3 - "$OUT/gpu-devices.json" <<'PY'
import json, sys
from pathlib import Path
rows = []
for devices in ("1", "all"):
    run = Path(f"/tmp/gpu-devices-{devices}")
    if (run / "metrics.json").exists():
        config = json.loads((run / "config.json").read_text())
        rows.append({"devices": devices, **json.loads((run / "metrics.json").read_text()),
                     "distribution": config.get("distribution")})
Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))
print(json.dumps(rows))
PY
            ;;
        *) echo "unknown part $part: versus, accuracy, workers, train, devices or all" >&2; return 2 ;;
    esac
    local status=$?
    echo "== $part: exit $status after $((SECONDS - start)) s"
    tar czf "$OUT/gpu-logs.tgz" -C "$LOGS" . 2>/dev/null  # every part's logs so far
}

parts=("$@")
[ "$1" = all ] && parts=(versus accuracy workers train devices)
for part in "${parts[@]}"; do
    run_part "$part"
done
