"""The input an entry's weights expect, as Keras layers or applied to arrays, and its classes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoo.weights.entry import Preprocessing, WeightsEntry

IMAGENET_CLASSES_FILE = Path(__file__).parent / "imagenet_classes.json"


def preprocess_array(images: np.ndarray, preprocessing: Preprocessing) -> np.ndarray:
    """uint8 (N, H, W, C) images -> float32 input as the weights were trained on."""
    x = images.astype(np.float32)
    if preprocessing.kind == "scale":
        return x / 255.0
    if preprocessing.kind == "mean_std":
        return (x / 255.0 - np.float32(preprocessing.mean)) / np.float32(preprocessing.std)
    return x[..., ::-1] - np.float32(preprocessing.mean)  # caffe: BGR, 0..255 minus the mean


def preprocessing_layers(preprocessing: Preprocessing, name: str = "pretrained") -> list[Any]:
    """Layers that turn the zoo pipelines' float [0, 1] images into the weights' input.

    Fixed layers only (Rescaling, Normalization, a frozen 1x1 conv), no Lambda, so models that
    contain them save and load safely.
    """
    import keras

    if preprocessing.kind == "scale":
        return []
    if preprocessing.kind == "mean_std":
        return [keras.layers.Normalization(mean=list(preprocessing.mean),
                                           variance=list(np.square(preprocessing.std)),
                                           name=f"{name}_normalize")]
    # caffe: 255 * x, RGB -> BGR, minus the mean, as one frozen 1x1 convolution.
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        kernel[0, 0, in_channel, out_channel] = 255.0
    return [keras.layers.Conv2D(
        3, 1, name=f"{name}_to_caffe_bgr", trainable=False,
        kernel_initializer=keras.initializers.Constant(kernel),
        bias_initializer=keras.initializers.Constant([-m for m in preprocessing.mean]))]


def class_names(entry: WeightsEntry) -> list[str] | None:
    """The names of the entry's output classes, or None when it has no classifier."""
    if not entry.classifier or entry.classes is None:
        return None
    if entry.classes == "imagenet":
        return list(json.loads(IMAGENET_CLASSES_FILE.read_text())["classes"])
    from zoo.data.catalog import get_spec

    return list(get_spec(entry.classes).class_names)
