"""The table (Markdown, CSV) and plot of a `zoo compare --sweep`: one cell per recipe set and
swept value, mean ± standard deviation over seeds."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from recipes.compare import CompareRun, mean_spread
from recipes.sweep_spec import Sweep
from zoo.viz.figure import headless_pyplot, save_figure


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)


def sweep_cells(sweep: Sweep, runs: list[CompareRun], target: float) -> list[dict[str, Any]]:
    """One row per (recipe set, value): mean ± std over seeds, failures, time, steps."""
    rows = []
    for recipe_set in dict.fromkeys(r.recipe_set for r in runs):
        for value in sweep.values:
            group = [r for r in runs if r.recipe_set == recipe_set and r.value == value]
            if not group:
                continue
            done = [r for r in group if not r.diverged]
            steps = [float(r.steps_to_target) for r in done if r.steps_to_target is not None]
            per_epoch = [r.fit_seconds / r.epochs_run for r in group if r.epochs_run]
            rows.append({
                "recipes": recipe_set,
                sweep.key: _format_value(value),
                "seeds": len(group),
                "val_accuracy": mean_spread([r.val_accuracy for r in done], 3),
                "best_val_accuracy": mean_spread([max(r.val_curve) for r in done if r.val_curve],
                                               3),
                "diverged": sum(r.diverged for r in group),
                "at_chance": sum(r.failed and not r.diverged for r in group),
                "seconds_per_epoch": mean_spread(per_epoch, 1),
                f"steps_to_{target:g}": (mean_spread(steps, 0) + (
                    f" ({len(steps)}/{len(group)} reached)" if len(steps) < len(group) else "")),
            })
    return rows


def format_sweep_table(sweep: Sweep, runs: list[CompareRun], *, target: float,
                       caption: str) -> str:
    """The Markdown table of a sweep."""
    rows = sweep_cells(sweep, runs, target)
    lines = [
        f"{caption}; mean ± standard deviation over seeds. Diverged: the loss became NaN/inf "
        f"(left out of the accuracies); at chance: the last epoch's training loss was no lower "
        f"than uniform guessing scores (ln classes), i.e. nothing learned or learning lost. "
        f"Steps to {target:g}: optimizer steps until the validation accuracy first reached it "
        f"(counted at epoch ends).",
        "",
        f"| recipes | {sweep.key} | val acc (last epoch) | best val acc | diverged | "
        f"at chance | s / epoch | steps to val acc {target:g} |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(f"| {row['recipes']} | {row[sweep.key]} | {row['val_accuracy']} | "
                     f"{row['best_val_accuracy']} | {row['diverged']}/{row['seeds']} | "
                     f"{row['at_chance']}/{row['seeds']} | "
                     f"{row['seconds_per_epoch']} | {row[f'steps_to_{target:g}']} |")
    return "\n".join(lines) + "\n"


def sweep_csv(sweep: Sweep, runs: list[CompareRun], target: float) -> str:
    """The sweep's table as CSV (one row per cell)."""
    rows = sweep_cells(sweep, runs, target)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def plot_sweep(sweep: Sweep, runs: list[CompareRun], path: Path, title: str = "") -> Path:
    """Last-epoch validation accuracy against the swept value: one line per recipe set (mean
    over seeds), the min-max spread over seeds as a band, an x where every seed diverged."""
    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sweep.values)
    xs = (np.array(sweep.values, dtype=float) if numeric
          else np.arange(len(sweep.values), dtype=float))
    for recipe_set in dict.fromkeys(r.recipe_set for r in runs):
        cells = [[r.val_accuracy for r in runs
                  if r.recipe_set == recipe_set and r.value == v and not r.diverged]
                 for v in sweep.values]
        mean = np.array([np.mean(c) if c else np.nan for c in cells])
        low = np.array([np.min(c) if c else np.nan for c in cells])
        high = np.array([np.max(c) if c else np.nan for c in cells])
        line, = ax.plot(xs, mean, marker="o", markersize=4, label=recipe_set)
        ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2)
        lost = [x for x, c in zip(xs, cells) if not c]
        if lost:
            ax.plot(lost, [0.0] * len(lost), "x", color=line.get_color(), markersize=9)
    classes = round(math.exp(runs[0].chance_loss)) if runs else 0
    if classes:
        ax.axhline(1 / classes, linestyle=":", color="grey", label="chance")
    if sweep.log_scale:
        ax.set_xscale("log", base=2 if sweep.target == "batch_size" else 10)
    if not numeric or sweep.target == "batch_size":
        ax.set_xticks(xs, [_format_value(v) for v in sweep.values])
    ax.set_xlabel(sweep.key)
    ax.set_ylabel("validation accuracy (last epoch)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="recipes (x: every seed diverged)", title_fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)
    return Path(path)
