#!/usr/bin/env bash
# Prepare what benchmarks/gpu_check.sh needs on a GPU machine that has JAX and PyTorch but no
# Keras, no keras-tuner and no internet: their wheels in .whl/ and the official MNIST and
# Fashion-MNIST IDX files (.gz, as their authors publish them; checksums are verified again by
# `zoo data import` there) in saved_models/device/. Both folders are git-ignored and travel with
# a device call's `carry`. Needs the package registry here (pip download), nothing else.
#   bash benchmarks/gpu_prepare.sh MNIST_DIR FASHION_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: gpu_prepare.sh MNIST_DIR FASHION_DIR (the four IDX files each)" >&2; exit 2; }
mkdir -p .whl saved_models/device/mnist saved_models/device/fashion
# The GPU image has Python 3.12 and every other dependency (grpcio, protobuf, h5py, ml-dtypes,
# rich, numpy); keras 3.15.1 and keras-tuner 1.4.8 are the versions the zoo is tested with.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    keras==3.15.1 namex==0.1.0 optree==0.20.0 keras-tuner==1.4.8 kt-legacy==1.0.5
for pair in "mnist:$1" "fashion:$2"; do
    name=${pair%%:*} source=${pair#*:}
    for file in "$source"/*idx*-ubyte*; do
        case $file in
            *.gz) cp "$file" "saved_models/device/$name/" ;;
            *) gzip -c "$file" > "saved_models/device/$name/$(basename "$file").gz" ;;
        esac
    done
done
du -sh .whl saved_models/device
