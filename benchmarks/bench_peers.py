"""The zoo against the same models written by hand: is it as fast as writing `model.fit` myself?

    python benchmarks/bench_peers.py lenet5 vgg_small [--no-torch] [any option of zoo bench]

For each model this is `zoo bench`'s measurement (``zoo.bench.benchmark``: the zoo's training
path, inference, the matmul peak), with two peers timed beside the zoo on the same images:

- the hand-written Keras baseline (``benchmarks.keras_peer``) fitted with ``model.fit`` on NumPy
  arrays with default settings, one epoch after each of the zoo's epochs so that both see the
  same machine load; with ``--augment`` the baseline puts the augment recipe's layers at the
  front of the model, as a user would;
- the plain PyTorch peer (``benchmarks.torch_peer``, a DataLoader over float tensors on the
  CPU), trained in a process of its own after the Keras paths so that TensorFlow's thread pools
  do not compete with PyTorch's; skipped without PyTorch, left out with ``--no-torch``.

Each row gets the baseline's images/s, the zoo / baseline ratios (median, per repeat, CPU time)
and a ``torch`` entry; the Markdown gets a table for each peer.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

if not __package__:  # run as a script: the checkout, not benchmarks/, holds the packages
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.keras_peer import build_baseline
from benchmarks.script_command import ScriptCommand
from benchmarks.torch_peer import run_in_own_process
from benchmarks.versus_report import ratio_text
from recipes.augment import Augment
from zoo.bench import benchmark, format_markdown, write_report
from zoo.bench.report import rate_text, yes_no
from zoo.bench.run import BenchSettings, Workload
from zoo.bench.timing import epoch_timer, rates
from zoo.cli.bench import bench_options, bench_settings, use_backend
from zoo.core.registry import list_models
from zoo.data.batches import to_float


class Peers:
    """The hand-written peers of one workload, timed beside the zoo (``benchmark``'s
    ``alongside``): the Keras baseline one epoch after each zoo epoch, PyTorch at the end."""

    def __init__(self, work: Workload, settings: BenchSettings, torch: bool):
        self.work, self.settings, self.torch = work, settings, torch
        preprocessing = (Augment().for_dataset(work.dataset).make_layers(settings.seed)
                         if settings.augment else ())
        self.baseline = build_baseline(work.name, work.input_shape, work.num_classes,
                                       preprocessing)
        self.timer = epoch_timer()
        if self.baseline is not None:
            # Default settings: jit_compile="auto" is no XLA on a CPU-only TF machine, XLA
            # under JAX; one step per call.
            self.baseline.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                                  metrics=["accuracy"])
            self.x_float = to_float(work.data.x_train)

    def after_epoch(self, epoch: int) -> None:
        """One baseline epoch, right after the zoo's epoch ``epoch``."""
        if self.baseline is not None:
            self.baseline.fit(self.x_float, self.work.data.y_train,
                              batch_size=self.work.batch_size, epochs=1, verbose=0,
                              callbacks=[self.timer])

    def add_to(self, row: dict[str, Any]) -> None:
        """The baseline's and PyTorch's images/s and their ratios to the zoo's, into ``row``."""
        images = self.work.batch_size * self.work.steps
        zoo_rate, zoo_cpu = row["zoo_images_per_s"], row["zoo_cpu_images_per_s"]
        row.update(baseline_images_per_s=None, baseline_cpu_images_per_s=None, ratio=None,
                   cpu_ratio=None, baseline_dtype_policy=None, baseline_jit_compile=None)
        if self.baseline is not None:
            rate, cpu = rates(images, self.timer.wall), rates(images, self.timer.cpu)
            # Repeat i of the zoo ran right before repeat i of the baseline, under one load.
            row.update(baseline_images_per_s=rate, baseline_cpu_images_per_s=cpu,
                       ratio=zoo_rate["median"] / rate["median"],
                       cpu_ratio=zoo_cpu["median"] / cpu["median"],
                       repeat_ratios=[z / b for z, b in zip(zoo_rate["values"],
                                                            rate["values"])],
                       baseline_dtype_policy=self.baseline.dtype_policy.name,
                       baseline_jit_compile=bool(self.baseline.jit_compile))
        torch = None
        if self.torch:
            with tempfile.TemporaryDirectory(prefix="zoo-peers-") as tmp:
                torch = run_in_own_process(
                    self.work.name, self.work.data.x_train, self.work.data.y_train,
                    self.work.num_classes, self.work.batch_size, self.settings.seed,
                    1 + self.settings.repeats, Path(tmp),
                    dtype_policy=self.settings.dtype_policy)
        if torch is not None:
            rate, cpu = rates(images, torch["wall"]), rates(images, torch["cpu"])
            row["torch"] = {"version": torch["version"], "own_process": True,
                            "dtype_policy": torch["dtype_policy"],
                            "images_per_s": rate, "cpu_images_per_s": cpu,
                            "ratio": zoo_rate["median"] / rate["median"],
                            "cpu_ratio": zoo_cpu["median"] / cpu["median"],
                            "min_repeat_ratio": zoo_rate["min"] / rate["max"]}


def bench_peers(names: list[str], settings: BenchSettings, torch: bool = True,
                progress=lambda line: None) -> dict[str, Any]:
    """`zoo bench`'s report of ``names`` with the peers' measurements in every row."""
    report = benchmark(names, settings, progress,
                       alongside=lambda work: Peers(work, settings, torch))
    return {**report, "peers": {"keras": True, "torch": torch}}


def format_peers_markdown(report: dict[str, Any]) -> str:
    """`zoo bench`'s Markdown, then the zoo against the hand-written Keras and PyTorch peers."""
    lines = [
        "", "Hand-written Keras baseline (`model.fit` on NumPy arrays), training images/s: "
        "median [min–max]. Ratio = zoo / baseline medians (wall clock); worst repeat = the "
        "lowest zoo / baseline ratio of the repeats, each zoo repeat timed right before its "
        "baseline repeat; CPU ratio uses process CPU time.", "",
        "| model | zoo | baseline | ratio | worst repeat | CPU ratio | XLA zoo / baseline |",
        "|---|---|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(
            f"| {row['model']} | {rate_text(row['zoo_images_per_s'])} | "
            f"{rate_text(row['baseline_images_per_s'])} | {ratio_text(row['ratio'])} | "
            f"{ratio_text(min(row['repeat_ratios']) if row.get('repeat_ratios') else None)} | "
            f"{ratio_text(row['cpu_ratio'])} | {yes_no(row.get('zoo_jit_compile'))} / "
            f"{yes_no(row.get('baseline_jit_compile'))} |")
    torch_rows = [row for row in report["rows"] if row.get("torch")]
    if torch_rows:
        lines += [
            "", "PyTorch peer (plain DataLoader + Adam loop, "
            f"torch {torch_rows[0]['torch']['version']}, in its own process after the Keras "
            "paths), training images/s, same data; worst = the zoo's slowest repeat / "
            "PyTorch's fastest:", "",
            "| model | zoo | PyTorch | ratio | worst | CPU ratio |", "|---|---|---|---|---|---|"]
        lines += [f"| {row['model']} | {rate_text(row['zoo_images_per_s'])} | "
                  f"{rate_text(row['torch']['images_per_s'])} | "
                  f"{ratio_text(row['torch']['ratio'])} | "
                  f"{ratio_text(row['torch'].get('min_repeat_ratio'))} | "
                  f"{ratio_text(row['torch']['cpu_ratio'])} |" for row in torch_rows]
    return format_markdown(report) + "\n".join(lines) + "\n"


@click.command(cls=ScriptCommand)
@bench_options
@click.option("--torch/--no-torch", "with_torch", default=True, show_default=True,
              help="Also time the plain PyTorch peer (on the CPU) when PyTorch is installed.")
@click.pass_context
def main(ctx: click.Context, names, with_torch, **params) -> None:
    """`zoo bench` for models NAMES (default: all registered), with the hand-written Keras
    baseline timed beside the zoo and the PyTorch peer after it. Writes JSON and Markdown
    under benchmarks/results/."""
    use_backend(params["backend"], [str(Path(__file__).resolve()), *sys.argv[1:]])
    report = bench_peers(list(names) or list_models(), bench_settings(ctx.params), with_torch,
                         progress=click.echo)
    report["command"] = shlex.join(["python", "benchmarks/bench_peers.py", *sys.argv[1:]])
    for row in report["rows"]:
        torch = row.get("torch")
        click.echo(f"{row['model']}: zoo / hand-written Keras {ratio_text(row['ratio'])}"
                   + (f", zoo / PyTorch {ratio_text(torch['ratio'])}" if torch else ""))
    json_out, md_out = write_report(report, params["json_path"], format_peers_markdown)
    click.echo(f"results: {json_out} and {md_out}")


if __name__ == "__main__":
    main()
