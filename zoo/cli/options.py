"""Option parsing shared by the commands: --set key=value, --input-shape H,W,C, ..."""

from __future__ import annotations

import math
from typing import Any

import click

from zoo.core.hyperparameter_types import parse_literal
from zoo.training.dtype_policy import DTYPE_POLICIES


class FiniteFloat(click.FloatRange):
    """A float in a range that also refuses nan and inf (which FloatRange lets through)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# Learning rates, tolerances: > 0. Dropout rates: in [0, 1).
POSITIVE = FiniteFloat(min=0, min_open=True)
RATE = FiniteFloat(min=0, max=1, max_open=True)


def parse_value(text: str) -> Any:
    """A Python literal if the text is one ('5', '0.5', '16,32', 'None'), a boolean word
    (true/false, yes/no, any case), else the string."""
    return parse_literal(text)


def parse_assignments(pairs: tuple[str, ...], what: str = "--set") -> dict[str, Any]:
    """['filters=16,32', 'activation=relu'] -> {'filters': (16, 32), 'activation': 'relu'}."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected key=value, got {pair!r}", param_hint=what)
        result[key.strip()] = parse_value(value.strip())
    return result


def parse_shape(text: str | None) -> tuple[int, int, int] | None:
    """'32,32,3' -> (32, 32, 3); None stays None."""
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise click.BadParameter(f"expected H,W,C with positive integers, got {text!r}",
                                 param_hint="--input-shape")
    return shape


set_option = click.option(
    "--set", "assignments", multiple=True, metavar="KEY=VALUE",
    help="Override a builder hyperparameter, e.g. --set filters=16,32 --set activation=relu.",
)
input_shape_option = click.option(
    "--input-shape", default=None, metavar="H,W,C", help="Model input shape, e.g. 28,28,1.",
)


def dataset_options(function):
    """--dataset and --data-dir, shared by every command that reads data."""
    function = click.option("--data-dir", default=None,
                            help="tensorflow-datasets data directory (for tfds: names).")(function)
    return click.option("--dataset", default="digits", show_default=True,
                        help="'digits' (embedded); mnist, fashion_mnist, cifar10, cifar100 "
                             "(after `zoo data import`); 'tfds:NAME'; or a folder of class "
                             "sub-folders.")(function)


SIZE_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20,
              "mib": 2**20, "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40,
              "tib": 2**40}


def parse_size(value: str | None) -> int | None:
    """'512MiB', '2GB', '3.5g' or a number of bytes -> bytes (powers of 1024)."""
    if value is None:
        return None
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(value))
    if not match or match.group(2).lower() not in SIZE_UNITS or float(match.group(1)) <= 0:
        raise click.BadParameter(f"{value!r} is not a size; write e.g. 512MiB, 2GiB or 3.5g")
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])


def input_options(function):
    """--stream / --in-memory, --memory-budget and --skip-bad-images: the input path
    (zoo.data.input_choice) of every command that trains or reads an image folder."""
    function = click.option(
        "--skip-bad-images", is_flag=True,
        help="While streaming, skip unreadable images (counted and reported) instead of "
             "stopping at the first.")(function)
    function = click.option(
        "--memory-budget", default=None, metavar="SIZE",
        help="Stream an image folder whose images, decoded at the model's input size, exceed "
             "this (e.g. 2GiB); default a quarter of the available memory.")(function)
    function = click.option(
        "--in-memory", "input_mode", flag_value="in-memory",
        help="Decode the whole data set into memory first (the fast path for small sets).")(
        function)
    return click.option(
        "--stream", "input_mode", flag_value="stream",
        help="Stream an image folder: decode, resize and batch it on the fly in parallel "
             "workers, with flat memory. Default: stream only past --memory-budget.")(function)


deterministic_option = click.option(
    "--deterministic", is_flag=True,
    help="Same seed, same history: TensorFlow picks deterministic kernels and runs "
         "augmentation serially (slower; see docs/benchmarks.md).",
)

dtype_policy_option = click.option(
    "--dtype-policy", default=None,
    type=click.Choice(DTYPE_POLICIES),
    help="Keras dtype policy of the run (default float32): mixed_bfloat16 computes layers in "
         "bfloat16 with float32 variables, classifier and loss (GPUs with tensor cores, CPUs "
         "with AVX512_BF16/AMX; docs/training.md). zoo train: same as --recipe "
         "precision:policy=...",
)
