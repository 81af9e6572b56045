"""``--isolate``: each trial trains in a fresh process, for backends or models that leak.

The oracle, the table and the pruning decisions stay with keras-tuner in the search's process;
only the building and training of one configuration moves to a child started with
``multiprocessing``'s spawn method (nothing inherited from the parent's Keras state), which
exits when the trial ends, so whatever the trial leaked goes with it. The child trains as
``ZooHyperModel`` does in-process: the same build, budgets and batches, the best epoch's
weights saved where keras-tuner keeps the trial's checkpoint, and the same pruner, asked after
each epoch with the oracle's trials as they were when the trial started (in a sequential
search the trials a pruner compares against have all ended by then). The child returns the
per-epoch logs, which the tuner records with the oracle as if the trial had run in-process.
Costs one interpreter and Keras start per trial (seconds).
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from typing import Any


@dataclass
class IsolatedTrial:
    """What the child needs: the trial's values, the search's settings and the data to load."""

    trial_id: str
    values: dict[str, Any]
    space: Any  # tuning.space.SearchSpace
    base: Any  # zoo.training.train.TrainPlan (data set, fraction, seed, epochs)
    budget: Any  # tuning.preflight.Budget
    batch_size: int
    checkpoint: str
    objective: Any  # keras_tuner.Objective
    pruner: Any = None
    trial_states: list[dict] = field(default_factory=list)  # the oracle's trials, get_state()


@dataclass
class IsolatedResult:
    """What the child sends back (exceptions as text: TensorFlow's do not always pickle)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    epoch_logs: list[dict[str, float]] = field(default_factory=list)
    pruned_at: int | None = None
    measure: Any = None
    refused: str | None = None
    error: str | None = None
    out_of_memory: bool = False
    pid: int = 0  # the process that trained it


class History:
    """Stands in for the Keras History a trial returns (only ``.history`` is read)."""

    def __init__(self, history: dict[str, list[float]]):
        self.history = history


def run_isolated(job: IsolatedTrial) -> IsolatedResult:
    """Train ``job`` in a fresh spawned process and return what it reported."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(train_in_child, (job,))


def train_in_child(job: IsolatedTrial) -> IsolatedResult:
    """The child's side: build, train, and report; never raises."""
    import os

    result = IsolatedResult(pid=os.getpid())
    try:
        _train(job, result)
    except Exception as err:  # reported to the parent, which decides FAILED or retry
        from tuning.preflight import RejectedConfiguration
        from tuning.resources import is_out_of_memory

        if isinstance(err, RejectedConfiguration):
            result.refused, result.measure = err.reason, err.measure
        else:
            result.error = f"{type(err).__name__}: {err}"
            result.out_of_memory = is_out_of_memory(err)
    return result


def best_epoch_checkpoint(job: IsolatedTrial):
    """Keras' ModelCheckpoint saving the weights of the best epoch where keras-tuner's own
    checkpoint of the trial goes (keras-tuner's SaveBestEpoch is not public API)."""
    import keras

    return keras.callbacks.ModelCheckpoint(
        job.checkpoint, monitor=job.objective.name, mode=job.objective.direction,
        save_best_only=True, save_weights_only=True, verbose=0)


def _train(job: IsolatedTrial, result: IsolatedResult) -> None:
    import math
    from dataclasses import replace

    import keras
    from keras_tuner.engine.trial import Trial

    from tuning.preflight import check_configuration
    from tuning.records import trial_seed
    from zoo.data.inputs import fit_source, open_source, split_size
    from zoo.training.dtype_policy import dtype_policy_scope
    from zoo.training.seeding import seed_everything
    from zoo.training.train import (
        compile_model,
        fit_class_weight,
        prepare_data,
        training_batches,
    )

    seed_everything(trial_seed(job.base.seed, job.trial_id), deterministic=job.base.deterministic)
    data = prepare_data(job.base, open_source(job.base.dataset, data_dir=job.base.data_dir))
    data, _ = fit_source(data, job.space.fixed["input_shape"], mode=job.base.input_mode,
                         budget=job.base.memory_budget, skip_bad=job.base.skip_bad_images)
    with dtype_policy_scope(job.base.dtype_policy):
        model, result.measure = check_configuration(job.space, job.values, job.budget)
    _, training = job.space.resolve(job.values)
    plan = replace(job.base, batch_size=job.batch_size, **training)
    compile_model(model, plan, math.ceil(split_size(data, "train") / job.batch_size))
    trials = [Trial.from_state(state) for state in job.trial_states]

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = {k: float(v) for k, v in (logs or {}).items()}
            result.epoch_logs.append(logs)
            value = logs.get(job.objective.name)
            if job.pruner is not None and value is not None and job.pruner.should_stop(
                    job.trial_id, epoch, value, trials):
                result.pruned_at = epoch + 1
                self.model.stop_training = True

    train, val = training_batches(plan, data)
    history = model.fit(train, validation_data=val, epochs=plan.epochs, verbose=0,
                        shuffle=False,  # the batches come shuffled (training_batches)
                        class_weight=fit_class_weight(plan, data),
                        callbacks=[Report(), best_epoch_checkpoint(job)])
    result.history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
