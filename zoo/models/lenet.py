"""LeNet-5 (LeCun et al., 1998): two conv/pool stages and three fully connected layers."""

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

PAPER = "LeCun, Bottou, Bengio, Haffner. Gradient-based learning applied to document recognition. 1998"

# Kernel sizes and feature-map counts are what the lecture says to search on digits.
SEARCH_SPACE = {
    "kernel_sizes": [3, 5, 7],
    "filters": [4, 8, 16, 32, 64],
    "activation": ["tanh", "relu"],
    "pool": ["avg", "max"],
}


def _create_lenet(
    *,
    name: str,
    input_shape,
    num_classes,
    filters,
    kernel_sizes,
    strides,
    padding,
    pool,
    pool_size,
    pool_strides,
    dense_units,
    normalization,
    dropout,
    conv_dropout,
    activation,
    weight_decay,
    include_top,
    pooling,
    classifier_activation,
) -> "keras.Model":
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
    if include_top:
        x = flatten(x)
        for j, units in enumerate(per_layer(dense_units, len(dense_units), "dense_units"), 1):
            x = dense_block(x, units=units, activation=activation, normalization=normalization,
                            dropout=dropout, weight_decay=weight_decay, name=f"fc{j}")
        x = classifier(x, num_classes=num_classes, activation=classifier_activation,
                       weight_decay=weight_decay)
    else:
        x = global_pool(x, pooling)
    return functional_model(inputs, x, name)


@register_model(
    family="lenet",
    input_shape=(32, 32, 1),
    num_classes=10,
    paper=PAPER,
    description="LeNet-5, classic: tanh and average pooling, 6@5x5, 16@5x5, 120, 84",
    num_params=61_706,
    macs=416_520,
    default_search_space=SEARCH_SPACE,
)
def lenet5(
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

    ``kernel_sizes``/``strides`` take one value or one per conv layer; ``pool`` is 'avg' or
    'max'; ``normalization`` is none/batch/layer/instance/group (conv -> norm -> activation);
    ``dropout`` applies after each hidden dense layer, ``conv_dropout`` (spatial) after each
    pool; ``include_top=False`` returns the feature maps (globally pooled if ``pooling``).
    """
    return _create_lenet(name="lenet5", **locals())


@register_model(
    family="lenet",
    input_shape=(32, 32, 1),
    num_classes=10,
    paper=PAPER,
    description="LeNet-5, modern: ReLU and max pooling, same shapes as the classic",
    num_params=61_706,
    macs=416_520,
    default_search_space=SEARCH_SPACE,
)
def lenet5_modern(
    *,
    input_shape=(32, 32, 1),
    num_classes: int = 10,
    filters=(6, 16),
    kernel_sizes=5,
    strides=1,
    padding: str = "valid",
    pool: str = "max",
    pool_size: int = 2,
    pool_strides: int = 2,
    dense_units=(120, 84),
    normalization: str = "none",
    dropout: float = 0.0,
    conv_dropout: float = 0.0,
    activation: str = "relu",
    weight_decay: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str = "softmax",
) -> "keras.Model":
    """LeNet-5 with ReLU and max pooling; hyperparameters as for ``lenet5``."""
    return _create_lenet(name="lenet5_modern", **locals())
