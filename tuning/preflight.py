"""Configurations checked by building them, before anything trains.

A configuration is refused when the space's own rules forbid it (``--increasing-filters``),
when it cannot be built (zoo.core.geometry says a window does not fit its feature map, a list has
the wrong length) or when it is over a budget: ``--max-params``, ``--max-macs`` (both counted
on the built model) or ``--max-latency-ms`` (measured: batch 1, inference, the median of
``LATENCY_REPEATS`` calls on this machine). ``tuning.tuners`` refuses such trials;
``tuning.search`` checks that a space holds at least one buildable configuration before it
loads any data. Keras is imported inside the functions.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from tuning.space import SearchSpace
from zoo.core.geometry import GeometryError
from zoo.core.layer_table import summarize
from zoo.core.registry import build

# Configurations the pre-flight check builds at most when looking for a valid one.
PREFLIGHT_LIMIT = 64
# Timed batch-1 inferences per configuration (after warm-up calls that trace the function);
# the median ignores the odd slow call on a shared machine.
LATENCY_REPEATS = 20
LATENCY_WARMUP = 3


@dataclass(frozen=True)
class Budget:
    """Limits a configuration must meet to be trained (None: no limit)."""

    max_params: int | None = None
    max_macs: int | None = None
    max_latency_ms: float | None = None
    measure_latency: bool = False  # also measure latency without a limit (--cost latency)

    @property
    def needs_latency(self) -> bool:
        """Whether each configuration's latency is measured."""
        return self.measure_latency or self.max_latency_ms is not None

    def over(self, params: float | None, macs: float | None,
             latency_ms: float | None) -> str | None:
        """Why these measurements break the budget, or None when they fit."""
        if self.max_params is not None and params is not None and params > self.max_params:
            return f"{params:,.0f} parameters > --max-params {self.max_params:,}"
        if self.max_macs is not None and macs is not None and macs > self.max_macs:
            return f"{macs:,.0f} MACs > --max-macs {self.max_macs:,}"
        if (self.max_latency_ms is not None and latency_ms is not None
                and latency_ms > self.max_latency_ms):
            return (f"latency {latency_ms:.3f} ms > --max-latency-ms {self.max_latency_ms:g} "
                    f"(batch 1, median of {LATENCY_REPEATS}, this machine)")
        return None


@dataclass
class Measure:
    """What a configuration costs: parameters, MACs per image, latency (if measured)."""

    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None


def inference_latency_ms(model, repeats: int = LATENCY_REPEATS) -> float:
    """Median wall-clock milliseconds of one batch-1 inference (``predict_on_batch``)."""
    import numpy as np

    x = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    for _ in range(LATENCY_WARMUP):  # the first calls trace and compile the predict function
        model.predict_on_batch(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)  # returns NumPy: the call has finished when it returns
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


class RejectedConfiguration(Exception):
    """A configuration refused before training (impossible geometry, over a budget)."""

    def __init__(self, reason: str, measure: Measure | None = None):
        super().__init__(reason)
        self.reason, self.measure = reason, measure or Measure()


def measure_model(model, latency: bool = False) -> Measure:
    """Parameters and MACs per image of a built model, and its latency if asked."""
    return Measure(params=model.count_params(), macs=summarize(model).total_macs,
                   latency_ms=inference_latency_ms(model) if latency else None)


def check_configuration(space: SearchSpace, values: dict[str, Any], budget: Budget):
    """Build the configuration; return (model, Measure) or raise RejectedConfiguration."""

    builder, _ = space.resolve(values)
    violation = space.constraint_violation(builder)
    if violation:
        raise RejectedConfiguration(violation)
    try:
        model = build(space.model, **builder)
    except (GeometryError, ValueError) as err:
        raise RejectedConfiguration(f"{type(err).__name__}: {err}") from None
    measure = measure_model(model)
    reason = budget.over(measure.params, measure.macs, None)
    if reason is None and budget.needs_latency:  # only what fits the counted budgets is timed
        measure.latency_ms = inference_latency_ms(model)
        reason = budget.over(measure.params, measure.macs, measure.latency_ms)
    if reason:
        raise RejectedConfiguration(reason, measure)
    return model, measure


def refusal_reason(space: SearchSpace, values: dict[str, Any], budget: Budget,
                   measured: Measure | None = None) -> str:
    """Why a configuration was refused (keras-tuner's protocol carries no text).

    The budgets are checked against what the trial recorded (a latency measured again could
    differ); other reasons are found by building the configuration again.
    """
    import keras

    if measured is not None:
        reason = budget.over(measured.params, measured.macs, measured.latency_ms)
        if reason:
            return reason
    try:
        check_configuration(space, values, Budget(budget.max_params, budget.max_macs))
        return "refused"
    except RejectedConfiguration as rejected:
        return rejected.reason
    finally:
        keras.backend.clear_session()


def find_valid_configuration(space: SearchSpace, budget: Budget,
                             limit: int = PREFLIGHT_LIMIT) -> dict[str, Any]:
    """A buildable configuration of the space, or ValueError saying why there is none."""
    import keras

    reasons: dict[str, int] = {}
    tried = 0
    for values in space.configurations(limit):
        tried += 1
        try:
            check_configuration(space, values, budget)
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
                     f"the budget (--max-params, --max-macs, --max-latency-ms)")
