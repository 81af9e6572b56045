"""The registry and every registered builder: metadata, parameter counts, shapes, training."""

from __future__ import annotations

import numpy as np
import pytest

import zoo
from tests.conftest import tiny_hparams, with_quick_xla_compile

MODELS = zoo.list_models()


def test_registry_lists_every_family():
    assert {"lenet5", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg_small"} <= set(MODELS)
    assert zoo.list_models("vgg1*") == ["vgg11", "vgg13", "vgg16", "vgg19"]


def test_unknown_model_lists_close_matches():
    with pytest.raises(zoo.UnknownModelError, match=r"Did you mean .*vgg16"):
        zoo.build("vgg61")


def test_unknown_hyperparameter_is_refused_with_valid_names():
    with pytest.raises(ValueError, match="no hyperparameter 'filtres'.*Did you mean filters"):
        zoo.build("lenet5", filtres=(4, 8))


@pytest.mark.parametrize("name", MODELS)
def test_metadata_matches_built_model(name):
    """The registry's parameter and MAC counts (printed by `zoo list`) are the real ones."""
    from zoo.core.layer_table import summarize

    info = zoo.get_model_info(name)
    model = zoo.build(name)
    assert model.name == name
    assert tuple(model.input_shape[1:]) == info.input_shape
    assert model.output_shape == (None, info.num_classes)
    assert model.count_params() == info.num_params
    assert summarize(model).total_macs == info.macs
    for key in ("input_shape", "num_classes", "filters", "kernel_sizes", "strides", "padding",
                "pool", "normalization", "dropout", "activation", "include_top", "pooling"):
        assert key in info.hyperparameters, f"{name} lacks hyperparameter {key}"


def _variant_tables():
    from zoo.models import alexnet, lenet, vgg

    return [(module.__name__, v) for module in (lenet, alexnet, vgg) for v in module.VARIANTS]


@pytest.mark.parametrize("module, variant", _variant_tables(), ids=lambda v: getattr(v, "name", v))
def test_each_variant_is_registered_with_its_table_row(module, variant):
    """A variant is its family's builder with the table's defaults, visible to the signature
    (zoo show, --set and the tuner read it); its documented counts are the registry's, which
    test_metadata_matches_built_model checks against the built model."""
    import inspect

    info = zoo.get_model_info(variant.name)
    assert info.builder.__module__ == module
    assert (info.num_params, info.macs, info.description) == (
        variant.num_params, variant.macs, variant.description)
    signature = inspect.signature(info.builder)
    assert all(p.kind is p.KEYWORD_ONLY for p in signature.parameters.values())
    for key, value in variant.defaults.items():
        assert signature.parameters[key].default == value
    # input shape and classes are read from the signature, not typed twice
    assert info.input_shape == tuple(signature.parameters["input_shape"].default)
    assert info.num_classes == signature.parameters["num_classes"].default


def test_variant_table_refuses_settings_the_family_does_not_take():
    from zoo.core.registry import Variant, register_model

    def family(name, /, *, filters=(4, 8), activation="relu"):
        raise AssertionError("never built")

    bad = Variant("never_registered", "a typo in the table", 1, 1, defaults={"filtres": (8,)})
    with pytest.raises(TypeError, match="sets 'filtres'.*Did you mean filters"):
        register_model(family="test", paper="", variants=[bad])(family)
    assert "never_registered" not in zoo.list_models()

    def no_name(*, filters=(4, 8)):
        raise AssertionError("never built")

    with pytest.raises(TypeError, match="positional-only"):
        register_model(family="test", paper="", variants=[Variant("x", "", 1, 1)])(no_name)
    with pytest.raises(ValueError, match="'vgg16' is registered twice"):
        register_model(family="test", paper="", variants=[Variant("vgg16", "", 1, 1)])(family)


def test_variant_builder_takes_overrides_and_keeps_its_name():
    model = zoo.build("lenet5_modern", filters=(4, 8), dense_units=(16,))
    assert model.name == "lenet5_modern"
    assert [layer.name for layer in model.layers][-3:] == ["flatten", "fc1", "predictions"]
    assert type(model.get_layer("pool1")).__name__ == "MaxPooling2D"


# Published parameter counts at the canonical input (1000 classes for ImageNet models).
PUBLISHED = {
    "lenet5": 61_706,  # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850
    "alexnet": 62_378_344,
    "vgg11": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16": 138_357_544,  # keras.applications.VGG16(weights=None).count_params()
    "vgg19": 143_667_240,  # keras.applications.VGG19
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    assert zoo.build(name).count_params() == PUBLISHED[name]


def test_vgg16_matches_keras_applications_layer_by_layer():
    import keras

    ours = zoo.build("vgg16")
    theirs = keras.applications.VGG16(weights=None)
    def weights(model):
        return {layer.name: layer.count_params() for layer in model.layers
                if layer.count_params()}

    assert weights(ours) == weights(theirs)


@pytest.mark.parametrize("name", MODELS)
def test_feature_extractor_mode(name):
    model = zoo.build(name, include_top=False, pooling="avg", **tiny_hparams(name))
    assert len(model.output_shape) == 2
    assert "predictions" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("normalization", ["batch", "layer", "instance", "group"])
def test_normalizations_build(name, normalization):
    model = zoo.build(name, normalization=normalization, **tiny_hparams(name))
    norm_layers = [layer for layer in model.layers if layer.name.endswith("_norm")]
    assert norm_layers, "conv -> norm -> activation expected"
    first_conv = next(layer for layer in model.layers if type(layer).__name__ == "Conv2D")
    assert not first_conv.use_bias  # the norm's beta makes a conv bias redundant


@pytest.mark.parametrize("name", MODELS)
def test_one_batch_training_step_lowers_the_loss(name):
    import keras

    keras.utils.set_random_seed(0)
    model = zoo.build(name, **tiny_hparams(name))
    shape = model.input_shape[1:]
    x = np.random.default_rng(0).random((6, *shape), dtype=np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    losses = [float(model.train_on_batch(x, y)) for _ in range(10)]
    assert losses[-1] < losses[0]


def test_layer_names_are_stable_and_addressable():
    names = [layer.name for layer in zoo.build("vgg16").layers]
    assert names[:4] == ["image", "block1_conv1", "block1_conv2", "block1_pool"]
    assert names[-3:] == ["fc2", "fc2_dropout", "predictions"]
    lenet = [layer.name for layer in zoo.build("lenet5").layers]
    assert lenet == ["image", "conv1", "pool1", "conv2", "pool2", "flatten", "fc1", "fc2",
                     "predictions"]


def test_lenet_classic_and_modern_differ_only_in_activation_and_pooling():
    classic, modern = zoo.build("lenet5"), zoo.build("lenet5_modern")
    assert classic.get_layer("conv1").get_config()["activation"] == "tanh"
    assert type(classic.get_layer("pool1")).__name__ == "AveragePooling2D"
    assert modern.get_layer("conv1").get_config()["activation"] == "relu"
    assert type(modern.get_layer("pool1")).__name__ == "MaxPooling2D"
    assert classic.count_params() == modern.count_params()


def test_vgg_small_depth_and_widths_are_hyperparameters():
    model = zoo.build("vgg_small", filters=(8, 16), depths=(1, 3))
    convs = [layer.name for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert convs == ["block1_conv1", "block2_conv1", "block2_conv2", "block2_conv3"]


@pytest.mark.parametrize("bad, message", [
    ({"dropout": 1.5}, "dropout must be in"),
    ({"normalization": "weird"}, "normalization must be one of"),
    ({"pool": "median"}, "pool must be one of"),
    ({"kernel_sizes": (3, 5, 7)}, "kernel_sizes needs 2 values"),
])
def test_bad_hyperparameters_are_clear(bad, message):
    with pytest.raises(ValueError, match=message):
        zoo.build("lenet5", **bad)


def test_zoo_train_runs_under_the_torch_backend(tmp_path):
    """`zoo train` works with KERAS_BACKEND=torch: Keras' torch trainer refuses
    steps_per_execution > 1, so the loop uses 1 there and records it in the run's config."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("torch")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONPATH": root}
    out = subprocess.run([sys.executable, "-m", "zoo", "train", "lenet5", "--epochs", "1",
                          "--out", str(tmp_path / "run")], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["backend"] == "torch"
    assert config["steps_per_execution"] == 1


def test_builders_work_under_jax(tmp_path):
    """Every builder builds and takes a training step with KERAS_BACKEND=jax (GPU machines)."""
    import os
    import subprocess
    import sys

    script = (
        "import numpy as np, keras, zoo\n"
        "from tests.conftest import tiny_hparams\n"
        "assert keras.backend.backend() == 'jax'\n"
        "for name in zoo.list_models():\n"
        "    m = zoo.build(name, **tiny_hparams(name))\n"
        "    m.compile('adam', 'sparse_categorical_crossentropy')\n"
        "    x = np.zeros((2, *m.input_shape[1:]), 'float32')\n"
        "    m.train_on_batch(x, np.array([0, 1]))\n"
        "print('ok')\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = with_quick_xla_compile({**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": root})
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ok" in out.stdout
