"""Folders of images decoded into memory: class sub-folders, optionally inside train/ val/ test/.

The folder is listed and split once by ``zoo.data.listing`` (the streaming path starts from the
same listing). Given the model's input shape, each image is decoded straight to it
(``zoo.data.decode.read_fitted``: no full-size copy); without one, images keep their most common
stored size. Decoded arrays are cached by content and shape in ``$ZOO_HOME/folders/`` within a
size budget (``zoo.data.folder_cache``), so a second run over an unchanged folder skips decoding.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from zoo.data import cache, folder_cache
from zoo.data.dataset import Dataset, check_every_class_in_every_split
from zoo.data.decode import read_fitted
from zoo.data.images import open_image
from zoo.data.listing import FolderListing, list_image_folder

logger = logging.getLogger("zoo.data.folders")
CACHE_VERSION = 3  # bump when decoding changes, so old cached arrays are not reused
PROGRESS_MIN_FILES = 200  # below this, decoding is quick enough without a progress bar


def _content_key(listing: FolderListing, shape: tuple[int, int, int] | None) -> str:
    digest = hashlib.sha256(f"v{CACHE_VERSION} {shape}".encode())
    for f, size, mtime in zip(listing.files, listing.sizes, listing.mtimes):
        digest.update(f"{Path(f).resolve()}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()[:32]


def _progress(files: list[str]):
    from tqdm import tqdm

    return tqdm(files, desc="decoding images", unit="img", disable=len(files) < PROGRESS_MIN_FILES)


def decode_images(files: list[str]) -> np.ndarray:
    """Decode image files into one uint8 (N, H, W, C) array at their stored size.

    Each file is decoded by ``zoo.data.images.open_image`` (every mode scaled to 8 bits, or
    refused naming the file). Grey stays 1 channel unless any image has colour; the most
    common size wins and other images are resized to it.
    """
    from PIL import Image

    images = [open_image(f) for f in _progress(files)]
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


def decode_fitted(files: list[str], shape: tuple[int, int, int]) -> np.ndarray:
    """Decode image files straight to the model's ``shape``: one (N, H, W, C) uint8 array,
    filled in place (no list of full-size images)."""
    out = np.empty((len(files), *shape), dtype=np.uint8)
    for i, f in enumerate(_progress(files)):
        out[i] = read_fitted(f, shape)
    return out


def decoded_listing(listing: FolderListing, shape: tuple[int, int, int] | None) -> np.ndarray:
    """Every listed image decoded (to ``shape`` when given), from the cache when it holds them.

    The array is memory-mapped from the cache, so taking the splits copies each image once.
    """
    key = _content_key(listing, shape)
    cached = folder_cache.load(key)
    if cached is not None:
        return cached
    images = (decode_images(listing.files) if shape is None
              else decode_fitted(listing.files, tuple(shape)))
    try:
        folder_cache.store(key, images, root=listing.root)
    except cache.CacheNotWritableError as err:
        # The cache only saves decoding next time: train without it, and say so once.
        logger.warning(f"not caching the decoded images: {err}")
    return images


def dataset_from_listing(listing: FolderListing, shape: tuple[int, int, int] | None = None
                         ) -> Dataset:
    """The listing's images decoded into memory, split as listed."""
    from zoo.data.tfds_listing import TfdsListing

    if isinstance(listing, TfdsListing):
        return listing.in_memory(shape)
    images = decoded_listing(listing, shape)
    parts = []
    for split in ("train", "val", "test"):
        idx = listing.splits[split]
        parts += [np.asarray(images[idx]), listing.labels[idx]]
    data = Dataset(listing.name, *parts, listing.class_names)
    check_every_class_in_every_split(data)
    return data


def load_image_folder(path: Path, image_shape: tuple[int, int, int] | None = None) -> Dataset:
    """A folder of class sub-folders (split 70/15/15), or of train/ test/ (val/) split folders.

    Args:
        path: the folder.
        image_shape: decode every image straight to this (H, W, C); None keeps the images'
            most common stored size.
    """
    return dataset_from_listing(list_image_folder(path), image_shape)
