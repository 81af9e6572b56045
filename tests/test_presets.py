"""The results table, one command away: each row's preset expands to the row's exact command."""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks import data_results
from recipes.presets import PRESETS, get_preset
from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
ROWS = data_results.ROWS


def option_pairs(command: str) -> tuple[str, list[tuple[str, str]]]:
    """(model, sorted (option, value) pairs) of a `zoo train` command; recipes keep their order
    among themselves (it never changes the run, but the row's words are what ran)."""
    words = shlex.split(command)
    assert words[:2] == ["zoo", "train"]
    pairs = list(zip(words[3::2], words[4::2]))
    return words[2], sorted(pairs)


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.preset or row.recipe)
def test_each_results_row_names_a_preset_that_expands_to_its_command(row):
    preset = get_preset(row.preset)
    assert option_pairs(preset.command()) == option_pairs(row.command)
    settings = data_results.command_settings(preset.command())
    assert settings == data_results.command_settings(row.command)
    assert preset.model == row.model and preset.dataset == row.dataset


def captured_plan(monkeypatch, args: list[str]):
    """The TrainPlan `zoo train ARGS` hands to the training loop (which is not run)."""
    import zoo.training.train as training

    plans = []

    def stop(plan, **_):
        plans.append(plan)
        raise SystemExit(0)

    monkeypatch.setattr(training, "train", stop)
    result = CliRunner().invoke(main, ["train", *args])
    assert result.exit_code == 0 and plans, result.output
    return plans[0]


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_the_preset_command_trains_exactly_what_the_full_command_does(name, monkeypatch):
    preset = get_preset(name)
    full = shlex.split(preset.command(seed=3))[2:]
    by_preset = captured_plan(monkeypatch, ["--preset", name, "--seed", "3"])
    by_command = captured_plan(monkeypatch, full)
    assert by_preset.config() == by_command.config()
    assert by_preset.config()["seed"] == 3 and by_preset.model == preset.model


def test_options_given_with_a_preset_replace_its_values(monkeypatch):
    plan = captured_plan(monkeypatch, ["lenet5", "--preset", "lenet5-mnist", "--epochs", "1",
                                       "--recipe", "schedule:kind=cosine"])
    assert plan.epochs == 1 and plan.batch_size == 64 and plan.dataset == "mnist"
    assert [r.split(":")[0] for r in plan.recipes] == ["schedule"]
    for args, message in ((["vgg16", "--preset", "lenet5-mnist"], "trains lenet5, not vgg16"),
                          (["--preset", "lenet5-mnst"], "did you mean lenet5-mnist"),
                          ([], "or --preset PRESET")):
        result = CliRunner().invoke(main, ["train", *args])
        assert result.exit_code != 0 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_results_csv_and_presets_agree():
    with (REPO / "results" / "data.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["preset"] for r in rows] == [row.preset for row in ROWS]
    for row in rows:
        measured = get_preset(row["preset"]).measured
        figure = row["test_top1_mean"] + (f" ± {row['test_top1_std']}" if row["test_top1_std"]
                                          else "")
        assert f"{figure} %" in measured, (row["preset"], measured)


def test_every_readme_results_row_names_its_one_command_reproduction():
    readme = (REPO / "README.md").read_text()
    table = readme.split("### On real data sets", 1)[1].split("\n\n")[2]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) >= 4
    for line in rows:
        found = re.findall(r"`zoo train --preset (\S+) --seed S`", line)
        assert len(found) == 1, line
        preset = get_preset(found[0])
        assert f"`{preset.model}`" in line and preset.measured.split(" (")[0] in line, line


def test_results_lists_every_preset_and_show_lists_a_models():
    listing = CliRunner().invoke(main, ["results"]).output
    for preset in PRESETS.values():
        assert f"    {preset.short_command}\n    = {preset.command()}\n" in listing
    shown = CliRunner().invoke(main, ["show", "vgg_small"]).output
    assert "zoo train --preset vgg_small-fashion_mnist --seed S" in shown
    assert "--preset lenet5-mnist " not in shown


def test_every_readme_results_row_names_a_command_that_parses():
    from test_docs_commands import _parse

    readme = (REPO / "README.md").read_text()
    table = readme.split("## Results", 1)[1].split("\n\n")[2]
    rows = [line for line in table.splitlines()[2:] if line.startswith("|")]
    assert len(rows) >= 10
    for line in rows:
        cell = line.rstrip(" |").rsplit("|", 1)[1]
        commands = re.findall(r"`([^`]+)`", cell.split("([")[0])
        assert commands, line
        for command in commands:
            words = shlex.split(command)
            while "=" in words[0]:  # KERAS_BACKEND=jax ...
                words = words[1:]
            if words[0] == "zoo":
                _parse(words[1:])
            else:
                assert words[0] == "python" and (REPO / words[1]).is_file(), command
