"""The training settings every command that trains shares, in one record.

``TrainingSettings`` holds them; the records of the commands extend it: ``TrainPlan``
(``zoo train``), ``RunSettings`` (``zoo compare`` and its sweeps), ``SearchPlan`` (``zoo
tune``), ``TransferSettings`` (``zoo transfer``) and ``BenchSettings`` (``zoo bench``), each
with its own defaults where the command's differ. ``zoo/cli/options.py`` builds each command's
click options from the fields (flag and help from each field's metadata).

A new setting is added here, once: a field with its default (the behaviour before the setting
existed, so that run and sweep folders written before it still resume), its flag and its help.
Every record then has it, every plan built from a record carries it (``settings_of``), and a
command lists its name in ``training_options`` to offer the flag; ``zoo/cli/options.py``'s
``OPTION_TYPES`` names a click type where the field's own type is not enough.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# zoo.data.dataset.DEFAULT_DATASET (a test checks they agree); not imported, because the CLI
# builds its options from this module and zoo.data.dataset imports NumPy (`zoo --help` stays
# fast).
DEFAULT_DATASET = "digits"


def setting(default: Any, flag: str, help: str = "",  # noqa: A002 - click's word
            same_job: bool = True) -> Any:
    """A field of a settings record with its command-line flag and help. ``same_job=False``
    for a setting that changes how a job runs but not what it computes (the input path):
    a folder run again with another value still holds the same job (zoo.training.job_folder).
    """
    return field(default=default, metadata={"flag": flag, "help": help, "same_job": same_job})


@dataclass(kw_only=True)
class TrainingSettings:
    """What every command that trains shares: data, epochs, optimizer, seed, numerics, and
    the devices and processes it trains on."""

    dataset: str = setting(
        DEFAULT_DATASET, "--dataset",
        "'digits' (embedded); mnist, fashion_mnist, cifar10, cifar100 (after `zoo data "
        "import`); 'tfds:NAME'; or a folder of class sub-folders.")
    data_dir: str | None = setting(
        None, "--data-dir", "tensorflow-datasets data directory (for tfds: names).")
    epochs: int = setting(30, "--epochs")
    batch_size: int = setting(32, "--batch-size")
    learning_rate: float = setting(1e-3, "--lr")
    optimizer: str = setting("adam", "--optimizer")
    seed: int = setting(0, "--seed")
    train_fraction: float = setting(
        1.0, "--train-fraction", "Train on this stratified fraction of the training split.")
    # Reproducibility is a choice: True makes TensorFlow pick deterministic kernels, so the
    # same seed gives the same history, at a cost in speed (docs/benchmarks.md).
    deterministic: bool = setting(
        False, "--deterministic",
        "Same seed, same history: TensorFlow picks deterministic kernels and runs "
        "augmentation serially (slower; see docs/benchmarks.md).")
    # Keras dtype policy while the model is built and trained (zoo.training.dtype_policy):
    # float32, mixed_float16 or mixed_bfloat16; None keeps the process's current one (float32
    # unless something like `zoo bench --dtype-policy` set it). Restored when the run ends.
    dtype_policy: str | None = setting(
        None, "--dtype-policy",
        "Keras dtype policy of the run (default float32): mixed_bfloat16 computes layers in "
        "bfloat16 with float32 variables, classifier and loss (GPUs with tensor cores, CPUs "
        "with AVX512_BF16/AMX; docs/training.md).")
    # Imbalanced classes (zoo.training.class_report): Keras' class_weight in fit. 'balanced'
    # weighs class c by n / (k * n_c) from the training labels, so a small class counts as
    # much in the loss as a large one; None weighs every image alike.
    class_weight: str | None = setting(
        None, "--class-weight",
        "Weigh each class in the loss by n / (k * n_c) (Keras' class_weight), so a small class "
        "counts as much as a large one.")

    # Input path of an image folder (zoo.data.input_choice): "auto" streams a folder whose
    # images, decoded at the model's input size, exceed memory_budget bytes (None: a quarter of
    # the available memory); "stream" / "in-memory" force either.
    input_mode: str = setting(
        "auto", "--stream/--in-memory",
        "--stream: stream an image folder (decode, resize and batch it on the fly in parallel "
        "workers, memory flat in the number of images); --in-memory: decode it into memory "
        "first (the fast path for small sets). Default: stream only past --memory-budget.",
        same_job=False)
    memory_budget: float | None = setting(
        None, "--memory-budget",
        "Stream an image folder whose images, decoded at the model's input size, exceed this "
        "size (e.g. 2GiB); default a quarter of the available memory.", same_job=False)
    skip_bad_images: bool = setting(
        False, "--skip-bad-images",
        "While streaming, skip unreadable images (counted and reported) instead of stopping at "
        "the first.")
    # Data parallelism (zoo.training.distribution, docs/training.md). None: one device, as
    # before the settings existed; batch_size is then the global batch, split over them.
    devices: str | None = setting(
        None, "--devices",
        "Train data-parallel over N (or all) local GPUs, or CPU devices: keras.distribution."
        "DataParallel under JAX, MirroredStrategy under TensorFlow. --batch-size is the "
        "global batch, split over them.")
    scale_lr: str | None = setting(
        None, "--scale-lr",
        "Multiply --lr by the number of devices (the linear scaling rule, for a global batch "
        "that many times the one --lr was tuned for); default: --lr as given.")
    coordinator: str | None = setting(
        None, "--coordinator",
        "Process 0's HOST:PORT, for several processes (JAX); or "
        "KERAS_DISTRIBUTION_JOB_ADDRESSES.", same_job=False)
    num_processes: int | None = setting(
        None, "--num-processes",
        "Processes training one model together, e.g. one per machine (or "
        "KERAS_DISTRIBUTION_NUM_PROCESSES).")
    process_id: int | None = setting(
        None, "--process-id",
        "This process's number, 0 to N-1; 0 writes the run folder (or "
        "KERAS_DISTRIBUTION_PROCESS_ID).", same_job=False)
    coordinator_timeout: float = setting(
        300.0, "--coordinator-timeout", "Seconds to wait for every process to join.",
        same_job=False)


# The values --class-weight takes.
CLASS_WEIGHTS = ("balanced",)


# The shared settings' names, in the record's order.
TRAINING_SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(TrainingSettings))
# Those that make a run, sweep or search folder hold another job when they differ.
JOB_SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(TrainingSettings)
                                      if f.metadata["same_job"])


def settings_of(record: Any, **changes: Any) -> dict[str, Any]:
    """The shared training settings of ``record`` (any record extending TrainingSettings, or
    a TrainingSettings), with ``changes``: the keywords that carry them into another record,
    e.g. ``TrainPlan(model=name, **settings_of(run_settings, seed=1))``."""
    unknown = sorted(set(changes) - set(TRAINING_SETTINGS))
    if unknown:
        raise TypeError(f"not training settings: {', '.join(unknown)}; they are "
                        f"{', '.join(TRAINING_SETTINGS)}")
    return {name: getattr(record, name) for name in TRAINING_SETTINGS} | changes


def setting_defaults(record_type: type) -> dict[str, Any]:
    """The defaults of the shared training settings in ``record_type`` (its own where it
    overrides them, e.g. 5 epochs per trial for ``SearchPlan``)."""
    return {f.name: f.default for f in fields(record_type) if f.name in TRAINING_SETTINGS}
