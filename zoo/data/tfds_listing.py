"""A prepared tensorflow-datasets set listed like an image folder, so that it can stream.

``tfds.data_source`` gives random access to a set prepared in the ArrayRecord format (``tfds
build NAME --file_format array_record``): ``list_tfds`` reads every record's label (its image
left undecoded) and splits the set as ``zoo.data.load.load_tfds`` splits its arrays (the official
splits; a missing validation split carved out of train with the same seeded stratified split),
so the streaming and in-memory paths see the same images per split. ``TfdsListing.read_fitted``
then decodes one record with tfds' own decoder and fits it as ``fit_images`` fits arrays.

Nothing is downloaded: offline, ``tfds.load`` hangs, so an unprepared set is refused at once
with the command that prepares it. A set prepared as TFRecord (tfds' default) has no random
access; it loads into memory as before.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data.dataset import DataError, Dataset, check_split_labels, fit_images, split_indices
from zoo.data.listing import SPLIT_NAMES, SPLITS, FolderListing

OFFICIAL = ("train", "validation", "test")  # tfds' split names, in index order


def prepared_builder(name: str, data_dir: str | None):
    """The tfds builder of ``name`` prepared in ``data_dir``; DataError when it is unknown or
    not prepared (with the command that prepares it)."""
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # tfds raises its own DatasetNotFoundError, among others
        raise DataError(f"tensorflow-datasets has no data set {name!r}: {err}") from None
    if not Path(builder.data_dir).joinpath("dataset_info.json").exists():
        raise DataError(
            f"tfds data set {name!r} is not prepared in {builder.data_dir} and this machine "
            f"cannot download it. On a machine with internet run "
            f"`tfds build {name} --data_dir DIR` (or python -c \"import tensorflow_datasets as "
            f"tfds; tfds.load('{name}', data_dir='DIR')\"), copy DIR here and pass --data-dir DIR."
        )
    return builder


def random_access(builder) -> bool:
    """Whether the prepared set has random access (ArrayRecord), so that it can stream."""
    return str(getattr(builder.info.file_format, "value", builder.info.file_format)) == \
        "array_record"


def class_names_of(builder) -> list[str]:
    """The names of the label feature's classes (their numbers when it has none)."""
    label = builder.info.features[builder.info.supervised_keys[1]]
    return list(getattr(label, "names", None) or [str(i) for i in range(int(label.num_classes))])


@dataclass(frozen=True)
class TfdsListing(FolderListing):
    """A prepared tfds set: ``files`` names each record (``tfds:NAME/split[i]``), ``parts``
    says where each official split starts in the listing's index space."""

    tfds_name: str = ""
    data_dir: str | None = None
    parts: tuple[tuple[str, int, int], ...] = ()  # (official split, first index, count)

    def check_unchanged(self, index: int) -> None:
        """A prepared tfds set does not change under a run: nothing to check."""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the set's images: the feature's, else the first training record's."""
        builder = prepared_builder(self.tfds_name, self.data_dir)
        shape = builder.info.features[builder.info.supervised_keys[0]].shape
        if None in shape:
            shape = self.record(int(self.splits["train"][0])).shape
        return tuple(int(d) for d in shape)

    def record(self, index: int) -> np.ndarray:
        """The uint8 image of record ``index``, decoded by tfds."""
        for split, first, count in self.parts:
            if first <= index < first + count:
                source, image_key = _data_source(self.tfds_name, self.data_dir, split)
                return np.asarray(source[index - first][image_key], np.uint8)
        raise IndexError(f"record {index} is not in {self.name}")

    def read_fitted(self, index: int, shape: tuple[int, int, int] | None, *,
                    reduced: bool = True) -> np.ndarray:
        """Record ``index`` as uint8 ``shape`` (H, W, C), fitted as ``fit_images`` fits the
        in-memory arrays (``reduced`` does not apply: tfds decodes)."""
        image = self.record(index)
        return image if shape is None else fit_images(image[None], tuple(shape),
                                                      what=f"image {self.files[index]}")[0]

    def in_memory(self, shape: tuple[int, int, int] | None = None) -> Dataset:
        """The listed splits decoded into arrays (at ``shape``, else as stored)."""
        parts = []
        for split in SPLITS:
            indices = self.splits[split]
            images = [self.read_fitted(int(i), shape) for i in indices]
            parts += [np.stack(images), self.labels[indices]]
        return Dataset(self.name, *parts, self.class_names)


@functools.cache
def _data_source(name: str, data_dir: str | None, split: str):
    builder = prepared_builder(name, data_dir)
    return builder.as_data_source(split=split), builder.info.supervised_keys[0]


def _labels(builder, split: str) -> np.ndarray:
    import tensorflow_datasets as tfds

    image_key, label_key = builder.info.supervised_keys
    source = builder.as_data_source(split=split, decoders={image_key: tfds.decode.SkipDecoding()})
    return np.array([source[i][label_key] for i in range(len(source))], np.int64)


def list_tfds(name: str, data_dir: str | None) -> TfdsListing:
    """List and split the prepared tfds set ``name`` (ArrayRecord) without decoding an image.

    Raises DataError when it is unknown, not prepared, has no random access or no train split.
    """
    builder = prepared_builder(name, data_dir)
    if not random_access(builder):
        raise DataError(f"tfds data set {name!r} is prepared as {builder.info.file_format}, "
                        f"which has no random access; to stream it, prepare it again with "
                        f"`tfds build {name} --data_dir DIR --file_format array_record`")
    present = [s for s in OFFICIAL if s in builder.info.splits]
    if "train" not in present:
        raise DataError(f"tfds data set {name!r} has no 'train' split")
    labels, parts, first = {}, [], 0
    for split in present:
        labels[split] = _labels(builder, split)
        parts.append((split, first, len(labels[split])))
        first += len(labels[split])
    start = {split: begin for split, begin, _ in parts}
    train = start["train"] + np.arange(len(labels["train"]))
    if "validation" in present and "test" in present:
        splits = {key: start[split] + np.arange(len(labels[split]))
                  for key, split in zip(SPLITS, OFFICIAL)}
    else:  # as load_tfds: a 70/15/15 split of train, keeping an official test set
        carved = split_indices(labels["train"])
        splits = {key: train[carved[key]] for key in SPLITS}
        if "test" in present:
            splits = {"train": np.concatenate([splits["train"], splits["test"]]),
                      "val": splits["val"],
                      "test": start["test"] + np.arange(len(labels["test"]))}
    every = np.concatenate([labels[split] for split in present])
    classes = class_names_of(builder)
    check_split_labels(f"tfds:{name}", classes,
                       {n: every[splits[key]] for key, n in zip(SPLITS, SPLIT_NAMES)})
    files = [f"tfds:{name}/{split}[{i}]" for split, _, count in parts for i in range(count)]
    zeros = np.zeros(len(files), np.int64)
    return TfdsListing(f"tfds:{name}", Path(builder.data_dir), classes, files, every, zeros,
                       zeros, splits, tfds_name=name, data_dir=data_dir, parts=tuple(parts))
