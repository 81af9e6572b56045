"""Custom gradients that TensorFlow registers per traced training step and never forgets.

Keras' optimizer sums gradients with ``ReplicaContext.all_reduce`` even on one device; on the
TensorFlow backend that is a ``tf.custom_gradient``, which, inside a traced function,
registers its gradient under a new name ("CustomGradient-N") in TensorFlow's global gradient
registry. The registry is never cleaned, and the gradient function's closure holds the traced
step's tensors, so every trained model's traced graphs outlived the model (about 10 MB per
fit of a LeNet-5; see tuning/resources.py and docs/tuning.md). Such a gradient is looked up
only while the step that registered it is traced, so once a fit returns its entries can go:
a later fit that retraces registers new ones.

TensorFlow has no public API to unregister a gradient: the registry is a private attribute,
reached through ``zoo.training.tensorflow_compat.gradient_registry`` (pinned and tested there).
"""

from __future__ import annotations

# The prefix of the names tf.custom_gradient registers its gradients under.
CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def _gradient_registry() -> dict | None:
    """TensorFlow's gradient registry, or None unless Keras runs on TensorFlow."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    from zoo.training.tensorflow_compat import gradient_registry

    return gradient_registry()


def custom_gradient_names() -> frozenset[str]:
    """The custom gradients TensorFlow holds now: taken before a fit (or a trial)."""
    registry = _gradient_registry()
    if registry is None:
        return frozenset()
    return frozenset(name for name in registry if name.startswith(CUSTOM_GRADIENT_PREFIX))


def forget_custom_gradients(keep: frozenset[str]) -> int:
    """Unregister the custom gradients registered since ``keep`` was taken; return how many.

    Call it once the fits that traced since then have returned: their entries are not looked
    up again (a later fit that retraces registers new ones).
    """
    registry = _gradient_registry()
    if registry is None:
        return 0
    stale = [name for name in registry
             if name.startswith(CUSTOM_GRADIENT_PREFIX) and name not in keep]
    for name in stale:
        del registry[name]
    return len(stale)
