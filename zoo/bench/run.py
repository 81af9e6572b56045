"""`zoo bench`: training and inference speed of the zoo's own models.

For each model, one process and one set of images (random, or a data set's real training
images with ``--dataset``) measures
- the zoo's training path (``zoo.training.train.train``: its input pipeline, compile settings and
  callbacks), each epoch timed once the device has finished it;
- inference with ``predict_on_batch`` and with the exported SavedModel's serving function, at
  batch 1 (with p50/p99 latency) and at a large batch;
- the machine's matrix-multiply peak, so that training FLOPs per image (3 x 2 x the
  inspector's MACs) turn throughput into a fraction of what the hardware can do.

The first epoch (tracing, compilation) and the first calls are warm-up and are not counted.
Something else can be timed beside the zoo, one of its epochs after each of the zoo's so that
both see the same machine load (``benchmark(..., alongside=...)``): benchmarks/bench_peers.py
times the hand-written Keras and PyTorch peers that way. The zoo knows nothing of them.
"""

from __future__ import annotations

import functools
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from recipes import apply_recipes
from zoo.bench.inference import bench_inference
from zoo.bench.machine import accelerated, machine_facts, measure_matmul_peak
from zoo.bench.timing import epoch_timer, rates
from zoo.core.layer_table import summarize
from zoo.core.registry import build, get_model_info
from zoo.data.dataset import Dataset, fit_dataset
from zoo.data.load import load_dataset
from zoo.training.dtype_policy import DTYPE_POLICIES, dtype_policy_scope
from zoo.training.settings import TrainingSettings, settings_of
from zoo.training.train import TrainPlan, train

# Name of the random data set; the augment recipe treats it as photos (flips, reflect fill).
RANDOM_DATASET = "random"
# Work per timed repeat, in FLOPs. 1e12 is about 5 s on a 2-core
# CPU (~190 GFLOP/s): with 1 s repeats (2e11) the worst zoo/baseline repeat of vgg_small and
# alexnet scattered 0.96-1.05x around parity on an idle machine, timer and scheduling noise
# rather than a difference between the two paths.
TRAIN_FLOPS_PER_REPEAT = 1e12
# Cheap models (LeNet-5) would need thousands of steps: cap a repeat at this many.
MAX_STEPS_PER_REPEAT = 400


class BenchError(ValueError):
    """Benchmark settings that cannot work (unknown policy, too few steps, ...)."""


@dataclass(kw_only=True)
class BenchSettings(TrainingSettings):
    """What to measure; ``None`` picks a size-dependent default per model.

    The zoo's training path is timed with these training settings (TrainingSettings'), except
    ``epochs``: it trains one warm-up epoch and ``repeats`` timed ones.
    """

    batch_size: int | None = None
    steps: int | None = None  # training steps per timed repeat
    repeats: int = 3
    input_shape: tuple[int, int, int] | None = None
    augment: bool = False
    dtype_policy: str = "float32"
    inference_batch: int | None = None
    note: str = ""
    # None: random images; else a data set's name or path (as `zoo train --dataset` takes it),
    # whose real training images are timed.
    dataset: str | None = None

    def check(self) -> None:
        """Raise BenchError for settings that cannot be measured."""
        if self.dtype_policy not in DTYPE_POLICIES:
            raise BenchError(f"dtype policy must be one of {', '.join(DTYPE_POLICIES)}, "
                             f"got {self.dtype_policy!r}")
        check_counts(self, ("batch_size", "steps", "inference_batch"))


def check_counts(settings: Any, optional: tuple[str, ...]) -> None:
    """BenchError unless ``settings.repeats`` and each of the ``optional`` counts that is set
    (not None) is a positive integer."""
    for key in (*optional, "repeats"):
        value = getattr(settings, key)
        if (value is not None or key == "repeats") and (
                not isinstance(value, int) or value < 1):
            raise BenchError(f"{key} must be a positive integer, got {value!r}")


def default_batch_size(train_flops_per_image: float) -> int:
    """A batch size that keeps one training step between milliseconds and seconds on a CPU."""
    if train_flops_per_image < 1e9:
        return 128
    if train_flops_per_image < 2e10:
        return 16
    return 4


def default_steps(train_flops_per_image: float, batch_size: int) -> int:
    """Training steps per repeat: about TRAIN_FLOPS_PER_REPEAT of work, at least 2, at most
    MAX_STEPS_PER_REPEAT."""
    steps = round(TRAIN_FLOPS_PER_REPEAT / (train_flops_per_image * batch_size))
    return int(min(MAX_STEPS_PER_REPEAT, max(2, steps)))


def random_images(input_shape, num_classes: int, count: int, seed: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``count`` random uint8 images of ``input_shape`` (H, W, C) and int64 labels: the same
    arrays in every process for the same arguments.

    The last call's arrays are kept and returned again, read-only: a benchmark may time one
    model in several configurations at the same batch size, and drawing AlexNet's 1.4 GB of
    pixels takes seconds.
    """
    return _random_images(tuple(input_shape), num_classes, count, seed)


@functools.lru_cache(maxsize=1)
def _random_images(input_shape: tuple, num_classes: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(count, *input_shape), dtype=np.uint8)
    y = rng.integers(0, num_classes, size=count).astype(np.int64)
    x.flags.writeable = y.flags.writeable = False
    return x, y


def random_dataset(input_shape, num_classes: int, count: int, seed: int):
    """``count`` random uint8 training images (one batch-sized slice for validation/test)."""

    x, y = random_images(input_shape, num_classes, count, seed)
    held_out = min(count, 64)
    return Dataset(RANDOM_DATASET, x, y, x[:held_out], y[:held_out], x[:held_out], y[:held_out],
                   [str(c) for c in range(num_classes)])


def real_images(data: Dataset, input_shape, count: int, seed: int) -> Dataset:
    """``count`` training images of ``data`` drawn with ``seed``, and a batch-sized slice of
    its validation and test splits, fitted to the model's input as `zoo train` fits them
    (MNIST's 28x28 zero-padded to LeNet-5's 32x32, grey repeated for an RGB model)."""
    if count > len(data.x_train):
        raise BenchError(f"data set {data.name} has {len(data.x_train):,} training images, "
                         f"fewer than batch size x steps = {count:,}; lower --steps or "
                         f"--batch-size")
    picks = np.sort(np.random.default_rng(seed).choice(len(data.x_train), count, replace=False))
    held_out = 64
    drawn = Dataset(data.name, data.x_train[picks], data.y_train[picks],
                    data.x_val[:held_out], data.y_val[:held_out],
                    data.x_test[:held_out], data.y_test[:held_out], data.class_names)
    return fit_dataset(drawn, tuple(input_shape))


@dataclass
class Workload:
    """One model's training measurement: the model, its batch and steps, and the images."""

    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    macs: int
    batch_size: int
    steps: int
    dataset: str  # RANDOM_DATASET or the data set's name, as the augment recipe reads it
    data: Dataset  # batch_size x steps training images, fitted to the model's input
    data_shape: tuple[int, ...]  # the images' shape before fitting

    @property
    def train_flops_per_image(self) -> int:
        return 3 * 2 * self.macs  # forward, and a backward pass of about twice the forward


def plan_workload(name: str, settings: BenchSettings, source: Dataset | None = None
                  ) -> Workload:
    """The images, batch and steps that time ``name`` under ``settings``: random images, or
    ``source``'s training images (its class count sets the model's)."""
    import keras

    info = get_model_info(name)
    input_shape = tuple(settings.input_shape or info.input_shape)
    num_classes = source.num_classes if source is not None else info.num_classes
    macs = summarize(build(name, input_shape=input_shape, num_classes=num_classes)).total_macs
    keras.backend.clear_session()
    batch = settings.batch_size or default_batch_size(6 * macs)
    steps = settings.steps or default_steps(6 * macs, batch)
    if source is None:
        data = random_dataset(input_shape, num_classes, batch * steps, settings.seed)
        return Workload(name, input_shape, num_classes, macs, batch, steps, RANDOM_DATASET,
                        data, data.image_shape)
    if settings.steps is None:  # the default work, as far as the training split goes
        steps = max(1, min(steps, len(source.x_train) // batch))
    data = real_images(source, input_shape, batch * steps, settings.seed)
    return Workload(name, input_shape, num_classes, macs, batch, steps, settings.dataset, data,
                    source.image_shape)


def bench_training(name: str, settings: BenchSettings, work_dir: Path,
                   source: Dataset | None = None, alongside: Callable | None = None
                   ) -> tuple[dict[str, Any], Any]:
    """(row, training result): images/s of the zoo's training path.

    Args:
        name: a registered model.
        settings: what to measure.
        work_dir: a scratch folder.
        source: the loaded data set of ``settings.dataset`` (its real training images are
            timed, its class count sets the model's); None times random images.
        alongside: called with the ``Workload`` before training; what it returns is timed
            beside the zoo: its ``after_epoch(epoch)`` runs after each of the zoo's epochs,
            its ``add_to(row)`` adds its measurements to the row at the end.
    """
    work = plan_workload(name, settings, source)
    # clear_session() in plan_workload also reset Keras' global dtype policy (Keras keeps it
    # in the state it clears): what is timed alongside is built under the benchmark's policy
    # again, and the zoo's plan carries it.
    with dtype_policy_scope(settings.dtype_policy):
        beside = alongside(work) if alongside is not None else None
    zoo_timer = epoch_timer(after_epoch=beside.after_epoch if beside is not None else None)
    hparams = {"input_shape": work.input_shape, "num_classes": work.num_classes}
    plan = TrainPlan(model=name, hparams=hparams, out=str(work_dir / f"run-{name}"),
                     callbacks=[zoo_timer],
                     **settings_of(settings, dataset=work.dataset, epochs=1 + settings.repeats,
                                   batch_size=work.batch_size))
    if settings.augment:
        plan = apply_recipes(plan, ["augment"])
    # The run stays in memory: checkpoints, backups and TensorBoard logs are written at
    # epoch ends, outside the timed window, and would only cost disk and time here.
    result = train(plan, data=work.data, verbose=0, write_run=False)
    images = work.batch_size * work.steps
    row: dict[str, Any] = {
        "model": name, "input_shape": list(work.input_shape), "batch_size": work.batch_size,
        "steps": work.steps,
        # The data set's own image shape; `input_shape` is what the model was fed.
        "dataset": work.dataset, "data_shape": list(work.data_shape),
        "repeats": settings.repeats, "augment": settings.augment, "macs": work.macs,
        "train_flops_per_image": work.train_flops_per_image,
        "zoo_images_per_s": rates(images, zoo_timer.wall),
        "zoo_cpu_images_per_s": rates(images, zoo_timer.cpu),
        "zoo_jit_compile": bool(result.model.jit_compile),
        # The policy the model was built with: what was timed, not what was asked.
        "zoo_dtype_policy": result.model.dtype_policy.name,
    }
    if beside is not None:
        beside.add_to(row)
    return row, result


def benchmark(names: list[str], settings: BenchSettings,
              progress: Callable[[str], None] = lambda line: None,
              alongside: Callable | None = None) -> dict[str, Any]:
    """Benchmark each model in ``names`` and return the report (machine facts, peak, rows);
    ``alongside`` as ``bench_training`` takes it."""
    import keras

    settings.check()
    for name in names:
        get_model_info(name)  # unknown names fail before any measurement
    # Loaded once for all models; a set not imported fails here, with the import command.
    source = (load_dataset(settings.dataset, data_dir=settings.data_dir)
              if settings.dataset else None)
    with dtype_policy_scope(settings.dtype_policy):
        compute = keras.config.dtype_policy().compute_dtype
        # An accelerator multiplies 1024x1024 matrices faster than one dispatch takes.
        size = 4096 if accelerated() else 1024
        peak = measure_matmul_peak("float32", size=size)
        peaks = {"float32": peak}
        if compute != "float32":
            peaks[compute] = measure_matmul_peak(compute, size=size)
        progress(f"matmul peak: {peak['peak_gflops']:.1f} GFLOP/s float32"
                 + (f", {peaks[compute]['peak_gflops']:.1f} GFLOP/s {compute}"
                    if compute != "float32" else ""))
        rows = []
        with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
            for name in names:
                row, result = bench_training(name, settings, Path(tmp), source, alongside)
                row["fraction_of_peak"] = (row["zoo_images_per_s"]["median"]
                                           * row["train_flops_per_image"]
                                           / (peaks[compute]["peak_gflops"] * 1e9))
                large = settings.inference_batch or row["batch_size"]
                row["inference"] = bench_inference(result, row["macs"], large, settings.seed,
                                                   Path(tmp), source)
                rows.append(row)
                keras.backend.clear_session()
                progress(format_row(row))
    return {"machine": machine_facts(), "settings": asdict(settings),
            "dtype_policy": settings.dtype_policy, "compute_dtype": compute,
            "matmul_peak": peaks, "rows": rows,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def format_row(row: dict[str, Any]) -> str:
    """One line per model for the terminal."""
    return (f"{row['model']}: zoo {row['zoo_images_per_s']['median']:.1f} img/s "
            f"(CPU time {row['zoo_cpu_images_per_s']['median']:.1f}), "
            f"{100 * row['fraction_of_peak']:.1f}% of peak")
