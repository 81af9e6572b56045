"""The inspector agrees with Keras and reproduces the lecture's worked numbers."""

from __future__ import annotations

import warnings

import pytest

import zoo
from tests.conftest import tiny_hparams
from zoo.core.geometry import FlooredOutputWarning, GeometryError, check_window, output_size
from zoo.core.layer_table import format_summary, inspect_model, summarize

MODELS = zoo.list_models()


@pytest.mark.parametrize("name", MODELS)
def test_table_agrees_with_keras_shapes_and_counts(name):
    model = zoo.build(name, **tiny_hparams(name))
    summary = summarize(model)
    by_name = {layer.name: layer for layer in model.layers}
    for row in summary.rows:
        layer = by_name[row.name]
        assert row.output_shape == tuple(layer.output.shape[1:])
        assert row.params == layer.count_params()
    assert summary.total_params == model.count_params()


def test_lecture_conv_weights_and_multiplications():
    """A 3x3x3 -> 64 conv on 224x224x3: 1,792 weights (1,728 without biases), 86,704,128 MACs."""
    summary = inspect_model("vgg16")
    conv = summary.row("block1_conv1")
    assert conv.params == 1_792
    assert conv.params - 64 == 1_728
    assert conv.macs == 86_704_128
    assert conv.output_shape == (224, 224, 64)


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (28, 5, 1, 24),
    (20, 5, 5, 4),
    (20, 5, 3, 6),
    (227, 11, 4, 55),
])
def test_output_size_rule(size, kernel, stride, expected):
    assert output_size(size, kernel, stride) == expected


def test_same_padding_output_size_is_ceil_of_size_over_stride():
    # 'same' pads so the output is ceil(W/S): 7 at stride 2 gives 4 (floor would say 3).
    assert output_size(7, 3, 2, "same") == 4
    assert check_window("conv", (7, 9), (3, 3), (2, 2), "same") == (4, 5)


def test_output_size_arithmetic_without_keras():
    """The rule's parts on their own (mutation testing found them unchecked by fast tests)."""
    from zoo.core.geometry import SpatialStep

    assert output_size(28, 5) == 24  # stride 1 unless given
    assert output_size(28, 5, 1, 2) == 28 and output_size(32, 3, 2, 1) == 16  # P per side
    floored = output_size(8, 3, 2, "valid")  # (8 - 3)/2 + 1 = 3.5
    assert floored == 3 and isinstance(floored, int)
    assert SpatialStep(4, 1, 1, "same").pad_total == 0  # a 1x1 window needs no padding
    assert output_size(4, 1, 1, "same") == 4
    # 'same' pads so that the windows fit exactly: no border pixel is dropped, no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_window("conv", (7, 7), (2, 2), (3, 3), "same") == (3, 3)
    assert SpatialStep(7, 2, 3, "same").is_exact and not SpatialStep(8, 3, 2, "valid").is_exact


def test_output_size_agrees_with_keras_for_every_padding_and_stride():
    import keras

    for padding in ("valid", "same"):
        for size in range(1, 10):
            for kernel in range(1, 5):
                for stride in range(1, 4):
                    if padding == "valid" and kernel > size:
                        continue
                    layer = keras.layers.MaxPooling2D(kernel, stride, padding=padding)
                    expected = layer.compute_output_shape((None, size, size, 1))[1]
                    assert output_size(size, kernel, stride, padding) == expected, (
                        size, kernel, stride, padding)


def test_non_integer_output_is_warned():
    with pytest.warns(FlooredOutputWarning, match="floors it to 6"):
        check_window("conv", (21, 21), (5, 5), (3, 3), "valid")  # (21-5)/3 = 5.33
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_window("conv", (20, 20), (5, 5), (5, 5), "valid")  # (20-5)/5+1 = 4 exactly
        check_window("conv", (20, 20), (5, 5), (3, 3), "valid")  # (20-5)/3+1 = 6 exactly


def test_impossible_geometry_is_refused_with_the_layer_and_fix():
    with pytest.raises(GeometryError) as info:
        zoo.build("lenet5", input_shape=(8, 8, 1))
    message = str(info.value)
    assert "conv2" in message and "2x2" in message and "--input-shape" in message


def test_receptive_fields_of_lenet():
    rows = {r.name: r for r in inspect_model("lenet5").rows}
    assert (rows["conv1"].receptive_field, rows["conv1"].jump) == (5, 1)
    assert (rows["pool1"].receptive_field, rows["pool1"].jump) == (6, 2)
    assert (rows["conv2"].receptive_field, rows["conv2"].jump) == (14, 2)
    assert (rows["pool2"].receptive_field, rows["pool2"].jump) == (16, 4)
    assert rows["fc1"].receptive_field is None  # dense units see the whole input


def test_receptive_field_of_vgg16_block5():
    rows = {r.name: r for r in inspect_model("vgg16").rows}
    assert rows["block5_conv3"].receptive_field == 196
    assert rows["block5_pool"].jump == 32


def test_formatted_table_has_every_layer_and_totals():
    text = format_summary(inspect_model("lenet5"))
    for name in ("conv1", "pool2", "fc2", "predictions", "total", "61,706", "416,520"):
        assert name in text
    assert "(32 + 2*0 - 5)/1 + 1 = 28" in text


def test_inspector_works_on_keras_applications():
    import keras

    model = keras.applications.MobileNetV2(weights=None, input_shape=(96, 96, 3), alpha=0.35)
    summary = summarize(model)
    assert summary.total_params == model.count_params()
    assert summary.total_macs > 0
