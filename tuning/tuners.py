"""keras-tuner pieces: the HyperModel over the registry, the oracles and the tuners.

keras-tuner ends a trial COMPLETED or FAILED; its INVALID means "crashed, retry" and becomes
FAILED (counted towards ``max_consecutive_failed_trials``) once retries run out. Here a
configuration that cannot be built or is over a budget (``--max-params``, ``--max-macs``,
``--max-latency-ms``: ``tuning.preflight``) is refused before any training: the trial reports
a NaN objective (with what it measured),
which keras-tuner's oracle turns into INVALID, and the oracles below keep it INVALID instead of
retrying it, so it never counts as a crash. Why it was refused is kept as the trial's message
(keras-tuner's field for it, saved in trial.json), which the tables read back. A trial that
crashes while training raises ``FailedTrialError``: FAILED, and the search goes on (it stops after
``MAX_CONSECUTIVE_FAILED`` crashes in a row, keras-tuner's guard against a broken set-up). The
status travels in keras-tuner's protocol, so the same holds with a chief oracle and workers on
other machines. A trial that runs out of memory is retried once at half the batch size
(``OOM_ERRORS``), its first attempt's records dropped (``FRESH_RECORDS``), then FAILED.

Per epoch, the tuner reports the epoch's metrics to the oracle (``oracle.update_trial`` with
``step=epoch``: keras-tuner's public time series in ``trial.metrics``) and asks the plan's
pruner (``tuning.pruning``) whether to stop the trial. At the end of a trained trial it reports
what the table needs besides the objective (parameters, MACs, latency, seconds, epochs, batch,
resident memory) the same way, at the best epoch; keras-tuner then keeps those records instead
of the dict ``run_trial`` returns (``BaseTuner._run_and_update_trial``: a use it calls
deprecated but supports in 1.4, with a DeprecationWarning the search silences by its text,
``SELF_REPORT_WARNING``). Were that path removed, keras-tuner would record the returned dict a
second time, at step 0, mixing it into the first epoch's record that pruning reads;
tests/test_tuning.py checks the path is still there.

Everything here goes through keras-tuner's public API (``HyperModel.build``/``fit``/
``declare_hyperparameters``, ``Tuner.run_trial`` and its trial callbacks, ``Oracle.end_trial``,
``update_trial``, the oracles' arguments) except where it has no public hook: those private
names live in ``tuning.keras_tuner_compat`` only (pinned, and checked by tests/test_tuning.py),
which gives them names of the zoo's own (``should_retry``, ``random_values``,
``populate_initial_space``, ...) for the classes below to override. ``make_tuner`` installs its
atomic writer for keras-tuner's files (``keras_tuner_compat.install``), so a kill never leaves a
cut-off oracle, tuner or trial file.

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
from keras_tuner.engine.trial import TrialStatus

from tuning.keras_tuner_compat import OracleHooks, TunerHooks, install
from tuning.preflight import Budget, Measure, RejectedConfiguration, check_configuration
from tuning.pruning import PRUNED_METRIC, make_pruner
from tuning.records import SearchPlan, trial_seed
from tuning.resources import (
    custom_gradient_names,
    free_memory,
    is_out_of_memory,
    resident_mb,
)
from tuning.results import format_trial_line, trial_row
from tuning.space import SearchSpace
from zoo.core.runs import close_abandoned_h5_files, disk_full_error
from zoo.data.inputs import split_size
from zoo.training.distribution import global_sharding
from zoo.training.dtype_policy import dtype_policy_scope
from zoo.training.seeding import seed_everything
from zoo.training.sharded_run import padding_callbacks
from zoo.training.train import TrainPlan, compile_model, fit_class_weight, training_batches

PROJECT = "tuner"
# keras-tuner's guard: this many crashed trials in a row stop the search.
MAX_CONSECUTIVE_FAILED = 3
# Random draws an oracle makes before giving up on satisfying --increasing-filters.
RULE_REDRAWS = 200
# Reported to the oracle (``update_trial``) to drop what a trial recorded so far, before it is
# trained again from its start at half the batch (``ResumableOracle``). A report rather than a
# method call, so that it also travels from a --workers worker to the chief's oracle.
FRESH_RECORDS = "zoo/fresh_records"

# keras-tuner 1.4's DeprecationWarning when run_trial has reported the objective itself.
SELF_REPORT_WARNING = "The use case of calling"


class SearchDiskFullError(OSError, errors.FatalError):
    """The disk filled up during a trial: keras-tuner stops the search (a FatalError) and the
    CLI reports it as the OSError it is, in one line."""


class ZooHyperModel(keras_tuner.HyperModel):
    """build(hp): the registry's builder at the trial's values; fit: zoo.training.train's pieces.

    ``batch_size`` is the batch the next trial trains with (the tuner halves it to retry a
    trial that ran out of memory); ``last_measure`` is what the last build measured.
    """

    def __init__(self, space: SearchSpace, base: TrainPlan, data, budget: Budget):
        super().__init__(name=space.model)
        self.space, self.base, self.data, self.budget = space, base, data, budget
        self.batch_size = base.batch_size if base is not None else 32
        self.last_measure = Measure()

    def declare_hyperparameters(self, hp) -> None:
        """Declare the whole space (conditional stages included) without building a model."""
        self.space.declare(hp)

    def trial_plan(self, hp) -> TrainPlan:
        """The base training plan with this trial's training settings and batch size."""
        _, training = self.space.resolve(hp.values)
        return replace(self.base, batch_size=self.batch_size, **training)

    def build(self, hp):
        """The compiled model at ``hp``'s values; RejectedConfiguration if it is refused."""
        values = self.space.declare(hp)
        self.last_measure = Measure()
        # Under the search's dtype policy, set here: keras-tuner's clear_session() before
        # each build resets Keras' global policy.
        with dtype_policy_scope(self.base.dtype_policy if self.base is not None else None):
            model, self.last_measure = check_configuration(self.space, values, self.budget)
        steps = math.ceil(split_size(self.data, "train") / self.batch_size)
        sharding = global_sharding()  # --devices under JAX: batches split evenly
        compile_model(model, self.trial_plan(hp), steps, padded=sharding is not None)
        return model

    def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
        """Train with zoo.training.train's batches for the trial's (or Hyperband's) number of
        epochs."""
        plan = self.trial_plan(hp)
        sharding = global_sharding()
        train, val = training_batches(plan, self.data, sharding)
        callbacks = [*padding_callbacks(len(self.data.x_val), sharding), *(callbacks or [])]
        # shuffle=False: the batches come shuffled (zoo.training.train.training_batches).
        return model.fit(train, validation_data=val, epochs=epochs or plan.epochs,
                         initial_epoch=initial_epoch, callbacks=callbacks, verbose=0,
                         shuffle=False, class_weight=fit_class_weight(plan, self.data))


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

    def should_retry(self, trial) -> bool:
        if trial.status == TrialStatus.INVALID:
            return False  # refused before training: final, and not a crash
        return super().should_retry(trial)

    def random_values(self) -> dict[str, Any] | None:
        values = None
        for _ in range(RULE_REDRAWS):
            values = super().random_values()
            if values is None or not self.search_space.constraint_violation(
                    self.search_space.resolve(values)[0]):
                return values
            self.never_propose(values)
        return values


class ResumableOracle:
    """Mixed into each keras-tuner oracle: on reload, each trial's own trial.json decides
    whether it runs again.

    keras-tuner writes a trial's trial.json before oracle.json, and oracle.json still lists
    an ended trial as ongoing until the tuner saves again after ``end_trial``; reload sends the
    ongoing trials for retry. So a kill just after a trial ended trained it again on resume.
    trial.json is the later record of both, so here the retry queue is exactly the trials it
    says are RUNNING, each with the records of its killed run dropped.

    A trial trained again within the search (the out-of-memory retry at half the batch) has
    its first attempt's records dropped the same way, when its tuner reports
    ``FRESH_RECORDS``.

    A trial that oracle.json does not list at all was killed between ``create_trial``'s two
    writes (its trial.json, then oracle.json), before any training. The oracle's saved state
    is the one it proposed that trial from, so the trial is forgotten and proposed again: the
    same id, and the same values where the oracle is seeded. Running it as it was instead put
    it beside the state that does not know it: Hyperband's brackets (``_brackets``) lacked it
    and drew another trial for its slot, and every random draw after it shifted by one.
    """

    def reload(self):
        super().reload()
        for tid in [tid for tid in self.trials if tid not in self.start_order]:
            del self.trials[tid]  # proposed again by create_trial, under the same id
        running = [tid for tid, trial in sorted(self.trials.items())
                   if trial.status == TrialStatus.RUNNING]
        for tid in running:
            self.forget_records(tid)
        self.set_retry_queue(running[::-1])  # keras-tuner pops the last one first
        for tid, trial in sorted(self.trials.items()):
            if trial.status != TrialStatus.RUNNING and tid not in self.end_order:
                self.end_order.append(tid)

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        """keras-tuner's ``update_trial``; a ``FRESH_RECORDS`` report drops the records."""
        if FRESH_RECORDS in metrics:
            return self.forget_records(trial_id)
        return super().update_trial(trial_id, metrics, step)

    def forget_records(self, trial_id: str):
        """Drop everything trial ``trial_id`` recorded, as it is trained again from its start:
        keras-tuner keeps every value reported for a step and scores the step by their mean,
        so the earlier run's epochs would be mixed into the new run's. Returns the trial."""
        trial = self.trials[trial_id]
        trial.metrics = type(trial.metrics)()  # keras-tuner does not export MetricsTracker
        trial.score, trial.best_step = None, 0
        return trial


class ChiefOracle:
    """Mixed into each keras-tuner oracle: what a chief serving worker processes needs.

    ``trial_ended`` (if set) is called with each trial the oracle ends, so the chief prints
    the lines of the trials its workers run. ``end_trial_of_lost_worker`` ends the trial of a
    worker process that crashed (it would otherwise stay ongoing, and keras-tuner's chief
    would wait for it forever) as FAILED, through keras-tuner's own ``end_trial``. With
    ``serving_workers`` set, keras-tuner's "too many consecutive failures" error is kept in
    ``stop_reason`` instead of raised: raised inside the gRPC handler it would only reach the
    worker, and keras-tuner's lock would stay held (``synchronized`` does not release it on
    an exception); the chief's supervisor stops the search with it instead.

    keras-tuner's protocol does not carry a trial's message from a worker, so a refused
    trial's reason is lost on the way. With ``explain_refusal`` set (by a chief), it is worked
    out again once, from the trial's values and records, before the oracle's lock is taken
    (it may build the model, and workers would wait), and kept as the trial's message.
    """

    trial_ended: Callable[[Any], None] | None = None
    explain_refusal: Callable[[Any], str] | None = None
    serving_workers = False
    stop_reason: str | None = None

    def end_trial(self, trial):
        if (self.explain_refusal is not None and not trial.message
                and self._reports_refusal(trial)):
            trial.message = self.explain_refusal(self.trials[trial.trial_id])
        self._end_trial(trial)

    def _reports_refusal(self, trial) -> bool:
        """Whether a worker ends ``trial`` as a refusal: COMPLETED with nothing but a NaN
        objective recorded, which keras-tuner's ``end_trial`` turns into INVALID."""
        recorded = self.trials.get(trial.trial_id)
        name = self.objective.name
        if (trial.status != TrialStatus.COMPLETED or recorded is None
                or not recorded.metrics.exists(name)):
            return False
        return all(math.isnan(o.mean()) for o in recorded.metrics.get_history(name))

    @keras_tuner.synchronized
    def _end_trial(self, trial):
        if trial.trial_id in self.end_order:
            # Already ended: a crashed worker's trial, whose report arrived after the chief
            # had ended it as FAILED.
            return
        try:
            super().end_trial(trial)
        except RuntimeError as err:
            if not self.serving_workers:
                raise
            self.stop_reason = str(err).strip().splitlines()[0]
            return
        if self.trial_ended is not None and trial.trial_id in self.end_order:
            self.trial_ended(self.trials[trial.trial_id])

    @keras_tuner.synchronized
    def end_trial_of_lost_worker(self, tuner_id: str, message: str):
        """End the trial worker ``tuner_id`` was running as FAILED and forget the worker.

        Args:
            tuner_id: the crashed worker's KERASTUNER_TUNER_ID.
            message: why, recorded as the trial's message (its note in the table).

        Returns:
            The trial, or None if the worker had none running.
        """
        self.tuner_ids.discard(tuner_id)
        trial = self.ongoing_trials.get(tuner_id)
        if trial is None:
            return None
        trial.status = TrialStatus.FAILED
        trial.message = message
        self.end_trial(trial)
        return trial


class ZooRandomSearchOracle(ChiefOracle, ResumableOracle, SpaceRulesOracle, OracleHooks,
                            oracles.RandomSearchOracle):
    """keras-tuner's random search with the space's rules."""


class ZooGridSearchOracle(ChiefOracle, ResumableOracle, SpaceRulesOracle, OracleHooks,
                          oracles.GridSearchOracle):
    """keras-tuner's grid search with the space's rules, resumable between two trials."""

    def reload(self):
        """Reload the trials, then rebuild the walk through the grid from them.

        keras-tuner's grid search keeps its walk (``_ordered_ids``, the trials sorted by their
        values, and ``_populate_next``, the trials whose next combination is still to be
        proposed) only in memory: a search killed after a trial ended and before the next one
        started resumed with an empty walk and stopped at once, with trials left untried.
        Every reloaded trial is queued again; combinations already tried are skipped by the
        walk itself (each trial's successor in value order is compared).
        """
        super().reload()
        self.restart_grid_walk()


class ZooBayesianOptimizationOracle(ChiefOracle, ResumableOracle, SpaceRulesOracle, OracleHooks,
                                    oracles.BayesianOptimizationOracle):
    """keras-tuner's Bayesian optimisation with the space's rules."""


class ZooHyperbandOracle(ChiefOracle, ResumableOracle, SpaceRulesOracle, OracleHooks,
                         oracles.HyperbandOracle):
    """keras-tuner's Hyperband with the space's rules."""


ORACLES = {"random": ZooRandomSearchOracle, "grid": ZooGridSearchOracle,
           "bayesian": ZooBayesianOptimizationOracle, "hyperband": ZooHyperbandOracle}


# -- tuners ----------------------------------------------------------------------------------
class _NoModel:
    """Where an isolated trial's epochs are replayed: stopping was decided in its process."""

    stop_training = False


class ZooTrials(TunerHooks):
    """Tuner behaviour shared by every algorithm: refusals, crashes, out-of-memory retries,
    per-epoch records and pruning, a line per trial."""

    def __init__(self, *, echo: Callable[[str], None] = print, pruner=None,
                 isolate: bool = False, **kwargs):
        self._start_trial_handling(echo, pruner, isolate)
        super().__init__(**kwargs)

    def _start_trial_handling(self, echo: Callable[[str], None], pruner=None,
                              isolate: bool = False) -> None:
        # Set before keras-tuner's __init__, which may already run trial callbacks on reload.
        self.echo = echo
        self.pruner = pruner
        self.isolate = isolate
        self.trials_run_here = 0
        self.last_note = ""
        self.pruned_at: int | None = None
        self.epochs_done = 0
        self.gradients_before: frozenset[str] = frozenset()

    @property
    def objective_name(self) -> str:
        """The metric the search optimizes (e.g. val_accuracy)."""
        return self.oracle.objective.name

    def populate_initial_space(self) -> None:
        # keras-tuner's version goes on to build the model at the defaults (which may be a
        # refused configuration) to find conditional hyperparameters; ours are all declared.
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def on_search_begin(self):
        super().on_search_begin()
        # keras-tuner first writes tuner0.json, which makes a rerun reload the project, when
        # the first trial ends; a kill before that (after its trial.json said COMPLETED)
        # made the rerun start afresh and train that trial again.
        self.save()

    def on_epoch_end(self, trial, model, epoch, logs=None):
        """Record the epoch's metrics with the oracle; stop the trial if the pruner says so."""
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self.epochs_done = epoch + 1
        if self.objective_name not in logs:
            return
        self.oracle.update_trial(trial.trial_id, logs, step=epoch)
        value = logs[self.objective_name]
        if self.pruner is not None and self.pruner.should_stop(
                trial.trial_id, epoch, value, self._known_trials()):
            self.pruned_at = epoch + 1
            model.stop_training = True

    def _known_trials(self):
        # Local and chief oracles hold every trial; a worker's oracle client does not.
        return list(getattr(self.oracle, "trials", {}).values())

    def run_trial(self, trial, *args, **kwargs):
        start = time.perf_counter()
        self.pruned_at, self.epochs_done = None, 0
        batch = self.hypermodel.base.batch_size
        try:
            try:
                histories = self._train(trial, batch, *args, **kwargs)
            except Exception as err:
                if not is_out_of_memory(err) or batch < 2:
                    raise
                first = f"{type(err).__name__} at batch {batch}"
                batch //= 2
                self.echo(f"trial {trial.trial_id}: out of memory at batch {batch * 2}; "
                          f"retrying once at batch {batch}")
                self.oracle.update_trial(trial.trial_id, {FRESH_RECORDS: 1.0})
                self.pruned_at = None
                try:
                    histories = self._train(trial, batch, *args, **kwargs)
                except Exception as again:
                    if is_out_of_memory(again):
                        self._report_batch(trial, batch)
                        raise errors.FailedTrialError(
                            f"out of memory ({first}, then {type(again).__name__} at batch "
                            f"{batch})") from again
                    raise
        except RejectedConfiguration as rejected:
            self.last_note = trial.message = rejected.reason  # the oracle keeps the message
            measure = rejected.measure
            return {self.objective_name: float("nan"), "params": _number(measure.params),
                    "macs": _number(measure.macs), "latency_ms": _number(measure.latency_ms),
                    "seconds": time.perf_counter() - start}
        except errors.FatalError:
            raise
        except errors.FailedTrialError as err:
            self.last_note = str(err)
            raise
        except Exception as err:  # NaN loss, a bug in a model, ...: FAILED, search goes on
            full = disk_full_error(err)
            if full is not None:  # ... but no trial can finish on a full disk: stop it all
                close_abandoned_h5_files()
                raise SearchDiskFullError(full.errno, full.strerror, full.filename) from None
            self.last_note = f"{type(err).__name__}: {err}"
            raise errors.FailedTrialError(self.last_note) from err
        history = histories[-1].history
        losses = history.get("loss", [])
        if not losses or any(math.isnan(v) or math.isinf(v) for v in losses):
            self.last_note = "the training loss became NaN/inf"
            raise errors.FailedTrialError(self.last_note)
        measure = self.hypermodel.last_measure
        self.last_note = "" if self.pruned_at is None else f"pruned after epoch {self.pruned_at}"
        best = best_epoch(history, self.objective_name, self.oracle.objective.direction)
        results = {self.objective_name: best[self.objective_name],
                   "params": float(measure.params), "macs": float(measure.macs),
                   "latency_ms": _number(measure.latency_ms),
                   "seconds": time.perf_counter() - start, "epochs": float(len(losses)),
                   "batch_size": float(batch), "rss_mb": resident_mb()}
        if self.pruned_at is not None:
            results[PRUNED_METRIC] = float(self.pruned_at)
        # The per-epoch records made keras-tuner skip its own update: make this one ourselves,
        # at the best epoch's step. A trial Hyperband continues starts at tuner/initial_epoch,
        # so its history's first entry is that epoch (counted from 0 it would add the best
        # value to another epoch's record).
        first_epoch = trial.hyperparameters.values.get("tuner/initial_epoch", 0)
        self.oracle.update_trial(trial.trial_id, results, step=first_epoch + best["epoch"])
        return results

    def _train(self, trial, batch: int, *args, **kwargs):
        self.hypermodel.batch_size = batch
        if self.isolate:
            return self._train_isolated(trial, batch)
        return super().run_trial(trial, *args, **kwargs)

    def _train_isolated(self, trial, batch: int):
        """Train the trial in a fresh process (``tuning.isolation``) and record it here."""
        from tuning.isolation import History, IsolatedTrial, run_isolated

        model = self.hypermodel
        job = IsolatedTrial(
            trial_id=trial.trial_id, values=dict(trial.hyperparameters.values),
            space=model.space, base=model.base, budget=model.budget, batch_size=batch,
            checkpoint=self.checkpoint_path(trial.trial_id),
            objective=self.oracle.objective, pruner=self.pruner,
            trial_states=[t.get_state() for t in self._known_trials()])
        result = run_isolated(job)
        model.last_measure = result.measure or Measure()
        if result.refused is not None:
            raise RejectedConfiguration(result.refused, result.measure)
        for epoch, logs in enumerate(result.epoch_logs):
            self.on_epoch_end(trial, _NoModel(), epoch, logs)
        if result.error is not None:
            raise (MemoryError if result.out_of_memory else RuntimeError)(
                f"in the trial's process: {result.error}")
        self.pruned_at = result.pruned_at
        return [History(result.history)]

    def _report_batch(self, trial, batch: int) -> None:
        # A failed trial has no objective; NaN keeps keras-tuner's update valid.
        self.oracle.update_trial(trial.trial_id, {self.objective_name: float("nan"),
                                                  "batch_size": float(batch)})

    def on_trial_begin(self, trial):
        self.last_note = ""
        self.gradients_before = custom_gradient_names()
        if self.is_worker() and trial.trial_id.isdigit():
            # Which worker runs which trial depends on timing: seed each trial by its number,
            # so its result does not (as --isolate seeds each trial's process).
            base = self.hypermodel.base
            seed_everything(trial_seed(base.seed, trial.trial_id),
                            deterministic=base.deterministic)
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        # The trial's model, optimizer and traced functions, before the next trial; the
        # custom gradients its training registered would keep them alive (tuning.resources).
        free_memory(keep_gradients=self.gradients_before)
        self.trials_run_here += 1
        ended = self.oracle.get_trial(trial.trial_id)
        row = trial_row(ended, self.hypermodel.space, self.objective_name, note=self.last_note)
        self.echo(format_trial_line(row, self.objective_name))


def _number(value) -> float:
    return float("nan") if value is None else float(value)


class ZooTuner(ZooTrials, keras_tuner.Tuner):
    """keras-tuner's Tuner with the zoo's trial handling (random, Bayesian, grid)."""


class ZooHyperband(ZooTrials, keras_tuner.Hyperband):
    """keras-tuner's Hyperband (epochs per bracket, warm starts) with the zoo's handling."""

    def __init__(self, *, echo: Callable[[str], None] = print, pruner=None,
                 isolate: bool = False, **kwargs):
        # Hyperband.__init__ would only build a plain HyperbandOracle; ours comes in kwargs.
        self._start_trial_handling(echo, pruner, isolate)
        keras_tuner.Tuner.__init__(self, **kwargs)


def best_epoch(history: dict[str, list[float]], objective: str, direction: str) -> dict:
    """The metrics of the epoch with the best objective, and its index as ``epoch``."""
    values = history[objective]
    pick = min if direction == "min" else max
    epoch = values.index(pick(values))
    return {"epoch": epoch, **{k: float(v[epoch]) for k, v in history.items()
                               if len(v) > epoch}}


def make_tuner(plan: SearchPlan, hypermodel: ZooHyperModel, strategy=None,
               echo: Callable[[str], None] = print) -> ZooTrials:
    """The keras-tuner tuner for ``plan.algorithm``, resuming from ``plan.out_dir``.

    Args:
        plan: the search (algorithm, objective, budget, seed, output folder).
        hypermodel: builds and trains the trials; its space is the search's.
        strategy: a tf.distribute strategy for each trial's training, or None.
        echo: receives one line per finished trial.
    """
    install()  # keras-tuner's files written whole or not at all
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
    pruner = make_pruner(plan.prune, plan.objective, plan.direction, plan.epochs,
                         plan.prune_warmup_epochs, plan.prune_warmup_trials)
    return tuner_class(oracle=oracle, hypermodel=hypermodel, echo=echo, pruner=pruner,
                       isolate=plan.isolate,
                       directory=str(plan.out_dir), project_name=PROJECT, overwrite=False,
                       distribution_strategy=strategy)
