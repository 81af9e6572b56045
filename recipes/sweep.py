"""`zoo compare NAME --sweep KEY=V1,V2,...`: one setting swept, crossed with recipe sets and seeds.

A sweep changes one thing per run — the learning rate, the mini-batch size, a builder
hyperparameter (``normalization=none,batch,group``) or a recipe parameter
(``dropout:rate=0,0.3,0.5``) — and otherwise runs exactly what ``zoo compare`` runs: the same
split, ``zoo.training.train.train`` in memory, one row per run. Every spec is checked (key, types,
clashes) before any data loads. Each sweep writes one table (Markdown and CSV) and one plot
(``recipes/sweep_report.py``); a sweep into its own earlier folder trains only the runs that
folder does not hold yet (``recipes/sweep_resume.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from recipes import get_recipe, parse_recipe
from recipes.base import RecipeError, parse_spec
from recipes.compare import (
    COMPARE_DIR,
    RUNS_FILE,
    CompareRun,
    RunSettings,
    check_compare_settings,
    parse_recipe_sets,
    recipe_set_specs,
    run_settings,
    runs_csv,
    train_and_measure,
)
from recipes.sweep_report import format_sweep_table, plot_sweep, sweep_csv
from recipes.sweep_resume import (
    CONFIG_FILE,
    SHARED_SETTINGS,
    UNFINISHED_DIR,
    earlier_config,
    read_finished_runs,
    run_key,
    unfinished_run_dir,
)
from recipes.sweep_spec import LOG_KEYS, Sweep  # noqa: F401  (LOG_KEYS: part of this module's API)
from zoo.core.hyperparameter_types import parse_literal
from zoo.core.locks import folder_lock
from zoo.core.names import did_you_mean
from zoo.core.registry import get_model_info, normalize_hyperparameters
from zoo.core.runs import jsonable, write_json_atomic, write_text_atomic
from zoo.data.dataset import Dataset
from zoo.data.inputs import open_source, split_size
from zoo.training.train import prepare_data

# Plan fields a sweep may change, under the names users type (the CLI's option names).
PLAN_KEYS = {"lr": "learning_rate", "learning_rate": "learning_rate",
             "batch_size": "batch_size", "batch-size": "batch_size"}
# Builder arguments fixed by the data set or the task, not by the experimenter.
NOT_SWEPT = {"num_classes", "input_shape", "include_top", "pooling", "classifier_activation"}


def _split_values(key: str, text: str) -> list[str]:
    # ';' separates values when values are themselves lists, e.g. filters=4,8;8,16.
    parts = [p.strip() for p in text.split(";" if ";" in text else ",")]
    if not text.strip() or any(not p for p in parts):
        raise RecipeError(f"--sweep {key}: empty value in {text!r}; write {key}=V1,V2,... "
                          f"(values that are lists: V1a,V1b;V2a,V2b)")
    if len(set(parts)) != len(parts):
        raise RecipeError(f"--sweep {key}: a value is listed twice in {text!r}")
    return parts


def _literal(text: str) -> Any:
    return parse_literal(text)


def _plan_value(key: str, field_name: str, text: str) -> Any:
    if field_name == "batch_size":
        value = _literal(text)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RecipeError(f"--sweep {key}: batch sizes are positive integers, got {text!r}")
        return value
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise RecipeError(f"--sweep {key}: learning rates are positive numbers, got {text!r}")
    return value


def _sweep_keys(model: str) -> list[str]:
    hparams = [k for k in get_model_info(model).hyperparameters if k not in NOT_SWEPT]
    from recipes import list_recipes

    recipe_params = [f"{cls.name}:{p.name}" for cls in list_recipes() for p in cls.params()]
    return ["lr", "batch_size", *hparams, *recipe_params]


def parse_sweep(text: str, model: str, hparams: dict[str, Any] | None = None) -> Sweep:
    """'lr=1e-3,1e-2' / 'normalization=none,batch' / 'dropout:rate=0,0.5' -> a checked Sweep.

    Args:
        text: ``KEY=V1,V2,...``; KEY is ``lr``, ``batch_size``, a builder hyperparameter of
            ``model`` or ``RECIPE:PARAM``; values that are lists are separated by ';'.
        model: the registered model whose hyperparameters may be swept.
        hparams: the ``--set`` values; sweeping one of them is refused.

    Returns:
        The sweep with its values converted to the key's type.

    Raises:
        RecipeError: an unknown key (with close matches), an empty or repeated value, a value of
            the wrong type, or a key also given by ``--set``.
    """
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"--sweep expects KEY=V1,V2,..., got {text!r}; e.g. --sweep "
                          f"lr=1e-3,1e-2 or --sweep dropout:rate=0,0.3,0.5")
    values = _split_values(key, rest)
    info = get_model_info(model)
    if key in PLAN_KEYS:
        field_name = PLAN_KEYS[key]
        return Sweep(key, "plan", field_name,
                     tuple(_plan_value(key, field_name, v) for v in values))
    if ":" in key:
        return _recipe_sweep(key, values)
    if key in NOT_SWEPT and key in info.hyperparameters:
        raise RecipeError(f"--sweep {key}: {key} is fixed by the data set or task, not swept")
    if key not in info.hyperparameters:
        raise RecipeError(f"--sweep: unknown key {key!r}{did_you_mean(key, _sweep_keys(model))}; "
                          f"sweep lr, batch_size, a hyperparameter of {model} (zoo show {model})"
                          f" or RECIPE:PARAM (zoo recipes)")
    if key in (hparams or {}):
        raise RecipeError(f"--sweep {key} and --set {key}={hparams[key]!r} both set {key}; "
                          f"drop one of them")
    try:
        converted = tuple(normalize_hyperparameters(model, {key: _literal(v)})[key]
                          for v in values)
    except ValueError as err:
        raise RecipeError(f"--sweep {key}: {err}") from None
    return Sweep(key, "hparam", key, converted)


def _recipe_sweep(key: str, values: list[str]) -> Sweep:
    name, _, param = key.partition(":")
    cls = get_recipe(name)
    known = [p.name for p in cls.params()]
    param = param.strip().replace("-", "_")
    if param not in known:
        raise RecipeError(f"--sweep {key}: recipe {cls.name!r} has no parameter {param!r}"
                          f"{did_you_mean(param, known)}; its parameters: "
                          f"{', '.join(known) or 'none'}")
    # Creating the recipe converts and range-checks each value (e.g. dropout rate in [0, 1)).
    converted = tuple(getattr(cls(**{param: v}), param) for v in values)
    return Sweep(key, "recipe", f"{cls.name}:{param}", converted)


def with_swept_recipe(recipe_set: str, sweep: Sweep, value: Any) -> str:
    """The recipe set with the swept recipe parameter set to ``value``: merged into the set's
    recipe of that name, else added with '+' ('augment' + dropout:rate=0.3 ->
    'augment+dropout:rate=0.3')."""
    name, param = sweep.target.split(":")
    specs = recipe_set_specs(recipe_set)
    for i, spec in enumerate(specs):
        if parse_recipe(spec).name != name:
            continue
        if param in parse_spec(spec)[1]:
            raise RecipeError(f"recipe set {recipe_set!r} already sets {sweep.target}, which "
                              f"--sweep {sweep.key} varies; drop it from the set")
        specs[i] = spec + ("," if ":" in spec else ":") + f"{param}={value}"
        return "+".join(specs)
    return "+".join([*specs, f"{name}:{param}={value}"])


@dataclass
class SweepResult:
    """A finished sweep: its runs and the files written."""

    sweep: Sweep
    runs: list[CompareRun]
    table: str
    table_path: Path
    plot_path: Path


def _plan_for(settings: RunSettings, sweep: Sweep, recipe_set: str, value: Any, seed: int):
    if sweep.kind == "plan":
        return settings.plan(recipe_set, seed, **{sweep.target: value})
    if sweep.kind == "hparam":
        return settings.plan(recipe_set, seed, hparams={**settings.hparams, sweep.target: value})
    return settings.plan(with_swept_recipe(recipe_set, sweep, value), seed)


def compare_sweeps(
    model: str,
    sweeps: Iterable[str],
    recipe_sets: str | Iterable[str] = "none",
    *,
    seeds: int = 3,
    target: float = 0.9,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> list[SweepResult]:
    """Run every sweep (value x recipe set x seed) like ``zoo compare`` and write its table,
    CSVs and plot to ``out``.

    Args:
        model: a registered model name.
        sweeps: ``KEY=V1,V2,...`` specs (see ``parse_sweep``); each is run on its own.
        recipe_sets: the recipe sets crossed with every value (``zoo compare --recipes``).
        seeds: runs per cell, seeds ``seed`` .. ``seed + seeds - 1`` (1 to 20).
        target: the validation accuracy whose first step count is reported.
        out: the output folder (default ``saved_models/compare/MODEL-sweep-TIME``).
        progress: called with one line per finished run.
        settings: ``RunSettings``' fields shared by every run, as for ``compare``:
            ``hparams`` (``--set``) and the training settings; the learning rate and batch
            size apply where they are not swept.

    Returns:
        One result per sweep, in the order given.
    """
    check_compare_settings(model, seeds, target)
    sets = parse_recipe_sets(recipe_sets)
    settings = run_settings(model, settings)
    parsed = [parse_sweep(text, model, settings.hparams) for text in sweeps]
    if not parsed:
        raise RecipeError("no --sweep given; e.g. --sweep lr=1e-3,1e-2")
    if len({s.target for s in parsed}) != len(parsed):
        raise RecipeError("the same key is swept twice; give each key one --sweep")
    for sweep in parsed:  # every clash between sweep, sets and --set fails before data loads
        for recipe_set in sets:
            for value in sweep.values:
                _plan_for(settings, sweep, recipe_set, value, 0)
    out_dir = (Path(out) if out else
               COMPARE_DIR / f"{model}-sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    with folder_lock(out_dir, what="sweep folder"):  # one writer (zoo.core.locks)
        shared = {name: getattr(settings, name) for name in SHARED_SETTINGS}
        earlier = earlier_config(out_dir, shared)
        data = open_source(settings.dataset, data_dir=settings.data_dir)  # a folder: listed
        train_split = prepare_data(settings.plan("none", 0), data)
        train_size = split_size(train_split, "train")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        earlier_loads = _earlier_loads(earlier)
        write_json_atomic(out_dir / CONFIG_FILE, {
            **jsonable(shared), "learning_rate": settings.learning_rate,
            "batch_size": settings.batch_size, "seed": settings.seed,
            "train_size": train_size, "seeds": seeds, "target": target,
            "recipe_sets": sets, "sweeps": _sweeps_in_folder(parsed, earlier),
            "load_average_1min": load, "earlier_load_averages_1min": earlier_loads})
        caption = (f"{model} on {train_split.name}, {train_size} training images, "
                   f"{settings.epochs} epoch(s), {seeds} seed(s), 1-minute load average {load:.1f} "
                   f"at the start")
        return [_run_sweep(sweep, sets, seeds, settings, data, train_split, target, out_dir,
                           caption, earlier_loads, progress) for sweep in parsed]


def _run_sweep(sweep: Sweep, sets: list[str], seeds: int, settings: RunSettings, data: Dataset,
               train_split: Dataset, target: float, out_dir: Path, caption: str,
               earlier_loads: list[float], progress: Callable[[str], None] | None
               ) -> SweepResult:
    """Train the cells of one sweep that the folder does not hold yet; write its outputs."""
    finished = {run_key(r.recipe_set, r.value, r.seed, r.learning_rate, r.batch_size): r
                for r in read_finished_runs(_runs_path(out_dir, sweep), target=target,
                                            chance_loss=math.log(train_split.num_classes))}
    requested = [(recipe_set, value, _plan_for(settings, sweep, recipe_set, value, seed))
                 for recipe_set in sets for value in sweep.values for seed in range(seeds)]
    keys = [run_key(recipe_set, value, plan.seed, plan.learning_rate, plan.batch_size)
            for recipe_set, value, plan in requested]
    reused = sum(key in finished for key in keys)
    if reused:
        caption += (f"; {reused} of {len(requested)} runs reused from this folder's earlier "
                    f"invocations (load {', '.join(f'{x:.1f}' for x in earlier_loads)} at "
                    f"their start)")
    runs: list[CompareRun] = []
    for (recipe_set, value, plan), key in zip(requested, keys):
        backup = unfinished_run_dir(out_dir, sweep.slug, key)
        done = finished.pop(key, None)
        if done is not None:
            runs.append(dataclasses.replace(done, value=value))
            shutil.rmtree(backup, ignore_errors=True)  # killed after its row was written
            if progress:
                progress(f"{sweep.key}={value} {recipe_set} seed {plan.seed}: finished "
                         f"earlier, reused")
            continue
        line = f"{sweep.key}={value} {recipe_set} seed {plan.seed}: "
        runs.append(train_and_measure(plan, recipe_set, data, train_split, target, value,
                                      backup_dir=backup,
                                      announce=(lambda text, at=line: progress(at + text))
                                      if progress else None))
        if progress:
            progress(f"{sweep.key}={value} " + _short_line(runs[-1]))
        # Rewritten after every run, so a killed sweep keeps what it measured (and the
        # finished runs it has not reached yet); then the run's backup is no longer needed.
        _write_sweep(sweep, runs, list(finished.values()), out_dir, target, caption)
        shutil.rmtree(backup, ignore_errors=True)
    with contextlib.suppress(OSError):  # empty once every run has its row
        (out_dir / UNFINISHED_DIR).rmdir()
    if reused == len(requested) and progress:
        progress(f"--sweep {sweep.key}: all {reused} runs had already finished in {out_dir}; "
                 f"nothing trained")
    return _write_sweep(sweep, runs, list(finished.values()), out_dir, target, caption)


def _runs_path(out_dir: Path, sweep: Sweep) -> Path:
    return out_dir / f"sweep-{sweep.slug}-{RUNS_FILE}"


def _earlier_loads(earlier: dict[str, Any] | None) -> list[float]:
    """The load averages at the start of the folder's earlier invocations, oldest first."""
    if earlier is None:
        return []
    return [*earlier.get("earlier_load_averages_1min", []), earlier["load_average_1min"]]


def _sweeps_in_folder(parsed: list[Sweep], earlier: dict[str, Any] | None) -> list[dict]:
    """This invocation's sweeps, and the earlier ones whose files stay in the folder."""
    now = [{"key": s.key, "values": list(s.values)} for s in parsed]
    swept = {s.key for s in parsed} | {s.target for s in parsed}
    kept = [old for old in (earlier or {}).get("sweeps", [])
            if old["key"] not in swept and PLAN_KEYS.get(old["key"]) not in swept]
    return kept + now


def _write_sweep(sweep: Sweep, runs: list[CompareRun], kept: list[CompareRun], out_dir: Path,
                 target: float, caption: str) -> SweepResult:
    """Table, CSVs and plot of ``runs``; the runs CSV also keeps ``kept``, finished runs of
    the folder that this invocation did not ask for (a value or seed left out this time)."""
    table = format_sweep_table(sweep, runs, target=target, caption=caption)
    stem = out_dir / f"sweep-{sweep.slug}"
    write_text_atomic(stem.with_suffix(".md"), table)
    write_text_atomic(stem.with_suffix(".csv"), sweep_csv(sweep, runs, target))
    write_text_atomic(_runs_path(out_dir, sweep), runs_csv(runs + kept))
    plot = plot_sweep(sweep, runs, stem.with_suffix(".png"), title=caption.split(", 1-min")[0])
    return SweepResult(sweep, list(runs), table, stem.with_suffix(".md"), plot)


def _short_line(run: CompareRun) -> str:
    if run.diverged:
        return f"{run.recipe_set} seed {run.seed}: diverged (NaN) after {run.seconds:.1f} s"
    return (f"{run.recipe_set} seed {run.seed}: val {run.val_accuracy:.3f} "
            f"loss {run.final_loss:.3f} ({run.seconds:.1f} s)")
