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
