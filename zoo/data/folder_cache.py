"""The cache of decoded image folders: ``$ZOO_HOME/folders/<key>/images.npy``, within a budget.

One entry per folder content and decoded shape. Writing an entry first evicts the stale ones
(the same folder, decoded before it changed, at the same shape), then the least recently used
until the new one fits the budget; an array larger than the whole budget is not cached. Only
the in-memory path writes here: a streamed folder is never decoded whole. ``zoo data cache``
shows and clears it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data import cache

# Default budget of the whole cache; $ZOO_FOLDER_CACHE_GB changes it (0 turns caching off).
DEFAULT_BUDGET_BYTES = 4 * 2**30


@dataclass(frozen=True)
class CacheEntry:
    """One cached decoded folder."""

    key: str
    path: Path
    root: str
    images: int
    shape: tuple[int, ...]
    bytes: int
    last_used: float  # seconds since the epoch


def cache_root() -> Path:
    """The folder holding one sub-folder per decoded image folder."""
    return cache.zoo_home() / "folders"


def budget_bytes() -> int:
    """The cache's size budget: $ZOO_FOLDER_CACHE_GB gibibytes, else 4 GiB."""
    value = os.environ.get("ZOO_FOLDER_CACHE_GB")
    return DEFAULT_BUDGET_BYTES if not value else int(float(value) * 2**30)


def entries() -> list[CacheEntry]:
    """The cached folders, least recently used first."""
    root = cache_root()
    found = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        manifest = folder / cache.MANIFEST
        if folder.name.startswith(".") or not manifest.is_file():
            continue
        info = json.loads(manifest.read_text())
        size = sum(f.stat().st_size for f in folder.iterdir())
        found.append(CacheEntry(folder.name, folder, info.get("root", "?"),
                                int(info.get("files", 0)), tuple(info.get("shape", ())), size,
                                manifest.stat().st_mtime))
    return sorted(found, key=lambda e: e.last_used)


def load(key: str) -> np.ndarray | None:
    """The cached array of ``key``, memory-mapped, or None; marks the entry as used."""
    folder = cache_root() / key
    manifest = folder / cache.MANIFEST
    if not manifest.is_file() or cache.damaged_array(folder / "images.npy"):
        return None  # a copy cut short (full disk, interrupted copy) is decoded again
    with contextlib.suppress(OSError):  # a read-only cache is still read
        os.utime(manifest)  # least recently used goes first
    return np.load(folder / "images.npy", mmap_mode="r")


def _evict(entry: CacheEntry) -> None:
    shutil.rmtree(entry.path, ignore_errors=True)


def store(key: str, images: np.ndarray, *, root: Path) -> bool:
    """Cache ``images`` of folder ``root`` under ``key``, evicting stale and old entries to
    stay within the budget; False (nothing written) when the array alone exceeds it."""
    budget = budget_bytes()
    if images.nbytes > budget:
        return False
    shape = list(images.shape[1:])
    kept = []
    for entry in entries():
        if entry.root == str(Path(root).resolve()) and list(entry.shape) == shape:
            _evict(entry)  # the same folder decoded the same way before it changed
        else:
            kept.append(entry)
    while kept and sum(e.bytes for e in kept) + images.nbytes > budget:
        _evict(kept.pop(0))
    cache.remove_leftovers("*", root=cache_root())
    cache.write_folder_atomic(cache_root() / key, {"images": images},
                              {"root": str(Path(root).resolve()), "files": len(images),
                               "shape": shape, "written": time.time()})
    return True


def clear() -> int:
    """Delete every cached folder; the bytes freed."""
    freed = 0
    for entry in entries():
        freed += entry.bytes
        _evict(entry)
    return freed
