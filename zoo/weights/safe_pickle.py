"""Unpickling that never runs code: only an allow-list of globals may be named by the stream.

A pickle can call any importable function while it loads (``os.system`` included), so the zoo
never uses ``pickle.load`` on a weights file. ``load_restricted`` resolves each global the
stream names through an explicit table and refuses every other one with the name it asked for.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np


class UnsafePickleError(ValueError):
    """The pickle names a global outside the allow-list: it could run code, so it is refused."""


def _reconstruct_ndarray(cls, shape, dtype):
    # numpy's own _reconstruct, restricted to plain arrays (no subclasses).
    if cls is not np.ndarray:
        raise UnsafePickleError("the pickle rebuilds an array subclass; only numpy.ndarray "
                                "is allowed")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _numpy_dtype(name, align=False, copy=False):
    dtype = np.dtype(name, align=align, copy=copy)
    if dtype.hasobject:
        raise UnsafePickleError("the pickle holds an array of Python objects; only numeric "
                                "arrays are allowed")
    return dtype


# What a pickled NumPy array needs (numpy 1 and 2 spell the module differently).
NUMPY_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct_ndarray,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct_ndarray,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numpy_dtype,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` only returns what ``allowed`` maps the name to."""

    def __init__(self, file: BinaryIO, allowed: Mapping[tuple[str, str], Any],
                 persistent_load: Callable[[Any], Any] | None = None, what: str = "file"):
        super().__init__(file)
        self._allowed = allowed
        self._what = what
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._what}: refused to unpickle {module}.{name}: a weights file needs only "
                f"tensors and arrays, and this name could run code. If you trust the file, "
                f"convert it where its code can run and save plain arrays"
            ) from None


def load_restricted(data: bytes | BinaryIO, allowed: Mapping[tuple[str, str], Any], *,
                    persistent_load: Callable[[Any], Any] | None = None,
                    what: str = "file") -> Any:
    """Unpickle ``data`` allowing only the globals in ``allowed``.

    Args:
        data: the pickle's bytes, or a binary file positioned at it.
        allowed: (module, name) -> the object to return for that global.
        persistent_load: resolves persistent ids (torch's storages).
        what: the file's name for error messages.
    """
    stream = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return RestrictedUnpickler(stream, allowed, persistent_load, what).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, ValueError,
            IndexError, KeyError) as err:
        raise ValueError(f"{what} is not a readable weights pickle: {err}") from None


def load_numpy_pickle(path) -> Any:
    """A pickled tree of dicts, lists and NumPy arrays (LPIPS' .ckpt files), with no code run."""
    from pathlib import Path

    path = Path(path)
    with path.open("rb") as f:
        return load_restricted(f, NUMPY_GLOBALS, what=str(path))
