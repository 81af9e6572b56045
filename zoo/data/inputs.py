"""A data set at the model's input: arrays in memory, or an image folder streamed.

Every consumer (training, transfer, tuning, comparisons, evaluation, pictures) goes the same way:
``open_source`` lists an image folder without decoding it (other sources load as arrays), the
model is built (the listing knows the classes), then ``fit_source`` decodes the folder straight to
the model's input size or streams it (``zoo.data.input_choice`` decides), and ``split_batches`` /
``split_labels`` read a split of either.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.data.dataset import Dataset, fit_dataset
from zoo.data.input_choice import InputChoice, choose_input
from zoo.data.listing import FolderListing, list_image_folder
from zoo.data.stream import ImageStream

if TYPE_CHECKING:
    from zoo.data.batches import Sharding


def image_folder(spec: str) -> Path | None:
    """The folder ``spec`` names, or None for the other sources (digits, imported, tfds)."""
    from zoo.data.catalog import CATALOG

    if spec == "digits" or spec in CATALOG or spec.startswith("tfds:"):
        return None
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


def open_source(spec: str, *, data_dir: str | None = None) -> "Dataset | FolderListing":
    """An image folder listed and split (nothing decoded), or any other source's arrays."""
    folder = image_folder(spec)
    if folder is not None:
        return list_image_folder(folder)
    if spec.startswith("tfds:"):  # random access (ArrayRecord): listed, so that it can stream
        from zoo.data.tfds_listing import list_tfds, prepared_builder, random_access

        if random_access(prepared_builder(spec[len("tfds:"):], data_dir)):
            return list_tfds(spec[len("tfds:"):], data_dir)
    from zoo.data.load import load_dataset

    return load_dataset(spec, data_dir=data_dir)


def fit_source(source: "Dataset | FolderListing", input_shape: tuple[int, int, int], *,
               mode: str = "auto", budget: float | None = None, skip_bad: bool = False,
               train_fraction: float = 1.0) -> "tuple[Dataset | ImageStream, InputChoice]":
    """The data at ``input_shape`` (H, W, C), in memory or streamed, and the choice made.

    Args:
        source: from ``open_source`` (or any Dataset).
        input_shape: the model's input.
        mode: 'auto', 'stream' or 'in-memory' (zoo.data.input_choice).
        budget: memory budget in bytes (None: a quarter of the available memory).
        skip_bad: streaming skips unreadable images instead of stopping.
        train_fraction: keep this stratified fraction of the training split (the same
            images on both paths).
    """
    input_shape = tuple(int(d) for d in input_shape)
    if isinstance(source, FolderListing):
        choice = choose_input(len(source.files), input_shape, mode=mode, budget=budget)
        if choice.streamed:
            stream = ImageStream(source, input_shape, skip_bad=skip_bad)
            return stream.subset(train_fraction), choice
        from zoo.data.folders import dataset_from_listing

        data = dataset_from_listing(source, input_shape)
    else:
        images = len(source.y_train) + len(source.y_val) + len(source.y_test)
        choice = choose_input(images, input_shape, mode=mode, budget=budget, streamable=False,
                              what=f"data set {source.name!r}")
        data = fit_dataset(source, input_shape)
    if train_fraction < 1:
        data = data.subset(train_fraction=train_fraction)
    return data, choice


def split_size(data: "Dataset | ImageStream | FolderListing", split: str) -> int:
    """Images in ``split`` ('train', 'val', 'test')."""
    return len(split_labels(data, split))


def split_labels(data: "Dataset | ImageStream | FolderListing", split: str) -> np.ndarray:
    """The labels of ``split``, in the order ``split_batches`` yields its images."""
    if isinstance(data, ImageStream):
        return data.labels(split)
    if isinstance(data, FolderListing):
        return data.split_labels(split)
    return getattr(data, f"y_{split}")


def split_batches(data: "Dataset | ImageStream", split: str, *, batch_size: int = 256,
                  num_classes: int | None = None, sharding: "Sharding | None" = None):
    """Unshuffled float [0, 1] batches (images, labels) of ``split``, for evaluation and
    prediction; with ``sharding``, this process's padded shard in batches of ``batch_size``
    per process, as (images, labels, weights) with weight 0 for the padding."""
    if isinstance(data, ImageStream):
        return data.batches(split, batch_size=batch_size, num_classes=num_classes,
                            sharding=sharding)
    from zoo.data.batches import make_batches

    return make_batches(getattr(data, f"x_{split}"), getattr(data, f"y_{split}"),
                        batch_size=batch_size, shuffle=False, seed=0, num_classes=num_classes,
                        sharding=sharding)



def split_for_model(source: "Dataset | FolderListing", split: str,
                    input_shape: tuple[int, int, int], *, mode: str = "auto",
                    budget: float | None = None, batch_size: int = 256):
    """(inputs for ``model.predict``, labels) of one split at ``input_shape``: arrays fitted
    (that split only, float [0, 1]), or a folder decoded straight to the shape or streamed."""
    if isinstance(source, FolderListing):
        data, _ = fit_source(source, input_shape, mode=mode, budget=budget)
        return split_batches(data, split, batch_size=batch_size), split_labels(data, split)
    from zoo.data.batches import to_float
    from zoo.data.dataset import fit_images

    x = fit_images(getattr(source, f"x_{split}"), tuple(input_shape))
    return to_float(x), getattr(source, f"y_{split}")


def split_images(data: "Dataset | ImageStream", split: str, picks) -> np.ndarray:
    """uint8 images ``picks`` (positions in ``split``) at the data's shape: a stream decodes
    just those files."""
    picks = np.asarray(picks)
    if isinstance(data, ImageStream):
        files = data.indices(split)[picks.reshape(-1)]
        images = [data.listing.read_fitted(int(i), data.image_shape) for i in files]
        return np.stack(images).reshape(*picks.shape, *data.image_shape)
    return getattr(data, f"x_{split}")[picks]
