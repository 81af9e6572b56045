"""The command line through click's CliRunner: output, exit codes, one-line errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

import zoo
from zoo.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_prints_every_model_with_params_and_macs():
    result = run("list")
    assert result.exit_code == 0
    for name in zoo.list_models():
        assert name in result.output
    assert "138,357,544" in result.output and "416,520" in result.output
    rows = json.loads(run("list", "--json").output)
    assert {r["name"] for r in rows} == set(zoo.list_models())


def test_show_prints_the_layer_table():
    result = run("show", "lenet5")
    assert result.exit_code == 0
    assert "conv2" in result.output and "61,706" in result.output


def test_show_with_overrides_and_json():
    result = run("show", "vgg_small", "--input-shape", "64,64,3", "--set", "depths=1,1,1",
                 "--json")
    data = json.loads(result.output)
    assert data["input_shape"] == [64, 64, 3]
    assert [layer["name"] for layer in data["layers"]][:2] == ["block1_conv1", "block1_pool"]


def test_show_refuses_impossible_geometry_in_one_line():
    result = run("show", "lenet5", "--input-shape", "8,8,1")
    assert result.exit_code == 1
    assert "GeometryError" in result.output and "conv2" in result.output
    assert "Traceback" not in result.output


def test_unknown_model_exits_nonzero_with_suggestion():
    result = run("show", "alexnett")
    assert result.exit_code == 1 and "Did you mean alexnet" in result.output


def test_train_command_writes_a_run(tmp_path):
    out = tmp_path / "run"
    result = run("train", "lenet5", "--epochs", "1", "--batch-size", "128", "--set",
                 "filters=4,8", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "test_accuracy" in result.output
    assert (out / "model.keras").exists()
    show = run("show", str(out))
    assert show.exit_code == 0 and "conv1" in show.output


def test_train_rejects_bad_batch_size():
    result = run("train", "lenet5", "--batch-size", "zero")
    assert result.exit_code != 0 and "--batch-size" in result.output


def test_help_is_fast_and_lists_commands():
    import subprocess
    import sys
    import time

    start = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "zoo.cli", "--help"], capture_output=True,
                         text=True)
    elapsed = time.monotonic() - start
    assert out.returncode == 0 and "train" in out.stdout
    # Not a speed benchmark: a guard that --help never imports TensorFlow (~5-10 s here).
    assert "tensorflow" not in out.stderr.lower()
    assert elapsed < 5
