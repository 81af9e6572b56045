"""The records of a search: its plan, one row per trial, and what it produced.

Plain dataclasses shared by ``tuning.search`` (which runs a plan), ``tuning.tuners`` (which
prints a row per trial) and ``tuning.results`` (which writes the tables); nothing here imports
Keras or keras-tuner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuning.space import SearchSpace
from zoo.runs import SAVED_MODELS

ALGORITHMS = ("random", "hyperband", "bayesian", "grid")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
ROLES = ("local", "chief", "worker")


@dataclass
class SearchPlan:
    """Everything one search needs; ``zoo tune`` fills it from the command line."""

    model: str
    dataset: str = "digits"
    data_dir: str | None = None
    algorithm: str = "random"
    max_trials: int | None = 10
    epochs: int = 5
    objective: str = "val_accuracy"
    space: dict[str, Any] = field(default_factory=dict)
    only: bool = False
    increasing_filters: bool = False
    max_params: int | None = None
    out: str | None = None
    batch_size: int = 32
    train_fraction: float = 1.0
    seed: int = 0
    input_shape: tuple[int, int, int] | None = None
    retrain: bool = True
    retrain_epochs: int | None = None
    compare_default: bool = False
    role: str = "local"
    oracle: str | None = None  # host:port of the chief oracle
    tuner_id: str | None = None

    @property
    def out_dir(self) -> Path:
        """Where results go (default saved_models/tuning/MODEL)."""
        return Path(self.out) if self.out else SAVED_MODELS / "tuning" / self.model

    @property
    def direction(self) -> str:
        """'max' for accuracies, 'min' for losses."""
        return "min" if self.objective.endswith("loss") else "max"


@dataclass
class TrialRow:
    """One line of the trials table."""

    trial_id: str
    status: str
    values: dict[str, Any]
    objective: float | None
    params: int | None
    macs: int | None
    seconds: float | None
    note: str = ""


@dataclass
class SearchResult:
    """What a search produced (a worker only reports the trials it ran)."""

    out: Path
    space: SearchSpace
    rows: list[TrialRow]
    best: TrialRow | None = None
    best_hparams: dict[str, Any] = field(default_factory=dict)
    best_run: Path | None = None
    best_test_metrics: dict[str, float] = field(default_factory=dict)
    default_run: Path | None = None
    default_test_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    trials_run_here: int = 0
    distribution: str = "none"
