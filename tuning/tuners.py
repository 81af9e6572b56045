"""keras-tuner pieces: the HyperModel over the registry, the oracles and the tuners.

keras-tuner ends a trial COMPLETED or FAILED; its INVALID means "crashed, retry" and becomes
FAILED (counted towards ``max_consecutive_failed_trials``) once retries run out. Here a
configuration that cannot be built (zoo.geometry says a window does not fit its feature map, a
list has the wrong length) or is over ``--max-params`` is refused before any training: the
trial reports a NaN objective (with its parameter count), which keras-tuner's oracle turns into
INVALID, and the oracles below keep it INVALID instead of retrying it, so it never counts as a
crash. A trial that crashes while training raises ``FailedTrialError``: FAILED, and the search
goes on (it stops after ``MAX_CONSECUTIVE_FAILED`` crashes in a row, keras-tuner's guard
against a broken set-up). The status travels in keras-tuner's protocol, so the same holds with
a chief oracle and workers on other machines.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable

from tuning.results import format_trial_line, trial_row
from tuning.space import SearchSpace
from zoo.train import TrainPlan, compile_model, training_batches

if TYPE_CHECKING:
    from tuning.search import SearchPlan

PROJECT = "tuner"
# Configurations the pre-flight check builds at most when looking for a valid one.
PREFLIGHT_LIMIT = 64
# keras-tuner's guard: this many crashed trials in a row stop the search.
MAX_CONSECUTIVE_FAILED = 3
# Random draws an oracle makes before giving up on satisfying --increasing-filters.
RULE_REDRAWS = 200


class RejectedConfiguration(Exception):
    """A configuration refused before training (impossible geometry, too many parameters)."""

    def __init__(self, reason: str, params: int | None = None, macs: int | None = None):
        super().__init__(reason)
        self.reason, self.params, self.macs = reason, params, macs


def check_configuration(space: SearchSpace, values: dict[str, Any],
                        max_params: int | None):
    """Build the configuration; return (model, params, MACs) or raise RejectedConfiguration."""
    from zoo.geometry import GeometryError
    from zoo.layer_table import summarize
    from zoo.registry import build

    builder, _ = space.resolve(values)
    violation = space.constraint_violation(builder)
    if violation:
        raise RejectedConfiguration(violation)
    try:
        model = build(space.model, **builder)
    except (GeometryError, ValueError) as err:
        raise RejectedConfiguration(f"{type(err).__name__}: {err}") from None
    params = model.count_params()
    macs = summarize(model).total_macs
    if max_params is not None and params > max_params:
        raise RejectedConfiguration(f"{params:,} parameters > --max-params {max_params:,}",
                                    params, macs)
    return model, params, macs


def find_valid_configuration(space: SearchSpace, max_params: int | None,
                             limit: int = PREFLIGHT_LIMIT) -> dict[str, Any]:
    """A buildable configuration of the space, or ValueError saying why there is none."""
    import keras

    reasons: dict[str, int] = {}
    tried = 0
    for values in space.configurations(limit):
        tried += 1
        try:
            check_configuration(space, values, max_params)
            keras.backend.clear_session()
            return values
        except RejectedConfiguration as rejected:
            reasons[rejected.reason] = reasons.get(rejected.reason, 0) + 1
    keras.backend.clear_session()
    common = max(reasons, key=reasons.get) if reasons else "no configuration"
    scope = ("none of its" if tried >= space.size() else
             f"none of {tried} configurations tried (smallest first, then random) of its")
    raise ValueError(f"the search space of {space.model} has no valid configuration: {scope} "
                     f"{space.size():,} configurations can be built; most common reason: "
                     f"{common}. Widen --space (smaller kernels, more stages' room) or raise "
                     f"--max-params")

def hypermodel_class():
    import keras_tuner

    class ZooHyperModel(keras_tuner.HyperModel):
        """build(hp): the registry's builder at the trial's values; fit: zoo.train's pieces."""

        def __init__(self, space: SearchSpace, base: TrainPlan, data, max_params, steps):
            super().__init__(name=space.model)
            self.space, self.base, self.data = space, base, data
            self.max_params, self.steps_per_epoch = max_params, steps
            self.last_measure: tuple[int | None, int | None] = (None, None)

        def trial_plan(self, hp) -> TrainPlan:
            _, training = self.space.resolve(hp.values)
            return replace(self.base, **training)

        def build(self, hp):
            values = self.space.declare(hp)
            self.last_measure = (None, None)
            model, params, macs = check_configuration(self.space, values, self.max_params)
            self.last_measure = (params, macs)
            compile_model(model, self.trial_plan(hp), self.steps_per_epoch)
            return model

        def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
            plan = self.trial_plan(hp)
            train, val = training_batches(plan, self.data)
            return model.fit(train, validation_data=val, epochs=epochs or plan.epochs,
                             initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)

    return ZooHyperModel


def _zoo_oracle(oracle_class, space: SearchSpace):
    """keras-tuner's oracle with two changes: refused trials end INVALID instead of being
    retried (see the module doc), and random draws that break the space's own rules (e.g.
    --increasing-filters) are drawn again, so random, Hyperband and Bayesian searches do not
    spend their trials on them. Grid search and the Bayesian model's own suggestions can
    still propose such configurations; those are refused as INVALID without training."""
    from keras_tuner.src.engine import trial as trial_module

    class Oracle(oracle_class):
        def _retry(self, trial):
            if trial.status == trial_module.TrialStatus.INVALID:
                return False  # refused before training: final, and not a crash
            return super()._retry(trial)

        def _random_values(self):
            values = None
            for _ in range(RULE_REDRAWS):
                values = super()._random_values()
                if values is None or not space.constraint_violation(space.resolve(values)[0]):
                    return values
                self._tried_so_far.add(self._compute_values_hash(values))  # never again
            return values

    Oracle.__name__ = Oracle.__qualname__ = f"Zoo{oracle_class.__name__}"
    return Oracle


def _tuner_classes():
    import keras_tuner
    from keras_tuner import errors

    class ZooTrials:
        """Tuner behaviour shared by every algorithm: refusals, crashes, a line per trial."""

        echo: Callable[[str], None] = print
        objective_name = "val_accuracy"
        space: SearchSpace | None = None
        trials_run_here = 0

        def run_trial(self, trial, *args, **kwargs):
            start = time.perf_counter()
            try:
                histories = super().run_trial(trial, *args, **kwargs)
            except RejectedConfiguration as rejected:
                self.last_note = rejected.reason
                return {self.objective_name: float("nan"),
                        "params": float("nan" if rejected.params is None else rejected.params),
                        "macs": float("nan" if rejected.macs is None else rejected.macs),
                        "seconds": time.perf_counter() - start}
            except errors.FatalError:
                raise
            except Exception as err:  # out of memory, NaN loss, ...: FAILED, search goes on
                self.last_note = f"{type(err).__name__}: {err}"
                raise errors.FailedTrialError(self.last_note) from err
            history = histories[-1].history
            losses = history.get("loss", [])
            if not losses or any(math.isnan(v) or math.isinf(v) for v in losses):
                self.last_note = "the training loss became NaN/inf"
                raise errors.FailedTrialError(self.last_note)
            params, macs = self.hypermodel.last_measure
            self.last_note = ""
            return {**best_epoch(history, self.objective_name, self.oracle.objective.direction),
                    "params": float(params), "macs": float(macs),
                    "seconds": time.perf_counter() - start}

        def on_trial_begin(self, trial):
            self.last_note = ""
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.trials_run_here += 1
            ended = self.oracle.get_trial(trial.trial_id)
            row = trial_row(ended, self.space, self.objective_name, note=self.last_note)
            self.echo(format_trial_line(row, self.objective_name))

    class ZooTuner(ZooTrials, keras_tuner.Tuner):
        """keras-tuner's Tuner with the zoo's trial handling (random, Bayesian, grid)."""

    class ZooHyperband(ZooTrials, keras_tuner.Hyperband):
        """keras-tuner's Hyperband (epochs per bracket, warm starts) with the zoo's handling."""

        def __init__(self, oracle, **kwargs):
            # Hyperband.__init__ would build a plain HyperbandOracle; ours keeps refusals final.
            keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)

    for cls in (ZooTuner, ZooHyperband):
        def _populate_initial_space(self):
            # Declare the space without building a model (keras-tuner's default builds the
            # hypermodel at its defaults, which may be a refused configuration).
            hp = self.oracle.get_space()
            self.space.declare(hp)
            self.oracle.update_space(hp)

        cls._populate_initial_space = _populate_initial_space
    return ZooTuner, ZooHyperband


def best_epoch(history: dict[str, list[float]], objective: str, direction: str) -> dict:
    """The metrics of the epoch with the best objective."""
    values = history[objective]
    pick = min if direction == "min" else max
    epoch = values.index(pick(values))
    return {k: float(v[epoch]) for k, v in history.items() if len(v) > epoch}


def make_tuner(plan: SearchPlan, space: SearchSpace, hypermodel, strategy=None):
    """The keras-tuner tuner for ``plan.algorithm``, resuming from ``plan.out_dir``."""
    import keras_tuner
    from keras_tuner import oracles

    objective = keras_tuner.Objective(plan.objective, direction=plan.direction)
    common = dict(objective=objective, seed=plan.seed,
                  max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILED)
    base = {"random": oracles.RandomSearchOracle, "grid": oracles.GridSearchOracle,
            "bayesian": oracles.BayesianOptimizationOracle,
            "hyperband": oracles.HyperbandOracle}[plan.algorithm]
    if plan.algorithm == "hyperband":
        budget = {"max_epochs": plan.epochs, "factor": 3}
    elif plan.algorithm == "grid":
        # keras-tuner pads trial ids to the width of max_trials, so give it the grid's size.
        budget = {"max_trials": plan.max_trials or space.size()}
    else:
        budget = {"max_trials": plan.max_trials}
    oracle = _zoo_oracle(base, space)(**budget, **common)
    tuner_cls, hyperband_cls = _tuner_classes()
    cls = hyperband_cls if plan.algorithm == "hyperband" else tuner_cls
    # Class attributes, set before __init__: keras-tuner populates the space in its __init__.
    cls.space, cls.objective_name = space, plan.objective
    return cls(oracle=oracle, hypermodel=hypermodel, directory=str(plan.out_dir),
               project_name=PROJECT, overwrite=False, distribution_strategy=strategy)
