"""Write small files in PyTorch's two .pth formats without PyTorch (for the converter tests).

The pickles name ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` exactly as
torch.save does; fake ``torch`` modules are installed in ``sys.modules`` only while pickling.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import types
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class _Storage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _Tensor:
    def __init__(self, storage: _Storage, shape):
        self.storage, self.shape = storage, tuple(shape)

    def __reduce__(self):
        stride, step = [], 1
        for n in reversed(self.shape):
            stride.insert(0, step)
            step *= n
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, 0, self.shape, tuple(stride), False, OrderedDict())


@contextmanager
def _fake_torch():
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    float_storage = type("FloatStorage", (), {"__module__": "torch",
                                              "__qualname__": "FloatStorage"})
    torch.FloatStorage = float_storage
    torch._utils = utils
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield float_storage
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _pickle_state(state: dict[str, np.ndarray], legacy: bool) -> tuple[bytes, list[_Storage]]:
    storages = [_Storage(str(i), np.ascontiguousarray(a, np.float32))
                for i, a in enumerate(state.values())]
    tensors = OrderedDict((k, _Tensor(s, a.shape)) for (k, a), s in zip(state.items(), storages))
    with _fake_torch() as float_storage:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=2)

        def persistent_id(obj):
            if isinstance(obj, _Storage):
                record = ("storage", float_storage, obj.key, "cpu", obj.array.size)
                return record + (None,) if legacy else record
            return None

        pickler.persistent_id = persistent_id
        pickler.dump(tensors)
    return buffer.getvalue(), storages


def save_zip(state: dict[str, np.ndarray], path: Path) -> Path:
    """A state dict in torch's zip format (torch >= 1.6)."""
    data, storages = _pickle_state(state, legacy=False)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
        archive.writestr("archive/byteorder", "little")
        for storage in storages:
            archive.writestr(f"archive/data/{storage.key}", storage.array.astype("<f4").tobytes())
        archive.writestr("archive/version", "3\n")
    return path


def save_legacy(state: dict[str, np.ndarray], path: Path) -> Path:
    """A state dict in torch's legacy (pre-1.6) format."""
    data, storages = _pickle_state(state, legacy=True)
    with path.open("wb") as f:
        pickle.dump(LEGACY_MAGIC, f, protocol=2)
        pickle.dump(1001, f, protocol=2)
        pickle.dump({"protocol_version": 1001, "little_endian": True,
                     "type_sizes": {"short": 2, "int": 4, "long": 4}}, f, protocol=2)
        f.write(data)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for storage in storages:
            f.write(struct.pack("<q", storage.array.size))
            f.write(storage.array.astype("<f4").tobytes())
    return path
