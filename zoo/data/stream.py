"""Streaming input: a listed folder decoded batch by batch in parallel workers, never whole.

``ImageStream`` holds a ``FolderListing`` (paths, labels, splits: the same images per split as the
in-memory path) and the model's input shape. ``batches`` builds the pipeline of one split:
tf.data where TensorFlow is installed (``Dataset.map`` over the file indices with one call per
core, then ``batch`` and ``prefetch``, as Keras' ``image_dataset_from_directory(format="tf")``),
grain where it is absent (``MapDataset`` of index batches read by ``ReadOptions`` threads, as its
``format="grain"``). Either way each image goes through ``zoo.data.decode.read_fitted``: reduced-
scale JPEG decode, then the same fitting as the in-memory arrays, so both paths see the same
pixels. Memory holds the listing (~100 bytes an image) and a few batches, whatever the count.

``sharded(index, count)`` gives one process of a multi-process run its own part of every split;
``balanced=True`` draws training images class-balanced instead of shuffling them.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from zoo.data.dataset import DataError
from zoo.data.decode import read_fitted
from zoo.data.images import ImageDecodeError
from zoo.data.listing import FolderListing

# Batches prepared ahead of training (besides those being decoded).
PREFETCH_BATCHES = 2


def input_workers() -> int:
    """The cores this process may use: one decoding worker each."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@dataclass
class ReadLog:
    """What the workers met: images skipped (``skip_bad``) and the first error, shared by
    every pipeline of one stream (workers run in threads of this process)."""

    skipped: dict[str, None] = field(default_factory=dict)  # ordered set: once per file
    error: DataError | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class ImageStream:
    """A listed image folder streamed at the model's input shape."""

    listing: FolderListing
    image_shape: tuple[int, int, int]
    skip_bad: bool = False  # skip (and count) unreadable images instead of stopping
    reduced_decode: bool = True  # JPEGs at reduced DCT scale when much larger than the target
    shard_index: int = 0
    shard_count: int = 1
    log: ReadLog = field(default_factory=ReadLog, compare=False)

    @property
    def name(self) -> str:
        """The data set's name (the folder's)."""
        return self.listing.name

    @property
    def class_names(self) -> list[str]:
        """Class names, in label order."""
        return self.listing.class_names

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return self.listing.num_classes

    def sharded(self, index: int, count: int) -> "ImageStream":
        """The part of every split that process ``index`` of ``count`` reads: every
        ``count``-th image of each split from its ``index``-th (disjoint, together all)."""
        if not (isinstance(count, int) and count >= 1 and 0 <= index < count):
            raise DataError(f"shard {index} of {count} does not exist; the index must be in "
                            f"0..count-1")
        return replace(self, shard_index=index, shard_count=count)

    def subset(self, train_fraction: float) -> "ImageStream":
        """Fewer training images: the same ones ``Dataset.subset(train_fraction=...)`` keeps."""
        if train_fraction == 1.0:
            return self
        return replace(self, listing=self.listing.subset(train_fraction))

    def indices(self, split: str) -> np.ndarray:
        """This shard's file indices of ``split`` ('train', 'val' or 'test')."""
        return self.listing.splits[split][self.shard_index::self.shard_count]

    def size(self, split: str) -> int:
        """This shard's number of images in ``split``."""
        return len(self.indices(split))

    def labels(self, split: str) -> np.ndarray:
        """This shard's labels of ``split``, in listing order."""
        return self.listing.labels[self.indices(split)]

    def read(self, index: int) -> np.ndarray | None:
        """Image ``index`` of the listing at the model's shape; None when it is unreadable
        and ``skip_bad`` is set (counted in ``log.skipped``)."""
        try:
            self.listing.check_unchanged(index)
            return read_fitted(self.listing.files[index], self.image_shape,
                               reduced=self.reduced_decode)
        except ImageDecodeError as err:
            with self.log.lock:
                if self.skip_bad:
                    self.log.skipped[self.listing.files[index]] = None
                    return None
                self.log.error = self.log.error or err
            raise
        except DataError as err:
            with self.log.lock:
                self.log.error = self.log.error or err
            raise

    def batches(self, split: str, *, batch_size: int, shuffle: bool = False, seed: int = 0,
                num_classes: int | None = None, balanced: bool = False,
                augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
                as_uint8: bool = False):
        """The split as float [0, 1] batches (images, labels): a tf.data.Dataset, or a grain
        IterDataset without TensorFlow. Each iteration is one pass, reshuffled.

        Args:
            split: 'train', 'val' or 'test'.
            batch_size: images per batch (the last one may be smaller).
            shuffle: a new order each pass, from ``seed``.
            seed: of the shuffling or balanced drawing.
            num_classes: one-hot encode the labels (mixup/cutmix).
            balanced: each pass draws as many images as the split holds, every class equally
                often (images of small classes repeat, of large ones are left out).
            augment: (images, labels) -> (images, labels) on each float batch, in a worker.
            as_uint8: uint8 [0, 255] batches instead (for exported models, which scale).
        """
        from zoo.data.batches import has_tensorflow

        order = _PassOrder(self.indices(split), self.listing.labels, shuffle, balanced, seed)
        if has_tensorflow():
            return _tf_pipeline(self, order, batch_size, num_classes, augment, as_uint8)
        return _grain_pipeline(self, order, batch_size, num_classes, augment, as_uint8)

    def steps(self, split: str, batch_size: int) -> int:
        """Batches in one pass over ``split`` (before any skipped image)."""
        return math.ceil(self.size(split) / batch_size)

    def check_read(self, err: BaseException) -> None:
        """Re-raise the stream's own error (one line naming the file) when ``err`` came from
        a worker that met it; else do nothing."""
        if self.log.error is not None:
            raise self.log.error from None


@dataclass
class _PassOrder:
    """The file indices of each pass over a split: listing order, shuffled or class-balanced."""

    indices: np.ndarray
    labels: np.ndarray  # of the whole listing
    shuffle: bool
    balanced: bool
    seed: int

    def of_pass(self, number: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, number])
        if self.balanced:
            labels = self.labels[self.indices]
            classes = np.unique(labels)
            drawn = rng.choice(classes, size=len(self.indices))
            out = np.empty(len(self.indices), dtype=np.int64)
            for c in classes:
                where = np.flatnonzero(drawn == c)
                out[where] = rng.choice(self.indices[labels == c], size=len(where))
            return out
        return rng.permutation(self.indices) if self.shuffle else self.indices


def _labels_of(y: np.ndarray, num_classes: int | None) -> np.ndarray:
    return y if num_classes is None else np.eye(num_classes, dtype=np.float32)[y]


def _tf_pipeline(stream: ImageStream, order: _PassOrder, batch_size: int,
                 num_classes: int | None, augment, as_uint8: bool = False):
    import tensorflow as tf

    from zoo.data.batches import fixed_pipeline_options

    shape = tuple(stream.image_shape)
    labels = tf.constant(_labels_of(stream.listing.labels, num_classes))

    def read(index):
        image = stream.read(int(index))
        return (np.zeros(shape, np.uint8), False) if image is None else (image, True)

    def load(index):
        # Pillow decodes and resizes with the GIL released, so the map's threads run in
        # parallel; the same read_fitted as the in-memory path gives the same pixels.
        image, ok = tf.numpy_function(read, [index], [tf.uint8, tf.bool], stateful=False)
        image.set_shape(shape)
        ok.set_shape(())
        return image, tf.gather(labels, index), ok

    def to_float(images, y):
        return tf.cast(images, tf.float32) / 255.0, y

    workers = input_workers()
    ds = _tf_pass_indices(tf, order)
    ds = ds.map(load, num_parallel_calls=workers)
    if stream.skip_bad:
        ds = ds.filter(lambda image, y, ok: ok)
    ds = ds.map(lambda image, y, ok: (image, y))
    ds = ds.batch(batch_size)
    if not as_uint8:
        ds = ds.map(to_float, num_parallel_calls=workers)
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=workers)
    return ds.prefetch(PREFETCH_BATCHES).with_options(fixed_pipeline_options(tf))


def _tf_pass_indices(tf, order: _PassOrder):
    """File indices of one pass; tf.data draws a new shuffle or balanced draw each pass."""
    ds = tf.data.Dataset.from_tensor_slices(order.indices)
    if order.balanced:
        labels = order.labels[order.indices]
        per_class = [tf.data.Dataset.from_tensor_slices(order.indices[labels == c])
                     .shuffle(int((labels == c).sum()), seed=order.seed + int(c),
                              reshuffle_each_iteration=True).repeat()
                     for c in np.unique(labels)]
        return tf.data.Dataset.sample_from_datasets(
            per_class, seed=order.seed, rerandomize_each_iteration=True).take(len(order.indices))
    if order.shuffle:
        # Indices only (8 bytes an image): the whole split fits the shuffle buffer.
        ds = ds.shuffle(len(order.indices), seed=order.seed, reshuffle_each_iteration=True)
    return ds


@functools.cache
def _passes_class():
    import grain

    class Passes(grain.IterDataset):
        """One pass per iteration, each built by ``build(pass_number)``: Keras iterates its
        grain input once per epoch, and a plain MapDataset.shuffle repeats its order."""

        def __init__(self, build):
            super().__init__()
            self._build, self._pass = build, 0

        def __iter__(self):
            dataset = self._build(self._pass)
            self._pass += 1
            return dataset.__iter__()

    return Passes


def _grain_pipeline(stream: ImageStream, order: _PassOrder, batch_size: int,
                    num_classes: int | None, augment, as_uint8: bool = False):
    import grain

    from zoo.data.batches import to_float

    workers = input_workers()

    def read_batch(indices: np.ndarray):
        images = [stream.read(int(i)) for i in indices]
        kept = [k for k, image in enumerate(images) if image is not None]
        x = np.stack([images[k] for k in kept]) if kept else np.zeros((0, *stream.image_shape),
                                                                       np.uint8)
        x = x if as_uint8 else to_float(x)
        return x, _labels_of(stream.listing.labels[indices[kept]], num_classes)

    def build(number: int):
        indices = order.of_pass(number)
        starts = range(0, len(indices), batch_size)
        ds = grain.MapDataset.source([indices[s:s + batch_size] for s in starts])
        # Each thread decodes whole batches; Pillow releases the GIL while it decodes.
        ds = ds.map(read_batch).to_iter_dataset(grain.ReadOptions(
            num_threads=workers, prefetch_buffer_size=workers + PREFETCH_BATCHES))
        if augment is not None:
            # Augmentation layers keep random state: one background thread runs them in turn.
            ds = grain.experimental.ThreadPrefetchIterDataset(
                ds.map(lambda batch: augment(*batch)), prefetch_buffer_size=PREFETCH_BATCHES)
        return ds

    return _passes_class()(build)
