"""AlexNet (Krizhevsky, Sutskever, Hinton, 2012), single-tower, at 227x227x3."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.models.layers import (
    check_rate,
    classifier,
    conv_norm_act,
    dense_block,
    flatten,
    functional_model,
    global_pool,
    model_input,
    per_layer,
    pool2d,
    spatial_dropout,
)
from zoo.registry import register_model

if TYPE_CHECKING:
    import keras

# Conv layers after which AlexNet max-pools (3x3, stride 2, overlapping).
POOL_AFTER = (1, 2, 5)


@register_model(
    family="alexnet",
    input_shape=(227, 227, 3),
    num_classes=1000,
    paper="Krizhevsky, Sutskever, Hinton. ImageNet classification with deep convolutional "
    "neural networks. NeurIPS 2012",
    description="AlexNet, one tower: 96@11x11/4, 256@5x5, 384, 384, 256@3x3, 4096-4096",
    num_params=62_378_344,
    macs=1_135_256_096,
    default_search_space={
        "kernel_sizes": [[11, 5, 3, 3, 3], [7, 5, 3, 3, 3], [5, 3, 3, 3, 3]],
        "filters": [64, 96, 128, 256, 384],
    },
)
def alexnet(
    *,
    input_shape=(227, 227, 3),
    num_classes: int = 1000,
    filters=(96, 256, 384, 384, 256),
    kernel_sizes=(11, 5, 3, 3, 3),
    strides=(4, 1, 1, 1, 1),
    padding=("valid", "same", "same", "same", "same"),
    pool: str = "max",
    pool_size: int = 3,
    pool_strides: int = 2,
    dense_units=(4096, 4096),
    normalization: str = "none",
    dropout: float = 0.5,
    conv_dropout: float = 0.0,
    activation: str = "relu",
    weight_decay: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str = "softmax",
) -> "keras.Model":
    """Single-tower AlexNet: five convs with max pooling after conv1, conv2 and conv5.

    Each of ``filters``, ``kernel_sizes``, ``strides``, ``padding`` takes one value or one per
    conv layer. The original's local response normalization is left out (Keras has no such
    layer and later work found it unnecessary); ``normalization`` offers the modern ones.
    """
    check_rate("dropout", dropout)
    check_rate("conv_dropout", conv_dropout)
    convs = 5
    filters = per_layer(filters, convs, "filters")
    kernel_sizes = per_layer(kernel_sizes, convs, "kernel_sizes")
    strides = per_layer(strides, convs, "strides")
    paddings = per_layer(padding, convs, "padding")
    inputs = model_input(input_shape, "alexnet")
    x = inputs
    for i, (f, k, s, p) in enumerate(zip(filters, kernel_sizes, strides, paddings), start=1):
        x = conv_norm_act(
            x, filters=f, kernel_size=k, stride=s, padding=p, normalization=normalization,
            activation=activation, weight_decay=weight_decay, name=f"conv{i}", model="alexnet",
        )
        if i in POOL_AFTER:
            x = pool2d(x, kind=pool, size=pool_size, stride=pool_strides, name=f"pool{i}",
                       model="alexnet")
            x = spatial_dropout(x, conv_dropout, f"pool{i}_dropout")
    if include_top:
        x = flatten(x)
        for j, units in enumerate(dense_units, start=1):
            x = dense_block(x, units=units, activation=activation, normalization=normalization,
                            dropout=dropout, weight_decay=weight_decay, name=f"fc{j}")
        x = classifier(x, num_classes=num_classes, activation=classifier_activation,
                       weight_decay=weight_decay)
    else:
        x = global_pool(x, pooling)
    return functional_model(inputs, x, "alexnet")
