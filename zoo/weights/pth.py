"""Read PyTorch ``.pth`` state dicts into NumPy without PyTorch and without running pickled code.

Both of torch's file formats are read (torch/serialization.py):
- zip (torch >= 1.6): ``ARCHIVE/data.pkl`` pickles the state dict; each tensor is
  ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` whose storage is a
  persistent id ``('storage', torch.FloatStorage, key, location, numel)`` with its bytes in
  ``ARCHIVE/data/KEY``.
- legacy (older files, such as torchvision's mobilenet_v2-b0353104.pth): three small pickles
  (magic number, protocol version, system info), the state dict's pickle, the list of storage
  keys, then each storage as an int64 element count followed by its raw bytes.
The unpickler allows only the names a state dict needs (``zoo.weights.safe_pickle``); where
torch is installed, ``torch.load(weights_only=True)`` is not needed and not used, so the
result is the same with and without it.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.weights.safe_pickle import load_restricted

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: Any


class _Storage:
    """A storage whose bytes arrive once the pickle has been read (legacy files)."""

    def __init__(self, dtype, numel: int):
        self.dtype = np.dtype(dtype)
        self.numel = numel
        self.array: np.ndarray | None = None


@dataclass
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        data = self.storage.array
        if data is None:
            raise ValueError("a tensor's storage is missing from the file")
        if not self.size:
            return np.array(data[self.offset], copy=True)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if min(self.size) > 0 and last >= len(data):
            raise ValueError("a tensor reaches past the end of its storage (truncated file?)")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset:], shape=self.size,
            strides=[s * data.itemsize for s in self.stride])
        return np.array(view, copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad, backward_hooks, *_ignored):
    return data


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }
    for name, dtype in STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(dtype)
    return allowed


def _storage_type(value, what: str) -> _StorageType:
    if not isinstance(value, _StorageType):
        raise ValueError(f"{what}: unsupported storage type {value!r}")
    return value


def _read_zip(path: Path) -> dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise ValueError(f"{path}: a torch zip file holds one data.pkl, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        state = load_restricted(archive.read(pickles[0]), _allowed_globals(),
                                persistent_load=_storage_loader(storages, path),
                                what=str(path))
        byteorder = "little"
        if f"{prefix}byteorder" in names:
            byteorder = archive.read(f"{prefix}byteorder").decode().strip()
        for key, storage in storages.items():
            try:
                raw = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise ValueError(f"{path}: storage {key} is missing (truncated file?)") from None
            storage.array = _from_bytes(raw, storage, byteorder, path)
    return _materialize(state, path)


def _storage_loader(storages: dict[str, "_Storage"], path: Path):
    """The unpickler's persistent_load for torch's storages (both file formats): each storage
    is recorded empty in ``storages`` by key, and its bytes are filled in afterwards."""

    def persistent_load(pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ValueError(f"{path}: unsupported persistent id {pid!r}")
        kind = _storage_type(pid[1], str(path))
        key = str(pid[2])
        if key not in storages:
            storages[key] = _Storage(kind.dtype, int(pid[4]))
        return storages[key]

    return persistent_load


def _from_bytes(raw: bytes, storage: _Storage, byteorder: str, path: Path) -> np.ndarray:
    need = storage.numel * storage.dtype.itemsize
    if len(raw) < need:
        raise ValueError(f"{path}: a storage holds {len(raw)} bytes, {need} expected "
                         f"(truncated file?)")
    order = "<" if byteorder == "little" else ">"
    return np.frombuffer(raw[:need], dtype=storage.dtype.newbyteorder(order)).astype(
        storage.dtype.newbyteorder("="))


def _read_legacy(path: Path) -> dict[str, np.ndarray]:
    allowed = _allowed_globals()
    data = path.read_bytes()
    stream = io.BytesIO(data)
    magic = load_restricted(stream, {}, what=str(path))
    if magic != LEGACY_MAGIC:
        raise ValueError(f"{path} is not a PyTorch file (neither a zip archive nor torch's "
                         f"legacy format)")
    load_restricted(stream, {}, what=str(path))  # protocol version
    sys_info = load_restricted(stream, {}, what=str(path))
    byteorder = "little" if not isinstance(sys_info, dict) or sys_info.get(
        "little_endian", True) else "big"
    storages: dict[str, _Storage] = {}
    state = load_restricted(stream, allowed, persistent_load=_storage_loader(storages, path),
                            what=str(path))
    keys = load_restricted(stream, {}, what=str(path))
    for key in keys:
        storage = storages[str(key)]
        header = stream.read(8)
        if len(header) < 8:
            raise ValueError(f"{path}: storage {key} is missing (truncated file?)")
        (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", header)
        raw = stream.read(numel * storage.dtype.itemsize)
        storage.numel = numel
        storage.array = _from_bytes(raw, storage, byteorder, path)
    return _materialize(state, path)


def _materialize(state: Any, path: Path) -> dict[str, np.ndarray]:
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"],
                                                                         dict):
        state = state["state_dict"]  # a training checkpoint that wraps the state dict
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict (found {type(state).__name__})")
    tensors = {}
    for key, value in state.items():
        if not isinstance(value, _TensorRef):
            raise ValueError(f"{path}: entry {key!r} is not a tensor")
        tensors[str(key)] = value.materialize()
    return tensors


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a ``.pth`` state dict, by key in file order, as NumPy arrays.

    Args:
        path: a file written by ``torch.save(model.state_dict(), path)`` in either format.

    Raises ``UnsafePickleError`` when the pickle names anything but tensors (it is never run),
    ``ValueError`` for a file that is not a readable state dict.
    """
    path = Path(path)
    if zipfile.is_zipfile(path):
        return _read_zip(path)
    return _read_legacy(path)
