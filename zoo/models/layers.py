"""Building blocks shared by every family: conv -> norm -> activation, pooling, the head.

Every window layer's geometry is checked (zoo.core.geometry) before the layer is created, so an
impossible configuration fails with a message that names the layer and the fix.

Keras is imported inside the functions, not at module level: importing it takes seconds, and
`zoo list` / `zoo --help` read the registry (which imports the family modules) without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zoo.core.geometry import check_window

if TYPE_CHECKING:
    import keras

NORMALIZATIONS = ("none", "batch", "layer", "instance", "group")
POOLS = ("max", "avg")
GLOBAL_POOLINGS = (None, "avg", "max")


def per_layer(value: Any, count: int, name: str) -> list:
    """Broadcast a scalar hyperparameter to ``count`` layers, or check a sequence's length."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value] * count
    if len(value) != count:
        raise ValueError(f"{name} needs {count} values (one per layer/block), got {list(value)}")
    return list(value)


def check_choice(name: str, value: Any, choices: Sequence) -> None:
    """Raise a clear error when a categorical hyperparameter is out of its choices."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_rate(name: str, value: float) -> None:
    """Dropout-like rates live in [0, 1)."""
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def _regularizer(weight_decay: float):
    import keras

    return keras.regularizers.L2(weight_decay) if weight_decay else None


def normalization_layer(kind: str, channels: int, name: str, *, spatial: bool = True):
    """The normalization layer for ``kind`` (Wu & He 2018's four), or None for 'none'.

    Layer norm on feature maps normalizes over (H, W, C) with per-channel affine parameters,
    which is GroupNormalization with one group; instance norm is one group per channel.
    """
    from keras import layers

    check_choice("normalization", kind, NORMALIZATIONS)
    if kind == "none":
        return None
    if kind == "batch":
        # Keras' default momentum (0.99) leaves the moving statistics ~30% at their initial
        # values after 120 updates, so short runs evaluate badly in inference mode (measured
        # with zoo compare); 0.9 is PyTorch's default and settles within a few dozen updates.
        return layers.BatchNormalization(momentum=0.9, name=name)
    if not spatial:  # a dense layer's features: layer norm is the only one that makes sense
        return layers.LayerNormalization(name=name)
    groups = {"layer": 1, "instance": channels, "group": math.gcd(channels, 32)}[kind]
    return layers.GroupNormalization(groups=groups, name=name)


def conv_norm_act(
    x,
    *,
    filters: int,
    kernel_size: int,
    stride: int,
    padding: str,
    normalization: str,
    activation: str,
    weight_decay: float,
    name: str,
    model: str,
):
    """Conv2D -> normalization -> activation, named ``name``, ``name_norm``, ``name_act``."""
    from keras import layers

    check_window(name, x.shape[1:3], (kernel_size, kernel_size), (stride, stride), padding,
                 model=model)
    norm = normalization_layer(normalization, filters, f"{name}_norm")
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        padding=padding,
        # A following normalization re-centres the output, so a bias would be redundant.
        use_bias=norm is None,
        activation=activation if norm is None else None,
        kernel_regularizer=_regularizer(weight_decay),
        name=name,
    )(x)
    if norm is not None:
        x = norm(x)
        x = layers.Activation(activation, name=f"{name}_act")(x)
    return x


def pool2d(x, *, kind: str, size: int, stride: int, name: str, model: str, padding="valid"):
    """Max or average pooling with its geometry checked first."""
    from keras import layers

    check_choice("pool", kind, POOLS)
    check_window(name, x.shape[1:3], (size, size), (stride, stride), padding, model=model)
    layer = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
    return layer(pool_size=size, strides=stride, padding=padding, name=name)(x)


def dense_block(x, *, units: int, activation: str, normalization: str, dropout: float,
                weight_decay: float, name: str):
    """Dense -> (layer/batch norm) -> activation -> dropout, named ``name``."""
    from keras import layers

    norm = None
    if normalization in ("batch", "layer"):
        norm = normalization_layer(normalization, units, f"{name}_norm", spatial=False)
    x = layers.Dense(
        units,
        use_bias=norm is None,
        activation=activation if norm is None else None,
        kernel_regularizer=_regularizer(weight_decay),
        name=name,
    )(x)
    if norm is not None:
        x = norm(x)
        x = layers.Activation(activation, name=f"{name}_act")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def classifier(x, *, num_classes: int, activation: str, weight_decay: float):
    """The final Dense layer, always named 'predictions' so heads can be found and replaced.

    It computes in float32 whatever the global dtype policy: under mixed precision the
    softmax and the loss on its output stay float32 (zoo.training.dtype_policy), at the cost of one
    small float32 matrix product. Under the default float32 policy nothing changes.
    """
    from keras import layers

    return layers.Dense(
        num_classes,
        activation=activation,
        kernel_regularizer=_regularizer(weight_decay),
        dtype="float32",
        name="predictions",
    )(x)


def global_pool(x, pooling: str | None):
    """Global average/max pooling for feature-extractor use, or the map unchanged."""
    from keras import layers

    check_choice("pooling", pooling, GLOBAL_POOLINGS)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def head(
    x,
    *,
    include_top: bool,
    pooling: str | None,
    dense_units: Sequence[int],
    num_classes: int,
    activation: str,
    normalization: str,
    dropout: float,
    weight_decay: float,
    classifier_activation: str,
):
    """The classifier on top of the feature maps, or the feature extractor's output.

    With ``include_top``: ``flatten``, one ``dense_block`` per entry of ``dense_units``
    (``fc1``, ``fc2``, ...) and ``predictions``, as keras.applications names them. Without it:
    the feature maps, globally pooled when ``pooling`` is 'avg' or 'max'.
    """
    if not include_top:
        return global_pool(x, pooling)
    x = flatten(x)
    for j, units in enumerate(dense_units, start=1):
        x = dense_block(x, units=units, activation=activation, normalization=normalization,
                        dropout=dropout, weight_decay=weight_decay, name=f"fc{j}")
    return classifier(x, num_classes=num_classes, activation=classifier_activation,
                      weight_decay=weight_decay)


def model_input(input_shape: Sequence[int], model: str):
    """A named Input after checking the shape is (H, W, C) with positive sizes."""
    shape = tuple(input_shape)
    if len(shape) != 3 or any(d is not None and int(d) < 1 for d in shape):
        raise ValueError(
            f"{model}: input_shape must be (height, width, channels) with positive sizes, "
            f"got {shape}"
        )
    import keras

    return keras.Input(shape=shape, name="image")


def zero_pad(x, pixels: int, name: str):
    """Zero-pad the map by ``pixels`` on every side (torch's explicit conv padding)."""
    from keras import layers

    if pixels < 0:
        raise ValueError(f"{name}: padding must be 'valid', 'same' or pixels >= 0, got {pixels}")
    return layers.ZeroPadding2D(pixels, name=name)(x) if pixels else x


def spatial_dropout(x, rate: float, name: str):
    """SpatialDropout2D (drops whole feature maps) when ``rate`` > 0, else the map unchanged."""
    from keras import layers

    return layers.SpatialDropout2D(rate, name=name)(x) if rate else x


def flatten(x):
    """Flatten feature maps for the dense layers; named 'flatten' as in keras.applications."""
    from keras import layers

    return layers.Flatten(name="flatten")(x)


def functional_model(inputs, outputs, name: str) -> "keras.Model":
    """Wrap the graph in a keras.Model (functional API)."""
    import keras

    return keras.Model(inputs, outputs, name=name)
