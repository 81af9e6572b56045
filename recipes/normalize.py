"""Normalization recipes: the four of Wu & He (2018), through the builders' hyperparameter.

Every zoo builder places the chosen layer conv -> norm -> activation (and drops the conv bias,
which the norm makes redundant), so a recipe only has to set ``normalization``.
The lecture's claim to check with `zoo compare`: batch norm reaches the same accuracy in fewer
iterations and tolerates a higher learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from recipes.base import Recipe, set_hparams

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan


@dataclass(frozen=True)
class _Normalization(Recipe):
    concern = "normalization"
    kind = "none"  # the builders' `normalization` value

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        return set_hparams(self, plan, normalization=self.kind)


@dataclass(frozen=True)
class BatchNorm(_Normalization):
    """Batch normalization (Ioffe & Szegedy 2015) after every conv and hidden dense layer."""

    name = "batchnorm"
    kind = "batch"
    summary = "batch normalization after each conv/dense layer (conv -> BN -> activation)"


@dataclass(frozen=True)
class LayerNorm(_Normalization):
    """Layer normalization (Ba et al. 2016): per image over (H, W, C); independent of batch."""

    name = "layernorm"
    kind = "layer"
    summary = "layer normalization: each image over all its channels (no batch statistics)"


@dataclass(frozen=True)
class InstanceNorm(_Normalization):
    """Instance normalization (Ulyanov et al. 2016): per image and per channel."""

    name = "instancenorm"
    kind = "instance"
    summary = "instance normalization: each image and channel on its own"


@dataclass(frozen=True)
class GroupNorm(_Normalization):
    """Group normalization (Wu & He 2018): per image over groups of channels (up to 32)."""

    name = "groupnorm"
    kind = "group"
    summary = "group normalization: each image over groups of channels (gcd(channels, 32))"


RECIPES = (BatchNorm, LayerNorm, InstanceNorm, GroupNorm)
