"""One record of the shared training settings: every command's record, plan and flags use it."""

from __future__ import annotations

import dataclasses

import pytest

from recipes.compare import RunSettings, run_settings
from recipes.transfer import TransferSettings
from tuning.records import SearchPlan
from zoo.bench.run import BenchSettings
from zoo.cli import recipes as cli_recipes
from zoo.cli import train as cli_train
from zoo.cli import transfer as cli_transfer
from zoo.cli import tune as cli_tune
from zoo.data.dataset import DEFAULT_DATASET
from zoo.training.settings import (
    TRAINING_SETTINGS,
    TrainingSettings,
    setting_defaults,
    settings_of,
)
from zoo.training.train import TrainPlan

# A value of every shared setting that is none of the records' defaults.
CHANGED = dict(dataset="fashion_mnist", data_dir="tfds-data", epochs=7, batch_size=12,
               learning_rate=0.02, optimizer="sgd", seed=5, train_fraction=0.3,
               deterministic=True, dtype_policy="mixed_bfloat16", class_weight="balanced",
               input_mode="stream", memory_budget=2**30, skip_bad_images=True,
               devices="2", scale_lr="linear", coordinator="10.0.0.1:1234", num_processes=2,
               process_id=1, coordinator_timeout=60.0)


def test_changed_values_cover_every_setting():
    # A new setting gets a value here, and so a place in every test below.
    assert set(CHANGED) == set(TRAINING_SETTINGS)
    assert TrainingSettings().dataset == DEFAULT_DATASET


@pytest.mark.parametrize("record", [TrainPlan, RunSettings, SearchPlan, TransferSettings,
                                    BenchSettings])
def test_every_command_record_holds_every_setting(record):
    assert issubclass(record, TrainingSettings)
    made = record(model="lenet5", **CHANGED) if "model" in record.__dataclass_fields__ \
        else record(**CHANGED)
    assert settings_of(made) == CHANGED


def test_a_comparison_run_carries_every_setting_into_its_plan():
    plan = run_settings("lenet5", {**CHANGED, "hparams": None}).plan("none", 2)
    assert settings_of(plan) == {**CHANGED, "seed": CHANGED["seed"] + 2}
    assert {k: v for k, v in plan.config().items() if k in CHANGED} == settings_of(plan)
    with pytest.raises(TypeError, match="epoch"):
        run_settings("lenet5", {"epoch": 3})


def _options(command) -> dict[str, object]:
    return {p.name: p.default for p in command.params}


@pytest.mark.parametrize("command, record", [
    (cli_train.train_command, TrainPlan),
    (cli_recipes.compare_command, RunSettings),
    (cli_tune.tune_command, SearchPlan),
    (cli_transfer.transfer_command, TransferSettings),
])
def test_command_defaults_are_its_records(command, record):
    """The CLI states compare's and tune's defaults without importing them (`zoo --help` stays
    fast): they must agree with the records the library functions use."""
    defaults = setting_defaults(record)
    offered = {k: v for k, v in _options(command).items() if k in TRAINING_SETTINGS}
    assert offered, command.name
    if command is cli_train.train_command:
        offered["batch_size"] = int(offered["batch_size"])  # text: it also takes 'auto'
    assert offered == {k: defaults[k] for k in offered}


def test_zoo_train_offers_every_setting_and_passes_it_on(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import zoo.training.train as training

    assert set(TRAINING_SETTINGS) <= set(_options(cli_train.train_command))
    plans = []
    monkeypatch.setattr(training, "train", lambda plan, **_: plans.append(plan) or
                        training.RunResult(tmp_path, None, {}, {}, 0.0))
    flags = {f.name: f.metadata["flag"] for f in dataclasses.fields(TrainingSettings)}
    args = []
    for name, value in CHANGED.items():
        if "/" in flags[name]:  # --stream/--in-memory: one flag per value
            args += [f"--{value}"]
        else:
            args += [flags[name]] if value is True else [flags[name], str(value)]
    result = CliRunner().invoke(cli_train.train_command, ["lenet5", *args])
    assert result.exit_code == 0, result.output
    assert settings_of(plans[0]) == CHANGED
