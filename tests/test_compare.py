"""`zoo compare`: recipe-set parsing and an end-to-end ablation on a tiny budget."""

from __future__ import annotations

import csv

import pytest
from click.testing import CliRunner

from recipes import RecipeError
from recipes.compare import parse_recipe_sets, recipe_set_specs
from zoo.cli import main


def test_recipe_sets_keep_parameters_together():
    sets = parse_recipe_sets("none,augment:rotation=0.1,flip=none,augment+dropout:rate=0.3,"
                             "batchnorm+lr:scale=10")
    assert sets == ["none", "augment:rotation=0.1,flip=none", "augment+dropout:rate=0.3",
                    "batchnorm+lr:scale=10"]
    assert recipe_set_specs("augment+dropout:rate=0.3") == ["augment", "dropout:rate=0.3"]
    assert recipe_set_specs("none") == []
    with pytest.raises(RecipeError, match="twice"):
        parse_recipe_sets("none,none")
    with pytest.raises(RecipeError, match="empty recipe set"):
        parse_recipe_sets("none,,augment")


def test_compare_refuses_a_bad_set_before_training():
    result = CliRunner().invoke(main, ["compare", "lenet5", "--recipes", "none,batchnrm"])
    assert result.exit_code == 1 and "did you mean batchnorm" in result.output


def test_compare_end_to_end_writes_table_csv_and_plot(tmp_path):
    out = tmp_path / "ablation"
    result = CliRunner().invoke(main, [
        "compare", "lenet5", "--recipes", "none,dropout:rate=0.3", "--train-fraction", "0.05",
        "--epochs", "2", "--seeds", "2", "--batch-size", "32", "--target", "0.2",
        "--set", "filters=4,8", "--set", "dense_units=16,16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = (out / "table.md").read_text()
    assert "| none |" in table and "| dropout:rate=0.3 |" in table and "±" in table
    with (out / "runs.csv").open() as f:
        runs = list(csv.DictReader(f))
    assert [(r["recipes"], r["seed"]) for r in runs] == [
        ("none", "0"), ("none", "1"), ("dropout:rate=0.3", "0"), ("dropout:rate=0.3", "1")]
    for run in runs:
        assert 0 <= float(run["train_accuracy"]) <= 1 and 0 <= float(run["val_accuracy"]) <= 1
        assert len(run["val_curve"].split()) == 2
    assert len((out / "summary.csv").read_text().splitlines()) == 3
    assert (out / "val_curves.png").stat().st_size > 1000


# --- zoo compare --sweep -------------------------------------------------------------------

def test_sweep_specs_parse_to_typed_values():
    from recipes.sweep import parse_sweep, with_swept_recipe

    lr = parse_sweep("lr=1e-4,0.01,1", "lenet5")
    assert (lr.kind, lr.target, lr.values, lr.log_scale) == (
        "plan", "learning_rate", (1e-4, 0.01, 1.0), True)
    assert parse_sweep("batch_size=2,8,32", "lenet5").values == (2, 8, 32)
    norm = parse_sweep("normalization=none,batch,group,layer,instance", "lenet5")
    assert (norm.kind, norm.values, norm.log_scale) == (
        "hparam", ("none", "batch", "group", "layer", "instance"), False)
    assert parse_sweep("filters=4,8;8,16", "lenet5").values == ((4, 8), (8, 16))
    rate = parse_sweep("dropout:rate=0,0.3,0.5", "lenet5")
    assert (rate.kind, rate.target, rate.values) == ("recipe", "dropout:rate", (0.0, 0.3, 0.5))
    # The swept recipe joins a set, or is merged into the set's recipe of that name.
    assert with_swept_recipe("none", rate, 0.3) == "dropout:rate=0.3"
    assert with_swept_recipe("augment", rate, 0.3) == "augment+dropout:rate=0.3"
    assert (with_swept_recipe("dropout:spatial=0", rate, 0.3)
            == "dropout:spatial=0,rate=0.3")


@pytest.mark.parametrize("spec, sets, message", [
    ("normalisation=none,batch", [], "did you mean normalization"),
    ("dropout:rat=0,0.5", [], "did you mean rate"),
    ("lr=", [], "empty value"),
    ("lr=0.1,,1", [], "empty value"),
    ("lr=0.1,0.1", [], "listed twice"),
    ("lr=fast", [], "positive numbers"),
    ("batch_size=0.5,2", [], "positive integers"),
    ("filters=abc,def", [], "filters"),
    ("dropout:rate=0,1.5", [], "rate"),
    ("num_classes=2,3", [], "fixed by the data set"),
    ("dense_units=16,16;32,32", ["--set", "dense_units=8,8"], "--set dense_units"),
    ("normalization=none,group", ["--recipes", "none,batchnorm"], "already has"),
    ("dropout:rate=0,0.5", ["--recipes", "dropout:rate=0.3"], "already sets dropout:rate"),
])
def test_sweep_refuses_a_bad_spec_in_one_line_before_loading_data(monkeypatch, spec, sets,
                                                                  message):
    import recipes.sweep

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the spec was checked")

    monkeypatch.setattr(recipes.sweep, "open_source", no_loading)
    result = CliRunner().invoke(main, ["compare", "lenet5", "--sweep", spec, *sets])
    assert result.exit_code != 0 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_sweep_refuses_an_option_it_also_sweeps():
    result = CliRunner().invoke(main, ["compare", "lenet5", "--lr", "0.01", "--sweep",
                                       "lr=0.1,1"])
    assert result.exit_code != 0 and "--lr and --sweep lr" in result.output


def test_sweep_end_to_end_writes_one_table_and_plot_with_every_cell(tmp_path):
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, [
        "compare", "lenet5", "--sweep", "lr=0.001,0.01", "--recipes", "batchnorm",
        "--train-fraction", "0.05", "--epochs", "1", "--seeds", "1", "--target", "0.05",
        "--set", "filters=4,8", "--set", "dense_units=16,16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with (out / "sweep-learning_rate.csv").open() as f:
        cells = list(csv.DictReader(f))
    assert [(c["recipes"], c["lr"]) for c in cells] == [("batchnorm", "0.001"),
                                                         ("batchnorm", "0.01")]
    for cell in cells:
        assert cell["seeds"] == "1" and cell["diverged"] == "0"
        assert 0 <= float(cell["val_accuracy"]) <= 1 and float(cell["seconds_per_epoch"]) > 0
        # Every run reaches 5 % at the first epoch's end: 63 images / 32 = 2 steps.
        assert cell["steps_to_0.05"] == "2"
    table = (out / "sweep-learning_rate.md").read_text()
    assert "| batchnorm | 0.01 |" in table and "steps to val acc 0.05" in table
    assert (out / "sweep-learning_rate.png").stat().st_size > 1000
    with (out / "sweep-learning_rate-runs.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 2


def test_deterministic_compare_repeats_every_run(tmp_path):
    """With augmentation (random ops in the input pipeline), --deterministic reruns match."""
    from recipes.compare import compare

    # 0.3 of the split: enough batches that runs without --deterministic differ (checked).
    settings = dict(hparams={"filters": (4, 8), "dense_units": (16, 16)}, train_fraction=0.3,
                    epochs=2, seeds=1, deterministic=True)
    first, second = (compare("lenet5", "augment", out=tmp_path / name, **settings)
                     for name in ("a", "b"))
    assert [r.val_curve for r in first.runs] == [r.val_curve for r in second.runs]
    assert [r.train_accuracy for r in first.runs] == [r.train_accuracy for r in second.runs]


def test_sweep_into_its_own_folder_trains_only_the_missing_cells(tmp_path, monkeypatch):
    """--seeds 2 after --seeds 1 into the same --out reuses seed 0 and trains seed 1 only."""
    import json

    import recipes.sweep
    from recipes.sweep import compare_sweeps

    out = tmp_path / "sweep"
    settings = dict(recipe_sets="batchnorm", hparams={"filters": (4, 8), "dense_units": (16, 16)},
                    train_fraction=0.05, epochs=1, target=0.05, out=out)
    compare_sweeps("lenet5", ["lr=0.01"], seeds=1, **settings)
    runs_path = out / "sweep-learning_rate-runs.csv"
    first = runs_path.read_text().splitlines()

    trained = []
    real = recipes.sweep.train_and_measure

    def recording(plan, recipe_set, *args, **kwargs):
        trained.append((recipe_set, plan.learning_rate, plan.seed))
        return real(plan, recipe_set, *args, **kwargs)

    monkeypatch.setattr(recipes.sweep, "train_and_measure", recording)
    lines = []
    [result] = compare_sweeps("lenet5", ["lr=0.01"], seeds=2, progress=lines.append, **settings)
    assert trained == [("batchnorm", 0.01, 1)]
    assert "seed 0: finished earlier, reused" in lines[0]
    rows = runs_path.read_text().splitlines()
    assert rows[:2] == first and len(rows) == 3  # seed 0's row (curve, seconds) untouched
    assert [(r.seed, r.value) for r in result.runs] == [(0, 0.01), (1, 0.01)]
    assert "| batchnorm | 0.01 |" in result.table and "1 of 2 runs reused" in result.table
    config = json.loads((out / "config.json").read_text())
    assert config["seeds"] == 2 and len(config["earlier_load_averages_1min"]) == 1

    # Asking for less trains nothing and loses nothing: seed 1 stays in the runs CSV.
    [fewer] = compare_sweeps("lenet5", ["lr=0.01"], seeds=1, **settings)
    assert trained == [("batchnorm", 0.01, 1)] and len(fewer.runs) == 1
    assert runs_path.read_text().splitlines() == rows

    # Other shared settings would mix runs of two experiments: refused before data loads.
    monkeypatch.setattr(recipes.sweep, "open_source", lambda *a, **k: 1 / 0)
    with pytest.raises(RecipeError, match="epochs=1, not 2"):
        compare_sweeps("lenet5", ["lr=0.01"], seeds=2, **{**settings, "epochs": 2})
    assert runs_path.read_text().splitlines() == rows


def test_sweep_refuses_a_folder_it_cannot_extend(tmp_path):
    from recipes.sweep import compare_sweeps

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text('{"model": "lenet5", "recipe_sets": ["none"]}')
    with pytest.raises(RecipeError, match="zoo compare without --sweep"):
        compare_sweeps("lenet5", ["lr=0.01"], out=plain)
    orphan = tmp_path / "orphan"
    orphan.mkdir()
    (orphan / "sweep-learning_rate-runs.csv").write_text("recipes,seed\n")
    with pytest.raises(RecipeError, match="no config.json beside it"):
        compare_sweeps("lenet5", ["lr=0.01"], out=orphan)


def test_sweep_folder_settings_check_accepts_unrecorded_defaults_and_refuses_the_rest(
        tmp_path):
    import json

    from recipes.sweep_resume import earlier_config

    shared = dict(model="lenet5", hparams={"filters": (4, 8)}, dataset="digits", data_dir=None,
                  train_fraction=0.05, epochs=1, optimizer="sgd", deterministic=False)
    # As the lecture's first sweeps wrote it: no data_dir or deterministic recorded. The base
    # learning rate is not compared: each run's own rate is part of its key.
    old = {k: v for k, v in shared.items() if k not in ("data_dir", "deterministic")}
    (tmp_path / "config.json").write_text(json.dumps(
        {**old, "learning_rate": 0.001, "sweeps": [{"key": "lr", "values": [0.1, 1.0]}]}))
    assert earlier_config(tmp_path, shared)["sweeps"][0]["key"] == "lr"
    with pytest.raises(RecipeError, match="optimizer="):
        earlier_config(tmp_path, {**shared, "optimizer": "adam"})
    with pytest.raises(RecipeError, match="deterministic=false, not true"):
        earlier_config(tmp_path, {**shared, "deterministic": True})
    with pytest.raises(RecipeError, match="other hyperparameters"):
        earlier_config(tmp_path, {**shared, "hparams": {"filters": (8, 16)}})
