"""Data sets: the embedded digits, imported ones (zoo/datasets/), tensorflow-datasets names,
and image folders (zoo/datasets/folders.py).

Every source is loaded into uint8 NumPy arrays (N, H, W, C) with integer labels and a fixed
train/validation/test split, so the same code feeds tf.data (TensorFlow present) or plain
batches (JAX on a GPU machine without TensorFlow).
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

DEFAULT_DATASET = "digits"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# The split never depends on the training seed: runs with different seeds see the same data.
SPLIT_SEED = 1234
VALIDATION_FRACTION = 0.15
TEST_FRACTION = 0.15


class DataError(ValueError):
    """A data set cannot be found, read or fitted to the model."""


@dataclass
class Dataset:
    """Images as uint8 (N, H, W, C) and integer labels, split three ways."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the stored images."""
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def subset(self, train_fraction: float = 1.0, classes: list[int] | None = None,
               per_class: int | None = None, seed: int = SPLIT_SEED) -> "Dataset":
        """A copy restricted to some classes (relabelled 0..k-1) and/or fewer training images.

        ``per_class`` keeps that many training images of each class (few-shot); the
        validation and test sets keep all images of the chosen classes.
        """
        data = self
        if classes is not None:
            classes = list(classes)
            remap = {c: i for i, c in enumerate(classes)}

            def keep(x, y):
                mask = np.isin(y, classes)
                return x[mask], np.array([remap[int(v)] for v in y[mask]], dtype=np.int64)

            data = Dataset(
                name=f"{self.name}[{','.join(map(str, classes))}]",
                **dict(zip(("x_train", "y_train"), keep(self.x_train, self.y_train))),
                **dict(zip(("x_val", "y_val"), keep(self.x_val, self.y_val))),
                **dict(zip(("x_test", "y_test"), keep(self.x_test, self.y_test))),
                class_names=[self.class_names[c] for c in classes],
            )
        rng = np.random.default_rng(seed)
        if per_class is not None:
            picks = []
            for c in range(data.num_classes):
                idx = np.flatnonzero(data.y_train == c)
                picks.extend(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
            picks = np.sort(np.array(picks))
            data = replace(data, x_train=data.x_train[picks], y_train=data.y_train[picks])
        if train_fraction < 1.0:
            if not 0.0 < train_fraction <= 1.0:
                raise DataError(f"train fraction must be in (0, 1], got {train_fraction}")
            picks = _stratified_pick(data.y_train, train_fraction, rng)
            data = replace(data, x_train=data.x_train[picks], y_train=data.y_train[picks])
        return data


def _stratified_pick(labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picks.extend(rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False))
    return np.sort(np.array(picks))


def split_arrays(name: str, x: np.ndarray, y: np.ndarray, class_names: list[str]) -> Dataset:
    """Split arrays 70/15/15, stratified by class, with a fixed seed."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, val, test = [], [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = max(1, round(VALIDATION_FRACTION * len(idx)))
        n_test = max(1, round(TEST_FRACTION * len(idx)))
        val.extend(idx[:n_val])
        test.extend(idx[n_val:n_val + n_test])
        train.extend(idx[n_val + n_test:])
    train, val, test = (np.sort(np.array(s, dtype=np.int64)) for s in (train, val, test))
    data = Dataset(name, x[train], y[train], x[val], y[val], x[test], y[test], class_names)
    check_every_class_in_every_split(data)
    return data


def check_every_class_in_every_split(data: Dataset) -> None:
    """Refuse, with the counts, a data set where a class lacks training, validation or test images.

    A class without training images cannot be learned, and one missing from validation or test
    would silently be left out of the scores (a flat folder needs 3 images per class).
    """
    counts = {split: np.bincount(labels, minlength=data.num_classes)
              for split, labels in (("train", data.y_train), ("validation", data.y_val),
                                    ("test", data.y_test))}
    short = [c for c in range(data.num_classes) if min(n[c] for n in counts.values()) == 0]
    if not short:
        return
    listed = "; ".join(f"{data.class_names[c]!r}: " + ", ".join(f"{n[c]} {split}" for split, n
                                                                  in counts.items())
                       for c in short[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    raise DataError(
        f"data set {data.name}: every class needs images in the training, validation and test "
        f"splits, but {listed}{more}. Add images to those classes (at least 3 each in a "
        f"folder of class sub-folders) or remove them"
    )


def load_digits() -> Dataset:
    """The embedded default: scikit-learn's 1,797 real 8x8 handwritten-digit scans.

    Each scan (16 grey levels) is enlarged to a 20x20 box and centred on a 28x28 canvas, the
    way MNIST was prepared, so that models sized for MNIST-like input see familiar geometry.
    """
    from PIL import Image
    from sklearn.datasets import load_digits as sklearn_digits

    raw = sklearn_digits()
    images = np.clip(raw.images * (255.0 / 16.0), 0, 255).astype(np.uint8)
    canvas = np.zeros((len(images), 28, 28, 1), dtype=np.uint8)
    for i, img in enumerate(images):
        box = Image.fromarray(img, mode="L").resize((20, 20), Image.BILINEAR)
        canvas[i, 4:24, 4:24, 0] = np.asarray(box)
    labels = raw.target.astype(np.int64)
    return split_arrays("digits", canvas, labels, [str(d) for d in range(10)])


def load_tfds(name: str, data_dir: str | None) -> Dataset:
    """A tensorflow-datasets set that is already prepared in ``data_dir``.

    Nothing is downloaded: offline, tfds.load would hang for minutes before failing, so an
    unprepared set is refused at once with the command that prepares it.
    """
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
    splits = builder.info.splits
    arrays = {}
    for split in ("train", "validation", "test"):
        if split in splits:
            data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
            arrays[split] = (np.asarray(data[0], dtype=np.uint8), np.asarray(data[1], np.int64))
    if "train" not in arrays:
        raise DataError(f"tfds data set {name!r} has no 'train' split")
    label_feature = builder.info.features[builder.info.supervised_keys[1]]
    class_names = list(getattr(label_feature, "names", None) or
                       [str(i) for i in range(int(label_feature.num_classes))])
    x, y = arrays["train"]
    if "test" not in arrays or "validation" not in arrays:
        whole = split_arrays(f"tfds:{name}", x, y, class_names)
        if "test" in arrays:  # keep the official test set; carve validation out of train
            train_x = np.concatenate([whole.x_train, whole.x_test])
            train_y = np.concatenate([whole.y_train, whole.y_test])
            return Dataset(f"tfds:{name}", train_x, train_y, whole.x_val, whole.y_val,
                           *arrays["test"], class_names)
        return whole
    return Dataset(f"tfds:{name}", x, y, *arrays["validation"], *arrays["test"], class_names)


def load_dataset(spec: str = DEFAULT_DATASET, *, data_dir: str | None = None) -> Dataset:
    """Load 'digits', an imported set (mnist, fashion_mnist, cifar10, cifar100), 'tfds:NAME'
    or a folder path into a split Dataset."""
    from zoo.datasets.catalog import CATALOG

    if spec == "digits":
        return load_digits()
    if spec in CATALOG:
        from zoo.datasets.load import load_imported

        return load_imported(spec, seed=SPLIT_SEED)
    if spec.startswith("tfds:"):
        return load_tfds(spec[len("tfds:"):], data_dir)
    path = Path(spec).expanduser()
    if path.exists():
        from zoo.datasets.folders import load_image_folder

        return load_image_folder(path)
    raise DataError(
        f"unknown data set {spec!r}: use 'digits' (embedded), one of {', '.join(CATALOG)} "
        f"(after `zoo data import`), 'tfds:NAME' (a prepared "
        f"tensorflow-datasets set, with --data-dir) or the path of a folder of class sub-folders"
    )


def fit_images(x: np.ndarray, input_shape: tuple[int, int, int], *, what: str = "data set"
               ) -> np.ndarray:
    """Convert uint8 images to the model's (H, W, C): channels and size adapted where natural.

    Grey <-> RGB is converted; a smaller image is zero-padded to the model's size when the
    margin is small (28 -> 32 is how LeNet-5 saw MNIST), otherwise images are resized.
    """
    height, width, channels = input_shape
    have = x.shape[-1]
    if have != channels:
        if have == 1 and channels == 3:
            x = np.repeat(x, 3, axis=-1)
        elif have == 3 and channels == 1:
            x = np.round(x.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
            x = x.astype(np.uint8)[..., None]
        else:
            raise DataError(
                f"the {what} has {have}-channel images but the model takes {channels} channels; "
                f"only grey<->RGB is converted. Build the model with --input-shape "
                f"H,W,{have} instead"
            )
    h, w = x.shape[1:3]
    if height is None or width is None or (h, w) == (height, width):
        return x
    pad_h, pad_w = height - h, width - w
    if 0 <= pad_h <= 8 and 0 <= pad_w <= 8:
        top, left = pad_h // 2, pad_w // 2
        return np.pad(x, ((0, 0), (top, pad_h - top), (left, pad_w - left), (0, 0)))
    return _resize(x, (height, width))


def _resize(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    out = np.empty((len(x), *size, x.shape[-1]), dtype=np.uint8)
    for i, img in enumerate(x):
        pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        out[i] = np.asarray(pil.resize((size[1], size[0]), Image.BILINEAR)).reshape(out.shape[1:])
    return out


def fit_dataset(data: Dataset, input_shape: tuple[int, int, int]) -> Dataset:
    """The data set with every split converted to the model's input shape."""
    return replace(
        data,
        x_train=fit_images(data.x_train, input_shape),
        x_val=fit_images(data.x_val, input_shape),
        x_test=fit_images(data.x_test, input_shape),
    )


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


def make_batches(
    x: np.ndarray,
    y: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_classes: int | None = None,
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None,
):
    """An input pipeline of float [0, 1] batches: tf.data when TensorFlow is present, else
    a PyDataset of uint8 batches cast on the device (``array_batches``).

    ``num_classes`` one-hot encodes labels (needed by mixup/cutmix); ``augment`` is applied
    to whole training batches (images, labels), in parallel with training.
    """
    y = np.asarray(y)
    if num_classes is not None:
        y = np.eye(num_classes, dtype=np.float32)[y]
    if not has_tensorflow():
        return array_batches(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                             augment=augment)
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
    ds = ds.batch(batch_size).map(gather, num_parallel_calls=workers)
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=workers)
    return ds.prefetch(PREFETCH_BATCHES).with_options(_fixed_pipeline_options(tf))


# Batches the pipeline prepares ahead of training: one in use, one ready.
PREFETCH_BATCHES = 2


def _fixed_pipeline_options(tf):
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
        def __init__(self, x, y, *, batch_size, shuffle, seed, augment):
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
            self.shuffle, self.augment = shuffle, augment
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(x))
            self.on_epoch_end()

        def __len__(self):
            return math.ceil(len(self.x) / self.batch_size)

        def __getitem__(self, i):
            idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
            xb, yb = self.x[idx], self.y[idx]
            if xb.dtype == np.uint8:
                xb = to_float_on_device(xb)
            if self.augment is not None:
                xb, yb = self.augment(xb, yb)
            return xb, yb

        def on_epoch_end(self):
            if self.shuffle:
                self.order = self.rng.permutation(len(self.x))

    return ArrayBatches


def array_batches(x, y, *, batch_size: int, shuffle: bool, seed: int, augment=None):
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
    """
    return _array_batches_class()(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                                  augment=augment)
