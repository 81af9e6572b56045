"""Exports: every format reloads in a fresh process and agrees with Keras; layout and safety.

The expensive part (writing every format and reloading each in its own process) runs once,
in the module fixture ``exported``; the other tests read that export or use the cheapest
available format.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("tensorflow")

from zoo.cli import main  # noqa: E402
from zoo.deploy import export as export_module  # noqa: E402
from zoo.deploy.export import (  # noqa: E402
    FORMATS,
    ExportError,
    check_export_name,
    check_format_packages,
    choose_version,
    export_model,
    load_export_source,
    parse_formats,
    publish_version,
)
from zoo.deploy.predict import list_exports  # noqa: E402
from zoo.deploy.serving import (  # noqa: E402
    check_manifest_hashes,
    compare_outputs,
    load_serving_function,
    read_manifest,
)


def _installed(fmt: str) -> bool:
    try:
        check_format_packages([fmt])
    except ImportError:
        return False
    return True


AVAILABLE = [fmt for fmt in FORMATS if _installed(fmt)]
# onnxruntime starts in a second; a Keras reload imports TensorFlow.
CHEAP_FORMAT = "onnx" if "onnx" in AVAILABLE else "keras"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    """The tiny run exported once in every installed format."""
    out = tmp_path_factory.mktemp("exports")
    return export_model(tiny_run, formats=AVAILABLE, out=out)


@pytest.fixture(scope="module")
def keras_model(tiny_run):
    from zoo.core.runs import load_run_model

    return load_run_model(tiny_run)


def digit_images(count: int) -> np.ndarray:
    from zoo.data.load import load_digits

    return load_digits().x_test[:count]  # 28x28x1 uint8, as a user's PNGs would be


def test_every_available_format_reloads_in_a_fresh_process_and_agrees(exported):
    manifest = exported.manifest
    assert list(manifest["formats"]) == AVAILABLE
    assert exported.path.name == "1" and exported.path.parent.name == "lenet5"
    for fmt, entry in manifest["formats"].items():
        assert 0.0 <= entry["max_abs_diff"] <= entry["tolerance"] == 1e-4, fmt
        assert entry["batch_sizes"] == [7, 1]
        assert (exported.path / entry["path"]).exists()
    if "savedmodel" in AVAILABLE:  # at the version root, where TF Serving looks for it
        assert (exported.path / "saved_model.pb").is_file()
    # Nothing temporary is left beside the version.
    assert [p.name for p in exported.path.parent.iterdir()] == ["1"]


def test_serving_signature_takes_uint8_batches_of_1_and_7(exported, keras_model):
    import tensorflow as tf

    serve = load_serving_function(exported.path.parent)  # the model folder: its latest version
    (spec,) = serve.structured_input_signature[1].values()
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, 32, 32, 1]
    images = np.random.default_rng(1).integers(0, 256, (7, 32, 32, 1), dtype=np.uint8)
    expected = keras_model.predict(images.astype(np.float32) / 255.0, verbose=0)
    for n in (1, 7):
        out = serve(images=tf.constant(images[:n]))
        np.testing.assert_allclose(out["probabilities"].numpy(), expected[:n], atol=1e-5)
        assert out["class_id"].numpy().tolist() == expected[:n].argmax(-1).tolist()


def test_manifest_describes_the_export_and_its_hashes_match(exported, tiny_run, tmp_path):
    manifest = read_manifest(exported.path)
    config = json.loads((tiny_run / "config.json").read_text())
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert manifest["model"]["name"] == "lenet5" and manifest["model"]["trained"]
    assert manifest["model"]["hyperparameters"]["filters"] == [4, 8]
    assert manifest["model"]["hyperparameters"]["activation"] == "tanh"  # builder default
    assert manifest["input"] == {"name": "images", "shape": [None, 32, 32, 1], "dtype": "uint8",
                                 "value_range": [0, 255], "layout": "NHWC"}
    assert manifest["class_names"] == config["class_names"]
    assert manifest["preprocessing"]["rescale"] == pytest.approx(1 / 255)
    assert manifest["training"]["dataset"] == "digits"
    assert manifest["training"]["test_metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert {"keras", "tensorflow", "python"} <= set(manifest["versions"])
    assert check_manifest_hashes(exported.path) == []
    assert len(manifest["files"]) >= len(AVAILABLE)

    copy = tmp_path / "copy"
    shutil.copytree(exported.path, copy)
    tampered = next(p for p in sorted(copy.rglob("*")) if p.is_file() and p.stat().st_size
                    and p.name != "manifest.json")
    tampered.write_bytes(b"x" + tampered.read_bytes()[1:])
    assert check_manifest_hashes(copy) == [tampered.relative_to(copy).as_posix()]


@pytest.mark.parametrize("fmt", AVAILABLE)
def test_predict_on_png_files_gives_the_keras_classes(exported, keras_model, tmp_path, fmt):
    from PIL import Image

    from zoo.data.dataset import fit_images

    images = digit_images(5)
    paths = []
    for i, image in enumerate(images):
        paths.append(tmp_path / f"digit{i}.png")
        Image.fromarray(image[..., 0]).save(paths[-1])
    fitted = fit_images(images, (32, 32, 1))  # how training fitted 28x28 digits to LeNet
    expected = keras_model.predict(fitted.astype(np.float32) / 255.0, verbose=0)

    result = run("predict", exported.path.parent, *paths, "--format", fmt, "--top-k", 2,
                 "--json")
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.output)["predictions"]
    assert [p["top"][0]["class_id"] for p in predictions] == expected.argmax(-1).tolist()
    for p, probs in zip(predictions, expected):
        assert len(p["top"]) == 2
        assert p["top"][0]["probability"] == pytest.approx(probs.max(), abs=1e-4)
    text = run("predict", exported.path, paths[0], "--format", fmt).output
    assert f"digit0.png: {expected[0].argmax()} " in text


def test_models_lists_exports_with_versions_formats_and_metrics(exported, tmp_path):
    rows = json.loads(run("models", "--root", exported.path.parents[1], "--json").output)
    assert [(r["name"], r["versions"], r["formats"]) for r in rows] == [
        ("lenet5", [1], AVAILABLE)]
    assert rows[0]["test_metrics"]["test_accuracy"] > 0
    assert "lenet5" in run("models", "--root", exported.path.parents[1]).output
    assert "no exports" in run("models", "--root", tmp_path).output


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_failed_or_interrupted_exports_leave_no_version_and_versions_are_never_merged(
        tmp_path, monkeypatch):
    import keras

    import zoo

    # Dropout active in an export would make it disagree with Keras' inference outputs.
    model = zoo.build("lenet5", filters=(4, 8), dense_units=(16, 16), dropout=0.5,
                      normalization="batch")
    model.save(tmp_path / "dropout.keras")
    out = tmp_path / "exports"
    model_dir = out / "dropout"

    # A format that does not load fails verification: nothing is published.
    real_write = export_module.write_format

    def write_truncated(fmt, source, serving_model, version_dir):
        real_write(fmt, source, serving_model, version_dir)
        target = version_dir / export_module.FORMAT_PATHS[fmt]
        target.write_bytes(target.read_bytes()[:100])

    monkeypatch.setattr(export_module, "write_format", write_truncated)
    with pytest.raises(ExportError, match="does not load"):
        export_model(tmp_path / "dropout.keras", formats=[CHEAP_FORMAT], out=out)
    # Not even the model's folder: the export lock removes the empty folders it created.
    assert not model_dir.exists()
    monkeypatch.setattr(export_module, "write_format", real_write)

    # Killed between writing (verified) and the rename: no version, temporary folder removed.
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export_module, "publish_version", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_model(tmp_path / "dropout.keras", formats=[CHEAP_FORMAT], out=out)
    assert not model_dir.exists()
    monkeypatch.setattr(export_module, "publish_version", publish_version)

    # What a SIGKILLed export leaves: a hidden folder that is no version and is cleaned up.
    abandoned = model_dir / f".partial-{_dead_pid()}-1-deadbeef"
    abandoned.mkdir(parents=True)
    (abandoned / "manifest.json").write_text("{}")
    assert list_exports(out) == []
    first = export_model(tmp_path / "dropout.keras", formats=[CHEAP_FORMAT], out=out)
    assert first.version == 1 and not abandoned.exists()
    assert first.manifest["formats"][CHEAP_FORMAT]["max_abs_diff"] <= 1e-4
    assert "bare .keras file" in first.manifest["training"]["note"]

    with pytest.raises(FileExistsError, match="--force"):
        export_model(tmp_path / "dropout.keras", formats=[CHEAP_FORMAT], out=out, version=1)
    (first.path / "stale.txt").write_text("from the replaced version")
    replaced = export_model(tmp_path / "dropout.keras", formats=[CHEAP_FORMAT], out=out,
                            version=1, force=True)
    assert replaced.path == first.path and not (first.path / "stale.txt").exists()
    assert check_manifest_hashes(first.path) == []
    assert sorted(p.name for p in model_dir.iterdir()) == ["1"]
    assert keras.saving.load_model(tmp_path / "dropout.keras") is not None  # source untouched


def test_version_numbers_and_publishing(tmp_path):
    model_dir = tmp_path / "m"
    assert choose_version(model_dir, None, False) == 1
    for v in ("1", "3", ".partial-1-4-ab", "notes"):
        (model_dir / v).mkdir(parents=True)
    assert choose_version(model_dir, None, False) == 4
    assert choose_version(model_dir, 2, False) == 2
    assert choose_version(model_dir, 3, True) == 3
    with pytest.raises(FileExistsError, match="never overwritten"):
        choose_version(model_dir, 3, False)
    with pytest.raises(ValueError, match="positive"):
        choose_version(model_dir, 0, False)

    new = model_dir / ".partial-new"
    new.mkdir()
    (new / "manifest.json").write_text("new")
    (model_dir / "3" / "manifest.json").write_text("old")
    with pytest.raises(OSError):  # never merged into an existing version
        publish_version(new, model_dir / "3", replace=False)
    publish_version(new, model_dir / "3", replace=True)
    assert (model_dir / "3" / "manifest.json").read_text() == "new" and not new.exists()
    assert sorted(p.name for p in model_dir.iterdir()) == [".partial-1-4-ab", "1", "3", "notes"]


@pytest.mark.parametrize("name", ["runs", "tuning", "compare"])
def test_folders_of_other_tools_are_refused_as_export_names(name):
    with pytest.raises(ValueError, match="reserved"):
        check_export_name(name)


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", ".hidden", "x" * 65,
                                  "a\\b", "two words", "a..b", "/abs"])
def test_bad_names_are_refused(name):
    with pytest.raises(ValueError, match="invalid export name"):
        check_export_name(name)


def test_a_bad_name_is_refused_before_anything_is_written(tiny_run, tmp_path):
    result = run("export", tiny_run, "--name", "../../outside")
    assert result.exit_code == 1 and "invalid export name" in result.output
    assert list(tmp_path.iterdir()) == []  # the test runs in tmp_path: no saved_models/


def test_formats_and_missing_extras_are_reported(monkeypatch):
    assert parse_formats("onnx, savedmodel") == ["savedmodel", "onnx"]
    assert parse_formats("all") == list(FORMATS)
    with pytest.raises(ValueError, match="unknown export format"):
        parse_formats("savedmodel,pdf")
    real_find_spec = export_module.importlib.util.find_spec
    monkeypatch.setattr(export_module.importlib.util, "find_spec",
                        lambda name: None if name in ("tf2onnx", "ai_edge_litert")
                        else real_find_spec(name))
    with pytest.raises(ImportError, match=r"pip install 'cnn-zoo\[onnx\]'"):
        check_format_packages(["savedmodel", "onnx"])
    with pytest.raises(ImportError, match=r"pip install 'cnn-zoo\[tflite\]'"):
        check_format_packages(["tflite"])
    import keras

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(RuntimeError, match="KERAS_BACKEND=tensorflow"):
        check_format_packages(["savedmodel"])


def test_verification_fails_above_the_tolerance_or_on_a_wrong_class_id():
    expected = np.tile(np.array([[0.2, 0.5, 0.3]], np.float32), (7, 1))
    ids = np.ones(8, np.int64)  # the whole batch, then the batch of one
    reloaded = {"whole": expected + 1e-3, "single": expected[:1], "class_id": ids,
                "runtime": "r", "versions": {}}
    with pytest.raises(ExportError, match="above the tolerance"):
        compare_outputs("onnx", reloaded, expected, 1e-4)
    reloaded["whole"] = expected.copy()
    reloaded["whole"][2, 0] = np.nan
    with pytest.raises(ExportError):
        compare_outputs("onnx", reloaded, expected, 1e-4)
    reloaded["whole"] = expected
    assert compare_outputs("onnx", reloaded, expected, 1e-4)["max_abs_diff"] == 0.0
    reloaded["class_id"] = np.where(np.arange(8) == 3, 2, 1)
    with pytest.raises(ExportError, match="class_id disagrees"):
        compare_outputs("onnx", reloaded, expected, 1e-4)


def test_lambda_layers_are_refused_unless_unsafe(tmp_path):
    import keras

    from zoo.core.runs import UnsafeModelError

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(x))
    keras.Model(inputs, outputs).save(tmp_path / "lambda.keras")
    with pytest.raises(UnsafeModelError, match="--unsafe"):
        export_model(tmp_path / "lambda.keras", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert load_export_source(tmp_path / "lambda.keras", unsafe=True).model is not None


def test_a_registered_name_exports_as_untrained():
    source = load_export_source("lenet5")
    assert not source.trained and source.origin == "registry:lenet5"
    assert source.class_names == [str(i) for i in range(10)]


def test_predict_reads_every_image_mode_as_its_8_bit_copy(exported, tmp_path):
    from image_modes import IMAGE_MODES, mode_copies

    picture = digit_images(1)[0, ..., 0]
    paths = mode_copies(picture, tmp_path)
    result = run("predict", exported.path, *paths.values(), "--format", CHEAP_FORMAT, "--json")
    assert result.exit_code == 0, result.output
    tops = {mode: p["top"][0] for mode, p in zip(IMAGE_MODES,
                                                  json.loads(result.output)["predictions"])}
    for mode, top in tops.items():
        assert top["class_id"] == tops["L"]["class_id"], mode
        assert top["probability"] == pytest.approx(tops["L"]["probability"], abs=1e-5), mode
