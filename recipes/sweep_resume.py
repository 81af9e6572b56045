"""Extending a sweep: a `zoo compare --sweep` into a folder that already holds one reuses its
finished runs.

A run is keyed by its full configuration: the settings every run of the folder shares (its
``config.json``: model, ``--set`` values, data, epochs, optimizer, ...) plus the run's recipe
set, swept value, seed, learning rate and batch size (the last two as the run used them, after
the sweep and the recipes, as its row in the runs CSV records them). Rerunning the same command
with ``--seeds 3`` after ``--seeds 2``, or with more values or recipe sets, trains only the
missing runs. A run not finished yet keeps its epoch history and Keras backup in
``unfinished/`` until its row is written, so a run killed half-way resumes from its last
finished epoch. A folder whose shared settings differ is refused before any data loads
(``zoo.training.job_folder``, as for runs and searches), so no run measured under other
settings is mixed in or overwritten.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from pathlib import Path
from typing import Any

from recipes.base import RecipeError
from recipes.compare import CompareRun, RunSettings
from zoo.core.runs import CONFIG_FILE
from zoo.training.job_folder import JobFolderError, earlier_job, read_job_config
from zoo.training.settings import JOB_SETTINGS, setting_defaults

# The backups of the runs that have not finished yet (zoo.training.train's backup_dir).
UNFINISHED_DIR = "unfinished"
# What every run of a sweep folder shares; with ``run_key``, a run's full configuration. The
# learning rate and batch size are per run (a sweep or recipe changes them), and the target is
# not here: steps to it are recomputed from the stored curves. Nor is the input path: in memory
# or streamed, a run sees the same images (zoo.data.inputs; JOB_SETTINGS leaves it out).
SHARED_SETTINGS = ("model", "hparams", *(name for name in JOB_SETTINGS
                                          if name not in ("learning_rate", "batch_size", "seed")))
# Folders written before a setting existed used its default.
UNRECORDED_DEFAULTS = setting_defaults(RunSettings)


def earlier_config(out_dir: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The ``config.json`` of an earlier sweep into ``out_dir``, checked against ``settings``.

    Args:
        out_dir: the sweep's output folder (it need not exist).
        settings: this sweep's values of ``SHARED_SETTINGS``.

    Returns:
        The earlier configuration, or None when the folder holds no sweep yet.

    Raises:
        RecipeError: the folder holds sweep runs without a configuration, another kind of
            output, or a sweep run with different shared settings.
    """
    config_path = out_dir / CONFIG_FILE
    if not config_path.exists():
        stray = sorted(out_dir.glob("sweep-*-runs.csv")) if out_dir.is_dir() else []
        if stray:
            raise RecipeError(f"{stray[0]} has no {CONFIG_FILE} beside it, so the settings of "
                              f"its runs are unknown; choose another --out")
        return None
    try:
        old = read_job_config(out_dir)
        if "sweeps" not in old:
            raise RecipeError(f"{out_dir} holds a zoo compare without --sweep; choose another "
                              f"--out so its results are kept")
        earlier = earlier_job(out_dir, settings, SHARED_SETTINGS, defaults=UNRECORDED_DEFAULTS,
                              what="sweep runs",
                              advice="rerun with the same settings to add seeds, values or "
                                     "recipe sets there, or choose another --out")
    except JobFolderError as err:
        raise RecipeError(str(err)) from None
    return earlier.config


def read_finished_runs(path: Path, *, target: float, chance_loss: float) -> list[CompareRun]:
    """The runs in a sweep's ``sweep-KEY-runs.csv`` (none when it does not exist).

    Args:
        path: the runs CSV that ``recipes.compare.runs_csv`` wrote.
        target: this sweep's ``--target``; epochs to it are recomputed from each curve.
        chance_loss: ln(classes) of the data set, for the at-chance count.

    Returns:
        One run per row; ``value`` is the value as written in the CSV (a string).

    Raises:
        RecipeError: the file is not a readable runs CSV.
    """
    if not path.exists():
        return []
    try:
        with path.open(newline="") as f:
            return [_run_from_row(row, target, chance_loss) for row in csv.DictReader(f)]
    except (OSError, KeyError, ValueError, csv.Error) as err:
        raise RecipeError(f"cannot read the finished runs in {path} ({type(err).__name__}: "
                          f"{err}); move it away or choose another --out") from None


def _run_from_row(row: dict[str, str], target: float, chance_loss: float) -> CompareRun:
    curve = [float(v) for v in row["val_curve"].split()]
    reached = [i for i, acc in enumerate(curve, start=1) if acc >= target]
    diverged = row["diverged"] == "True"
    return CompareRun(
        row["recipes"], seed=int(row["seed"]), learning_rate=float(row["learning_rate"]),
        train_accuracy=float(row["train_accuracy"]), val_accuracy=float(row["val_accuracy"]),
        epochs_to_target=reached[0] if reached else None, seconds=float(row["seconds"]),
        val_curve=curve, diverged=diverged, value=row["value"],
        batch_size=int(row["batch_size"]), steps_per_epoch=int(row["steps_per_epoch"]),
        epochs_run=max(len(curve), 1), fit_seconds=float(row["fit_seconds"]),
        final_loss=float(row["final_loss"]) if row["final_loss"] else math.nan,
        chance_loss=chance_loss)


def unfinished_run_dir(out_dir: Path, sweep_slug: str, key: tuple) -> Path:
    """The folder where the run ``key`` of a sweep keeps its epoch history and backup until
    its row is in the runs CSV: a killed run resumes there from its last finished epoch."""
    text = "-".join(str(part) for part in key)
    readable = re.sub(r"[^A-Za-z0-9_.=+-]+", "_", text)[:60]
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    return out_dir / UNFINISHED_DIR / f"sweep-{sweep_slug}-{readable}-{digest}"


def run_key(recipe_set: str, value: Any, seed: int, learning_rate: float,
            batch_size: int) -> tuple[str, str, int, float, int]:
    """What tells a run from the other runs of its folder; ``value`` as the runs CSV writes it.

    Args:
        recipe_set: the run's recipe set, as given to ``--recipes``.
        value: the swept value.
        seed: the run's seed.
        learning_rate: the learning rate the run trained with (after sweep and recipes).
        batch_size: the mini-batch size it trained with.
    """
    return recipe_set, str(value), int(seed), float(learning_rate), int(batch_size)
