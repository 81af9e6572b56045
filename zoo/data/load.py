"""One way in to every data set: the embedded digits, imported sets, tfds names, folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.dataset import DEFAULT_DATASET, SPLIT_SEED, DataError, Dataset, split_arrays


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
    """A tensorflow-datasets set that is already prepared in ``data_dir`` (TFRecord, or
    ArrayRecord read through ``zoo.data.tfds_listing``, split alike).

    Nothing is downloaded: offline, tfds.load would hang for minutes before failing, so an
    unprepared set is refused at once with the command that prepares it.
    """
    import tensorflow_datasets as tfds

    from zoo.data.tfds_listing import class_names_of, list_tfds, prepared_builder, random_access

    builder = prepared_builder(name, data_dir)
    if random_access(builder):  # ArrayRecord: tfds reads it through data_source only
        return list_tfds(name, data_dir).in_memory()
    splits = builder.info.splits
    arrays = {}
    for split in ("train", "validation", "test"):
        if split in splits:
            data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
            arrays[split] = (np.asarray(data[0], dtype=np.uint8), np.asarray(data[1], np.int64))
    if "train" not in arrays:
        raise DataError(f"tfds data set {name!r} has no 'train' split")
    class_names = class_names_of(builder)
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


def load_dataset(spec: str = DEFAULT_DATASET, *, data_dir: str | None = None,
                 image_shape: tuple[int, int, int] | None = None) -> Dataset:
    """Load 'digits', an imported set (mnist, fashion_mnist, cifar10, cifar100), 'tfds:NAME'
    or a folder path into a split Dataset.

    ``image_shape`` lets a folder decode each image straight to the model's (H, W, C);
    other sources are fitted afterwards (``fit_dataset``), as without it.
    """
    from zoo.data.catalog import CATALOG

    if spec == "digits":
        return load_digits()
    if spec in CATALOG:
        from zoo.data.imported import load_imported

        return load_imported(spec, seed=SPLIT_SEED)
    if spec.startswith("tfds:"):
        return load_tfds(spec[len("tfds:"):], data_dir)
    path = Path(spec).expanduser()
    if path.exists():
        from zoo.data.folders import load_image_folder

        return load_image_folder(path, image_shape)
    raise DataError(
        f"unknown data set {spec!r}: use 'digits' (embedded), one of {', '.join(CATALOG)} "
        f"(after `zoo data import`), 'tfds:NAME' (a prepared "
        f"tensorflow-datasets set, with --data-dir) or the path of a folder of class sub-folders"
    )

