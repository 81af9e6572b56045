"""Early stopping of hopeless trials (``--prune median|asha``) from keras-tuner's own records.

keras-tuner 1.4 stops bad trials early only inside Hyperband, and its ``Tuner.on_epoch_end``
does not pass intermediate results to the oracle. The zoo's tuner (``tuning.tuners``) reports
every epoch's metrics to the oracle with ``oracle.update_trial(trial_id, logs, step=epoch)``,
keras-tuner's public way of recording a time series in ``trial.metrics``, and then asks the
plan's pruner whether the running trial should stop; when it should, the tuner sets
``model.stop_training`` (the ordinary Keras way; the call comes through keras-tuner's
``TunerCallback``). A pruned trial ends COMPLETED for keras-tuner, scored by its best epoch so
far (so a Bayesian oracle learns from it too), with the epoch it stopped at in its metrics.

- ``MedianPruner`` (Optuna's median rule): after ``warmup_epochs`` epochs, and once
  ``warmup_trials`` trials have trained to the end, stop a trial whose objective at epoch e is
  worse than the median of those trials' objectives at epoch e.
- ``SuccessiveHalvingPruner`` (ASHA, Li et al. 2020, as Ray Tune's ASHAScheduler stops
  trials): rungs at ``warmup_epochs * 3**k`` epochs; once ``warmup_trials`` other trials have
  reached a rung, a trial reaching it continues only if its objective is in the best third of
  every value recorded there so far (its own included). It runs
  asynchronously over any oracle (random, Bayesian, grid) with a fixed number of epochs per
  trial. keras-tuner's Hyperband (``--algorithm hyperband``) is the synchronous relative: it
  fixes each bracket's epochs in advance and continues promoted models from checkpoints; use
  it when trials are cheap to checkpoint and the budget is set in epochs, ASHA when you want
  the oracle of your choice and a plain ``--max-trials``.

Nothing here imports Keras: the pruners read keras-tuner ``Trial`` objects.
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable

# The metric recording the epoch a pruned trial stopped at (1-based); absent when not pruned.
PRUNED_METRIC = "pruned_at_epoch"
# ASHA's reduction factor: the best 1/3 of a rung goes on (Hyperband's default factor too).
REDUCTION_FACTOR = 3


def _worse(value: float, than: float, direction: str) -> bool:
    return value < than if direction == "max" else value > than


def value_at(trial, objective: str, epoch: int) -> float | None:
    """The trial's recorded objective at 0-based ``epoch`` (None when it has none)."""
    if not trial.metrics.exists(objective):
        return None
    for observation in trial.metrics.get_history(objective):
        if observation.step == epoch:
            value = observation.mean()
            return None if value is None or math.isnan(value) else float(value)
    return None


def was_pruned(trial) -> bool:
    """Whether a pruner stopped this trial."""
    return trial.metrics.exists(PRUNED_METRIC)


class MedianPruner:
    """Stop a trial whose objective is worse than the median of finished trials at that epoch.

    Args:
        objective: the metric name (e.g. val_accuracy).
        direction: 'max' or 'min'.
        warmup_epochs: epochs every trial trains before it can be stopped.
        warmup_trials: trials that must have trained to the end before any is stopped.
        max_epochs: the epochs of a full trial: a trial that reached them has nothing left to
            save and ends COMPLETED, not PRUNED (None: no limit known).
    """

    def __init__(self, objective: str, direction: str, warmup_epochs: int = 1,
                 warmup_trials: int = 3, max_epochs: int | None = None):
        self.objective, self.direction = objective, direction
        self.warmup_epochs, self.warmup_trials = warmup_epochs, warmup_trials
        self.max_epochs = max_epochs

    def should_stop(self, trial_id: str, epoch: int, value: float, trials: Iterable) -> bool:
        """Whether the trial should stop after 0-based ``epoch`` with objective ``value``."""
        if epoch + 1 <= self.warmup_epochs:
            return False
        if self.max_epochs is not None and epoch + 1 >= self.max_epochs:
            return False
        finished = [t for t in trials if t.trial_id != trial_id
                    and str(t.status) == "COMPLETED" and not was_pruned(t)]
        at_epoch = [v for v in (value_at(t, self.objective, epoch) for t in finished)
                    if v is not None]
        if len(at_epoch) < self.warmup_trials:
            return False
        return _worse(value, statistics.median(at_epoch), self.direction)


class SuccessiveHalvingPruner:
    """Asynchronous successive halving: keep the best 1/``factor`` at each rung.

    Args:
        objective: the metric name (e.g. val_accuracy).
        direction: 'max' or 'min'.
        warmup_epochs: the first rung (epochs every trial trains).
        max_epochs: the epochs of a full trial (no rung at or after it).
        warmup_trials: other trials that must have reached a rung before it stops any.
        factor: the reduction factor between rungs.
    """

    def __init__(self, objective: str, direction: str, warmup_epochs: int, max_epochs: int,
                 warmup_trials: int = 3, factor: int = REDUCTION_FACTOR):
        self.objective, self.direction, self.factor = objective, direction, factor
        self.warmup_trials = warmup_trials
        self.rungs = []
        rung = max(1, warmup_epochs)
        while rung < max_epochs:
            self.rungs.append(rung)
            rung *= factor

    def should_stop(self, trial_id: str, epoch: int, value: float, trials: Iterable) -> bool:
        """Whether the trial should stop at 0-based ``epoch`` (only rungs decide)."""
        if epoch + 1 not in self.rungs:
            return False
        recorded = [v for v in (value_at(t, self.objective, epoch) for t in trials
                                if t.trial_id != trial_id) if v is not None]
        if len(recorded) < self.warmup_trials:
            return False
        values = sorted(recorded + [value], reverse=self.direction == "max")
        keep = max(1, math.floor(len(values) / self.factor))
        cutoff = values[keep - 1]  # the worst value still in the best 1/factor
        return _worse(value, cutoff, self.direction)


def make_pruner(kind: str | None, objective: str, direction: str, epochs: int,
                warmup_epochs: int, warmup_trials: int):
    """The pruner for ``--prune`` (None when not pruning)."""
    if kind is None:
        return None
    if kind == "median":
        return MedianPruner(objective, direction, warmup_epochs, warmup_trials, epochs)
    if kind == "asha":
        return SuccessiveHalvingPruner(objective, direction, warmup_epochs, epochs, warmup_trials)
    raise ValueError(f"unknown pruner {kind!r}; use median or asha")
