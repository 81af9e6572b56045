"""The training loop: run directory, resume, NaN, determinism, accuracy on real data."""

from __future__ import annotations

import json

import pytest

import zoo
from zoo.core.runs import load_run_metrics, read_history
from zoo.training.job_folder import JobFolderError
from zoo.training.train import TrainingError, TrainPlan, train

TINY = {"filters": (4, 8), "dense_units": (16, 16)}


def test_run_directory_contents(tiny_run):
    for name in ("config.json", "history.csv", "model.keras", "metrics.json", "curves.png"):
        assert (tiny_run / name).exists(), name
    assert (tiny_run / "logs").is_dir()  # TensorBoard
    assert not (tiny_run / "backup").exists()  # removed once training finished
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["model"] == "lenet5" and config["class_names"][0] == "0"
    assert config["hparams"]["input_shape"] == [32, 32, 1]
    # Speed settings are recorded: no op determinism unless asked, Keras' XLA choice (none on
    # a CPU-only TensorFlow machine), several batches per call into the train step.
    assert config["deterministic"] is False
    assert config["jit_compile"] is False
    assert config["steps_per_execution"] == 8
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    history = read_history(tiny_run / "history.csv")
    assert history["loss"][-1] < history["loss"][0]  # it learned something


def test_deterministic_training_repeats_its_history_for_a_seed():
    """Augmentation draws random numbers in a parallel input pipeline: the hard case."""
    from recipes import apply_recipes

    plan = dict(model="lenet5", hparams=TINY, epochs=2, batch_size=64, seed=3,
                deterministic=True)
    a, b = (train(apply_recipes(TrainPlan(**plan), ["augment"]), verbose=0, write_run=False)
            for _ in range(2))
    assert a.history["loss"] == b.history["loss"]
    assert a.history["val_loss"] == b.history["val_loss"]
    assert a.history["loss"][-1] < a.history["loss"][0]


def test_default_training_is_not_deterministic_and_does_not_inherit_it():
    from zoo.training.tensorflow_compat import op_determinism_enabled

    train(TrainPlan(model="lenet5", hparams=TINY, epochs=1, batch_size=64, seed=3,
                    deterministic=True), verbose=0, write_run=False)
    assert op_determinism_enabled()
    # The next, default run switches it off again (it costs speed, and XLA refuses it).
    result = train(TrainPlan(model="lenet5", hparams=TINY, epochs=3, batch_size=64, seed=3),
                   verbose=0, write_run=False)
    assert not op_determinism_enabled()
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_deterministic_xla_is_refused_before_training():
    plan = TrainPlan(model="lenet5", hparams=TINY, epochs=1, deterministic=True,
                     jit_compile=True)
    with pytest.raises(TrainingError, match="drop --deterministic or jit_compile"):
        train(plan, verbose=0, write_run=False)


def test_xla_can_be_forced_and_trains():
    result = train(TrainPlan(model="lenet5", hparams=TINY, epochs=2, batch_size=64,
                             jit_compile=True), verbose=0, write_run=False)
    assert result.model.jit_compile is True
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_steps_per_execution_must_be_positive():
    with pytest.raises(TrainingError, match="steps per execution"):
        train(TrainPlan(model="lenet5", hparams=TINY, steps_per_execution=0), verbose=0,
              write_run=False)


def test_nan_loss_stops_with_a_clear_message():
    plan = TrainPlan(model="lenet5_modern", hparams=TINY, epochs=3, batch_size=64,
                     learning_rate=1e12, optimizer="sgd")
    with pytest.raises(TrainingError, match="NaN.*lower the learning rate"):
        train(plan, verbose=0, write_run=False)


def test_finished_run_is_reported_not_retrained_or_overwritten(tiny_run):
    # Killed runs resuming, and finished ones reported by the CLI: tests/test_job_folder.py.
    settings = dict(model="lenet5", hparams={"filters": (4, 8), "dense_units": (32, 16)},
                    epochs=3, batch_size=64, learning_rate=3e-3, out=str(tiny_run))
    again = train(TrainPlan(**settings), verbose=0)
    assert again.finished_earlier
    metrics = load_run_metrics(tiny_run)
    assert again.test_metrics == {k: metrics[k] for k in ("test_accuracy", "test_loss")}
    assert len(again.history["loss"]) == 3
    with pytest.raises(JobFolderError, match="holds a finished lenet5 run with epochs=3, not 1"):
        train(TrainPlan(**{**settings, "epochs": 1}), verbose=0)


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


def test_training_leaves_no_custom_gradient_registered():
    # Each fit on TensorFlow registers custom gradients that would keep its traced graphs
    # alive after the model is gone (~10 MB per run in a sweep); the loop forgets them.
    import keras

    from zoo.training.gradient_registry import custom_gradient_names

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the custom-gradient registry is TensorFlow's")
    before = custom_gradient_names()
    train(TrainPlan(model="lenet5", epochs=1, train_fraction=0.2, batch_size=64),
          write_run=False)
    assert custom_gradient_names() == before


def test_mixed_bfloat16_run_trains_records_its_policy_and_reloads(tmp_path):
    import keras
    import numpy as np

    from zoo.data.batches import to_float
    from zoo.data.dataset import fit_images
    from zoo.data.load import load_dataset

    out = tmp_path / "bf16"
    result = train(TrainPlan(model="lenet5_modern", hparams=TINY, epochs=4, batch_size=64,
                             learning_rate=3e-3, dtype_policy="mixed_bfloat16", out=str(out)),
                   verbose=0)
    assert keras.config.dtype_policy().name == "float32"  # restored after the run
    assert result.model.get_layer("conv1").compute_dtype == "bfloat16"
    assert result.model.get_layer("predictions").compute_dtype == "float32"
    assert json.loads((out / "config.json").read_text())["dtype_policy"] == "mixed_bfloat16"
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert result.test_metrics["test_accuracy"] > 0.5  # 10 classes: chance is 0.1
    reloaded = keras.saving.load_model(out / "model.keras")
    assert reloaded.get_layer("conv1").compute_dtype == "bfloat16"
    images = to_float(fit_images(load_dataset("digits").x_test[:32], (32, 32, 1)))
    probabilities = reloaded.predict(images, verbose=0)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities, result.model.predict(images, verbose=0),
                               atol=1e-6)


def test_dtype_policy_is_restored_after_a_failed_run_and_a_set_one_is_kept():
    import keras

    plan = TrainPlan(model="lenet5_modern", hparams=TINY, epochs=2, batch_size=64,
                     learning_rate=1e12, optimizer="sgd", dtype_policy="mixed_bfloat16")
    with pytest.raises(TrainingError, match="NaN"):
        train(plan, verbose=0, write_run=False)
    assert keras.config.dtype_policy().name == "float32"
    # No policy in the plan: the process's current one is used (zoo bench sets it) and kept.
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        result = train(TrainPlan(model="lenet5", hparams=TINY, epochs=1, batch_size=128),
                       verbose=0, write_run=False)
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    assert result.model.get_layer("conv1").compute_dtype == "bfloat16"


def test_unknown_dtype_policy_and_a_mismatched_prebuilt_model_are_refused():
    with pytest.raises(TrainingError, match="unknown dtype policy 'float64'.*mixed_bfloat16"):
        train(TrainPlan(model="lenet5", dtype_policy="float64"), verbose=0, write_run=False)
    model = zoo.build("lenet5", **TINY)
    with pytest.raises(TrainingError, match="built with dtype policy 'float32'"):
        train(TrainPlan(model="lenet5", dtype_policy="mixed_bfloat16"), model=model,
              verbose=0, write_run=False)


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_classifier_computes_in_float32_under_mixed_precision(name):
    import keras

    from tests.conftest import tiny_hparams
    from zoo.training.dtype_policy import dtype_policy_scope

    with dtype_policy_scope("mixed_bfloat16"):
        model = zoo.build(name, **tiny_hparams(name))
    assert keras.config.dtype_policy().name == "float32"
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs and all(conv.compute_dtype == "bfloat16" for conv in convs)
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.output.dtype == "float32"


def test_precision_recipe_and_option_set_the_policy_once():
    from click.testing import CliRunner

    from recipes import RecipeError, apply_recipes
    from zoo.cli import main

    plan = apply_recipes(TrainPlan(model="lenet5"), ["precision"])
    assert plan.dtype_policy == "mixed_bfloat16" and plan.recipes == ["precision"]
    same = apply_recipes(TrainPlan(model="lenet5", dtype_policy="mixed_float16"),
                         ["precision:policy=mixed_float16"])
    assert same.dtype_policy == "mixed_float16"
    with pytest.raises(RecipeError, match="already has float32.*keep only one"):
        apply_recipes(TrainPlan(model="lenet5", dtype_policy="float32"), ["precision"])
    clash = CliRunner().invoke(main, ["train", "lenet5", "--dtype-policy", "float32",
                                      "--recipe", "precision"])
    assert clash.exit_code == 1 and "keep only one" in clash.output
    assert "Traceback" not in clash.output


def test_tensorflow_private_names_are_the_ones_written_for():
    """zoo.training.tensorflow_compat reaches TensorFlow's private names (no public API does
    what they do); an upgrade that moves or changes one fails here, not in a run."""
    import importlib

    import tensorflow as tf

    from zoo.training import tensorflow_compat

    resolved = {}
    for label, dotted in tensorflow_compat.PRIVATE_NAMES.items():
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):  # the longest importable module, then attributes
            try:
                found = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        for name in parts[cut:]:
            assert hasattr(found, name), (f"TensorFlow {tf.__version__} has no {dotted} "
                                          f"({label}): port zoo/training/tensorflow_compat.py")
            found = getattr(found, name)
        assert isinstance(found, dict) if label == "gradient registry" else callable(found), (
            f"TensorFlow {tf.__version__} changed {dotted} ({label})")
        resolved[label] = found
    before = tensorflow_compat.op_determinism_enabled()
    try:
        for enabled in (True, False):
            tensorflow_compat.set_op_determinism(enabled)
            assert tensorflow_compat.op_determinism_enabled() is enabled
    finally:
        tensorflow_compat.set_op_determinism(before)
    assert tensorflow_compat.gradient_registry() is resolved["gradient registry"]
