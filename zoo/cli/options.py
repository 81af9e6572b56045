"""Option parsing shared by the commands: --set key=value, --input-shape H,W,C, ..."""

from __future__ import annotations

import functools
import math
from dataclasses import fields, replace
from typing import Any

import click

from zoo.core.hyperparameter_types import parse_literal
from zoo.training.dtype_policy import DTYPE_POLICIES
from zoo.training.settings import (
    CLASS_WEIGHTS,
    TRAINING_SETTINGS,
    TrainingSettings,
    setting_defaults,
)


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


# Click types of the shared training settings whose field type alone says too little; the
# others follow the field's type (bool: a flag, int, float, else text).
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


class SizeType(click.ParamType):
    """A size such as 512MiB or 2GiB, as bytes."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) or value is None:
            return value
        try:
            return parse_size(value)
        except click.BadParameter as err:
            self.fail(err.message, param, ctx)


OPTION_TYPES: dict[str, click.ParamType] = {
    "memory_budget": SizeType(),
    "epochs": click.IntRange(min=1),
    "batch_size": click.IntRange(min=1),
    "learning_rate": POSITIVE,
    "train_fraction": click.FloatRange(0, 1, min_open=True),
    "dtype_policy": click.Choice(DTYPE_POLICIES),
    "class_weight": click.Choice(CLASS_WEIGHTS),
    "scale_lr": click.Choice(["linear"]),
    "num_processes": int,
    "process_id": int,
    "coordinator_timeout": POSITIVE,
}
# The data-parallel settings (docs/training.md), offered together by the commands that train.
DISTRIBUTION_SETTINGS = ("devices", "scale_lr", "coordinator", "num_processes", "process_id",
                         "coordinator_timeout")


def setting_help(name: str) -> str:
    """The help text of the shared training setting ``name``."""
    return {f.name: f for f in fields(TrainingSettings)}[name].metadata["help"]


def _setting_option(name: str, default: Any, changes: dict[str, Any]):
    """The click option of the shared training setting ``name`` (see training_options)."""
    spec = {f.name: f for f in fields(TrainingSettings)}[name]
    flag = spec.metadata["flag"]
    attrs: dict[str, Any] = {"default": default, "help": spec.metadata["help"] or None}
    if spec.type == "str" and "/" in flag:
        return _choice_flags(name, default, flag, attrs | changes)
    if spec.type == "bool":
        attrs["is_flag"] = "/" not in flag
    else:
        kind = {"int": int, "float": float}.get(str(spec.type))
        attrs["type"] = OPTION_TYPES.get(name, kind)
        attrs["show_default"] = default is not None
    attrs.update(changes)
    return click.option(flag, name, **attrs)


def _choice_flags(name: str, default: Any, flags: str, attrs: dict[str, Any]):
    """'--stream/--in-memory' for a text setting: one flag per value ('stream', 'in-memory'),
    all into ``name``; giving none keeps ``default``."""
    def decorate(function):
        for i, flag in enumerate(reversed(flags.split("/"))):
            first = i == len(flags.split("/")) - 1  # it carries the help
            function = click.option(flag, name, flag_value=flag.lstrip("-"), default=default,
                                    help=attrs["help"] if first else None)(function)
        return function

    return decorate


def training_options(*names: str, defaults: dict[str, Any] | None = None,
                     **changes: dict[str, Any]):
    """The click options of the shared training settings ``names`` (zoo.training.settings);
    the command receives them as one ``settings`` argument, a TrainingSettings. A command may
    have several such groups (with the same ``defaults``): they fill one record.

    Args:
        names: the settings the command offers, in the order of its help.
        defaults: the command's defaults where they are not TrainingSettings' (they are its
            record's, e.g. ``RunSettings``' 20 epochs: given here so that ``zoo --help`` needs
            no recipe imported; tests/test_settings.py checks they agree); settings the command
            does not offer take these too.
        changes: click attributes of one option for this command (its own help, or type),
            e.g. ``epochs={"help": "Epochs per trial."}``.
    """
    values = setting_defaults(TrainingSettings) | (defaults or {})
    unknown = sorted((set(names) | set(values) | set(changes)) - set(TRAINING_SETTINGS))
    if unknown:
        raise ValueError(f"not training settings: {', '.join(unknown)}")

    def decorate(function):
        @functools.wraps(function)
        def command(*args, **kwargs):
            given = {name: kwargs.pop(name) for name in names}
            # Several groups on one command (to keep its help's order) fill one record.
            earlier = kwargs.pop("settings", None)
            settings = (replace(earlier, **given) if earlier is not None
                        else TrainingSettings(**(values | given)))
            return function(*args, settings=settings, **kwargs)

        for name in reversed(names):
            command = _setting_option(name, values[name], changes.get(name, {}))(command)
        return command

    return decorate


def dataset_options(function):
    """--dataset and --data-dir, shared by every command that reads data."""
    for name in ("data_dir", "dataset"):
        function = _setting_option(name, setting_defaults(TrainingSettings)[name], {})(function)
    return function




deterministic_option = _setting_option("deterministic", False, {})

dtype_policy_option = _setting_option("dtype_policy", None, {})


balanced_sampler_option = click.option(
    "--balanced-sampler", is_flag=True,
    help="A streamed folder (--stream): draw training batches class-balanced (small classes' "
         "images repeat, large ones' are left out each epoch).")


def class_report_lines(result) -> list[str]:
    """The per-class recall/macro F1 line of a finished run (train or transfer)."""
    from zoo.training.class_report import report_lines

    return report_lines(result.class_metrics)
