"""keras-tuner's private names the zoo relies on, all here, pinned and checked.

``tuning.tuners`` goes through keras-tuner's public API (``HyperModel.build``/``fit``/
``declare_hyperparameters``, ``Tuner.run_trial`` and its trial callbacks, ``Oracle.populate_space``,
``end_trial``, ``update_trial``, the oracles' arguments) except where keras-tuner has no public
hook. Those private names are used only in this module, written for keras-tuner 1.4.7-1.4.8
(pinned in pyproject.toml): ``PRIVATE_HOOKS`` lists the methods with their signatures and
tests/test_tuning.py checks each of them, and the attributes, so an upgrade that changes one
fails loudly there rather than in a search.

- ``Oracle._retry(trial)``: a refused (INVALID) trial is final, neither retried nor FAILED
  (``OracleHooks.should_retry``);
- ``Oracle._random_values()``, with ``Oracle._compute_values_hash(values)`` and the
  ``Oracle._tried_so_far`` set: random draws that break the space's own rules
  (``--increasing-filters``) are drawn again and never proposed later
  (``OracleHooks.random_values``, ``never_propose``);
- ``BaseTuner._populate_initial_space()``: keras-tuner's version builds the model at the
  default values (once per conditional scope) after ``declare_hyperparameters``; the zoo's only
  declares, since the defaults may be a refused configuration and building costs time
  (``TunerHooks.populate_initial_space``);
- ``GridSearchOracle._ordered_ids``/``_populate_next`` (read by ``populate_space``, ordered by
  ``_compare``): rebuilt from the trials on reload, so a grid search resumes after a kill
  between two trials (keras-tuner keeps them only in memory; ``restart_grid_walk``);
- ``Oracle._retry_queue`` (the trials a reload runs again): set from each trial's own
  trial.json on reload (``set_retry_queue``);
- ``BaseTuner._run_and_update_trial``: relied on, not overridden: when ``run_trial`` has
  reported its records itself, keras-tuner keeps them instead of the dict it returns;
- ``Tuner._get_checkpoint_fname(trial_id)``: where keras-tuner keeps a trial's weights, which
  an isolated trial's process writes (``checkpoint_path``);
- ``BaseTuner._is_worker()``: whether this tuner is a worker of a chief oracle (``is_worker``);
- ``keras_tuner.src.utils.save_json(path, obj)``, through which keras-tuner writes every oracle,
  tuner and trial file: it writes in place, so a kill during a write left a cut-off
  tuner0.json that the rerun could not load (seen in CI: "JSONDecodeError"). ``install()``
  replaces it with ``save_json_atomically`` (local paths; remote ones keep keras-tuner's
  writer); ``tuning.tuners.make_tuner`` calls it, importing this module changes nothing.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import keras_tuner
from keras_tuner import oracles
from keras_tuner.engine.base_tuner import BaseTuner
from keras_tuner.src import utils as keras_tuner_utils

from zoo.core.runs import write_text_atomic

# keras-tuner's file writer, as keras-tuner defines it (``install`` replaces the module's).
KERAS_TUNER_SAVE_JSON = keras_tuner_utils.save_json

# The private keras-tuner methods overridden, called or (for _run_and_update_trial) relied on,
# with the signatures they were written for.
PRIVATE_HOOKS = {
    "Oracle._retry": (keras_tuner.Oracle, "_retry", "(self, trial)"),
    "Oracle._random_values": (keras_tuner.Oracle, "_random_values", "(self)"),
    "Oracle._compute_values_hash": (keras_tuner.Oracle, "_compute_values_hash",
                                    "(self, values)"),
    "BaseTuner._populate_initial_space": (BaseTuner, "_populate_initial_space", "(self)"),
    "BaseTuner._is_worker": (BaseTuner, "_is_worker", "(self)"),
    "Tuner._get_checkpoint_fname": (keras_tuner.Tuner, "_get_checkpoint_fname",
                                    "(self, trial_id)"),
    "GridSearchOracle._compare": (oracles.GridSearchOracle, "_compare", "(self, a, b)"),
    "GridSearchOracle.populate_space": (oracles.GridSearchOracle, "populate_space",
                                        "(self, trial_id)"),
    "BaseTuner._run_and_update_trial": (BaseTuner, "_run_and_update_trial",
                                        "(self, trial, *fit_args, **fit_kwargs)"),
    "utils.save_json": (keras_tuner_utils, "save_json", "(path, obj)"),
}
# The private attributes read or set: Oracle._tried_so_far (a set), Oracle._retry_queue (a
# list, saved in the oracle's state), GridSearchOracle._ordered_ids (sorted, with insert) and
# _populate_next (a list, not saved); tests/test_tuning.py checks each.

_installed = False


def save_json_atomically(path, obj):
    """keras-tuner's ``utils.save_json`` with the file written whole or not at all.

    Args:
        path: the JSON file keras-tuner saves (oracle.json, tuner0.json, trial.json).
        obj: the state to save.
    """
    if "://" in str(path):  # a remote file system: keras-tuner's own writer
        return KERAS_TUNER_SAVE_JSON(path, obj)
    text = json.dumps(obj)
    write_text_atomic(Path(path), text)
    return text


def install() -> None:
    """Make keras-tuner write its files whole or not at all (``save_json_atomically``), for
    the rest of the process. Called before a search makes its tuner; once is enough."""
    global _installed
    if not _installed:
        keras_tuner_utils.save_json = save_json_atomically
        _installed = True


class OracleHooks:
    """Mixed into a keras-tuner oracle: its private hooks under names of the zoo's own, so
    subclasses override ``should_retry`` and ``random_values`` instead."""

    def _retry(self, trial) -> bool:
        return self.should_retry(trial)

    def should_retry(self, trial) -> bool:
        """keras-tuner's choice: whether a trial that ended INVALID is run again."""
        return super()._retry(trial)

    def _random_values(self) -> dict[str, Any] | None:
        return self.random_values()

    def random_values(self) -> dict[str, Any] | None:
        """keras-tuner's random draw of values not tried so far (None when it gives up)."""
        return super()._random_values()

    def never_propose(self, values: dict[str, Any]) -> None:
        """Count ``values`` as tried, so random draws never propose them."""
        self._tried_so_far.add(self._compute_values_hash(values))

    def set_retry_queue(self, trial_ids: list[str]) -> None:
        """The trials a reloaded oracle runs again, the last one first."""
        self._retry_queue = list(trial_ids)

    def restart_grid_walk(self) -> None:
        """A grid search's walk rebuilt from its trials: every trial is queued again, in the
        grid's order (combinations already tried are skipped by the walk itself)."""
        order = sorted(self.trials, key=functools.cmp_to_key(
            lambda a, b: self._compare(self.trials[a].hyperparameters.values,
                                       self.trials[b].hyperparameters.values)))
        self._ordered_ids = type(self._ordered_ids)()
        for trial_id in order:
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(order)


class TunerHooks:
    """Mixed into a keras-tuner tuner: its private hooks under names of the zoo's own."""

    def _populate_initial_space(self) -> None:
        return self.populate_initial_space()

    def populate_initial_space(self) -> None:
        """keras-tuner's: declare the hypermodel's space, then build it at the defaults."""
        return super()._populate_initial_space()

    def checkpoint_path(self, trial_id: str) -> str:
        """Where keras-tuner keeps (and loads) trial ``trial_id``'s weights."""
        return self._get_checkpoint_fname(trial_id)

    def is_worker(self) -> bool:
        """Whether this tuner is a worker of a chief oracle (keras-tuner's distributed mode)."""
        return self._is_worker()
