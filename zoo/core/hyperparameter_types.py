"""Checking a hyperparameter value's type against the builder's default, before building.

``--set filters=abc`` must be refused in one line naming the hyperparameter and the type it
takes, not end in a TypeError deep inside a Keras layer. The builder's default says what a
value may be: an integer default also takes one integer per stage (``kernel_sizes=5`` or
``kernel_sizes=5,3``), a tuple default takes one value or a tuple of the same kind, a string
default takes a string, a float default any finite number, a boolean default a boolean.

Booleans are spelled as a shell user types them: true/false, yes/no (any case) and 1/0 all
work wherever the zoo takes one (``--set include_top=false``, recipe and sweep values).
"""

from __future__ import annotations

import ast
import math
from typing import Any

TRUE_WORDS = ("true", "yes")
FALSE_WORDS = ("false", "no")


def parse_literal(text: str) -> Any:
    """A Python literal ('5', '0.5', '16,32', 'None'), a boolean word (true/false, yes/no in
    any case), else the string itself."""
    word = text.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def as_boolean(value: Any) -> bool | None:
    """``value`` as a boolean when it spells one (True/False, 1/0, true/false, yes/no), else
    None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in (*TRUE_WORDS, "1") or word in (*FALSE_WORDS, "0"):
            return word in (*TRUE_WORDS, "1")
    return None


def coerce_booleans(defaults: dict[str, Any], hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` with the values of boolean hyperparameters (by their default) turned into
    booleans where they spell one (1/0, 'false', ...); other values are left to the check."""
    result = dict(hparams)
    for name, value in hparams.items():
        if isinstance(defaults.get(name), bool) and as_boolean(value) is not None:
            result[name] = as_boolean(value)
    return result


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _kind(default: Any) -> tuple[str, Any] | None:
    """(what the value may be, its check) for a default, or None when anything goes."""
    if isinstance(default, bool):
        return ("true or false (also 1/0, yes/no)",
                lambda v: as_boolean(v) is not None)
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
