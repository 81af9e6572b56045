"""Run by tests/test_device_input.py in a process with KERAS_BACKEND=jax: the input path of a
machine without TensorFlow (the GPU machines), uint8 batches cast on the device, against
feeding the same images as float32 from the host. Prints one JSON line of findings.

Run with TensorFlow hidden (the python_without_tensorflow fixture), so
``zoo.data.batches.has_tensorflow`` answers False, which is all that chooses the path.
"""

from __future__ import annotations

import json
import sys

import numpy as np

import zoo.data
import zoo.training.train
from zoo.data.batches import make_batches, to_float
from zoo.data.load import load_dataset
from zoo.training.train import TrainPlan, train

TINY = {"filters": (4, 8), "dense_units": (16, 16)}


def first_batch_facts() -> dict:
    """What the pipeline holds and hands to Keras for the embedded digits' first batch."""
    import jax

    data = load_dataset("digits")
    batches = make_batches(data.x_train, data.y_train, batch_size=64, shuffle=False, seed=0)
    images, _ = batches[0]
    return {
        "held_dtype": str(batches.x.dtype),
        "batch_type_is_jax_array": isinstance(images, jax.Array),
        "batch_dtype": str(images.dtype),
        "batch_device": str(next(iter(images.devices()))),
        "max_abs_diff_to_host_float": float(np.max(np.abs(
            np.asarray(images) - to_float(data.x_train[:64])))),
    }


def trained(recipes: list[str], *, float_feeding: bool) -> tuple[list[float], list[np.ndarray]]:
    """Losses per epoch and final weights of a tiny lenet5 on the digits (seed 3)."""
    from recipes import apply_recipes

    original = zoo.data.batches.make_batches

    def host_float(x, y, **kwargs):  # the old path: the whole set converted on the host
        return original(to_float(x), y, **kwargs)

    # The trainer's fit batches (train.make_batches) and its evaluation batches
    # (zoo.data.inputs.split_batches, which imports zoo.data.batches.make_batches on call).
    feed = host_float if float_feeding else original
    zoo.training.train.make_batches = zoo.data.batches.make_batches = feed
    try:
        plan = apply_recipes(TrainPlan(model="lenet5", hparams=TINY, epochs=2, batch_size=64,
                                       learning_rate=3e-3, seed=3), recipes)
        result = train(plan, verbose=0, write_run=False)
    finally:
        zoo.training.train.make_batches = zoo.data.batches.make_batches = original
    history = result.history
    return history["loss"] + history["val_loss"], [np.asarray(w) for w in
                                                   result.model.get_weights()]


def compare(recipes: list[str]) -> dict:
    """Device-cast uint8 feeding against host float32 feeding, same seed and recipes."""
    casts = []
    cast = zoo.data.batches.to_float_on_device

    def counting(images):
        casts.append(str(images.dtype))
        return cast(images)

    zoo.data.batches.to_float_on_device = counting
    try:
        device_losses, device_weights = trained(recipes, float_feeding=False)
        device_casts = len(casts)
        host_losses, host_weights = trained(recipes, float_feeding=True)
    finally:
        zoo.data.batches.to_float_on_device = cast
    return {
        "device_losses": device_losses, "host_losses": host_losses,
        "max_weight_diff": max(float(np.max(np.abs(a - b)))
                               for a, b in zip(device_weights, host_weights)),
        "device_casts": device_casts, "cast_input_dtypes": sorted(set(casts)),
        "host_casts": len(casts) - device_casts,
    }


def main() -> None:
    import keras

    print(json.dumps({
        "backend": keras.backend.backend(),
        "tensorflow_installed": zoo.data.batches.has_tensorflow(),
        "first_batch": first_batch_facts(),
        "plain": compare([]),
        "augment": compare(["augment:flip=none,fill=constant"]),
        "tensorflow_loaded": "tensorflow" in sys.modules,
    }))


if __name__ == "__main__":
    main()
