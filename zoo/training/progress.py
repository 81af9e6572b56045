"""Callbacks that tell a user where a run stands: a progress bar that ends at the epoch's
last step, and the epoch time measured on the first few steps.

Imported only inside ``zoo.training.train._train``: defining Keras callbacks imports Keras.
"""

from __future__ import annotations

import time
from typing import Callable

import keras


class EpochProgbar(keras.callbacks.ProgbarLogger):
    """Keras' progress bar, counting no further than the epoch's last step.

    With ``steps_per_execution`` k, Keras 3.15's epoch iterator reports the last execution of
    an epoch as ending at step begin + k - 1 even when fewer batches were left, so a 58-step
    epoch at k = 8 ended at '64/58' with an ETA of '-1s' (the remaining steps negative). The
    steps really run are the epoch's, so the reported step is clipped to the last one.
    """

    def _last(self, batch: int) -> int:
        return min(batch, self.target - 1) if self.target else batch

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(self._last(batch), logs)

    def on_test_batch_end(self, batch, logs=None):
        super().on_test_batch_end(self._last(batch), logs)

    def on_predict_batch_end(self, batch, logs=None):
        super().on_predict_batch_end(self._last(batch), logs)


def format_seconds(seconds: float) -> str:
    """'42 s', '3.5 min', '1.2 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class EpochTimeEstimate(keras.callbacks.Callback):
    """Announces, once, the epoch time that the first epoch's first few timed steps predict.

    The first execution traces and compiles the train step, so timing starts at its end and
    covers the next ``executions`` (steps_per_execution batches each). An epoch too short for
    that is reported as it ran.
    """

    def __init__(self, announce: Callable[[str], None], steps_per_epoch: int, epochs: int,
                 executions: int = 2):
        super().__init__()
        self.announce, self.steps, self.epochs = announce, steps_per_epoch, epochs
        self.executions = executions
        self.marks: list[tuple[float, int]] = []
        self.done = False
        self.start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def _say(self, line: str) -> None:
        # Keras' progress bar (verbose 1) is mid-line: start ours on a line of its own.
        bar = self.params.get("verbose") in (1, "auto") if self.params else False
        self.announce(("\n" if bar else "") + line)

    def on_train_batch_end(self, batch, logs=None):
        if self.done:
            return
        self.marks.append((time.perf_counter(), min(batch, self.steps - 1)))
        if len(self.marks) <= self.executions:
            return
        (t0, b0), (t1, b1) = self.marks[0], self.marks[-1]
        if b1 <= b0:
            return
        per_step = (t1 - t0) / (b1 - b0)
        epoch = per_step * self.steps
        self._say(f"timing: {per_step * 1000:.0f} ms per step (steps {b0 + 2}-{b1 + 1}): "
                      f"~{format_seconds(epoch)} per epoch of {self.steps} steps, "
                      f"~{format_seconds(epoch * self.epochs)} for {self.epochs} epoch"
                      f"{'s' if self.epochs != 1 else ''}, validation aside")
        self.done = True

    def on_epoch_end(self, epoch, logs=None):
        if not self.done:
            self._say(f"timing: the first epoch took "
                          f"{format_seconds(time.perf_counter() - self.start)} (with compiling "
                          f"and validation), too short to time steps")
            self.done = True
