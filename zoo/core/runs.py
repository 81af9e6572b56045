"""Run directories on disk: their layout, atomic writes into them, and reading them back.

``train()`` writes a run through these helpers; export, predict, compare, transfer, tuning and
the benchmark reports use them too, so none of them imports the trainer for file I/O.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:
    import keras

SAVED_MODELS = Path("saved_models")
RUNS_DIR = SAVED_MODELS / "runs"
MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
# The models take float32 images in [0, 1]; raw uint8 pixels are divided by this.
PREPROCESSING = {"input_dtype": "uint8", "rescale": 1.0 / 255.0, "value_range": [0.0, 1.0]}


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars turned into Python numbers and tuples into lists."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    return value


def output_target(path: str | Path) -> Path:
    """The file a write to ``path`` lands in: a symlink's target; never a device or folder.

    Raises:
        FileExistsError: ``path`` exists and is not a regular file (``/dev/full``, a folder),
            which a rename would replace.
    """
    target = Path(os.path.realpath(Path(path).expanduser()))
    if target.exists() and not target.is_file():
        raise FileExistsError(
            f"{path} exists and is not a regular file (a folder or device); give a file path"
        )
    return target


def check_writable(folder: str | Path) -> None:
    """Raise the OSError a write into ``folder`` (or the folder it would be created in) would.

    Lets a command refuse a read-only or foreign --out before its long work, without creating
    anything. A full disk cannot be foreseen; the writes themselves report it.
    """
    path = Path(folder).expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))
    if not os.access(path, os.W_OK | os.X_OK):
        code = errno.EROFS if os.statvfs(path).f_flag & os.ST_RDONLY else errno.EACCES
        raise OSError(code, os.strerror(code), str(path))


def publish_file(finished: Path, path: str | Path) -> None:
    """Rename the finished temporary file ``finished`` onto ``path`` in one step.

    The project's only ``os.replace``: readers see the old file or the new one, never half.
    """
    os.replace(finished, output_target(path))


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; once the block succeeds, publish it onto ``path``.

    The temporary name keeps the suffix (matplotlib and Keras pick the format from it); on an
    error it is removed and ``path`` is left as it was.
    """
    target = output_target(path)
    tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp{target.suffix}")
    try:
        yield tmp
        publish_file(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write text to a temporary file and rename it, so readers never see half a file."""
    with atomic_write(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON atomically (see ``write_text_atomic``)."""
    write_text_atomic(path, json.dumps(jsonable(payload), indent=2) + "\n")


def new_run_dir(model: str) -> Path:
    """A fresh run directory name under saved_models/runs/."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RUNS_DIR / f"{model}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = RUNS_DIR / f"{model}-{stamp}-{n}"
    return path


def history_rows(path: Path) -> list[dict[str, float]]:
    """Every complete row of history.csv in file order (a re-done epoch appears twice)."""
    if not path.exists():
        return []
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append({k: float(v) for k, v in row.items() if k is not None})
            except (TypeError, ValueError):
                continue  # a row cut short by a kill or a full disk
    return rows


def read_history(path: Path) -> dict[str, list[float]]:
    """A run's history.csv as {metric: [value per epoch]}.

    A resumed run re-does the epoch it was interrupted in and logs it again: the last row
    of each epoch counts.
    """
    by_epoch = {}
    for row in history_rows(path):
        by_epoch[row.get("epoch", len(by_epoch))] = row
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    return {key: [r[key] for r in rows] for key in (rows[0] if rows else {})}


class UnsafeModelError(ValueError):
    """Loading the file would run arbitrary code (Lambda layers) and --unsafe was not given."""


def model_path(source: str | Path) -> Path:
    """The `.keras` file of a run directory, or the file itself."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{source} is neither a `.keras` file nor a run directory holding {MODEL_FILE}"
        )
    if path.suffix != ".keras":
        raise ValueError(f"{path} is not a `.keras` model file")
    return path


def load_run_model(source: str | Path, *, unsafe: bool = False) -> "keras.Model":
    """Load a run's model (or a `.keras` file) in Keras' safe mode unless ``unsafe``.

    Safe mode refuses Lambda layers, whose Python bytecode would run on load.
    """
    import keras

    path = model_path(source)
    if not zipfile.is_zipfile(path):  # Keras would call it "File not found"
        raise ValueError(f"{path} is not a valid .keras file (it is not a complete zip archive: "
                         f"cut short by a full disk or an interrupted copy?); copy it again or "
                         f"retrain it")
    try:
        return keras.saving.load_model(path, safe_mode=not unsafe)
    except ValueError as err:
        if "unsafe" in str(err).lower() or "lambda" in str(err).lower():
            raise UnsafeModelError(
                f"{path} contains a Lambda layer; loading it would execute code stored in the "
                f"file. Pass --unsafe only if you trust where it came from."
            ) from None
        raise ValueError(f"{path} is not a loadable Keras model: {err}") from None
    except (OSError, KeyError) as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a loadable Keras model: {err}") from None


def load_run_config(source: str | Path) -> dict[str, Any]:
    """A run's config.json ({} for a bare `.keras` file)."""
    path = Path(source).expanduser()
    config = (path if path.is_dir() else path.parent) / CONFIG_FILE
    return json.loads(config.read_text()) if config.exists() else {}


def load_run_metrics(source: str | Path) -> dict[str, Any]:
    """A run's metrics.json ({} if the run has none)."""
    path = Path(source).expanduser()
    metrics = (path if path.is_dir() else path.parent) / METRICS_FILE
    return json.loads(metrics.read_text()) if metrics.exists() else {}


def unfinished_run(source: str | Path) -> dict[str, Any] | None:
    """How far an unfinished run got, or None for a finished run or a bare `.keras` file.

    A run is finished once ``metrics.json`` (its test scores) is written; until then its
    ``model.keras`` is the best checkpoint so far. Returns {'run', 'epochs_done',
    'epochs_planned', 'best_val_loss', 'best_epoch'} (the last two None before any epoch).
    """
    path = Path(source).expanduser()
    run = path if path.is_dir() else path.parent
    if not (run / CONFIG_FILE).exists() or (run / METRICS_FILE).exists():
        return None
    history = read_history(run / HISTORY_FILE)
    losses = history.get("val_loss", [])
    best = min(range(len(losses)), key=losses.__getitem__) if losses else None
    return {"run": str(run), "epochs_done": len(history.get("epoch", losses)),
            "epochs_planned": json.loads((run / CONFIG_FILE).read_text()).get("epochs"),
            "best_val_loss": losses[best] if best is not None else None,
            "best_epoch": best + 1 if best is not None else None}


def describe_progress(progress: dict[str, Any]) -> str:
    """'2 of 30 epochs, best val_loss 0.41 at epoch 2' for ``unfinished_run``'s record."""
    planned = progress["epochs_planned"]
    text = f"{progress['epochs_done']}{f' of {planned}' if planned else ''} epochs"
    if progress["best_val_loss"] is not None:
        text += f", best val_loss {progress['best_val_loss']:.4g} at epoch {progress['best_epoch']}"
    return text


DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
# h5py and TensorFlow report the system's errno and the file inside their message text.
_ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)|\[Errno (\d+)\]")
_FILE_IN_TEXT = re.compile(r"filename\s*=\s*'([^']*)'")


def disk_full_error(err: BaseException | None) -> OSError | None:
    """An ``OSError`` (ENOSPC or EDQUOT, naming the file where known) when ``err`` or an
    exception it was raised from says the disk is full, else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        code = err.errno if isinstance(err, OSError) else None
        found = _ERRNO_IN_TEXT.search(str(err))
        if code is None and found:
            code = int(found.group(1) or found.group(2))
        if code in DISK_FULL:
            named = _FILE_IN_TEXT.search(str(err))
            filename = getattr(err, "filename", None) or (named.group(1) if named else None)
            return OSError(code, os.strerror(code), filename)
        err = err.__cause__ or err.__context__
    return None


def close_abandoned_h5_files() -> int:
    """Close every h5py file still open in this process; the number closed.

    Keras' ``save_weights`` leaves its HDF5 file open when a write fails (no try/finally), and
    on a full disk HDF5 then fails again, and crashed with a segmentation fault, when Python
    finalised the file at exit. Called once a write has failed, never while one is going on.
    """
    import gc
    import sys

    h5py = sys.modules.get("h5py")
    if h5py is None:
        return 0
    closed = 0
    for obj in gc.get_objects():
        if isinstance(obj, h5py.File) and obj.id.valid:
            try:
                obj.close()
            except Exception:  # noqa: BLE001 (the flush fails again; the file is closed)
                pass
            closed += 1
    return closed
