"""Data-parallel training (zoo.training.distribution): settings and refusals in this process,
the training itself in processes of its own (tests/distributed_run.py): two virtual CPU
devices under JAX, two JAX processes on the loopback interface, and MirroredStrategy over a
CPU split in two under TensorFlow."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import with_quick_xla_compile
from zoo.cli import main
from zoo.data.batches import Sharding, array_batches, make_batches
from zoo.training.distribution import (
    DistributionError,
    DistributionSettings,
    choose_devices,
    from_environment,
    scaled_learning_rate,
    start_distribution,
)

ROOT = Path(__file__).resolve().parents[1]
# One epoch's training loss on two devices against one: the same images in the same order
# and the same initial weights; only the order of float32 sums differs (measured: 1e-7).
LOSS_RTOL = 1e-5


# -- settings and refusals, before anything starts --------------------------------------------
def test_process_settings_come_from_keras_variables_and_flags_win():
    env = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234",
           "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
    settings = from_environment(DistributionSettings(devices="all"), env)
    assert (settings.coordinator, settings.num_processes, settings.process_id) == (
        "10.0.0.1:1234", 2, 1)
    assert settings.devices == "all" and settings.multi_process
    flagged = from_environment(DistributionSettings(process_id=0), env)
    assert flagged.process_id == 0
    jax_only = from_environment(DistributionSettings(num_processes=2, process_id=0),
                                {"JAX_COORDINATOR_ADDRESS": "h:1"})
    assert jax_only.coordinator == "h:1"


@pytest.mark.parametrize("settings, env, expected", [
    (DistributionSettings(coordinator="h:1", num_processes=2, process_id=2), {},
     "--process-id 2 is out of range for --num-processes 2: use 0 to 1"),
    (DistributionSettings(coordinator="h:1", num_processes=2, process_id=-1), {},
     "out of range"),
    (DistributionSettings(process_id=1), {}, "out of range for a single process"),
    (DistributionSettings(num_processes=2, process_id=0), {}, "needs --coordinator"),
    (DistributionSettings(coordinator="h:1", num_processes=2), {}, "needs this process's"),
    (DistributionSettings(coordinator="nohost", num_processes=2, process_id=0), {},
     "HOST:PORT"),
    (DistributionSettings(coordinator="a:1,b:2,c:3", num_processes=2, process_id=0), {},
     "3 addresses for 2 processes"),
    (DistributionSettings(devices="two"), {}, "--devices must be a positive number"),
    (DistributionSettings(), {"KERAS_DISTRIBUTION_PROCESS_ID": "x"},
     "KERAS_DISTRIBUTION_PROCESS_ID='x' is not a whole number"),
])
def test_bad_process_settings_are_refused_in_one_line(settings, env, expected):
    with pytest.raises(DistributionError, match=expected.replace("(", r"\(")) as err:
        from_environment(settings, env)
    assert "\n" not in str(err.value)


def test_more_devices_than_the_machine_has_is_refused_in_one_line():
    with pytest.raises(DistributionError) as err:
        choose_devices(4, ["gpu:0", "gpu:1"], "GPU")
    assert str(err.value) == ("--devices 4: this machine has 2 GPU devices (gpu:0, gpu:1); "
                              "use --devices 2 or all")
    assert choose_devices("all", ["gpu:0", "gpu:1"], "GPU") == ["gpu:0", "gpu:1"]
    # This TensorFlow process has one CPU device.
    with pytest.raises(DistributionError, match="--devices 4: this machine has 1 CPU device"):
        start_distribution(DistributionSettings(devices=4))
    # Several processes: JAX only (MultiWorkerMirroredStrategy stopped in Keras' fit).
    with pytest.raises(DistributionError, match="several processes train under JAX only"):
        start_distribution(DistributionSettings(coordinator="localhost:1", num_processes=2,
                                                process_id=0))


def test_the_cli_refuses_a_process_id_out_of_range_before_anything_starts(tmp_path):
    result = CliRunner().invoke(main, ["train", "lenet5", "--num-processes", "2",
                                       "--process-id", "2", "--coordinator", "localhost:1",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: DistributionError: --process-id 2 is out of range for --num-processes 2: "
        "use 0 to 1"]
    assert not (tmp_path / "run").exists()


def test_learning_rate_is_as_given_unless_linear_scaling_is_asked():
    assert scaled_learning_rate(1e-3, None, 8) == 1e-3
    assert scaled_learning_rate(1e-3, "linear", 8) == pytest.approx(8e-3)


# -- each process's shard ---------------------------------------------------------------------
@pytest.mark.parametrize("pipeline", ["tf.data", "PyDataset"])
def test_shards_are_disjoint_padded_to_the_devices_and_evaluation_padding_weighs_nothing(
        pipeline):
    x = np.zeros((11, 2, 2, 1), np.uint8)
    y = np.arange(11)
    make = make_batches if pipeline == "tf.data" else array_batches

    def read(shuffle, index):
        batches = make(x, y, batch_size=2, shuffle=shuffle, seed=0,
                       sharding=Sharding(devices=4, index=index, count=2))
        items = batches if pipeline == "tf.data" else [batches[i] for i in range(len(batches))]
        return [[np.asarray(t) for t in item] for item in items]

    for shuffle in (True, False):
        shards = [read(shuffle, index) for index in (0, 1)]
        assert [len(s) for s in shards] == [3, 3]  # the same number of steps in each
        assert all(len(batch[0]) == 2 for s in shards for batch in s)  # even splits
        labels = np.concatenate([b[1] for s in shards for b in s])
        assert len(labels) == 12 and set(labels) == set(range(11))  # 11 images, 1 pad
    weights = np.concatenate([b[2] for s in shards for b in s])
    assert weights.sum() == 11 and sorted(weights)[0] == 0.0  # the pad weighs nothing


# -- training, in processes of their own ------------------------------------------------------
def _run(python, env, *args, timeout=600):
    return subprocess.Popen([*python, "-m", "tests.distributed_run", *args], env=env,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _findings(process, timeout=600) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_two_jax_devices_train_like_one_and_the_run_records_them(python_without_tensorflow,
                                                                 tmp_path):
    python, env = python_without_tensorflow
    env = with_quick_xla_compile(
        {**env, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    found = _findings(_run(python, env, "devices", str(tmp_path)))
    one, two = found["one"], found["two"]
    assert found["backend"] == "jax" and one["distribution"] is None
    assert two["distribution"] == {
        "api": "keras.distribution.DataParallel", "backend": "jax",
        "devices": ["cpu:0", "cpu:1"], "device_count": 2, "processes": 1,
        "global_batch": 32, "per_process_batch": 32, "per_device_batch": 16,
        "padded_images": {"train": 0, "val": 1, "test": 1}}
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=LOSS_RTOL)
    # Validation and test sets of odd size: padded by one image of weight 0, and still the
    # one-device figures.
    np.testing.assert_allclose(two["val_loss"], one["val_loss"], rtol=LOSS_RTOL)
    assert two["test"]["test_accuracy"] == pytest.approx(one["test"]["test_accuracy"])
    assert two["test"]["test_loss"] == pytest.approx(one["test"]["test_loss"], rel=LOSS_RTOL)
    # A streamed folder: each device reads its own part of every split, padded as arrays are.
    one, two = found["streamed"]["one"], found["streamed"]["two"]
    assert two["distribution"]["padded_images"] == {"train": 0, "val": 1, "test": 1}
    for key in ("loss", "val_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=LOSS_RTOL)
    assert two["test"]["test_accuracy"] == pytest.approx(one["test"]["test_accuracy"])
    assert two["test"]["test_loss"] == pytest.approx(one["test"]["test_loss"], rel=LOSS_RTOL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def test_two_processes_train_one_model_into_one_run_folder(python_without_tensorflow,
                                                          tmp_path):
    python, env = python_without_tensorflow
    scratch = tmp_path / "tmp"  # where process 1 keeps its copy of the files
    scratch.mkdir()
    env = with_quick_xla_compile({**env, "TMPDIR": str(scratch)})
    out, address = tmp_path / "run", f"localhost:{_free_port()}"
    processes = [_run(python, env, "process", str(out), str(i), "2", address)
                 for i in range(2)]
    first, second = (_findings(p) for p in processes)
    assert first["weights"] == second["weights"]
    assert first["loss"] == second["loss"]
    assert first["distribution"]["processes"] == 2
    assert first["distribution"]["per_process_batch"] == 16
    # Only process 0 wrote: one run folder, and process 1's scratch copy is gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "tmp"]
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "curves.png", "history.csv", "metrics.json", "model.keras"]
    assert not list(scratch.glob("zoo-process*"))


@pytest.mark.skipif(sys.platform != "linux", reason="TensorFlow CPU split tested on Linux")
def test_mirrored_strategy_over_a_cpu_split_in_two_trains(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(ROOT)}
    two = _findings(_run([sys.executable], env, "mirrored", str(tmp_path)))["two"]
    assert two["distribution"]["api"] == "tf.distribute.MirroredStrategy"
    assert two["distribution"]["devices"] == ["cpu:0", "cpu:1"]
    assert two["distribution"]["per_device_batch"] == 16
    # It trained: below a uniform guess's loss. (Against one device, measured by hand: 0.9 %
    # apart; tf.distribute rewrites the input pipeline's shuffle and draws dropout per
    # replica, so the epoch is not JAX's exact match.)
    assert two["loss"][0] < np.log(10) and two["test"]["test_accuracy"] > 0.2
