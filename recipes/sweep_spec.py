"""What one parsed ``zoo compare --sweep`` is: the setting it changes and its values.

A record of its own, below both the sweep runner (``recipes.sweep``) and its report
(``recipes.sweep_report``), so neither imports the other's module to name it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Swept on a log axis: the lecture's ranges span orders of magnitude.
LOG_KEYS = {"learning_rate", "batch_size"}

@dataclass(frozen=True)
class Sweep:
    """One parsed ``--sweep``: what it changes and the values, already converted and checked."""

    key: str  # as written, e.g. 'lr', 'normalization', 'dropout:rate'
    kind: str  # 'plan' (a TrainPlan field), 'hparam' (builder argument) or 'recipe'
    target: str  # the plan field, builder argument or 'recipe:param' it sets
    values: tuple

    @property
    def log_scale(self) -> bool:
        """Whether the plot's x axis is logarithmic (learning rate, batch size)."""
        return self.kind == "plan" and self.target in LOG_KEYS

    @property
    def slug(self) -> str:
        """A file-name-safe name for this sweep's outputs."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", self.target).strip("-")
