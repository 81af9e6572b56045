"""Run by tests/test_distribution.py in processes of their own: data-parallel training of a
tiny lenet5 on a few hundred embedded digits. Prints one JSON line of findings.

    python -m tests.distributed_run devices OUT        (XLA_FLAGS=...device_count=2, JAX)
        one epoch on one device, then with --devices 2, into OUT/one and OUT/two; then the
        same with a tiny image folder streamed (OUT/streamed/...)
    python -m tests.distributed_run process OUT ID N ADDRESS [EPOCHS]
        process ID of N (JAX, coordinator at ADDRESS), one run folder OUT
    python -m tests.distributed_run mirrored OUT       (TensorFlow, the CPU split in two)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

TINY = {"filters": (4, 8), "dense_units": (16, 16)}
# 320 training images: a whole number of batches of 32 and of steps of 8 batches.
FRACTION = 0.2


def plan(out: Path, epochs: int = 1, **distribution):
    """The tiny run, with the data-parallel settings ``distribution`` (devices, ...)."""
    from zoo.training.train import TrainPlan

    return TrainPlan(model="lenet5", hparams=TINY, epochs=epochs, batch_size=32,
                     learning_rate=3e-3, seed=3, train_fraction=FRACTION, out=str(out),
                     **distribution)


def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(np.asarray(weight, np.float32)).tobytes())
    return digest.hexdigest()


def facts(result) -> dict:
    config = json.loads((result.run_dir / "config.json").read_text())
    return {"loss": result.history["loss"], "val_loss": result.history["val_loss"],
            "test": result.test_metrics, "distribution": config["distribution"],
            "train_size": config["train_size"], "weights": weights_digest(result.model),
            "described": result.distribution}


def devices(out: Path) -> dict:
    from zoo.training.train import train

    one = train(plan(out / "one"), verbose=0)
    two = train(plan(out / "two", devices="2"), verbose=0)
    return {"one": facts(one), "two": facts(two), "streamed": streamed(out / "streamed")}


def process(out: Path, process_id: int, count: int, address: str, epochs: int = 1) -> dict:
    from zoo.training.train import train

    result = train(plan(out, coordinator=address, num_processes=count,
                        process_id=process_id, coordinator_timeout=120, epochs=epochs),
                   verbose=0)
    return facts(result)


def streamed(out: Path) -> dict:
    """One epoch on a streamed folder of 47 images, on one device then two: 32 to train, 7 to
    validate and 7 to test (padded by one image of weight 0 on two devices)."""
    from PIL import Image

    from zoo.training.train import TrainPlan, train

    rng = np.random.default_rng(28)
    for number in range(47):
        folder = out / "folder" / "ab"[number % 2]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (12, 12), dtype=np.uint8)
        Image.fromarray(pixels, "L").save(folder / f"{number}.png")

    def run(name: str, **distribution):
        return facts(train(TrainPlan(
            model="lenet5", hparams=TINY, epochs=1, batch_size=8, learning_rate=3e-3, seed=3,
            dataset=str(out / "folder"), input_mode="stream", train_fraction=0.97,
            out=str(out / name),
            **distribution), verbose=0))

    return {"one": run("one"), "two": run("two", devices="2")}


def mirrored(out: Path) -> dict:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from zoo.training.train import train

    # The one-device reference is the JAX test's; here: it trains, and records the strategy.
    return {"two": facts(train(plan(out / "two", devices="2"), verbose=0))}


if __name__ == "__main__":
    mode, out, *rest = sys.argv[1:]
    if mode == "devices":
        found = devices(Path(out))
    elif mode == "process":
        found = process(Path(out), int(rest[0]), int(rest[1]), rest[2],
                        *(int(v) for v in rest[3:]))
    else:
        found = mirrored(Path(out))
    import keras

    found["backend"] = keras.backend.backend()
    print(json.dumps(found))
