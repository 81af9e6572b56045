"""Checking a hyperparameter value's type against the builder's default, before building.

``--set filters=abc`` must be refused in one line naming the hyperparameter and the type it
takes, not end in a TypeError deep inside a Keras layer. The builder's default says what a
value may be: an integer default also takes one integer per stage (``kernel_sizes=5`` or
``kernel_sizes=5,3``), a tuple default takes one value or a tuple of the same kind, a string
default takes a string, a float default any finite number, a boolean default a boolean.
"""

from __future__ import annotations

import math
from typing import Any


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _kind(default: Any) -> tuple[str, Any] | None:
    """(what the value may be, its check) for a default, or None when anything goes."""
    if isinstance(default, bool):
        return "True or False", lambda v: isinstance(v, bool)
    if _is_int(default):
        return ("an integer or comma-separated integers",
                lambda v: _is_int(v) or _all(v, _is_int))
    if isinstance(default, float):
        return "a number", _is_number
    if isinstance(default, str):
        return "a word", lambda v: isinstance(v, str)
    if isinstance(default, (tuple, list)) and default:
        items = {type(v) for v in default}
        if items <= {int}:
            return ("an integer or comma-separated integers",
                    lambda v: _is_int(v) or _all(v, _is_int))
        if items <= {int, float}:
            return ("a number or comma-separated numbers",
                    lambda v: _is_number(v) or _all(v, _is_number))
        if items <= {str}:
            return ("a word or comma-separated words",
                    lambda v: isinstance(v, str) or _all(v, lambda x: isinstance(x, str)))
    return None


def _all(value: Any, check) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(check(v) for v in value)


def check_hyperparameter_types(model: str, defaults: dict[str, Any],
                               hparams: dict[str, Any]) -> None:
    """Raise ValueError naming the first hyperparameter whose value has the wrong type.

    Args:
        model: the registered model's name, for the message.
        defaults: the builder's keyword defaults (``ModelInfo.hyperparameters``).
        hparams: the values to check; names the builder does not take are not checked here.
    """
    for name, value in hparams.items():
        if name not in defaults or value is None:
            continue
        kind = _kind(defaults[name])
        if kind is not None and not kind[1](value):
            raise ValueError(
                f"hyperparameter {name!r} of {model} takes {kind[0]} (default "
                f"{_shown(defaults[name])}), got {_shown(value)!r}; e.g. --set "
                f"{name}={_shown(defaults[name])}"
            )


def _shown(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)
