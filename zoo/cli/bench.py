"""`zoo bench`: training and inference speed of the zoo's own models, and the machine's peak.
The comparisons with hand-written Keras and PyTorch are scripts in benchmarks/, beside the
package (benchmarks/bench_peers.py, benchmarks/versus_torch.py)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from typing import Any, Callable

import click

from zoo.cli.options import input_shape_option, parse_shape
from zoo.training.dtype_policy import DTYPE_POLICIES

BACKENDS = ("tensorflow", "jax", "torch")
# Options of `zoo bench` before the peers left the package, and where they went.
MOVED = {"--versus-torch": "python benchmarks/versus_torch.py NAMES (the PyTorch peer on a GPU)",
         "--torch": "python benchmarks/bench_peers.py NAMES (hand-written Keras and PyTorch)",
         "--no-torch": "python benchmarks/bench_peers.py NAMES --no-torch (hand-written Keras)"}


def _keras_backend_in_use() -> str | None:
    """The backend of an already imported Keras, else None (then KERAS_BACKEND still applies)."""
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None


def use_backend(backend: str | None, rerun: list[str]) -> None:
    """Make ``backend`` Keras' backend: set KERAS_BACKEND before Keras is imported, or, once
    it is imported with another one (Keras picks its backend once), run ``rerun`` (this
    command's arguments after the interpreter) in a fresh process and exit with its status."""
    if backend is None:
        return
    if _keras_backend_in_use() not in (None, backend):
        env = {**os.environ, "KERAS_BACKEND": backend}
        raise SystemExit(subprocess.run([sys.executable, *rerun], env=env).returncode)
    os.environ["KERAS_BACKEND"] = backend


def _moved(flag: str) -> Callable:
    """A hidden ``flag`` that only says where it went."""
    def refuse(ctx: click.Context, param: click.Parameter, given: bool) -> None:
        if given:
            raise click.UsageError(f"{flag} moved out of the package: run {MOVED[flag]} in a "
                                   f"checkout of cnn-zoo")
    return click.option(flag, is_flag=True, hidden=True, expose_value=False, callback=refuse)


BENCH_OPTIONS = [
    click.argument("names", nargs=-1),
    click.option("--batch-size", type=click.IntRange(min=1), default=None,
                 help="Training batch size (default: 128, 16 or 4 by model cost)."),
    click.option("--steps", type=click.IntRange(min=1), default=None,
                 help="Training steps per timed repeat (default: a few seconds of work)."),
    click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
                 help="Timed repeats (epochs) after the warm-up epoch."),
    input_shape_option,
    click.option("--augment", is_flag=True,
                 help="Augment in the zoo's input pipeline (the augment recipe)."),
    click.option("--dtype-policy", type=click.Choice(DTYPE_POLICIES), default="float32",
                 show_default=True, help="Keras dtype policy (mixed ones on GPUs)."),
    click.option("--inference-batch", type=click.IntRange(min=1), default=None,
                 help="Large inference batch (default: the training batch size)."),
    click.option("--backend", type=click.Choice(BACKENDS), default=None,
                 help="Keras backend (sets KERAS_BACKEND; default: the environment's)."),
    click.option("--json", "json_path", default=None, metavar="OUT",
                 help="JSON report path (Markdown beside it); default benchmarks/results/."),
    click.option("--note", default="", help="A remark stored with the results (e.g. load)."),
    click.option("--seed", default=0, show_default=True, type=int),
    click.option("--dataset", default=None,
                 help="Time real images: mnist, fashion_mnist, cifar10, cifar100 (after `zoo "
                      "data import`), 'digits', 'tfds:NAME' or a folder, fitted to each "
                      "model's input as `zoo train` does (default: random images)."),
    click.option("--data-dir", default=None, help="tensorflow-datasets data directory (tfds:)."),
]


def bench_options(command: Callable) -> Callable:
    """The options of `zoo bench` on ``command`` (benchmarks/bench_peers.py takes them too)."""
    for option in reversed(BENCH_OPTIONS):
        command = option(command)
    return command


def bench_settings(params: dict[str, Any]):
    """The BenchSettings of parsed `zoo bench` options."""
    from zoo.bench import BenchSettings

    return BenchSettings(
        batch_size=params["batch_size"], steps=params["steps"], repeats=params["repeats"],
        input_shape=parse_shape(params["input_shape"]), augment=params["augment"],
        dtype_policy=params["dtype_policy"], inference_batch=params["inference_batch"],
        seed=params["seed"], note=params["note"], dataset=params["dataset"],
        data_dir=params["data_dir"])


@click.command("bench")
@bench_options
@_moved("--versus-torch")
@_moved("--torch")
@_moved("--no-torch")
@click.pass_context
def bench_command(ctx, names, **params) -> None:
    """Measure the zoo's training images/s (wall clock and CPU time), inference speed and
    latency, and the fraction of the machine's matmul peak, for models NAMES (default: all
    registered). Writes JSON and Markdown under benchmarks/results/. Against hand-written
    Keras and PyTorch: benchmarks/bench_peers.py and benchmarks/versus_torch.py."""
    use_backend(params["backend"], ["-m", "zoo.cli", *sys_args(ctx)])
    from zoo.bench import benchmark, write_report
    from zoo.core.registry import list_models

    report = benchmark(list(names) or list_models(), bench_settings(ctx.params),
                       progress=click.echo)
    report["command"] = shlex.join(["zoo", *sys_args(ctx)])
    json_out, md_out = write_report(report, ctx.params["json_path"])
    click.echo(f"results: {json_out} and {md_out}")


def sys_args(ctx: click.Context) -> list[str]:
    """The bench command line as given, rebuilt from the parsed parameters."""
    params = ctx.params
    args = [ctx.info_name or "bench", *params["names"]]
    for key in ("batch_size", "steps", "repeats", "input_shape", "dtype_policy",
                "inference_batch", "backend", "json_path", "note", "seed", "dataset",
                "data_dir"):
        value = params[key]
        if value is None or value == "" or (key, value) in (("repeats", 3), ("seed", 0),
                                                            ("dtype_policy", "float32")):
            continue
        option = {"json_path": "--json"}.get(key, "--" + key.replace("_", "-"))
        args += [option, str(value)]
    if params["augment"]:
        args.append("--augment")
    return args


COMMANDS = [bench_command]
