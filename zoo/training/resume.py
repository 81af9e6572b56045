"""Keeping a run directory resumable: what is written when, and what a re-run trusts.

At the end of every epoch, in this order:

1. ``history.csv`` gains the epoch's row (append-only; a re-done epoch appends again and the
   reader keeps the last row of each epoch);
2. ``model.keras`` is replaced, through a temporary file and a rename, when the epoch's
   validation loss beats the best so far: the lowest ``val_loss`` ever logged in
   ``history.csv``, so a resumed run never replaces the best model with a worse one, and an
   epoch whose loss is NaN or infinite is never saved;
3. the backup (weights, optimizer state, epoch) is written by Keras' ``BackupAndRestore``,
   which keeps the previous backup beside it (``double_checkpoint``). Keras writes each file in
   place, so a kill can leave one of the two damaged: ``prepare_backup`` reads both completely
   before training and resumes from the newest intact one, or from scratch, saying which.

The backup is removed only after ``metrics.json`` is written, so a kill while the test set is
evaluated resumes with nothing left to train.
"""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.core.runs import history_rows, publish_file, write_text_atomic
from zoo.training.job_folder import JobFolderError, earlier_job

if TYPE_CHECKING:
    import keras

BACKUP_DIR = "backup"
BACKUP_WEIGHTS = "latest.weights.h5"
BACKUP_METADATA = "training_metadata.json"
PREVIOUS = ".bkp"  # Keras' suffix for the previous backup pair (double_checkpoint)
PARTIAL_PREFIX = ".partial-"
# What must match for a run directory's backup and checkpoint to fit the model being trained.
IDENTITY_KEYS = ("model", "hparams", "input_shape")

logger = logging.getLogger("zoo.training.resume")


# A run directory holding another run: zoo.training.job_folder's error, under its old name.
RunDirectoryError = JobFolderError


def check_same_run(run_dir: Path, config: dict[str, Any]) -> None:
    """Refuse to resume ``run_dir`` with a different model or architecture than it holds.

    Args:
        run_dir: the run directory about to be (re)used.
        config: the new run's config.json content (``model``, ``hparams``, ``input_shape``).
    """
    earlier_job(run_dir, config, IDENTITY_KEYS)


def backup_epoch(run_dir: Path) -> int:
    """Epochs finished by the run whose backup ``run_dir`` holds (0: no backup). Call
    ``prepare_backup`` first, so that the latest backup is an intact one."""
    backup = run_dir / BACKUP_DIR
    return _readable_backup(backup / BACKUP_WEIGHTS, backup / BACKUP_METADATA) or 0


def best_val_loss(history_path: Path) -> float | None:
    """The lowest finite val_loss ever logged: the bar a new checkpoint must beat."""
    losses = [r["val_loss"] for r in history_rows(history_path)
              if math.isfinite(r.get("val_loss", math.nan))]
    return min(losses) if losses else None


def repair_history(path: Path) -> None:
    """Cut a row left half-written by a kill, so the next appended row starts on its own line."""
    if not path.exists():
        return
    text = path.read_text()
    if text and not text.endswith("\n"):
        write_text_atomic(path, text[:text.rfind("\n") + 1])


def _readable_backup(weights: Path, metadata: Path) -> int | None:
    """The epoch of an intact backup pair (every weight read back), else None."""
    import h5py

    def read(_name, item):
        if isinstance(item, h5py.Dataset):
            item[()]  # noqa: B018 - reading every array is the check

    try:
        epoch = json.loads(metadata.read_text())["epoch"]
        with h5py.File(weights, "r") as f:
            f.visititems(read)
    except Exception:  # h5py raises OSError, KeyError, RuntimeError for damaged files
        return None
    return int(epoch) if isinstance(epoch, int) else None


def prepare_backup(run_dir: Path) -> str | None:
    """Make the backup Keras will restore an intact one; return a message if one was damaged.

    Keras' own fallback to the previous backup covers a damaged weights file only, not a
    damaged metadata file or both files, so both pairs are read in full here first.
    """
    backup = run_dir / BACKUP_DIR
    latest = (backup / BACKUP_WEIGHTS, backup / BACKUP_METADATA)
    previous = tuple(p.with_name(p.name + PREVIOUS) for p in latest)
    if not any(p.exists() for p in (*latest, *previous)):
        return None
    if _readable_backup(*latest) is not None:
        return None
    epoch = _readable_backup(*previous)
    if epoch is None:
        shutil.rmtree(backup)
        return (f"the training backup in {backup} was damaged (the run was killed while "
                f"writing it) and no earlier backup is intact: training restarts from epoch "
                f"1; {run_dir}/model.keras is kept and only replaced by a better model")
    for good, damaged in zip(previous, latest):
        tmp = damaged.with_name(f".{damaged.name}.restoring")
        shutil.copyfile(good, tmp)
        publish_file(tmp, damaged)
    return (f"the latest training backup in {backup} was damaged (the run was killed while "
            f"writing it); resuming from the previous one, after epoch {epoch}")


def remove_partial_files(run_dir: Path) -> None:
    """Delete checkpoints a killed run left half-written (they were never published)."""
    for path in run_dir.glob(f"{PARTIAL_PREFIX}*"):
        path.unlink(missing_ok=True)


def finish_run(run_dir: Path) -> None:
    """Drop the backup once the run's results are written: nothing is left to resume."""
    shutil.rmtree(run_dir / BACKUP_DIR, ignore_errors=True)


def _finite(logs: dict | None) -> bool:
    return all(math.isfinite(float(v)) for v in (logs or {}).values()
               if isinstance(v, (int, float)) or hasattr(v, "__float__"))


def resume_callbacks(run_dir: Path, history_file: str, model_file: str | None) -> list:
    """History logger, best-model checkpoint (unless ``model_file`` is None) and backup, in
    the order described above.

    Call ``prepare_backup`` first; the checkpoint's bar is seeded from history.csv.
    """
    import keras

    history_path = run_dir / history_file
    repair_history(history_path)
    remove_partial_files(run_dir)
    checkpoint = ([best_model_checkpoint(run_dir / model_file, best_val_loss(history_path))]
                  if model_file is not None else [])
    return [keras.callbacks.CSVLogger(str(history_path), append=True), *checkpoint,
            finite_backup(run_dir / BACKUP_DIR)]


def best_model_checkpoint(path: Path, best_so_far: float | None = None
                          ) -> "keras.callbacks.Callback":
    """ModelCheckpoint of the best finite val_loss, published by renaming a temporary file."""
    import keras

    class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):
        def __init__(self, final_path: Path, **kwargs):
            self.final_path = final_path
            self.partial_path = final_path.with_name(f"{PARTIAL_PREFIX}{final_path.name}")
            super().__init__(str(self.partial_path), **kwargs)

        def on_epoch_end(self, epoch, logs=None):
            if not _finite(logs):  # a diverged epoch: its weights are NaN, never save them
                return
            try:
                super().on_epoch_end(epoch, logs)
                if self.partial_path.exists():
                    publish_file(self.partial_path, self.final_path)
            finally:  # a full disk must not leave half a model behind
                self.partial_path.unlink(missing_ok=True)

    return BestModelCheckpoint(path, monitor="val_loss", save_best_only=True, verbose=0,
                               initial_value_threshold=best_so_far)


def finite_backup(backup_dir: Path) -> "keras.callbacks.Callback":
    """Keras' BackupAndRestore keeping two backups, skipping epochs whose loss is NaN."""
    import keras

    class FiniteBackupAndRestore(keras.callbacks.BackupAndRestore):
        def on_epoch_end(self, epoch, logs=None):
            if _finite(logs):
                super().on_epoch_end(epoch, logs)

    return FiniteBackupAndRestore(str(backup_dir), double_checkpoint=True,
                                  delete_checkpoint=False)


def pack_resumable(run_dir: Path, history_file: str, model_file: str) -> bytes:
    """What a run needs to resume (history, best checkpoint, backup), as one tar in memory:
    process 0 sends it to the other processes of a multi-process run, which write their
    copies of the files elsewhere and must restore the same state."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in [run_dir / history_file, run_dir / model_file,
                     *sorted((run_dir / BACKUP_DIR).glob("*"))]:
            if path.is_file():
                tar.add(path, arcname=str(path.relative_to(run_dir)))
    return buffer.getvalue()


def unpack_resumable(payload: bytes, folder: Path) -> None:
    """Write the files of ``pack_resumable`` into ``folder``."""
    if not payload:
        return
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r") as tar:
        tar.extractall(folder, filter="data")
