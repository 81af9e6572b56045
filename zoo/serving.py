"""Running an export in any format, with that format's own runtime and nothing from the zoo.

This module imports only the standard library and NumPy at the top and never imports ``zoo``,
so ``python -I zoo/serving.py ...`` is how ``zoo export`` checks each format in a fresh process
where the zoo cannot be imported: what it loads there is what a deployment without the zoo
would load. ``zoo predict`` and the benchmarks use the same loaders in-process.

An export version folder (``saved_models/NAME/VERSION/``) holds::

    saved_model.pb, variables/, ...   the SavedModel, at the version root where TF Serving looks
    keras/model.keras                 the Keras model (float input in [0, 1])
    tflite/model.tflite               uint8 images -> probabilities, class_id
    onnx/model.onnx                   uint8 images -> probabilities, class_id
    manifest.json                     what it is, how it was checked, SHA-256 of every file
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

MANIFEST_FILE = "manifest.json"
SIGNATURE = "serving_default"
INPUT_NAME = "images"
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
# Where each format lives inside a version folder.
FORMAT_PATHS = {
    "savedmodel": ".",
    "keras": "keras/model.keras",
    "tflite": "tflite/model.tflite",
    "onnx": "onnx/model.onnx",
}
# The runtime that loads each format, as named in messages and the manifest.
RUNTIMES = {
    "savedmodel": "tensorflow (tf.saved_model.load)",
    "keras": "keras (keras.saving.load_model, safe mode)",
    "tflite": "LiteRT interpreter (ai-edge-litert)",
    "onnx": "onnxruntime",
}
# `zoo predict` without --format prefers the lightest runtime that the export has.
PREFERRED_ORDER = ("onnx", "tflite", "savedmodel", "keras")

Predictor = Callable[[np.ndarray], np.ndarray]


def resolve_version_dir(export_dir: str | Path) -> Path:
    """The version folder of an export: the folder itself, or the highest version inside it."""
    path = Path(export_dir).expanduser()
    if (path / MANIFEST_FILE).is_file():
        return path
    versions = sorted((int(p.name), p) for p in path.glob("*")
                      if p.name.isdigit() and (p / MANIFEST_FILE).is_file()) if path.is_dir() else []
    if not versions:
        raise FileNotFoundError(
            f"{export_dir} is not an export: expected saved_models/NAME/VERSION/ (with "
            f"{MANIFEST_FILE}) or saved_models/NAME/ holding numbered versions; see `zoo models`"
        )
    return versions[-1][1]


def read_manifest(export_dir: str | Path) -> dict[str, Any]:
    """The manifest.json of an export version."""
    return json.loads((resolve_version_dir(export_dir) / MANIFEST_FILE).read_text())


def file_hashes(folder: Path) -> dict[str, str]:
    """{relative path: SHA-256} of every file under ``folder`` except the manifest."""
    hashes = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        if relative == MANIFEST_FILE:
            continue
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        hashes[relative] = digest.hexdigest()
    return hashes


def check_manifest_hashes(version_dir: str | Path) -> list[str]:
    """Files whose SHA-256 no longer matches the manifest (missing or extra files included)."""
    version_dir = resolve_version_dir(version_dir)
    recorded = json.loads((version_dir / MANIFEST_FILE).read_text())["files"]
    actual = file_hashes(version_dir)
    return sorted(p for p in set(recorded) | set(actual) if recorded.get(p) != actual.get(p))


def load_serving_function(export_dir: str | Path):
    """The SavedModel's ``serving_default`` function: ``fn(images=uint8 tf.Tensor) -> dict``.

    ``export_dir`` is a version folder or a model folder (its highest version). The function
    takes a (N, H, W, C) uint8 batch of any N and returns ``{"probabilities": (N, classes)
    float32, "class_id": (N,) int32}``; preprocessing happens inside the graph.
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(str(resolve_version_dir(export_dir)))
    function = loaded.signatures[SIGNATURE]
    # The signature only weakly references the loaded object's variables: keep it alive.
    function._zoo_loaded_object = loaded
    return function


def load_predictor(export_dir: str | Path, fmt: str) -> Predictor:
    """A function from a uint8 (N, H, W, C) batch to float32 (N, classes) probabilities."""
    version_dir = resolve_version_dir(export_dir)
    manifest = json.loads((version_dir / MANIFEST_FILE).read_text())
    if fmt not in manifest.get("formats", {}):
        raise ValueError(
            f"export {version_dir} has no {fmt!r} format; it has "
            f"{', '.join(manifest.get('formats', {})) or 'none'}"
        )
    path = version_dir / FORMAT_PATHS[fmt]
    if fmt == "savedmodel":
        import tensorflow as tf

        function = load_serving_function(version_dir)
        return lambda images: function(**{INPUT_NAME: tf.constant(images)})[PROBABILITIES].numpy()
    if fmt == "keras":
        return _keras_predictor(path, manifest)
    if fmt == "tflite":
        runner = _tflite_interpreter(path).get_signature_runner(SIGNATURE)
        return lambda images: runner(**{INPUT_NAME: images})[PROBABILITIES]
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: session.run([PROBABILITIES], {INPUT_NAME: images})[0]
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMAT_PATHS)}")


def _keras_predictor(path: Path, manifest: dict[str, Any]) -> Predictor:
    import keras

    model = keras.saving.load_model(path, safe_mode=True, compile=False)
    rescale = float(manifest["preprocessing"]["rescale"])
    logits = manifest["formats"]["keras"].get("output") == "logits"

    def predict(images: np.ndarray) -> np.ndarray:
        outputs = np.asarray(model.predict(images.astype(np.float32) * rescale, verbose=0))
        if logits:  # the other formats apply the softmax in-graph
            shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
            outputs = shifted / shifted.sum(axis=-1, keepdims=True)
        return outputs.astype(np.float32)

    return predict


def _tflite_interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:  # older TensorFlow still ships the interpreter
            from tensorflow.lite import Interpreter
        except ImportError:
            raise ImportError(
                "running a TFLite export needs the LiteRT interpreter: "
                "pip install 'cnn-zoo[tflite]' (ai-edge-litert)"
            ) from None
    return Interpreter(model_path=str(path))


def runtime_versions(fmt: str) -> dict[str, str]:
    """Versions of the packages that load ``fmt``, for the manifest."""
    from importlib import metadata

    packages = {"savedmodel": ["tensorflow"], "keras": ["keras", "tensorflow"],
                "tflite": ["ai-edge-litert"], "onnx": ["onnxruntime"]}[fmt]
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _check_in_fresh_process(version_dir: str, fmt: str, batch_file: str, out_file: str) -> None:
    """Run ``fmt`` on a saved batch, whole and as a batch of one; save what came out."""
    # A deployment has no zoo: make any import of it fail rather than silently succeed.
    sys.modules["zoo"] = None
    batch = np.load(batch_file)
    predict = load_predictor(version_dir, fmt)
    whole = np.asarray(predict(batch))
    single = np.asarray(predict(batch[:1]))
    loaded = sorted(name for name in ("tensorflow", "keras", "ai_edge_litert", "onnxruntime")
                    if name in sys.modules)
    np.savez(out_file, whole=whole, single=single,
             info=json.dumps({"runtime": RUNTIMES[fmt], "versions": runtime_versions(fmt),
                              "modules_loaded": loaded}))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: python -I serving.py VERSION_DIR FORMAT BATCH.npy OUT.npz")
    _check_in_fresh_process(*sys.argv[1:])
