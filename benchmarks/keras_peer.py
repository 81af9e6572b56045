"""The hand-written Keras peers: each zoo model typed out, as a user would without the zoo.

These are plain ``keras.Sequential`` stacks with the layer settings typed in, not built from the
registry, so benchmarks/bench_peers.py compares the zoo's training path with what a user would write
instead. Each builder takes only the input shape, the class count and optional leading layers
(a naive user puts data augmentation there, inside the model). The test suite checks that every
baseline has the same layers, output shapes and weights as its zoo model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras


def lenet5(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """LeNet-5 classic: tanh, average pooling, 6@5x5, 16@5x5, 120, 84."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=input_shape),
        *preprocessing,
        layers.Conv2D(6, 5, activation="tanh"),
        layers.AveragePooling2D(2),
        layers.Conv2D(16, 5, activation="tanh"),
        layers.AveragePooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="tanh"),
        layers.Dense(84, activation="tanh"),
        layers.Dense(num_classes, activation="softmax"),
    ])


def lenet5_modern(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """LeNet-5 with ReLU and max pooling."""
    import keras
    from keras import layers

    return keras.Sequential([
        keras.Input(shape=input_shape),
        *preprocessing,
        layers.Conv2D(6, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(num_classes, activation="softmax"),
    ])


def _alexnet(input_shape, num_classes, preprocessing, filters, first_pad) -> "keras.Model":
    """Single-tower AlexNet without local response normalization, as users write it."""
    import keras
    from keras import layers

    first = [layers.ZeroPadding2D(first_pad)] if first_pad else []
    return keras.Sequential([
        keras.Input(shape=input_shape),
        *preprocessing,
        *first,
        layers.Conv2D(filters[0], 11, strides=4, activation="relu"),
        layers.MaxPooling2D(3, strides=2),
        layers.Conv2D(filters[1], 5, padding="same", activation="relu"),
        layers.MaxPooling2D(3, strides=2),
        layers.Conv2D(filters[2], 3, padding="same", activation="relu"),
        layers.Conv2D(filters[3], 3, padding="same", activation="relu"),
        layers.Conv2D(filters[4], 3, padding="same", activation="relu"),
        layers.MaxPooling2D(3, strides=2),
        layers.Flatten(),
        layers.Dense(4096, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(4096, activation="relu"),
        layers.Dropout(0.5),
        layers.Dense(num_classes, activation="softmax"),
    ])


def alexnet(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """The paper's filter counts (96-256-384-384-256), no padding before conv1."""
    return _alexnet(input_shape, num_classes, preprocessing, (96, 256, 384, 384, 256), 0)


def alexnet_torchvision(input_shape, num_classes,
                        preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """torchvision's filter counts (64-192-384-256-256), conv1's input padded by 2 pixels."""
    return _alexnet(input_shape, num_classes, preprocessing, (64, 192, 384, 256, 256), 2)


def _vgg(input_shape, num_classes, preprocessing, blocks, dense_units) -> "keras.Model":
    """VGG as users write it: a loop over (convs, width) blocks, then dense layers."""
    import keras
    from keras import layers

    stack = [keras.Input(shape=input_shape), *preprocessing]
    for convs, width in blocks:
        stack += [layers.Conv2D(width, 3, padding="same", activation="relu")
                  for _ in range(convs)]
        stack.append(layers.MaxPooling2D(2))
    stack.append(layers.Flatten())
    for units in dense_units:
        stack += [layers.Dense(units, activation="relu"), layers.Dropout(0.5)]
    stack.append(layers.Dense(num_classes, activation="softmax"))
    return keras.Sequential(stack)


def vgg_small(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """Three blocks of two 3x3 convs (32-64-128), a 128-unit dense layer."""
    return _vgg(input_shape, num_classes, preprocessing, [(2, 32), (2, 64), (2, 128)], [128])


def vgg11(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """VGG configuration A."""
    return _vgg(input_shape, num_classes, preprocessing,
                [(1, 64), (1, 128), (2, 256), (2, 512), (2, 512)], [4096, 4096])


def vgg13(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """VGG configuration B."""
    return _vgg(input_shape, num_classes, preprocessing,
                [(2, 64), (2, 128), (2, 256), (2, 512), (2, 512)], [4096, 4096])


def vgg16(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """VGG configuration D."""
    return _vgg(input_shape, num_classes, preprocessing,
                [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)], [4096, 4096])


def vgg19(input_shape, num_classes, preprocessing: Sequence[Any] = ()) -> "keras.Model":
    """VGG configuration E."""
    return _vgg(input_shape, num_classes, preprocessing,
                [(2, 64), (2, 128), (4, 256), (4, 512), (4, 512)], [4096, 4096])


BASELINES: dict[str, Callable[..., "keras.Model"]] = {
    "lenet5": lenet5,
    "lenet5_modern": lenet5_modern,
    "alexnet": alexnet,
    "alexnet_torchvision": alexnet_torchvision,
    "vgg_small": vgg_small,
    "vgg11": vgg11,
    "vgg13": vgg13,
    "vgg16": vgg16,
    "vgg19": vgg19,
}


def build_baseline(name: str, input_shape, num_classes: int,
                   preprocessing: Sequence[Any] = ()) -> "keras.Model | None":
    """The hand-written peer of zoo model ``name``, or None when nobody wrote one."""
    builder = BASELINES.get(name)
    return builder(tuple(input_shape), num_classes, preprocessing) if builder else None
