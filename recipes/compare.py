"""Ablations: train one model under several recipe sets on the same split and tabulate.

Every run goes through ``zoo.training.train.train`` (in memory); only the recipes and the seed
change.
Train accuracy is measured on the clean training images with the final model in inference
mode, so augmentation and dropout do not make the train-validation gap look smaller than it is.
A run whose loss becomes NaN/inf is kept in the table as diverged.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from recipes import apply_recipes
from recipes.base import RecipeError
from zoo.core.locks import folder_lock
from zoo.core.registry import get_model_info
from zoo.core.runs import jsonable, write_json_atomic, write_text_atomic
from zoo.data.dataset import Dataset
from zoo.data.inputs import open_source, split_for_model, split_size
from zoo.training.settings import TRAINING_SETTINGS, TrainingSettings, settings_of
from zoo.training.train import TrainingError, TrainPlan, prepare_data, train
from zoo.viz.figure import headless_pyplot, save_figure

COMPARE_DIR = Path("saved_models") / "compare"
RUNS_FILE = "runs.csv"
SUMMARY_FILE = "summary.csv"
TABLE_FILE = "table.md"
CURVES_FILE = "val_curves.png"
# A new recipe set starts at a token that is not a bare key=value continuation.
_CONTINUATION = re.compile(r"^\s*[A-Za-z_][\w-]*\s*=")


@dataclass
class CompareRun:
    """One training run of the ablation."""

    recipe_set: str
    seed: int
    learning_rate: float
    train_accuracy: float
    val_accuracy: float
    epochs_to_target: int | None
    seconds: float
    val_curve: list[float] = field(default_factory=list)
    diverged: bool = False  # the loss became NaN/inf
    value: Any = None  # the swept value (zoo compare --sweep)
    batch_size: int = 0
    steps_per_epoch: int = 0
    epochs_run: int = 0
    fit_seconds: float = math.nan  # model.fit alone, for seconds per epoch
    final_loss: float = math.nan  # training loss of the last epoch
    chance_loss: float = math.nan  # ln(classes): what guessing uniformly scores

    @property
    def failed(self) -> bool:
        """Diverged (NaN/inf) or ended no better than uniform guessing on the training loss."""
        return self.diverged or not self.final_loss < self.chance_loss

    @property
    def steps_to_target(self) -> int | None:
        """Optimizer steps until validation first reached the target (epoch granularity)."""
        if self.epochs_to_target is None:
            return None
        return self.epochs_to_target * self.steps_per_epoch

    @property
    def gap(self) -> float:
        """Train minus validation accuracy (NaN when diverged)."""
        return self.train_accuracy - self.val_accuracy


@dataclass
class Comparison:
    """All runs of an ablation and where their table and plot were written."""

    out_dir: Path
    runs: list[CompareRun]
    target: float
    table: str


def parse_recipe_sets(specs: str | Iterable[str]) -> list[str]:
    """'none,augment:rotation=0.1,flip=none,augment+dropout' -> ['none',
    'augment:rotation=0.1,flip=none', 'augment+dropout']; '+' joins recipes within a set."""
    texts = [specs] if isinstance(specs, str) else list(specs)
    sets: list[str] = []
    for text in texts:
        for token in text.split(","):
            if _CONTINUATION.match(token) and sets and ":" in sets[-1].split("+")[-1]:
                sets[-1] += "," + token.strip()
            elif token.strip():
                sets.append(token.strip())
            else:
                raise RecipeError(f"empty recipe set in {text!r}; separate sets with ',' "
                                  f"and recipes within a set with '+'")
    if not sets:
        raise RecipeError("no recipe sets given; e.g. --recipes none,augment,dropout")
    if len(set(sets)) != len(sets):
        raise RecipeError(f"recipe set listed twice in {', '.join(sets)}")
    return sets


def recipe_set_specs(recipe_set: str) -> list[str]:
    """'augment+dropout:rate=0.3' -> ['augment', 'dropout:rate=0.3']; 'none' -> []."""
    if recipe_set.strip().lower() in ("none", "baseline", "plain"):
        return []
    return [spec for spec in recipe_set.split("+") if spec.strip()]


@dataclass(kw_only=True)
class RunSettings(TrainingSettings):
    """What every run of an ablation shares; ``plan`` adds a recipe set and a seed.

    The shared training settings are ``TrainingSettings``'; an ablation's defaults are 20
    epochs on a tenth of the training split, and run ``i`` of a recipe set trains with seed
    ``seed + i``.
    """

    model: str = field(kw_only=False)
    hparams: dict[str, Any] = field(default_factory=dict)
    epochs: int = 20
    train_fraction: float = 0.1

    def plan(self, recipe_set: str, seed: int, **changes: Any) -> TrainPlan:
        """The plan of run ``seed`` (0, 1, ...): these settings with ``changes`` (plan fields),
        then the recipe set applied (which refuses clashes, e.g. a recipe setting a --set
        value)."""
        base = TrainPlan(model=self.model, hparams=dict(self.hparams),
                         **settings_of(self, seed=self.seed + seed))
        return apply_recipes(dataclasses.replace(base, **changes), recipe_set_specs(recipe_set))


def run_settings(model: str, settings: dict[str, Any]) -> RunSettings:
    """``RunSettings`` of ``model`` from ``compare``'s keywords (``hparams`` may be None)."""
    allowed = {f.name for f in dataclasses.fields(RunSettings)} - {"model"}
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; the settings "
                        f"of a comparison are hparams and {', '.join(TRAINING_SETTINGS)}")
    return RunSettings(model=model, **{**settings, "hparams": dict(settings.get("hparams") or {})})


def check_compare_settings(model: str, seeds: int, target: float) -> None:
    """Refuse a bad seed count, target or model name before any data loads."""
    if not 1 <= seeds <= 20:
        raise RecipeError(f"--seeds must be between 1 and 20, got {seeds}")
    if not 0 < target <= 1:
        raise RecipeError(f"--target is an accuracy in (0, 1], got {target}")
    get_model_info(model)  # unknown model -> error with close matches, before any work


def train_and_measure(plan: TrainPlan, recipe_set: str, data: Dataset, train_split: Dataset,
                      target: float, value: Any = None, backup_dir: Path | None = None,
                      announce: Callable[[str], None] | None = None) -> CompareRun:
    """Train ``plan`` once through ``zoo.training.train.train`` (in memory) and measure the run.

    Args:
        plan: the run's plan (recipes applied).
        recipe_set: the recipe set's name, for the table.
        data: the loaded data set (``train`` takes the plan's training fraction of it).
        train_split: that same fraction, on which train accuracy is measured.
        target: the validation accuracy whose first epoch is recorded.
        value: the swept value of this run (``zoo compare --sweep``), if any.
        backup_dir: where the run keeps its epoch history and backup, so that it resumes
            from its last finished epoch after a kill (``train``'s ``backup_dir``); its
            curve then spans every epoch, its times only this call's.
        announce: receives the line saying from which epoch a killed run resumes.

    Returns:
        The run's accuracies, validation curve, time and whether it diverged.
    """
    import keras

    epoch_logs: list[dict] = []
    plan.callbacks.append(keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs, store=epoch_logs: store.append(dict(logs))))
    start = time.perf_counter()
    try:
        result = train(plan, data=data, verbose=0, write_run=False, backup_dir=backup_dir,
                       announce=lambda line: announce(line) if announce and
                       line.startswith("resuming") else None)
        trained, diverged, fit_seconds = result.model, False, result.seconds
        # Every epoch's logs, those before a resume included.
        epoch_logs[:] = [dict(zip(result.history, row)) for row in zip(*result.history.values())]
    except TrainingError as err:
        if "NaN" not in str(err):
            raise
        trained, diverged, fit_seconds = None, True, time.perf_counter() - start
    seconds = time.perf_counter() - start
    curve = [float(logs.get("val_accuracy", math.nan)) for logs in epoch_logs]
    if trained is not None:
        shape = tuple(trained.input_shape[1:])
        x, y = split_for_model(train_split, "train", shape, mode=plan.input_mode,
                               budget=plan.memory_budget)
        predicted = np.argmax(trained.predict(x, verbose=0), axis=-1)
        train_accuracy = float(np.mean(predicted == y))
        val_accuracy = curve[-1]
    else:
        train_accuracy = val_accuracy = math.nan
    reached = [i for i, acc in enumerate(curve, start=1) if acc >= target]
    return CompareRun(
        recipe_set, seed=plan.seed, learning_rate=plan.learning_rate,
        train_accuracy=train_accuracy, val_accuracy=val_accuracy,
        epochs_to_target=reached[0] if reached else None, seconds=seconds, val_curve=curve,
        diverged=diverged, value=value, batch_size=plan.batch_size,
        steps_per_epoch=math.ceil(split_size(train_split, "train") / plan.batch_size),
        epochs_run=max(len(epoch_logs), 1), fit_seconds=fit_seconds,
        final_loss=float(epoch_logs[-1].get("loss", math.nan)) if epoch_logs else math.nan,
        chance_loss=math.log(train_split.num_classes))


def compare(
    model: str,
    recipe_sets: str | Iterable[str],
    *,
    seeds: int = 3,
    target: float = 0.9,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
    **settings: Any,
) -> Comparison:
    """Train ``model`` under every recipe set and seed; write table, CSVs and curves to ``out``.

    Args:
        model: a registered model name.
        recipe_sets: comma-separated sets, '+' joining recipes within a set, e.g.
            ``"none,augment,augment+dropout:rate=0.3"`` (or a list of such strings).
        seeds: runs per recipe set, seeds ``seed`` .. ``seed + seeds - 1`` (1 to 20).
        target: the validation accuracy whose first epoch is reported as epochs-to-target.
        out: the output folder (default ``saved_models/compare/MODEL-TIME``).
        progress: called with one line per finished run.
        settings: ``RunSettings``' fields shared by every run: ``hparams`` (builder
            hyperparameters) and the training settings (``dataset``, ``data_dir``,
            ``train_fraction`` (default 0.1), ``epochs`` (20), ``learning_rate`` (a recipe may
            change it), ``batch_size``, ``optimizer``, ``seed``, ``deterministic`` (TensorFlow
            op determinism, so a rerun repeats every run exactly), ``dtype_policy``, ...).

    Returns:
        Every run's curves and accuracies, the formatted table and the output folder.
    """
    import keras

    sets = parse_recipe_sets(recipe_sets)
    check_compare_settings(model, seeds, target)
    shared = run_settings(model, settings)
    for recipe_set in sets:  # every bad spec or clash fails here, before training
        shared.plan(recipe_set, 0)
    out_dir = Path(out) if out else COMPARE_DIR / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    with folder_lock(out_dir, what="comparison folder"):  # one writer (zoo.core.locks)
        # An image folder is only listed here; each run decodes or streams it (zoo.data.inputs).
        data = open_source(shared.dataset, data_dir=shared.data_dir)
        train_split = prepare_data(shared.plan("none", 0), data)  # the split every run sees
        train_size = split_size(train_split, "train")
        runs = []
        for recipe_set in sets:
            for seed in range(seeds):
                run = train_and_measure(shared.plan(recipe_set, seed), recipe_set, data,
                                        train_split, target)
                runs.append(run)
                if progress:
                    progress(_run_line(run))

        table = format_table(runs, target=target, model=model, dataset=train_split.name,
                             train_size=train_size, epochs=shared.epochs)
        write_text_atomic(out_dir / TABLE_FILE, table)
        write_text_atomic(out_dir / RUNS_FILE, runs_csv(runs))
        write_text_atomic(out_dir / SUMMARY_FILE, _summary_csv(runs, target))
        plot_val_curves(runs, out_dir / CURVES_FILE, title=f"{model} on {train_split.name} "
                        f"({train_size} training images)")
        write_json_atomic(out_dir / "config.json", {
            "model": model, "hparams": jsonable(shared.hparams), **jsonable(settings_of(shared)),
            "train_size": train_size, "seeds": seeds, "target": target,
            "recipe_sets": sets, "backend": keras.backend.backend()})
        return Comparison(out_dir, runs, target, table)


def _run_line(run: CompareRun) -> str:
    if run.diverged:
        return f"{run.recipe_set} seed {run.seed}: diverged (NaN) after {run.seconds:.1f} s"
    return (f"{run.recipe_set} seed {run.seed}: train {run.train_accuracy:.3f} "
            f"val {run.val_accuracy:.3f} ({run.seconds:.1f} s)")


def mean_spread(values: list[float], digits: int = 3) -> str:
    """"0.912 ± 0.004" over the values that are not NaN ("—" when none are)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "—"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def summarize_runs(runs: list[CompareRun], target: float) -> list[dict[str, Any]]:
    """One row per recipe set: means, standard deviations and counts over seeds."""
    rows = []
    for recipe_set in dict.fromkeys(r.recipe_set for r in runs):
        group = [r for r in runs if r.recipe_set == recipe_set]
        done = [r for r in group if not r.diverged]
        reached = [r.epochs_to_target for r in done if r.epochs_to_target is not None]
        rows.append({
            "recipes": recipe_set,
            "learning_rate": group[0].learning_rate,
            "seeds": len(group),
            "diverged": len(group) - len(done),
            "train_accuracy": mean_spread([r.train_accuracy for r in done]),
            "val_accuracy": mean_spread([r.val_accuracy for r in done]),
            "gap": mean_spread([r.gap for r in done]),
            "epochs_to_target": (mean_spread([float(e) for e in reached], 1)
                                 + (f" ({len(reached)}/{len(group)} reached)"
                                    if len(reached) < len(group) else "")),
            "seconds": mean_spread([r.seconds for r in group], 1),
        })
    return rows


def format_table(runs: list[CompareRun], *, target: float, model: str, dataset: str,
                 train_size: int, epochs: int) -> str:
    """The Markdown table of an ablation (mean ± standard deviation over seeds)."""
    rows = summarize_runs(runs, target)
    seeds = max(r["seeds"] for r in rows)
    lines = [
        f"{model} on {dataset}, {train_size} training images, {epochs} epochs, {seeds} "
        f"seed(s); mean ± standard deviation over seeds. Train accuracy is measured on the "
        f"clean training images after the last epoch.",
        "",
        f"| recipes | lr | train acc | val acc | train − val gap | epochs to val acc "
        f"{target:g} | time (s) | diverged |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['recipes']} | {row['learning_rate']:g} | {row['train_accuracy']} | "
            f"{row['val_accuracy']} | {row['gap']} | {row['epochs_to_target']} | "
            f"{row['seconds']} | {row['diverged']}/{row['seeds']} |")
    return "\n".join(lines) + "\n"


def runs_csv(runs: list[CompareRun]) -> str:
    """One CSV row per run, with its validation curve."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["recipes", "seed", "learning_rate", "train_accuracy", "val_accuracy",
                     "gap", "epochs_to_target", "seconds", "diverged", "val_curve", "value",
                     "batch_size", "steps_per_epoch", "fit_seconds", "final_loss"])
    for r in runs:
        writer.writerow([r.recipe_set, r.seed, r.learning_rate, r.train_accuracy,
                         r.val_accuracy, r.gap, r.epochs_to_target or "", round(r.seconds, 2),
                         r.diverged, " ".join(f"{v:.4f}" for v in r.val_curve), r.value,
                         r.batch_size, r.steps_per_epoch, round(r.fit_seconds, 2),
                         r.final_loss])
    return buffer.getvalue()


def _summary_csv(runs: list[CompareRun], target: float) -> str:
    rows = summarize_runs(runs, target)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_val_curves(runs: list[CompareRun], path: Path, title: str = "") -> Path:
    """Validation accuracy per epoch for each recipe set: mean line, min-max band over seeds."""

    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for recipe_set in dict.fromkeys(r.recipe_set for r in runs):
        curves = [r.val_curve for r in runs if r.recipe_set == recipe_set and r.val_curve]
        if not curves:
            continue
        length = max(len(c) for c in curves)
        padded = np.full((len(curves), length), np.nan)
        for i, c in enumerate(curves):
            padded[i, :len(c)] = c
        epochs = np.arange(1, length + 1)
        mean = np.nanmean(padded, axis=0)
        lr = next(r.learning_rate for r in runs if r.recipe_set == recipe_set)
        line, = ax.plot(epochs, mean, marker="o", markersize=3, label=f"{recipe_set} (lr {lr:g})")
        if len(curves) > 1:
            ax.fill_between(epochs, np.nanmin(padded, axis=0), np.nanmax(padded, axis=0),
                            color=line.get_color(), alpha=0.15)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    save_figure(fig, path)
    return Path(path)
