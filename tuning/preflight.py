"""Configurations checked by building them, before anything trains.

A configuration is refused when the space's own rules forbid it (``--increasing-filters``),
when it cannot be built (zoo.geometry says a window does not fit its feature map, a list has
the wrong length) or when it is over ``--max-params``. ``tuning.tuners`` refuses such trials;
``tuning.search`` checks that a space holds at least one buildable configuration before it
loads any data. Keras is imported inside the functions.
"""

from __future__ import annotations

from typing import Any

from tuning.space import SearchSpace
from zoo.geometry import GeometryError
from zoo.layer_table import summarize
from zoo.registry import build

# Configurations the pre-flight check builds at most when looking for a valid one.
PREFLIGHT_LIMIT = 64


class RejectedConfiguration(Exception):
    """A configuration refused before training (impossible geometry, too many parameters)."""

    def __init__(self, reason: str, params: int | None = None, macs: int | None = None):
        super().__init__(reason)
        self.reason, self.params, self.macs = reason, params, macs


def check_configuration(space: SearchSpace, values: dict[str, Any],
                        max_params: int | None):
    """Build the configuration; return (model, params, MACs) or raise RejectedConfiguration."""

    builder, _ = space.resolve(values)
    violation = space.constraint_violation(builder)
    if violation:
        raise RejectedConfiguration(violation)
    try:
        model = build(space.model, **builder)
    except (GeometryError, ValueError) as err:
        raise RejectedConfiguration(f"{type(err).__name__}: {err}") from None
    params = model.count_params()
    macs = summarize(model).total_macs
    if max_params is not None and params > max_params:
        raise RejectedConfiguration(f"{params:,} parameters > --max-params {max_params:,}",
                                    params, macs)
    return model, params, macs


def refusal_reason(space: SearchSpace, values: dict[str, Any], max_params: int | None) -> str:
    """Why a configuration was refused (recomputed: keras-tuner's protocol carries no text)."""
    import keras

    try:
        check_configuration(space, values, max_params)
        return "refused"
    except RejectedConfiguration as rejected:
        return rejected.reason
    finally:
        keras.backend.clear_session()


def find_valid_configuration(space: SearchSpace, max_params: int | None,
                             limit: int = PREFLIGHT_LIMIT) -> dict[str, Any]:
    """A buildable configuration of the space, or ValueError saying why there is none."""
    import keras

    reasons: dict[str, int] = {}
    tried = 0
    for values in space.configurations(limit):
        tried += 1
        try:
            check_configuration(space, values, max_params)
            keras.backend.clear_session()
            return values
        except RejectedConfiguration as rejected:
            reasons[rejected.reason] = reasons.get(rejected.reason, 0) + 1
    keras.backend.clear_session()
    common = max(reasons, key=reasons.get) if reasons else "no configuration"
    scope = ("none of its" if tried >= space.size() else
             f"none of {tried} configurations tried (smallest first, then random) of its")
    raise ValueError(f"the search space of {space.model} has no valid configuration: {scope} "
                     f"{space.size():,} configurations can be built; most common reason: "
                     f"{common}. Widen --space (smaller kernels, more stages' room) or raise "
                     f"--max-params")
