"""Mixed precision: the Keras dtype policy a run builds and trains its model under.

``precision:policy=mixed_bfloat16`` is ``zoo train --dtype-policy mixed_bfloat16`` as a recipe,
so that `zoo compare` and sweeps can set it beside other recipes. Variables stay float32, layers
compute in 16 bits, the classifier and the loss in float32 (zoo.training.dtype_policy). Whether it
is
faster depends on the hardware: a GPU's tensor cores (bfloat16 on Ampere and later, float16
with loss scaling, which Keras adds) can be; a CPU without 16-bit matrix units usually is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recipes.base import Recipe, RecipeError, param
from zoo.training.dtype_policy import DTYPE_POLICIES

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan


@dataclass(frozen=True)
class Precision(Recipe):
    """Train under a Keras dtype policy; the run's config.json records it."""

    name = "precision"
    concern = "precision"
    summary = "dtype policy: mixed_bfloat16 (default), mixed_float16 or float32"

    policy: str = param("mixed_bfloat16", "Keras dtype policy of the run",
                        choices=DTYPE_POLICIES)

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        if plan.dtype_policy is not None and plan.dtype_policy != self.policy:
            raise RecipeError(f"recipe {self.spec()!r} sets dtype policy {self.policy} but the "
                              f"run already has {plan.dtype_policy} (from --dtype-policy); "
                              f"keep only one")
        return self.recorded(plan, dtype_policy=self.policy)


RECIPES = (Precision,)
