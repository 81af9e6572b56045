"""Streaming input benchmarks (issue 27 item 5), each figure with the machine's load beside it.

    python benchmarks/stream_folder.py /tmp/zoo-stream 50000          # the folders, once
    nice -n 5 python benchmarks/stream_input.py rss /tmp/zoo-stream      # (a) peak RSS vs N
    nice -n 5 python benchmarks/stream_input.py decode /tmp/zoo-stream   # (b) input images/s
    nice -n 5 python benchmarks/stream_input.py train /tmp/zoo-stream    # (c), (d) training

(a) runs ``zoo train MODEL --epochs 1 --input-shape 64,64,3`` on n1000, n10000 and n50000 in a
fresh process each, streamed and in memory, and reports the child's peak RSS (getrusage).
(b) times one pass of the stream's batches (decode, resize, batch, float) against a plain loop
of the same decoder (``zoo.data.decode.read_fitted``) in one process per core, and reduced-scale
against full-size JPEG decode at 64x64 and 224x224. (c) times an epoch of training streamed and
in memory; (d) the streamed epoch against ``keras.utils.image_dataset_from_directory`` feeding a
plain ``model.fit``. Results are appended as JSON lines to benchmarks/results/stream_input.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "stream_input.jsonl"


def machine() -> dict:
    """The machine and its load now (1-minute load average, cores)."""
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "load_1min": round(os.getloadavg()[0], 2)}


def record(kind: str, **figures) -> dict:
    """Print and append one result line."""
    row = {"benchmark": kind, **figures, "machine": machine(),
           "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(json.dumps(row), flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


# ------------------------------------------------------------------------ (a) peak RSS


def run_rss(root: Path, model: str, sizes: list[int], paths: list[str]) -> None:
    for n in sizes:
        for path in paths:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "ZOO_HOME": f"/tmp/zoo-stream-home-{n}",
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
            # A fresh interpreter per figure: getrusage(RUSAGE_CHILDREN) keeps the largest
            # child's peak, so each measurement runs from its own small parent.
            code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True,"
                    " stdout=subprocess.DEVNULL); print(resource.getrusage("
                    "resource.RUSAGE_CHILDREN).ru_maxrss)")
            args = [sys.executable, "-m", "zoo", "train", model, "--dataset", str(root / f"n{n}"),
                    "--epochs", "1", "--input-shape", "64,64,3", f"--{path}",
                    "--batch-size", "128", "--out", f"/tmp/zoo-stream-runs/{model}-{n}-{path}-"
                    f"{time.time():.0f}"]
            load = os.getloadavg()[0]
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", code, *args], env=env,
                                  capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(args)} failed: {done.stderr[-2000:]}")
            rss_mib = int(done.stdout.split()[-1]) / 1024
            record("peak_rss", model=model, images=n, path=path, peak_rss_mib=round(rss_mib, 1),
                   seconds=round(seconds, 1), load_before=round(load, 2))


# ------------------------------------------------------------------------ (b) decode


def _decode_chunk(job: tuple[list[str], tuple[int, int, int], bool]) -> int:
    from zoo.data.decode import read_fitted

    files, shape, reduced = job
    for f in files:
        read_fitted(f, shape, reduced=reduced)
    return len(files)


def plain_loop(files: list[str], shape, reduced: bool, workers: int) -> float:
    """Images/s of read_fitted over ``files`` in ``workers`` processes (the machine's limit)."""
    chunks = [files[i::workers] for i in range(workers)]
    with Pool(workers) as pool:
        pool.map(_decode_chunk, [(c[:8], shape, reduced) for c in chunks])  # warm up
        start = time.perf_counter()
        done = sum(pool.map(_decode_chunk, [(c, shape, reduced) for c in chunks]))
    return done / (time.perf_counter() - start)


def stream_pass(folder: Path, shape, reduced: bool, batch: int = 128) -> float:
    """Images/s of one pass over the training split's batches of ImageStream."""
    import numpy as np

    from zoo.data.listing import list_image_folder
    from zoo.data.stream import ImageStream

    stream = ImageStream(list_image_folder(folder), shape, reduced_decode=reduced)
    for _ in zip(range(2), stream.batches("val", batch_size=batch)):
        pass  # builds the pipeline, warms the threads
    start = time.perf_counter()
    count = sum(len(np.asarray(x)) for x, _ in stream.batches("train", batch_size=batch))
    return count / (time.perf_counter() - start)


def run_decode(root: Path, size: int) -> None:
    from zoo.data.listing import list_image_folder
    from zoo.data.stream import input_workers

    folder = root / f"n{size}"
    files = list_image_folder(folder).split_files("train")
    workers = input_workers()
    for side in (64, 224):
        shape = (side, side, 3)
        full = plain_loop(files, shape, False, workers)
        reduced = plain_loop(files, shape, True, workers)
        record("decode_plain", images=len(files), target=side, workers=workers,
               full_decode_img_s=round(full, 1), reduced_decode_img_s=round(reduced, 1),
               reduced_gain=round(reduced / full, 2))
        streamed = stream_pass(folder, shape, True)
        record("decode_stream", images=len(files), target=side, stream_img_s=round(streamed, 1),
               plain_reduced_img_s=round(reduced, 1), ratio=round(streamed / reduced, 2))


# ------------------------------------------------------------------------ (c), (d) training


def epoch_seconds(model, data, epochs: int = 2, **fit) -> float:
    """Seconds of the last of ``epochs`` epochs of model.fit(data) (the first compiles)."""
    import keras

    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(data, epochs=epochs, verbose=0, callbacks=[Clock()], **fit)
    return times[-1]


def run_train(root: Path, size: int, model_name: str, side: int, batch: int,
              repeats: int = 2) -> None:
    import keras
    import tensorflow as tf

    from zoo.core.registry import build
    from zoo.data.folders import dataset_from_listing
    from zoo.data.listing import list_image_folder
    from zoo.data.stream import ImageStream
    from zoo.training.train import TrainPlan, compile_model, training_batches

    folder = root / f"n{size}"
    shape = (side, side, 3)
    listing = list_image_folder(folder)
    plan = TrainPlan(model=model_name, batch_size=batch, epochs=2)
    n_train = len(listing.splits["train"])

    def fresh():
        keras.utils.set_random_seed(0)
        model = build(model_name, input_shape=shape, num_classes=10)
        compile_model(model, plan, -(-n_train // batch))
        return model

    keras_ds = keras.utils.image_dataset_from_directory(
        folder, image_size=(side, side), batch_size=batch, seed=0, verbose=False)
    keras_ds = keras_ds.map(lambda x, y: (x / 255.0, y)).prefetch(tf.data.AUTOTUNE)
    n_all = len(listing.files)  # Keras' loader trains on every file (no split here)
    memory = dataset_from_listing(listing, shape)
    for repeat in range(repeats):  # interleaved, so that the machine's load hits all three
        streamed = n_train / epoch_seconds(
            fresh(), training_batches(plan, ImageStream(listing, shape))[0])
        in_memory = n_train / epoch_seconds(fresh(), training_batches(plan, memory)[0])
        keras_loader = n_all / epoch_seconds(fresh(), keras_ds)
        record("train_stream_vs_memory", model=model_name, images=n_train, input=side,
               batch=batch, repeat=repeat, stream_img_s=round(streamed, 1),
               memory_img_s=round(in_memory, 1), ratio=round(streamed / in_memory, 2))
        record("train_stream_vs_keras_loader", model=model_name, input=side, batch=batch,
               repeat=repeat, stream_img_s=round(streamed, 1),
               keras_img_s=round(keras_loader, 1), ratio=round(streamed / keras_loader, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["rss", "decode", "train"])
    parser.add_argument("root", type=Path)
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--paths", default="stream,in-memory")
    parser.add_argument("--images", type=int, default=1000,
                        help="folder n<images> for decode/train")
    parser.add_argument("--input", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if args.what == "rss":
        run_rss(args.root, args.model, [int(n) for n in args.sizes.split(",")],
                args.paths.split(","))
    elif args.what == "decode":
        run_decode(args.root, args.images)
    else:
        run_train(args.root, args.images, args.model, args.input, args.batch, args.repeats)


if __name__ == "__main__":
    main()
