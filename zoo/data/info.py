"""What `zoo data list` and `zoo data info` show: states, sizes, statistics, provenance."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data import cache
from zoo.data.catalog import CATALOG, EMBEDDED


@dataclass
class DatasetRow:
    """One line of `zoo data list`."""

    name: str
    state: str  # "embedded", "ready", "ready (UNVERIFIED)", "damaged", "not imported",
    # "prepared (tfds)"
    where: str
    splits: dict[str, int]
    image_shape: tuple[int, ...]
    license: str = ""
    citation: str = ""
    problem: str = ""  # why a cached set cannot be loaded, with the command that mends it


def catalog_rows() -> list[DatasetRow]:
    """The embedded digits and every catalog set, with its import state."""
    # Loading the digits to count their splits would import scikit-learn (seconds): the
    # row states the total and the split rule instead.
    rows = [DatasetRow(EMBEDDED, "embedded", "scikit-learn (shipped); 70/15/15 split by class",
                       {"all": 1797}, (28, 28, 1),
                       "BSD-3-Clause (scikit-learn)",
                       "E. Alpaydin, C. Kaynak. Optical recognition of handwritten digits, UCI "
                       "Machine Learning Repository, 1998.")]
    for spec in CATALOG.values():
        problem = ""
        manifest = cache.read_manifest(spec.name)
        if manifest is None:
            state, splits = "not imported", dict(spec.splits)
        else:
            state = "ready" if manifest.get("verified") else "ready (UNVERIFIED)"
            splits = dict(manifest["counts"])
            damaged = cache.damaged_files(spec.name)
            if damaged:  # a manifest alone does not make it loadable: the sizes must match
                state, problem = "damaged", (f"{damaged[0]}; import it again: `zoo data "
                                             f"import {spec.name} PATH`")
        size = min(spec.validation_size, splits["train"] // 10)
        splits = {"train": splits["train"] - size, "val": size, "test": splits["test"]}
        rows.append(DatasetRow(spec.name, state, str(cache.dataset_dir(spec.name)), splits,
                               spec.image_shape, spec.license, spec.citation, problem))
    return rows


def tfds_rows(data_dir: str | Path) -> list[DatasetRow]:
    """Prepared tensorflow-datasets sets in ``data_dir`` (NAME/VERSION/dataset_info.json)."""
    rows = []
    for info_file in sorted(Path(data_dir).expanduser().glob("*/*/dataset_info.json")):
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            continue
        splits = {s.get("name", "?"): sum(int(n) for n in s.get("shardLengths", []))
                  for s in info.get("splits", [])}
        citation = (info.get("citation") or "").strip().splitlines()
        rows.append(DatasetRow(f"tfds:{info_file.parent.parent.name}", "prepared (tfds)",
                               str(info_file.parent), splits, (), "",
                               citation[0] if citation else ""))
    return rows


@dataclass
class DatasetInfo:
    """`zoo data info`: everything known about one data set."""

    name: str
    class_names: list[str]
    counts: dict[str, list[int]]  # split -> images per class
    image_shape: tuple[int, ...]
    pixel_mean: list[float]  # per channel, training split, in [0, 1]
    pixel_std: list[float]
    manifest: dict[str, Any] | None = None
    extra: dict[str, str] = field(default_factory=dict)


# Pixels per chunk of channel_stats: 16 MiB of uint32 squares. It counted 10,000 images per
# chunk and made two float64 copies of each, which for the issue-30 folder (1,837 training
# photos of 300x300) meant 2.6 GB of copies: 6.3 of `zoo data info`'s 7.6 s (most of it the
# kernel's page faults), against 0.1 s now.
STATS_CHUNK_PIXELS = 1 << 22


def channel_stats(images: np.ndarray, chunk_pixels: int | None = None
                  ) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images, in [0, 1]: sums of integers over chunks of
    ``chunk_pixels`` pixels (default STATS_CHUNK_PIXELS), so memory stays flat whatever the
    images' size."""
    chunk_pixels = chunk_pixels or STATS_CHUNK_PIXELS
    channels = images.shape[-1]
    per_image = max(1, int(np.prod(images.shape[1:-1])))
    step = max(1, chunk_pixels // per_image)
    total = np.zeros(channels, np.float64)
    squares = np.zeros(channels, np.float64)
    integer = np.issubdtype(images.dtype, np.integer)
    for start in range(0, len(images), step):
        part = np.asarray(images[start:start + step]).reshape(-1, channels)
        if integer:  # exact: uint8 squares fit uint32, their sums uint64
            total += part.sum(axis=0, dtype=np.uint64)
            squares += np.square(part, dtype=np.uint32).sum(axis=0, dtype=np.uint64)
        else:
            total += part.sum(axis=0, dtype=np.float64)
            squares += np.square(part, dtype=np.float64).sum(axis=0)
    count = max(1, images.size // channels)
    mean = total / count / 255.0
    variance = squares / count / 255.0 ** 2 - mean ** 2
    return mean.tolist(), np.sqrt(np.maximum(variance, 0)).tolist()


def dataset_info(name: str, *, data_dir: str | None = None) -> DatasetInfo:
    """Counts per split and class, shape, pixel statistics and provenance of a data set.

    Args:
        name: any --dataset value (digits, a catalog name, tfds:NAME, a folder).
        data_dir: tensorflow-datasets data directory for tfds: names.
    """
    from zoo.data.load import load_dataset

    data = load_dataset(name, data_dir=data_dir)
    k = data.num_classes
    counts = {split: np.bincount(np.asarray(y), minlength=k).tolist() for split, y in
              (("train", data.y_train), ("val", data.y_val), ("test", data.y_test))}
    mean, std = channel_stats(data.x_train)
    info = DatasetInfo(data.name, data.class_names, counts, data.image_shape, mean, std)
    spec = CATALOG.get(name)
    if spec is not None:
        info.manifest = cache.read_manifest(name)
        official = dict(info.manifest["counts"]) if info.manifest else dict(spec.splits)
        info.extra = {"title": spec.title, "license": spec.license, "citation": spec.citation,
                      "homepage": spec.homepage, "cache": str(cache.dataset_dir(name)),
                      "official split": f"{official['train']:,} training, {official['test']:,} "
                                        f"test images (the test split below is the official "
                                        f"one, unchanged)",
                      "validation": f"{len(data.y_val):,} images of the official training split "
                                    f"(stratified, seeded), leaving {len(data.y_train):,} to "
                                    f"train on"}
    return info
