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
from zoo.core.runs import SAVED_MODELS
from zoo.training.settings import TrainingSettings


def trial_seed(seed: int, trial_id: str) -> int:
    """The seed of keras-tuner trial ``trial_id`` in a search seeded ``seed``: seed + its
    number, so a trial's result does not depend on which process (or worker) trains it."""
    return seed + int(trial_id) if trial_id.isdigit() else seed

ALGORITHMS = ("random", "hyperband", "bayesian", "grid")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
ROLES = ("local", "chief", "worker")
COSTS = ("params", "macs", "latency")
PRUNERS = ("median", "asha")


@dataclass(kw_only=True)
class SearchPlan(TrainingSettings):
    """Everything one search needs; ``zoo tune`` fills it from the command line.

    The training settings of every trial (and of the retrained best) are TrainingSettings':
    5 epochs per trial, deterministic (same command, same table); the learning rate and
    optimizer where the space does not search them.
    """

    model: str = field(kw_only=False)
    epochs: int = 5
    deterministic: bool = True
    algorithm: str = "random"
    max_trials: int | None = 10
    objective: str = "val_accuracy"
    space: dict[str, Any] = field(default_factory=dict)
    only: bool = False
    increasing_filters: bool = False
    max_params: int | None = None
    max_macs: int | None = None
    max_latency_ms: float | None = None
    cost: str | None = None  # params, macs or latency: record it and report the Pareto front
    prune: str | None = None  # median or asha: stop hopeless trials early
    prune_warmup_epochs: int = 1
    prune_warmup_trials: int = 3
    isolate: bool = False  # each trial in a fresh process
    out: str | None = None
    input_shape: tuple[int, int, int] | None = None
    retrain: bool = True
    retrain_epochs: int | None = None
    compare_default: bool = False
    role: str = "local"
    oracle: str | None = None  # host:port of the chief oracle
    tuner_id: str | None = None
    workers: int | None = None  # N: this process serves the chief, N processes train here

    @property
    def out_dir(self) -> Path:
        """Where results go (default saved_models/tuning/MODEL)."""
        return Path(self.out) if self.out else SAVED_MODELS / "tuning" / self.model

    @property
    def measures_latency(self) -> bool:
        """Whether each configuration's inference latency is measured before training."""
        return self.cost == "latency" or self.max_latency_ms is not None

    @property
    def direction(self) -> str:
        """'max' for accuracies, 'min' for losses."""
        return "min" if self.objective.endswith("loss") else "max"


@dataclass
class TrialRow:
    """One line of the trials table.

    ``status`` is keras-tuner's (COMPLETED, INVALID = refused before training, FAILED) or
    PRUNED: keras-tuner's COMPLETED for a trial a pruner stopped early (it keeps its score, so
    the oracle learns from it), shown apart because it did not train to the end.
    """

    trial_id: str
    status: str
    values: dict[str, Any]
    objective: float | None
    params: int | None
    macs: int | None
    seconds: float | None
    note: str = ""
    latency_ms: float | None = None
    epochs: int | None = None  # epochs trained (a pruned trial stopped after this many)
    batch_size: int | None = None  # the batch it trained with (halved after running out of memory)
    rss_mb: float | None = None  # resident memory of the process that ran it, at its end


@dataclass
class SearchResult:
    """What a search produced (a worker only reports the trials it ran)."""

    out: Path
    space: SearchSpace
    rows: list[TrialRow]
    best: TrialRow | None = None
    front: list[TrialRow] = field(default_factory=list)  # the Pareto front, with --cost
    best_hparams: dict[str, Any] = field(default_factory=dict)
    best_run: Path | None = None
    best_test_metrics: dict[str, float] = field(default_factory=dict)
    default_run: Path | None = None
    default_test_metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    trials_run_here: int = 0
    distribution: str = "none"
