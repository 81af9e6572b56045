"""Training batches: tf.data pipelines where TensorFlow is installed, a PyDataset elsewhere."""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


def has_tensorflow() -> bool:
    """Whether TensorFlow is installed (tf.data pipelines) or not (NumPy batches)."""
    return importlib.util.find_spec("tensorflow") is not None


def to_float(images):
    """uint8 [0, 255] -> float32 [0, 1]: the models' preprocessing, shared with export."""
    return np.asarray(images, dtype=np.float32) / 255.0


def to_float_on_device(images):
    """A uint8 batch -> float32 [0, 1] tensor of the Keras backend, cast on its device.

    The batch crosses to the backend's default device (the GPU under JAX or PyTorch) as
    uint8, a quarter of float32's bytes, and is cast and scaled there. Same values as
    ``to_float`` (tests/test_device_input.py). Keras' JAX trainer passes arrays already on
    the device through its one-batch-ahead transfer untouched.
    """
    from keras import ops

    return ops.divide(ops.cast(ops.convert_to_tensor(images), "float32"), 255.0)


@dataclass(frozen=True)
class Sharding:
    """One process's part of a data set trained data-parallel over ``devices`` devices.

    JAX splits every batch into equal parts, one per device, so each epoch's order (shuffled
    or not) is padded to a multiple of ``devices``: training repeats ``padding`` images (as
    PyTorch's DistributedSampler does: every image is still seen each epoch, none dropped);
    evaluation pads with copies of weight 0, so its metrics count each image once. Process
    ``index`` of ``count`` then reads every ``count``-th position of the padded order (its own
    shard) in batches of the per-process batch size.
    """

    devices: int = 1
    index: int = 0
    count: int = 1

    def padding(self, size: int) -> int:
        """Images added to an epoch of ``size`` images so that it splits over the devices."""
        return -size % self.devices

    def epoch_order(self, order: np.ndarray, *, weighted: bool) -> tuple[np.ndarray, np.ndarray]:
        """(indices, weights) of this process's shard of one epoch in ``order``."""
        pad = self.padding(len(order))
        weights = np.ones(len(order) + pad, np.float32)
        if weighted:
            weights[len(order):] = 0.0
        order = np.concatenate([order, np.resize(order, pad)]) if pad else order
        return order[self.index::self.count], weights[self.index::self.count]


def make_batches(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_classes: int | None = None,
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
    sharding: Sharding | None = None,
):
    """An input pipeline of float [0, 1] batches: tf.data when TensorFlow is present, else
    a PyDataset of uint8 batches cast on the device (``array_batches``).

    ``num_classes`` one-hot encodes labels (needed by mixup/cutmix); ``augment`` is applied
    to whole training batches (images, labels), in parallel with training. ``sharding``
    reads one process's padded shard (see ``Sharding``) in batches of ``batch_size`` (the
    per-process batch); unshuffled (evaluation) batches then carry sample weights.
    """
    y = np.asarray(y)
    if num_classes is not None:
        y = np.eye(num_classes, dtype=np.float32)[y]
    if not has_tensorflow():
        return array_batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             augment=augment, sharding=sharding)
    import tensorflow as tf

    # Shuffle indices, not images, and gather each batch at once: an epoch starts without
    # filling a shuffle buffer with image copies, and the images stay uint8 (4x less memory)
    # until their batch is converted, in parallel with training (same values as to_float).
    images, labels = tf.constant(np.asarray(x)), tf.constant(y)

    def gather(indices):
        return tf.cast(tf.gather(images, indices), tf.float32) / 255.0, tf.gather(labels, indices)

    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    if sharding is not None:
        ds = shard_indices(tf, ds, len(x), sharding, weighted=not shuffle)
        if not shuffle:  # (index, weight) pairs
            ds = ds.batch(batch_size).map(lambda i, w: (*gather(i), w),
                                          num_parallel_calls=workers)
            return ds.prefetch(PREFETCH_BATCHES).with_options(fixed_pipeline_options(tf))
    ds = ds.batch(batch_size).map(gather, num_parallel_calls=workers)
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=workers)
    return ds.prefetch(PREFETCH_BATCHES).with_options(fixed_pipeline_options(tf))


def shard_indices(tf, indices, size: int, sharding: Sharding, *, weighted: bool):
    """``indices`` (a tf.data epoch order of ``size`` elements) padded and cut to one
    process's shard (``Sharding``); in-memory arrays and streamed folders share it.

    Every process draws the same seeded order, so the shards are disjoint. Training pads with
    the first elements of the next order; evaluation (in order) with position 0 at weight 0,
    as (position, weight) pairs.
    """
    pad = sharding.padding(size)
    if weighted:  # evaluation reads the images in order
        indices = tf.data.Dataset.range(size + pad).map(
            lambda i: (tf.where(i < size, i, 0), tf.cast(i < size, tf.float32)))
    elif pad:
        indices = indices.repeat(2).take(size + pad)
    return indices.shard(sharding.count, sharding.index)


# Batches the pipeline prepares ahead of training: one in use, one ready.
PREFETCH_BATCHES = 2


def fixed_pipeline_options(tf):
    """tf.data options with the autotuner off.

    Keras starts every epoch (and every validation pass) by creating a new iterator while the
    previous one is still alive. With autotuning on, that creation slept 0.3-2.4 s with the
    CPU idle (measured with TF 2.21 on 2 cores: ~2 ms of CPU time in a 300 ms wait), often
    enough to halve a short epoch's throughput. Fixed parallelism (one map call per core, two
    batches prefetched) is what the autotuner would settle on for these light maps anyway.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


PREFETCH_BATCH_BYTES = 16 * 2**20


@functools.cache
def _array_batches_class():
    # Defined on first use so that importing this module does not import Keras.
    import keras

    class ArrayBatches(keras.utils.PyDataset):
        def __init__(self, x, y, *, batch_size, shuffle, seed, augment, sharding=None):
            # For large batches, worker threads gather the next ones while the accelerator
            # runs this one (NumPy fancy indexing releases the GIL): AlexNet on an H200 went
            # from 4.8k to 10.9k images/s. For small batches the threads' per-epoch start-up
            # costs more than it saves (LeNet-5: 116k -> 63k images/s), so they stay off.
            # Augmentation layers stay on the training thread: their random state is not
            # meant to be shared. (Those measurements gathered float32 batches; uint8 ones
            # are a quarter of the bytes, so a 4x larger batch turns the threads on now.)
            batch_bytes = x[:batch_size].nbytes
            prefetch = augment is None and batch_bytes >= PREFETCH_BATCH_BYTES
            super().__init__(workers=2 if prefetch else 1, max_queue_size=8)
            self.x, self.y, self.batch_size = x, y, batch_size
            self.shuffle, self.augment, self.sharding = shuffle, augment, sharding
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(x))
            self.weights = None
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(self.order) / self.batch_size)

        def __getitem__(self, i):
            batch = slice(i * self.batch_size, (i + 1) * self.batch_size)
            idx = self.order[batch]
            xb, yb = self.x[idx], self.y[idx]
            if xb.dtype == np.uint8:
                xb = to_float_on_device(xb)
            if self.augment is not None:
                xb, yb = self.augment(xb, yb)
            return (xb, yb) if self.weights is None else (xb, yb, self.weights[batch])

        def on_epoch_end(self):
            order = (self.rng.permutation(len(self.x)) if self.shuffle
                     else np.arange(len(self.x)))
            if self.sharding is not None:
                order, weights = self.sharding.epoch_order(order, weighted=not self.shuffle)
                self.weights = None if self.shuffle else weights
            self.order = order

    return ArrayBatches


def array_batches(x, y, *, batch_size: int, shuffle: bool, seed: int, augment=None,
                  sharding: Sharding | None = None):
    """Shuffled batches as a keras.utils.PyDataset, for machines without TensorFlow.

    uint8 images stay uint8 on the host (no float32 copy of the whole set); each batch is
    gathered, sent to the device and cast there (``to_float_on_device``), then augmented on
    the device. Float images are fed as they are.

    Args:
        x: images (N, H, W, C), uint8 in [0, 255] or float in [0, 1].
        y: labels, integer or one-hot.
        batch_size: images per batch (the last one may be smaller).
        shuffle: draw a new order every epoch.
        seed: of the shuffling.
        augment: (images, labels) -> (images, labels) on each float batch.
        sharding: read one process's padded shard (``Sharding``); unshuffled batches then
            carry sample weights.
    """
    return _array_batches_class()(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                  augment=augment, sharding=sharding)
