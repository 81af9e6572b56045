"""Recipes: small named values that each change one concern of a training run, and compose.

>>> from recipes import apply_recipes
>>> plan = apply_recipes(TrainPlan("vgg_small"), ["augment", "dropout:rate=0.3", "batchnorm"])

Each recipe edits one part of a ``zoo.training.train.TrainPlan`` — builder hyperparameters
(normalization, dropout, weight decay), the input pipeline (augmentation) or compile/fit
settings (learning-rate schedule, callbacks, dtype policy) — and ``zoo.training.train.train`` runs
the
plan. Recipes of the same concern exclude each other, and they are applied in a fixed order,
so the order they are listed in never changes the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from recipes import augment, normalize, precision, regularize, schedule
from recipes.base import ParamInfo, Recipe, RecipeError, parse_spec
from zoo.core.names import did_you_mean

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan

# The one registry of recipes: name -> recipe class.
REGISTRY: dict[str, type[Recipe]] = {
    cls.name: cls
    for module in (augment, regularize, normalize, schedule, precision)
    for cls in module.RECIPES
}

__all__ = ["REGISTRY", "Recipe", "RecipeError", "ParamInfo", "apply_recipes", "get_recipe",
           "list_recipes", "parse_recipe", "parse_recipes"]


def list_recipes() -> list[type[Recipe]]:
    """Every registered recipe class, in application order."""
    return sorted(REGISTRY.values(), key=lambda cls: (cls.rank, cls.concern, cls.name))


def get_recipe(name: str) -> type[Recipe]:
    """The recipe class called ``name``; unknown names fail with close matches."""
    key = name.strip().lower().replace("_", "-")
    if key not in REGISTRY:
        raise RecipeError(f"unknown recipe {name!r}{did_you_mean(key, list(REGISTRY))}; "
                          f"`zoo recipes` lists them: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[key]


def parse_recipe(spec: "str | Recipe") -> Recipe:
    """'dropout:rate=0.3' -> Dropout(rate=0.3, ...); a Recipe value is returned as it is."""
    if isinstance(spec, Recipe):
        return spec
    name, values = parse_spec(spec)
    cls = get_recipe(name)
    known = [p.name for p in cls.params()]
    for key in values:
        if key not in known:
            allowed = ", ".join(known) if known else "none"
            raise RecipeError(f"recipe {cls.name!r} has no parameter {key!r}"
                              f"{did_you_mean(key, known)}; its parameters: {allowed}")
    return cls(**values)


def parse_recipes(specs: Iterable["str | Recipe"]) -> list[Recipe]:
    """Parse every spec and refuse two recipes of one concern (e.g. two normalizations)."""
    recipes = [parse_recipe(spec) for spec in specs]
    by_concern: dict[str, Recipe] = {}
    for recipe in recipes:
        other = by_concern.setdefault(recipe.concern, recipe)
        if other is not recipe:
            raise RecipeError(
                f"recipes {other.spec()!r} and {recipe.spec()!r} both set the "
                f"{recipe.concern.replace('_', ' ')}; keep one of them"
            )
    return sorted(recipes, key=lambda r: (r.rank, r.concern))


def apply_recipes(plan: "TrainPlan", specs: Iterable["str | Recipe"]) -> "TrainPlan":
    """A new plan with every recipe applied; all specs are checked before any is applied."""
    for recipe in parse_recipes(specs):
        plan = recipe.apply(plan)
    return plan
