"""TensorFlow's private names the zoo uses, all here: no public API does what they do.

Each is pinned for the TensorFlow versions in pyproject.toml and checked by
tests/test_train.py (``test_tensorflow_private_names_are_the_ones_written_for``), so an upgrade
that moves one fails there rather than in a run. Nothing here is patched: each function just
reaches the private name when called, and only on the TensorFlow backend.
"""

from __future__ import annotations

# What is used, by dotted path: TensorFlow's public API only switches op determinism on
# (tf.config.experimental.enable_op_determinism), and has no way to unregister a gradient.
PRIVATE_NAMES = {
    "op determinism off": "tensorflow.python.framework.config.disable_op_determinism",
    "op determinism on": "tensorflow.python.framework.config.enable_op_determinism",
    "op determinism state": "tensorflow.python.framework.config.is_op_determinism_enabled",
    "gradient registry": "tensorflow.python.framework.ops._gradient_registry._registry",
}


def set_op_determinism(enabled: bool) -> None:
    """Switch TensorFlow's process-wide op determinism on or off (Keras' own trainer reads
    the same private module)."""
    from tensorflow.python.framework import config

    if enabled:
        config.enable_op_determinism()
    else:
        config.disable_op_determinism()


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on."""
    from tensorflow.python.framework import config

    return config.is_op_determinism_enabled()


def gradient_registry() -> dict:
    """TensorFlow's registry of gradient functions by op name (it can register, not forget)."""
    from tensorflow.python.framework import ops

    return ops._gradient_registry._registry
