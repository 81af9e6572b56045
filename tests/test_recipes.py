"""Recipes: each changes what it claims, they compose in any order, bad specs fail early."""

from __future__ import annotations

import math

import numpy as np
import pytest
from click.testing import CliRunner

from recipes import REGISTRY, RecipeError, apply_recipes, list_recipes, parse_recipe
from recipes.augment import AugmentPipeline
from zoo.cli import main
from zoo.training.train import TrainPlan

TINY = {"filters": (4, 8), "dense_units": (16, 16), "num_classes": 10}


def tiny_plan(**changes) -> TrainPlan:
    return TrainPlan(**{"model": "lenet5", "hparams": dict(TINY), "epochs": 2,
                        "batch_size": 16, **changes})


def build(plan: TrainPlan):
    import zoo

    return zoo.build(plan.model, **plan.hparams)


def digit_batch(count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Digits as lenet5 sees them: float [0, 1], padded to 32x32x1."""
    from zoo.data.batches import to_float
    from zoo.data.dataset import fit_images
    from zoo.data.load import load_dataset

    data = load_dataset("digits")
    return to_float(fit_images(data.x_train[:count], (32, 32, 1))), data.y_train[:count]


@pytest.mark.parametrize("cls", list_recipes(), ids=lambda cls: cls.name)
def test_every_recipe_has_valid_defaults_and_a_roundtrip_spec(cls):
    recipe = cls()
    assert parse_recipe(recipe.spec()) == recipe
    for p in cls.params():
        assert p.help, f"{cls.name}.{p.name} needs help text for `zoo recipes`"


@pytest.mark.parametrize("name, layer_class", [
    ("batchnorm", "BatchNormalization"), ("layernorm", "GroupNormalization"),
    ("instancenorm", "GroupNormalization"), ("groupnorm", "GroupNormalization"),
])
def test_normalization_recipe_puts_norm_layers_between_conv_and_activation(name, layer_class):
    plan = apply_recipes(tiny_plan(), [name])
    model = build(plan)
    names = [layer.name for layer in model.layers]
    assert type(model.get_layer("conv1_norm")).__name__ == layer_class
    assert names.index("conv1") < names.index("conv1_norm") < names.index("conv1_act")
    assert plan.recipes == [name]


def test_augmentation_changes_training_batches_but_never_the_model():
    plan = apply_recipes(tiny_plan(), ["augment:rotation=0.1"])
    images, labels = digit_batch()
    augmented, same_labels = plan.augment(images, labels)
    augmented = np.asarray(augmented)
    assert augmented.shape == images.shape
    assert np.abs(augmented - images).mean() > 0.01
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0 + 1e-6
    np.testing.assert_array_equal(np.asarray(same_labels), labels)
    # The model trained with augmentation holds no preprocessing layer and is deterministic.
    from zoo.training.train import train

    result = train(plan, verbose=0, write_run=False)
    assert not [layer for layer in result.model.layers
                if "preprocessing" in type(layer).__module__]
    np.testing.assert_allclose(result.model.predict(images, verbose=0),
                               result.model.predict(images, verbose=0))


def test_digits_get_no_mirroring_and_natural_images_do():
    digits = apply_recipes(tiny_plan(), ["augment"]).augment.stages[0]
    photos = apply_recipes(tiny_plan(dataset="tfds:cifar10"), ["augment"]).augment.stages[0]
    assert (digits.flip, digits.fill) == ("none", "constant")
    assert (photos.flip, photos.fill) == ("horizontal", "reflect")
    mnist = apply_recipes(tiny_plan(dataset="mnist"), ["augment"]).augment.stages[0]
    clothes = apply_recipes(tiny_plan(dataset="fashion_mnist"), ["augment"]).augment.stages[0]
    assert mnist.flip == "none" and clothes.flip == "horizontal"


def test_elastic_warp_inside_tf_data_keeps_every_image_its_own():
    """Keras' elastic transform alone turns a tf.data batch into copies of its first image."""
    from zoo.data.batches import make_batches
    from zoo.data.load import load_dataset

    data = load_dataset("digits")
    plan = apply_recipes(tiny_plan(), ["augment:elastic=1,translate=0,rotation=0,zoom=0,"
                                       "brightness=0,contrast=0"])
    batches = make_batches(data.x_train[:8], data.y_train[:8], batch_size=8, shuffle=False,
                           seed=0, augment=plan.augment)
    # tf.data where TensorFlow is installed, else a PyDataset of NumPy batches (JAX machines).
    images, _ = batches[0] if hasattr(batches, "__getitem__") else next(iter(batches))
    images = np.asarray(images)
    originals = data.x_train[:8] / 255.0
    assert np.abs(images[1] - images[0]).mean() > 0.02
    # Warped, not replaced: each stays closer to its own original than to another digit.
    own = np.abs(images - originals).mean(axis=(1, 2, 3))
    other = np.abs(images - np.roll(originals, 1, axis=0)).mean(axis=(1, 2, 3))
    assert (own < other).all() and (own > 0).all()


def test_mixup_makes_soft_one_hot_labels():
    plan = apply_recipes(tiny_plan(), ["mixup:alpha=1"])
    assert plan.one_hot_labels
    images, labels = digit_batch(16)
    _, mixed = plan.augment(images, np.eye(10, dtype=np.float32)[labels])
    mixed = np.asarray(mixed)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
    assert (mixed.max(axis=1) < 1 - 1e-3).any()


@pytest.mark.parametrize("spec", ["schedule:kind=cosine", "schedule:kind=step,every=1",
                                  "schedule:kind=cosine,warmup=1,final=0.1"])
def test_schedule_learning_rate_falls(spec):
    plan = apply_recipes(tiny_plan(epochs=4), [spec])
    schedule = plan.lr_schedule(1e-2, 10, plan.epochs)
    rates = [float(schedule(step)) for step in range(0, 40, 5)]
    peak = rates.index(max(rates))
    assert rates[-1] < 0.5 * max(rates)
    assert all(a >= b - 1e-9 for a, b in zip(rates[peak:], rates[peak + 1:]))
    if "warmup" in spec:
        assert rates[0] < rates[peak] and math.isclose(max(rates), 1e-2, rel_tol=0.1)


def test_plateau_and_constant_schedules():
    import keras

    plateau = apply_recipes(tiny_plan(), ["schedule:kind=plateau,factor=0.5,patience=3"])
    (callback,) = plateau.callbacks
    assert isinstance(callback, keras.callbacks.ReduceLROnPlateau)
    assert (callback.factor, callback.patience) == (0.5, 3)
    constant = apply_recipes(tiny_plan(), ["schedule:kind=constant"])
    assert constant.lr_schedule is None and not constant.callbacks


def test_dropout_inference_is_deterministic_and_unscaled():
    plan = apply_recipes(tiny_plan(), ["dropout:rate=0.5,spatial=0.2"])
    dropped = build(plan)
    assert dropped.get_layer("fc1_dropout").rate == 0.5
    plain = build(tiny_plan())
    plain.set_weights(dropped.get_weights())  # dropout layers hold no weights
    images, _ = digit_batch()
    inference = np.asarray(dropped(images, training=False))
    np.testing.assert_allclose(inference, np.asarray(dropped(images, training=False)))
    # Inverted dropout: at inference the layer is the identity, no rescaling by (1 - rate).
    np.testing.assert_allclose(inference, np.asarray(plain(images, training=False)), atol=1e-6)
    assert not np.allclose(inference, np.asarray(dropped(images, training=True)))


def test_weight_decay_adds_l2_to_every_kernel():
    model = build(apply_recipes(tiny_plan(), ["weight-decay:l2=0.001"]))
    regularizer = model.get_layer("conv1").kernel_regularizer
    assert math.isclose(regularizer.get_config()["l2"], 0.001, rel_tol=1e-6)
    assert len(model.losses) == len([w for w in model.trainable_weights if "kernel" in w.path])


def test_composition_order_does_not_matter():
    specs = ["augment", "mixup", "dropout:rate=0.3", "batchnorm", "schedule:kind=step",
             "weight-decay", "lr:scale=2"]
    rng = np.random.default_rng(0)
    orders = [specs, specs[::-1]] + [list(rng.permutation(specs)) for _ in range(10)]
    plans = [apply_recipes(tiny_plan(), order) for order in orders]
    assert all(plan == plans[0] for plan in plans)
    plan = plans[0]
    assert isinstance(plan.augment, AugmentPipeline)
    assert [stage.name for stage in plan.augment.stages] == ["augment", "mixup"]
    assert plan.hparams["normalization"] == "batch" and plan.learning_rate == 2e-3


@pytest.mark.parametrize("specs, message", [
    (["batchnrm"], "did you mean batchnorm"),
    (["augment:rotation=3"], "rotation"),
    (["dropout:rate=1.5"], "[0, 1)"),
    (["dropout:rat=0.2"], "did you mean rate"),
    (["dropout:rate=abc"], "float"),
    (["augment:flip=sideways"], "one of auto, none"),
    (["batchnorm", "layernorm"], "both set the normalization"),
    (["mixup", "cutmix"], "keep one of them"),
    (["schedule:kind=step,warmup=1"], "cosine only"),
    (["schedule:kind=cosine,warmup=5"], "warm-up of 5 epochs"),
    (["dropout:rate=0,spatial=0"], "drops nothing"),
    (["dropout:rate"], "key=value"),
])
def test_bad_specs_are_clear_errors(specs, message):
    with pytest.raises(RecipeError, match=None) as err:
        apply_recipes(tiny_plan(), specs)
    assert message in str(err.value)


def test_recipe_clashing_with_set_hyperparameter_is_refused():
    plan = tiny_plan()
    plan.hparams["normalization"] = "layer"
    with pytest.raises(RecipeError, match="already has normalization='layer'"):
        apply_recipes(plan, ["batchnorm"])


def test_cli_refuses_bad_recipe_before_training():
    result = CliRunner().invoke(main, ["train", "lenet5", "--recipe", "augment:rotation=3"])
    assert result.exit_code == 1
    assert "rotation" in result.output and "Traceback" not in result.output
    assert not list(__import__("pathlib").Path(".").glob("saved_models/runs/*"))


def test_auto_batch_size_is_a_power_of_two_that_fits():
    from recipes.batch_size import auto_batch_size, estimate_batch_size

    plan = tiny_plan()
    roomy = estimate_batch_size(plan, available_bytes=2**34)
    # Memory allows far more; an epoch keeps >= 16 updates: 1,259 images // 16 = 78 -> 64.
    assert roomy.batch_size == 64
    tight = estimate_batch_size(plan, available_bytes=roomy.fixed_bytes * 2
                                + 40 * roomy.per_image_bytes)
    assert tight.batch_size == 16  # (16 + 4 images of room) x 2 for the safety half
    with pytest.raises(RecipeError, match="free"):
        estimate_batch_size(plan, available_bytes=roomy.fixed_bytes)
    size = auto_batch_size(plan)
    assert size & (size - 1) == 0 and 1 <= size <= 64


def test_recipes_command_lists_every_recipe_with_defaults():
    result = CliRunner().invoke(main, ["recipes"])
    assert result.exit_code == 0, result.output
    for name in REGISTRY:
        assert name in result.output
    assert "rate=0.5" in result.output and "kind=cosine" in result.output


def test_augment_preview_writes_a_grid(tmp_path):
    out = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["augment-preview", "--recipe", "augment:elastic=0.5",
                                       "--images", "2", "--copies", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1000
    refused = CliRunner().invoke(main, ["augment-preview", "--recipe", "dropout"])
    assert refused.exit_code == 1 and "augmentation recipes only" in refused.output
