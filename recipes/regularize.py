"""Regularizers the lecture names: dropout (dense and spatial) and weight decay (L2).

Both only set builder hyperparameters. Keras' dropout is "inverted": it scales the kept units
by 1/(1 - rate) during training, so at inference the layer is the identity and the weights need
no rescaling (tests/test_recipes.py checks this).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recipes.base import Recipe, RecipeError, param, set_hparams

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan


@dataclass(frozen=True)
class Dropout(Recipe):
    """Dropout after each hidden dense layer and spatial dropout (whole feature maps) after
    each conv block (Srivastava et al. 2014; Tompson et al. 2015)."""

    name = "dropout"
    concern = "dropout"
    summary = "dropout after hidden dense layers, spatial dropout after conv blocks"

    rate: float = param(0.5, "fraction of dense units dropped", low=0, high=1, high_open=True)
    spatial: float = param(0.1, "fraction of conv feature maps dropped", low=0, high=1,
                           high_open=True)

    def validate(self) -> None:
        if self.rate == 0 and self.spatial == 0:
            raise RecipeError("recipe 'dropout' with rate=0 and spatial=0 drops nothing; "
                              "leave the recipe out instead")

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        return set_hparams(self, plan, dropout=self.rate, conv_dropout=self.spatial)


@dataclass(frozen=True)
class WeightDecay(Recipe):
    """L2 weight decay: adds ``l2 * sum(w**2)`` of every conv/dense kernel to the loss."""

    name = "weight-decay"
    concern = "weight_decay"
    summary = "L2 penalty on conv and dense kernels (the builders' weight_decay)"

    l2: float = param(5e-4, "L2 factor per kernel weight", low=0, high=1, low_open=True)

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        return set_hparams(self, plan, weight_decay=self.l2)


RECIPES = (Dropout, WeightDecay)
