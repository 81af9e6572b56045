"""The split data set record: uint8 images (N, H, W, C), integer labels, three splits.

Every source (zoo.data.load) ends here, so the same code feeds tf.data (TensorFlow present)
or plain batches (JAX on a GPU machine without TensorFlow), zoo.data.batches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
            picks = per_class_pick(data.y_train, data.num_classes, per_class, rng)
            data = replace(data, x_train=data.x_train[picks], y_train=data.y_train[picks])
        if train_fraction < 1.0:
            if not 0.0 < train_fraction <= 1.0:
                raise DataError(f"train fraction must be in (0, 1], got {train_fraction}")
            picks = stratified_pick(data.y_train, train_fraction, rng)
            data = replace(data, x_train=data.x_train[picks], y_train=data.y_train[picks])
        return data


def per_class_pick(labels: np.ndarray, num_classes: int, per_class: int, rng) -> np.ndarray:
    """Sorted indices of ``per_class`` images of each class (all of a smaller one), drawn with
    ``rng``: what ``Dataset.subset(per_class=...)`` keeps."""
    picks = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        picks.extend(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
    return np.sort(np.array(picks, dtype=np.int64))


def stratified_pick(labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Sorted indices of ``fraction`` of each class of ``labels`` (at least one each), drawn
    with ``rng``: what ``Dataset.subset(train_fraction=...)`` keeps."""
    picks = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        picks.extend(rng.choice(idx, size=max(1, round(fraction * len(idx))), replace=False))
    return np.sort(np.array(picks))


def split_indices(y: np.ndarray) -> dict[str, np.ndarray]:
    """{'train', 'val', 'test': sorted indices} of a 70/15/15 split of labels ``y``, stratified
    by class, with a fixed seed. Depends on the labels alone, so that arrays and file lists
    of the same labels split the same way."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, val, test = [], [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_val = max(1, round(VALIDATION_FRACTION * len(idx)))
        n_test = max(1, round(TEST_FRACTION * len(idx)))
        val.extend(idx[:n_val])
        test.extend(idx[n_val:n_val + n_test])
        train.extend(idx[n_val + n_test:])
    return {name: np.sort(np.array(s, dtype=np.int64))
            for name, s in (("train", train), ("val", val), ("test", test))}


def split_arrays(name: str, x: np.ndarray, y: np.ndarray, class_names: list[str]) -> Dataset:
    """Split arrays 70/15/15, stratified by class, with a fixed seed."""
    split = split_indices(y)
    train, val, test = split["train"], split["val"], split["test"]
    data = Dataset(name, x[train], y[train], x[val], y[val], x[test], y[test], class_names)
    check_every_class_in_every_split(data)
    return data


def check_every_class_in_every_split(data: Dataset) -> None:
    """Refuse, with the counts, a data set where a class lacks training, validation or test images.

    A class without training images cannot be learned, and one missing from validation or test
    would silently be left out of the scores (a flat folder needs 3 images per class).
    """
    check_split_labels(data.name, data.class_names,
                       {"train": data.y_train, "validation": data.y_val, "test": data.y_test})


def check_split_labels(name: str, class_names: list[str], labels: dict[str, np.ndarray]) -> None:
    """``check_every_class_in_every_split`` on the labels of each split (train, validation,
    test), before any image is decoded."""
    counts = {split: np.bincount(y, minlength=len(class_names)) for split, y in labels.items()}
    short = [c for c in range(len(class_names)) if min(n[c] for n in counts.values()) == 0]
    if not short:
        return
    listed = "; ".join(f"{class_names[c]!r}: " + ", ".join(f"{n[c]} {split}" for split, n
                                                             in counts.items())
                       for c in short[:5])
    more = f" and {len(short) - 5} more" if len(short) > 5 else ""
    raise DataError(
        f"data set {name}: every class needs images in the training, validation and test "
        f"splits, but {listed}{more}. Add images to those classes (at least 3 each in a "
        f"folder of class sub-folders) or remove them"
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

