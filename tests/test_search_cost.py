"""Search beyond one number: Pareto fronts, budgets, pruning, out-of-memory retries, seeds."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from tuning.pareto import dominates, pareto_front
from tuning.space import derive_space


# -- the Pareto front (pure) ------------------------------------------------------------------
@pytest.mark.parametrize("points, direction, front", [
    ([(1, 0.5), (2, 0.7), (3, 0.6), (4, 0.9)], "max", [0, 1, 3]),  # (3, 0.6) is beaten by (2, 0.7)
    ([(5, 0.9), (1, 0.9)], "max", [1]),  # same accuracy, cheaper wins
    ([(2, 0.8), (2, 0.9)], "max", [1]),  # same cost, more accurate wins
    ([(2, 0.8), (2, 0.8), (3, 0.7)], "max", [0, 1]),  # identical points: both on the front
    ([(1, 0.3), (2, 0.2), (3, 0.4)], "min", [0, 1]),  # a loss: lower is better
    ([(7, 0.1)], "max", [0]),
    ([], "max", []),
])
def test_pareto_front(points, direction, front):
    assert pareto_front(points, direction) == front
    if direction == "max":  # an accuracy unless told otherwise
        assert pareto_front(points) == front
        assert all(dominates(points[i], q) == dominates(points[i], q, "max")
                   for i in front for q in points)
    for i in front:  # nothing on the front is dominated; everything off it is
        assert not any(dominates(q, points[i], direction) for q in points)
    for i in set(range(len(points))) - set(front):
        assert any(dominates(q, points[i], direction) for q in points)


@pytest.mark.parametrize("objective", ["val_loss", "loss"])
def test_a_loss_objective_keeps_only_the_lowest_losses_on_the_front(objective):
    from tuning.pareto import front_rows
    from tuning.records import SearchPlan, TrialRow

    direction = SearchPlan("lenet5", objective=objective).direction
    assert direction == "min"

    def row(trial_id, macs, loss):
        return TrialRow(trial_id, "COMPLETED", {}, loss, params=10, macs=macs, seconds=1.0)

    # Trial 1 costs more than trial 0 and has a higher loss: it is dominated and off the front
    # (read as an accuracy, it would be the best trial).
    rows = [row("0", 100, 0.20), row("1", 200, 0.90), row("2", 300, 0.10)]
    assert [r.trial_id for r in front_rows(rows, "macs", direction)] == ["0", "2"]
    assert SearchPlan("lenet5", objective="val_accuracy").direction == "max"
    assert [r.trial_id for r in front_rows(rows, "macs", "max")] == ["0", "1"]


def test_floored_output_warnings_of_a_search_are_summarised_in_one_line():
    import warnings

    from tuning.search import floored_outputs_noted
    from zoo.core.geometry import check_window

    lines: list[str] = []
    with pytest.warns(UserWarning, match="unrelated"), floored_outputs_noted(lines.append):
        for _ in range(4):  # one build per trial, retrain, ...: each warns for both axes
            check_window("pool2", (13, 13), (2, 2), (2, 2), "valid", model="lenet5")
        warnings.warn("unrelated", UserWarning)  # other warnings pass through
    assert lines == ["note: some configurations floor an output size (8 warnings, shown "
                     "once): lenet5: layer 'pool2': height (13 + 2*0 - 2)/2 + 1 is not an "
                     "integer; Keras floors it to 6 and ignores 1 border pixel(s). (and 1 more "
                     "like it)"]


# -- budgets ----------------------------------------------------------------------------------
def test_macs_and_latency_budgets_refuse_before_training():
    from tuning.preflight import Budget, RejectedConfiguration, check_configuration

    space = derive_space("lenet5", {"filters": "4,64"}, only=True)
    space.fixed.update({"input_shape": (32, 32, 1), "num_classes": 10})
    small, large = {"filters_1": 4, "filters_2": 4}, {"filters_1": 64, "filters_2": 64}
    _, measure = check_configuration(space, small, Budget(measure_latency=True))
    assert measure.macs > 0 and measure.latency_ms > 0
    with pytest.raises(RejectedConfiguration, match="MACs > --max-macs") as err:
        check_configuration(space, large, Budget(max_macs=measure.macs))
    assert err.value.measure.macs > measure.macs and err.value.measure.latency_ms is None
    with pytest.raises(RejectedConfiguration, match="--max-latency-ms 1e-06") as err:
        check_configuration(space, small, Budget(max_latency_ms=1e-6))
    assert err.value.measure.latency_ms > 1e-6


# -- pruners over keras-tuner's own records ----------------------------------------------------
def _standalone(oracle, folder: Path):
    # A tuner gives its oracle a project folder (where trials are saved); these have none.
    oracle._set_project_dir(str(folder), "oracle")
    return oracle


def _oracle_with_curves(folder: Path, curves: list[list[float]], pruned: tuple[int, ...] = ()):
    """A keras-tuner oracle whose finished trials recorded these val_accuracy curves."""
    import keras_tuner

    from tuning.pruning import PRUNED_METRIC

    oracle = _standalone(keras_tuner.oracles.RandomSearchOracle(
        objective="val_accuracy", max_trials=50, seed=0), folder)
    hp = oracle.get_space()
    hp.Int("units", 1, 1000)
    oracle.update_space(hp)
    for i, curve in enumerate(curves):
        trial = oracle.create_trial(f"tuner{i}")
        for epoch, value in enumerate(curve):  # what the zoo's tuner reports per epoch
            oracle.update_trial(trial.trial_id, {"val_accuracy": value}, step=epoch)
        if i in pruned:
            oracle.update_trial(trial.trial_id, {"val_accuracy": max(curve),
                                                 PRUNED_METRIC: len(curve)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return oracle


def test_median_pruner_reads_the_oracles_per_epoch_records(tmp_path):
    from tuning.pruning import MedianPruner

    oracle = _oracle_with_curves(tmp_path, [[0.5, 0.7, 0.8], [0.6, 0.8, 0.9], [0.4, 0.6, 0.7],
                                  [0.1, 0.1]], pruned=(3,))
    trials = list(oracle.trials.values())
    pruner = MedianPruner("val_accuracy", "max", warmup_epochs=1, warmup_trials=3)
    assert not pruner.should_stop("new", 0, 0.0, trials)  # warm-up epoch
    assert pruner.should_stop("new", 1, 0.69, trials)  # median at epoch 2 is 0.7
    assert not pruner.should_stop("new", 1, 0.7, trials)  # the median itself goes on
    # the pruned trial is not among the finished ones, so 3 trials are not yet 4
    assert not MedianPruner("val_accuracy", "max", 1, warmup_trials=4).should_stop(
        "new", 1, 0.0, trials)
    # a trial at its last epoch has nothing left to save: it completes, however bad
    assert not MedianPruner("val_accuracy", "max", 1, 3, max_epochs=2).should_stop(
        "new", 1, 0.0, trials)
    # a loss: higher is worse
    loss = MedianPruner("val_loss", "min", 1, 1)
    losses = _loss_trials(tmp_path)
    assert loss.should_stop("new", 1, 0.9, losses) and not loss.should_stop("new", 1, 0.1, losses)


def _loss_trials(folder: Path):
    import keras_tuner

    oracle = _standalone(keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_loss", "min"), max_trials=5), folder / "loss")
    hp = oracle.get_space()
    hp.Int("units", 1, 10)
    oracle.update_space(hp)
    trial = oracle.create_trial("a")
    for epoch, value in enumerate([1.0, 0.5]):
        oracle.update_trial(trial.trial_id, {"val_loss": value}, step=epoch)
    trial.status = "COMPLETED"
    oracle.end_trial(trial)
    return list(oracle.trials.values())


def test_successive_halving_keeps_the_best_third_at_each_rung(tmp_path):
    from tuning.pruning import SuccessiveHalvingPruner

    pruner = SuccessiveHalvingPruner("val_accuracy", "max", warmup_epochs=1, max_epochs=9,
                                     warmup_trials=2)
    assert pruner.rungs == [1, 3]
    trials = list(_oracle_with_curves(tmp_path, [[0.5, 0.6, 0.7], [0.3, 0.4, 0.5],
                                       [0.2, 0.3]], pruned=(2,)).trials.values())
    # rung 1 (epoch index 0): values 0.5, 0.3, 0.2 and the new one; the best third goes on
    assert pruner.should_stop("new", 0, 0.4, trials)
    assert not pruner.should_stop("new", 0, 0.6, trials)
    assert not pruner.should_stop("new", 1, 0.0, trials)  # epoch 2 is no rung
    assert not SuccessiveHalvingPruner("val_accuracy", "max", 1, 9, warmup_trials=4
                                       ).should_stop("new", 0, 0.0, trials)


# -- searches (tiny: lenet5 on 10 % of the embedded digits, one or three epochs) ---------------
TINY = dict(model="lenet5", epochs=1, train_fraction=0.1, batch_size=64, retrain=False,
            only=True)


def _search(folder: Path, **settings):
    import tuning.search as search
    import tuning.tune as tune

    lines: list[str] = []
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = tune.run_search(search.SearchPlan(**{**TINY, **settings}), echo=lines.append)
    finally:
        os.chdir(cwd)
    return result, lines


def _macs(filters_1: int, filters_2: int) -> int:
    import keras

    from tuning.preflight import Budget, check_configuration

    space = derive_space("lenet5", {"filters": "4,16"}, only=True)
    space.fixed.update({"input_shape": (32, 32, 1), "num_classes": 10})
    _, measure = check_configuration(space, {"filters_1": filters_1, "filters_2": filters_2},
                                     Budget())
    keras.backend.clear_session()
    return measure.macs


@pytest.fixture(scope="module")
def cost_search(tmp_path_factory):
    """A grid over lenet5's feature maps {4, 16} per layer with a MACs budget and injected
    out-of-memory faults: (16, 16) is over the budget; (4, 16) runs out of memory at batch 64
    only; (16, 4) always."""
    import tuning.tuners as tuners

    folder = tmp_path_factory.mktemp("cost")
    budget = _macs(16, 4)  # (16, 8) costs more, everything else less or as much

    class OutOfMemory(tuners.ZooHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            filters = (hp.values["filters_1"], hp.values["filters_2"])
            if filters == (16, 4) or (filters == (4, 16) and self.batch_size == 64):
                raise MemoryError(f"injected: no room for batch {self.batch_size}")
            return super().fit(hp, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tuners, "ZooHyperModel", OutOfMemory)
        result, lines = _search(folder, algorithm="grid", space={"filters": "4,16"},
                                cost="macs", max_macs=budget, out="s")
    over = {(a, b) for a in (4, 16) for b in (4, 16) if _macs(a, b) > budget}
    return folder / "s", result, lines, budget, over


@pytest.mark.xdist_group("cost_search")
def test_cost_search_reports_the_pareto_front(cost_search):
    out, result, lines, budget, over = cost_search
    refused = [r for r in result.rows if r.status == "INVALID"]
    assert {(r.values["filters_1"], r.values["filters_2"]) for r in refused} == over
    assert over == {(16, 16)}
    assert all("--max-macs" in r.note and r.macs > budget for r in refused)
    assert not any((out / "tuner" / f"trial_{r.trial_id}" / "checkpoint.weights.h5").exists()
                   for r in refused)  # never trained
    trained = [r for r in result.rows if r.status == "COMPLETED"]
    assert len(trained) == 2  # (16, 4) ran out of memory twice
    assert all(r.macs <= budget and r.rss_mb > 100 and r.epochs == 1 for r in trained)
    points = [(r.macs, r.objective) for r in trained]
    assert [r.trial_id for r in result.front] == [trained[i].trial_id
                                                  for i in pareto_front(points)]
    table = (out / "trials.md").read_text()
    assert table.startswith("Pareto front (val_accuracy against MACs")
    for r in result.front:
        assert f"| {r.trial_id} |" in table.split("All trials:")[0]
    assert (out / "pareto.png").stat().st_size > 5_000
    assert any(line.startswith("Pareto front (val_accuracy against macs): trials ")
               for line in lines)


@pytest.mark.xdist_group("cost_search")
def test_out_of_memory_is_retried_at_half_the_batch_then_failed(cost_search):
    out, result, lines, _, _ = cost_search
    by_filters = {(r.values["filters_1"], r.values["filters_2"]): r for r in result.rows}
    retried = by_filters[(4, 16)]
    assert retried.status == "COMPLETED" and retried.batch_size == 32
    failed = by_filters[(16, 4)]
    assert failed.status == "FAILED" and failed.batch_size == 32
    assert "out of memory (MemoryError at batch 64, then MemoryError at batch 32)" in failed.note
    assert by_filters[(4, 4)].batch_size == 64  # the others kept the batch they were given
    assert sum("retrying once at batch 32" in line for line in lines) == 2  # (4, 16), (16, 4)
    with (out / "trials.csv").open() as f:
        rows = {r["trial"]: r for r in csv.DictReader(f)}
    assert rows[retried.trial_id]["batch"] == "32" and rows[failed.trial_id]["status"] == "FAILED"
    assert float(rows[retried.trial_id]["rss_mb"]) > 100


def test_median_pruning_stops_a_hopeless_trial_and_records_the_epoch(tmp_path):
    """The first trial learns (learning rate 0.01); the second cannot (1e-7) and is stopped
    after its second epoch, below the first's accuracy there (warm-up: 1 finished trial)."""
    space = {"learning_rate": "0.01,0.0000001", "filters": "4"}
    seed = _seed_drawing_first(space, "learning_rate", 0.01)
    result, lines = _search(tmp_path, algorithm="random", max_trials=2, epochs=3, out="p",
                            space=space, seed=seed, prune="median", prune_warmup_trials=1)
    first, second = result.rows
    assert first.values["learning_rate"] == 0.01 and first.status == "COMPLETED"
    assert first.epochs == 3
    assert second.status == "PRUNED" and second.epochs == 2
    assert second.note == "pruned after epoch 2"
    with (tmp_path / "p" / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["status"], r["epochs"]) for r in rows] == [("COMPLETED", "3"), ("PRUNED", "2")]
    assert any("1 completed, 1 pruned" in line and "5 training epochs" in line for line in lines)


def _seed_drawing_first(overrides: dict, name: str, value) -> int:
    """A seed whose random search proposes ``name=value`` first (found without training).

    Not 0: keras-tuner takes seed 0 as "no seed" and draws one from Python's random module
    (which the search seeds, so --seed 0 is reproducible too, with another sequence)."""
    for seed in range(1, 50):
        if _draws(overrides, seed, 1)[0][name] == value:
            return seed
    raise AssertionError(f"no seed draws {name}={value} first")


def _draws(overrides: dict, seed: int, count: int) -> list[dict]:
    import keras_tuner

    from tuning import tuners

    space = derive_space("lenet5", overrides, only=True)
    oracle = tuners.ZooRandomSearchOracle(objective=keras_tuner.Objective(
        "val_accuracy", "max"), max_trials=10, seed=seed, space=space)
    hp = oracle.get_space()
    space.declare(hp)
    oracle.update_space(hp)
    return [oracle.populate_space(str(i))["values"] for i in range(count)]


def test_same_seed_gives_the_same_trials_and_results(tmp_path):
    settings = dict(algorithm="random", max_trials=2, train_fraction=0.05, seed=7,
                    space={"filters": "4:16", "kernel_sizes": "3,5"})
    first, _ = _search(tmp_path, out="a", **settings)
    second, _ = _search(tmp_path, out="b", **settings)
    assert [r.values for r in first.rows] == [r.values for r in second.rows]
    assert [r.objective for r in first.rows] == [r.objective for r in second.rows]
    assert all(r.objective is not None for r in first.rows)
    assert _table(tmp_path / "a") == _table(tmp_path / "b")


def _table(out: Path) -> list[dict]:
    """trials.csv without the columns that time or memory make differ between runs."""
    with (out / "trials.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in ("seconds", "rss_mb")}
                for row in csv.DictReader(f)]


def test_the_seed_sets_the_trial_sequence():
    """The oracle's draws follow --seed (checked without training anything)."""
    space = {"filters": "4:16", "kernel_sizes": "3,5"}
    assert _draws(space, 7, 5) == _draws(space, 7, 5) != _draws(space, 8, 5)


def test_isolated_trials_train_in_a_fresh_process(tmp_path):
    result, lines = _search(tmp_path, algorithm="grid", max_trials=2, out="i", isolate=True,
                            space={"filters": "4", "kernel_sizes": "3,5"})
    assert [r.status for r in result.rows] == ["COMPLETED", "COMPLETED"]
    assert all(r.epochs == 1 and r.objective is not None for r in result.rows)
    for row in result.rows:  # keras-tuner's checkpoint, written by the trial's process
        assert (tmp_path / "i" / "tuner" / f"trial_{row.trial_id}" /
                "checkpoint.weights.h5").exists()


def test_run_isolated_trains_in_another_process(tmp_path):
    import keras_tuner

    from tuning.isolation import IsolatedTrial, run_isolated
    from tuning.preflight import Budget
    from zoo.training.train import TrainPlan

    space = derive_space("lenet5", {"filters": "4,8"}, only=True)
    space.fixed.update({"input_shape": (32, 32, 1), "num_classes": 10})
    job = IsolatedTrial(trial_id="0", values={"filters_1": 4, "filters_2": 8}, space=space,
                        base=TrainPlan(model="lenet5", epochs=2, train_fraction=0.05, seed=0),
                        budget=Budget(max_macs=1), batch_size=64,
                        checkpoint=str(tmp_path / "w.weights.h5"),
                        objective=keras_tuner.Objective("val_accuracy", "max"))
    refused = run_isolated(job)  # over the budget: refused in the child, before training
    assert refused.pid != os.getpid() and "--max-macs" in refused.refused
    assert refused.history == {} and not (tmp_path / "w.weights.h5").exists()


# -- memory over many trials --------------------------------------------------------------------
def _live_traced_graphs() -> list:
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, FuncGraph)]


def test_a_finished_trials_custom_gradients_are_forgotten():
    """Keras' optimizer all-reduces gradients even on one device and TensorFlow registers that
    as a custom gradient, for good, in its gradient registry (a private dict: pinned here);
    the registration keeps the traced training step alive after the model is gone. The tuner
    forgets the registrations made during a trial. If TensorFlow stops registering them (or
    stops holding the graph through them), this fails: drop forget_custom_gradients."""
    import keras
    import numpy as np

    from zoo.training import gradient_registry as resources

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the custom-gradient registry is TensorFlow's")
    import tensorflow as tf
    from tensorflow.python.framework import ops
    from tensorflow.python.ops import custom_gradient

    from zoo.training.tensorflow_compat import PRIVATE_NAMES

    assert isinstance(ops._gradient_registry._registry, dict), (
        f"TensorFlow {tf.__version__} changed {PRIVATE_NAMES['gradient registry']}")
    assert custom_gradient.generate_name().startswith(resources.CUSTOM_GRADIENT_PREFIX)
    import gc
    import weakref

    before = resources.custom_gradient_names()
    graphs_before = {id(g) for g in _live_traced_graphs()}
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((8, 2)), np.zeros((8, 1)), batch_size=4, epochs=1, verbose=0)
    registered = resources.custom_gradient_names() - before
    assert registered, (
        f"TensorFlow {tf.__version__} no longer registers a custom gradient per traced "
        f"training step: forget_custom_gradients is not needed")
    del model
    keras.backend.clear_session()
    kept = [weakref.ref(g) for g in _live_traced_graphs() if id(g) not in graphs_before]
    assert kept, "the registry no longer keeps the trained step's graphs alive"
    assert resources.forget_custom_gradients(before) == len(registered)
    assert resources.custom_gradient_names() == before
    gc.collect()
    assert all(graph() is None for graph in kept), (
        "forgetting the custom gradients did not release the trained step's graphs")
