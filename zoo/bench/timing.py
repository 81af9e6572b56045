"""How `zoo bench` times: epochs that end when the device has finished them, and the spread of
repeated measurements. The benchmarks in benchmarks/ time their peers with the same clock."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": list(values)}


def wait_for_training(model) -> None:
    """Block until the device has run every training step queued so far.

    JAX (and TensorFlow or PyTorch on a GPU) return from a step once it is queued; Keras'
    loop can be many steps ahead of the device when an epoch's last batch is handed over.
    Reading the optimizer's step counter to the host waits for the last step's results.
    """
    import keras

    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None:
        keras.ops.convert_to_numpy(optimizer.iterations)


def epoch_timer(after_epoch: Callable[[int], None] | None = None):
    """A callback recording wall and CPU seconds of each epoch's training batches.

    Timing stops where validation starts, once the device has finished the epoch's steps
    (``wait_for_training``); ``after_epoch(epoch)`` runs when an epoch ends (what is timed
    ``alongside`` the zoo runs one epoch there, so both alternate under one load).
    """
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self._start = self._stop = None

        def on_epoch_begin(self, epoch, logs=None):
            self._start, self._stop = (time.perf_counter(), time.process_time()), None

        def on_test_begin(self, logs=None):
            if self._start is not None and self._stop is None:
                wait_for_training(self.model)
                self._stop = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            if self._stop is None:
                wait_for_training(self.model)
            stop = self._stop or (time.perf_counter(), time.process_time())
            self.wall.append(stop[0] - self._start[0])
            self.cpu.append(stop[1] - self._start[1])
            self._start = None
            if after_epoch is not None:
                after_epoch(epoch)

    return EpochTimer()


def rates(images: int, seconds: list[float]) -> dict[str, float]:
    """Images/s of each timed epoch but the first (tracing, compilation: warm-up)."""
    return spread([images / s for s in seconds[1:]])

