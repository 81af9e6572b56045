"""A pretrained feature extractor from a weights entry: for transfer, embed and neighbors.

At the size the weights were made for, a file with a classifier keeps its hidden dense layers
(the features the classifier saw, as LeNet-5's 84); at any other size (ImageNet weights on
32x32 Fashion-MNIST) the model is built without its top and globally average-pooled, since
convolution weights do not depend on the input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from zoo.core.hyperparameter_types import coerce_booleans
from zoo.weights.entry import UNIT_SCALE
from zoo.weights.grey import grey_preprocessing_layers
from zoo.weights.load import ResolvedWeights, load_into, resolve
from zoo.weights.preprocess import preprocessing_layers

if TYPE_CHECKING:
    import keras

MIN_SIDE = 32  # the ImageNet backbones' smallest input (five 2x2 poolings)
GREY_NOTE = ("grey: the first convolution's RGB kernels summed, per-channel normalisation "
             "folded in (zoo.weights.grey)")


@dataclass
class Backbone:
    """A model filled with pretrained weights, the layers its input needs, and provenance."""

    model: "keras.Model"
    preprocess: list[Any]
    resolved: ResolvedWeights
    hparams: dict[str, Any] = field(default_factory=dict)
    headless: bool = False  # built without its classifier (include_top=False, avg pooling)
    native: tuple[int, ...] | None = None  # the input the weights were made for
    size_reason: str = ""  # why the model's input has its size, in words


def default_input_shape(model_shape: tuple[int, int, int],
                        images_shape: tuple[int, ...] | None) -> tuple[int, int, int]:
    """The target images' size (at least 32x32) with the model's channels."""
    if images_shape is None:
        return tuple(model_shape)
    height, width = images_shape[:2]
    return max(height, MIN_SIDE), max(width, MIN_SIDE), model_shape[-1]


def builder_defaults(builder) -> dict[str, Any]:
    """A builder's keyword defaults (a keras.applications backbone's include_top=True, ...)."""
    import inspect

    return {name: p.default for name, p in inspect.signature(builder).parameters.items()
            if p.default is not p.empty}


def pretrained_backbone(name: str, weights: str, *,
                        input_shape: tuple[int, int, int] | None = None,
                        images_shape: tuple[int, ...] | None = None,
                        hparams: dict[str, Any] | None = None) -> Backbone:
    """``name`` (a zoo model or keras.applications backbone) with ``weights`` loaded.

    Args:
        name: a model with weights entries (``zoo weights list``).
        weights: an entry name, 'imagenet', or a Keras .weights.h5 path (zoo models).
        input_shape: the input to build for; default: ``images_shape`` padded to >= 32x32.
        images_shape: the shape of the images it will see (H, W, C), for the default size.
        hparams: further builder hyperparameters (they must fit the weights).
    """
    from zoo.core.registry import build, get_model_info, list_models
    from zoo.weights.applications import APPLICATION_BUILDERS

    resolved = resolve(name, weights)
    entry = resolved.entry
    hparams = {**(dict(entry.hparams) if entry else {}), **(hparams or {})}
    if name in list_models():
        info = get_model_info(name)
        hparams = coerce_booleans(info.hyperparameters, hparams)
        native = tuple(hparams.get("input_shape", info.input_shape))
        builder = partial(build, name)
    else:
        native, builder = (224, 224, 3), APPLICATION_BUILDERS[name]
        hparams = coerce_booleans(builder_defaults(builder), hparams)
    shape = tuple(input_shape) if input_shape else default_input_shape(native, images_shape)
    reason = ("--input-shape" if input_shape else
              f"the images' size, at least {MIN_SIDE}x{MIN_SIDE}, with the weights' "
              f"{native[-1]} channel{'s' if native[-1] != 1 else ''}" if images_shape else
              "the weights' own size")
    has_top = hparams.get("include_top", True) and (entry is None or entry.classifier)
    headless = not has_top or shape != native
    if headless:
        hparams.update(include_top=False, pooling="avg")
    model = builder(**{**hparams, "input_shape": shape})
    grey = shape[-1] == 1 and native[-1] == 3  # RGB weights on grey images
    load_into(model, resolved, grey=grey)
    preprocessing = entry.preprocessing if entry else UNIT_SCALE
    if grey:
        layers = grey_preprocessing_layers(preprocessing)
        resolved.provenance["input_adapted"] = GREY_NOTE
    else:
        layers = preprocessing_layers(preprocessing) if entry else []
    return Backbone(model, layers, resolved, {**hparams, "input_shape": list(shape)}, headless,
                    tuple(native), reason)


def classifier_input(model: "keras.Model"):
    """The tensor feeding the model's final Dense classifier (its last hidden features).

    Trailing weightless layers (a separate softmax, dropout) are skipped; a model without a
    Dense classifier on top (``include_top=False``) is its own feature extractor.
    """
    layers = [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]
    i = len(layers) - 1
    while i > 0 and not layers[i].weights and type(layers[i]).__name__ in (
            "Activation", "Softmax", "Dropout"):
        i -= 1
    if type(layers[i]).__name__ == "Dense":
        return layers[i].input
    return model.outputs[0]


def feature_extractor(backbone: Backbone) -> "keras.Model":
    """[0, 1] images -> feature vectors: the preprocessing, then the backbone below its
    classifier (the hidden features; avg-pooled maps when headless)."""
    import keras

    base = keras.Model(backbone.model.inputs, classifier_input(backbone.model),
                       name=f"{backbone.model.name}_features")
    inputs = keras.Input(tuple(base.input_shape[1:]), name="image")
    x = inputs
    for layer in backbone.preprocess:
        x = layer(x)
    return keras.Model(inputs, base(x), name=f"{backbone.model.name}_pretrained")
