"""Time to accuracy on real data: wall seconds from process start until a model reaches a
target accuracy on the official test split, the zoo against its PyTorch peer (issue 16).

    python benchmarks/time_to_accuracy.py --json benchmarks/results/time-to-accuracy.json

Tasks (the recipes of benchmarks/data_results_gpu.sh, which reached these accuracies on CPU):
- ``lenet5_modern-mnist``: lenet5_modern to 99.0 % on MNIST; batch 128, Adam 1e-3, cosine
  decay over 20 epochs, augmentation without flips (rotation, zoom, translation, brightness,
  contrast; black fill);
- ``vgg_small-fashion``: vgg_small with batch norm at 32x32x1 to 92 % on Fashion-MNIST;
  batch 128, Adam 1e-3, cosine decay over 15 epochs, augmentation with horizontal flips and
  no rotation.

Each (task, framework) runs in a fresh process, so imports, data loading and compilation
count: the clock starts just before the process is started. After every epoch the model is
evaluated on the official 10,000-image test split; the run stops at the first epoch that
reaches the target, or when its recipe's epochs or its time limit run out (then it is reported
as not reached, with its curve). The learning-rate schedule is sized for the recipe's full
epochs, whether or not the run stops early.

- The zoo trains through ``zoo.training.train.train`` (its input path, compile settings and recipes)
  with the test split as its validation data, so Keras evaluates it after every epoch.
- The PyTorch peer (``benchmarks.torch_models``: the same layers) is trained the same way:
  glorot-uniform weights and zero biases as Keras initialises them, Adam with Keras' epsilon
  (1e-7), the same cosine decay per step, batch norm with Keras' epsilon and momentum, a
  DataLoader over uint8 tensors (one indexed gather per batch, pinned memory, non-blocking
  copies), cast and scaled on the device. Differences that remain: the loss is cross-entropy
  on logits (Keras: on clipped softmax probabilities), Adam's epsilon is added after the bias
  correction (Keras: before), and augmentation draws the same transforms from the same
  ranges per image but resamples once with one affine map where Keras' layers resample once
  per transform (rotation, zoom, translation: slightly less blur in PyTorch).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

FRAMEWORKS = ("zoo", "torch")
MARK = "TTA "  # prefix of the child's report lines on stdout


@dataclass(frozen=True)
class Augmentation:
    """Strengths as the zoo's augment recipe takes them (fractions; 0 = off)."""

    flip: bool = False
    rotation: float = 0.04
    zoom: float = 0.1
    translate: float = 0.1
    brightness: float = 0.1
    contrast: float = 0.1

    def recipe(self) -> str:
        """The zoo recipe spec with these strengths and a black (constant) fill."""
        return (f"augment:flip={'horizontal' if self.flip else 'none'},fill=constant,"
                f"rotation={self.rotation},zoom={self.zoom},translate={self.translate},"
                f"brightness={self.brightness},contrast={self.contrast}")


@dataclass(frozen=True)
class Task:
    """One model, data set, recipe and target accuracy."""

    key: str
    model: str
    dataset: str
    target: float
    epochs: int
    time_limit_s: float
    input_shape: tuple[int, int, int]
    batch_norm: bool = False
    augmentation: Augmentation = field(default_factory=Augmentation)
    batch_size: int = 128
    learning_rate: float = 1e-3
    seed: int = 0
    dtype_policy: str = "float32"
    train_limit: int | None = None  # the first N training images only (CPU checks)

    def recipes(self) -> list[str]:
        """The zoo recipes of the run, as `zoo train --recipe` takes them."""
        return ((["batchnorm"] if self.batch_norm else [])
                + [self.augmentation.recipe(), "schedule:kind=cosine"])


TASKS = {
    "lenet5_modern-mnist": Task("lenet5_modern-mnist", "lenet5_modern", "mnist", 0.99, 20,
                                45, (32, 32, 1)),
    "vgg_small-fashion": Task("vgg_small-fashion", "vgg_small", "fashion_mnist", 0.92, 15,
                              75, (32, 32, 1), batch_norm=True,
                              augmentation=Augmentation(flip=True, rotation=0.0)),
}


def task_data(task: Task):
    """The task's data set with the official test split as validation data, fitted to the
    model's input, and cut to ``train_limit`` training images if set."""
    from zoo.data.dataset import fit_dataset
    from zoo.data.load import load_dataset

    data = load_dataset(task.dataset)
    if task.train_limit:
        data = replace(data, x_train=data.x_train[:task.train_limit],
                       y_train=data.y_train[:task.train_limit])
    data = replace(data, x_val=data.x_test, y_val=data.y_test)
    return fit_dataset(data, task.input_shape)


def zoo_child(task: Task, data, start: float, emit: Callable[..., None]) -> None:
    """Train the task through zoo.training.train's loop, stopping at the target."""
    import keras

    from recipes import apply_recipes
    from zoo.training.train import TrainPlan, train

    emit(event="ready", seconds=time.time() - start, backend=keras.backend.backend(),
         versions=_keras_versions(), device=_keras_device())

    class TestAccuracyClock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            accuracy = float(logs["val_accuracy"])
            emit(event="epoch", epoch=epoch + 1, test_accuracy=accuracy,
                 seconds=time.time() - start)
            if accuracy >= task.target:
                self.model.stop_training = True

    plan = TrainPlan(model=task.model, hparams={"input_shape": task.input_shape},
                     dataset=task.dataset, epochs=task.epochs, batch_size=task.batch_size,
                     learning_rate=task.learning_rate, seed=task.seed,
                     dtype_policy=task.dtype_policy)
    plan = apply_recipes(plan, task.recipes())
    plan.callbacks.append(TestAccuracyClock())
    train(plan, data=data, verbose=0, write_run=False)


def _keras_versions() -> dict[str, str]:
    import keras

    versions = {"keras": keras.__version__}
    if keras.backend.backend() == "jax":
        import jax

        versions["jax"] = jax.__version__
    return versions


def _keras_device() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    return "cpu (TensorFlow)" if keras.backend.backend() == "tensorflow" else "?"


def torch_child(task: Task, data, start: float, emit: Callable[..., None]) -> None:
    """Train the task's PyTorch peer the same way, stopping at the target."""
    from benchmarks.time_to_accuracy_torch import train_to_target

    train_to_target(task, data, start, emit)


CHILDREN = {"zoo": zoo_child, "torch": torch_child}


def run_child(task: Task, framework: str, log_dir: Path | None = None) -> dict[str, Any]:
    """Run one (task, framework) in a fresh process under its time limit; its report."""
    log = log_dir / f"{task.key}-{framework}.log" if log_dir else Path(os.devnull)
    with open(log, "w") as stderr:
        return _run_child(task, framework, stderr)


def _run_child(task: Task, framework: str, stderr) -> dict[str, Any]:
    reports: list[dict[str, Any]] = []
    start = time.time()  # the clock: just before the process exists
    command = [sys.executable, str(Path(__file__).resolve()), "--child", framework,
               "--task-json", json.dumps(asdict(task)), "--start", repr(start)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True,
                               start_new_session=True, cwd=ROOT)

    def read() -> None:
        for line in process.stdout:
            if line.startswith(MARK):
                reports.append(json.loads(line[len(MARK):]))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stopped = None
    try:
        process.wait(timeout=task.time_limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the child and anything it started
        process.wait()
        stopped = f"time limit ({task.time_limit_s:g} s)"
    reader.join(timeout=10)
    return summarize(task, framework, reports, stopped, process.returncode)


def summarize(task: Task, framework: str, reports: list[dict[str, Any]], stopped: str | None,
              returncode: int) -> dict[str, Any]:
    """One result row from a child's report lines."""
    ready = next((r for r in reports if r["event"] == "ready"), {})
    curve = [[r["epoch"], r["test_accuracy"], r["seconds"]] for r in reports
             if r["event"] == "epoch"]
    reached = next((row for row in curve if row[1] >= task.target), None)
    if stopped is None:
        stopped = ("target" if reached else "epochs" if returncode == 0
                   else f"error (exit code {returncode})")
    return {
        "task": task.key, "framework": framework, "model": task.model,
        "dataset": task.dataset, "target": task.target, "dtype_policy": task.dtype_policy,
        "reached": reached is not None,
        "seconds_to_target": reached[2] if reached else None,
        "epochs_to_target": reached[0] if reached else None,
        "best_test_accuracy": max((row[1] for row in curve), default=None),
        "curve": curve, "startup_seconds": ready.get("seconds"), "stopped": stopped,
        "time_limit_s": task.time_limit_s, "device": ready.get("device"),
        "versions": ready.get("versions"), "backend": ready.get("backend"),
        "train_limit": task.train_limit,
    }


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table, with zoo/PyTorch time ratios per task."""
    lines = ["| task | framework | target | reached | seconds from process start | epochs | "
             "best test accuracy | start-up s | stopped by |",
             "|---|---|---:|---|---:|---:|---:|---:|---|"]
    for row in rows:
        seconds = row["seconds_to_target"]
        best = row["best_test_accuracy"]
        startup = row["startup_seconds"]
        lines.append(
            f"| {row['task']} | {row['framework']} | {row['target']:.3f} | "
            f"{'yes' if row['reached'] else 'no'} | "
            f"{'-' if seconds is None else f'{seconds:.1f}'} | "
            f"{row['epochs_to_target'] or len(row['curve'])} | "
            f"{'-' if best is None else f'{best:.4f}'} | "
            f"{'-' if startup is None else f'{startup:.1f}'} | {row['stopped']} |")
    for key in dict.fromkeys(row["task"] for row in rows):
        seconds = {row["framework"]: row["seconds_to_target"] for row in rows
                   if row["task"] == key}
        if seconds.get("zoo") and seconds.get("torch"):
            lines.append(f"\n{key}: zoo / PyTorch time to target = "
                         f"{seconds['zoo'] / seconds['torch']:.2f}x (below 1: the zoo is faster)")
    return "\n".join(lines)


def child_main(framework: str, task_json: str, start: float) -> None:
    """Entry point of a child process: train and print report lines."""
    task = Task(**json.loads(task_json))
    task = replace(task, input_shape=tuple(task.input_shape),
                   augmentation=Augmentation(**task.augmentation))

    def emit(**report: Any) -> None:
        print(MARK + json.dumps(report), flush=True)

    # Loading counts: the clock started before this process did.
    CHILDREN[framework](task, task_data(task), start, emit)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help=f"comma-separated, from {', '.join(TASKS)}")
    parser.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                        help="comma-separated: zoo, torch")
    parser.add_argument("--dtype-policy", default="float32",
                        choices=("float32", "mixed_bfloat16"))
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds per run (default: each task's own, 45 and 75)")
    parser.add_argument("--json", default=None, help="write the rows to this file")
    parser.add_argument("--log-dir", default=None, help="keep each child's stderr here")
    check = parser.add_argument_group("CPU checks (not the issue's tasks)")
    check.add_argument("--dataset", default=None, help="train on this data set instead")
    check.add_argument("--target", type=float, default=None, help="this target instead")
    check.add_argument("--epochs", type=int, default=None, help="this many epochs instead")
    check.add_argument("--train-limit", type=int, default=None,
                       help="the first N training images only")
    parser.add_argument("--child", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--task-json", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def chosen_tasks(args: argparse.Namespace) -> list[Task]:
    """The tasks asked for, with the command line's overrides applied."""
    tasks = []
    for key in filter(None, args.tasks.split(",")):
        if key not in TASKS:
            raise SystemExit(f"unknown task {key!r}; choose from {', '.join(TASKS)}")
        overrides = {name: value for name, value in (
            ("dataset", args.dataset), ("target", args.target), ("epochs", args.epochs),
            ("train_limit", args.train_limit), ("time_limit_s", args.time_limit))
            if value is not None}
        tasks.append(replace(TASKS[key], dtype_policy=args.dtype_policy, **overrides))
    return tasks


def main(argv: list[str] | None = None) -> list[dict[str, Any]] | None:
    """Run every chosen (task, framework) in turn; print the table, write the JSON."""
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.task_json, args.start)
        return None
    frameworks = [f for f in args.frameworks.split(",") if f]
    unknown = sorted(set(frameworks) - set(FRAMEWORKS))
    if unknown:
        raise SystemExit(f"unknown framework(s) {', '.join(unknown)}; use zoo, torch")
    log_dir = Path(args.log_dir) if args.log_dir else None
    if log_dir:
        log_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for task in chosen_tasks(args):
        for framework in frameworks:
            rows.append(run_child(task, framework, log_dir))
            print(f"{task.key} {framework}: {rows[-1]['stopped']}, "
                  f"{rows[-1]['seconds_to_target']} s to target", file=sys.stderr, flush=True)
    report = {"rows": rows, "command": " ".join(sys.argv),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow (default)")}
    if args.json:
        from zoo.core.runs import write_json_atomic

        write_json_atomic(Path(args.json), report)
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
