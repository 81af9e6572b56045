"""Hyperparameter search with keras-tuner: the tuners, oracles and trial bookkeeping are its own.

``search_here(plan)`` (called by ``tuning.tune.run_search``) derives the space from the builder
(``tuning.space``), checks that it holds at least one buildable configuration, and runs one of
keras-tuner's tuners (random, Hyperband, Bayesian optimisation, grid) over a ``ZooHyperModel``
whose ``build`` calls the registry and whose ``fit`` trains with zoo.training.train's pieces.
Results land in ``plan.out``: the tuner's own project (which makes the search resumable), a table
of trials (Markdown and CSV), a plot of the objective against the parameter count, the best
hyperparameters as JSON, and the best configuration retrained by ``zoo.training.train.train``
into a normal run directory.

Trial states (COMPLETED, INVALID = refused before training, FAILED = crashed) are explained
in ``tuning.tuners``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tuning.pareto import DefaultPoint, front_markdown, front_rows, plot_pareto
from tuning.preflight import (
    Budget,
    Measure,
    find_valid_configuration,
    measure_model,
    refusal_reason,
)
from tuning.records import (
    ALGORITHMS,
    COSTS,
    OBJECTIVES,
    PRUNERS,
    ROLES,
    SearchPlan,
    SearchResult,
    TrialRow,
)
from tuning.results import (
    BEST_FILE,
    STATUSES,
    SUMMARY_FILE,
    pick_best,
    plot_objective,
    summary_lines,
    trial_row,
    write_tables,
)
from tuning.space import SearchSpace, derive_space, describe
from zoo.core.locks import folder_lock
from zoo.core.registry import build
from zoo.core.runs import (
    CONFIG_FILE,
    HISTORY_FILE,
    jsonable,
    read_history,
    write_json_atomic,
)
from zoo.data.inputs import fit_source, open_source
from zoo.training.dtype_policy import check_dtype_policy
from zoo.training.job_folder import EarlierJob, earlier_job
from zoo.training.seeding import seed_everything
from zoo.training.settings import JOB_SETTINGS, settings_of
from zoo.training.train import TrainPlan, prepare_data, resolve_hparams, train

# The best trial (runs/trialID) and the default configuration (runs/default) are retrained
# into run directories below --out.
RETRAIN_DIR = "runs"
# What makes a search folder hold the search asked for: every SearchPlan field that changes
# a trial's result. Not --max-trials (more of them extends a search), the distribution
# (--workers, --isolate, the roles) or what follows the trials (--retrain, ...).
SEARCH_KEYS = ("model", *JOB_SETTINGS, "algorithm", "objective", "space", "only",
               "increasing_filters", "max_params", "max_macs", "max_latency_ms", "cost",
               "prune", "prune_warmup_epochs", "prune_warmup_trials", "input_shape")


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
    for option, value in (("--max-params", plan.max_params), ("--max-macs", plan.max_macs),
                          ("--max-latency-ms", plan.max_latency_ms)):
        if value is not None and not value > 0:
            raise ValueError(f"{option} must be positive, got {value}")
    if plan.isolate and plan.algorithm == "hyperband":
        raise ValueError("--isolate does not support hyperband (it continues models across "
                         "brackets in one process); use random, bayesian or grid")
    if plan.cost is not None and plan.cost not in COSTS:
        raise ValueError(f"unknown cost {plan.cost!r}; use one of {', '.join(COSTS)}")
    if plan.prune is not None:
        if plan.prune not in PRUNERS:
            raise ValueError(f"unknown pruner {plan.prune!r}; use one of {', '.join(PRUNERS)}")
        if plan.algorithm == "hyperband":
            raise ValueError("hyperband already stops trials early (its brackets); drop --prune "
                             "or use --algorithm random/bayesian/grid")
        if plan.role != "local" or plan.workers is not None:
            raise ValueError("--prune needs the trials' records in this process; it works in a "
                             "single-process search, not with --workers/--chief/--worker")
        if plan.prune_warmup_epochs < 1 or plan.prune_warmup_trials < 0:
            raise ValueError("--prune-warmup-epochs must be at least 1 and "
                             "--prune-warmup-trials at least 0")
    if plan.role not in ROLES:
        raise ValueError(f"unknown role {plan.role!r}; use one of {', '.join(ROLES)}")
    if plan.dtype_policy is not None:
        check_dtype_policy(plan.dtype_policy)
    if plan.workers is not None:
        if plan.workers < 1:
            raise ValueError(f"--workers must be at least 1, got {plan.workers}")
        if plan.role != "local":
            raise ValueError("--workers starts its own chief and workers on this machine; "
                             "drop --chief/--worker/--oracle, or drop --workers")
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


def setup_distribution(devices: int | str | None = None,
                       batch_size: int | None = None) -> tuple[Any, str]:
    """Data parallelism for every trial: (tf.distribute strategy or None, description).

    ``devices`` as `--devices` (zoo.training.distribution); None: every GPU, nothing on a
    machine without one. TensorFlow: a MirroredStrategy handed to the tuner. JAX: Keras'
    DataParallel distribution, set globally (keras-tuner builds each trial's model itself).
    """
    import keras

    from zoo.training.distribution import (
        ALL,
        DistributionSettings,
        accelerator_count,
        start_distribution,
    )

    if devices is None:
        if keras.backend.backend() not in ("jax", "tensorflow"):
            return None, f"none ({keras.backend.backend()} backend)"
        if not accelerator_count():
            return None, "none (CPU)"
        devices = ALL
    distribution = start_distribution(DistributionSettings(devices=devices))
    if distribution is None:
        return None, "none (one device)"
    if batch_size is not None:
        distribution.check_batch(batch_size)
    if distribution.strategy is None:
        keras.distribution.set_distribution(distribution.keras_distribution)
    return distribution.strategy, distribution.describe()


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
def budget_of(plan: SearchPlan) -> Budget:
    """The plan's budgets (and whether latency is measured)."""
    return Budget(plan.max_params, plan.max_macs, plan.max_latency_ms,
                  measure_latency=plan.measures_latency)


def refused_because(trial, plan: SearchPlan, space: SearchSpace) -> str:
    """Why ``trial`` was refused, worked out again from its values and what it recorded: for
    a chief (keras-tuner's protocol drops its workers' reasons) and for trial records written
    before refused trials kept their reason as their message."""
    row = trial_row(trial, space, plan.objective)
    return refusal_reason(space, trial.hyperparameters.values, budget_of(plan),
                          Measure(row.params, row.macs, row.latency_ms))


def refusal_explainer(plan: SearchPlan, space: SearchSpace) -> Callable[[Any], str]:
    """``refused_because`` for a chief oracle's ``explain_refusal``, one call at a time: the
    oracle's gRPC threads call it, and working a reason out clears Keras' session."""
    one_at_a_time = threading.Lock()

    def explain(trial) -> str:
        with one_at_a_time:
            return refused_because(trial, plan, space)

    return explain


def row_of(trial, plan: SearchPlan, space: SearchSpace) -> TrialRow:
    """The table row of one ended trial, with the reason a refused or failed trial has."""
    row = trial_row(trial, space, plan.objective)
    if row.status == "INVALID":
        row.note = trial.message or refused_because(trial, plan, space)
    elif row.status == "FAILED" and not row.note:
        row.note = "crashed while training (see the log of the process that ran it)"
    return row


def collect_rows(tuner, plan: SearchPlan, space: SearchSpace) -> list[TrialRow]:
    """Every trial the (chief's or local) oracle knows, in trial order."""
    return [row_of(tuner.oracle.trials[trial_id], plan, space)
            for trial_id in sorted(tuner.oracle.trials)]


def _retrain(plan: SearchPlan, name: str, hparams: dict, training: dict, data,
             echo) -> tuple[Path, dict[str, float]]:
    """Train a configuration with zoo.training.train into OUT/runs/<name> (reused if done).

    Below --out, so that a search's results stay together and a second search with another
    --out never meets (or reuses) this one's runs.
    """

    run_dir = plan.out_dir / RETRAIN_DIR / name
    # Retrained like `zoo train` (no op determinism), with the trial's searched settings. A
    # killed retraining resumes; a finished one is reused (zoo.training.job_folder).
    settings = settings_of(plan, epochs=plan.retrain_epochs or plan.epochs, deterministic=False)
    train_plan = TrainPlan(model=plan.model, hparams=hparams, out=str(run_dir),
                           **(settings | training))
    result = train(train_plan, data=data, verbose=0, announce=_resume_lines(echo))
    if result.finished_earlier:
        echo(f"reusing the finished run {run_dir}")
    return result.run_dir, result.test_metrics


def _resume_lines(echo: Callable[[str], None]) -> Callable[[str], None]:
    """``echo`` for train's lines that say a killed run resumes (not its input path)."""
    return lambda line: echo(line) if line.startswith("resuming") else None


# -- the search --------------------------------------------------------------------------------
@dataclass
class PreparedSearch:
    """A search ready to run: its space, the data as loaded, and keras-tuner's tuner."""

    space: SearchSpace
    raw: Any  # the data set as loaded (retraining splits it again)
    tuner: Any  # tuning.tuners.ZooTrials
    distribution: str


def search_here(plan: SearchPlan, echo: Callable[[str], None] = print) -> SearchResult:
    """Run (or resume) ``plan``'s search in this process and write its results.

    Args:
        plan: the search (``SearchPlan``) for this process's role: local, or one chief or
            worker of a distributed search (``--chief``/``--worker``). A plan with
            ``workers`` runs through ``tuning.tune.run_search``, which starts them.
        echo: called with each progress line.

    Returns:
        The trials table, the best trial and, unless ``plan.retrain`` is off, the run
        directory of the best configuration retrained with ``zoo.training.train.train``
        (a worker returns only what it ran; the chief writes the results).
    """
    validate_plan(plan)
    if plan.workers is not None:
        raise ValueError("a search with --workers starts its worker processes from "
                         "tuning.tune.run_search, not in one process")
    role = _set_role_environment(plan)
    # One search per folder (zoo.core.locks): the local search or the chief locks it; a
    # worker writes its trials into its chief's folder.
    with (contextlib.nullcontext() if role == "worker" else
          folder_lock(plan.out_dir, what="search folder")):
        earlier = check_search_folder(plan) if role != "worker" else None
        result = _search_here(plan, role, echo)
    report_finished_search(plan, earlier, result, echo)
    return result


def search_config(plan: SearchPlan) -> dict[str, Any]:
    """What the search folder's config.json records: the settings in SEARCH_KEYS."""
    return jsonable({key: getattr(plan, key) for key in SEARCH_KEYS})


def check_search_folder(plan: SearchPlan) -> EarlierJob | None:
    """Refuse a search folder that holds another search (zoo.training.job_folder), before
    anything loads. Returns the search it held (``prepare_search`` records this one's
    settings there once the search can start)."""
    return earlier_job(plan.out_dir, search_config(plan), SEARCH_KEYS,
                       finished_file=SUMMARY_FILE, what="a {model} search",
                       advice="rerun with the same settings to resume or extend it "
                              "(--max-trials), or pass another --out")


def report_finished_search(plan: SearchPlan, earlier: EarlierJob | None, result: SearchResult,
                           echo: Callable[[str], None]) -> None:
    """Say so when the search was run again after it had finished (nothing trained)."""
    if earlier is not None and earlier.finished and result.trials_run_here == 0:
        echo(f"{plan.out_dir} already held this search, finished: no trial trained now; the "
             f"results above are its own")


def _search_here(plan: SearchPlan, role: str, echo: Callable[[str], None]) -> SearchResult:
    """``run_search`` in this process, as ``role`` (local, chief or worker)."""
    prepared = prepare_search(plan, role, echo)
    tuner = prepared.tuner
    start = time.perf_counter()
    with quiet_search_warnings():
        tuner.search(verbose=0)
    seconds = time.perf_counter() - start
    result = SearchResult(out=plan.out_dir, space=prepared.space, rows=[], seconds=seconds,
                          trials_run_here=tuner.trials_run_here,
                          distribution=prepared.distribution)
    if role == "worker":
        echo(f"worker {os.environ.get('KERASTUNER_TUNER_ID')}: ran {tuner.trials_run_here} "
             f"trials in {seconds:.1f} s; the chief writes the results")
        return result
    return finish_search(plan, prepared, result, echo)


def prepare_search(plan: SearchPlan, role: str, echo: Callable[[str], None]) -> PreparedSearch:
    """Derive the space, load the data and make keras-tuner's tuner for ``role``.

    Args:
        plan: the checked search plan.
        role: local, chief or worker (keras-tuner's variables are already set for it); a
            chief trains nothing, so only local and worker set up data parallelism.
        echo: receives the search's header line (not printed by a worker).
    """
    fixed = {"input_shape": tuple(plan.input_shape)} if plan.input_shape else {}
    space = derive_space(plan.model, plan.space, only=plan.only,
                         increasing_filters=plan.increasing_filters, fixed=fixed)
    if not space.searched:
        raise ValueError(f"nothing to search: every dimension of {plan.model} has one choice; "
                         f"give at least one --space NAME=A,B with several choices")
    if plan.algorithm == "grid" and plan.max_trials is None and space.size() > 10_000:
        raise ValueError(f"the grid has {space.size():,} configurations; narrow --space or "
                         f"cap it with --max-trials")

    base = TrainPlan(model=plan.model, hparams=dict(fixed), **settings_of(plan))
    raw = open_source(plan.dataset, data_dir=plan.data_dir)  # a folder is only listed here
    data = prepare_data(base, raw)
    task = resolve_hparams(base, data)  # input shape and number of classes of this data
    space.fixed.update({"input_shape": task["input_shape"], "num_classes": task["num_classes"]})
    find_valid_configuration(space, budget_of(plan))
    data, choice = fit_source(data, task["input_shape"], mode=plan.input_mode,
                              budget=plan.memory_budget, skip_bad=plan.skip_bad_images)

    from tuning import tuners  # imports keras-tuner: only once the plan has been checked

    seed_everything(plan.seed, plan.deterministic)  # same command, same table (on CPU)
    if role == "chief":
        # keras-tuner's chief only serves the oracle: its workers train, each with its own
        # data parallelism. Set up here, it would hold devices (on TensorFlow a
        # MirroredStrategy) that nothing uses.
        strategy, distribution = None, "none in the chief (it trains nothing; its workers do)"
    else:
        strategy, distribution = setup_distribution(plan.devices, plan.batch_size)
    out = plan.out_dir
    out.mkdir(parents=True, exist_ok=True)
    if role != "worker":  # checked by check_search_folder; a worker writes into its chief's
        write_json_atomic(out / CONFIG_FILE, search_config(plan))
    hypermodel = tuners.ZooHyperModel(space, base, data, budget_of(plan))
    tuner = tuners.make_tuner(plan, hypermodel, strategy, echo=echo)
    if role == "chief":
        tuner.oracle.explain_refusal = refusal_explainer(plan, space)
    if role != "worker":
        policy = f"; dtype policy {plan.dtype_policy}" if plan.dtype_policy else ""
        echo(f"searching {plan.model} with {plan.algorithm} "
             f"({space.size():,} configurations; trials in {out}; distribution: "
             f"{distribution}{policy})\n{describe(space)}\n{choice.line()}")
    return PreparedSearch(space=space, raw=raw, tuner=tuner, distribution=distribution)


@contextlib.contextmanager
def quiet_search_warnings():
    """Silence the two warnings a search raises on purpose (see the comments)."""
    from tuning import tuners

    with warnings.catch_warnings():
        # A refused trial's objective is NaN on purpose; numpy would warn when it is scored.
        warnings.filterwarnings("ignore", "All-NaN", RuntimeWarning)
        # The tuner reports each trial's records itself (per epoch, for pruning); see tuners.
        warnings.filterwarnings("ignore", tuners.SELF_REPORT_WARNING, DeprecationWarning)
        yield


@contextlib.contextmanager
def floored_outputs_noted(echo: Callable[[str], None]):
    """Note once, at the end, that configurations floored an output size.

    Every model a search builds warns again (zoo.core.geometry.FlooredOutputWarning: Keras
    drops border pixels), once per axis and build: a 2-trial search printed 8 such lines. They
    are counted here and summarised in one line; other warnings pass through unchanged.
    """
    from zoo.core.geometry import FlooredOutputWarning

    seen: dict[str, int] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("always", FlooredOutputWarning)
        show = warnings.showwarning

        def note(message, category, *args, **kwargs):
            if issubclass(category, FlooredOutputWarning):
                seen[str(message)] = seen.get(str(message), 0) + 1
            else:
                show(message, category, *args, **kwargs)

        warnings.showwarning = note
        try:
            yield
        finally:
            if seen:
                first = next(iter(seen))
                others = len(seen) - 1
                echo(f"note: some configurations floor an output size ({sum(seen.values())} "
                     f"warnings, shown once): {first}"
                     + (f" (and {others} more like it)"
                        if others else ""))


def latency_machine() -> str:
    """Where latencies were measured: host, processor, cores and load at the time."""
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{socket.gethostname()} ({platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} cores, 1-minute load {load:.1f})")


def default_point(plan: SearchPlan, space: SearchSpace, result: SearchResult) -> DefaultPoint:
    """The builder's default configuration on the Pareto plot: its cost, and its objective
    when ``--compare-default`` trained it (best epoch of that run, same epochs as the trials
    unless ``--retrain-epochs`` differs)."""
    import keras

    try:  # the builder's defaults on this data, as --compare-default trains them
        measure = measure_model(build(plan.model, **space.fixed), plan.cost == "latency")
    finally:
        keras.backend.clear_session()
    cost = {"params": measure.params, "macs": measure.macs, "latency": measure.latency_ms}
    point = DefaultPoint(cost=float(cost[plan.cost]))
    if result.default_run is not None:
        history = read_history(Path(result.default_run) / HISTORY_FILE).get(plan.objective)
        if history:
            point.objective = (min if plan.direction == "min" else max)(history)
            point.label = "default configuration (trained by --compare-default)"
    return point


def finish_search(plan: SearchPlan, prepared: PreparedSearch, result: SearchResult,
                  echo: Callable[[str], None]) -> SearchResult:
    """Write the tables, plots, best hyperparameters and summary; retrain the best trial.

    Args:
        plan: the search's plan.
        prepared: its space, data and tuner (whose oracle holds every trial).
        result: what the search itself measured (seconds, trials run here, distribution).
        echo: receives the summary lines.
    """
    space, tuner, raw, out = prepared.space, prepared.tuner, prepared.raw, result.out
    rows = collect_rows(tuner, plan, space)
    best = pick_best(rows, plan.direction)
    front = front_rows(rows, plan.cost, plan.direction) if plan.cost else []
    front_text = front_markdown(front, plan.objective, plan.cost) if plan.cost else ""
    write_tables(out, rows, plan.objective, space, front=front_text)
    plot_objective(out, rows, plan.objective, plan.model, best)
    result.rows, result.best, result.front = rows, best, front
    summary: dict[str, Any] = {"model": plan.model, "algorithm": plan.algorithm,
                               "objective": plan.objective,
                               "trials": {s: sum(r.status == s for r in rows)
                                          for s in STATUSES},
                               "training_epochs": sum(r.epochs or 0 for r in rows)}
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
            name = f"trial{best.trial_id}"
            echo(f"retraining trial {best.trial_id} with zoo.training.train ...")
            result.best_run, result.best_test_metrics = _retrain(
                plan, name, builder, training, raw, echo)
        if plan.compare_default:
            echo("training the default configuration for comparison ...")
            default = {k: v for k, v in space.fixed.items()}
            result.default_run, result.default_test_metrics = _retrain(
                plan, "default", default, {}, raw, echo)
    if plan.cost:
        default = default_point(plan, space, result)
        plot_pareto(out, rows, plan.objective, plan.cost, plan.direction, plan.model, default)
        summary["cost"] = plan.cost
        summary["pareto_front"] = [r.trial_id for r in front]
        summary["default_configuration"] = vars(default)
        if plan.cost == "latency":
            summary["latency_measured_on"] = latency_machine()
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
