"""LeNet-5 (LeCun et al., 1998): two conv/pool stages and three fully connected layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.core.registry import Variant, register_model
from zoo.models.layers import (
    check_rate,
    conv_norm_act,
    functional_model,
    head,
    model_input,
    per_layer,
    pool2d,
    spatial_dropout,
)
from zoo.weights.sources import zoo_trained

if TYPE_CHECKING:
    import keras

PAPER = ("LeCun, Bottou, Bengio, Haffner. Gradient-based learning applied to document "
         "recognition. 1998")

# Kernel sizes and feature-map counts are what the lecture says to search on digits.
SEARCH_SPACE = {
    "kernel_sizes": [3, 5, 7],
    "filters": [4, 8, 16, 32, 64],
    "activation": ["tanh", "relu"],
    "pool": ["avg", "max"],
}

# The two LeNet-5s have the same shapes (61,706 parameters: C1 156 + C3 2,416 + C5 48,120 +
# F6 10,164 + output 850); they differ in activation and pooling only.
VARIANTS = (
    Variant("lenet5", "LeNet-5, classic: tanh and average pooling, 6@5x5, 16@5x5, 120, 84",
            num_params=61_706, macs=416_520, defaults={"activation": "tanh", "pool": "avg"}),
    Variant("lenet5_modern", "LeNet-5, modern: ReLU and max pooling, same shapes as the classic",
            num_params=61_706, macs=416_520, defaults={"activation": "relu", "pool": "max"}),
)

# The zoo's own weights, shipped inside the package (zoo/weights/packaged/). Test accuracy
# measured on MNIST's official 10,000 test images with the packaged file.
WEIGHTS = (
    zoo_trained(
        "lenet5", "mnist", description="LeNet-5 (classic) trained by the zoo on MNIST, digits 0-9",
        sha256="7bfffbe2da0f9e4acd618f1496c9c4ad4bd97f6b567f7b862262f2869c8e3eeb", size=275_656,
        test_accuracy=0.9900, data_license="MNIST: CC BY-SA 3.0",
        command=("zoo train lenet5 --dataset mnist --epochs 15 --batch-size 64 --seed 0 "
                 "--recipe augment:translate=0.1,rotation=0.03,zoom=0.1,brightness=0,"
                 "contrast=0 --recipe schedule:kind=cosine"),
        notes="28x28 digits zero-padded to 32x32 as the zoo's pipeline does"),
)


@register_model(family="lenet", paper=PAPER, variants=VARIANTS,
                default_search_space=SEARCH_SPACE, weights=WEIGHTS)
def lenet(
    name: str = "lenet",
    /,
    *,
    input_shape=(32, 32, 1),
    num_classes: int = 10,
    filters=(6, 16),
    kernel_sizes=5,
    strides=1,
    padding: str = "valid",
    pool: str = "avg",
    pool_size: int = 2,
    pool_strides: int = 2,
    dense_units=(120, 84),
    normalization: str = "none",
    dropout: float = 0.0,
    conv_dropout: float = 0.0,
    activation: str = "tanh",
    weight_decay: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str = "softmax",
) -> "keras.Model":
    """LeNet-5 at 32x32x1: conv-pool stages (one per entry of ``filters``), then dense layers.

    Args:
        name: the model's name (the registered variant's).
        input_shape: (height, width, channels) of the input images.
        num_classes: units of the ``predictions`` layer.
        filters: feature maps per conv stage; the number of entries is the number of stages.
        kernel_sizes: one kernel size, or one per stage.
        strides: one conv stride, or one per stage.
        padding: 'valid' or 'same' for every conv.
        pool: 'avg' or 'max' after each conv.
        pool_size: the pooling window.
        pool_strides: the pooling stride.
        dense_units: units of each hidden dense layer (``fc1``, ``fc2``, ...).
        normalization: none/batch/layer/instance/group (conv -> norm -> activation).
        dropout: rate after each hidden dense layer.
        conv_dropout: spatial dropout rate after each pool.
        activation: of every conv and hidden dense layer.
        weight_decay: L2 factor on every kernel.
        include_top: False returns the feature maps (for transfer learning).
        pooling: without the top, None, 'avg' or 'max' global pooling.
        classifier_activation: of the ``predictions`` layer.
    """
    check_rate("dropout", dropout)
    check_rate("conv_dropout", conv_dropout)
    # One conv/pool stage per entry of `filters`: depth is a hyperparameter like the widths.
    stages = 2 if isinstance(filters, int) else len(filters)
    filters = per_layer(filters, stages, "filters")
    kernel_sizes = per_layer(kernel_sizes, stages, "kernel_sizes")
    strides = per_layer(strides, stages, "strides")
    inputs = model_input(input_shape, name)
    x = inputs
    for i, (f, k, s) in enumerate(zip(filters, kernel_sizes, strides), start=1):
        x = conv_norm_act(
            x, filters=f, kernel_size=k, stride=s, padding=padding, normalization=normalization,
            activation=activation, weight_decay=weight_decay, name=f"conv{i}", model=name,
        )
        x = pool2d(x, kind=pool, size=pool_size, stride=pool_strides, name=f"pool{i}", model=name)
        x = spatial_dropout(x, conv_dropout, f"pool{i}_dropout")
    x = head(x, include_top=include_top, pooling=pooling, dense_units=dense_units,
             num_classes=num_classes, activation=activation, normalization=normalization,
             dropout=dropout, weight_decay=weight_decay,
             classifier_activation=classifier_activation)
    return functional_model(inputs, x, name)
