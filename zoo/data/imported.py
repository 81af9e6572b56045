"""Imported data sets -> split Datasets: official test split, seeded stratified validation."""

from __future__ import annotations

import numpy as np

from zoo.data import cache
from zoo.data.catalog import DatasetSpec, get_spec
from zoo.data.dataset import DataError, Dataset

UNVERIFIED = " (UNVERIFIED import)"


def not_imported_message(spec: DatasetSpec) -> str:
    """One line saying how to get ``spec`` into the cache."""
    source = spec.archive.name if spec.archive else "the four IDX files (raw or .gz)"
    return (f"data set {spec.name!r} is not imported (cache: {cache.dataset_dir(spec.name)}); "
            f"run `zoo data import {spec.name} PATH` with PATH the folder or archive holding "
            f"{source}, or `zoo data fetch {spec.name}` on a machine with internet")


def validation_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` indices of ``labels``, stratified by class (largest remainders), seeded."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    share = counts * size / len(labels)
    take = np.floor(share).astype(int)
    # Hand the images lost to rounding to the classes with the largest remainders.
    take[np.argsort(share - take)[::-1][: size - take.sum()]] += 1
    picks = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
             for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picks))


def load_imported(name: str, *, seed: int) -> Dataset:
    """The imported set ``name`` as a Dataset (train minus validation, validation, test).

    Args:
        name: a catalog name.
        seed: the split seed (the validation slice never depends on the training seed).
    """
    spec = get_spec(name)
    manifest = cache.read_manifest(name)
    if manifest is None:
        raise DataError(not_imported_message(spec))
    arrays = cache.load_arrays(name)
    y_train = np.asarray(arrays["y_train"])
    size = min(spec.validation_size, len(y_train) // 10)
    val = validation_indices(y_train, size, seed)
    train = np.setdiff1d(np.arange(len(y_train)), val, assume_unique=True)
    # Indexing the memory map reads each image once into its split: one copy in memory.
    label = spec.name + ("" if manifest.get("verified") else UNVERIFIED)
    return Dataset(label, arrays["x_train"][train], y_train[train],
                   arrays["x_train"][val], y_train[val],
                   np.array(arrays["x_test"]), np.array(arrays["y_test"]),
                   list(spec.class_names))
