"""keras-tuner pieces: the HyperModel over the registry, the oracles and the tuners.

keras-tuner ends a trial COMPLETED or FAILED; its INVALID means "crashed, retry" and becomes
FAILED (counted towards ``max_consecutive_failed_trials``) once retries run out. Here a
configuration that cannot be built or is over ``--max-params`` (``tuning.preflight``) is
refused before any training: the trial reports a NaN objective (with its parameter count),
which keras-tuner's oracle turns into INVALID, and the oracles below keep it INVALID instead of
retrying it, so it never counts as a crash. A trial that crashes while training raises
``FailedTrialError``: FAILED, and the search goes on (it stops after
``MAX_CONSECUTIVE_FAILED`` crashes in a row, keras-tuner's guard against a broken set-up). The
status travels in keras-tuner's protocol, so the same holds with a chief oracle and workers on
other machines.

Everything here goes through keras-tuner's public API (``HyperModel.build``/``fit``/
``declare_hyperparameters``, ``Tuner.run_trial`` and its trial callbacks, the oracles'
arguments) except three behaviours it has no public hook for. They override private methods
written for keras-tuner 1.4.7-1.4.8 (pinned in pyproject.toml; ``PRIVATE_HOOKS`` lists them
and tests/test_tuning.py checks their signatures and behaviour, so an upgrade that changes
them fails loudly):

- ``Oracle._retry(trial)``: a refused (INVALID) trial is final, neither retried nor FAILED;
- ``Oracle._random_values()``, with ``Oracle._compute_values_hash(values)`` and the
  ``Oracle._tried_so_far`` set: random draws that break the space's own rules
  (``--increasing-filters``) are drawn again and never proposed later;
- ``BaseTuner._populate_initial_space()``: keras-tuner's version builds the model at the
  default values (once per conditional scope) after ``declare_hyperparameters``; ours only
  declares, since the defaults may be a refused configuration and building costs time.

``ZooHyperband`` also starts at ``Tuner.__init__``: ``Hyperband.__init__`` only makes a plain
``HyperbandOracle``, and ours is passed in (the test compares the attributes both set up).

Importing this module imports keras-tuner and Keras; ``tuning.search`` imports it only when a
search starts, so bad input is refused without that cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Callable

import keras_tuner
from keras_tuner import errors, oracles
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.engine.trial import TrialStatus

from tuning.preflight import RejectedConfiguration, check_configuration
from tuning.records import SearchPlan
from tuning.results import format_trial_line, trial_row
from tuning.space import SearchSpace
from zoo.train import TrainPlan, compile_model, training_batches

PROJECT = "tuner"
# keras-tuner's guard: this many crashed trials in a row stop the search.
MAX_CONSECUTIVE_FAILED = 3
# Random draws an oracle makes before giving up on satisfying --increasing-filters.
RULE_REDRAWS = 200

# The private keras-tuner methods overridden here, with the signatures they were written for.
PRIVATE_HOOKS = {
    "Oracle._retry": (keras_tuner.Oracle, "_retry", "(self, trial)"),
    "Oracle._random_values": (keras_tuner.Oracle, "_random_values", "(self)"),
    "Oracle._compute_values_hash": (keras_tuner.Oracle, "_compute_values_hash",
                                    "(self, values)"),
    "BaseTuner._populate_initial_space": (BaseTuner, "_populate_initial_space", "(self)"),
}


class ZooHyperModel(keras_tuner.HyperModel):
    """build(hp): the registry's builder at the trial's values; fit: zoo.train's pieces."""

    def __init__(self, space: SearchSpace, base: TrainPlan, data, max_params: int | None,
                 steps_per_epoch: int):
        super().__init__(name=space.model)
        self.space, self.base, self.data = space, base, data
        self.max_params, self.steps_per_epoch = max_params, steps_per_epoch
        self.last_measure: tuple[int | None, int | None] = (None, None)

    def declare_hyperparameters(self, hp) -> None:
        """Declare the whole space (conditional stages included) without building a model."""
        self.space.declare(hp)

    def trial_plan(self, hp) -> TrainPlan:
        """The base training plan with this trial's training settings (learning rate)."""
        _, training = self.space.resolve(hp.values)
        return replace(self.base, **training)

    def build(self, hp):
        """The compiled model at ``hp``'s values; RejectedConfiguration if it is refused."""
        values = self.space.declare(hp)
        self.last_measure = (None, None)
        model, params, macs = check_configuration(self.space, values, self.max_params)
        self.last_measure = (params, macs)
        compile_model(model, self.trial_plan(hp), self.steps_per_epoch)
        return model

    def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
        """Train with zoo.train's batches for the trial's (or Hyperband's) number of epochs."""
        plan = self.trial_plan(hp)
        train, val = training_batches(plan, self.data)
        return model.fit(train, validation_data=val, epochs=epochs or plan.epochs,
                         initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)


# -- oracles ---------------------------------------------------------------------------------
class SpaceRulesOracle:
    """Mixed into each keras-tuner oracle: refused trials end INVALID instead of being retried
    (see the module doc), and random draws that break the space's own rules (e.g.
    --increasing-filters) are drawn again, so random, Hyperband and Bayesian searches do not
    spend their trials on them. Grid search and the Bayesian model's own suggestions can still
    propose such configurations; those are refused as INVALID without training."""

    def __init__(self, *args, space: SearchSpace, **kwargs):
        super().__init__(*args, **kwargs)
        self.search_space = space

    def _retry(self, trial) -> bool:
        if trial.status == TrialStatus.INVALID:
            return False  # refused before training: final, and not a crash
        return super()._retry(trial)

    def _random_values(self) -> dict[str, Any] | None:
        values = None
        for _ in range(RULE_REDRAWS):
            values = super()._random_values()
            if values is None or not self.search_space.constraint_violation(
                    self.search_space.resolve(values)[0]):
                return values
            self._tried_so_far.add(self._compute_values_hash(values))  # never again
        return values


class ZooRandomSearchOracle(SpaceRulesOracle, oracles.RandomSearchOracle):
    """keras-tuner's random search with the space's rules."""


class ZooGridSearchOracle(SpaceRulesOracle, oracles.GridSearchOracle):
    """keras-tuner's grid search with the space's rules."""


class ZooBayesianOptimizationOracle(SpaceRulesOracle, oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimisation with the space's rules."""


class ZooHyperbandOracle(SpaceRulesOracle, oracles.HyperbandOracle):
    """keras-tuner's Hyperband with the space's rules."""


ORACLES = {"random": ZooRandomSearchOracle, "grid": ZooGridSearchOracle,
           "bayesian": ZooBayesianOptimizationOracle, "hyperband": ZooHyperbandOracle}


# -- tuners ----------------------------------------------------------------------------------
class ZooTrials:
    """Tuner behaviour shared by every algorithm: refusals, crashes, a line per trial."""

    def __init__(self, *, echo: Callable[[str], None] = print, **kwargs):
        self._start_trial_handling(echo)
        super().__init__(**kwargs)

    def _start_trial_handling(self, echo: Callable[[str], None]) -> None:
        # Set before keras-tuner's __init__, which may already run trial callbacks on reload.
        self.echo = echo
        self.trials_run_here = 0
        self.last_note = ""

    @property
    def objective_name(self) -> str:
        """The metric the search optimizes (e.g. val_accuracy)."""
        return self.oracle.objective.name

    def _populate_initial_space(self) -> None:
        # keras-tuner's version goes on to build the model at the defaults (which may be a
        # refused configuration) to find conditional hyperparameters; ours are all declared.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

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
        row = trial_row(ended, self.hypermodel.space, self.objective_name, note=self.last_note)
        self.echo(format_trial_line(row, self.objective_name))


class ZooTuner(ZooTrials, keras_tuner.Tuner):
    """keras-tuner's Tuner with the zoo's trial handling (random, Bayesian, grid)."""


class ZooHyperband(ZooTrials, keras_tuner.Hyperband):
    """keras-tuner's Hyperband (epochs per bracket, warm starts) with the zoo's handling."""

    def __init__(self, *, echo: Callable[[str], None] = print, **kwargs):
        # Hyperband.__init__ would only build a plain HyperbandOracle; ours comes in kwargs.
        self._start_trial_handling(echo)
        keras_tuner.Tuner.__init__(self, **kwargs)


def best_epoch(history: dict[str, list[float]], objective: str, direction: str) -> dict:
    """The metrics of the epoch with the best objective."""
    values = history[objective]
    pick = min if direction == "min" else max
    epoch = values.index(pick(values))
    return {k: float(v[epoch]) for k, v in history.items() if len(v) > epoch}


def make_tuner(plan: SearchPlan, hypermodel: ZooHyperModel, strategy=None,
               echo: Callable[[str], None] = print) -> ZooTrials:
    """The keras-tuner tuner for ``plan.algorithm``, resuming from ``plan.out_dir``.

    Args:
        plan: the search (algorithm, objective, budget, seed, output folder).
        hypermodel: builds and trains the trials; its space is the search's.
        strategy: a tf.distribute strategy for each trial's training, or None.
        echo: receives one line per finished trial.
    """
    space = hypermodel.space
    objective = keras_tuner.Objective(plan.objective, direction=plan.direction)
    common = dict(objective=objective, seed=plan.seed,
                  max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILED)
    if plan.algorithm == "hyperband":
        budget = {"max_epochs": plan.epochs, "factor": 3}
    elif plan.algorithm == "grid":
        # keras-tuner pads trial ids to the width of max_trials, so give it the grid's size.
        budget = {"max_trials": plan.max_trials or space.size()}
    else:
        budget = {"max_trials": plan.max_trials}
    oracle = ORACLES[plan.algorithm](**budget, **common, space=space)
    tuner_class = ZooHyperband if plan.algorithm == "hyperband" else ZooTuner
    return tuner_class(oracle=oracle, hypermodel=hypermodel, echo=echo,
                       directory=str(plan.out_dir), project_name=PROJECT, overwrite=False,
                       distribution_strategy=strategy)
