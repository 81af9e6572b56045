"""MNIST-style IDX files (MNIST, Fashion-MNIST): raw or .gz, both spellings of their names."""

from __future__ import annotations

import gzip
import zlib

import numpy as np

from zoo.data.catalog import DatasetSpec, OfficialFile
from zoo.data.checksums import check_md5
from zoo.data.official_files import DatasetImportError, SourceFiles

UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one MNIST uses


def spellings(name: str) -> tuple[str, ...]:
    """The names a file goes by: 'train-images-idx3-ubyte' is also 'train-images.idx3-ubyte'."""
    dotted = name.replace("-idx", ".idx")
    return (name, f"{name}.gz", dotted, f"{dotted}.gz")


def parse_idx(data: bytes, what: str) -> np.ndarray:
    """An IDX file's bytes -> a uint8 array of the shape its header states."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UBYTE:
        raise DatasetImportError(f"{what} is not an IDX file of unsigned bytes (its header is "
                                 f"{data[:4].hex() or 'empty'}); give the original file")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetImportError(f"{what} is truncated inside its header; download it again")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise DatasetImportError(
            f"{what} holds {len(data) - header} bytes of data but its header announces "
            f"{'x'.join(map(str, shape))} = {expected}; the file is truncated or damaged, "
            f"download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_official(source: SourceFiles, official: OfficialFile, spec: DatasetSpec, *,
                  verify: bool) -> tuple[np.ndarray, dict]:
    """Find, decompress, verify and parse one official IDX file under ``source``."""
    found = source.find(*spellings(official.name))
    if found is None:
        raise DatasetImportError(
            f"{source.path} has no {official.name} (looked for "
            f"{', '.join(spellings(official.name))}); "
            f"{spec.name} needs the four IDX files "
            f"{', '.join(f.name for files in spec.files.values() for f in files)}, raw or .gz"
        )
    data = source.read(found)
    if found.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise DatasetImportError(f"{source.where(found)} is not a complete gzip file ({err}); "
                                     f"download it again") from None
    entry = check_md5(data, official.md5, f"{source.where(found)} (MD5 of the uncompressed file)",
                      verify=verify)
    return parse_idx(data, source.where(found)), {"file": found, **entry}


def read_idx_dataset(source: SourceFiles, spec: DatasetSpec, *, verify: bool
                     ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
    """The four IDX files under ``source`` -> uint8 images (N, H, W, 1) and int64 labels."""
    arrays, checksums = {}, {}
    for split, (images_file, labels_file) in spec.files.items():
        images, checksums[images_file.name] = read_official(source, images_file, spec,
                                                            verify=verify)
        labels, checksums[labels_file.name] = read_official(source, labels_file, spec,
                                                            verify=verify)
        if images.ndim != 3 or labels.ndim != 1:
            raise DatasetImportError(
                f"{images_file.name} / {labels_file.name} in {source.path}: expected images "
                f"(N, H, W) and labels (N,), found {images.shape} and {labels.shape}"
            )
        if len(images) != len(labels):
            raise DatasetImportError(
                f"{images_file.name} holds {len(images)} images but {labels_file.name} "
                f"{len(labels)} labels (in {source.path}); the files do not belong together"
            )
        arrays[f"x_{split}"] = images[..., None]
        arrays[f"y_{split}"] = labels.astype(np.int64)
    return arrays, checksums
