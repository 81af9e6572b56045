"""Where imported data sets live, and how they are written so that a kill never leaves half a set.

Layout: ``$ZOO_HOME/datasets/NAME/`` (else ``$XDG_CACHE_HOME/cnn-zoo/data/NAME/``, else
``~/.cache/cnn-zoo/data/NAME/``) holding ``x_train.npy y_train.npy x_test.npy y_test.npy``
(uint8 images, int64 labels, uncompressed so that np.load maps them at once) and
``manifest.json`` (source, checksums, whether they were verified). A set is *ready* only when
its folder exists with a manifest: the folder is written under a temporary name, flushed to
disk, then renamed in one step.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from zoo.data.dataset import DataError

MANIFEST = "manifest.json"
ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# Writing the cache fails with these when ZOO_HOME is on a read-only disk or not the user's.
NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


class CacheNotWritableError(DataError):
    """The zoo's cache folder (ZOO_HOME) cannot be written."""


def zoo_home() -> Path:
    """The zoo's cache root: $ZOO_HOME, else the XDG cache folder's cnn-zoo/."""
    if os.environ.get("ZOO_HOME"):
        return Path(os.environ["ZOO_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "cnn-zoo"


def datasets_root() -> Path:
    """The folder holding one sub-folder per imported data set."""
    return zoo_home() / "datasets"


def dataset_dir(name: str) -> Path:
    """The folder of one imported data set (which may not exist yet)."""
    return datasets_root() / name


def read_manifest(name: str) -> dict[str, Any] | None:
    """The manifest of an imported set, or None when the set is not ready."""
    path = dataset_dir(name) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def is_ready(name: str) -> bool:
    """Whether ``name`` has been imported completely."""
    return read_manifest(name) is not None


def damaged_array(path: Path) -> str | None:
    """Why the .npy file ``path`` cannot be loaded whole (missing, cut short, not .npy), or
    None when its size is what its header promises. Reads the header only."""
    try:
        with path.open("rb") as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            read_header = (fmt.read_array_header_1_0 if version == (1, 0)
                           else fmt.read_array_header_2_0)  # 3.0 is 2.0 with utf-8 names
            shape, _, dtype = read_header(f)
            expected = f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    except FileNotFoundError:
        return f"{path} is missing"
    except (OSError, ValueError) as err:
        return f"{path} is not a readable .npy file ({err})"
    size = path.stat().st_size
    if size < expected:
        return f"{path} is cut short ({size:,} of {expected:,} bytes)"
    return None


def damaged_files(name: str) -> list[str]:
    """Why each of an imported set's arrays cannot be loaded ([] when all are whole)."""
    folder = dataset_dir(name)
    return [why for key in ARRAYS if (why := damaged_array(folder / f"{key}.npy"))]


def load_arrays(name: str) -> dict[str, np.ndarray]:
    """The cached arrays of an imported set, memory-mapped (read-only, nothing copied yet).

    Raises DataError naming the first damaged file (a full disk or a copy cut short).
    """
    damaged = damaged_files(name)
    if damaged:
        raise DataError(f"the cached data set {name!r} is damaged: {damaged[0]}; import it "
                        f"again with `zoo data import {name} PATH` (or `zoo data fetch "
                        f"{name}`), which replaces the cached copy")
    folder = dataset_dir(name)
    return {key: np.load(folder / f"{key}.npy", mmap_mode="r") for key in ARRAYS}


def current_umask() -> int:
    """The process's umask (read without changing it where /proc tells it)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore at once
    os.umask(mask)
    return mask


def _not_writable(err: OSError, root: Path) -> CacheNotWritableError:
    return CacheNotWritableError(
        f"the zoo's cache {root} cannot be written ({err.strerror}); set ZOO_HOME to a "
        f"writable folder (it is {zoo_home()} now)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staged_folder(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; when the block ends without error it is
    flushed to disk and renamed to ``final`` in one step (replacing an older one).

    A reader sees the old folder, none, or the whole new one; an error or a kill leaves only
    a hidden ``.NAME.importing-*`` folder that never looks ready (``remove_leftovers``).
    """
    root = final.parent
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.importing-", dir=root))
    except OSError as err:
        if err.errno in NOT_WRITABLE:
            raise _not_writable(err, root) from None
        raise
    # mkdtemp makes it 0700; the cache follows the umask, so a shared cache stays readable.
    os.chmod(staging, 0o777 & ~current_umask())
    try:
        yield staging
        for path in staging.iterdir():
            _fsync(path)
        _fsync(staging)
        if final.exists():
            # Replace: move the old folder aside first, so the name never points at half a set.
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=root))
            os.replace(final, old / final.name)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
        _fsync(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_folder_atomic(final: Path, arrays: dict[str, np.ndarray], manifest: dict[str, Any]
                        ) -> Path:
    """Write ``arrays`` (one .npy each) and ``manifest`` as folder ``final``, atomically."""
    with staged_folder(final) as staging:
        for key, array in arrays.items():
            np.save(staging / f"{key}.npy", np.ascontiguousarray(array))
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return final


def write_dataset(name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> Path:
    """Write an imported set's arrays and manifest to the cache atomically (replacing one)."""
    return write_folder_atomic(dataset_dir(name), {k: arrays[k] for k in ARRAYS}, manifest)


def remove_leftovers(name: str, older_than_s: float = 3600.0, root: Path | None = None) -> None:
    """Delete folders left by imports of ``name`` that were killed (they never look ready).

    Only old ones: a younger folder may belong to an import still running in another process.
    ``root`` is the folder holding ``name`` (default: the data sets' root).
    """
    import time

    root = datasets_root() if root is None else root
    if not root.is_dir():
        return
    for pattern in (f".{name}.importing-*", f".{name}.old-*"):
        for path in root.glob(pattern):
            if time.time() - path.stat().st_mtime > older_than_s:
                shutil.rmtree(path, ignore_errors=True)
