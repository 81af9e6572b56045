"""`zoo bench`: training and inference speed against hand-written Keras, and the machine's peak;
with --versus-torch, the zoo against its PyTorch peer fed the same way (GPUs)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import click

from zoo.cli.options import input_shape_option, parse_shape
from zoo.training.dtype_policy import DTYPE_POLICIES

BACKENDS = ("tensorflow", "jax", "torch")


def _keras_backend_in_use() -> str | None:
    """The backend of an already imported Keras, else None (then KERAS_BACKEND still applies)."""
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else None


@click.command("bench")
@click.argument("names", nargs=-1)
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Training batch size (default: 128, 16 or 4 by model cost).")
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Training steps per timed repeat (default: a few seconds of work).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Timed repeats (epochs) after the warm-up epoch.")
@input_shape_option
@click.option("--augment", is_flag=True,
              help="Augment: in the zoo's input pipeline vs. layers inside the baseline model.")
@click.option("--dtype-policy", "dtype_policies", multiple=True,
              type=click.Choice(DTYPE_POLICIES),
              help="Keras dtype policy (mixed on GPU; default float32). With --versus-torch, "
                   "repeatable: float32 and/or mixed_bfloat16 (default both).")
@click.option("--inference-batch", type=click.IntRange(min=1), default=None,
              help="Large inference batch (default: the training batch size).")
@click.option("--backend", type=click.Choice(BACKENDS), default=None,
              help="Keras backend (sets KERAS_BACKEND; default: the environment's).")
@click.option("--json", "json_path", default=None, metavar="OUT",
              help="JSON report path (Markdown beside it); default benchmarks/results/.")
@click.option("--note", default="", help="A remark stored with the results (e.g. machine load).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--dataset", default=None,
              help="Time real images: mnist, fashion_mnist, cifar10, cifar100 (after `zoo data "
                   "import`), 'digits', 'tfds:NAME' or a folder, fitted to each model's input "
                   "as `zoo train` does (default: random images).")
@click.option("--data-dir", default=None, help="tensorflow-datasets data directory (tfds:).")
@click.option("--torch/--no-torch", "with_torch", default=True, show_default=True,
              help="Also time the plain PyTorch peer (on the CPU) when PyTorch is installed.")
@click.option("--versus-torch", is_flag=True,
              help="Instead: the zoo against its PyTorch peer on this machine's device, every "
                   "model x --dtype-policy x --feeding, each framework in its own process; "
                   "--batch-size is the largest tried (default 256), smaller ones if it does "
                   "not fit.")
@click.option("--feeding", "feedings", multiple=True, type=click.Choice(["host", "device"]),
              help="With --versus-torch, repeatable: host (each framework's own input path "
                   "from uint8 host arrays) and/or device (data set resident on the device, "
                   "the upper bound); default both.")
@click.option("--peak-size", type=click.IntRange(min=1), default=None,
              help="With --versus-torch: side of the bf16 matmul that measures the peak "
                   "(default 8192 on a GPU, 1024 on a CPU).")
@click.pass_context
def bench_command(ctx, names, batch_size, steps, repeats, input_shape, augment, dtype_policies,
                  inference_batch, backend, json_path, note, seed, dataset, data_dir,
                  with_torch, versus_torch, feedings, peak_size) -> None:
    """Measure training images/s of the zoo vs. a hand-written Keras model, inference speed
    and latency, and the fraction of the machine's matmul peak, for models NAMES (default:
    all registered). Writes JSON and Markdown under benchmarks/results/."""
    if versus_torch:
        _versus_torch(ctx)
        return
    if feedings or peak_size is not None:
        raise click.UsageError("--feeding and --peak-size go with --versus-torch")
    if len(dtype_policies) > 1:
        raise click.UsageError("give one --dtype-policy (or compare several with "
                               "--versus-torch)")
    dtype_policy = dtype_policies[0] if dtype_policies else "float32"
    if backend is not None and _keras_backend_in_use() not in (None, backend):
        # Keras picks its backend once, at import: measure in a fresh process.
        args = [sys.executable, "-m", "zoo.cli", *sys_args(ctx)]
        env = {**os.environ, "KERAS_BACKEND": backend}
        raise SystemExit(subprocess.run(args, env=env).returncode)
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend

    from zoo.bench import BenchSettings, benchmark, write_report
    from zoo.core.registry import list_models

    settings = BenchSettings(batch_size=batch_size, steps=steps, repeats=repeats,
                             input_shape=parse_shape(input_shape), augment=augment,
                             dtype_policy=dtype_policy, inference_batch=inference_batch,
                             seed=seed, note=note, torch=with_torch, dataset=dataset,
                             data_dir=data_dir)
    report = benchmark(list(names) or list_models(), settings, progress=click.echo)
    report["command"] = shlex.join(["zoo", *sys_args(ctx)])
    json_out, md_out = write_report(report, json_path)
    click.echo(f"results: {json_out} and {md_out}")


def _versus_torch(ctx: click.Context) -> None:
    """`zoo bench --versus-torch`: refuse what it does not take, then run and write it."""
    params = ctx.params
    given = [option for option, on in (("--augment", params["augment"]),
                                       ("--dataset", params["dataset"]),
                                       ("--data-dir", params["data_dir"]),
                                       ("--inference-batch", params["inference_batch"]),
                                       ("--no-torch", not params["with_torch"])) if on]
    if given:
        raise click.UsageError(f"{', '.join(given)} cannot go with --versus-torch (random "
                               f"images, training only, PyTorch required)")
    from zoo.bench.peer_jobs import FEEDINGS, PEER_POLICIES
    from zoo.bench.report import default_report_path, write_report
    from zoo.bench.versus_torch import VersusSettings, compare_with_torch, format_versus_row
    from zoo.core.registry import list_models

    settings = VersusSettings(
        dtype_policies=params["dtype_policies"] or PEER_POLICIES,
        feedings=params["feedings"] or FEEDINGS, batch_size=params["batch_size"] or 256,
        steps=params["steps"], repeats=params["repeats"],
        input_shape=parse_shape(params["input_shape"]), peak_size=params["peak_size"],
        seed=params["seed"], backend=params["backend"], note=params["note"])
    command = shlex.join(["zoo", *sys_args(ctx)])
    path = params["json_path"]

    def write(report):  # after the zoo's side and at the end, to the same files
        nonlocal path
        path = path or default_report_path(report)
        report["command"] = command
        return write_report(report, path)

    report = compare_with_torch(list(params["names"]) or list_models(), settings,
                                progress=click.echo, checkpoint=write)
    json_out, md_out = write(report)
    for row in report["rows"]:
        click.echo(format_versus_row(row))
    click.echo(f"results: {json_out} and {md_out}")
    failed = [side for side in ("zoo", "torch") if report[side]["failure"]]
    errors = [row for row in report["rows"]
              if any(row[side] and "error" in row[side] for side in ("zoo", "torch"))]
    if failed or errors:
        raise click.ClickException(
            f"{len(errors)} configuration(s) failed"
            + (f" and {' and '.join(report[s]['failure'] for s in failed)}" if failed else "")
            + f"; the results above and in {json_out} say which")


def sys_args(ctx: click.Context) -> list[str]:
    """The bench command line as given, rebuilt from the parsed parameters."""
    params = ctx.params
    args = ["bench", *params["names"]]
    for key in ("batch_size", "steps", "repeats", "input_shape", "inference_batch", "backend",
                "json_path", "note", "seed", "dataset", "data_dir", "peak_size"):
        value = params[key]
        if value is None or value == "" or (key, value) in (("repeats", 3), ("seed", 0)):
            continue
        option = {"json_path": "--json"}.get(key, "--" + key.replace("_", "-"))
        args += [option, str(value)]
    for policy in params["dtype_policies"]:
        args += ["--dtype-policy", policy]
    for feeding in params["feedings"]:
        args += ["--feeding", feeding]
    for flag, on in (("--augment", params["augment"]), ("--no-torch", not params["with_torch"]),
                     ("--versus-torch", params["versus_torch"])):
        if on:
            args.append(flag)
    return args


COMMANDS = [bench_command]
