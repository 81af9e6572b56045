"""What a data-parallel run (zoo.training.distribution) changes in the training loop: batch
sizes per process, the correction for evaluation padding, what config.json records, and who
writes the run folder.

Under JAX every batch is split evenly over the devices, so each split is padded to a multiple
of them (``zoo.data.batches.Sharding``). Evaluation pads with copies of weight 0: accuracy
(a weighted metric then) counts each image once, and the loss, which Keras divides by the
padded batch's length, is multiplied back by ``padding_correction``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

from zoo.data.batches import Sharding
from zoo.training import resume
from zoo.training.distribution import Distribution


def per_process_batch(batch_size: int, sharding: Sharding | None) -> int:
    """The batch each process feeds: the global batch over the processes."""
    return batch_size // sharding.count if sharding is not None else batch_size


def eval_batch_size(batch_size: int, sharding: Sharding | None, smallest: int = 256) -> int:
    """Per-process batch of validation and test: at least ``smallest`` images (and the
    training batch) globally, a multiple of the devices."""
    size = max(batch_size, smallest)
    if sharding is None:
        return size
    size += -size % sharding.devices
    return size // sharding.count


def padding_correction(size: int, sharding: Sharding | None) -> float:
    """Factor turning a loss averaged over a padded evaluation of ``size`` images back into
    their average (exact for the cross-entropy; an L2 penalty, if any, is scaled with it)."""
    if sharding is None or not size:
        return 1.0
    return (size + sharding.padding(size)) / size


def padding_callbacks(val_size: int, sharding: Sharding | None) -> list:
    """A callback correcting ``val_loss`` for the padding, where there is some; put it first,
    so that history, checkpoints and keras-tuner see the corrected value."""
    factor = padding_correction(val_size, sharding)
    if factor == 1.0:
        return []
    import keras

    class PaddedValidationLoss(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs and "val_loss" in logs:
                logs["val_loss"] = float(logs["val_loss"]) * factor

    return [PaddedValidationLoss()]


def distribution_record(distribution: Distribution | None, batch_size: int,
                        sizes: dict[str, int]) -> dict[str, Any] | None:
    """config.json's ``distribution``: devices, processes, global and per-device batch, and
    the images each split was padded with (``sizes``: split -> images)."""
    if distribution is None:
        return None
    record = distribution.record(batch_size)
    sharding = distribution.sharding()
    if sharding is not None:
        record["padded_images"] = {split: sharding.padding(size) for split, size in sizes.items()}
    return record


def files_folder(run_dir: Path, distribution: Distribution | None,
                 write_config: Callable[[], None], history_file: str, model_file: str) -> Path:
    """Where this process writes the run's files, after ``write_config`` checked and wrote
    ``run_dir`` in process 0.

    One process: ``run_dir``. Several: process 0 writes ``run_dir`` and sends its resumable
    files (history, best checkpoint, backup) to the others, which keep their copies in a
    scratch folder (``finish``): saving is a collective step under JAX, so every process saves,
    and all resume from the same state. A refusal in process 0 (a finished run, another
    model in ``run_dir``) is raised in every process.
    """
    if distribution is None or distribution.num_processes == 1:
        write_config()
        return run_dir
    error, payload = None, b""
    if distribution.writes:
        try:
            write_config()
        except (ValueError, RuntimeError, OSError) as err:  # sent to the others first
            error = err
        else:
            payload = resume.pack_resumable(run_dir, history_file, model_file)
    message = (str(error) or type(error).__name__) if error is not None else ""
    shared = distribution.share(message.encode() if error is not None else b"\0" + payload)
    if error is not None:
        raise error
    if shared[:1] != b"\0":
        raise RuntimeError(f"process 0 refused the run: {shared.decode()}")
    if distribution.writes:
        return run_dir
    scratch = Path(tempfile.mkdtemp(prefix=f"zoo-process{distribution.process_id}-"))
    resume.unpack_resumable(shared[1:], scratch)
    resume.prepare_backup(scratch)
    return scratch


def finish(files_dir: Path, run_dir: Path) -> None:
    """Remove a scratch folder of a process other than 0 (``files_folder``)."""
    if files_dir != run_dir:
        shutil.rmtree(files_dir, ignore_errors=True)
