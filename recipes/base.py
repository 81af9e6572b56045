"""What a recipe is: a small, frozen, validated value that changes one concern of a TrainPlan.

A recipe's parameters are its dataclass fields, declared with ``param`` (default, help text,
range or choices). Parameters are checked when the value is created, so a bad spec fails before
any data is loaded or any model is built.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from zoo.core.hyperparameter_types import as_boolean
from zoo.core.registry import get_model_info

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan


class RecipeError(ValueError):
    """A recipe spec is unknown, has a bad parameter, or clashes with another recipe."""


def param(default: Any, help: str, *, low: float | None = None, high: float | None = None,
          choices: tuple | None = None, low_open: bool = False, high_open: bool = False):
    """A recipe parameter: a dataclass field carrying its help text and allowed values."""
    return field(default=default, metadata={
        "help": help, "low": low, "high": high, "choices": choices,
        "low_open": low_open, "high_open": high_open,
    })


@dataclass(frozen=True)
class ParamInfo:
    """One parameter of a recipe, for `zoo recipes` and error messages."""

    name: str
    type: type
    default: Any
    help: str
    low: float | None
    high: float | None
    choices: tuple | None
    low_open: bool
    high_open: bool

    @property
    def allowed(self) -> str:
        """The allowed values in words: '[0, 1)' or 'one of none, horizontal'."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        if self.low is None and self.high is None:
            return self.type.__name__
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{self.type.__name__} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Recipe:
    """Base of every recipe: subclasses declare ``name``, ``concern``, ``summary`` and fields.

    Two recipes of the same ``concern`` (e.g. two normalizations, two schedules) cannot be
    combined. ``rank`` fixes the order in which ``apply_recipes`` applies them, so the order a
    user lists recipes in never changes the result.
    """

    name: ClassVar[str]
    concern: ClassVar[str]
    summary: ClassVar[str]
    rank: ClassVar[int] = 50

    def __post_init__(self) -> None:
        for info in self.params():
            value = getattr(self, info.name)
            object.__setattr__(self, info.name, _check_value(self.name, info, value))
        self.validate()

    def validate(self) -> None:
        """Checks that involve several parameters; raise RecipeError."""

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        """A new plan with this recipe's concern changed (the input plan is left alone)."""
        raise NotImplementedError

    @classmethod
    def params(cls) -> list[ParamInfo]:
        """The recipe's parameters with types, defaults and allowed values."""
        hints = typing.get_type_hints(cls)
        infos = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            kind = hints[f.name]
            kind = {"int": int, "float": float, "str": str, "bool": bool}.get(kind, kind)
            infos.append(ParamInfo(f.name, kind, f.default, meta.get("help", ""),
                                   meta.get("low"), meta.get("high"), meta.get("choices"),
                                   meta.get("low_open", False), meta.get("high_open", False)))
        return infos

    def spec(self) -> str:
        """The spec that recreates this value: the name plus its non-default parameters."""
        changed = [f"{p.name}={getattr(self, p.name)}" for p in self.params()
                   if getattr(self, p.name) != p.default]
        return self.name + (":" + ",".join(changed) if changed else "")

    def recorded(self, plan: "TrainPlan", **changes: Any) -> "TrainPlan":
        """``plan`` with ``changes`` made and this recipe's spec appended to ``plan.recipes``."""
        return dataclasses.replace(plan, recipes=[*plan.recipes, self.spec()], **changes)


def _check_value(recipe: str, info: ParamInfo, value: Any) -> Any:
    """The value converted to the parameter's type, or a RecipeError saying what is allowed."""
    where = f"recipe {recipe!r} parameter {info.name!r}"
    try:
        if info.type is bool:
            value = as_boolean(value)
            if value is None:
                raise ValueError
        elif info.type is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif info.type is float:
            value = float(value)
        else:
            value = str(value)
    except (TypeError, ValueError):
        raise RecipeError(f"{where} must be {info.allowed}, got {value!r}") from None
    if info.choices and value not in info.choices:
        raise RecipeError(f"{where} must be {info.allowed}, got {value!r}")
    too_low = info.low is not None and (value <= info.low if info.low_open else value < info.low)
    too_high = info.high is not None and (value >= info.high if info.high_open
                                          else value > info.high)
    if too_low or too_high:
        hint = f" ({info.help})" if info.help else ""
        raise RecipeError(f"{where} must be {info.allowed}, got {value!r}{hint}")
    return value


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """'dropout:rate=0.3,spatial=0' -> ('dropout', {'rate': '0.3', 'spatial': '0'})."""
    name, _, rest = spec.strip().partition(":")
    name = name.strip().lower().replace("_", "-")
    if not name:
        raise RecipeError(f"empty recipe name in {spec!r}; write NAME or NAME:key=value,...")
    values = {}
    for pair in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"recipe spec {spec!r}: expected key=value, got {pair!r}")
        key = key.strip().replace("-", "_")
        if key in values:
            raise RecipeError(f"recipe spec {spec!r} sets {key!r} twice")
        values[key] = value.strip()
    return name, values


def set_hparams(recipe: Recipe, plan: "TrainPlan", **values: Any) -> "TrainPlan":
    """``plan`` with builder hyperparameters set, refusing a model without them or a clash
    with a value the user already set (e.g. --set normalization=layer plus --recipe batchnorm)."""

    accepted = get_model_info(plan.model).hyperparameters
    for key, value in values.items():
        if key not in accepted:
            raise RecipeError(
                f"recipe {recipe.name!r} sets the builder hyperparameter {key!r}, which model "
                f"{plan.model!r} does not take; drop the recipe for this model"
            )
        if key in plan.hparams and plan.hparams[key] != value:
            raise RecipeError(
                f"recipe {recipe.spec()!r} sets {key}={value!r} but the run already has "
                f"{key}={plan.hparams[key]!r} (from --set or another recipe); keep only one"
            )
    return recipe.recorded(plan, hparams={**plan.hparams, **values})
