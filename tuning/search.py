"""Hyperparameter search with keras-tuner: the tuners, oracles and trial bookkeeping are its own.

``run_search(plan)`` derives the space from the builder (``tuning.space``), checks that it
holds at least one buildable configuration, and runs one of keras-tuner's tuners (random,
Hyperband, Bayesian optimisation, grid) over a ``ZooHyperModel`` whose ``build`` calls the
registry and whose ``fit`` trains with zoo.train's pieces. Results land in ``plan.out``: the
tuner's own project (which makes the search resumable), a table of trials (Markdown and CSV),
a plot of the objective against the parameter count, the best hyperparameters as JSON, and the
best configuration retrained by ``zoo.train.train`` into a normal run directory.

Trial states. keras-tuner ends a trial COMPLETED or FAILED; its INVALID means "crashed, retry"
and becomes FAILED (counted towards ``max_consecutive_failed_trials``) once retries run out.
Here a configuration that cannot be built (zoo.geometry says the maps are too small, a list
has the wrong length) or is over ``--max-params`` is refused before any training: the trial
reports a NaN objective (with its parameter count), which keras-tuner's oracle turns into
INVALID, and the oracles below keep it INVALID instead of retrying it, so it never counts as
a crash. A trial that crashes while training raises ``FailedTrialError``: FAILED, the search
goes on (and stops after ``max_consecutive_failed_trials`` crashes in a row, keras-tuner's
guard against a broken set-up). The status travels in keras-tuner's protocol, so the same
holds with a chief oracle and workers on other machines.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from tuning.space import SearchSpace, derive_space, describe
from zoo.train import (
    RUNS_DIR,
    SAVED_MODELS,
    TrainPlan,
    compile_model,
    prepare_data,
    resolve_hparams,
    training_batches,
    write_json_atomic,
)

ALGORITHMS = ("random", "hyperband", "bayesian", "grid")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")
ROLES = ("local", "chief", "worker")
TABLE_MD = "trials.md"
TABLE_CSV = "trials.csv"
PLOT_FILE = "objective_vs_params.png"
BEST_FILE = "best_hyperparameters.json"
SUMMARY_FILE = "summary.json"
PROJECT = "tuner"
# Configurations the pre-flight check builds at most when looking for a valid one.
PREFLIGHT_LIMIT = 64
# keras-tuner's guard: this many crashed trials in a row stop the search.
MAX_CONSECUTIVE_FAILED = 3
# Random draws an oracle makes before giving up on satisfying --increasing-filters.
RULE_REDRAWS = 200


class RejectedConfiguration(Exception):
    """A configuration refused before training (impossible geometry, too many parameters)."""

    def __init__(self, reason: str, params: int | None = None, macs: int | None = None):
        super().__init__(reason)
        self.reason, self.params, self.macs = reason, params, macs


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


# -- checks -----------------------------------------------------------------------------------
def validate_plan(plan: SearchPlan) -> None:
    """Raise ValueError for settings that cannot work, before anything is built or loaded."""
    if plan.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown search algorithm {plan.algorithm!r}; use one of "
                         f"{', '.join(ALGORITHMS)}")
    if plan.max_trials is not None and plan.max_trials < 1:
        raise ValueError(f"--max-trials must be at least 1, got {plan.max_trials}")
    if plan.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {plan.epochs}")
    if plan.algorithm == "hyperband" and plan.epochs < 2:
        raise ValueError("hyperband needs --epochs >= 2 (its largest training budget per model)")
    if plan.objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {plan.objective!r}; use one of "
                         f"{', '.join(OBJECTIVES)}")
    if plan.max_params is not None and plan.max_params < 1:
        raise ValueError(f"--max-params must be positive, got {plan.max_params}")
    if plan.role not in ROLES:
        raise ValueError(f"unknown role {plan.role!r}; use one of {', '.join(ROLES)}")
    if plan.role != "local":
        parse_address(plan.oracle)
    if not isinstance(plan.batch_size, int) or plan.batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {plan.batch_size!r}")


def parse_address(text: str | None) -> tuple[str, int]:
    """'10.0.0.1:8000' -> ('10.0.0.1', 8000), with a clear error otherwise."""
    host, sep, port = (text or "").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--oracle needs HOST:PORT of the chief (e.g. 10.0.0.1:8000), "
                         f"got {text!r}")
    return host, int(port)


def check_configuration(space: SearchSpace, values: dict[str, Any],
                        max_params: int | None):
    """Build the configuration; return (model, params, MACs) or raise RejectedConfiguration."""
    from zoo.geometry import GeometryError
    from zoo.inspect import summarize
    from zoo.registry import build

    builder, _ = space.resolve(values)
    violation = space.constraint_violation(builder)
    if violation:
        raise RejectedConfiguration(violation)
    try:
        model = build(space.model, **builder)
    except (GeometryError, ValueError) as err:
        raise RejectedConfiguration(f"{type(err).__name__}: {err}") from None
    params = model.count_params()
    macs = summarize(model).total_macs
    if max_params is not None and params > max_params:
        raise RejectedConfiguration(f"{params:,} parameters > --max-params {max_params:,}",
                                    params, macs)
    return model, params, macs


def find_valid_configuration(space: SearchSpace, max_params: int | None,
                             limit: int = PREFLIGHT_LIMIT) -> dict[str, Any]:
    """A buildable configuration of the space, or ValueError saying why there is none."""
    import keras

    reasons: dict[str, int] = {}
    tried = 0
    for values in space.configurations(limit):
        tried += 1
        try:
            check_configuration(space, values, max_params)
            keras.backend.clear_session()
            return values
        except RejectedConfiguration as rejected:
            reasons[rejected.reason] = reasons.get(rejected.reason, 0) + 1
    keras.backend.clear_session()
    common = max(reasons, key=reasons.get) if reasons else "no configuration"
    scope = ("none of its" if tried >= space.size() else
             f"none of {tried} configurations tried (smallest first, then random) of its")
    raise ValueError(f"the search space of {space.model} has no valid configuration: {scope} "
                     f"{space.size():,} configurations can be built; most common reason: "
                     f"{common}. Widen --space (smaller kernels, more stages' room) or raise "
                     f"--max-params")


# -- keras-tuner pieces ----------------------------------------------------------------------
def _hypermodel_class():
    import keras_tuner

    class ZooHyperModel(keras_tuner.HyperModel):
        """build(hp): the registry's builder at the trial's values; fit: zoo.train's pieces."""

        def __init__(self, space: SearchSpace, base: TrainPlan, data, max_params, steps):
            super().__init__(name=space.model)
            self.space, self.base, self.data = space, base, data
            self.max_params, self.steps_per_epoch = max_params, steps
            self.last_measure: tuple[int | None, int | None] = (None, None)

        def trial_plan(self, hp) -> TrainPlan:
            _, training = self.space.resolve(hp.values)
            return replace(self.base, **training)

        def build(self, hp):
            values = self.space.declare(hp)
            self.last_measure = (None, None)
            model, params, macs = check_configuration(self.space, values, self.max_params)
            self.last_measure = (params, macs)
            compile_model(model, self.trial_plan(hp), self.steps_per_epoch)
            return model

        def fit(self, hp, model, *args, callbacks=None, epochs=None, initial_epoch=0, **kwargs):
            plan = self.trial_plan(hp)
            train, val = training_batches(plan, self.data)
            return model.fit(train, validation_data=val, epochs=epochs or plan.epochs,
                             initial_epoch=initial_epoch, callbacks=callbacks, verbose=0)

    return ZooHyperModel


def _zoo_oracle(oracle_class, space: SearchSpace):
    """keras-tuner's oracle with two changes: refused trials end INVALID instead of being
    retried (see the module doc), and random draws that break the space's own rules (e.g.
    --increasing-filters) are drawn again, so random, Hyperband and Bayesian searches do not
    spend their trials on them. Grid search and the Bayesian model's own suggestions can
    still propose such configurations; those are refused as INVALID without training."""
    from keras_tuner.src.engine import trial as trial_module

    class Oracle(oracle_class):
        def _retry(self, trial):
            if trial.status == trial_module.TrialStatus.INVALID:
                return False  # refused before training: final, and not a crash
            return super()._retry(trial)

        def _random_values(self):
            values = None
            for _ in range(RULE_REDRAWS):
                values = super()._random_values()
                if values is None or not space.constraint_violation(space.resolve(values)[0]):
                    return values
                self._tried_so_far.add(self._compute_values_hash(values))  # never again
            return values

    Oracle.__name__ = Oracle.__qualname__ = f"Zoo{oracle_class.__name__}"
    return Oracle


def _tuner_classes():
    import keras_tuner
    from keras_tuner import errors

    class ZooTrials:
        """Tuner behaviour shared by every algorithm: refusals, crashes, a line per trial."""

        echo: Callable[[str], None] = print
        objective_name = "val_accuracy"
        space: SearchSpace | None = None
        trials_run_here = 0

        def run_trial(self, trial, *args, **kwargs):
            start = time.perf_counter()
            try:
                histories = super().run_trial(trial, *args, **kwargs)
            except RejectedConfiguration as rejected:
                self.last_note = rejected.reason
                return {self.objective_name: float("nan"),
                        "params": float("nan" if rejected.params is None else rejected.params),
                        "macs": float("nan" if rejected.macs is None else rejected.macs),
                        "seconds": time.perf_counter() - start}
            except errors.FatalError:
                raise
            except Exception as err:  # out of memory, NaN loss, ...: FAILED, search goes on
                self.last_note = f"{type(err).__name__}: {err}"
                raise errors.FailedTrialError(self.last_note) from err
            history = histories[-1].history
            losses = history.get("loss", [])
            if not losses or any(math.isnan(v) or math.isinf(v) for v in losses):
                self.last_note = "the training loss became NaN/inf"
                raise errors.FailedTrialError(self.last_note)
            params, macs = self.hypermodel.last_measure
            self.last_note = ""
            return {**best_epoch(history, self.objective_name, self.oracle.objective.direction),
                    "params": float(params), "macs": float(macs),
                    "seconds": time.perf_counter() - start}

        def on_trial_begin(self, trial):
            self.last_note = ""
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            self.trials_run_here += 1
            ended = self.oracle.get_trial(trial.trial_id)
            row = trial_row(ended, self.space, self.objective_name, note=self.last_note)
            self.echo(format_trial_line(row, self.objective_name))

    class ZooTuner(ZooTrials, keras_tuner.Tuner):
        """keras-tuner's Tuner with the zoo's trial handling (random, Bayesian, grid)."""

    class ZooHyperband(ZooTrials, keras_tuner.Hyperband):
        """keras-tuner's Hyperband (epochs per bracket, warm starts) with the zoo's handling."""

        def __init__(self, oracle, **kwargs):
            # Hyperband.__init__ would build a plain HyperbandOracle; ours keeps refusals final.
            keras_tuner.Tuner.__init__(self, oracle=oracle, **kwargs)

    for cls in (ZooTuner, ZooHyperband):
        def _populate_initial_space(self):
            # Declare the space without building a model (keras-tuner's default builds the
            # hypermodel at its defaults, which may be a refused configuration).
            hp = self.oracle.get_space()
            self.space.declare(hp)
            self.oracle.update_space(hp)

        cls._populate_initial_space = _populate_initial_space
    return ZooTuner, ZooHyperband


def best_epoch(history: dict[str, list[float]], objective: str, direction: str) -> dict:
    """The metrics of the epoch with the best objective."""
    values = history[objective]
    pick = min if direction == "min" else max
    epoch = values.index(pick(values))
    return {k: float(v[epoch]) for k, v in history.items() if len(v) > epoch}


def make_tuner(plan: SearchPlan, space: SearchSpace, hypermodel, strategy=None):
    """The keras-tuner tuner for ``plan.algorithm``, resuming from ``plan.out_dir``."""
    import keras_tuner
    from keras_tuner import oracles

    objective = keras_tuner.Objective(plan.objective, direction=plan.direction)
    common = dict(objective=objective, seed=plan.seed,
                  max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILED)
    base = {"random": oracles.RandomSearchOracle, "grid": oracles.GridSearchOracle,
            "bayesian": oracles.BayesianOptimizationOracle,
            "hyperband": oracles.HyperbandOracle}[plan.algorithm]
    if plan.algorithm == "hyperband":
        budget = {"max_epochs": plan.epochs, "factor": 3}
    elif plan.algorithm == "grid":
        # keras-tuner pads trial ids to the width of max_trials, so give it the grid's size.
        budget = {"max_trials": plan.max_trials or space.size()}
    else:
        budget = {"max_trials": plan.max_trials}
    oracle = _zoo_oracle(base, space)(**budget, **common)
    tuner_cls, hyperband_cls = _tuner_classes()
    cls = hyperband_cls if plan.algorithm == "hyperband" else tuner_cls
    # Class attributes, set before __init__: keras-tuner populates the space in its __init__.
    cls.space, cls.objective_name = space, plan.objective
    return cls(oracle=oracle, hypermodel=hypermodel, directory=str(plan.out_dir),
               project_name=PROJECT, overwrite=False, distribution_strategy=strategy)


def setup_distribution() -> tuple[Any, str]:
    """Data parallelism over every visible GPU: (tf.distribute strategy or None, description).

    TensorFlow backend: a MirroredStrategy handed to the tuner. JAX: Keras' DataParallel
    distribution, set globally (no TensorFlow needed). No GPU: nothing.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if not gpus:
            return None, "none (CPU)"
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=gpus))
        return None, f"keras.distribution.DataParallel over {len(gpus)} GPU(s) (JAX)"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if not gpus:
            return None, "none (CPU)"
        return tf.distribute.MirroredStrategy(), f"tf.distribute.MirroredStrategy over " \
                                                 f"{len(gpus)} GPU(s)"
    return None, f"none ({backend} backend)"


def _set_role_environment(plan: SearchPlan) -> str:
    """Export keras-tuner's KERASTUNER_* variables for --chief/--worker; return the role."""
    if plan.role == "local":
        if "KERASTUNER_ORACLE_IP" in os.environ:  # roles set by the environment instead
            return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"
        return "local"
    host, port = parse_address(plan.oracle)
    os.environ["KERASTUNER_ORACLE_IP"] = host
    os.environ["KERASTUNER_ORACLE_PORT"] = str(port)
    if plan.role == "chief":
        os.environ["KERASTUNER_TUNER_ID"] = "chief"
    else:
        tuner_id = plan.tuner_id or f"worker-{socket.gethostname()}-{os.getpid()}"
        if "chief" in tuner_id:
            raise ValueError(f"a worker's --tuner-id must not contain 'chief', got {tuner_id!r}")
        os.environ["KERASTUNER_TUNER_ID"] = tuner_id
    return plan.role


# -- results ---------------------------------------------------------------------------------
def _last(trial, name: str) -> float | None:
    if not trial.metrics.exists(name):
        return None
    value = trial.metrics.get_last_value(name)
    return None if value is None or math.isnan(value) else float(value)


def trial_row(trial, space: SearchSpace, objective: str, note: str = "") -> TrialRow:
    """A table row from a keras-tuner Trial."""
    values = trial.hyperparameters.values
    names = space.hyperparameter_names(values)
    if "tuner/epochs" in values:  # Hyperband: how long this trial trained
        names.append("tuner/epochs")
    score = trial.score if trial.score is not None and not math.isnan(trial.score) else None
    params, macs = _last(trial, "params"), _last(trial, "macs")
    if not note and trial.status != "COMPLETED" and trial.message:
        note = trial.message.strip().splitlines()[-1]
    return TrialRow(
        trial_id=trial.trial_id,
        status=str(trial.status),
        values={n: values[n] for n in names if n in values},
        objective=score if trial.status == "COMPLETED" else None,
        params=None if params is None else int(params),
        macs=None if macs is None else int(macs),
        seconds=_last(trial, "seconds"),
        note=note,
    )


def format_trial_line(row: TrialRow, objective: str) -> str:
    """'trial 03 COMPLETED val_accuracy 0.9630  12,345 params  3.4 s  | filters_1=16 ...'."""
    hps = " ".join(f"{k}={v}" for k, v in row.values.items())
    if row.status == "COMPLETED":
        head = f"{objective} {row.objective:.4f}  {row.params:,} params"
    else:
        head = row.note or row.status.lower()
    seconds = f"  {row.seconds:.1f} s" if row.seconds is not None else ""
    return f"trial {row.trial_id} {row.status:9s} {head}{seconds}  | {hps}"


def _explain_invalid(row: TrialRow, space: SearchSpace, max_params: int | None,
                     values: dict) -> str:
    """Why a refused trial was refused (recomputed: keras-tuner's protocol carries no text)."""
    import keras

    try:
        check_configuration(space, values, max_params)
        return "refused"
    except RejectedConfiguration as rejected:
        return rejected.reason
    finally:
        keras.backend.clear_session()


def collect_rows(tuner, plan: SearchPlan, space: SearchSpace) -> list[TrialRow]:
    """Every trial the (chief's or local) oracle knows, in trial order."""
    rows = []
    for trial_id in sorted(tuner.oracle.trials):
        trial = tuner.oracle.trials[trial_id]
        row = trial_row(trial, space, plan.objective)
        if row.status == "INVALID":
            row.note = _explain_invalid(row, space, plan.max_params,
                                        trial.hyperparameters.values)
        elif row.status == "FAILED" and not row.note:
            row.note = "crashed while training (see the log of the process that ran it)"
        rows.append(row)
    return rows


def pick_best(rows: list[TrialRow], direction: str) -> TrialRow | None:
    """The completed trial with the best objective."""
    done = [r for r in rows if r.status == "COMPLETED" and r.objective is not None]
    if not done:
        return None
    return (min if direction == "min" else max)(done, key=lambda r: r.objective)


def _columns(rows: list[TrialRow], space: SearchSpace | None = None) -> list[str]:
    names: list[str] = []
    if space is not None:  # the space's order: stages, then each dimension stage by stage
        deepest = {"stages": max(space.stage_choices())} if space.stage_choices() else {}
        order = space.hyperparameter_names(deepest)
        names = [n for n in order if any(n in r.values for r in rows)]
    for row in rows:
        names += [n for n in row.values if n not in names]
    return names


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def table_rows(rows: list[TrialRow], objective: str, space: SearchSpace | None = None
               ) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the trials table."""
    names = _columns(rows, space)
    header = ["trial", "status", *names, objective, "params", "MACs", "seconds", "note"]
    cells = []
    for r in rows:
        cells.append([r.trial_id, r.status, *(_cell(r.values.get(n)) for n in names),
                      "" if r.objective is None else f"{r.objective:.4f}",
                      "" if r.params is None else f"{r.params}",
                      "" if r.macs is None else f"{r.macs}",
                      "" if r.seconds is None else f"{r.seconds:.1f}", r.note])
    return header, cells


def markdown_table(rows: list[TrialRow], objective: str, space: SearchSpace | None = None
                   ) -> str:
    """The trials as a Markdown table (numbers with thousands separators)."""
    header, cells = table_rows(rows, objective, space)
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if h in (objective, "params", "MACs", "seconds")
                               else "---" for h in header) + " |"]
    for row in cells:
        pretty = [f"{int(c):,}" if h in ("params", "MACs") and c else c.replace("|", "/")
                  for h, c in zip(header, row)]
        lines.append("| " + " | ".join(pretty) + " |")
    return "\n".join(lines) + "\n"


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_tables(out: Path, rows: list[TrialRow], objective: str,
                 space: SearchSpace | None = None) -> None:
    """trials.md and trials.csv, each written atomically."""
    header, cells = table_rows(rows, objective, space)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(cells)
    _write_text_atomic(out / TABLE_CSV, buffer.getvalue())
    _write_text_atomic(out / TABLE_MD, markdown_table(rows, objective, space))


def plot_objective(out: Path, rows: list[TrialRow], objective: str, model: str,
                   best: TrialRow | None) -> Path:
    """Scatter of the objective against the parameter count (log scale), best trial starred."""
    from zoo.plots import headless_pyplot, save_figure

    plt = headless_pyplot()
    done = [r for r in rows if r.status == "COMPLETED" and r.objective is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([r.params for r in done], [r.objective for r in done], color="tab:blue",
               label="completed trial")
    for r in done:
        ax.annotate(r.trial_id, (r.params, r.objective), textcoords="offset points",
                    xytext=(3, 3), fontsize=7, color="0.35")
    if best is not None:
        ax.scatter([best.params], [best.objective], marker="*", s=260, color="tab:orange",
                   edgecolor="black", zorder=3, label=f"best (trial {best.trial_id})")
    if done:
        ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel(objective)
    refused = sum(r.status == "INVALID" for r in rows)
    failed = sum(r.status == "FAILED" for r in rows)
    ax.set_title(f"{model}: {len(done)} trials trained, {refused} refused, {failed} failed")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    path = out / PLOT_FILE
    save_figure(fig, path)
    return path


def _retrain(plan: SearchPlan, name: str, hparams: dict, training: dict, data,
             echo) -> tuple[Path, dict[str, float]]:
    """Train a configuration with zoo.train into saved_models/runs/<name> (reused if done)."""
    from zoo.runs import load_run_metrics
    from zoo.train import METRICS_FILE, train

    run_dir = RUNS_DIR / name
    if (run_dir / METRICS_FILE).exists():
        metrics = load_run_metrics(run_dir)
        echo(f"reusing the finished run {run_dir}")
        return run_dir, {k: v for k, v in metrics.items() if k.startswith("test_")}
    train_plan = TrainPlan(model=plan.model, hparams=hparams, dataset=plan.dataset,
                           data_dir=plan.data_dir, epochs=plan.retrain_epochs or plan.epochs,
                           batch_size=plan.batch_size, seed=plan.seed,
                           train_fraction=plan.train_fraction, out=str(run_dir),
                           **training)
    result = train(train_plan, data=data, verbose=0)
    return result.run_dir, result.test_metrics


# -- the search --------------------------------------------------------------------------------
def run_search(plan: SearchPlan, echo: Callable[[str], None] = print) -> SearchResult:
    """Run (or resume) the search described by ``plan`` and write its results."""
    validate_plan(plan)
    fixed = {"input_shape": tuple(plan.input_shape)} if plan.input_shape else {}
    space = derive_space(plan.model, plan.space, only=plan.only,
                         increasing_filters=plan.increasing_filters, fixed=fixed)
    if not space.searched:
        raise ValueError(f"nothing to search: every dimension of {plan.model} has one choice; "
                         f"give at least one --space NAME=A,B with several choices")
    if plan.algorithm == "grid" and plan.max_trials is None and space.size() > 10_000:
        raise ValueError(f"the grid has {space.size():,} configurations; narrow --space or "
                         f"cap it with --max-trials")
    role = _set_role_environment(plan)

    from zoo.data import fit_dataset, load_dataset

    base = TrainPlan(model=plan.model, hparams=dict(fixed), dataset=plan.dataset,
                     data_dir=plan.data_dir, epochs=plan.epochs, batch_size=plan.batch_size,
                     seed=plan.seed, train_fraction=plan.train_fraction)
    raw = load_dataset(plan.dataset, data_dir=plan.data_dir)
    data = prepare_data(base, raw)
    task = resolve_hparams(base, data)  # input shape and number of classes of this data
    space.fixed.update({"input_shape": task["input_shape"], "num_classes": task["num_classes"]})
    find_valid_configuration(space, plan.max_params)
    data = fit_dataset(data, task["input_shape"])

    import keras

    keras.utils.set_random_seed(plan.seed)
    strategy, distribution = setup_distribution()
    out = plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    steps = math.ceil(len(data.x_train) / plan.batch_size)
    hypermodel = _hypermodel_class()(space, base, data, plan.max_params, steps)
    tuner = make_tuner(plan, space, hypermodel, strategy)
    tuner.echo = echo
    if role != "worker":
        echo(f"searching {plan.model} with {plan.algorithm} "
             f"({space.size():,} configurations; trials in {out}; distribution: "
             f"{distribution})\n{describe(space)}")
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A refused trial's objective is NaN on purpose; numpy would warn when it is scored.
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        tuner.search(verbose=0)
    seconds = time.perf_counter() - start
    result = SearchResult(out=out, space=space, rows=[], seconds=seconds,
                          trials_run_here=tuner.trials_run_here, distribution=distribution)
    if role == "worker":
        echo(f"worker {os.environ.get('KERASTUNER_TUNER_ID')}: ran {tuner.trials_run_here} "
             f"trials in {seconds:.1f} s; the chief writes the results")
        return result
    return _finish(plan, space, tuner, raw, result, echo)


def _finish(plan, space, tuner, raw, result: SearchResult, echo) -> SearchResult:
    out = result.out
    rows = collect_rows(tuner, plan, space)
    best = pick_best(rows, plan.direction)
    write_tables(out, rows, plan.objective, space)
    plot_objective(out, rows, plan.objective, plan.model, best)
    result.rows, result.best = rows, best
    summary: dict[str, Any] = {"model": plan.model, "algorithm": plan.algorithm,
                               "objective": plan.objective,
                               "trials": {s: sum(r.status == s for r in rows)
                                          for s in ("COMPLETED", "INVALID", "FAILED")}}
    if best is not None:
        trial = tuner.oracle.trials[best.trial_id]
        builder, training = space.resolve(trial.hyperparameters.values)
        result.best_hparams = {**builder, **training}
        write_json_atomic(out / BEST_FILE, {
            "model": plan.model, "trial_id": best.trial_id, "objective": plan.objective,
            "value": best.objective, "params": best.params, "macs": best.macs,
            "hyperparameters": best.values, "builder_hparams": builder, "training": training,
        })
        if plan.retrain:
            name = f"{plan.model}-tuned-{out.name}-trial{best.trial_id}"
            echo(f"retraining trial {best.trial_id} with zoo.train ...")
            result.best_run, result.best_test_metrics = _retrain(
                plan, name, builder, training, raw, echo)
        if plan.compare_default:
            echo("training the default configuration for comparison ...")
            default = {k: v for k, v in space.fixed.items()}
            result.default_run, result.default_test_metrics = _retrain(
                plan, f"{plan.model}-default-{out.name}", default, {}, raw, echo)
    summary.update({
        "best_trial": best.trial_id if best else None,
        "best_value": best.objective if best else None,
        "best_run": str(result.best_run) if result.best_run else None,
        "best_test_metrics": result.best_test_metrics,
        "default_run": str(result.default_run) if result.default_run else None,
        "default_test_metrics": result.default_test_metrics,
        "search_seconds": result.seconds,
        "distribution": result.distribution,
    })
    write_json_atomic(out / SUMMARY_FILE, summary)
    for line in summary_lines(result, plan):
        echo(line)
    return result


def summary_lines(result: SearchResult, plan: SearchPlan) -> list[str]:
    """The end-of-search summary printed by `zoo tune`."""
    counts = {s: sum(r.status == s for r in result.rows) for s in ("COMPLETED", "INVALID",
                                                                   "FAILED")}
    lines = [f"{len(result.rows)} trials: {counts['COMPLETED']} completed, "
             f"{counts['INVALID']} refused before training, {counts['FAILED']} failed "
             f"({result.seconds:.1f} s this session, {result.trials_run_here} run here)"]
    if result.best is None:
        lines.append("no trial completed; nothing to retrain")
        return lines
    best = result.best
    lines.append(f"best: trial {best.trial_id} {plan.objective} {best.objective:.4f} "
                 f"({best.params:,} params) " + " ".join(f"{k}={v}" for k, v in
                                                        best.values.items()))
    if result.best_run:
        acc = result.best_test_metrics.get("test_accuracy")
        lines.append(f"best configuration retrained: {result.best_run}"
                     + (f" (test accuracy {acc:.4f})" if acc is not None else ""))
    if result.default_run:
        acc = result.default_test_metrics.get("test_accuracy")
        lines.append(f"default configuration: {result.default_run}"
                     + (f" (test accuracy {acc:.4f})" if acc is not None else ""))
    lines.append(f"results: {result.out / TABLE_MD}, {result.out / TABLE_CSV}, "
                 f"{result.out / PLOT_FILE}, {result.out / BEST_FILE}")
    return lines
