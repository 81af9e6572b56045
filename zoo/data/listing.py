"""A folder of images listed and split once, before any pixel is decoded.

Both input paths start here: the in-memory path (``zoo.data.folders``) decodes the listed files
into arrays, the streaming path (``zoo.data.stream``) decodes them batch by batch. The split is
worked out from the file names and labels alone (stratified, seeded with ``SPLIT_SEED``), so the
two paths see the same images in each split by construction.

Layouts: ``root/<class>/...`` is split 70/15/15; ``root/train|val|test/<class>/...`` keeps those
splits, a missing val/ (or test/) being carved out of train/.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from zoo.data.dataset import (
    IMAGE_SUFFIXES,
    SPLIT_SEED,
    VALIDATION_FRACTION,
    DataError,
    check_split_labels,
    per_class_pick,
    split_indices,
    stratified_pick,
)

SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}
SPLITS = ("train", "val", "test")
SPLIT_NAMES = ("train", "validation", "test")  # as the split checks name them


@dataclass(frozen=True)
class FolderListing:
    """Every image file of a folder with its label, its size and time when listed, and the
    indices of each split into ``files``."""

    name: str
    root: Path
    class_names: list[str]
    files: list[str]
    labels: np.ndarray  # int64, one per file
    sizes: np.ndarray  # int64 bytes, as listed: a file that differs later has changed
    mtimes: np.ndarray  # int64 ns, as listed
    splits: dict[str, np.ndarray]  # split -> sorted indices into files

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def split_files(self, split: str) -> list[str]:
        """The files of ``split`` ('train', 'val' or 'test'), in listing order."""
        return [self.files[i] for i in self.splits[split]]

    def split_labels(self, split: str) -> np.ndarray:
        """The labels of ``split``'s files."""
        return self.labels[self.splits[split]]

    def with_train(self, picks: np.ndarray) -> "FolderListing":
        """The listing with its training split cut to ``picks`` (positions in that split)."""
        return replace(self, splits={**self.splits, "train": self.splits["train"][picks]})

    def subset(self, train_fraction: float = 1.0, *, per_class: int | None = None,
               seed: int = SPLIT_SEED) -> "FolderListing":
        """Fewer training images: ``per_class`` of each class (few-shot) and/or a stratified
        ``train_fraction``, the same ones ``Dataset.subset`` keeps of the decoded folder."""
        data, rng = self, np.random.default_rng(seed)
        if per_class is not None:
            data = data.with_train(per_class_pick(data.split_labels("train"), data.num_classes,
                                                  per_class, rng))
        if train_fraction < 1.0:
            if not 0.0 < train_fraction <= 1.0:
                raise DataError(f"train fraction must be in (0, 1], got {train_fraction}")
            data = data.with_train(stratified_pick(data.split_labels("train"), train_fraction,
                                                   rng))
        return data

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the first training image, read from its header (1 channel for grey)."""
        from PIL import Image

        path = self.files[self.splits["train"][0]]
        try:
            with Image.open(path) as img:
                width, height = img.size
                grey = img.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
        except OSError as err:
            raise DataError(f"cannot read image {path}: {err}; remove or replace the "
                            f"file") from None
        return height, width, 1 if grey else 3

    def read_fitted(self, index: int, shape: tuple[int, int, int], *,
                    reduced: bool = True) -> np.ndarray:
        """Image ``index`` as uint8 ``shape`` (H, W, C) (``zoo.data.decode.read_fitted``),
        after checking that its file has not changed since it was listed."""
        from zoo.data.decode import read_fitted

        self.check_unchanged(index)
        return read_fitted(self.files[index], shape, reduced=reduced)

    def check_unchanged(self, index: int) -> None:
        """Raise DataError when file ``index`` is gone or differs from when it was listed."""
        path = self.files[index]
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            raise DataError(f"{path} was removed after {self.root} was listed; its split no "
                            f"longer matches the folder: run again to list it anew") from None
        if stat.st_size != self.sizes[index] or stat.st_mtime_ns != self.mtimes[index]:
            raise DataError(f"{path} changed after {self.root} was listed; run again to list "
                            f"the folder anew (the split is worked out from the listing)")


def list_files(paths: list[str | Path]) -> FolderListing:
    """Image files to read in order (folders expanded to their images, sorted), as a listing
    whose 'test' split holds them all (labels 0): for prediction."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(f for f in path.rglob("*")
                           if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise DataError(f"folder {path} holds no images "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))})")
            files.extend(found)
        else:
            files.append(path)
    stats = []
    for f in files:
        try:
            stats.append(f.stat())
        except FileNotFoundError:
            raise DataError(f"image {f} does not exist") from None
    everything = np.arange(len(files), dtype=np.int64)
    return FolderListing(
        name="images", root=Path("."), class_names=[], files=[str(f) for f in files],
        labels=np.zeros(len(files), dtype=np.int64),
        sizes=np.array([s.st_size for s in stats], dtype=np.int64),
        mtimes=np.array([s.st_mtime_ns for s in stats], dtype=np.int64),
        splits={"train": everything[:0], "val": everything[:0], "test": everything})


def class_folders(path: Path) -> list[str]:
    """The names of ``path``'s visible sub-folders, sorted."""
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


def _check_every_class_has_images(folder: Path, classes: list[str], labels: list[int]) -> None:
    present = set(labels)
    for label, cls in enumerate(classes):
        if label not in present:
            raise DataError(f"class folder {folder / cls} holds no images "
                            f"({', '.join(sorted(IMAGE_SUFFIXES))})")


def _split_folder_indices(layout: dict[str, Path], classes: list[str]
                          ) -> tuple[list[Path], list[int], dict[str, np.ndarray]]:
    for folder in layout.values():
        extra = sorted(set(class_folders(folder)) - set(classes))
        if extra:
            raise DataError(f"{folder} has classes that {layout['train']} lacks "
                            f"({', '.join(extra)}); every class needs training images")
    files, labels, splits = [], [], {}
    for split, folder in layout.items():
        found, found_labels = _list_images(folder, classes)
        splits[split] = np.arange(len(files), len(files) + len(found), dtype=np.int64)
        files.extend(found)
        labels.extend(found_labels)
    _check_every_class_has_images(layout["train"], classes,
                                  [labels[i] for i in splits["train"]])
    rng = np.random.default_rng(SPLIT_SEED)
    all_labels = np.array(labels, dtype=np.int64)
    for missing in ("val", "test"):
        if missing not in splits:
            train = splits["train"]
            picks = _carve(all_labels[train], VALIDATION_FRACTION, rng)
            splits[missing] = train[picks]
            splits["train"] = np.delete(train, picks)
    return files, labels, splits


def list_image_folder(path: Path) -> FolderListing:
    """List and split a folder of class sub-folders, or of train/ test/ (val/) split folders.

    Nothing is decoded: the listing holds paths, labels, the files' sizes and times, and each
    split's indices.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist or is not a folder")
    layout = split_layout(path)
    if layout is not None:
        classes = class_folders(layout["train"])
        _check_classes(layout["train"], classes)
        files, labels, splits = _split_folder_indices(layout, classes)
    else:
        classes = class_folders(path)
        _check_classes(path, classes)
        files, labels = _list_images(path, classes)
        _check_every_class_has_images(path, classes, labels)
        splits = split_indices(np.array(labels, dtype=np.int64))
    check_split_labels(path.name, classes, {name: np.array(labels, dtype=np.int64)[splits[split]]
                                            for split, name in zip(SPLITS, SPLIT_NAMES)})
    stats = [f.stat() for f in files]
    return FolderListing(
        name=path.name, root=path, class_names=classes, files=[str(f) for f in files],
        labels=np.array(labels, dtype=np.int64),
        sizes=np.array([s.st_size for s in stats], dtype=np.int64),
        mtimes=np.array([s.st_mtime_ns for s in stats], dtype=np.int64),
        splits={split: splits[split] for split in SPLITS})
