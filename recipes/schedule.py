"""Learning-rate schedules: the lecture's "learning rates should fall over time".

``constant``, ``step`` (multiply by ``factor`` every ``every`` epochs), ``cosine`` (cosine decay
to ``final`` x lr, optionally after ``warmup`` epochs of linear warm-up) and ``plateau``
(multiply by ``factor`` when the validation loss stalls for ``patience`` epochs). All are Keras
schedules or callbacks; the recipe only chooses and sizes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from recipes.base import Recipe, RecipeError, param

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan

KINDS = ("constant", "step", "cosine", "plateau")


@dataclass(frozen=True)
class Schedule(Recipe):
    """A learning-rate schedule; the value is also the plan's ``lr_schedule`` callable."""

    name = "schedule"
    concern = "schedule"
    summary = "learning rate over time: constant, step decay, cosine (+warm-up), plateau"

    kind: str = param("cosine", "which schedule", choices=KINDS)
    warmup: int = param(0, "epochs of linear warm-up from 0 (cosine only)", low=0)
    factor: float = param(0.1, "step/plateau: multiply the rate by this", low=0, high=1,
                          low_open=True, high_open=True)
    every: int = param(0, "step: epochs between drops (0: a third of the run)", low=0)
    patience: int = param(2, "plateau: epochs without val_loss improvement", low=1)
    final: float = param(0.0, "cosine: final rate as a fraction of the initial one", low=0,
                         high=1, high_open=True)

    def validate(self) -> None:
        if self.warmup and self.kind != "cosine":
            raise RecipeError(f"recipe 'schedule': warmup applies to kind=cosine only, not "
                              f"kind={self.kind}; drop warmup or use kind=cosine")

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        if self.warmup >= plan.epochs:
            raise RecipeError(f"recipe {self.spec()!r}: warm-up of {self.warmup} epochs leaves "
                              f"nothing of a {plan.epochs}-epoch run; lower warmup")
        if self.kind == "plateau":
            import keras

            plateau = keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=self.factor, patience=self.patience,
                min_lr=plan.learning_rate * 1e-3)
            return self.recorded(plan, callbacks=[*plan.callbacks, plateau])
        if self.kind == "constant":
            return self.recorded(plan)
        return self.recorded(plan, lr_schedule=self)

    def __call__(self, learning_rate: float, steps_per_epoch: int, epochs: int) -> Any:
        """The Keras LearningRateSchedule for a run of ``epochs`` x ``steps_per_epoch``."""
        import keras

        schedules = keras.optimizers.schedules
        if self.kind == "step":
            every = self.every or max(1, epochs // 3)
            # Exponential decay in staircase mode is exactly step decay.
            return schedules.ExponentialDecay(learning_rate, decay_steps=every * steps_per_epoch,
                                              decay_rate=self.factor, staircase=True)
        if self.kind == "cosine":
            warmup_steps = self.warmup * steps_per_epoch
            decay_steps = max(1, (epochs - self.warmup) * steps_per_epoch)
            if not warmup_steps:
                return schedules.CosineDecay(learning_rate, decay_steps, alpha=self.final)
            return schedules.CosineDecay(0.0, decay_steps, alpha=self.final,
                                         warmup_target=learning_rate, warmup_steps=warmup_steps)
        raise RecipeError(f"schedule kind {self.kind!r} has no LearningRateSchedule")


@dataclass(frozen=True)
class LearningRateScale(Recipe):
    """Multiply the run's learning rate, so an ablation can pair e.g. batch norm with 10x."""

    name = "lr"
    concern = "learning_rate"
    rank = 10  # before `schedule`, which sizes its plateau floor from the final rate
    summary = "multiply the learning rate (e.g. lr:scale=10 beside batchnorm in zoo compare)"

    scale: float = param(10.0, "multiplier of --lr", low=0, high=1e4, low_open=True)

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        return self.recorded(plan, learning_rate=plan.learning_rate * self.scale)


RECIPES = (Schedule, LearningRateScale)
