"""`zoo viz`: every picture is a real PNG of the expected size, drawn from the right numbers."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from zoo.cli import main
from zoo.core.layer_table import summarize
from zoo.viz import (
    LECTURE_MAP,
    evaluate_classes,
    load_run,
    load_split,
    plot_feature_maps,
    plot_filters,
    pooling_example,
    receptive_field,
    sample_image,
    unit_box,
)
from zoo.viz.maps import DPI


def run(*args):
    return CliRunner().invoke(main, ["viz", *map(str, args)], catch_exceptions=False)


def assert_picture(path, size_inches):
    """A non-empty PNG, about as large as the figure it was drawn from, not a blank canvas."""
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
        pixels = np.asarray(img.convert("L"), dtype=np.float32)
    want_w, want_h = size_inches[0] * DPI, size_inches[1] * DPI
    # bbox_inches="tight" trims margins and makes room for titles: allow for both.
    assert 0.5 * want_w <= width <= 1.3 * want_w, (width, want_w)
    assert 0.5 * want_h <= height <= 1.3 * want_h, (height, want_h)
    assert pixels.std() > 10


@pytest.fixture(scope="module")
def tiny(tiny_run):
    return load_run(tiny_run)


LECTURE_PRINTOUT = """\
2x2 max pool, stride 2 (keras.layers.MaxPooling2D)

input 4x4      2x2 max pool, stride 2    output 2x2
1  0 | 2  3
4  6 | 6  8    --------------------->    6  8
-----+-----                              3  4
3  1 | 1  0
1  2 | 2  4
"""


def test_pooling_prints_the_lecture_example_computed_by_keras(tmp_path):
    example = pooling_example(LECTURE_MAP)
    np.testing.assert_array_equal(example.output, [[6, 8], [3, 4]])
    result = run("pooling")
    assert result.exit_code == 0, result.output
    assert result.output == LECTURE_PRINTOUT
    result = run("pooling", "--out", tmp_path / "pooling.png")
    assert result.exit_code == 0, result.output
    assert_picture(tmp_path / "pooling.png", (2.0 + 0.9 * 6, 1.6 + 0.8 * 4))
    avg = run("pooling", "--kind", "avg", "--map", "1 2 / 3 4", "--size", "2")
    assert avg.exit_code == 0 and "2.50" in avg.output


def test_filters_draws_one_tile_per_kernel(tiny, tiny_run, tmp_path):
    first = plot_filters(tiny, tmp_path / "f1.png")
    assert first.layer == "conv1" and first.kernel_shape == (5, 5, 1, 4)
    assert first.tiles == 4 and not first.colour
    assert_picture(first.path, first.size_inches)
    second = plot_filters(tiny, tmp_path / "f2.png", layer="conv2", max_channels=3)
    assert second.tiles == 8 * 3  # rows: filters, columns: the first 3 input channels
    result = run("filters", tiny_run, "--layer", "conv2", "--max-channels", 3,
                 "--out", tmp_path / "cli.png")
    assert result.exit_code == 0, result.output
    assert "conv2: 8 filters of 5x5x4, 24 tiles" in result.output
    assert_picture(tmp_path / "cli.png", second.size_inches)


def test_filters_of_a_first_layer_on_rgb_input_are_in_colour(tmp_path):
    import keras

    from zoo.core.runs import write_json_atomic
    from zoo.viz import LoadedRun

    model = keras.Sequential([keras.Input((12, 12, 3)),
                              keras.layers.Conv2D(5, 3, name="block1_conv1"),
                              keras.layers.Conv2D(4, 3, name="block1_conv2"),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")], name="rgb")
    model.save(tmp_path / "model.keras")
    write_json_atomic(tmp_path / "config.json", {"model": "rgb"})
    loaded = load_run(tmp_path)
    assert isinstance(loaded, LoadedRun)
    grid = plot_filters(loaded, tmp_path / "rgb.png")
    assert grid.colour and grid.tiles == 5
    assert_picture(grid.path, grid.size_inches)
    deeper = plot_filters(loaded, tmp_path / "deep.png", layer="block1_conv2")
    assert not deeper.colour and deeper.tiles == 4 * 5


@pytest.mark.parametrize("layer, channels", [(None, 4), ("pool1", 4), ("conv2", 8)])
def test_featuremaps_has_one_tile_per_channel(tiny, tmp_path, layer, channels):
    image = sample_image(tiny, 7)
    grid = plot_feature_maps(tiny, image, tmp_path / "maps.png", layer=layer)
    assert grid.activations.shape[-1] == channels
    assert grid.tiles == channels
    assert_picture(grid.path, grid.size_inches)


def test_featuremaps_command_takes_an_image_file(tiny, tiny_run, tmp_path):
    x, _, _ = load_split(tiny, "test")
    Image.fromarray(x[3][..., 0]).resize((64, 64)).save(tmp_path / "digit.png")
    result = run("featuremaps", tiny_run, "--image", tmp_path / "digit.png", "--layer", "conv2",
                 "--out", tmp_path / "m.png")
    assert result.exit_code == 0, result.output
    assert "conv2: 8 feature maps of 10x10 for digit.png" in result.output
    assert (tmp_path / "m.png").stat().st_size > 0


def test_receptive_field_box_matches_the_inspector_and_the_input_gradient(tiny):
    image = sample_image(tiny, 0)
    summary = summarize(tiny.model)
    # LeNet-5 at 32x32: 5x5 conv, 2x2/2 pool, 5x5 conv, 2x2/2 pool.
    expected = {"conv1": (5, 1), "pool1": (6, 2), "conv2": (14, 2), "pool2": (16, 4)}
    for layer, (size, jump) in expected.items():
        row = summary.row(layer)
        assert (row.receptive_field, row.jump) == (size, jump)
        field = receptive_field(tiny, image, layer=layer)
        height, width = row.output_shape[:2]
        assert field.unit == (height // 2, width // 2)
        assert field.box == unit_box(size, jump, row.start, field.unit)
        assert field.box[2] - field.box[0] + 1 == size
        # tanh and average pooling: every pixel of the box reaches the unit, no other does.
        assert field.gradient_inside, layer
        assert field.gradient_box == field.box, layer
    # The centre unit of pool2 (2, 2) sees rows/columns 8..23 of the 32x32 input.
    assert receptive_field(tiny, image, layer="pool2").box == (8, 8, 23, 23)
    corner = receptive_field(tiny, image, layer="conv2", unit=(0, 0), channel=1)
    assert corner.box == (0, 0, 13, 13) and corner.gradient_inside


def test_receptive_field_command_draws_box_and_gradient(tiny_run, tmp_path):
    result = run("receptive-field", tiny_run, "--layer", "pool2", "--sample", 2,
                 "--out", tmp_path / "rf.png")
    assert result.exit_code == 0, result.output
    assert "receptive field 16x16 (jump 4, start 8), rows 8..23, columns 8..23" in result.output
    assert "rows 8..23, columns 8..23, inside the box, fills it" in result.output
    assert_picture(tmp_path / "rf.png", (9.5, 4.8))


def test_confusion_command_prints_per_class_table(tiny, tiny_run, tmp_path):
    report = evaluate_classes(tiny)
    _, y, _ = load_split(tiny, "test")
    assert report.confusion.sum() == len(y)
    np.testing.assert_array_equal(report.confusion.sum(axis=1), np.bincount(y, minlength=10))
    np.testing.assert_allclose(report.recall, np.diag(report.confusion) / report.support)
    result = run("confusion", tiny_run, "--out", tmp_path / "c.png", "--table",
                 tmp_path / "classes.md")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert sum(line.split()[0] in [str(d) for d in range(10)] for line in lines) == 10
    assert f"accuracy {report.accuracy:.4f} on {len(y)} test images" in result.output
    assert (tmp_path / "classes.md").read_text().startswith("| class | precision |")
    assert_picture(tmp_path / "c.png", (0.55 * 10 + 2.5 + 1.2, 0.55 * 10 + 2.5))
    csv_run = run("confusion", tiny_run, "--normalize", "--split", "val", "--out",
                  tmp_path / "n.png", "--table", tmp_path / "classes.csv")
    assert csv_run.exit_code == 0, csv_run.output
    assert (tmp_path / "classes.csv").read_text().splitlines()[0] == \
        "class,precision,recall,f1,support"


def test_curves_command_draws_the_history(tiny_run, tmp_path):
    result = run("curves", tiny_run, "--out", tmp_path / "curves.png")
    assert result.exit_code == 0, result.output
    assert "lenet5 on digits: 3 epochs" in result.output
    assert_picture(tmp_path / "curves.png", (10, 4))
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = run("curves", empty, "--out", tmp_path / "x.png")
    assert bad.exit_code == 1 and "no history.csv" in bad.output


@pytest.mark.parametrize("args, message", [
    (["filters", "--layer", "conv_2"], "has no layer 'conv_2'; did you mean conv2"),
    (["filters", "--layer", "pool1"], "'pool1' (AveragePooling2D) is not a Conv2D layer; "
                                      "pick one of lenet5's: conv1, conv2"),
    (["featuremaps", "--layer", "fc1"], "'fc1' (Dense) is not a layer with 2-D feature maps"),
    (["featuremaps", "--sample", "5000"], "sample 5000 is out of range: the test split has"),
    (["featuremaps", "--image", "not-an-image.png"], "cannot read"),
    (["featuremaps", "--image", "missing.png"], "does not exist"),
    (["receptive-field", "--layer", "conv2", "--unit", "20,0"], "outside conv2's 10x10 map"),
    (["receptive-field", "--layer", "flatten"], "not a layer with 2-D feature maps"),
])
def test_bad_input_fails_in_one_clear_line(tiny_run, tmp_path, args, message):
    (tmp_path / "not-an-image.png").write_bytes(b"this is text, not a PNG")
    command, *options = args
    result = run(command, tiny_run, *options, "--out", tmp_path / "never.png")
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "never.png").exists()
