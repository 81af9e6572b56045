"""The training loop: run directory, resume, NaN, determinism, accuracy on real data."""

from __future__ import annotations

import json

import pytest

from zoo.runs import read_history
from zoo.train import TrainingError, TrainPlan, train

TINY = {"filters": (4, 8), "dense_units": (16, 16)}


def test_run_directory_contents(tiny_run):
    for name in ("config.json", "history.csv", "model.keras", "metrics.json", "curves.png"):
        assert (tiny_run / name).exists(), name
    assert (tiny_run / "logs").is_dir()  # TensorBoard
    assert not (tiny_run / "backup").exists()  # removed once training finished
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"] == "lenet5" and config["class_names"][0] == "0"
    assert config["hparams"]["input_shape"] == [32, 32, 1]
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    history = read_history(tiny_run / "history.csv")
    assert history["loss"][-1] < history["loss"][0]  # it learned something


def test_training_is_deterministic_for_a_seed():
    plan = dict(model="lenet5", hparams=TINY, epochs=2, batch_size=64, seed=3)
    a = train(TrainPlan(**plan), verbose=0, write_run=False)
    b = train(TrainPlan(**plan), verbose=0, write_run=False)
    assert a.history["loss"] == b.history["loss"]


def test_interrupted_run_resumes_from_its_last_epoch(tmp_path):
    import keras

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    out = tmp_path / "run"
    plan = TrainPlan(model="lenet5", hparams=TINY, epochs=4, batch_size=64, out=str(out),
                     callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        train(plan, verbose=0)
    assert not (out / "metrics.json").exists()
    assert (out / "backup").exists()
    assert not list(out.glob(".partial-*"))  # no half-written model left behind
    resumed = train(TrainPlan(model="lenet5", hparams=TINY, epochs=4, batch_size=64,
                              out=str(out)), verbose=0)
    history = read_history(out / "history.csv")
    assert history["epoch"] == [0.0, 1.0, 2.0, 3.0]  # epoch 0 kept, 1-3 run after resuming
    assert resumed.test_metrics["test_accuracy"] > 0


def test_nan_loss_stops_with_a_clear_message():
    plan = TrainPlan(model="lenet5_modern", hparams=TINY, epochs=3, batch_size=64,
                     learning_rate=1e12, optimizer="sgd")
    with pytest.raises(TrainingError, match="NaN.*lower the learning rate"):
        train(plan, verbose=0, write_run=False)


def test_finished_run_is_not_overwritten(tiny_run):
    with pytest.raises(TrainingError, match="already holds a finished run"):
        train(TrainPlan(model="lenet5", hparams=TINY, epochs=1, out=str(tiny_run)), verbose=0)


def test_unknown_optimizer_is_clear():
    with pytest.raises(TrainingError, match="unknown optimizer 'adamm'"):
        train(TrainPlan(model="lenet5", hparams=TINY, epochs=1, optimizer="adamm"),
              verbose=0, write_run=False)


def test_folder_dataset_trains_on_a_model_of_other_shape(tmp_path):
    """RGB 10x12 images are converted to grey and resized to LeNet's 32x32x1."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, level in (("dark", 30), ("light", 220)):
        (tmp_path / "pics" / cls).mkdir(parents=True)
        for i in range(12):
            img = np.clip(rng.normal(level, 10, (10, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(tmp_path / "pics" / cls / f"{i}.png")
    result = train(TrainPlan(model="lenet5", hparams=TINY, dataset=str(tmp_path / "pics"),
                             epochs=8, batch_size=8, learning_rate=1e-2), verbose=0,
                   write_run=False)
    assert result.model.output_shape == (None, 2)
    assert result.test_metrics["test_accuracy"] == 1.0
