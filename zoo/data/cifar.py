"""CIFAR-10/100 python batches, read without running pickled code.

The batches are pickles, and unpickling runs whatever functions a file names. A restricted
unpickler allows only what CIFAR's batches hold: dicts, lists, strings, bytes and NumPy
arrays; any other name in a file is refused before it is called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np

from zoo.data.catalog import DatasetSpec, OfficialFile
from zoo.data.checksums import check_md5, md5_of
from zoo.data.official_files import DatasetImportError, SourceFiles


def _numpy_reconstruct():
    try:  # NumPy 2 moved it; both module names occur in pickles
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _allowed() -> dict[tuple[str, str], Any]:
    import codecs

    reconstruct = _numpy_reconstruct()
    return {
        ("numpy.core.multiarray", "_reconstruct"): reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        # Protocol-2 pickles written by Python 3 spell bytes as _codecs.encode(text, 'latin1').
        ("_codecs", "encode"): codecs.encode,
    }


class _CifarUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, what: str):
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.what = what
        self.allowed = _allowed()

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DatasetImportError(
                f"{self.what} asks to run {module}.{name}, which a CIFAR batch never holds; "
                f"refusing to unpickle it (the file is not an official batch)"
            ) from None


def unpickle(data: bytes, what: str) -> dict[str, Any]:
    """A CIFAR batch's bytes -> its dict (keys as str), through the restricted unpickler."""
    try:
        value = _CifarUnpickler(data, what).load()
    except DatasetImportError:
        raise
    except Exception as err:  # truncated or foreign bytes raise many kinds of errors
        raise DatasetImportError(f"{what} is not a readable CIFAR batch ({type(err).__name__}: "
                                 f"{err}); the file is truncated or damaged, download it again"
                                 ) from None
    if not isinstance(value, dict):
        raise DatasetImportError(f"{what} holds a {type(value).__name__}, not a CIFAR batch dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in value.items()}


def _read_batch(source: SourceFiles, official: OfficialFile, spec: DatasetSpec, *,
                verify: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    if source.find(official.name) is None:
        names = ", ".join(f.name for files in spec.files.values() for f in files)
        raise DatasetImportError(
            f"{source.path} has no {official.name}; {spec.name} needs {spec.archive.name} or "
            f"its extracted batches ({names}, {spec.meta.name})"
        )
    data = source.read(official.name)
    entry = check_md5(data, official.md5, source.where(official.name), verify=verify)
    batch = unpickle(data, source.where(official.name))
    what = source.where(official.name)
    if "data" not in batch or spec.label_key not in batch:
        raise DatasetImportError(f"{what} has no 'data' or '{spec.label_key}' entry; it is not "
                                 f"a {spec.name} batch")
    pixels = np.asarray(batch["data"])
    labels = np.asarray(batch[spec.label_key], dtype=np.int64)
    height, width, channels = spec.image_shape
    if pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != height * width * channels:
        raise DatasetImportError(f"{what}: expected uint8 rows of {height * width * channels} "
                                 f"pixels, found {pixels.dtype} {pixels.shape}")
    if len(pixels) != len(labels):
        raise DatasetImportError(f"{what} holds {len(pixels)} images but {len(labels)} labels")
    # Rows hold the red plane, then green, then blue: (N, C, H, W) -> (N, H, W, C).
    images = pixels.reshape(-1, channels, height, width).transpose(0, 2, 3, 1)
    return images, labels, {"file": official.name, **entry}


def read_cifar_dataset(source: SourceFiles, spec: DatasetSpec, *, verify: bool
                       ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The batches under ``source`` (the archive or its extracted folder) -> uint8 arrays.

    Each batch's MD5 is checked against the published one (this also covers a re-packed
    archive); the archive's own MD5 is recorded when PATH is the official archive.
    """
    arrays, checksums = {}, {}
    if source.path.is_file():
        whole = md5_of(source.path.read_bytes())
        checksums[spec.archive.name] = {"file": source.path.name, "md5": whole,
                                        "published_md5": spec.archive.md5,
                                        "matches": whole == spec.archive.md5}
    for split, batches in spec.files.items():
        parts = [_read_batch(source, official, spec, verify=verify) for official in batches]
        arrays[f"x_{split}"] = np.concatenate([p[0] for p in parts])
        arrays[f"y_{split}"] = np.concatenate([p[1] for p in parts])
        checksums.update({official.name: p[2] for official, p in zip(batches, parts)})
    if source.find(spec.meta.name) is not None:
        meta = source.read(spec.meta.name)
        checksums[spec.meta.name] = {"file": spec.meta.name,
                                     **check_md5(meta, spec.meta.md5, source.where(spec.meta.name),
                                                 verify=verify)}
    elif verify:
        raise DatasetImportError(f"{source.path} has no {spec.meta.name} (the label names of "
                                 f"{spec.name}); give the whole archive or extracted folder")
    return arrays, checksums
