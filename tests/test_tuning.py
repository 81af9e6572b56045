"""Hyperparameter search: the space is the builder's signature, keras-tuner runs the search."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import zoo
from tuning.space import INTERFACE_KWARGS, STAGES, derive_space, parse_choices, tunable_names

REPO = Path(__file__).resolve().parents[1]


# -- the space --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", zoo.list_models())
def test_derived_space_is_the_builders_tunable_kwargs(name):
    info = zoo.get_model_info(name)
    builder_kwargs = set(info.hyperparameters) - set(INTERFACE_KWARGS)
    space = derive_space(name)
    extra = {"learning_rate"} | ({STAGES} if isinstance(info.hyperparameters["filters"],
                                                        (tuple, list)) else set())
    assert set(space.dimensions) == builder_kwargs | extra
    assert set(tunable_names(name)) == builder_kwargs | extra
    # The family's declared space is searched with exactly its choices.
    for key, choices in info.default_search_space.items():
        assert space.dimensions[key].searched
        assert sorted(map(repr, space.dimensions[key].choices)) == sorted(
            repr(tuple(c)) if isinstance(c, list) else repr(c) for c in choices)
    # Unsearched dimensions stay at the builder's default.
    builder, training = space.resolve({n: v for n, v in _first_values(space).items()})
    for key in builder_kwargs - set(space.searched):
        assert builder[key] == info.hyperparameters[key]
    assert set(training) == {"learning_rate"}


def _first_values(space):
    return next(iter(space.configurations(1)))


def test_space_option_narrows_and_overrides():
    wide = derive_space("lenet5")
    narrow = derive_space("lenet5", {"kernel_sizes": "3,5", "filters": "16:128"})
    assert narrow.dimensions["kernel_sizes"].choices == (3, 5)
    assert narrow.dimensions["filters"].choices == (16, 32, 64, 128)
    assert set(narrow.searched) == set(wide.searched)  # the other dimensions stay searched
    only = derive_space("lenet5", {"kernel_sizes": "3,5", "filters": "16:128"}, only=True)
    assert set(only.searched) == {"kernel_sizes", "filters"}
    assert only.size() == 2 * 2 * 4 * 4  # per conv layer: 2 kernels x 4 widths
    builder, _ = only.resolve({"kernel_sizes_1": 5, "kernel_sizes_2": 3, "filters_1": 16,
                               "filters_2": 64})
    assert builder["kernel_sizes"] == (5, 3) and builder["filters"] == (16, 64)
    # depth: LeNet's number of stages, VGG's convs per block
    deep = derive_space("lenet5", {"stages": "1:3", "filters": "4,8"}, only=True)
    assert deep.size() == 2 + 4 + 8
    assert deep.resolve({"stages": 3, "filters_1": 4, "filters_2": 8, "filters_3": 8}
                        )[0]["filters"] == (4, 8, 8)
    assert derive_space("vgg_small", {"depths": "1:3"}, only=True).dimensions[
        "depths"].choices == (1, 2, 3)


def test_choice_syntax():
    assert parse_choices("dropout", "0:0.5:0.25") == (0, 0.25, 0.5)
    assert parse_choices("normalization", "none,batch") == ("none", "batch")
    assert parse_choices("kernel_sizes", "[11,5,3,3,3]|[7,5,3,3,3]") == ([11, 5, 3, 3, 3],
                                                                        [7, 5, 3, 3, 3])
    alex = derive_space("alexnet", {"kernel_sizes": "[11,5,3,3,3]|[7,5,3,3,3]"}, only=True)
    assert alex.resolve({"kernel_sizes": "(7, 5, 3, 3, 3)"})[0]["kernel_sizes"] == (7, 5, 3, 3, 3)


@pytest.mark.parametrize("overrides, message", [
    ({"kernel_size": "3,5"}, "Valid names: filters, kernel_sizes"),
    ({"num_classes": "3,5"}, "defines the task"),
    ({"filters": "128:16"}, "empty range"),
    ({"filters": "33:63"}, "no power of two"),
    ({"dropout": "0:0.5"}, "needs a step"),
    ({"kernel_sizes": ""}, "has no choices"),
    ({"kernel_sizes": "0,3"}, "positive integers"),
])
def test_bad_space_is_refused_with_a_clear_message(overrides, message):
    with pytest.raises(ValueError, match=message):
        derive_space("lenet5", overrides)


@pytest.mark.parametrize("change, message", [
    ({"max_trials": 0}, "--max-trials must be at least 1"),
    ({"algorithm": "annealing"}, "unknown search algorithm 'annealing'; use one of random"),
    ({"objective": "val_f1"}, "unknown objective"),
    ({"role": "worker", "oracle": "nohost"}, "HOST:PORT"),
    ({"space": {"kernel_sizes": "40,50"}, "only": True}, "no valid configuration"),
    ({"space": {"kernel_sizes": "5"}, "only": True}, "nothing to search"),
    ({"dtype_policy": "float8"}, "unknown dtype policy 'float8'"),
])
def test_bad_search_is_refused_before_anything_runs(change, message):
    from tuning.tune import SearchPlan, run_search

    plan = SearchPlan(model="lenet5", out="search", **change)
    with pytest.raises(ValueError, match=message):
        run_search(plan)
    assert not Path("search").exists()


def test_max_params_refuses_before_training():
    from tuning.preflight import Budget, RejectedConfiguration, check_configuration

    space = derive_space("lenet5", {"filters": "4,64"}, only=True)
    space.fixed.update({"input_shape": (32, 32, 1), "num_classes": 10})
    _, measure = check_configuration(space, {"filters_1": 4, "filters_2": 4},
                                     Budget(max_params=30_000))
    assert measure.params < 30_000 and measure.macs > 0
    with pytest.raises(RejectedConfiguration, match="--max-params") as err:
        check_configuration(space, {"filters_1": 64, "filters_2": 64}, Budget(max_params=30_000))
    assert err.value.measure.params > 30_000


def test_cli_reports_bad_input_in_one_line():
    from zoo.cli import main

    result = CliRunner().invoke(main, ["tune", "lenet5", "--space", "kernel_size=3"])
    assert result.exit_code == 1 and "Valid names:" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["tune", "lenet5", "--max-trials", "0"])
    # click refuses it as a usage error (status 2) naming the option and its range
    assert result.exit_code == 2 and "'--max-trials': 0 is not in the range" in result.output


# -- keras-tuner's private hooks --------------------------------------------------------------
def _rules_space():
    """lenet5 over filters {4, 8, 16} per stage with --increasing-filters: 3 of 9 break it."""
    return derive_space("lenet5", {"filters": "4,8,16"}, only=True, increasing_filters=True)


def test_private_keras_tuner_hooks_are_the_ones_written_for(tmp_path):
    """tuning.keras_tuner_compat uses private keras-tuner names (there is no public hook for
    what they do); an upgrade that removes or re-signs one fails here, not in a search."""
    import inspect

    import keras_tuner

    from tuning import keras_tuner_compat as compat
    from tuning import tuners

    version = keras_tuner.__version__
    hooks = dict(compat.PRIVATE_HOOKS)  # save_json as keras-tuner defines it, not as installed
    hooks["utils.save_json"] = (compat, "KERAS_TUNER_SAVE_JSON", "(path, obj)")
    assert compat.KERAS_TUNER_SAVE_JSON.__module__.startswith("keras_tuner.")
    for label, (owner, name, signature) in hooks.items():
        assert hasattr(owner, name), (
            f"keras-tuner {version} has no {label}, which tuning/tuners.py overrides; "
            f"port the override or pin keras-tuner to the range in pyproject.toml")
        found = str(inspect.signature(getattr(owner, name)))
        assert found == signature, (
            f"keras-tuner {version} changed {label}{signature} to {label}{found}; "
            f"check tuning/tuners.py's override against it")
    oracle = keras_tuner.oracles.RandomSearchOracle(objective="val_accuracy", max_trials=1)
    assert isinstance(oracle._tried_so_far, set), "Oracle._tried_so_far is no longer a set"
    assert isinstance(oracle._retry_queue, list), "Oracle._retry_queue is no longer a list"
    assert oracle.get_state()["retry_queue"] is oracle._retry_queue, (
        "Oracle._retry_queue is no longer what reload retries: check ResumableOracle.reload")
    grid = keras_tuner.oracles.GridSearchOracle(objective="val_accuracy", max_trials=1)
    assert isinstance(grid._populate_next, list), "GridSearchOracle._populate_next changed"
    assert hasattr(grid._ordered_ids, "insert"), "GridSearchOracle._ordered_ids changed"
    assert "_ordered_ids" not in grid.get_state(), (
        "keras-tuner now saves the grid walk itself: drop ZooGridSearchOracle.reload")
    # Every zoo oracle and tuner really uses the overrides (nothing earlier in the MRO wins):
    # keras-tuner's private hook reaches compat's, which calls the zoo's override.
    for oracle_class in tuners.ORACLES.values():
        for private, ours in (("_retry", "should_retry"), ("_random_values", "random_values")):
            assert getattr(oracle_class, private) is getattr(compat.OracleHooks, private)
            assert getattr(oracle_class, ours) is getattr(tuners.SpaceRulesOracle, ours)
        assert tuners.ResumableOracle in oracle_class.__mro__
    for tuner_class in (tuners.ZooTuner, tuners.ZooHyperband):
        assert tuner_class._populate_initial_space is compat.TunerHooks._populate_initial_space
        assert tuner_class.populate_initial_space is tuners.ZooTrials.populate_initial_space
    # The two private names the tuner calls (not overrides) answer as written for.
    tuner = keras_tuner.RandomSearch(hypermodel=lambda hp: None, objective="val_loss",
                                     max_trials=1, directory=str(tmp_path), project_name="p")
    assert not compat.TunerHooks.is_worker(tuner)  # no chief oracle in this process
    assert compat.TunerHooks.checkpoint_path(tuner, "07") == str(
        tmp_path / "p" / "trial_07" / "checkpoint.weights.h5")


def test_keras_tuner_keeps_the_records_a_trial_reported_itself(tmp_path):
    """The zoo's tuner reports every epoch to the oracle (``update_trial(step=epoch)``, read by
    pruning) and its final records at the best epoch, then returns them; keras-tuner 1.4 then
    skips its own update (``BaseTuner._run_and_update_trial``, a use it calls deprecated) and
    warns with the text the search silences. If keras-tuner drops that path, it records the
    returned dict again at step 0 and this fails, as it does if the warning's text changes."""
    import warnings

    import keras_tuner

    from tuning import tuners

    class Reporting(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            for epoch, value in enumerate([0.2, 0.9, 0.5]):
                self.oracle.update_trial(trial.trial_id, {"val_accuracy": value}, step=epoch)
            self.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.9, "params": 7.0},
                                     step=1)
            return {"val_accuracy": 0.123, "params": 8.0}  # must not be recorded

    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=1, seed=1)
    tuner = Reporting(oracle=oracle, directory=str(tmp_path), project_name="self_report")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tuner.search()
    (trial,) = oracle.trials.values()
    version = keras_tuner.__version__
    assert trial.status == "COMPLETED", trial.message
    history = [(o.step, o.value) for o in trial.metrics.get_history("val_accuracy")]
    assert history == [(0, [0.2]), (1, [0.9, 0.9]), (2, [0.5])], (
        f"keras-tuner {version} recorded run_trial's return value on top of the trial's own "
        f"per-epoch records ({history}); ZooTrials.run_trial must stop reporting them itself "
        f"or stop returning them")
    assert trial.metrics.get_best_value("params") == 7.0
    assert any(issubclass(w.category, DeprecationWarning)
               and str(w.message).startswith(tuners.SELF_REPORT_WARNING) for w in caught), (
        f"keras-tuner {version} no longer warns {tuners.SELF_REPORT_WARNING!r}...: update "
        f"tuners.SELF_REPORT_WARNING (the search silences it) and check the path still exists")


def _declared(oracle, space):
    hp = oracle.get_space()
    space.declare(hp)
    oracle.update_space(hp)
    return oracle


def test_oracle_redraws_configurations_that_break_the_space_rules():
    import keras_tuner
    from keras_tuner.engine.trial import Trial, TrialStatus

    from tuning import tuners

    space = _rules_space()
    common = dict(objective=keras_tuner.Objective("val_accuracy", "max"), seed=0, max_trials=30)
    plain = _declared(keras_tuner.oracles.RandomSearchOracle(**common), space)
    ours = _declared(tuners.ZooRandomSearchOracle(**common, space=space), space)
    plain_values = [plain.populate_space(str(i))["values"] for i in range(12)]
    assert any(v["filters_1"] > v["filters_2"] for v in plain_values)  # the rule does bite
    drawn = [ours.populate_space(str(i))["values"] for i in range(12)]
    assert all(v["filters_1"] <= v["filters_2"] for v in drawn)
    assert ours._tried_so_far  # the rule-breaking draws were set aside for good
    # A refused trial stays INVALID: not retried, not turned into a crash.
    refused = Trial(ours.get_space(), trial_id="0", status=TrialStatus.INVALID)
    assert ours._retry(refused) is False and refused.status == TrialStatus.INVALID


def test_tuners_declare_the_space_without_building_a_model(tmp_path):
    """keras-tuner builds the model at the defaults to find the space; ours only declares it.
    ZooHyperband skips Hyperband.__init__ (it only makes a plain oracle): the attributes it
    sets up must be the ones a real Hyperband has."""
    import keras
    import keras_tuner

    from tuning import tuners

    space = _rules_space()

    class NeverBuilt(tuners.ZooHyperModel):
        def build(self, hp):
            raise AssertionError("a model was built while declaring the space")

    hypermodel = NeverBuilt(space, base=None, data=None, budget=None)
    names = {"filters_1", "filters_2"}
    for algorithm, tuner_class in (("grid", tuners.ZooTuner), ("hyperband", tuners.ZooHyperband)):
        budget = {"max_epochs": 2} if algorithm == "hyperband" else {"max_trials": 9}
        oracle = tuners.ORACLES[algorithm](objective=keras_tuner.Objective("val_accuracy", "max"),
                                           space=space, **budget)
        tuner = tuner_class(oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path),
                            project_name=algorithm, echo=print)
        assert {hp.name for hp in tuner.oracle.get_space().space} == names
    plain = keras_tuner.Hyperband(
        hypermodel=lambda hp: keras.Sequential([keras.Input((2,)), keras.layers.Dense(
            hp.Int("units", 1, 2))]),
        objective="val_accuracy", max_epochs=2, directory=str(tmp_path), project_name="plain")
    ours = set(vars(tuner)) - {"echo", "pruner", "trials_run_here", "last_note", "pruned_at",
                               "epochs_done", "isolate", "gradients_before"}
    assert ours == set(vars(plain))


# -- a real (tiny) search ---------------------------------------------------------------------
GRID = dict(model="lenet5", algorithm="grid", epochs=1, train_fraction=0.1, batch_size=64,
            space={"kernel_sizes": "5,15", "filters": "4"}, only=True, retrain_epochs=1)


@pytest.fixture(scope="module")
def grid_search(tmp_path_factory):
    """lenet5 over conv kernels {5, 15}^2: two impossible configurations, one crash."""
    import tuning.search as search
    import tuning.tune as tune
    import tuning.tuners as tuners

    folder = tmp_path_factory.mktemp("search")
    lines: list[str] = []

    class Crashing(tuners.ZooHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            if hp.values["kernel_sizes_1"] == 15:
                raise RuntimeError("simulated out of memory")
            return super().fit(hp, model, *args, **kwargs)

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(tuners, "ZooHyperModel", Crashing)
            result = tune.run_search(search.SearchPlan(out="s", **GRID), echo=lines.append)
    finally:
        os.chdir(cwd)
    return folder, result, lines


def test_search_trains_every_trial_and_the_retrain_under_its_dtype_policy(tmp_path,
                                                                           monkeypatch):
    """--dtype-policy reaches every trial although keras-tuner's clear_session() before each
    build resets Keras' global policy, and the retrained best run records it."""
    import keras

    import tuning.search as search
    import tuning.tune as tune
    import tuning.tuners as tuners
    from zoo.core.runs import load_run_config, load_run_model

    built: list[str] = []
    compile_model = tuners.compile_model
    monkeypatch.setattr(tuners, "compile_model",
                        lambda model, *args, **kwargs: (built.append(model.dtype_policy.name),
                                                        compile_model(model, *args,
                                                                      **kwargs))[1])
    lines: list[str] = []
    monkeypatch.chdir(tmp_path)
    result = tune.run_search(search.SearchPlan(
        model="lenet5", algorithm="grid", max_trials=1, epochs=1, train_fraction=0.1,
        batch_size=64, space={"filters": "4,8"}, only=True, retrain_epochs=1, out="s",
        dtype_policy="mixed_bfloat16"), echo=lines.append)
    assert built and set(built) == {"mixed_bfloat16"}  # every model the trial built
    assert "dtype policy mixed_bfloat16" in lines[0]
    run = tmp_path / result.best_run
    assert load_run_config(run)["dtype_policy"] == "mixed_bfloat16"
    assert load_run_model(run).get_layer("conv1").compute_dtype == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # nothing leaks out


def test_search_refuses_impossible_configurations_without_training(grid_search):
    folder, result, lines = grid_search
    status = {r.trial_id: r.status for r in result.rows}
    by_kernels = {(r.values["kernel_sizes_1"], r.values["kernel_sizes_2"]): r
                  for r in result.rows}
    assert len(result.rows) == 4 and sorted(status.values()) == [
        "COMPLETED", "FAILED", "INVALID", "INVALID"]
    for kernels in [(5, 15), (15, 15)]:  # conv2's 15x15 window does not fit its input
        row = by_kernels[kernels]
        assert row.status == "INVALID" and "conv2" in row.note and row.params is None
        trial_dir = folder / "s" / "tuner" / f"trial_{row.trial_id}"
        assert not (trial_dir / "checkpoint.weights.h5").exists()  # never trained
    crashed = by_kernels[(15, 5)]
    assert crashed.status == "FAILED" and "simulated out of memory" in crashed.note
    done = by_kernels[(5, 5)]
    assert done.status == "COMPLETED" and done.params > 0 and done.macs > 0
    assert (folder / "s" / "tuner" / f"trial_{done.trial_id}" / "checkpoint.weights.h5").exists()
    # one progress line per trial, then the summary
    assert sum(line.startswith("trial ") for line in lines) == 4
    assert any("1 completed, 2 refused before training, 1 failed" in line for line in lines)


def test_a_refused_trial_keeps_its_reason_and_the_tables_read_it_back(grid_search,
                                                                     monkeypatch):
    """The reason is worked out once, when the trial is refused, and kept in its trial.json:
    the tables read it back without building the configuration again. A record from before
    refused trials kept their reason (no message) is explained as before."""
    from keras_tuner.engine.trial import Trial

    import tuning.search as search

    folder, result, _ = grid_search
    plan = search.SearchPlan(out=str(folder / "s"), **GRID)
    refused = [r for r in result.rows if r.status == "INVALID"]
    assert len(refused) == 2
    for row in refused:
        trial = Trial.load(str(folder / "s" / "tuner" / f"trial_{row.trial_id}" / "trial.json"))
        assert trial.message == row.note and "conv2" in row.note
        with monkeypatch.context() as patch:
            patch.setattr(search, "refusal_reason", lambda *args: pytest.fail("worked out again"))
            assert search.row_of(trial, plan, result.space).note == row.note
        trial.message = None  # as a search from before this change recorded it
        assert search.row_of(trial, plan, result.space).note == row.note


def test_search_writes_tables_plot_and_best(grid_search):
    folder, result, _ = grid_search
    out = folder / "s"
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == [r.status for r in result.rows]
    assert {"kernel_sizes_1", "kernel_sizes_2", "val_accuracy", "params", "MACs", "seconds",
            "status"} <= set(rows[0])
    assert "| trial | status | kernel_sizes_1 | kernel_sizes_2 |" in (out / "trials.md").read_text()
    assert (out / "objective_vs_params.png").stat().st_size > 5_000
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["hyperparameters"] == {"kernel_sizes_1": 5, "kernel_sizes_2": 5}
    assert best["builder_hparams"]["kernel_sizes"] == [5, 5]


def test_best_model_is_saved_as_a_run_and_reloads(grid_search):
    from zoo.core.runs import load_run_config, load_run_model

    folder, result, _ = grid_search
    run = folder / result.best_run
    # Below the search's --out (`s`), not in saved_models/runs/ where other searches write.
    assert run.resolve() == (folder / "s" / "runs" / f"trial{result.best.trial_id}").resolve()
    assert not (folder / "saved_models").exists()
    model = load_run_model(run)
    assert model.get_layer("conv2").kernel.shape[:2] == (5, 5)
    assert load_run_config(run)["hparams"]["kernel_sizes"] == [5, 5]
    assert 0.0 <= result.best_test_metrics["test_accuracy"] <= 1.0


def test_resume_does_not_repeat_finished_trials(grid_search):
    import tuning.search as search
    import tuning.tune as tune

    folder, first, _ = grid_search
    lines: list[str] = []
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        again = tune.run_search(search.SearchPlan(out="s", **GRID), echo=lines.append)
    finally:
        os.chdir(cwd)
    assert again.trials_run_here == 0
    assert not any(line.startswith("trial ") for line in lines)
    assert [(r.trial_id, r.status) for r in again.rows] == [
        (r.trial_id, r.status) for r in first.rows]
    assert again.best_run == first.best_run and any("reusing" in line for line in lines)


def test_hyperband_interrupted_mid_bracket_resumes_each_trial_once(tmp_path, monkeypatch):
    """Hyperband at max_epochs 3 runs three 1-epoch trials, continues the best of them to epoch
    3 from its checkpoint, then runs two 3-epoch trials. Interrupt it (KeyboardInterrupt, what
    Ctrl-C and zoo tune's SIGTERM raise) at the end of the continued trial's first epoch, after
    keras-tuner recorded that epoch and saved its checkpoint; run the same search again. The
    three finished trials are not trained again, the continued trial is trained again from
    its parent's weights, the second bracket runs, and the tables count six trials and eleven
    epochs, as an uninterrupted search does, each epoch recorded once."""
    import keras
    import numpy as np
    from keras_tuner.engine.trial import Trial

    import tuning.search as search
    import tuning.tune as tune
    import tuning.tuners as tuners

    out = tmp_path / "search"
    plan = search.SearchPlan(
        model="lenet5", algorithm="hyperband", epochs=3, train_fraction=0.05, batch_size=64,
        space={"learning_rate": "0.0005,0.001,0.002,0.005,0.01", "filters": "4"}, only=True,
        retrain=False, out=str(out))
    fits: list[tuple[dict, bool | None]] = []  # each fit's values; starts at its parent's weights?
    interrupt = [True]

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if interrupt.pop():
                raise KeyboardInterrupt

    class Spying(tuners.ZooHyperModel):
        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            callbacks, from_parent = list(callbacks or []), None
            if "tuner/trial_id" in hp.values:
                parent = keras.models.clone_model(model)
                parent.load_weights(out / "tuner" / f"trial_{hp.values['tuner/trial_id']}"
                                    / "checkpoint.weights.h5")
                from_parent = all(np.array_equal(a, b) for a, b in
                                  zip(model.get_weights(), parent.get_weights(), strict=True))
                if interrupt:
                    callbacks.append(Interrupt())  # after keras-tuner's record and checkpoint
            fits.append((dict(hp.values), from_parent))
            return super().fit(hp, model, *args, callbacks=callbacks, **kwargs)

    monkeypatch.setattr(tuners, "ZooHyperModel", Spying)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        tune.run_search(plan, echo=lines.append)
    ended = [line.split()[1] for line in lines if line.startswith("trial ")]
    assert ended == ["0000", "0001", "0002"] and len(fits) == 4 and fits[3][1] is True
    scores = {p.parent.name: Trial.load(str(p)).score for p in out.glob("tuner/trial_*/trial.json")}

    fits.clear()
    lines.clear()
    result = tune.run_search(plan, echo=lines.append)
    assert [line.split()[1] for line in lines if line.startswith("trial ")] == [
        "0003", "0004", "0005"]  # finished trials not again, the interrupted one once
    trials = {p.parent.name.removeprefix("trial_"): Trial.load(str(p))
              for p in out.glob("tuner/trial_*/trial.json")}
    assert sorted(trials) == ["0000", "0001", "0002", "0003", "0004", "0005"]
    assert all(t.status == "COMPLETED" for t in trials.values())
    assert all(trials[tid].score == scores[f"trial_{tid}"] for tid in ("0000", "0001", "0002"))
    values = {tid: t.hyperparameters.values for tid, t in trials.items()}
    best_first = max(("0000", "0001", "0002"), key=lambda tid: trials[tid].score)
    assert {k: values["0003"][k] for k in ("tuner/trial_id", "tuner/initial_epoch",
                                           "tuner/epochs", "tuner/bracket", "tuner/round")} == {
        "tuner/trial_id": best_first, "tuner/initial_epoch": 1, "tuner/epochs": 3,
        "tuner/bracket": 1, "tuner/round": 1}
    assert [(values[tid]["tuner/bracket"], values[tid]["tuner/epochs"])
            for tid in ("0004", "0005")] == [(0, 3), (0, 3)]  # the second bracket ran
    assert [(v, from_parent) for v, from_parent in fits] == [
        (values["0003"], True), (values["0004"], None), (values["0005"], None)]
    for tid, trial in trials.items():
        # Each epoch once; the best one also holds the final records (tuning.tuners).
        history = trial.metrics.get_history("val_accuracy")
        assert [(o.step, len(o.value)) for o in history] == [
            (step, 1 + (step == trial.best_step))
            for step in range(values[tid]["tuner/initial_epoch"], values[tid]["tuner/epochs"])
        ], f"trial {tid}: {history}"
    assert [r.epochs for r in result.rows] == [1, 1, 1, 2, 3, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"]["COMPLETED"] == 6 and summary["training_epochs"] == 11
    with (out / "trials.csv").open() as f:
        assert [r["trial"] for r in csv.DictReader(f)] == sorted(trials)


@pytest.mark.parametrize("isolate", [False, True], ids=["in-process", "isolated"])
def test_a_trial_retried_after_running_out_of_memory_records_only_the_retry(
        tmp_path, monkeypatch, isolate):
    """A trial records its first epoch, then runs out of memory; the tuner trains it again at
    half the batch. Each epoch keeps the retry's value only (keras-tuner averages every value
    reported for a step), and the tables give the batch it trained with. Isolated, the
    child's report is faked (the parent records the epochs it sends back, also on an error)."""
    import keras
    import numpy as np

    import tuning.isolation as isolation
    import tuning.search as search
    import tuning.tune as tune
    import tuning.tuners as tuners
    from tuning.preflight import Measure

    out = tmp_path / "search"
    plan = search.SearchPlan(
        model="lenet5", algorithm="grid", max_trials=1, epochs=2, train_fraction=0.05,
        batch_size=64, space={"filters": "4", "learning_rate": "0.01,0.001"}, only=True,
        retrain=False, isolate=isolate, out=str(out))
    retried: dict[str, list[float]] = {}  # the history of the attempt that finished

    class OutOfMemory(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise MemoryError("injected after the first epoch's records")

    class FirstAttemptOutOfMemory(tuners.ZooHyperModel):
        def fit(self, hp, model, *args, callbacks=None, **kwargs):
            if self.batch_size == 64:  # after keras-tuner's callbacks, which record the epoch
                callbacks = [*(callbacks or []), OutOfMemory()]
            history = super().fit(hp, model, *args, callbacks=callbacks, **kwargs)
            retried.update(history.history)
            return history

    def child(job):
        # Each attempt differs (0.1 then 0.5, 0.6), as two trainings would.
        logs = [{"loss": 2.0 - v, "val_accuracy": v}
                for v in ([0.1] if job.batch_size == 64 else [0.5, 0.6])]
        if job.batch_size == 64:
            return isolation.IsolatedResult(epoch_logs=logs, measure=Measure(params=1, macs=1),
                                            error="MemoryError: injected",
                                            out_of_memory=True)
        retried.update({k: [log[k] for log in logs] for k in logs[0]})
        return isolation.IsolatedResult(history=dict(retried), epoch_logs=logs,
                                        measure=Measure(params=1, macs=1))

    monkeypatch.setattr(tuners, "ZooHyperModel", FirstAttemptOutOfMemory)
    monkeypatch.setattr(isolation, "run_isolated", child)
    lines: list[str] = []
    result = tune.run_search(plan, echo=lines.append)
    assert any("out of memory at batch 64; retrying once at batch 32" in line for line in lines)
    [row] = result.rows
    assert row.status == "COMPLETED" and row.batch_size == 32 and row.epochs == 2
    [path] = out.glob("tuner/trial_*/trial.json")
    from keras_tuner.engine.trial import Trial

    trial = Trial.load(str(path))
    loss = trial.metrics.get_history("loss")
    assert [(o.step, o.value) for o in loss] == [
        (step, [value]) for step, value in enumerate(retried["loss"])], loss
    # The objective's best epoch also holds the final records, the same value (tuning.tuners).
    objective = trial.metrics.get_history("val_accuracy")
    assert [(o.step, o.value) for o in objective] == [
        (step, [value] * (1 + (step == trial.best_step)))
        for step, value in enumerate(retried["val_accuracy"])], objective
    assert trial.score == max(retried["val_accuracy"])
    assert np.isclose(row.objective, max(retried["val_accuracy"]))
    with (out / "trials.csv").open() as f:
        assert [(r["status"], r["batch"]) for r in csv.DictReader(f)] == [("COMPLETED", "32")]


def test_a_workers_retry_drops_the_first_attempts_records_in_the_chiefs_oracle(tmp_path):
    """With --workers the out-of-memory retry's report (tuning.tuners.FRESH_RECORDS) reaches
    the chief's oracle through keras-tuner's protocol (the chief's UpdateTrial handler, given
    the request a worker's oracle client sends) and drops what the first attempt recorded."""
    import keras_tuner
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    import tuning.tuners as tuners

    space = derive_space("lenet5", {"filters": "4,8"}, only=True)
    oracle = tuners.ZooRandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=2, space=space,
        seed=0)
    oracle._set_project_dir(str(tmp_path), "oracle")
    trial = _declared(oracle, space).create_trial("tuner1")
    chief = OracleServicer(oracle)
    for metrics in [{"val_accuracy": 0.1}, {tuners.FRESH_RECORDS: 1.0}, {"val_accuracy": 0.5}]:
        chief.UpdateTrial(protos.get_service().UpdateTrialRequest(
            trial_id=trial.trial_id, metrics=metrics, step=0), None)
    history = oracle.trials[trial.trial_id].metrics.get_history("val_accuracy")
    assert [(o.step, o.value) for o in history] == [(0, [0.5])]
    assert not oracle.trials[trial.trial_id].metrics.exists(tuners.FRESH_RECORDS)


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after the write that raised it runs."""


# Per algorithm: the space and the oracle's budget. Hyperband with max_epochs=3, factor=3 runs
# two brackets: three 1-epoch trials and the best of them continued to epoch 3, then two
# 3-epoch trials (six trials).
KILLED_SEARCHES = {
    "grid": ("0.001,0.01", {"max_trials": 2}),
    "random": ("0.001,0.01", {"max_trials": 2}),
    "hyperband": ("0.001,0.002,0.003,0.004,0.005,0.006,0.007,0.008",
                  {"max_epochs": 3, "factor": 3}),
}


@pytest.mark.parametrize("algorithm", sorted(KILLED_SEARCHES))
def test_search_killed_after_any_write_resumes_without_losing_or_redoing_trials(
        tmp_path, monkeypatch, algorithm):
    """Kill the search after each file write keras-tuner makes in turn (trial.json, oracle.json,
    tuner0.json), rerun it: no trial that trial.json said had ended trains again, and the
    search ends with the trials an uninterrupted search has, each on the same values (for
    Hyperband: the same brackets, rounds and continued trials). Trials report an objective
    set by their values instead of training, so every instant of a search costs milliseconds."""
    import json

    import keras_tuner
    from keras_tuner.src import utils as kt_utils  # every Stateful.save writes through it

    from tuning import keras_tuner_compat, tuners
    from tuning.space import derive_space

    keras_tuner_compat.install()  # as make_tuner does before every search

    rates, budget = KILLED_SEARCHES[algorithm]
    space = derive_space("lenet5", {"learning_rate": rates}, only=True)
    ran: list[str] = []

    class Reporting(tuners.ZooHyperband if algorithm == "hyperband" else tuners.ZooTuner):
        def run_trial(self, trial, *args, **kwargs):
            ran.append(trial.trial_id)
            return {"val_accuracy": trial.hyperparameters.values["learning_rate"],
                    "params": 1.0, "macs": 1.0, "latency_ms": 1.0, "seconds": 1.0,
                    "epochs": 1.0, "batch_size": 32.0}

    monkeypatch.setattr(tuners, "free_memory", lambda **kwargs: None)  # nothing was trained

    def search(folder: Path) -> list[tuple]:
        oracle = tuners.ORACLES[algorithm](
            objective=keras_tuner.Objective("val_accuracy", "max"), seed=1, space=space,
            **budget)
        Reporting(oracle=oracle, hypermodel=tuners.ZooHyperModel(space, None, None, None),
                  echo=lambda line: None, directory=str(folder), project_name="tuner").search()
        return [(t.trial_id, t.status, t.hyperparameters.values)
                for _, t in sorted(oracle.trials.items())]

    uninterrupted = search(tmp_path / "uninterrupted")
    assert len(uninterrupted) == (6 if algorithm == "hyperband" else 2)
    save_json = kt_utils.save_json
    for kill_at in range(1, 100):
        folder, writes = tmp_path / str(kill_at), []

        def killing_save(path, obj):
            text = save_json(path, obj)
            writes.append(path)
            if len(writes) == kill_at:
                raise _Killed
            return text

        monkeypatch.setattr(kt_utils, "save_json", killing_save)
        try:
            search(folder)
        except _Killed:
            killed = True
        else:
            killed = False
        monkeypatch.setattr(kt_utils, "save_json", save_json)
        if not killed:
            break  # every write of a whole search has been a kill point
        ended = {p.parent.name.removeprefix("trial_")
                 for p in folder.glob("tuner/trial_*/trial.json")
                 if json.loads(p.read_text())["status"] != "RUNNING"}
        ran.clear()
        resumed = search(folder)
        where = f"killed after write {kill_at} ({Path(writes[-1]).name})"
        assert not ended & set(ran), f"{where}: trials {sorted(ended & set(ran))} ran again"
        assert resumed == uninterrupted, where
    assert kill_at > 10, "the search made fewer writes than expected: is the hook still there?"


# -- distributed: a chief oracle and two workers on the loopback interface --------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_chief_and_two_workers_share_the_trials(tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    common = [sys.executable, "-m", "zoo", "tune", "lenet5", "--algorithm", "grid",
              "--space", "kernel_sizes=3,5", "--space", "filters=4", "--only", "--max-trials", "2",
              "--epochs", "1",
              "--train-fraction", "0.05", "--batch-size", "64", "--no-retrain", "--out", "dist",
              "--oracle", address]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": str(REPO)}
    for key in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        env.pop(key, None)
    procs = {}
    try:
        procs["chief"] = subprocess.Popen(common + ["--chief"], cwd=tmp_path, env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True)
        for n in (1, 2):
            procs[f"worker{n}"] = subprocess.Popen(
                common + ["--worker", "--tuner-id", f"worker{n}"], cwd=tmp_path, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        logs = {name: p.communicate(timeout=300)[0] for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} failed:\n{logs[name][-3000:]}"
    ran = [line.split()[1] for name in ("worker1", "worker2")
           for line in logs[name].splitlines() if line.startswith("trial ")]
    assert sorted(ran) == ["0", "1"]  # every trial exactly once, across the workers
    with (tmp_path / "dist" / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["trial"] for r in rows) == sorted(ran)
    assert all(r["status"] == "COMPLETED" and float(r["val_accuracy"]) >= 0 for r in rows)
    assert "2 trials: 2 completed" in logs["chief"]


def test_keras_tuner_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    # A kill while keras-tuner wrote tuner0.json in place left a cut-off file that the rerun
    # could not load; keras_tuner_compat.install routes its writer through zoo.core.runs'
    # atomic writer.
    import json

    from keras_tuner.src import utils as kt_utils

    import zoo.core.runs
    from tuning import keras_tuner_compat

    keras_tuner_compat.install()  # make_tuner's call
    assert kt_utils.save_json is keras_tuner_compat.save_json_atomically
    target = tmp_path / "tuner0.json"
    kt_utils.save_json(target, {"trial": 1})
    assert json.loads(target.read_text()) == {"trial": 1}

    def killed(tmp, path):
        raise KeyboardInterrupt  # the process stops after the new text, before it is published

    monkeypatch.setattr(zoo.core.runs, "publish_file", killed)
    with pytest.raises(KeyboardInterrupt):
        kt_utils.save_json(target, {"trial": 2})
    assert json.loads(target.read_text()) == {"trial": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["tuner0.json"]


@pytest.mark.parametrize("deterministic", [True, False])
def test_trials_are_seeded_with_the_searchs_determinism(monkeypatch, deterministic):
    # Workers' and isolated trials seed each trial themselves; they took deterministic=True
    # whatever the search asked for, so --deterministic off changed nothing in trials.
    from types import SimpleNamespace

    import zoo.training.seeding
    from tuning import isolation, tuners
    from tuning.records import trial_seed

    calls = []

    class Seeded(Exception):
        pass

    def record(seed, deterministic):
        calls.append((seed, deterministic))
        raise Seeded

    base = SimpleNamespace(seed=7, deterministic=deterministic)
    monkeypatch.setattr(zoo.training.seeding, "seed_everything", record)
    job = isolation.IsolatedTrial(trial_id="3", values={}, space=None, base=base, budget=None,
                                  batch_size=8, checkpoint="", objective=None)
    with pytest.raises(Seeded):
        isolation._train(job, isolation.IsolatedResult())
    monkeypatch.setattr(tuners, "seed_everything", record)
    worker = SimpleNamespace(last_note="", is_worker=lambda: True,
                             hypermodel=SimpleNamespace(base=base))
    monkeypatch.setattr(tuners, "custom_gradient_names", lambda: set())
    with pytest.raises(Seeded):
        tuners.ZooTrials.on_trial_begin(worker, SimpleNamespace(trial_id="3"))
    assert calls == [(trial_seed(7, "3"), deterministic)] * 2
