"""Search spaces derived from a registered builder's keyword hyperparameters.

The space of a model is its builder's signature: every keyword hyperparameter except the ones
that define the task (input shape, classes, head) is a dimension, plus the learning rate (the
one training setting worth searching with the architecture) and, where the builder takes
per-stage lists, ``stages`` (how many entries those lists have: LeNet's conv/pool stages,
VGG's blocks). A dimension is *searched* when it has several choices: by default the generic
ones below (kernel sizes, feature maps, depth, dropout, normalization, learning rate) merged
with the family's ``default_search_space``; ``--space`` narrows or overrides any dimension and
every other dimension stays at the builder's default.

Per-stage dimensions (filters, kernel_sizes, strides, depths, padding) become one keras-tuner
hyperparameter per stage (``filters_1``, ``filters_2``, ...), so each layer gets its own value;
when ``stages`` is searched, the stage-``i`` hyperparameters are conditional on
``stages >= i``. Nothing here imports Keras.
"""

from __future__ import annotations

import ast
import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any, Iterator

from zoo.core.hyperparameter_types import parse_literal
from zoo.core.names import close_matches
from zoo.core.registry import get_model_info

# Builder arguments that define the task or the head, not the architecture: never searched.
INTERFACE_KWARGS = ("input_shape", "num_classes", "include_top", "pooling", "classifier_activation")
# One value per conv stage / VGG block; their list length is the number of stages.
STAGE_KWARGS = ("filters", "kernel_sizes", "strides", "depths", "padding")
# One value per hidden dense layer (their number stays the builder's).
DENSE_KWARGS = ("dense_units",)
# `lo:hi` ranges of these mean powers of two (feature maps and units double, not step by one).
WIDTH_KWARGS = ("filters", "dense_units")
# Training settings searched along with the architecture (they go to the TrainPlan).
TRAINING_DEFAULTS = {"learning_rate": 1e-3}
# What is searched when neither the family nor --space says otherwise: the lecture's list.
GENERIC_CHOICES: dict[str, tuple] = {
    "kernel_sizes": (3, 5, 7),
    "filters": (8, 16, 32, 64, 128, 256),
    "depths": (1, 2, 3),
    "dropout": (0.0, 0.25, 0.5),
    "normalization": ("none", "batch"),
    "learning_rate": (1e-3, 3e-3, 1e-2),
}
STAGES = "stages"


@dataclass(frozen=True)
class Dimension:
    """One searchable hyperparameter: its choices and how it maps to the builder's argument.

    ``layout`` is 'stage' (one value per stage), 'dense' (one per dense layer), 'joint' (each
    choice is a whole list, e.g. AlexNet's kernel-size patterns) or 'scalar'.
    """

    name: str
    choices: tuple
    default: Any
    layout: str = "scalar"

    @property
    def searched(self) -> bool:
        """Whether the tuner varies this dimension (more than one choice)."""
        return len(self.choices) > 1


@dataclass
class SearchSpace:
    """The dimensions of one model's search, keyed by builder/training argument name."""

    model: str
    dimensions: dict[str, Dimension]
    dense_layers: int = 0
    increasing_filters: bool = False
    # Builder arguments pinned outside the space (e.g. the input shape of the data).
    fixed: dict[str, Any] = field(default_factory=dict)

    @property
    def searched(self) -> list[str]:
        """Names of the dimensions with several choices."""
        return [n for n, d in self.dimensions.items() if d.searched]

    def stage_choices(self) -> tuple[int, ...]:
        """The possible numbers of stages (one value when the count is fixed)."""
        dim = self.dimensions.get(STAGES)
        return tuple(dim.choices) if dim else ()

    # -- keras-tuner ------------------------------------------------------------------------
    def declare(self, hp) -> dict[str, Any]:
        """Declare the searched dimensions on a keras-tuner ``HyperParameters``; return values."""
        stages = self.stage_choices()
        if STAGES in self.searched:
            hp.Choice(STAGES, list(stages), ordered=True)
        for name in self.searched:
            dim = self.dimensions[name]
            if name == STAGES:
                continue
            if dim.layout == "stage":
                for i in range(1, max(stages) + 1):
                    active = [s for s in stages if s >= i]
                    if STAGES in self.searched and len(active) < len(stages):
                        with hp.conditional_scope(STAGES, active):
                            _declare_choice(hp, f"{name}_{i}", dim.choices)
                    else:
                        _declare_choice(hp, f"{name}_{i}", dim.choices)
            elif dim.layout == "dense":
                for i in range(1, self.dense_layers + 1):
                    _declare_choice(hp, f"{name}_{i}", dim.choices)
            elif dim.layout == "joint":
                hp.Choice(name, [repr(tuple(c)) for c in dim.choices])
            else:
                _declare_choice(hp, name, dim.choices)
        return dict(hp.values)

    def hyperparameter_names(self, values: dict[str, Any]) -> list[str]:
        """The keras-tuner names that are active for these values, in declaration order."""
        stages = self._stages(values)
        names = [STAGES] if STAGES in self.searched else []
        for name in self.searched:
            dim = self.dimensions[name]
            if name == STAGES:
                continue
            if dim.layout == "stage":
                names += [f"{name}_{i}" for i in range(1, stages + 1)]
            elif dim.layout == "dense":
                names += [f"{name}_{i}" for i in range(1, self.dense_layers + 1)]
            else:
                names.append(name)
        return names

    def _stages(self, values: dict[str, Any]) -> int:
        stages = self.stage_choices()
        return int(values.get(STAGES, stages[0])) if stages else 0

    def resolve(self, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(builder hyperparameters, training settings) for tuner values (missing = default)."""
        stages = self._stages(values)
        builder: dict[str, Any] = dict(self.fixed)
        training: dict[str, Any] = {}
        for name, dim in self.dimensions.items():
            if name == STAGES:
                continue
            if not dim.searched:
                value = dim.choices[0] if dim.choices else dim.default
            elif dim.layout == "stage":
                value = tuple(values[f"{name}_{i}"] for i in range(1, stages + 1))
            elif dim.layout == "dense":
                value = tuple(values[f"{name}_{i}"] for i in range(1, self.dense_layers + 1))
            elif dim.layout == "joint":
                value = ast.literal_eval(values[name])
            else:
                value = values[name]
            (training if name in TRAINING_DEFAULTS else builder)[name] = value
        if stages:
            # Per-stage values left at the builder's default follow the searched stage count.
            for name, dim in self.dimensions.items():
                if dim.layout == "stage" and not dim.searched and name in builder:
                    builder[name] = _fit_length(builder[name], stages)
        return builder, training

    def constraint_violation(self, builder: dict[str, Any]) -> str | None:
        """Why a configuration breaks the space's own rules (no model needed), or None."""
        filters = builder.get("filters")
        if self.increasing_filters and isinstance(filters, (tuple, list)):
            for i in range(1, len(filters)):
                if filters[i] < filters[i - 1]:
                    return (f"feature maps decrease with depth ({', '.join(map(str, filters))}); "
                            f"--increasing-filters asks for non-decreasing counts")
        return None

    # -- enumeration -------------------------------------------------------------------------
    def size(self) -> int:
        """Number of distinct configurations (the grid search's length)."""
        total = 0
        for stages in self.stage_choices() or (0,):
            total += math.prod(len(c) for _, c in self._axes(stages))
        return total

    def _axes(self, stages: int) -> list[tuple[str, tuple]]:
        axes = []
        for name in self.hyperparameter_names({STAGES: stages}):
            if name == STAGES:
                axes.append((name, (stages,)))
                continue
            base = name.rsplit("_", 1)[0] if name not in self.dimensions else name
            dim = self.dimensions[base]
            choices = tuple(repr(tuple(c)) for c in dim.choices) if dim.layout == "joint" \
                else dim.choices
            axes.append((name, choices))
        return axes

    def configurations(self, limit: int, seed: int = 0) -> Iterator[dict[str, Any]]:
        """Up to ``limit`` tuner-value dicts: the first ones in order (smallest choices first,
        i.e. the cheapest models), then random ones, so a large space is probed throughout."""
        seen = 0
        head = limit // 2 if self.size() > limit else limit
        for stages in self.stage_choices() or (0,):
            axes = self._axes(stages)
            for combo in itertools.product(*(c for _, c in axes)):
                if seen >= head:
                    break
                seen += 1
                yield dict(zip((n for n, _ in axes), combo))
        rng = random.Random(seed)
        stage_list = list(self.stage_choices() or (0,))
        while seen < min(limit, self.size()):
            axes = self._axes(rng.choice(stage_list))
            seen += 1
            yield {n: rng.choice(c) for n, c in axes}


def _declare_choice(hp, name: str, choices: tuple) -> None:
    hp.Choice(name, list(choices), ordered=all(isinstance(c, (int, float)) for c in choices))


def _fit_length(value: Any, count: int) -> Any:
    """A per-stage default list shortened or extended (repeating its last entry) to count."""
    if not isinstance(value, (tuple, list)):
        return value
    value = tuple(value)
    return value[:count] if len(value) >= count else value + (value[-1],) * (count - len(value))


# -- parsing --------------------------------------------------------------------------------
def _literal(text: str) -> Any:
    return parse_literal(text)


def parse_choices(name: str, text: str) -> tuple:
    """'3,5' -> (3, 5); 'filters=16:128' -> powers of two 16..128; 'depths=1:3' -> 1, 2, 3;
    'dropout=0:0.5:0.25' -> 0, 0.25, 0.5; '[11,5,3,3,3]|[7,5,3,3,3]' -> whole-list choices."""
    text = text.strip()
    if not text:
        raise ValueError(f"--space {name}= has no choices; give e.g. {name}=3,5 or {name}=16:128")
    if "|" in text:
        choices = tuple(_literal(part.strip()) for part in text.split("|") if part.strip())
    elif text.startswith(("[", "(")):
        choices = (_literal(text),)
    elif ":" in text:
        choices = _parse_range(name, text)
    else:
        choices = tuple(_literal(part.strip()) for part in text.split(",") if part.strip())
    if not choices:
        raise ValueError(f"--space {name}={text} gives no choices")
    if len(set(map(repr, choices))) != len(choices):
        raise ValueError(f"--space {name}={text} repeats a choice")
    return choices


def _parse_range(name: str, text: str) -> tuple:
    parts = [_literal(p.strip()) for p in text.split(":")]
    if len(parts) not in (2, 3) or not all(isinstance(p, (int, float)) for p in parts):
        raise ValueError(f"--space {name}={text}: a range is LO:HI or LO:HI:STEP with numbers")
    lo, hi = parts[0], parts[1]
    if lo > hi:
        raise ValueError(f"--space {name}={text} is an empty range ({lo} > {hi}); write LO:HI "
                         f"with LO <= HI")
    if len(parts) == 3:
        step = parts[2]
        if step <= 0:
            raise ValueError(f"--space {name}={text}: the step must be positive")
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        values = [lo + i * step for i in range(count)]
        return tuple(round(v, 10) if isinstance(v, float) else v for v in values)
    if not all(isinstance(p, int) for p in parts):
        raise ValueError(f"--space {name}={text}: a float range needs a step (LO:HI:STEP) or "
                         f"list the values ({name}=0.001,0.003,0.01)")
    if name in WIDTH_KWARGS:
        values = tuple(2 ** k for k in range(max(lo, 1).bit_length() - 1, hi.bit_length())
                       if lo <= 2 ** k <= hi)
        if not values:
            raise ValueError(f"--space {name}={text} holds no power of two; widths are searched "
                             f"in powers of two, e.g. {name}=16:128")
        return values
    return tuple(range(lo, hi + 1))


def tunable_names(model: str) -> list[str]:
    """Every dimension ``derive_space`` offers for ``model``: builder kwargs + training ones."""
    defaults = get_model_info(model).hyperparameters
    names = [n for n in defaults if n not in INTERFACE_KWARGS]
    if isinstance(defaults.get("filters"), (tuple, list)):
        names.append(STAGES)
    return names + list(TRAINING_DEFAULTS)


def _layout(name: str, default: Any) -> str:
    if name in STAGE_KWARGS:
        return "stage"
    if name in DENSE_KWARGS:
        return "dense"
    return "scalar"


def _normalize_choices(name: str, choices: tuple, default: Any, layout: str) -> tuple[tuple, str]:
    """Check choices against the argument's kind and pick the layout they imply."""
    if any(isinstance(c, (tuple, list)) for c in choices):
        if layout == "scalar" and not isinstance(default, (tuple, list)):
            raise ValueError(f"--space {name}: takes single values, got lists {list(choices)}")
        return tuple(tuple(c) if isinstance(c, (tuple, list)) else (c,) for c in choices), "joint"
    if isinstance(default, (tuple, list)) and layout == "scalar":
        # e.g. AlexNet's per-layer padding written as one value for every layer
        return choices, layout
    if any(isinstance(c, float) for c in choices) and all(isinstance(c, (int, float))
                                                          for c in choices):
        choices = tuple(float(c) for c in choices)
    kinds = {type(c) for c in choices}
    if len(kinds) > 1:
        raise ValueError(f"--space {name}: mixes kinds of values {list(choices)}")
    if name in WIDTH_KWARGS + ("kernel_sizes", "strides", "depths", STAGES) and not all(
            isinstance(c, int) and c >= 1 for c in choices):
        raise ValueError(f"--space {name}: needs positive integers, got {list(choices)}")
    return tuple(sorted(choices)) if kinds <= {int, float} else choices, layout


def derive_space(
    model: str,
    overrides: dict[str, str | tuple] | None = None,
    *,
    only: bool = False,
    increasing_filters: bool = False,
    fixed: dict[str, Any] | None = None,
) -> SearchSpace:
    """The search space of registered ``model``: generic + family choices, then ``overrides``.

    ``overrides`` maps a dimension to its choices (a tuple, or the text after ``--space
    name=``); ``only`` searches just the overridden dimensions; ``fixed`` pins builder
    arguments outside the space (e.g. the input shape). Raises ValueError for unknown names.
    """
    info = get_model_info(model)
    defaults = {**info.hyperparameters, **TRAINING_DEFAULTS}
    names = tunable_names(model)
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in names:
            close = close_matches(name, names)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            why = " (it defines the task, not the architecture)" if name in INTERFACE_KWARGS \
                else ""
            raise ValueError(f"model {model!r} has no searchable hyperparameter {name!r}{why}."
                             f"{hint} Valid names: {', '.join(names)}.")
    fixed = dict(fixed or {})
    for name in fixed:
        if name in overrides:
            raise ValueError(f"{name} is both fixed and searched; drop one of them")
    default_filters = defaults.get("filters")
    stage_count = len(default_filters) if isinstance(default_filters, (tuple, list)) else 0
    defaults[STAGES] = stage_count
    family = {} if only else {**GENERIC_CHOICES, **info.default_search_space}
    dimensions = {}
    for name in names:
        default = defaults[name]
        layout = _layout(name, default)
        if name in overrides:
            raw = overrides[name]
            choices = parse_choices(name, raw) if isinstance(raw, str) else tuple(raw)
        elif name in family and name not in fixed:
            choices = tuple(family[name])
        else:
            choices = (fixed.get(name, default),)
            dimensions[name] = Dimension(name, choices, default,
                                         "joint" if isinstance(default, (tuple, list))
                                         and layout == "scalar" else layout)
            continue
        if name == STAGES:
            layout = "scalar"
        choices, layout = _normalize_choices(name, choices, default, layout)
        dimensions[name] = Dimension(name, choices, default, layout)
    dense = defaults.get("dense_units")
    return SearchSpace(model, dimensions,
                       dense_layers=len(dense) if isinstance(dense, (tuple, list)) else 0,
                       increasing_filters=increasing_filters, fixed=fixed)


def describe(space: SearchSpace) -> str:
    """One line per searched dimension, e.g. 'kernel_sizes (per stage): 3, 5, 7'."""
    lines = []
    for name in space.searched:
        dim = space.dimensions[name]
        where = {"stage": " (per stage)", "dense": " (per dense layer)"}.get(dim.layout, "")
        lines.append(f"{name}{where}: {', '.join(map(str, dim.choices))}")
    return "\n".join(lines)
