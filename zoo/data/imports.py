"""`zoo data import`: official files -> verified uint8 arrays in the cache."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data import cache
from zoo.data.catalog import DatasetSpec, get_spec
from zoo.data.cifar import read_cifar_dataset
from zoo.data.idx import read_idx_dataset
from zoo.data.official_files import DatasetImportError, SourceFiles

READERS = {"idx": read_idx_dataset, "cifar": read_cifar_dataset}


@dataclass
class ImportResult:
    """What an import wrote: where, how many images per split, whether it was verified."""

    name: str
    folder: Path
    counts: dict[str, int]
    verified: bool
    checksums: dict[str, dict]


def _source_for(spec: DatasetSpec, path: Path) -> SourceFiles:
    # A folder that holds the official archive itself (not its contents) is read through it.
    if path.is_dir() and spec.archive is not None and (path / spec.archive.name).is_file():
        return SourceFiles(path / spec.archive.name)
    return SourceFiles(path)


def _check_arrays(spec: DatasetSpec, arrays: dict[str, np.ndarray], path: Path) -> None:
    for split in spec.splits:
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.shape[1:] != spec.image_shape:
            raise DatasetImportError(f"{path}: {split} images are {images.shape[1:]}, "
                                     f"{spec.name} images are {spec.image_shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= spec.num_classes):
            raise DatasetImportError(f"{path}: {split} labels run {labels.min()}..{labels.max()}, "
                                     f"{spec.name} has classes 0..{spec.num_classes - 1}")


def import_dataset(name: str, path: str | Path, *, verify: bool = True) -> ImportResult:
    """Read the official files of data set ``name`` from ``path`` and cache them atomically.

    Args:
        name: a catalog name (mnist, fashion_mnist, cifar10, cifar100).
        path: a folder or archive holding the files as their authors distribute them.
        verify: refuse files whose MD5 differs from the published one; False imports a
            modified copy and marks the set unverified.
    """
    spec = get_spec(name)
    path = Path(path).expanduser()
    source = _source_for(spec, path)
    arrays, checksums = READERS[spec.format](source, spec, verify=verify)
    _check_arrays(spec, arrays, path)
    verified = all(entry["matches"] for key, entry in checksums.items()
                   if spec.archive is None or key != spec.archive.name)
    counts = {split: int(len(arrays[f"y_{split}"])) for split in spec.splits}
    if verified and counts != spec.splits:  # cannot happen with the published files
        raise DatasetImportError(f"{path}: split sizes {counts} differ from {spec.splits}")
    manifest = {
        "name": spec.name, "source": str(path.resolve()), "verified": verified,
        "imported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "counts": counts, "image_shape": list(spec.image_shape), "checksums": checksums,
    }
    cache.remove_leftovers(spec.name)
    folder = cache.write_dataset(spec.name, arrays, manifest)
    return ImportResult(spec.name, folder, counts, verified, checksums)
