"""Transfer learning: freezing, batch norm, two phases, sources, strategy, embeddings, errors."""

from __future__ import annotations

import csv
import json
import time
import warnings

import numpy as np
import pytest
from click.testing import CliRunner

from recipes.transfer import (
    TransferError,
    TransferSettings,
    base_layers,
    choose_strategy,
    frozen_layer_count,
    load_source,
    transfer,
)
from zoo.cli import main
from zoo.data.dataset import Dataset
from zoo.data.load import load_dataset

SOURCE_HPARAMS = {"filters": (4, 8), "dense_units": (32, 16), "normalization": "batch"}
FREEZE = 5  # conv1, conv1_norm, conv1_act, pool1, conv2


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, digits):
    """lenet5 with batch norm, pretrained on digits 0-4 (read-only)."""
    from zoo.training.train import TrainPlan, train

    out = tmp_path_factory.mktemp("source") / "lenet5-0to4"
    train(TrainPlan(model="lenet5", hparams=SOURCE_HPARAMS, epochs=6, batch_size=32,
                    learning_rate=3e-3, out=str(out)),
          data=digits.subset(classes=[0, 1, 2, 3, 4]), verbose=0)
    return out


@pytest.fixture(scope="module")
def two_phase_run(tmp_path_factory, source_run):
    """`zoo transfer` of the source to all ten digits, 20 per class, bottom 5 layers frozen."""
    out = tmp_path_factory.mktemp("transfer") / "run"
    result = CliRunner().invoke(main, [
        "transfer", str(source_run), "--dataset", "digits", "--per-class", "20",
        "--freeze", str(FREEZE), "--head-epochs", "2", "--fine-tune-epochs", "2",
        "--lr", "3e-3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_frozen_weights_identical_unfrozen_changed(source_run, two_phase_run):
    from zoo.core.runs import load_run_model

    source = load_source(str(source_run))
    before = {w.path: w.numpy() for w in source.base.weights}
    model = load_run_model(two_phase_run[0])
    after = {w.path: w.numpy() for w in model.get_layer("base").weights}
    assert before.keys() == after.keys()
    frozen = {layer.name for layer in base_layers(source.base)[:FREEZE]}
    for path, value in before.items():
        layer = path.split("/")[0]
        if layer in frozen or "_norm" in layer:  # bottom layers and every batch norm
            assert np.array_equal(value, after[path]), f"{path} changed but was frozen"
    for path in ("conv2/kernel", "fc1/kernel", "fc2/kernel"):
        if path.split("/")[0] not in frozen:
            assert not np.array_equal(before[path], after[path]), f"{path} did not train"


def test_batch_norm_statistics_of_base_do_not_move(source_run, two_phase_run):
    from zoo.core.runs import load_run_model

    source = load_source(str(source_run))
    model = load_run_model(two_phase_run[0])
    norms = [layer.name for layer in base_layers(source.base) if layer.name.endswith("_norm")]
    assert norms
    for name in norms:
        old, new = source.base.get_layer(name), model.get_layer("base").get_layer(name)
        assert np.array_equal(old.moving_mean.numpy(), new.moving_mean.numpy())
        assert np.array_equal(old.moving_variance.numpy(), new.moving_variance.numpy())


def test_two_phase_run_directory(two_phase_run):
    from zoo.cli import main as cli

    out, output = two_phase_run
    with (out / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert [r["phase"] for r in rows] == ["1", "1", "2", "2"]
    config = json.loads((out / "config.json").read_text())
    phases = config["transfer"]["phases"]
    assert [p["name"] for p in phases] == ["head", "fine-tune"]
    assert phases[1]["learning_rate"] == pytest.approx(3e-5)  # 100x lower by default
    assert len(phases[1]["frozen_layers"]) == FREEZE
    assert config["class_names"] == [str(d) for d in range(10)]
    for name in ("model.keras", "metrics.json", "curves.png"):
        assert (out / name).exists()
    assert "strategy: partial" in output
    # The head has the target's class count (10), not the source's (5).
    shown = CliRunner().invoke(cli, ["show", str(out)])
    assert shown.exit_code == 0, shown.output
    assert "predictions" in shown.output
    from zoo.core.runs import load_run_model

    assert load_run_model(out).output_shape == (None, 10)


def test_transfer_beats_scratch_with_few_examples(source_run, digits):
    """A new task on the source's images (odd or even, 5 examples each): the pretrained
    features beat training the same network from zero. Measured with seeds 0, 1, 2 (the
    examples drawn and the training seed), 40 epochs each: transfer 0.978/0.926/0.970, scratch
    0.696/0.748/0.674 (with 20 epochs seed 0 gave 0.62 vs 0.65: the head had seen too few
    updates). This test runs seed 0. (benchmarks/transfer_fewshot.py shows that from digits
    0-4 to the new digits 5-9 scratch wins instead.)"""
    from dataclasses import replace

    from zoo.training.train import TrainPlan, train

    source_digits = digits.subset(classes=[0, 1, 2, 3, 4])
    parity = replace(source_digits, y_train=source_digits.y_train % 2,
                     y_val=source_digits.y_val % 2, y_test=source_digits.y_test % 2,
                     class_names=["even", "odd"], name="parity")
    target = parity.subset(per_class=5, seed=0)
    settings = TransferSettings(strategy="head", head_epochs=40, learning_rate=1e-2,
                                batch_size=16)
    transferred = transfer(load_source(str(source_run)), target, settings, verbose=0,
                           write_run=False)
    scratch = train(TrainPlan(model="lenet5", hparams=SOURCE_HPARAMS, epochs=40,
                              batch_size=16, learning_rate=1e-2),
                    data=target, verbose=0, write_run=False)
    margin = (transferred.test_metrics["test_accuracy"]
              - scratch.test_metrics["test_accuracy"])
    assert margin >= 0.05, (transferred.test_metrics, scratch.test_metrics)


def test_keras_applications_backbone_with_local_weights(tmp_path, digits):
    import keras

    backbone = keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3),
                                              include_top=False, weights=None)
    # weights=None: random weights, so equal weights after loading mean the file was read
    weights = tmp_path / "mobilenet.weights.h5"
    backbone.save_weights(weights)
    target = digits.subset(classes=[0, 1], per_class=4)
    with pytest.raises(TransferError, match="--set alpha"):  # built with the default alpha
        load_source("MobileNetV2", weights=str(weights), target=target)
    source = load_source("MobileNetV2", weights=str(weights), hparams={"alpha": 0.35},
                         target=target)
    assert source.base.input_shape == (None, 32, 32, 3)  # 28x28 grey -> 32x32 RGB
    loaded = {w.path: w.numpy() for w in source.base.weights}
    assert all(np.array_equal(loaded[w.path], w.numpy()) for w in backbone.weights)
    result = transfer(source, target, TransferSettings(strategy="head", head_epochs=1),
                      verbose=0, write_run=False)
    assert result.model.output_shape == (None, 2)
    assert result.model.get_layer("to_minus1_1")  # MobileNetV2 expects [-1, 1] input


def test_imagenet_weights_offline_fail_fast(monkeypatch, tmp_path):
    import socket

    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", unreachable)
    start = time.perf_counter()
    with pytest.raises(TransferError, match="cannot reach"):
        load_source("MobileNet", weights="imagenet", input_shape=(32, 32, 3))
    assert time.perf_counter() - start < 10
    # MobileNetV2 has a weights entry (torchvision's, converted): no download, the import
    # command instead.
    with pytest.raises(FileNotFoundError, match="zoo weights import .*mobilenet_v2-b0353104"):
        load_source("MobileNetV2", weights="imagenet", input_shape=(32, 32, 3))


def test_strategy_auto_follows_images_per_class(digits):
    assert choose_strategy(digits.subset(per_class=3))[0] == "head"
    assert choose_strategy(digits.subset(per_class=5))[0] == "partial"
    assert choose_strategy(digits)[0] == "partial"  # about 125 per class
    many = Dataset("many", np.zeros((2400, 2, 2, 1), np.uint8), np.repeat([0, 1], 1200),
                   *([np.zeros((2, 2, 2, 1), np.uint8), np.array([0, 1])] * 2), ["a", "b"])
    strategy, reason = choose_strategy(many)
    assert strategy == "full" and "1200" in reason


def test_cli_auto_strategy_says_what_and_why(source_run):
    result = CliRunner().invoke(main, [
        "transfer", str(source_run), "--per-class", "3", "--strategy", "auto",
        "--head-epochs", "1", "--out", "auto-run"])
    assert result.exit_code == 0, result.output
    assert "strategy: head (3 training images" in result.output


def test_embed_and_neighbors(two_phase_run, tmp_path):
    from recipes.embed import nearest_neighbors

    run = str(two_phase_run[0])
    result = CliRunner().invoke(main, ["embed", run, "--split", "train", "--split", "test",
                                       "--out", "features.npz"])
    assert result.exit_code == 0, result.output
    arrays = np.load(tmp_path / "features.npz")
    assert arrays["features_train"].shape[1] == 16  # fc2 of the source: last hidden layer
    assert len(arrays["features_test"]) == len(arrays["labels_test"])
    result = CliRunner().invoke(main, ["neighbors", run, "--query", "3", "--k", "4",
                                       "--out", "grid.png"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.png").stat().st_size > 1000
    refs = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    idx, dist = nearest_neighbors(np.array([[0.9, 0.1]]), refs, 2)
    assert idx.tolist() == [[1, 0]]
    assert dist[0, 0] == pytest.approx(np.hypot(0.1, 0.1))


# ---------------------------------------------------------------- bad input


def test_missing_source_and_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither"):
        load_source("saved_models/nothing/model.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ValueError, match="not a valid .keras file"):
        load_source(str(junk))


def test_unknown_source_name_suggests_close_matches():
    with pytest.raises(TransferError, match="lenet5"):
        load_source("lenet")
    with pytest.raises(TransferError, match="MobileNetV2"):
        load_source("MobileNetV", weights="x.h5")
    with pytest.raises(TransferError, match="--weights PATH"):
        load_source("lenet5")


def test_freeze_out_of_range_and_unknown_layer(source_run, digits):
    source = load_source(str(source_run))
    count = len(base_layers(source.base))
    with pytest.raises(TransferError, match=f"has {count} layers"):
        transfer(source, digits, TransferSettings(freeze=count + 1, out="never"))
    with pytest.raises(TransferError, match="did you mean conv1"):
        frozen_layer_count(source.base, TransferSettings(freeze_until="conv_1"), "partial")
    with pytest.raises(TransferError, match="give one"):
        transfer(source, digits, TransferSettings(freeze=1, fine_tune_layers=2, out="never"))
    from pathlib import Path

    assert not Path("never").exists()  # refused before any work


def test_lambda_model_needs_unsafe(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    from zoo.core.runs import UnsafeModelError

    with pytest.raises(UnsafeModelError, match="--unsafe"):
        load_source(str(path))
    assert load_source(str(path), unsafe=True).base.output_shape == (None, 64)
    result = CliRunner().invoke(main, ["transfer", str(path), "--head-epochs", "1"])
    assert result.exit_code == 1 and "--unsafe" in result.output


def test_zoo_model_with_weights_file(tmp_path, digits):
    from zoo.core.registry import build

    hparams = {"filters": (4, 8), "dense_units": (16, 16), "num_classes": 5}
    model = build("lenet5", **hparams)
    weights = tmp_path / "lenet5.weights.h5"
    model.save_weights(weights)
    source = load_source("lenet5", weights=str(weights), hparams=hparams)
    loaded = {w.path: w.numpy() for w in source.base.weights}
    saved = {w.path: w.numpy() for w in model.weights if w.path in loaded}
    assert len(saved) == len(loaded) == 8  # conv1, conv2, fc1, fc2: kernels and biases
    assert all(np.array_equal(loaded[k], saved[k]) for k in saved)
    # A file of other shapes is refused in one message; Keras' "Skipping nested container"
    # warnings, a by-product of its failed attempt, do not leak out beside it.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TransferError, match="--set num_classes"):
            load_source("lenet5", weights=str(weights), hparams={"num_classes": 5})
    assert not [w for w in caught if "nested container" in str(w.message)]


def test_the_tours_few_shot_transfer_learns_with_the_default_learning_rates(tiny_run, tmp_path):
    """The README tour's `zoo transfer RUN --dataset digits --per-class 5 --strategy auto` with
    every learning rate left at its default. 50 images are 2 updates per epoch: at the old
    defaults (head 1e-3, fine-tuning 1e-4) the new head hardly moved, and transfer to the very
    digits the source reads at 0.9 test accuracy ended at 0.13 here (the tour's LeNet-5: 0.40);
    the defaults now (head 1e-2, fine-tuning 1e-4): 0.76 here, 0.93 on the tour (README)."""
    result = CliRunner().invoke(main, [
        "transfer", str(tiny_run), "--dataset", "digits", "--per-class", "5", "--strategy",
        "auto", "--out", str(tmp_path / "fewshot")])
    assert result.exit_code == 0, result.output
    accuracy = float(result.output.split("test_accuracy ")[1].split(",")[0])
    assert accuracy > 0.5, result.output
    config = json.loads((tmp_path / "fewshot" / "config.json").read_text())
    phases = config["transfer"]["phases"]
    assert [p["learning_rate"] for p in phases] == [pytest.approx(1e-2), pytest.approx(1e-4)]
