"""Keras dtype policies for training: float32, or mixed precision (float16/bfloat16 compute).

A mixed policy keeps every variable in float32 and computes layers in 16 bits, which halves
activation memory and traffic and uses the tensor cores of a GPU. The class probabilities and
the loss stay float32: every builder's ``predictions`` layer is built with a float32 policy
(zoo.models.layers.classifier), as Keras' mixed-precision guide advises, because a softmax in
16 bits rounds probabilities to 2-3 significant digits and the log of a tiny one underflows.

``keras.config.set_dtype_policy`` is process-wide and is read when layers are created, so a
run sets it only around building and training its model and restores the previous one after,
whatever happens: a sweep, comparison or search never inherits one run's policy in the next.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")


class DtypePolicyError(ValueError):
    """A dtype policy the zoo does not train with."""


def check_dtype_policy(name: str) -> str:
    """``name`` if it is one of DTYPE_POLICIES, else a DtypePolicyError naming the choices."""
    if name not in DTYPE_POLICIES:
        raise DtypePolicyError(f"unknown dtype policy {name!r}; use one of "
                               f"{', '.join(DTYPE_POLICIES)}")
    return name


@contextlib.contextmanager
def dtype_policy_scope(name: str | None) -> Iterator[str]:
    """Set Keras' global dtype policy to ``name`` inside the block and restore it after.

    Args:
        name: one of DTYPE_POLICIES, or None to keep the current policy (e.g. one that
            `zoo bench --dtype-policy` set around its runs).

    Yields:
        The name of the policy in force inside the block.
    """
    import keras

    previous = keras.config.dtype_policy()
    if name is None:
        yield previous.name
        return
    keras.config.set_dtype_policy(check_dtype_policy(name))
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)
