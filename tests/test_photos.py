"""Issue 30, a practitioner's own photos: grey images on ImageNet weights, booleans as typed in
a shell, one weights name everywhere, imbalanced classes, costs said before they are paid."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_weights import tiny_entry  # noqa: F401 (a fixture)

from zoo.cli import main


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


# Four grey classes, imbalanced as the inspection photos of issue 30 (1,508 / 295 / 106 / 715
# scaled down): each image one grey level plus noise; 'small' overlaps 'big' in brightness.
PHOTO_CLASSES = {"big": (90, 0.25), "medium": (20, 0.6), "small": (10, 0.42),
                 "large": (40, 0.8)}


def photo_folder(root, side: int = 16, classes=PHOTO_CLASSES, seed: int = 0):
    """A folder of grey PNG photos, one sub-folder per class, imbalanced (see above)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, (count, level) in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            value = rng.normal(level, 0.08) + rng.normal(0, 0.1, size=(side, side))
            pixels = (np.clip(value, 0, 1) * 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i:03d}.png")
    return root


# ---------------------------------------------------------------- booleans


@pytest.mark.parametrize("spelling", ["FALSE", "0", "No"])
def test_set_takes_the_boolean_spellings_a_shell_user_types(spelling):
    full = json.loads(_cli("show", "lenet5", "--json").output)["total_params"]
    result = _cli("show", "lenet5", "--set", f"include_top={spelling}", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total_params"] < full  # the top was left out


def test_a_word_that_is_no_boolean_is_refused_in_one_line():
    result = _cli("show", "lenet5", "--set", "include_top=maybe")
    assert result.exit_code == 1
    assert "true or false" in result.output and len(result.output.strip().splitlines()) == 1


# ---------------------------------------------------------------- one weights name everywhere


def test_every_command_takes_the_same_weights_names(tiny_entry, tmp_path, monkeypatch):  # noqa: F811
    """'MODEL:imagenet' and 'MODEL:ENTRY' work wherever weights are named, as --weights
    imagenet does in zoo transfer (classify, info, show, build; embed, neighbors and transfer
    resolve them as show does)."""
    import dataclasses

    import numpy as np
    from PIL import Image

    import zoo
    from zoo.weights import catalog
    from zoo.weights.store import import_weights

    entry, path = tiny_entry
    entry = dataclasses.replace(entry, classes="imagenet")  # its 3 outputs: ImageNet's first 3
    monkeypatch.setattr(catalog, "application_entries", lambda: (entry,))
    import_weights(path)
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((12, 12, 3), 128, np.uint8)).save(photo)
    classified = _cli("weights", "classify", "vgg11:imagenet", str(photo))
    assert classified.exit_code == 0, classified.output
    assert classified.output.startswith(f"{photo}: ")
    assert _cli("weights", "info", "vgg11:imagenet").output.startswith("vgg11:tiny:")
    for name in ("imagenet", "tiny", "vgg11:tiny"):
        shown = _cli("show", "vgg11", "--weights", name)
        assert shown.exit_code == 0 and "loaded:  vgg11:tiny" in shown.output, shown.output
    assert zoo.build("vgg11", weights="vgg11:tiny").count_params() > 0
    wrong = _cli("show", "vgg11", "--weights", "lenet5:mnist")
    assert wrong.exit_code == 1 and "not of vgg11" in wrong.output


# ---------------------------------------------------------------- grey images on RGB weights

# Whole-network tolerance of the grey model against the RGB one fed the grey image three
# times, as a fraction of the largest feature: the kernels of random test weights weigh the
# three channels unlike each other, the worst case for the border (zoo.weights.grey). Measured
# on the tiny VGG at 16x16 over 8 random draws: 0.2-2.0 % (ImageNet mean/std), 0.5-1.7 %
# (caffe); away from the border the first convolution agrees to float precision. The fixture's
# weights are one fixed draw (0.95 % mean/std, 1.07 % caffe): they came from test_weights'
# shared generator before, so the figure changed with the tests run before it in a process.
GREY_TOLERANCE = 0.03


def _grey_and_rgb(model_rgb, model_grey, preprocessing, shape):
    """Both models' features for one batch of grey images (the RGB one sees it 3 times), and
    the first convolution's outputs (after its batch norm, if biasless) away from the border,
    where the adaptation is exact."""
    import numpy as np

    from zoo.weights.grey import grey_preprocessing_layers
    from zoo.weights.preprocess import preprocessing_layers

    grey = np.random.default_rng(1).uniform(size=(3, *shape[:2], 1)).astype("float32")
    rgb = np.repeat(grey, 3, axis=-1)
    outputs, firsts = [], []
    for model, layers, x in ((model_rgb, preprocessing_layers(preprocessing), rgb),
                             (model_grey, grey_preprocessing_layers(preprocessing), grey)):
        for layer in layers:
            x = layer(x)
        outputs.append(np.asarray(model(x, training=False)))
        conv = next(layer for layer in model.layers if hasattr(layer, "kernel"))
        y = conv(x if conv.padding == "same" else model.get_layer("Conv1_pad")(x))
        if not conv.use_bias:  # MobileNetV2: the shift is in the batch norm after it
            y = model.get_layer("bn_Conv1")(y, training=False)
        firsts.append(np.asarray(y)[:, 1:-1, 1:-1])
    return outputs, firsts


def _assert_close(outputs, firsts):
    import numpy as np

    scale = np.abs(outputs[0]).max()
    assert scale > 0  # not a dead network: the comparison means something
    assert np.abs(outputs[0] - outputs[1]).max() <= GREY_TOLERANCE * scale
    np.testing.assert_allclose(firsts[1], firsts[0], rtol=1e-4,
                               atol=1e-5 * np.abs(firsts[0]).max())


@pytest.mark.parametrize("kind", ["mean_std", "caffe"])
def test_grey_vgg_matches_the_rgb_model_fed_the_grey_image_three_times(
        tiny_entry, kind, monkeypatch):  # noqa: F811
    import dataclasses

    from zoo.weights import catalog
    from zoo.weights.backbone import pretrained_backbone
    from zoo.weights.entry import CAFFE_BGR, IMAGENET_MEAN_STD
    from zoo.weights.store import import_weights

    entry, path = tiny_entry
    preprocessing = IMAGENET_MEAN_STD if kind == "mean_std" else CAFFE_BGR
    entry = dataclasses.replace(entry, preprocessing=preprocessing)
    monkeypatch.setattr(catalog, "application_entries", lambda: (entry,))
    import_weights(path)
    rgb = pretrained_backbone("vgg11", "imagenet", input_shape=(16, 16, 3))
    grey = pretrained_backbone("vgg11", "imagenet", input_shape=(16, 16, 1))
    assert grey.model.get_layer("block1_conv1").kernel.shape[2] == 1
    assert "summed" in grey.resolved.provenance["input_adapted"]
    _assert_close(*_grey_and_rgb(rgb.model, grey.model, preprocessing, (16, 16)))


def test_grey_mobilenet_v2_shifts_the_batch_norm_after_its_biasless_first_conv(tmp_path):
    """MobileNetV2's Conv1 has no bias: the normalisation's shift goes to bn_Conv1's moving
    mean (exact in inference mode, as transfer runs the base's batch norm)."""
    import numpy as np

    from zoo.weights.applications import torchvision_mobilenet_v2
    from zoo.weights.entry import IMAGENET_MEAN_STD
    from zoo.weights.load import ResolvedWeights, load_into

    rng = np.random.default_rng(0)
    rgb = torchvision_mobilenet_v2(input_shape=(32, 32, 3), include_top=False, pooling="avg")
    for layer in rgb.layers:
        if type(layer).__name__ == "BatchNormalization":  # statistics unlike the defaults
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, beta, rng.normal(size=mean.shape).astype("float32"),
                               rng.uniform(0.5, 2, size=variance.shape).astype("float32")])
    rgb.save_weights(tmp_path / "rgb.weights.h5")
    grey = torchvision_mobilenet_v2(input_shape=(32, 32, 1), include_top=False, pooling="avg")
    entry = type("Entry", (), {"preprocessing": IMAGENET_MEAN_STD})()
    load_into(grey, ResolvedWeights(tmp_path / "rgb.weights.h5", entry), grey=True)
    assert grey.get_layer("Conv1").kernel.shape[2] == 1
    shifted = grey.get_layer("bn_Conv1").moving_mean.numpy()
    assert not np.allclose(shifted, rgb.get_layer("bn_Conv1").moving_mean.numpy())
    _assert_close(*_grey_and_rgb(rgb, grey, IMAGENET_MEAN_STD, (32, 32)))


def test_transfer_trains_imagenet_weights_on_a_grey_folder(tiny_entry, tmp_path):  # noqa: F811
    """`zoo transfer MODEL --weights imagenet --input-shape H,W,1` on grey photos: refused
    before (the file's block1_conv1 holds 3 input channels), trained now."""
    from zoo.weights.store import import_weights

    import_weights(tiny_entry[1])
    folder = photo_folder(tmp_path / "photos")
    result = _cli("transfer", "vgg11", "--weights", "imagenet", "--input-shape", "16,16,1",
                  "--dataset", str(folder), "--strategy", "head", "--head-epochs", "1",
                  "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["input_shape"] == [16, 16, 1]
    assert "summed" in config["weights"]["input_adapted"]
    # The cost before training, with the weights' own (smaller) size offered.
    assert "model input: 16x16x1 (--input-shape; the images are 16x16x1)" in result.output
    assert "cost: 4.0x the pixels of the imagenet weights' size (8x8); --input-shape 8,8,1" \
        in result.output
    assert "kept: the head phase's model, epoch 1 of 1" in result.output
    # zoo show counts the nested base's MACs (it counted them as 0).
    shown = json.loads(_cli("show", str(tmp_path / "run"), "--json").output)
    base = next(row for row in shown["layers"] if row["name"] == "base")
    assert base["macs"] > 16 * 16 * 4 * 9  # at least block1_conv1's
    assert shown["total_macs"] == sum(row["macs"] for row in shown["layers"])


# ---------------------------------------------------------------- imbalanced classes, cost


TRAIN_ARGS = ("--set", "filters=4,8", "--set", "dense_units=32,16", "--epochs", "8", "--lr",
              "3e-3", "--batch-size", "4")  # 28 steps an epoch: not a multiple of 8


def test_train_reports_classes_cost_and_kept_model_and_balanced_weights_find_the_small_class(
        tmp_path, monkeypatch):
    """One unweighted and one --class-weight balanced `zoo train` on a grey imbalanced folder:
    class counts, the imbalance warning, the cost and the epoch time come before training;
    per-class recall, macro F1 and the kept epoch after; the smallest class, never found
    unweighted, is found with balanced weights. Keras' progress bar never passes the epoch's
    last step (it read 28 steps as '32/28', ETA -1s, at steps_per_execution 8)."""
    import csv

    from keras.src.utils.progbar import Progbar

    shown_steps = []
    update = Progbar.update

    def recording_update(self, current, values=None, finalize=None):
        shown_steps.append((current, self.target))
        return update(self, current, values, finalize)

    monkeypatch.setattr(Progbar, "update", recording_update)
    folder = photo_folder(tmp_path / "photos")
    runs = {}
    for weighting in ((), ("--class-weight", "balanced")):
        out = tmp_path / f"run{len(runs)}"
        result = _cli("train", "lenet5", "--dataset", str(folder), *TRAIN_ARGS, *weighting,
                      "--out", str(out))
        assert result.exit_code == 0, result.output
        runs[weighting[-1:] or ("none",)] = result.output, json.loads(
            (out / "metrics.json").read_text()), out
    output, metrics, out = runs[("none",)]
    before = output[:output.index("Epoch 1/8")]
    assert "classes (training images): big 62, large 28, medium 14, small 6" in before
    assert "warning: the classes are imbalanced (10.3:1)" in before
    assert "model input: 32x32x1 (lenet5's default input; the images are 16x16x1)" in before
    assert "M MACs per image" in before
    assert "timing: " in output and "per epoch of 28 steps" in output
    assert "test recall per class: big " in output and "macro F1" in output
    assert set(metrics["test_per_class"]) == {"big", "large", "medium", "small"}
    with (out / "history.csv").open() as f:
        losses = [float(row["val_loss"]) for row in csv.DictReader(f)]
    assert metrics["kept_epoch"] == losses.index(min(losses)) + 1
    assert f"kept: the model of epoch {metrics['kept_epoch']} of 8" in output
    assert shown_steps and all(current <= target for current, target in shown_steps if target)
    balanced_output, balanced, _ = runs[("balanced",)]
    assert "class weights (balanced): big 0.44, large 0.98, medium 1.96, small 4.58" \
        in balanced_output
    # Measured (seed 0): small's recall 0.00 -> 0.50, macro F1 0.44 -> 0.70.
    assert metrics["test_per_class"]["small"]["recall"] == 0.0
    assert balanced["test_per_class"]["small"]["recall"] > 0.0
    assert balanced["test_macro_f1"] > metrics["test_macro_f1"]


# ---------------------------------------------------------------- zoo data info, sampler


def test_data_info_on_a_folder_keeps_memory_flat(tmp_path, monkeypatch):
    """`zoo data info FOLDER` with its decode cache present took 7.4 s on 2,624 photos of
    300x300, nearly all of it the pixel statistics' float64 copies of the whole training split
    (16 bytes a pixel, 2.6 GB); now integer sums over chunks of STATS_CHUNK_PIXELS."""
    import tracemalloc

    from zoo.data import info

    folder = photo_folder(tmp_path / "photos", side=64)  # 110 training images of 64x64
    assert _cli("data", "info", str(folder)).exit_code == 0  # decodes, fills the cache
    monkeypatch.setattr(info, "STATS_CHUNK_PIXELS", 1 << 16)  # smaller than the split
    tracemalloc.start()
    try:
        result = _cli("data", "info", str(folder))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0 and "pixel mean/std per channel" in result.output
    train_pixels = 110 * 64 * 64
    assert peak < 6 * train_pixels  # the float64 copies alone were 16 bytes a pixel


def test_balanced_sampler_reaches_the_streamed_batches(tmp_path, monkeypatch):
    """--balanced-sampler draws a streamed folder's training batches with
    ImageStream.batches(balanced=True) (tests/test_stream.py checks the drawing); data held
    in memory refuse it in one line."""
    from zoo.data.listing import list_image_folder
    from zoo.data.stream import ImageStream
    from zoo.training.train import TrainPlan, training_batches

    folder = photo_folder(tmp_path / "photos")
    refused = _cli("train", "lenet5", "--dataset", str(folder), "--epochs", "1",
                   "--balanced-sampler", "--in-memory", "--out", str(tmp_path / "a"))
    assert refused.exit_code == 1 and "--class-weight balanced" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    asked = []
    monkeypatch.setattr(ImageStream, "batches",
                        lambda self, split, **kwargs: asked.append((split, kwargs)))
    stream = ImageStream(list_image_folder(folder), (16, 16, 1))
    training_batches(TrainPlan(model="lenet5", balanced_sampler=True), stream)
    assert asked[0][0] == "train" and asked[0][1]["balanced"] is True
    assert asked[1][0] == "val" and not asked[1][1].get("balanced")
