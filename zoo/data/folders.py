"""Folders of images: class sub-folders, optionally inside train/ val/ test/ split folders.

``root/train/<class>/*.png`` + ``root/test/<class>/...`` (+ optional ``val/``) keeps those splits,
as torchvision's and tfds' ImageFolder layouts do; a missing val/ (or test/) is carved out of
train/, stratified and seeded. A flat ``root/<class>/...`` is split 70/15/15 as before.
Decoded arrays are cached by content (every file's path, size and modification time), so a
second run over an unchanged folder skips decoding.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from zoo.data import cache
from zoo.data.dataset import (
    IMAGE_SUFFIXES,
    SPLIT_SEED,
    VALIDATION_FRACTION,
    DataError,
    Dataset,
    check_every_class_in_every_split,
    split_arrays,
)
from zoo.data.images import open_image

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
CACHE_VERSION = 2  # bump when decoding changes, so old cached arrays are not reused
PROGRESS_MIN_FILES = 200  # below this, decoding is quick enough without a progress bar


def _class_folders(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def split_layout(path: Path) -> dict[str, Path] | None:
    """{split: folder} when ``path`` holds train/ and test/ or val/ sub-folders, else None."""
    found = {}
    for split, names in SPLIT_FOLDERS.items():
        folder = next((path / n for n in names if (path / n).is_dir()), None)
        if folder is not None:
            found[split] = folder
    return found if "train" in found and len(found) > 1 else None


def _list_images(folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, cls in enumerate(classes):
        if not (folder / cls).is_dir():
            continue
        found = sorted(f for f in (folder / cls).rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        files.extend(found)
        labels.extend([label] * len(found))
    return files, labels


def _content_key(files: list[Path]) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for f in files:
        stat = f.stat()
        digest.update(f"{f.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def decode_images(files: list[Path]) -> np.ndarray:
    """Decode image files into one uint8 (N, H, W, C) array, with a progress bar for many.

    Each file is decoded by ``zoo.data.images.open_image`` (every mode scaled to 8 bits, or
    refused naming the file). Grey stays 1 channel unless any image has colour; the most
    common size wins and other images are resized to it.
    """
    from PIL import Image
    from tqdm import tqdm

    bar = tqdm(files, desc="decoding images", unit="img", disable=len(files) < PROGRESS_MIN_FILES)
    images = [open_image(f) for f in bar]
    channels = 1 if all(img.mode == "L" for img in images) else 3
    sizes = [img.size for img in images]
    size = max(set(sizes), key=sizes.count)
    out = np.empty((len(images), size[1], size[0], channels), dtype=np.uint8)
    for i, img in enumerate(images):
        img = img.convert("L" if channels == 1 else "RGB")
        if img.size != size:
            img = img.resize(size, Image.BILINEAR)
        out[i] = np.asarray(img, dtype=np.uint8).reshape(out.shape[1:])
    return out


def _decode_cached(files: list[Path]) -> np.ndarray:
    folder = cache.zoo_home() / "folders" / _content_key(files)
    if (folder / cache.MANIFEST).is_file():
        return np.load(folder / "images.npy")
    images = decode_images(files)
    cache.write_folder_atomic(folder, {"images": images}, {"files": len(files)})
    return images


def _carve(labels: np.ndarray, fraction: float, rng) -> np.ndarray:
    """Indices of a stratified ``fraction`` of ``labels``; every class keeps one image back."""
    picks = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        # At least one image of each class is carved out, so every class is in every split.
        picks.extend(idx[:min(max(1, round(fraction * len(idx))), len(idx) - 1)])
    return np.sort(np.array(picks, dtype=np.int64))


def _check_classes(path: Path, classes: list[str]) -> None:
    if not classes:
        raise DataError(
            f"data folder {path} has no class sub-folders; put each class's images in its own "
            f"sub-folder (e.g. {path}/cat/1.png, {path}/dog/1.png), optionally inside train/ "
            f"and test/ folders"
        )
    if len(classes) < 2:
        raise DataError(
            f"data folder {path} has a single class ({classes[0]!r}); a classifier needs at least "
            f"two class sub-folders"
        )


def load_split_folders(path: Path, layout: dict[str, Path]) -> Dataset:
    """root/train|val|test/<class>/ images -> a Dataset keeping those splits."""
    classes = _class_folders(layout["train"])
    _check_classes(layout["train"], classes)
    for split, folder in layout.items():
        extra = sorted(set(_class_folders(folder)) - set(classes))
        if extra:
            raise DataError(f"{folder} has classes that {layout['train']} lacks "
                            f"({', '.join(extra)}); every class needs training images")
    listed = {split: _list_images(folder, classes) for split, folder in layout.items()}
    present = set(listed["train"][1])
    for cls_index, cls in enumerate(classes):
        if cls_index not in present:
            raise DataError(f"class folder {layout['train'] / cls} holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    all_files = [f for files, _ in listed.values() for f in files]
    images = _decode_cached(all_files)
    arrays, start = {}, 0
    for split, (files, labels) in listed.items():
        arrays[split] = (images[start:start + len(files)], np.array(labels, dtype=np.int64))
        start += len(files)
    rng = np.random.default_rng(SPLIT_SEED)
    for missing in ("val", "test"):
        if missing not in arrays:
            x, y = arrays["train"]
            picks = _carve(y, VALIDATION_FRACTION, rng)
            keep = np.setdiff1d(np.arange(len(y)), picks)
            arrays[missing] = (x[picks], y[picks])
            arrays["train"] = (x[keep], y[keep])
    data = Dataset(path.name, *arrays["train"], *arrays["val"], *arrays["test"], classes)
    check_every_class_in_every_split(data)
    return data


def load_image_folder(path: Path) -> Dataset:
    """A folder of class sub-folders (split 70/15/15), or of train/ test/ (val/) split folders.

    Args:
        path: the folder.
    """
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist or is not a folder")
    layout = split_layout(path)
    if layout is not None:
        return load_split_folders(path, layout)
    classes = _class_folders(path)
    _check_classes(path, classes)
    files, labels = _list_images(path, classes)
    present = set(labels)
    for label, cls in enumerate(classes):
        if label not in present:
            raise DataError(f"class folder {path / cls} holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    images = _decode_cached(files)
    return split_arrays(path.name, images, np.array(labels, dtype=np.int64), classes)
