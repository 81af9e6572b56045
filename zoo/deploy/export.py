"""Export a trained model as SavedModel, .keras, TFLite and ONNX, each verified by reloading.

An export is a numbered version folder, ``saved_models/NAME/VERSION/``, the layout TensorFlow
Serving watches (it serves the highest number). The SavedModel sits at the version root, where
TF Serving looks for it; the other formats get one sub-folder each (see ``zoo.deploy.serving``).

Every format is built from one *serving model*: raw uint8 images in, the model's preprocessing
(cast, rescale) in the graph, class probabilities and the top class id out. Before a version
appears, each format is loaded in a fresh Python process by its own runtime, with the zoo
unimportable, and compared with the Keras model on a fixed batch; the folder is written under
a hidden temporary name and renamed into place only when every check passed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import re
import secrets
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.core.locks import folder_lock
from zoo.core.registry import build, get_model_info, list_models
from zoo.core.runs import (
    PREPROCESSING,
    RUNS_DIR,
    SAVED_MODELS,
    check_writable,
    describe_progress,
    load_run_config,
    load_run_metrics,
    load_run_model,
    unfinished_run,
    write_json_atomic,
)
from zoo.deploy import serving
from zoo.deploy.serving import (
    CLASS_ID,
    FORMAT_PATHS,
    INPUT_NAME,
    MANIFEST_FILE,
    PROBABILITIES,
    SIGNATURE,
    ExportError,
    verification_batch,
    verify_formats,
)

if TYPE_CHECKING:
    import keras

FORMATS = tuple(FORMAT_PATHS)
DEFAULT_FORMATS = ("savedmodel", "keras")
# Packages each optional format needs to be written and read back, and the extra providing them.
FORMAT_EXTRAS = {
    "tflite": ("tflite", ("tensorflow", "ai_edge_litert")),
    "onnx": ("onnx", ("tensorflow", "tf2onnx", "onnxruntime")),
}
# Probabilities are in [0, 1]; float32 kernels of different runtimes agree to ~1e-6.
DEFAULT_TOLERANCE = 1e-4
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
PARTIAL_PREFIX = ".partial-"
# Folders of saved_models/ that hold other things (training runs, tuning searches, compare
# tables): an export by that name would be mixed into them.
RESERVED_NAMES = (RUNS_DIR.name, "tuning", "compare")
MANIFEST_VERSION = 1


@dataclass
class ExportSource:
    """A model to export and what is known about it."""

    model: "keras.Model"
    model_name: str
    hyperparameters: dict[str, Any]
    class_names: list[str]
    preprocessing: dict[str, Any]
    origin: str
    trained: bool
    training: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportResult:
    """A published export version and how each format compared with Keras."""

    path: Path
    name: str
    version: int
    manifest: dict[str, Any]

    @property
    def max_abs_diffs(self) -> dict[str, float]:
        """{format: largest |probability difference| with the Keras model}."""
        return {fmt: entry["max_abs_diff"] for fmt, entry in self.manifest["formats"].items()}


# --- validation: everything here runs before any work starts -------------------------------

def parse_formats(spec: str | list[str] | tuple[str, ...]) -> list[str]:
    """'savedmodel,onnx' or 'all' -> a checked list of formats, in canonical order."""
    names = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [n.strip().lower() for n in names if n.strip()]
    if names == ["all"]:
        return list(FORMATS)
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ValueError(f"unknown export format(s) {', '.join(unknown) or '(none)'}; "
                         f"choose from {', '.join(FORMATS)} or 'all'")
    return [f for f in FORMATS if f in names]


def check_format_packages(formats: list[str]) -> None:
    """Refuse formats whose converter or runtime is not installed, naming the extra."""
    if importlib.util.find_spec("tensorflow") is None:
        raise ImportError("exporting needs TensorFlow (every format is converted from a TF "
                          "graph): pip install tensorflow, or export on a machine that has it")
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"exporting traces the model as a TensorFlow graph, but KERAS_BACKEND={backend}; "
            f"rerun with KERAS_BACKEND=tensorflow (runs and .keras files trained under any "
            f"backend export the same)"
        )
    for fmt in formats:
        if fmt not in FORMAT_EXTRAS:
            continue
        extra, packages = FORMAT_EXTRAS[fmt]
        missing = [p for p in packages if importlib.util.find_spec(p) is None]
        if missing:
            raise ImportError(
                f"the {fmt} format needs {', '.join(missing)}: pip install 'cnn-zoo[{extra}]' "
                f"(or drop {fmt} from --format)"
            )


def check_export_name(name: str) -> str:
    """A name that is one plain folder under saved_models/ ('lenet5-digits'), else ValueError."""
    if isinstance(name, str) and name in RESERVED_NAMES:
        raise ValueError(
            f"export name {name!r} is reserved: saved_models/{name}/ holds "
            f"{'training runs' if name == RUNS_DIR.name else name + ' results'}; pass another "
            f"--name"
        )
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid export name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting "
            f"with a letter or digit, no path separators or '..'"
        )
    return name


def existing_versions(model_dir: Path) -> list[int]:
    """The published version numbers under a model folder, ascending."""
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.name.isdigit() and p.is_dir())


def choose_version(model_dir: Path, version: int | None, force: bool) -> int:
    """The version to write: ``version`` if free (or ``force``), else the next free number."""
    taken = existing_versions(model_dir)
    if version is None:
        return (taken[-1] + 1) if taken else 1
    if not isinstance(version, int) or version < 1:
        raise ValueError(f"--version must be a positive integer, got {version!r}")
    if version in taken and not force:
        raise FileExistsError(
            f"{model_dir / str(version)} already exists and versions are never overwritten; "
            f"leave out --version to take {taken[-1] + 1}, or pass --force to replace it"
        )
    return version


# --- sources -------------------------------------------------------------------------------

def check_finished(spec: str | Path, allow_unfinished: bool) -> dict[str, Any] | None:
    """Refuse a run that has not finished (no test scores yet) unless ``allow_unfinished``.

    Returns the unfinished run's progress (``zoo.core.runs.unfinished_run``) or None.
    """
    progress = unfinished_run(spec) if Path(spec).expanduser().exists() else None
    if progress is not None and not allow_unfinished:
        raise ExportError(
            f"run {progress['run']} is unfinished ({describe_progress(progress)}, no test "
            f"metrics); run its `zoo train` command again to finish it, or pass "
            f"--allow-unfinished to export its best checkpoint so far")
    return progress


def load_export_source(spec: str | Path, *, unsafe: bool = False,
                       allow_unfinished: bool = False) -> ExportSource:
    """A run directory, a ``.keras`` file, or a registered model name (untrained weights).

    An unfinished run is refused unless ``allow_unfinished``; then its manifest's training
    section says so ('finished': false, epochs done, best validation loss).
    """

    path = Path(spec).expanduser()
    progress = check_finished(spec, allow_unfinished)
    if path.exists():
        config = load_run_config(path)
        model = load_run_model(path, unsafe=unsafe)
        metrics = load_run_metrics(path)
        outputs = int(model.output_shape[-1])
        training = {key: config[key] for key in ("dataset", "dataset_name", "data_dir",
                                                 "train_size", "epochs", "batch_size",
                                                 "learning_rate", "optimizer", "seed",
                                                 "train_fraction", "recipes", "backend",
                                                 "keras_version", "weights") if key in config}
        if progress is not None:
            training.update(finished=False, epochs_done=progress["epochs_done"],
                            best_val_loss=progress["best_val_loss"],
                            best_epoch=progress["best_epoch"],
                            note="exported unfinished with --allow-unfinished: the best "
                                 "checkpoint so far, never tested")
        elif metrics:
            training["finished"] = True
        model_name = config.get("model") or _default_name(path)
        # The builder's defaults fill in what the run left at its default.
        defaults = (get_model_info(model_name).hyperparameters
                    if model_name in list_models() else {})
        return ExportSource(
            model=model, model_name=model_name,
            hyperparameters={**defaults, **config.get("hparams", {})},
            class_names=config.get("class_names") or [str(i) for i in range(outputs)],
            preprocessing=config.get("preprocessing", PREPROCESSING),
            origin=str(path.resolve()), trained=True,
            training={**training, "test_metrics": {k: v for k, v in metrics.items()
                                                   if k.startswith("test_")},
                      "run_metrics": metrics} if (config or metrics) else {
                "note": "a bare .keras file: no run config.json/metrics.json beside it, so "
                        "the training data set and test metrics are unknown"},
        )
    if str(spec) in list_models():
        info = get_model_info(str(spec))
        hparams = {**info.hyperparameters, "input_shape": info.input_shape,
                   "num_classes": info.num_classes}
        return ExportSource(
            model=build(str(spec), **hparams), model_name=str(spec), hyperparameters=hparams,
            class_names=[str(i) for i in range(info.num_classes)],
            preprocessing=PREPROCESSING, origin=f"registry:{spec}", trained=False,
        )
    raise FileNotFoundError(
        f"{spec} is neither a run directory, a .keras file, nor a registered model name "
        f"(see `zoo list`)"
    )


def _default_name(path: Path) -> str:
    return path.stem if path.suffix == ".keras" else path.name


def default_export_name(spec: str | Path) -> str:
    """The export's name unless --name: the run's model, the file's stem or the registry name.

    Read without loading the model, so a taken version is refused before any work.
    """

    path = Path(spec).expanduser()
    if path.exists():
        return load_run_config(path).get("model") or _default_name(path)
    if str(spec) in list_models():
        return str(spec)
    raise FileNotFoundError(
        f"{spec} is neither a run directory, a .keras file, nor a registered model name "
        f"(see `zoo list`)"
    )


def check_source(source: ExportSource) -> tuple[int, int, int]:
    """The model's (H, W, C); refuses models an image-classifier export cannot describe."""
    shape = source.model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(f"{source.origin}: export needs one image input of known (H, W, C), "
                         f"the model takes {shape}")
    classes = source.model.output_shape
    if isinstance(classes, list) or len(classes) != 2:
        raise ValueError(f"{source.origin}: export needs one (batch, classes) output, the model "
                         f"gives {classes}")
    if len(source.class_names) != classes[-1]:
        raise ValueError(f"{source.origin}: {len(source.class_names)} class names for "
                         f"{classes[-1]} outputs; the run's config.json is inconsistent")
    return tuple(int(d) for d in shape[1:])


def has_lambda_layers(model: "keras.Model") -> bool:
    """Whether the model (or a model nested in it) has a Lambda layer, whose code runs on load."""
    import keras

    return any(isinstance(layer, keras.layers.Lambda)
               or (hasattr(layer, "layers") and has_lambda_layers(layer))
               for layer in model.layers)


def outputs_probabilities(model: "keras.Model") -> bool:
    """Whether the model's last layer already applies a softmax."""
    activation = model.layers[-1].get_config().get("activation")
    return activation == "softmax" or type(model.layers[-1]).__name__ == "Softmax"


def build_serving_model(source: ExportSource) -> "keras.Model":
    """uint8 images -> preprocessing -> model (inference mode) -> probabilities, class_id."""
    import keras

    images = keras.Input(shape=check_source(source), dtype="uint8", name=INPUT_NAME)
    scaled = keras.layers.Rescaling(float(source.preprocessing["rescale"]),
                                    name="preprocess")(images)
    outputs = source.model(scaled, training=False)
    if not outputs_probabilities(source.model):
        outputs = keras.layers.Softmax(name="probabilities_softmax")(outputs)
    # top_k rather than argmax: Keras' TF argmax uses bit tricks that tf2onnx cannot convert.
    class_id = keras.ops.squeeze(keras.ops.top_k(outputs, k=1)[1], axis=-1)
    return keras.Model(images, {PROBABILITIES: outputs, CLASS_ID: class_id},
                       name=f"{source.model.name}_serving")


def reference_probabilities(source: ExportSource, batch: np.ndarray) -> np.ndarray:
    """What every format must reproduce: the Keras model on the batch, preprocessed as in
    training (independent of the serving model, so a wrong in-graph step is caught)."""
    scaled = (batch * float(source.preprocessing["rescale"])).astype(np.float32)
    outputs = np.asarray(source.model.predict(scaled, verbose=0))
    return outputs if outputs_probabilities(source.model) else serving.softmax(outputs)


# --- writing each format --------------------------------------------------------------------

def write_savedmodel(serving_model: "keras.Model", folder: Path) -> None:
    """The SavedModel with a ``serving_default`` signature over uint8 batches of any size."""
    import keras

    def serve(images):
        return serving_model(images, training=False)

    archive = keras.export.ExportArchive()
    archive.track(serving_model)
    archive.add_endpoint(SIGNATURE, serve, input_signature=serving_signature(serving_model))
    archive.write_out(str(folder), verbose=False)


def serving_signature(serving_model: "keras.Model") -> list:
    """The one input every graph format takes: uint8 images, any batch size."""
    import keras

    return [keras.InputSpec(shape=(None, *serving_model.input_shape[1:]), dtype="uint8",
                            name=INPUT_NAME)]



def write_tflite(serving_model: "keras.Model", version_dir: Path, target: Path) -> None:
    """TFLite converted from the SavedModel's signature (written first if not exported).

    Only TFLite built-in ops are allowed, so the file runs on any LiteRT interpreter
    without the TensorFlow (Flex) delegate.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="zoo-tflite-") as scratch:
        saved = version_dir
        if not (version_dir / "saved_model.pb").exists():
            saved = Path(scratch)
            write_savedmodel(serving_model, saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved),
                                                             signature_keys=[SIGNATURE])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            target.write_bytes(converter.convert())
        except Exception as err:  # the converter raises ConverterError and others
            raise ExportError(f"tflite: the model cannot be converted to TFLite built-in ops: "
                              f"{str(err).splitlines()[0]}") from None


def write_format(fmt: str, source: ExportSource, serving_model: "keras.Model",
                 version_dir: Path) -> None:
    """Write one format into a version folder under construction."""
    target = version_dir / FORMAT_PATHS[fmt]
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "savedmodel":
            write_savedmodel(serving_model, version_dir)
        elif fmt == "keras":
            source.model.save(target)
        elif fmt == "tflite":
            write_tflite(serving_model, version_dir, target)
        elif fmt == "onnx":
            logging.getLogger("tf2onnx").setLevel(logging.ERROR)
            serving_model.export(str(target), format="onnx", verbose=False,
                                 input_signature=serving_signature(serving_model))


# --- manifest and publishing ------------------------------------------------------------------

def _package_versions() -> dict[str, str]:
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("keras", "tensorflow", "numpy", "tf2onnx", "onnx", "cnn-zoo"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def build_manifest(source: ExportSource, name: str, version: int, checks: dict[str, Any],
                   version_dir: Path) -> dict[str, Any]:
    """Everything a consumer needs to use the export without the zoo, plus file hashes."""
    import keras

    height, width, channels = check_source(source)
    rescale = float(source.preprocessing["rescale"])
    formats = {fmt: {"path": FORMAT_PATHS[fmt], **checks[fmt]} for fmt in checks}
    if "savedmodel" in formats:
        formats["savedmodel"]["signature"] = SIGNATURE
    if "keras" in formats:
        formats["keras"]["output"] = ("probabilities" if outputs_probabilities(source.model)
                                      else "logits")
        formats["keras"]["input"] = "float32 images already preprocessed (uint8 * rescale)"
    return {
        "manifest_version": MANIFEST_VERSION,
        "name": name,
        "version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"name": source.model_name, "hyperparameters": source.hyperparameters,
                  "trained": source.trained, "source": source.origin,
                  "params": int(source.model.count_params())},
        "input": {"name": INPUT_NAME, "shape": [None, height, width, channels],
                  "dtype": "uint8", "value_range": [0, 255], "layout": "NHWC"},
        "outputs": {PROBABILITIES: {"shape": [None, len(source.class_names)],
                                    "dtype": "float32"},
                    CLASS_ID: {"shape": [None], "dtype": "int32"}},
        "class_names": source.class_names,
        "preprocessing": {**source.preprocessing, "rescale": rescale, "in_graph": (
            f"cast uint8 to float32 and multiply by {rescale:g} (Rescaling layer), in every "
            f"format except keras, which takes the preprocessed floats")},
        "training": source.training if source.trained else {
            "note": "untrained: random initial weights from the registry builder; the "
                    "predictions are meaningless, this export only tests the pipeline"},
        "formats": formats,
        "verification": {"batch": serving.VERIFY_BATCH, "seed": serving.VERIFY_SEED,
                         "reference": f"keras {keras.__version__} ({keras.backend.backend()})",
                         "how": "each format loaded by its runtime in a fresh `python -I` "
                                "process where the zoo cannot be imported"},
        "versions": _package_versions(),
        "files": serving.file_hashes(version_dir),
    }


def publish_version(partial: Path, final: Path, *, replace: bool) -> None:
    """Rename a verified version folder into place (the only moment a version appears)."""
    if replace and final.exists():
        retired = final.with_name(f"{PARTIAL_PREFIX}replaced-{final.name}-{secrets.token_hex(4)}")
        os.rename(final, retired)
        os.rename(partial, final)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        # os.rename onto an existing non-empty folder fails, so a version is never merged into.
        os.rename(partial, final)


def remove_abandoned_partials(model_dir: Path) -> None:
    """Delete temporary folders of exports whose process no longer exists (killed exports)."""
    for path in model_dir.glob(f"{PARTIAL_PREFIX}*"):
        pid = path.name[len(PARTIAL_PREFIX):].split("-")[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- the one entry point -----------------------------------------------------------------------

def export_model(
    source: str | Path,
    *,
    formats: str | list[str] = DEFAULT_FORMATS,
    name: str | None = None,
    version: int | None = None,
    force: bool = False,
    out: str | Path | None = None,
    unsafe: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
    allow_unfinished: bool = False,
) -> ExportResult:
    """Export ``source`` to ``OUT/NAME/VERSION/`` (OUT defaults to saved_models/), verified.

    Nothing is visible under the version until every format has been reloaded and compared.

    Args:
        source: a run directory, a ``.keras`` file or a registered model name (untrained).
        formats: comma-separated or a list: savedmodel, keras, onnx, tflite.
        name: the export's folder name (default: the run's or model's name).
        version: the version number (default: one above the highest present).
        force: replace ``version`` if it exists.
        out: the root folder instead of ``saved_models/``.
        unsafe: allow Lambda layers, whose code runs when the model is loaded.
        tolerance: the largest difference from Keras' outputs a format may show.
        allow_unfinished: export a run that has not finished (its best checkpoint so far,
            recorded in the manifest) instead of refusing it.

    Returns:
        The published version's path, name, number and manifest (with each format's check).
    """
    formats = parse_formats(formats)
    check_format_packages(formats)
    if name is not None:
        check_export_name(name)
    if not tolerance > 0:
        raise ValueError(f"--tolerance must be positive, got {tolerance}")
    root = Path(out).expanduser() if out is not None else SAVED_MODELS
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(f"--out {root} exists and is not a folder")

    check_finished(source, allow_unfinished)  # before anything is loaded or written
    name = check_export_name(name if name is not None else default_export_name(source))
    model_dir = root / name
    chosen = choose_version(model_dir, version, force)
    check_writable(model_dir)  # a read-only --out fails now, not after the model is traced
    # One export per model folder at a time (zoo.core.locks); taken before the model loads.
    with folder_lock(model_dir, what="export folder"):
        return _export_locked(source, formats, name, model_dir, chosen, version, force,
                              unsafe, tolerance, allow_unfinished)


def _export_locked(source: str | Path, formats: list[str], name: str, model_dir: Path,
                   chosen: int, version: int | None, force: bool, unsafe: bool,
                   tolerance: float, allow_unfinished: bool) -> ExportResult:
    """``export_model`` once OUT/NAME is locked: write, verify and publish the version."""
    loaded = load_export_source(source, unsafe=unsafe, allow_unfinished=allow_unfinished)
    serving_model = build_serving_model(loaded)
    batch = verification_batch(check_source(loaded))
    expected = reference_probabilities(loaded, batch)

    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_partials(model_dir)
    partial = model_dir / f"{PARTIAL_PREFIX}{os.getpid()}-{chosen}-{secrets.token_hex(4)}"
    partial.mkdir()
    try:
        for fmt in formats:
            write_format(fmt, loaded, serving_model, partial)
        # The runtimes read the manifest (formats, preprocessing): write it before checking.
        write_json_atomic(partial / MANIFEST_FILE, build_manifest(
            loaded, name, chosen, {fmt: {} for fmt in formats}, partial))
        checks = verify_formats(partial, formats, batch, expected, tolerance, unsafe=unsafe)
        if "keras" in checks:  # whether loading the keras file runs code from it
            checks["keras"]["safe_mode"] = not (unsafe and has_lambda_layers(loaded.model))
        manifest = build_manifest(loaded, name, chosen, checks, partial)
        write_json_atomic(partial / MANIFEST_FILE, manifest)
        while True:
            try:
                # --force only ever replaces the version it names, never one taken meanwhile.
                publish_version(partial, model_dir / str(chosen),
                                replace=force and version is not None)
                break
            except OSError as err:
                if not (model_dir / str(chosen)).exists():
                    raise
                if version is not None:
                    raise FileExistsError(
                        f"{model_dir / str(chosen)} was published by another export while this "
                        f"one ran, and versions are never overwritten; leave out --version to "
                        f"take the next free one ({err.strerror})"
                    ) from None
                # Another export took this number meanwhile: take the next one.
                chosen = choose_version(model_dir, None, False)
                manifest["version"] = chosen
                write_json_atomic(partial / MANIFEST_FILE, manifest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return ExportResult(model_dir / str(chosen), name, chosen, manifest)
