"""Running an export in any format, with that format's own runtime and nothing from the zoo.

This module imports only the standard library and NumPy at the top and never imports ``zoo``,
so ``python -I zoo/deploy/serving.py ...`` is how ``zoo export`` checks each format in a fresh
process
where the zoo cannot be imported: what it loads there is what a deployment without the zoo
would load. The parent side of that check (``verify_formats``: a fixed uint8 batch, one
process per format, max |difference| with Keras) lives here too. ``zoo predict`` and the
benchmarks use the same loaders in-process.

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
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
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

VERIFY_BATCH = 7
VERIFY_SEED = 20240229
VERIFY_TIMEOUT_S = 300

OUTPUTS = (PROBABILITIES, CLASS_ID)

Predictor = Callable[[np.ndarray], np.ndarray]
Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


class ExportError(RuntimeError):
    """An export could not be written or did not survive verification."""


def resolve_version_dir(export_dir: str | Path) -> Path:
    """The version folder of an export: the folder itself, or the highest version inside it."""
    path = Path(export_dir).expanduser()
    if (path / MANIFEST_FILE).is_file():
        return path
    versions = sorted((int(p.name), p) for p in path.glob("*")
                      if p.name.isdigit() and (p / MANIFEST_FILE).is_file()
                      ) if path.is_dir() else []
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


def load_runner(export_dir: str | Path, fmt: str, *, unsafe: bool = False) -> Runner:
    """A function from a uint8 (N, H, W, C) batch to {"probabilities": (N, classes) float32,
    "class_id": (N,) int}, running ``fmt`` with its own runtime.

    ``unsafe`` loads a keras-format export with Lambda layers (their code runs on load).
    """
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
        return lambda images: {key: value.numpy() for key, value in
                               function(**{INPUT_NAME: tf.constant(images)}).items()}
    if fmt == "keras":
        return _keras_runner(path, manifest, unsafe)
    if fmt == "tflite":
        runner = _tflite_interpreter(path).get_signature_runner(SIGNATURE)
        return lambda images: dict(runner(**{INPUT_NAME: images}))
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda images: dict(zip(OUTPUTS, session.run(list(OUTPUTS),
                                                            {INPUT_NAME: images})))
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMAT_PATHS)}")


def load_predictor(export_dir: str | Path, fmt: str) -> Predictor:
    """A function from a uint8 (N, H, W, C) batch to float32 (N, classes) probabilities."""
    run = load_runner(export_dir, fmt)
    return lambda images: run(images)[PROBABILITIES]


def _keras_runner(path: Path, manifest: dict[str, Any], unsafe: bool = False) -> Runner:
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=not unsafe, compile=False)
    except ValueError as err:
        if unsafe or "lambda" not in str(err).lower():
            raise
        raise ValueError(f"{path} contains a Lambda layer, whose code would run on load; use "
                         f"another format of this export (savedmodel, tflite, onnx)") from None
    rescale = float(manifest["preprocessing"]["rescale"])
    logits = manifest["formats"]["keras"].get("output") == "logits"

    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = np.asarray(model.predict(images.astype(np.float32) * rescale, verbose=0))
        # The other formats apply the softmax and the arg-max in-graph.
        probabilities = softmax(outputs) if logits else outputs.astype(np.float32)
        return {PROBABILITIES: probabilities, CLASS_ID: probabilities.argmax(-1)}

    return run


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits along the last axis, in float32."""
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


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


def verification_batch(input_shape: tuple[int, int, int]) -> np.ndarray:
    """A fixed uint8 batch: random pixels plus an all-black and an all-white image."""
    batch = np.random.default_rng(VERIFY_SEED).integers(0, 256, (VERIFY_BATCH, *input_shape),
                                                        dtype=np.uint8)
    batch[0], batch[1] = 0, 255
    return batch


def reload_in_fresh_process(version_dir: Path, fmt: str, batch_file: Path,
                            workdir: Path, unsafe: bool = False) -> dict[str, Any]:
    """Load ``fmt`` with its runtime in a new isolated interpreter; its outputs on the batch.

    ``-I`` drops PYTHONPATH, user site-packages and the script's folder from the path, the
    working directory is a scratch folder, and this module blocks ``import zoo`` there.
    """
    out_file = workdir / f"{fmt}.npz"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    command = [sys.executable, "-I", __file__, str(version_dir.resolve()), fmt,
               str(batch_file), str(out_file), "unsafe" if unsafe else "safe"]
    try:
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=VERIFY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{fmt}: reloading took over {VERIFY_TIMEOUT_S} s") from None
    if done.returncode != 0 or not out_file.exists():
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise ExportError(f"{fmt}: the export does not load or run in a fresh process "
                          f"({RUNTIMES[fmt]}):\n{tail}")
    with np.load(out_file) as result:
        return {"whole": result["whole"], "single": result["single"],
                "class_id": np.concatenate([result["whole_class_id"],
                                            result["single_class_id"]]),
                **json.loads(str(result["info"]))}


def compare_outputs(fmt: str, reloaded: dict[str, Any], expected: np.ndarray,
                    tolerance: float) -> dict[str, Any]:
    """Max |difference| with Keras over the whole batch and a batch of one; raise if too big."""
    whole, single = reloaded["whole"], reloaded["single"]
    if whole.shape != expected.shape or single.shape != expected[:1].shape:
        raise ExportError(f"{fmt}: output shapes {whole.shape} / {single.shape} differ from "
                          f"Keras' {expected.shape} / {expected[:1].shape}")
    diff = float(max(np.abs(whole - expected).max(), np.abs(single - expected[:1]).max()))
    if not diff <= tolerance:  # also catches NaN
        raise ExportError(f"{fmt}: outputs differ from the Keras model by up to {diff:.3g}, "
                          f"above the tolerance {tolerance:g}; the export was not published")
    # Where the top two classes are closer than the tolerance either may legitimately win.
    top_two = np.sort(expected, axis=-1)[:, -2:]
    clear = np.concatenate([top_two[:, 1] - top_two[:, 0], top_two[:1, 1] - top_two[:1, 0]])
    expected_ids = np.concatenate([expected.argmax(-1), expected[:1].argmax(-1)])
    wrong = (reloaded["class_id"] != expected_ids) & (clear > 2 * tolerance)
    if wrong.any():
        raise ExportError(f"{fmt}: class_id disagrees with the Keras model's top class on "
                          f"{int(wrong.sum())} image(s); the export was not published")
    return {"max_abs_diff": diff, "tolerance": tolerance, "runtime": reloaded["runtime"],
            "runtime_versions": reloaded["versions"], "batch_sizes": [len(expected), 1]}


def verify_formats(version_dir: Path, formats: list[str], batch: np.ndarray,
                   expected: np.ndarray, tolerance: float, *, unsafe: bool = False
                   ) -> dict[str, dict[str, Any]]:
    """Reload every format in its own fresh process (in parallel) and compare with Keras.

    ``unsafe`` lets the keras format load Lambda layers (exports made with --unsafe).
    """
    with tempfile.TemporaryDirectory(prefix="zoo-verify-") as scratch:
        workdir = Path(scratch)
        np.save(workdir / "batch.npy", batch)
        with ThreadPoolExecutor(max_workers=len(formats)) as pool:
            futures = {fmt: pool.submit(reload_in_fresh_process, version_dir, fmt,
                                        workdir / "batch.npy", workdir, unsafe)
                       for fmt in formats}
            reloaded = {fmt: future.result() for fmt, future in futures.items()}
    return {fmt: compare_outputs(fmt, reloaded[fmt], expected, tolerance) for fmt in formats}


def _check_in_fresh_process(version_dir: str, fmt: str, batch_file: str, out_file: str,
                            mode: str = "safe") -> None:
    """Run ``fmt`` on a saved batch, whole and as a batch of one; save what came out."""
    # A deployment has no zoo: make any import of it fail rather than silently succeed.
    sys.modules["zoo"] = None
    batch = np.load(batch_file)
    run = load_runner(version_dir, fmt, unsafe=mode == "unsafe")
    whole, single = run(batch), run(batch[:1])
    loaded = sorted(name for name in ("tensorflow", "keras", "ai_edge_litert", "onnxruntime")
                    if name in sys.modules)
    np.savez(out_file, whole=whole[PROBABILITIES], single=single[PROBABILITIES],
             whole_class_id=whole[CLASS_ID], single_class_id=single[CLASS_ID],
             info=json.dumps({"runtime": RUNTIMES[fmt], "versions": runtime_versions(fmt),
                              "modules_loaded": loaded}))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit("usage: python -I serving.py VERSION_DIR FORMAT BATCH.npy OUT.npz safe|unsafe")
    _check_in_fresh_process(*sys.argv[1:])
