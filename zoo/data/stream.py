"""Streaming input: a listed folder decoded batch by batch in parallel workers, never whole.

``ImageStream`` holds a ``FolderListing`` (paths, labels, splits: the same images per split as the
in-memory path) and the model's input shape. ``batches`` builds the pipeline of one split:
tf.data where TensorFlow is installed (``Dataset.map`` over the file indices with one call per
core, then ``batch`` and ``prefetch``, as Keras' ``image_dataset_from_directory(format="tf")``),
grain where it is absent (``MapDataset`` of index batches read by ``ReadOptions`` threads, as its
``format="grain"``). Either way each image goes through ``zoo.data.decode.read_fitted``: reduced-
scale JPEG decode, then the same fitting as the in-memory arrays, so both paths see the same
pixels. Memory holds the listing (~100 bytes an image) and a few batches, whatever the count.

``batches(..., sharding=)`` gives one process of a data-parallel run its own shard of a split,
padded exactly as in-memory arrays are (``zoo.data.batches.Sharding``: training repeats a few
images, evaluation adds copies of weight 0), so every process runs the same number of steps;
``balanced=True`` draws training images class-balanced instead of shuffling them.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from zoo.data.dataset import DataError
from zoo.data.images import ImageDecodeError
from zoo.data.listing import FolderListing

if TYPE_CHECKING:
    from zoo.data.batches import Sharding

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

    def subset(self, train_fraction: float) -> "ImageStream":
        """Fewer training images: the same ones ``Dataset.subset(train_fraction=...)`` keeps."""
        if train_fraction == 1.0:
            return self
        return replace(self, listing=self.listing.subset(train_fraction))

    def indices(self, split: str) -> np.ndarray:
        """The file indices of ``split`` ('train', 'val' or 'test')."""
        return self.listing.splits[split]

    def size(self, split: str) -> int:
        """The number of images in ``split``."""
        return len(self.indices(split))

    def labels(self, split: str) -> np.ndarray:
        """The labels of ``split``, in listing order."""
        return self.listing.labels[self.indices(split)]

    def read(self, index: int) -> np.ndarray | None:
        """Image ``index`` of the listing at the model's shape; None when it is unreadable
        and ``skip_bad`` is set (counted in ``log.skipped``)."""
        try:
            return self.listing.read_fitted(index, self.image_shape,
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
                as_uint8: bool = False, sharding: "Sharding | None" = None):
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
            sharding: this process's shard of each pass, padded to split over the devices
                (``zoo.data.batches.Sharding``), in batches of ``batch_size`` per process;
                unshuffled (evaluation) batches then carry weights, 0 for the padding.
        """
        from zoo.data.batches import has_tensorflow

        if sharding is not None and sharding.devices > 1 and self.skip_bad:
            raise DataError("skipping unreadable images (--skip-bad-images) would give the "
                            "devices unequal batches; remove the unreadable images or train "
                            "on one device")
        order = _PassOrder(self.indices(split), self.listing.labels, shuffle, balanced, seed,
                           sharding)
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
    sharding: "Sharding | None" = None

    @property
    def weighted(self) -> bool:
        """Whether batches carry weights: a sharded evaluation (in order), padded at weight 0."""
        return self.sharding is not None and not (self.shuffle or self.balanced)

    def shard_of_pass(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """(file indices, weights) this process reads in pass ``number``: its padded shard."""
        order = self.of_pass(number)
        if self.sharding is None:
            return order, np.ones(len(order), np.float32)
        return self.sharding.epoch_order(order, weighted=self.weighted)

    def of_pass(self, number: int) -> np.ndarray:
        """The file indices of the whole split in pass ``number`` (every process alike)."""
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

    from zoo.data.batches import fixed_pipeline_options, shard_indices

    shape = tuple(stream.image_shape)
    labels = tf.constant(_labels_of(stream.listing.labels, num_classes))

    def read(index):
        image = stream.read(int(index))
        return (np.zeros(shape, np.uint8), False) if image is None else (image, True)

    def load(index, weight):
        # Pillow decodes and resizes with the GIL released, so the map's threads run in
        # parallel; the same read_fitted as the in-memory path gives the same pixels.
        image, ok = tf.numpy_function(read, [index], [tf.uint8, tf.bool], stateful=False)
        image.set_shape(shape)
        ok.set_shape(())
        return image, tf.gather(labels, index), weight, ok

    def to_float(images, y, weights):
        return tf.cast(images, tf.float32) / 255.0, y, weights

    workers = input_workers()
    ds = _tf_pass_indices(tf, order)
    if order.sharding is not None:
        # The same padding and cut as in-memory arrays: (position, weight) pairs in order for
        # evaluation, the shuffled file indices themselves for training.
        ds = shard_indices(tf, ds, len(order.indices), order.sharding, weighted=order.weighted)
    if order.weighted:
        files = tf.constant(order.indices)
        ds = ds.map(lambda i, w: (tf.gather(files, i), w))
    else:
        ds = ds.map(lambda i: (i, tf.constant(1.0)))
    ds = ds.map(load, num_parallel_calls=workers)
    if stream.skip_bad:
        ds = ds.filter(lambda image, y, w, ok: ok)
    ds = ds.map(lambda image, y, w, ok: (image, y, w))
    ds = ds.batch(batch_size)
    if not as_uint8:
        ds = ds.map(to_float, num_parallel_calls=workers)
    if not order.weighted:
        ds = ds.map(lambda x, y, w: (x, y))
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

    def read_batch(part: tuple[np.ndarray, np.ndarray]):
        indices, weights = part
        images = [stream.read(int(i)) for i in indices]
        kept = [k for k, image in enumerate(images) if image is not None]
        x = np.stack([images[k] for k in kept]) if kept else np.zeros((0, *stream.image_shape),
                                                                       np.uint8)
        x = x if as_uint8 else to_float(x)
        y = _labels_of(stream.listing.labels[indices[kept]], num_classes)
        return (x, y, weights[kept]) if order.weighted else (x, y)

    def build(number: int):
        indices, weights = order.shard_of_pass(number)
        starts = range(0, len(indices), batch_size)
        ds = grain.MapDataset.source([(indices[s:s + batch_size], weights[s:s + batch_size])
                                      for s in starts])
        # Each thread decodes whole batches; Pillow releases the GIL while it decodes.
        ds = ds.map(read_batch).to_iter_dataset(grain.ReadOptions(
            num_threads=workers, prefetch_buffer_size=workers + PREFETCH_BATCHES))
        if augment is not None:
            # Augmentation layers keep random state: one background thread runs them in turn.
            ds = grain.experimental.ThreadPrefetchIterDataset(
                ds.map(lambda batch: augment(*batch)), prefetch_buffer_size=PREFETCH_BATCHES)
        return ds

    return _passes_class()(build)
