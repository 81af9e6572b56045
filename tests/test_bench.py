"""`zoo bench` and benchmarks/bench_peers.py: the hand-written baselines match the zoo, and a
tiny benchmark runs end to end.

Only correctness is checked here (fields, files, shapes); speed is the benchmark's job.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import zoo
from benchmarks import bench_peers
from benchmarks.keras_peer import BASELINES, build_baseline
from zoo.bench import BenchError, BenchSettings, benchmark, measure_matmul_peak
from zoo.bench.report import format_markdown
from zoo.cli import main

# Small inputs that keep every layer's geometry valid, so the big models build quickly.
SMALL_INPUT = {"alexnet": (67, 67, 3), "alexnet_torchvision": (67, 67, 3),
               "vgg11": (32, 32, 3), "vgg13": (32, 32, 3), "vgg16": (32, 32, 3),
               "vgg19": (32, 32, 3)}


def _layer_signature(model) -> list[tuple]:
    """(layer type, output shape, weights, activation) of every layer but the input."""
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        activation = getattr(layer, "activation", None)
        rows.append((type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params(),
                     getattr(activation, "__name__", None), getattr(layer, "rate", None)))
    return rows


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_model_has_a_hand_written_baseline_with_the_same_layers(name):
    import keras

    info = zoo.get_model_info(name)
    shape = SMALL_INPUT.get(name, info.input_shape)
    assert name in BASELINES, f"write a plain Keras {name} in benchmarks/keras_peer.py"
    ours = zoo.build(name, input_shape=shape, num_classes=7)
    theirs = build_baseline(name, shape, 7)
    assert _layer_signature(theirs) == _layer_signature(ours)
    assert theirs.count_params() == ours.count_params()
    keras.backend.clear_session()


def test_settings_are_checked_before_measuring():
    with pytest.raises(BenchError, match="dtype policy must be one of"):
        BenchSettings(dtype_policy="float8").check()
    with pytest.raises(BenchError, match="steps must be a positive integer"):
        BenchSettings(steps=0).check()
    with pytest.raises(zoo.UnknownModelError, match="lenet5"):
        benchmark(["lenet6"], BenchSettings())


def test_matmul_peak_is_measured():
    peak = measure_matmul_peak(size=64, repeats=3)
    assert peak["peak_gflops"] >= peak["median_gflops"] > 0


def test_bench_peers_writes_json_and_markdown(tmp_path):
    """`zoo bench`'s report with the hand-written Keras baseline timed beside the zoo: the
    script takes every option of `zoo bench` (one run covers both: the zoo's fields and the
    peers')."""
    out = tmp_path / "results" / "tiny.json"
    result = CliRunner().invoke(bench_peers.main, [
        "lenet5", "--batch-size", "16", "--steps", "2", "--repeats", "2",
        "--inference-batch", "8", "--augment", "--note", "test run", "--no-torch",
        "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["backend"]
    assert report["machine"]["versions"]["keras"]
    assert report["matmul_peak"]["float32"]["peak_gflops"] > 0
    (row,) = report["rows"]
    assert row["model"] == "lenet5" and row["batch_size"] == 16 and row["steps"] == 2
    assert row["augment"] is True
    assert row["train_flops_per_image"] == 6 * zoo.get_model_info("lenet5").macs
    for key in ("zoo_images_per_s", "baseline_images_per_s", "zoo_cpu_images_per_s"):
        rate = row[key]
        assert len(rate["values"]) == 2  # the warm-up epoch is not among the repeats
        assert rate["min"] <= rate["median"] <= rate["max"] and rate["min"] > 0
    assert row["ratio"] == pytest.approx(row["zoo_images_per_s"]["median"]
                                         / row["baseline_images_per_s"]["median"])
    # Every repeat is compared, not only the medians: repeat i of each path, back to back.
    assert row["repeat_ratios"] == pytest.approx(
        [z / b for z, b in zip(row["zoo_images_per_s"]["values"],
                               row["baseline_images_per_s"]["values"])])
    assert row["zoo_jit_compile"] is False  # Keras' choice on a CPU-only TensorFlow machine
    assert 0 < row["fraction_of_peak"]
    for kind in ("keras_predict", "saved_model"):
        inference = row["inference"][kind]
        assert inference["large_batch"] == 8
        assert inference["batch1_images_per_s"]["median"] > 0
        lat = inference["batch1_latency"]
        assert 0 < lat["p50_ms"] <= lat["p99_ms"]
    markdown = out.with_suffix(".md").read_text()
    assert "| lenet5 | 32x32x1 | 16 × 2 |" in markdown
    assert f"| {min(row['repeat_ratios']):.2f}x |" in markdown  # the worst repeat
    assert "test run" in markdown and "benchmarks/bench_peers.py" in markdown
    assert "torch" not in row  # --no-torch
    assert format_markdown(report) in markdown  # `zoo bench`'s tables first

    # Without TensorFlow (JAX GPU machines) the SavedModel columns say why they are empty.
    row["inference"]["saved_model"] = None
    row["inference"]["saved_model_note"] = "skipped: TensorFlow is not installed"
    row["baseline_images_per_s"] = row["ratio"] = row["cpu_ratio"] = None
    text = bench_peers.format_peers_markdown(report)
    assert "skipped: TensorFlow is not installed" in text and "| n/a |" in text


def test_bench_times_both_paths_under_its_dtype_policy(tmp_path):
    """--dtype-policy reaches the zoo's model and the baseline timed beside it.
    bench_training's clear_session() resets Keras' global policy, which once left both paths
    in float32 under a report titled mixed_bfloat16."""
    import keras

    from zoo.bench.run import bench_training
    from zoo.training.dtype_policy import dtype_policy_scope

    settings = BenchSettings(batch_size=8, steps=1, repeats=1, dtype_policy="mixed_bfloat16")
    with dtype_policy_scope("mixed_bfloat16"):  # as benchmark() sets it around every model
        row, result = bench_training(
            "lenet5", settings, tmp_path,
            alongside=lambda work: bench_peers.Peers(work, settings, torch=False))
    assert row["zoo_dtype_policy"] == row["baseline_dtype_policy"] == "mixed_bfloat16"
    assert result.model.get_layer("predictions").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # nothing leaks out


def test_bench_dataset_times_the_sets_own_images(tmp_path, monkeypatch):
    """--dataset: the zoo's training path gets the set's real training images, fitted as
    `zoo train` fits them (28x28 zero-padded to LeNet-5's 32x32), and the report says so."""
    from official_files import make_idx_set, write_files

    from zoo.bench import run as bench_run
    from zoo.data.imports import import_dataset
    from zoo.data.load import load_dataset

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    contents, _ = make_idx_set("fashion_mnist", monkeypatch, n_train=100, n_test=20)
    args = ["bench", "lenet5", "--dataset", "fashion_mnist", "--batch-size", "16", "--steps",
            "2", "--repeats", "1", "--inference-batch", "4", "--augment"]
    before = CliRunner().invoke(main, [*args, "--json", str(tmp_path / "none.json")])
    assert before.exit_code == 1 and len(before.output.strip().splitlines()) == 1
    assert "zoo data import fashion_mnist PATH" in before.output
    assert not (tmp_path / "none.json").exists()

    import_dataset("fashion_mnist", write_files(tmp_path / "raw", contents))
    trained = []
    real_train = bench_run.train

    def recording_train(plan, **kwargs):
        trained.append((plan, kwargs["data"]))
        return real_train(plan, **kwargs)

    monkeypatch.setattr(bench_run, "train", recording_train)
    out = tmp_path / "fashion.json"
    result = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    ((plan, data),) = trained
    assert plan.dataset == "fashion_mnist" and data.x_train.shape == (32, 32, 32, 1)
    # Every timed image is one of the set's training images, zero-padded by 2 on each side.
    official = {bytes(image) for image in load_dataset("fashion_mnist").x_train}
    assert all(bytes(image[2:30, 2:30]) in official for image in data.x_train)
    assert not data.x_train[:, :2].any() and not data.x_train[:, 30:].any()
    assert len({bytes(image) for image in data.x_train}) == 32
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["dataset"] == "fashion_mnist" and report["settings"]["dataset"] == "fashion_mnist"
    assert row["data_shape"] == [28, 28, 1] and row["input_shape"] == [32, 32, 1]
    assert "--dataset fashion_mnist" in report["command"]
    markdown = out.with_suffix(".md").read_text()
    assert "real training images of `fashion_mnist` (28x28x1)" in markdown
    # `zoo bench` times the zoo alone: no peer, no ratio.
    assert "baseline_images_per_s" not in row and "ratio" not in row
    assert row["zoo_images_per_s"]["median"] > 0 and row["zoo_cpu_images_per_s"]["median"] > 0
    assert "| lenet5 | 32x32x1 | 16 × 2 |" in markdown and "baseline" not in markdown

    # More images than the training split holds (90 after the validation slice): one line.
    too_many = CliRunner().invoke(main, [*args[:5], "64", *args[6:], "--json", str(out)])
    assert too_many.exit_code == 1 and "has 90 training images" in too_many.output


def test_backend_option_reruns_in_a_fresh_process(monkeypatch):
    import subprocess

    import keras

    other = "jax" if keras.backend.backend() != "jax" else "tensorflow"
    calls = []

    def fake_run(args, env):
        calls.append((args, env))
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    result = CliRunner().invoke(main, ["bench", "lenet5", "--steps", "2", "--backend", other])
    assert result.exit_code == 0, result.output
    ((args, env),) = calls
    assert args[1:] == ["-m", "zoo.cli", "bench", "lenet5", "--steps", "2", "--backend", other]
    assert env["KERAS_BACKEND"] == other


@pytest.mark.parametrize("name", ["lenet5", "vgg_small"])
def test_pytorch_peer_has_the_zoo_models_weights_and_trains(name):
    pytest.importorskip("torch")
    import numpy as np

    from benchmarks.torch_peer import torch_peer

    info = zoo.get_model_info(name)
    images = np.zeros((8, *info.input_shape), dtype=np.uint8)
    peer = torch_peer(name, images, np.arange(8) % 10, 10, batch_size=4, seed=0)
    weights = sum(p.numel() for p in peer.model.parameters())
    assert weights == zoo.build(name).count_params() == info.num_params
    peer.run_epoch()
    assert len(peer.wall) == 1 and peer.cpu[0] >= 0


def test_pytorch_peer_is_timed_in_its_own_process_without_tensorflow(tmp_path):
    pytest.importorskip("torch")
    import os

    import numpy as np

    from benchmarks.torch_peer import run_in_own_process

    images = np.zeros((8, 32, 32, 1), dtype=np.uint8)
    report = run_in_own_process("lenet5", images, np.arange(8) % 10, 10, batch_size=4,
                                seed=0, epochs=2, work_dir=tmp_path)
    assert report["pid"] != os.getpid()
    assert report["tensorflow_loaded"] is False  # no TensorFlow thread pools beside it
    assert len(report["wall"]) == len(report["cpu"]) == 2
    assert report["dtype_policy"] == "float32"
    mixed = run_in_own_process("lenet5", images, np.arange(8) % 10, 10, batch_size=4, seed=0,
                               epochs=1, work_dir=tmp_path, dtype_policy="mixed_bfloat16")
    assert mixed["dtype_policy"] == "mixed_bfloat16"  # autocast, as the zoo's policy
    assert run_in_own_process("lenet5", images, np.arange(8) % 10, 10, batch_size=4, seed=0,
                              epochs=1, work_dir=tmp_path,
                              dtype_policy="mixed_float16") is None  # no CPU counterpart
    assert run_in_own_process("resnet50", images, np.arange(8) % 10, 10, batch_size=4, seed=0,
                              epochs=1, work_dir=tmp_path) is None  # nobody wrote one


def test_peer_options_point_to_the_benchmark_scripts(tmp_path):
    """The peers left the package: `zoo bench --versus-torch` and `--no-torch` say in one
    line which script in benchmarks/ does it now, and measure nothing."""
    out = tmp_path / "none.json"
    for flag, script in [("--versus-torch", "benchmarks/versus_torch.py"),
                         ("--no-torch", "benchmarks/bench_peers.py"),
                         ("--torch", "benchmarks/bench_peers.py")]:
        result = CliRunner().invoke(main, ["bench", "lenet5", flag, "--json", str(out)])
        assert result.exit_code == 2, result.output
        (error,) = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert f"{flag} moved out of the package: run python {script}" in error
    assert not out.exists()
