"""`zoo bench`: training and inference speed against hand-written Keras, and the machine's peak."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import click

from zoo.cli.options import input_shape_option, parse_shape

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
@click.option("--dtype-policy", type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16"]),
              default="float32", show_default=True, help="Keras dtype policy (mixed on GPU).")
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
              help="Also time plain PyTorch LeNet-5/vgg_small when PyTorch is installed.")
@click.pass_context
def bench_command(ctx, names, batch_size, steps, repeats, input_shape, augment, dtype_policy,
                  inference_batch, backend, json_path, note, seed, dataset, data_dir,
                  with_torch) -> None:
    """Measure training images/s of the zoo vs. a hand-written Keras model, inference speed
    and latency, and the fraction of the machine's matmul peak, for models NAMES (default:
    all registered). Writes JSON and Markdown under benchmarks/results/."""
    if backend is not None and _keras_backend_in_use() not in (None, backend):
        # Keras picks its backend once, at import: measure in a fresh process.
        args = [sys.executable, "-m", "zoo.cli", *sys_args(ctx)]
        env = {**os.environ, "KERAS_BACKEND": backend}
        raise SystemExit(subprocess.run(args, env=env).returncode)
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend

    from zoo.bench import BenchSettings, benchmark, write_report
    from zoo.registry import list_models

    settings = BenchSettings(batch_size=batch_size, steps=steps, repeats=repeats,
                             input_shape=parse_shape(input_shape), augment=augment,
                             dtype_policy=dtype_policy, inference_batch=inference_batch,
                             seed=seed, note=note, torch=with_torch, dataset=dataset,
                             data_dir=data_dir)
    report = benchmark(list(names) or list_models(), settings, progress=click.echo)
    report["command"] = shlex.join(["zoo", *sys_args(ctx)])
    json_out, md_out = write_report(report, json_path)
    click.echo(f"results: {json_out} and {md_out}")


def sys_args(ctx: click.Context) -> list[str]:
    """The bench command line as given, rebuilt from the parsed parameters."""
    params = ctx.params
    args = ["bench", *params["names"]]
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
    if not params["with_torch"]:
        args.append("--no-torch")
    return args


COMMANDS = [bench_command]
