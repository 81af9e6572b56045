"""The zoo's models written out in plain ``torch.nn``: the PyTorch peers the benchmarks time.

Each model is an ``nn.Sequential`` whose children carry the names of the registry model's
Keras layers (``conv1``, ``pool1``, ``flatten``, ``fc1``, ``fc1_dropout``, ``predictions``),
with a conv's or dense layer's activation inside its block as Keras' ``activation=`` puts it
inside the layer. The tests compare the two layer by layer (parameters, output shapes) and
check that, with the Keras weights copied in, both compute the same outputs. The last layer
returns logits: ``CrossEntropyLoss`` applies the softmax the Keras models end with.

Variants are data (``LENETS``, ``ALEXNETS``, ``VGGS``), as in ``zoo/models/``; sizes after each
layer are worked out by hand, as a PyTorch user does (no ``LazyLinear``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from functools import partial
from typing import Any

# (filters per conv layer, activation, pool) of the two LeNet-5s.
LENETS = {"lenet5": ((6, 16), "tanh", "avg"), "lenet5_modern": ((6, 16), "relu", "max")}
# (filters, conv1's zero padding) of the single-tower AlexNets.
ALEXNETS = {"alexnet": ((96, 256, 384, 384, 256), 0),
            "alexnet_torchvision": ((64, 192, 384, 256, 256), 2)}
# ((convs, width) per block, hidden dense units) of the VGGs.
VGGS = {
    "vgg_small": (((2, 32), (2, 64), (2, 128)), (128,)),
    "vgg11": (((1, 64), (1, 128), (2, 256), (2, 512), (2, 512)), (4096, 4096)),
    "vgg13": (((2, 64), (2, 128), (2, 256), (2, 512), (2, 512)), (4096, 4096)),
    "vgg16": (((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), (4096, 4096)),
    "vgg19": (((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)), (4096, 4096)),
}


def _activation(name: str):
    from torch import nn

    return {"relu": lambda: nn.ReLU(inplace=True), "tanh": nn.Tanh}[name]()


class _Stack:
    """Named layers appended in order, tracking the feature map's size as Keras would."""

    def __init__(self, channels: int, height: int, width: int, normalization: str = "none"):
        if normalization not in ("none", "batch"):
            raise ValueError(f"normalization {normalization!r}: only none and batch are "
                             f"written here")
        self.batch_norm = normalization == "batch"
        self.layers: OrderedDict[str, Any] = OrderedDict()
        self.channels, self.size = channels, (height, width)
        self.features: int | None = None  # set once flattened

    def conv(self, name: str, filters: int, kernel: int, *, stride: int = 1,
             padding: str = "valid", activation: str = "relu") -> None:
        from torch import nn

        # Keras' 'same' at stride 1 with an odd kernel pads kernel // 2 on every side.
        pad = kernel // 2 if padding == "same" else 0
        if padding == "same" and (stride != 1 or kernel % 2 == 0):
            raise ValueError(f"{name}: only stride-1 odd-kernel 'same' convs are written here")
        # With batch norm as the zoo builds it (zoo.models.layers.conv_norm_act): conv without
        # bias -> norm -> activation, Keras' epsilon (1e-3) and the zoo's momentum (0.9,
        # which is PyTorch's 0.1).
        self.layers[name] = nn.Sequential(
            nn.Conv2d(self.channels, filters, kernel, stride=stride, padding=pad,
                      bias=not self.batch_norm),
            *([nn.BatchNorm2d(filters, eps=1e-3, momentum=0.1)] if self.batch_norm else []),
            _activation(activation))
        self.channels = filters
        self.size = tuple((s + 2 * pad - kernel) // stride + 1 for s in self.size)

    def zero_pad(self, name: str, pixels: int) -> None:
        from torch import nn

        self.layers[name] = nn.ZeroPad2d(pixels)
        self.size = tuple(s + 2 * pixels for s in self.size)

    def pool(self, name: str, kind: str, size: int, stride: int) -> None:
        from torch import nn

        self.layers[name] = (nn.MaxPool2d if kind == "max" else nn.AvgPool2d)(size, stride)
        self.size = tuple((s - size) // stride + 1 for s in self.size)

    def flatten(self) -> None:
        from torch import nn

        # NCHW flattens channel-major, Keras' NHWC channel-last: the same layer with fc1's
        # input rows in another order (the tests permute them when copying weights).
        self.layers["flatten"] = nn.Flatten()
        self.features = self.channels * self.size[0] * self.size[1]

    def dense(self, name: str, units: int, activation: str, dropout: float = 0.0) -> None:
        from torch import nn

        self.layers[name] = nn.Sequential(
            nn.Linear(self.features, units, bias=not self.batch_norm),
            *([nn.BatchNorm1d(units, eps=1e-3, momentum=0.1)] if self.batch_norm else []),
            _activation(activation))
        self.features = units
        if dropout:
            self.layers[f"{name}_dropout"] = nn.Dropout(dropout)

    def classifier(self, num_classes: int):
        """Append ``predictions`` (logits) and return the model."""
        from torch import nn

        self.layers["predictions"] = nn.Linear(self.features, num_classes)
        return nn.Sequential(self.layers)


def lenet(name: str, channels: int, height: int, width: int, num_classes: int):
    """LeNet-5: two 5x5 conv/pool stages, dense 120 and 84 (``LENETS[name]``)."""
    filters, activation, pool = LENETS[name]
    stack = _Stack(channels, height, width)
    for i, width_out in enumerate(filters, start=1):
        stack.conv(f"conv{i}", width_out, 5, activation=activation)
        stack.pool(f"pool{i}", pool, 2, 2)
    stack.flatten()
    for j, units in enumerate((120, 84), start=1):
        stack.dense(f"fc{j}", units, activation)
    return stack.classifier(num_classes)


def alexnet(name: str, channels: int, height: int, width: int, num_classes: int):
    """Single-tower AlexNet: 11x11/4, 5x5, three 3x3 convs, max pooling after conv1, conv2
    and conv5, two 4096-unit dense layers with dropout (``ALEXNETS[name]``)."""
    filters, first_pad = ALEXNETS[name]
    stack = _Stack(channels, height, width)
    if first_pad:
        stack.zero_pad("conv1_pad", first_pad)
    stack.conv("conv1", filters[0], 11, stride=4)
    stack.pool("pool1", "max", 3, 2)
    stack.conv("conv2", filters[1], 5, padding="same")
    stack.pool("pool2", "max", 3, 2)
    for i in (3, 4, 5):
        stack.conv(f"conv{i}", filters[i - 1], 3, padding="same")
    stack.pool("pool5", "max", 3, 2)
    stack.flatten()
    for j in (1, 2):
        stack.dense(f"fc{j}", 4096, "relu", dropout=0.5)
    return stack.classifier(num_classes)


def vgg(name: str, channels: int, height: int, width: int, num_classes: int, *,
        normalization: str = "none"):
    """VGG: blocks of 3x3 'same' convs, each block ending in 2x2 max pooling, then dense
    layers with dropout 0.5 (``VGGS[name]``); ``normalization="batch"`` as the zoo's
    batchnorm recipe builds it."""
    blocks, dense_units = VGGS[name]
    stack = _Stack(channels, height, width, normalization)
    for b, (convs, width_out) in enumerate(blocks, start=1):
        for c in range(1, convs + 1):
            stack.conv(f"block{b}_conv{c}", width_out, 3, padding="same")
        stack.pool(f"block{b}_pool", "max", 2, 2)
    stack.flatten()
    for j, units in enumerate(dense_units, start=1):
        stack.dense(f"fc{j}", units, "relu", dropout=0.5)
    return stack.classifier(num_classes)


# Model name -> builder(channels, height, width, num_classes) -> torch.nn.Sequential.
TORCH_PEERS: dict[str, Callable[..., Any]] = {
    name: partial(family, name)
    for table, family in ((LENETS, lenet), (ALEXNETS, alexnet), (VGGS, vgg)) for name in table
}


def build_torch_peer(name: str, input_shape, num_classes: int, *, normalization: str = "none"):
    """The PyTorch peer of zoo model ``name`` for an (height, width, channels) input;
    ``normalization="batch"`` (VGGs only) adds batch norm as the zoo's batchnorm recipe."""
    height, width, channels = input_shape
    if normalization == "none":
        return TORCH_PEERS[name](channels, height, width, num_classes)
    return TORCH_PEERS[name](channels, height, width, num_classes, normalization=normalization)
