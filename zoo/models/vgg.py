"""VGG (Simonyan & Zisserman, 2014): configurations A, B, D, E and a small VGG for 32x32."""

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

PAPER = ("Simonyan, Zisserman. Very deep convolutional networks for large-scale image "
         "recognition. ICLR 2015")

# Convolutions per block for the paper's configurations; widths are 64-128-256-512-512.
DEPTHS = {
    "vgg11": (1, 1, 2, 2, 2),  # A
    "vgg13": (2, 2, 2, 2, 2),  # B
    "vgg16": (2, 2, 3, 3, 3),  # D
    "vgg19": (2, 2, 4, 4, 4),  # E
}
IMAGENET_WIDTHS = (64, 128, 256, 512, 512)

VGG_SEARCH_SPACE = {
    "filters": [16, 32, 64, 128, 256, 512],
    "kernel_sizes": [3, 5],
}
VGG_SMALL_SEARCH_SPACE = {
    "filters": [8, 16, 32, 64, 128, 256],
    "depths": [1, 2, 3],
    "kernel_sizes": [3, 5],
    "dropout": [0.0, 0.25, 0.5],
}


def _create_vgg(
    *,
    name: str,
    input_shape,
    num_classes,
    filters,
    depths,
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
    """Blocks of ``depths[b]`` convs of width ``filters[b]``, each block ending in a pool."""
    check_rate("dropout", dropout)
    check_rate("conv_dropout", conv_dropout)
    # The number of blocks comes from whichever of depths/filters is given per block.
    per_block = depths if not isinstance(depths, int) else filters
    blocks = 1 if isinstance(per_block, int) else len(per_block)
    depths = per_layer(depths, blocks, "depths")
    filters = per_layer(filters, blocks, "filters")
    kernel_sizes = per_layer(kernel_sizes, blocks, "kernel_sizes")
    strides = per_layer(strides, blocks, "strides")
    inputs = model_input(input_shape, name)
    x = inputs
    for b, (depth, width, k, s) in enumerate(zip(depths, filters, kernel_sizes, strides), 1):
        for c in range(1, depth + 1):
            x = conv_norm_act(
                x, filters=width, kernel_size=k, stride=s if c == 1 else 1, padding=padding,
                normalization=normalization, activation=activation, weight_decay=weight_decay,
                name=f"block{b}_conv{c}", model=name,
            )
        x = pool2d(x, kind=pool, size=pool_size, stride=pool_strides, name=f"block{b}_pool",
                   model=name)
        x = spatial_dropout(x, conv_dropout, f"block{b}_dropout")
    if include_top:
        x = flatten(x)
        for j, units in enumerate(dense_units, start=1):
            x = dense_block(x, units=units, activation=activation, normalization=normalization,
                            dropout=dropout, weight_decay=weight_decay, name=f"fc{j}")
        x = classifier(x, num_classes=num_classes, activation=classifier_activation,
                       weight_decay=weight_decay)
    else:
        x = global_pool(x, pooling)
    return functional_model(inputs, x, name)


_IMAGENET_DOC = """VGG configuration {letter} at 224x224x3: blocks of {depths} 3x3 convs.

    ``filters``, ``depths``, ``kernel_sizes`` and ``strides`` take one value per block (or one
    for all); layer names follow keras.applications (``block1_conv1``, ``fc1``, ``predictions``)
    so its weights and fine-tuning code line up. ``dropout`` follows each hidden dense layer as
    in the paper; ``include_top=False`` with ``pooling`` makes a feature extractor.
    """


def _register_imagenet_vgg(name: str, letter: str, num_params: int, macs: int):
    depths_default = DEPTHS[name]

    def builder(
        *,
        input_shape=(224, 224, 3),
        num_classes: int = 1000,
        filters=IMAGENET_WIDTHS,
        depths=depths_default,
        kernel_sizes=3,
        strides=1,
        padding: str = "same",
        pool: str = "max",
        pool_size: int = 2,
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
        hparams = dict(locals())
        hparams.pop("name", None)  # the enclosing variable shows up in locals(); not an hparam
        return _create_vgg(name=name, **hparams)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _IMAGENET_DOC.format(letter=letter, depths=depths_default)
    return register_model(
        family="vgg",
        input_shape=(224, 224, 3),
        num_classes=1000,
        paper=PAPER,
        description=f"VGG configuration {letter}: {sum(depths_default)} conv + 3 dense layers",
        num_params=num_params,
        macs=macs,
        default_search_space=VGG_SEARCH_SPACE,
    )(builder)


vgg11 = _register_imagenet_vgg("vgg11", "A", 132_863_336, 7_609_090_048)
vgg13 = _register_imagenet_vgg("vgg13", "B", 133_047_848, 11_308_466_176)
vgg16 = _register_imagenet_vgg("vgg16", "D", 138_357_544, 15_470_264_320)
vgg19 = _register_imagenet_vgg("vgg19", "E", 143_667_240, 19_632_062_464)


@register_model(
    family="vgg",
    input_shape=(32, 32, 3),
    num_classes=10,
    paper=PAPER,
    description="Small VGG for 32x32 images: 3 blocks of 2 3x3 convs (32-64-128), 128-unit fc",
    num_params=550_570,
    macs=38_896_896,
    default_search_space=VGG_SMALL_SEARCH_SPACE,
)
def vgg_small(
    *,
    input_shape=(32, 32, 3),
    num_classes: int = 10,
    filters=(32, 64, 128),
    depths=(2, 2, 2),
    kernel_sizes=3,
    strides=1,
    padding: str = "same",
    pool: str = "max",
    pool_size: int = 2,
    pool_strides: int = 2,
    dense_units=(128,),
    normalization: str = "none",
    dropout: float = 0.5,
    conv_dropout: float = 0.0,
    activation: str = "relu",
    weight_decay: float = 0.0,
    include_top: bool = True,
    pooling: str | None = None,
    classifier_activation: str = "softmax",
) -> "keras.Model":
    """A VGG-style net for small images: ``len(depths)`` blocks of ``depths[b]`` convs of width
    ``filters[b]``, each followed by 2x2 max pooling, then ``dense_units`` and the classifier.
    Block count, depth and width are hyperparameters (the tuner searches them)."""
    return _create_vgg(name="vgg_small", **locals())


