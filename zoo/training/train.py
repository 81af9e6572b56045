"""The one training loop: every command that trains (train, compare, transfer, tune, bench) uses it.

A run is described by a ``TrainPlan``. Recipes (see ``recipes/``) change one concern of the
plan each — hyperparameters, the input pipeline, or compile/fit settings — and ``train`` turns
the plan into a run directory under ``saved_models/runs/``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from zoo.core.locks import folder_lock
from zoo.core.registry import build, get_model_info, normalize_hyperparameters
from zoo.core.runs import (
    CONFIG_FILE,
    CURVES_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREPROCESSING,
    jsonable,
    load_run_metrics,
    new_run_dir,
    read_history,
    write_json_atomic,
)
from zoo.data import inputs
from zoo.data.batches import Sharding, make_batches
from zoo.data.dataset import DataError, Dataset
from zoo.data.input_choice import InputChoice, choose_input
from zoo.data.inputs import split_batches, split_size
from zoo.data.listing import FolderListing
from zoo.data.load import load_dataset
from zoo.data.stream import ImageStream
from zoo.training import resume, sharded_run
from zoo.training.class_report import (
    balanced_class_weights,
    check_class_weight,
    count_lines,
    kept_epoch,
    per_class_metrics,
)
from zoo.training.cost import InputNote, cost_lines
from zoo.training.distribution import (
    Distribution,
    LostProcessError,
    distribution_settings,
    global_sharding,
    scaled_learning_rate,
    start_distribution,
)
from zoo.training.dtype_policy import DtypePolicyError, check_dtype_policy, dtype_policy_scope
from zoo.training.gradient_registry import custom_gradient_names, forget_custom_gradients
from zoo.training.job_folder import earlier_job
from zoo.training.seeding import seed_everything
from zoo.training.settings import JOB_SETTINGS, TrainingSettings, settings_of
from zoo.viz.evaluation import plot_history

if TYPE_CHECKING:
    import keras

# What makes a finished run directory hold the run asked for: a re-run with these settings
# reports it; with others it is refused (a killed run resumes when only its
# resume.IDENTITY_KEYS match, e.g. with more epochs).
RUN_KEYS = ("model", "hparams", "input_shape", *JOB_SETTINGS, "optimizer_options", "recipes")
EARLY_RUN_KEYS = tuple(key for key in RUN_KEYS
                       if key not in ("hparams", "input_shape", "dtype_policy"))


class TrainingError(RuntimeError):
    """Training cannot start or did not finish sensibly (e.g. the loss became NaN)."""


@dataclass(kw_only=True)
class TrainPlan(TrainingSettings):
    """Everything a training run needs; recipes edit it, ``train`` executes it.

    The shared settings (data set, epochs, batch size, learning rate, optimizer, seed, training
    fraction, determinism, dtype policy) are ``zoo.training.settings.TrainingSettings``'.
    """

    model: str = field(kw_only=False)
    hparams: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    # Names (with parameters) of the recipes applied, for the run's config.
    recipes: list[str] = field(default_factory=list)
    # Set by recipes:
    augment: Callable[[Any, Any], tuple[Any, Any]] | None = None  # on training batches
    one_hot_labels: bool = False  # mixup/cutmix produce soft labels
    lr_schedule: Callable[[float, int, int], Any] | None = None  # (lr, steps/epoch, epochs)
    optimizer_options: dict[str, Any] = field(default_factory=dict)
    callbacks: list[Any] = field(default_factory=list)
    # XLA for the train step: None leaves it to Keras (see compile_model), True/False force it.
    jit_compile: bool | None = None
    # Batches per call into the compiled train step. Fewer Python round trips: LeNet-5 at
    # batch 32 trained about 25% faster with 8 than with 1 on 2 CPU cores. Per-batch
    # callbacks then run every 8th batch.
    steps_per_execution: int = 8
    # Epochs already in the run directory (a later phase of one run, e.g. transfer's
    # fine-tuning after its head phase): history is appended with continuous epoch numbers,
    # and the best checkpoint is only replaced by a better one.
    initial_epoch: int = 0
    # A streamed folder: training batches drawn class-balanced (ImageStream.batches(
    # balanced=True)); --class-weight (TrainingSettings) weighs the loss instead.
    balanced_sampler: bool = False

    def config(self) -> dict[str, Any]:
        """The JSON-serializable part of the plan, as written to config.json."""
        return {
            "model": self.model,
            "hparams": jsonable(self.hparams),
            **jsonable(settings_of(self)),
            "optimizer_options": jsonable(self.optimizer_options),
            "steps_per_execution": self.steps_per_execution,
            "recipes": list(self.recipes),
            "balanced_sampler": self.balanced_sampler,
        }


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    model: "keras.Model"
    history: dict[str, list[float]]
    test_metrics: dict[str, float]
    seconds: float
    # Per-class recall/precision/F1 on the test split and their macro F1 (class_report).
    class_metrics: dict[str, Any] = field(default_factory=dict)
    # The 1-based epoch whose model was kept (the best val_loss checkpoint; the last epoch
    # when nothing was written).
    kept_epoch: int | None = None
    # How it was trained data-parallel ("" on one device), e.g. "keras.distribution.
    # DataParallel over 2 devices (cpu:0, cpu:1)".
    distribution: str = ""
    # The run directory already held this run, finished: nothing was trained, the results are
    # the ones it holds (zoo.training.job_folder).
    finished_earlier: bool = False
    # Epochs that a killed run had finished before this call resumed it (0: started afresh).
    resumed_after: int = 0


def resolve_hparams(plan: TrainPlan, data: "Dataset | FolderListing | ImageStream"
                    ) -> dict[str, Any]:
    """The builder's hyperparameters: the plan's, with input shape and classes filled in."""
    hparams = normalize_hyperparameters(plan.model, plan.hparams)
    info = get_model_info(plan.model)
    if "input_shape" not in hparams:
        hparams["input_shape"] = info.input_shape
    hparams["input_shape"] = tuple(hparams["input_shape"])
    hparams.setdefault("num_classes", data.num_classes)
    if hparams["num_classes"] != data.num_classes:
        raise TrainingError(
            f"num_classes={hparams['num_classes']} but data set {data.name!r} has "
            f"{data.num_classes} classes; drop --set num_classes"
        )
    return hparams


def make_optimizer(plan: TrainPlan, steps_per_epoch: int, device_count: int = 1):
    """The Keras optimizer named in the plan, with its learning rate (scaled for
    ``device_count`` devices if the plan asks) or schedule."""
    import keras

    learning_rate = scaled_learning_rate(plan.learning_rate, plan.scale_lr, device_count)
    if plan.lr_schedule is not None:
        learning_rate = plan.lr_schedule(learning_rate, steps_per_epoch, plan.epochs)
    try:
        return keras.optimizers.get(
            {"class_name": plan.optimizer,
             "config": {"learning_rate": learning_rate, **plan.optimizer_options}}
        )
    except ValueError as err:
        raise TrainingError(
            f"unknown optimizer {plan.optimizer!r} ({err}); use adam, sgd, rmsprop, adamw, ..."
        ) from None


def compile_model(model: "keras.Model", plan: TrainPlan, steps_per_epoch: int,
                  device_count: int = 1, padded: bool = False) -> None:
    """Compile with the plan's optimizer, cross-entropy, accuracy, XLA and steps per call.

    ``padded``: evaluation batches carry weights (0 for padding, ``Sharding``), so accuracy
    is a weighted metric (Keras hands sample weights to ``weighted_metrics`` only).
    """
    loss = ("categorical_crossentropy" if plan.one_hot_labels
            else "sparse_categorical_crossentropy")
    if plan.deterministic and plan.jit_compile:
        raise TrainingError("XLA (jit_compile) has no deterministic kernels for every layer "
                            "(max-pool gradients); drop --deterministic or jit_compile")
    # None -> Keras' "auto": no XLA on a CPU-only TensorFlow machine (XLA's CPU kernels
    # trained every registered model slower than TensorFlow's oneDNN ones here, see
    # docs/benchmarks.md) or under op determinism; XLA on GPUs and under JAX.
    jit_compile = "auto" if plan.jit_compile is None else plan.jit_compile
    metrics = {"weighted_metrics" if padded else "metrics": ["accuracy"]}
    model.compile(optimizer=make_optimizer(plan, steps_per_epoch, device_count), loss=loss,
                  **metrics, jit_compile=jit_compile,
                  steps_per_execution=effective_steps_per_execution(plan))


def effective_steps_per_execution(plan: TrainPlan) -> int:
    """The plan's batches per compiled call, or 1 where the backend runs one at a time.

    Keras' PyTorch trainer refuses anything above 1 (it has no multi-step train function),
    so the default of 8 would make every `zoo train` fail with KERAS_BACKEND=torch; under a
    TensorFlow strategy see below.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Under a tf.distribute strategy (--devices), Keras 3.15's multi-step train function
        # fails on TensorFlow 2.21 ("You must feed a value for placeholder tensor ...",
        # MirroredStrategy over two CPU devices here); one step per call trains.
        if tf.distribute.has_strategy():
            return 1
    return 1 if keras.backend.backend() == "torch" else plan.steps_per_execution


def training_batches(plan: TrainPlan, data: "Dataset | ImageStream",
                     sharding: Sharding | None = None):
    """(train, validation) input pipelines for a data set already fitted to the model.

    With ``sharding`` (data parallel under JAX), this process's shards in per-process
    batches; validation batches then carry weights (0 for the padding, ``Sharding``).
    """
    classes = data.num_classes if plan.one_hot_labels else None
    batch = sharded_run.per_process_batch(plan.batch_size, sharding)
    val_batch = sharded_run.eval_batch_size(plan.batch_size, sharding)
    if isinstance(data, ImageStream):
        train = data.batches("train", batch_size=batch, shuffle=True, seed=plan.seed,
                             num_classes=classes, augment=plan.augment,
                             balanced=plan.balanced_sampler, sharding=sharding)
        val = data.batches("val", batch_size=val_batch, num_classes=classes, sharding=sharding)
        return train, val
    train = make_batches(data.x_train, data.y_train, batch_size=batch, shuffle=True,
                         seed=plan.seed, num_classes=classes, augment=plan.augment,
                         sharding=sharding)
    val = make_batches(data.x_val, data.y_val, batch_size=val_batch, shuffle=False,
                       seed=plan.seed, num_classes=classes, sharding=sharding)
    return train, val


def prepare_data(plan: TrainPlan, data: Dataset | None = None) -> Dataset:
    """Load the plan's data set (unless given) and apply its training fraction."""
    data = data if data is not None else load_dataset(plan.dataset, data_dir=plan.data_dir)
    return data.subset(train_fraction=plan.train_fraction) if plan.train_fraction < 1 else data


def open_source(plan: TrainPlan, data: "Dataset | FolderListing | None" = None
                ) -> "Dataset | FolderListing":
    """The plan's data before the model's input shape is known: an image folder is only listed
    and split (``fit_source`` then decodes or streams it); other sources load as arrays."""
    if data is not None:
        return data
    return inputs.open_source(plan.dataset, data_dir=plan.data_dir)


def fit_source(plan: TrainPlan, source: "Dataset | FolderListing",
               input_shape: tuple[int, int, int]) -> "tuple[Dataset | ImageStream, InputChoice]":
    """The data at the model's ``input_shape``, in memory or streamed (plan.input_mode), and
    the choice made."""
    return inputs.fit_source(source, input_shape, mode=plan.input_mode,
                             budget=plan.memory_budget, skip_bad=plan.skip_bad_images,
                             train_fraction=plan.train_fraction)


def train(
    plan: TrainPlan,
    *,
    model: "keras.Model | None" = None,
    data: Dataset | None = None,
    verbose: int | str = "auto",
    write_run: bool = True,
    announce: Callable[[str], None] | None = None,
    input_note: InputNote | None = None,
    backup_dir: str | Path | None = None,
) -> RunResult:
    """Train ``plan`` and write its run directory; resumes if that directory holds a backup.

    Args:
        plan: the model, data set, hyperparameters and fit settings; recipes edit it.
        model: a prebuilt model to train instead of building ``plan.model`` (transfer
            learning).
        data: an already loaded data set, to skip loading ``plan.dataset``.
        verbose: Keras' ``fit`` verbosity.
        write_run: False keeps everything in memory (tests, benchmarks, ablations): no run
            directory, checkpoint, history file or curves.
        announce: called with the lines to show before training: the input path taken
            (in memory or streamed) and why, and from which epoch a killed run resumes.
        backup_dir: with ``write_run=False``, a folder for this run's epoch history and
            Keras backup (no model file, curves or logs), so that the same call after a kill
            resumes from the last finished epoch (sweeps). The caller removes it once it has
            kept the result.

    Returns:
        The run directory, the best model (the saved checkpoint when a run was written), the
        history per epoch, the test metrics and the training time. When ``plan.out`` already
        holds this run, finished (same settings, ``RUN_KEYS``), nothing is trained: its model,
        history and test metrics, with ``finished_earlier`` set.

    With the plan's devices or processes (``plan.devices``, ...), the model is built, trained
    and evaluated data-parallel (``zoo.training.distribution``); in a multi-process run only
    process 0 writes ``plan.out`` (``zoo.training.sharded_run``).

    Raises:
        TrainingError: bad epochs, batch size or dtype policy, or a loss that became NaN/inf.
        JobFolderError: ``plan.out`` (or ``backup_dir``) holds another run.
        DistributionError: devices or processes that cannot be used as asked.
        LostProcessError: another process of the run stopped.
    """
    check_plan(plan, model)
    # Before anything runs on the backend: JAX joins its processes first.
    distribution = start_distribution(distribution_settings(plan))
    if distribution is not None:
        distribution.check_batch(plan.batch_size)
    if write_run and not plan.out:
        plan = replace(plan, out=str(new_run_dir(plan.model)))
    writes = distribution is None or distribution.writes
    # The policy is process-wide and read when layers are built: set it around this run
    # only, so that the next run of a sweep, comparison or search starts from the old one.
    with run_folder_lock(plan, write_run, writes):
        folder = Path(plan.out) if write_run else backup_dir
        if folder is not None and plan.initial_epoch == 0:
            # Before any data loads: the settings the plan states (the model's resolved
            # hyperparameters and dtype policy are compared again once known).
            earlier_job(folder, plan.config(), EARLY_RUN_KEYS, finished_file=METRICS_FILE,
                        resume_keys=("model",))
        with dtype_policy_scope(plan.dtype_policy) as policy, \
                (distribution.scope() if distribution else contextlib.nullcontext()):
            return _train(plan, model, data, verbose, write_run, policy, announce, input_note,
                          distribution, Path(backup_dir) if backup_dir is not None and
                          not write_run else None)


def run_folder_lock(plan: TrainPlan, write_run: bool, writes: bool = True):
    """The exclusive lock on the run folder ``plan.out`` (``zoo.core.locks``), taken before
    any data is loaded so that a second command on the same folder stops at once.

    Only a process that writes the folder locks it (``writes``; in a multi-process run,
    process 0); ``write_run=False`` writes nothing and locks nothing.
    """
    if not (write_run and writes):
        return contextlib.nullcontext()
    return folder_lock(plan.out, what="run folder")


def check_plan(plan: TrainPlan, model: "keras.Model | None" = None) -> None:
    """Raise TrainingError for settings that cannot train, before any data is loaded."""
    if plan.epochs < 1:
        raise TrainingError(f"epochs must be >= 1, got {plan.epochs}")
    if not isinstance(plan.batch_size, int) or plan.batch_size < 1:
        raise TrainingError(f"batch size must be a positive integer, got {plan.batch_size!r}")
    if not (isinstance(plan.learning_rate, (int, float)) and math.isfinite(plan.learning_rate)
            and plan.learning_rate > 0):
        raise TrainingError(f"learning rate must be a positive number, got {plan.learning_rate!r}")
    if not isinstance(plan.steps_per_execution, int) or plan.steps_per_execution < 1:
        raise TrainingError(f"steps per execution must be a positive integer, got "
                            f"{plan.steps_per_execution!r}")
    try:
        choose_input(0, (1, 1, 1), mode=plan.input_mode, budget=plan.memory_budget)
    except DataError as err:
        raise TrainingError(str(err)) from None
    try:
        check_class_weight(plan.class_weight)
    except ValueError as err:
        raise TrainingError(str(err)) from None
    if plan.dtype_policy is not None:
        try:
            check_dtype_policy(plan.dtype_policy)
        except DtypePolicyError as err:
            raise TrainingError(str(err)) from None
        if model is not None and model.dtype_policy.name != plan.dtype_policy:
            raise TrainingError(
                f"the given model was built with dtype policy {model.dtype_policy.name!r}, "
                f"not {plan.dtype_policy!r}; build it under keras.config.set_dtype_policy("
                f"{plan.dtype_policy!r}) or leave the plan's dtype_policy unset")


def default_input_note(plan: TrainPlan, built_here: bool) -> InputNote:
    """Why a run's input has its size: --input-shape or the registered model's default."""
    if not built_here:
        return InputNote("the given model's input")
    default = tuple(get_model_info(plan.model).input_shape)
    if "input_shape" in plan.hparams and tuple(plan.hparams["input_shape"]) != default:
        return InputNote("--input-shape", default, f"{plan.model}'s default input")
    return InputNote(f"{plan.model}'s default input")


def _images_shape(source: "Dataset | FolderListing") -> tuple[int, ...] | None:
    """(H, W, C) of the data set's own images (a folder's first image, from its header)."""
    from zoo.data.tfds_listing import TfdsListing

    if isinstance(source, TfdsListing):
        return source.image_shape
    if isinstance(source, FolderListing):
        from PIL import Image

        try:
            with Image.open(source.files[0]) as image:
                return image.height, image.width, 1 if image.mode in ("L", "1", "I;16") else 3
        except OSError:
            return None
    return tuple(source.image_shape)


def split_labels(data: "Dataset | ImageStream", split: str) -> np.ndarray:
    """The labels of ``split`` ('train', 'val', 'test') of arrays or a stream."""
    if isinstance(data, ImageStream):
        return data.labels(split)
    return getattr(data, f"y_{split}")


def fit_class_weight(plan: TrainPlan, data: "Dataset | ImageStream"
                     ) -> dict[int, float] | None:
    """Keras' ``class_weight`` for ``fit`` from ``plan.class_weight`` (None: every image
    alike); the one place train, transfer, compare and tune get it from."""
    if plan.class_weight != "balanced":
        return None
    return balanced_class_weights(split_labels(data, "train"), data.num_classes)


def _announce_start(announce: Callable[[str], None], plan: TrainPlan, model: "keras.Model",
                    data: "Dataset | ImageStream", images_shape: tuple | None,
                    note: InputNote, class_weight: dict[int, float] | None) -> None:
    for line in count_lines(split_labels(data, "train"), data.class_names):
        announce(line)
    if class_weight:
        shown = ", ".join(f"{name} {class_weight[c]:.2f}"
                          for c, name in enumerate(data.class_names))
        announce(f"class weights ({plan.class_weight}): {shown}")
    if plan.balanced_sampler:
        announce("sampler: training batches drawn class-balanced (every class equally often)")
    for line in cost_lines(model, images_shape, note.reason, note.native, note.native_what):
        announce(line)


def _test_predictions(model: "keras.Model", batches, direct: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) class indices over evaluation batches, in one pass (padding of
    weight 0, ``zoo.data.batches.Sharding``, left out).

    ``direct``: call the model on each batch instead of ``predict_on_batch``, which under a
    MirroredStrategy returned one prediction per image and replica (538 for 269 images on two
    CPU devices here).
    """
    true, predicted = [], []
    for x, y, *weights in batches:
        y = np.asarray(y)
        keep = np.asarray(weights[0]) > 0 if weights else slice(None)
        true.append((y.argmax(axis=-1) if y.ndim > 1 else y)[keep])
        # NumPy in: a tf.data batch under the JAX or torch backend is a TensorFlow tensor.
        x = np.asarray(x)
        scores = model(x, training=False) if direct else model.predict_on_batch(x)
        predicted.append(np.asarray(scores).argmax(axis=-1)[keep])
    return np.concatenate(true), np.concatenate(predicted)


def _train(plan: TrainPlan, model: "keras.Model | None", data: Dataset | None,
           verbose: int | str, write_run: bool, policy: str,
           announce: Callable[[str], None] | None, input_note: InputNote | None,
           distribution: Distribution | None = None,
           backup_dir: Path | None = None) -> RunResult:
    """``train`` after the checks, under the run's dtype policy ``policy`` and inside the
    scope of its ``distribution`` (if any)."""
    import keras

    from zoo.training.progress import EpochProgbar, EpochTimeEstimate

    seed_everything(plan.seed, plan.deterministic)
    source = open_source(plan, data)
    note = input_note or default_input_note(plan, model is None)
    images_shape = _images_shape(source)
    if model is None:
        hparams = resolve_hparams(plan, source)
        model = build(plan.model, **hparams)
    else:
        hparams = dict(plan.hparams)
    input_shape = tuple(model.input_shape[1:])
    data, choice = fit_source(plan, source, input_shape)
    if plan.balanced_sampler and not isinstance(data, ImageStream):
        raise TrainingError("--balanced-sampler draws the batches of a streamed image folder "
                            "(add --stream); for data in memory use --class-weight balanced, "
                            "which weighs the classes alike in the loss")
    if announce is not None and plan.initial_epoch == 0:  # a later phase: said already
        announce(choice.line())
    class_weight = fit_class_weight(plan, data)
    # Keras' global DataParallel (set by zoo tune for its trials) splits batches too.
    sharding = distribution.sharding() if distribution is not None else global_sharding()
    devices = distribution.device_count if distribution is not None else 1
    train_batches, val_batches = training_batches(plan, data, sharding)
    steps_per_epoch = math.ceil(split_size(data, "train") / plan.batch_size)
    compile_model(model, plan, steps_per_epoch, devices, padded=sharding is not None)

    run_dir = Path(plan.out) if plan.out else new_run_dir(plan.model)
    nan_guard = keras.callbacks.TerminateOnNaN()
    # It only reads each batch's loss, so Keras may hand it the logs from a helper thread;
    # otherwise every step would wait for the loss to reach the host (stalls GPU pipelines).
    nan_guard.async_safe = True
    # First, so that every later callback (history, checkpoint) logs the corrected loss.
    callbacks = [*sharded_run.padding_callbacks(split_size(data, "val"), sharding), nan_guard,
                 EpochProgbar(), *plan.callbacks]
    if announce is not None:
        if plan.initial_epoch == 0:  # a later phase of one run (transfer) said it already
            _announce_start(announce, plan, model, data, images_shape, note, class_weight)
        callbacks.append(EpochTimeEstimate(announce, steps_per_epoch, plan.epochs))
    # Where this process writes the run's files: run_dir, or a scratch copy in a process
    # other than 0 of a multi-process run (zoo.training.sharded_run.files_folder); for an
    # in-memory run, its backup_dir (if any).
    files_dir = run_dir
    history_dir = None
    resumed_after = 0
    if write_run or backup_dir is not None:
        config = {**plan.config(), "hparams": jsonable(hparams),
                  "steps_per_execution": effective_steps_per_execution(plan),
                  "input_shape": list(input_shape), "class_names": data.class_names,
                  "preprocessing": PREPROCESSING, "dataset_name": data.name,
                  "train_size": split_size(data, "train"), "input": choice.config(),
                  "keras_version": keras.__version__,
                  "backend": keras.backend.backend(), "jit_compile": bool(model.jit_compile),
                  "dtype_policy": policy,
                  "effective_learning_rate": scaled_learning_rate(
                      plan.learning_rate, plan.scale_lr, devices),
                  "distribution": sharded_run.distribution_record(
                      distribution, plan.batch_size,
                      {split: split_size(data, split) for split in ("train", "val", "test")})}
        if write_run:
            # A later phase of one run (transfer) continues the folder with another model.
            earlier = (earlier_job(run_dir, config, RUN_KEYS, finished_file=METRICS_FILE,
                                   resume_keys=resume.IDENTITY_KEYS)
                       if plan.initial_epoch == 0 else None)
            if earlier is not None and earlier.finished:
                return finished_run(run_dir, model)
            files_dir = history_dir = sharded_run.files_folder(
                run_dir, distribution, lambda: _write_config(plan, run_dir, config),
                HISTORY_FILE, MODEL_FILE)
        else:
            history_dir = backup_dir
            _write_config(plan, backup_dir, config)
        resumed_after = resume.backup_epoch(history_dir)
        if resumed_after and announce is not None:
            announce(f"resuming {history_dir} after epoch {resumed_after} (its last finished "
                     f"epoch)")
        callbacks += resume.resume_callbacks(history_dir, HISTORY_FILE,
                                             MODEL_FILE if write_run else None)
        if write_run and keras.backend.backend() == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(str(files_dir / "logs")))

    start = time.perf_counter()
    gradients_before = custom_gradient_names()
    try:
        # shuffle=False: the batches come shuffled from make_batches; Keras ignores (and since
        # 3.15 warns about) its own shuffle flag for a tf.data.Dataset or PyDataset.
        with warnings.catch_warnings():
            if isinstance(data, ImageStream):
                # A stream whose length Keras cannot know (grain, or skipped images) ends each
                # epoch by running out, as it should; Keras warns about that every epoch.
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            fit = model.fit(train_batches, validation_data=val_batches, shuffle=False,
                            initial_epoch=plan.initial_epoch,
                            epochs=plan.initial_epoch + plan.epochs, class_weight=class_weight,
                            callbacks=callbacks, verbose=verbose)
    except Exception as err:
        if isinstance(data, ImageStream):
            data.check_read(err)  # a worker's unreadable or changed file, in one line
        if distribution is not None and distribution.num_processes > 1:
            sharded_run.finish(files_dir, run_dir)  # a scratch copy: process 0 resends it
            raise LostProcessError(
                f"process {distribution.process_id} of {distribution.num_processes} stopped: "
                f"another process stopped or lost contact ({_first_line(err)}); start every "
                f"process again with the same command to resume from the last finished epoch"
            ) from err
        raise
    finally:
        # Otherwise TensorFlow's gradient registry keeps this fit's traced graphs alive after
        # the model is gone: ~10 MB per run in a sweep or search (zoo.training.gradient_registry).
        forget_custom_gradients(gradients_before)
    seconds = time.perf_counter() - start
    history = read_history(history_dir / HISTORY_FILE) if history_dir else fit.history
    losses = history.get("loss", [])
    if not losses or not all(math.isfinite(v) for v in losses):
        kept = (f"{run_dir / MODEL_FILE} keeps the best model before that"
                if write_run and (run_dir / MODEL_FILE).exists() else "no model was saved")
        raise TrainingError(
            f"the training loss became NaN/inf at epoch {len(losses)} ({kept}); lower the "
            f"learning rate (--lr, now {plan.learning_rate}), add batch norm (--recipe "
            f"batchnorm) or check the data for bad values"
        )
    if write_run and (files_dir / MODEL_FILE).exists():
        # Evaluate the checkpoint users will deploy, not whatever the last epoch left. Its
        # weights only: the architecture is this model's, so no code in the file is run.
        with warnings.catch_warnings():  # an optimizer of another phase is not restored
            warnings.simplefilter("ignore")
            model.load_weights(files_dir / MODEL_FILE)
    test = split_batches(data, "test", batch_size=sharded_run.eval_batch_size(256, sharding),
                         num_classes=data.num_classes if plan.one_hot_labels else None,
                         sharding=sharding)
    try:
        with warnings.catch_warnings():
            if isinstance(data, ImageStream):  # as in fit above
                warnings.filterwarnings("ignore", message="Your input ran out of data")
            test_metrics = model.evaluate(test, verbose=0, return_dict=True)
            # Several processes each see their own shard only: no per-class table then.
            class_metrics = (per_class_metrics(*_test_predictions(
                model, test, direct=distribution is not None), data.class_names)
                             if sharding is None or sharding.count == 1 else {})
    except Exception as err:
        if isinstance(data, ImageStream):
            data.check_read(err)
        raise
    test_metrics["loss"] *= sharded_run.padding_correction(split_size(data, "test"), sharding)
    test_metrics = {f"test_{k}": float(v) for k, v in test_metrics.items()}
    skipped = list(data.log.skipped) if isinstance(data, ImageStream) else []
    if skipped and announce is not None:
        announce(f"skipped {len(skipped):,} unreadable image(s) while streaming, e.g. "
                 f"{skipped[0]}")
    kept = (kept_epoch(history) if write_run and (files_dir / MODEL_FILE).exists()
            else None) or len(losses)
    if write_run:
        write_json_atomic(files_dir / METRICS_FILE,
                          {**test_metrics, **class_metrics, "kept_epoch": kept,
                           "epochs": len(losses), "train_seconds": seconds,
                           **({"skipped_images": len(skipped)} if skipped else {})})
        resume.finish_run(files_dir)
        if files_dir == run_dir:
            plot_history(history, run_dir / CURVES_FILE, title=f"{plan.model} on {data.name}")
        sharded_run.finish(files_dir, run_dir)
    return RunResult(run_dir, model, history, test_metrics, seconds, class_metrics, kept,
                     distribution.describe() if distribution is not None else "",
                     resumed_after=resumed_after)


def _write_config(plan: TrainPlan, run_dir: Path, config: dict[str, Any]) -> None:
    """Check that ``run_dir`` can take this run (zoo.training.job_folder: a killed run of the
    same model and hyperparameters resumes), write its config and ready its backup."""
    if plan.initial_epoch == 0:  # a later phase of one run (transfer) changes the model
        earlier_job(run_dir, config, RUN_KEYS, finished_file=METRICS_FILE,
                    resume_keys=resume.IDENTITY_KEYS)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / CONFIG_FILE, config)
    damaged = resume.prepare_backup(run_dir)
    if damaged:
        resume.logger.warning(damaged)


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(err).__name__


def finished_run(run_dir: Path, model: "keras.Model") -> RunResult:
    """The results a finished run directory holds, with ``model`` given its best weights."""
    metrics = load_run_metrics(run_dir)
    if (run_dir / MODEL_FILE).exists():
        with warnings.catch_warnings():  # the optimizer is not restored: nothing trains
            warnings.simplefilter("ignore")
            model.load_weights(run_dir / MODEL_FILE)
    per_class = ("test_macro_f1", "test_per_class")  # zoo.training.class_report's
    return RunResult(run_dir, model, read_history(run_dir / HISTORY_FILE),
                     {k: float(v) for k, v in metrics.items()
                      if k.startswith("test_") and k not in per_class},
                     float(metrics.get("train_seconds", 0.0)),
                     {k: metrics[k] for k in per_class if k in metrics},
                     metrics.get("kept_epoch"), finished_earlier=True)
