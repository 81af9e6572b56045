"""``zoo.build``: the one way to build a model, with or without pretrained weights.

A facade above the registry and the weights, as timm's ``_factory`` sits above ``_registry``
and ``_builder``: the registry (``zoo.core.registry``) knows names, builders and metadata and
nothing of weights; the weights (``zoo.weights.load``) resolve and load files; this module joins
them, so neither imports the other's layer from above.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo.core import registry

if TYPE_CHECKING:
    import keras


def build(name: str, *, weights: str | None = None, **hparams: Any) -> "keras.Model":
    """Build the registered model ``name`` with the given keyword hyperparameters.

    Args:
        name: a registered model name (``zoo list``); an unknown one fails with close matches.
        weights: None (freshly initialised), the name of one of the model's weights entries
            (``zoo weights list``; 'imagenet' picks its ImageNet entry that is present), or
            the path of a Keras ``.weights.h5`` file.
        **hparams: the builder's keyword hyperparameters (``zoo show NAME`` lists them with
            their defaults), e.g. ``input_shape=(32, 32, 3), num_classes=10``; a weights entry
            supplies the ones its file needs (the caller's win). Unknown names and values of
            the wrong type are refused before Keras builds anything.

    Returns:
        The uncompiled ``keras.Model``.
    """
    if weights is None:
        return registry.build(name, **hparams)
    from zoo.weights.load import load_into, resolve

    hparams = registry.normalize_hyperparameters(name, hparams)
    resolved = resolve(name, weights)
    entry_hparams = dict(resolved.entry.hparams) if resolved.entry else {}
    model = registry.build(name, **{**entry_hparams, **hparams})
    load_into(model, resolved)
    return model
