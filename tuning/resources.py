"""Memory between and during trials: resident size, clean-up, and out-of-memory errors.

A search runs hundreds of models in one process. keras-tuner clears the Keras session before
it builds each model; ``free_memory`` also runs after each trial so that the finished trial's
model, optimizer state and traced functions are released before the next one is built, and
hands freed heap pages back to the operating system. Keras is imported inside the functions.

What kept a finished trial alive on the TensorFlow backend (10 MB per trained model, the
growth keras-tuner users report): Keras' optimizer sums the gradients across replicas with
``ReplicaContext.all_reduce`` even on one device, and TensorFlow wraps that in
``tf.custom_gradient``, which in a traced function registers a gradient function under a new
name ("CustomGradient-N") in TensorFlow's global gradient registry and never removes it. Its
closure holds the traced training step's tensors, so the whole traced graph, its nested
functions (also registered with the eager runtime) and their C++ graphs outlived the model,
through ``clear_session`` and ``gc.collect``. TensorFlow has no public API to unregister a
gradient, so ``zoo.training.gradient_registry.forget_custom_gradients`` deletes the entries
registered
during a fit (a private attribute, pinned and tested in tests/test_search_cost.py): the one
training loop does it after every fit, and the tuner again after every trial, for the
trials' own fits. A gradient registered this way is only looked up while the step that
registered it is being differentiated, during its tracing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

from zoo.training.gradient_registry import (  # noqa: F401  (the tuner takes them from here)
    custom_gradient_names,
    forget_custom_gradients,
)

# Exception class names that mean "out of memory" (TensorFlow, JAX/XLA, PyTorch).
OOM_ERRORS = ("ResourceExhaustedError", "OutOfMemoryError")
# Messages that mark an XLA/JAX runtime error (or a generic one) as out of memory.
OOM_MESSAGES = ("resource_exhausted", "out of memory", "oom when allocating")


def resident_mb() -> float:
    """The resident set size of this process in MiB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    if not name:
        return
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to hand back
        pass


def free_memory(keep_gradients: frozenset[str] | None = None) -> None:
    """Release the last trial's Keras state and give freed heap pages back to the system.

    Args:
        keep_gradients: ``custom_gradient_names()`` taken before the trial; the custom
            gradients registered since are forgotten. None forgets none.
    """
    import keras

    if keep_gradients is not None:
        forget_custom_gradients(keep_gradients)
    keras.backend.clear_session()
    gc.collect()
    _malloc_trim()


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` (or an exception it was raised from) means the trial ran out of memory.

    MemoryError (host), TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError and
    XLA's runtime error with RESOURCE_EXHAUSTED / "out of memory" in its message.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, MemoryError) or type(err).__name__ in OOM_ERRORS:
            return True
        if type(err).__name__ == "XlaRuntimeError" and any(
                m in str(err).lower() for m in OOM_MESSAGES):
            return True
        err = err.__cause__ or err.__context__
    return False
