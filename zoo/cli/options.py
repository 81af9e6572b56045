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
