"""The results of a search: trial rows, the Markdown/CSV table, the plot and the summary.

Rows are read from keras-tuner's ``Trial`` objects (the oracle's record, so a chief sees the
trials its workers ran); nothing here imports Keras.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from tuning.pruning import PRUNED_METRIC
from tuning.records import SearchPlan, SearchResult, TrialRow
from tuning.space import SearchSpace
from zoo.core.runs import write_text_atomic
from zoo.viz.figure import headless_pyplot, save_figure

TABLE_MD = "trials.md"
TABLE_CSV = "trials.csv"
PLOT_FILE = "objective_vs_params.png"
BEST_FILE = "best_hyperparameters.json"
SUMMARY_FILE = "summary.json"
STATUSES = ("COMPLETED", "PRUNED", "INVALID", "FAILED")


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
    epochs, batch, pruned_at = _last(trial, "epochs"), _last(trial, "batch_size"), _last(
        trial, PRUNED_METRIC)
    status = str(trial.status)
    if status == "COMPLETED" and pruned_at is not None:
        status = "PRUNED"
        note = note or f"pruned after epoch {int(pruned_at)}"
    if not note and trial.status != "COMPLETED" and trial.message:
        note = trial.message.strip().splitlines()[-1]
    return TrialRow(
        trial_id=trial.trial_id,
        status=status,
        values={n: values[n] for n in names if n in values},
        objective=score if trial.status == "COMPLETED" else None,
        params=None if params is None else int(params),
        macs=None if macs is None else int(macs),
        seconds=_last(trial, "seconds"),
        note=note,
        latency_ms=_last(trial, "latency_ms"),
        epochs=None if epochs is None else int(epochs),
        batch_size=None if batch is None else int(batch),
        rss_mb=_last(trial, "rss_mb"),
    )


def format_trial_line(row: TrialRow, objective: str) -> str:
    """'trial 03 COMPLETED val_accuracy 0.9630  12,345 params  3.4 s  | filters_1=16 ...'."""
    hps = " ".join(f"{k}={v}" for k, v in row.values.items())
    if row.status in ("COMPLETED", "PRUNED"):
        head = f"{objective} {row.objective:.4f}  {row.params:,} params"
        if row.latency_ms is not None:
            head += f"  {row.latency_ms:.3f} ms"
        if row.status == "PRUNED":
            head += f"  ({row.note})"
    else:
        head = row.note or row.status.lower()
    seconds = f"  {row.seconds:.1f} s" if row.seconds is not None else ""
    return f"trial {row.trial_id} {row.status:9s} {head}{seconds}  | {hps}"


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
    header = ["trial", "status", *names, objective, "params", "MACs", "latency_ms", "epochs",
              "batch", "seconds", "rss_mb", "note"]
    cells = []
    for r in rows:
        cells.append([r.trial_id, r.status, *(_cell(r.values.get(n)) for n in names),
                      "" if r.objective is None else f"{r.objective:.4f}",
                      "" if r.params is None else f"{r.params}",
                      "" if r.macs is None else f"{r.macs}",
                      "" if r.latency_ms is None else f"{r.latency_ms:.3f}",
                      "" if r.epochs is None else f"{r.epochs}",
                      "" if r.batch_size is None else f"{r.batch_size}",
                      "" if r.seconds is None else f"{r.seconds:.1f}",
                      "" if r.rss_mb is None else f"{r.rss_mb:.0f}", r.note])
    return header, cells


NUMERIC = ("params", "MACs", "latency_ms", "epochs", "batch", "seconds", "rss_mb")


def markdown_table(rows: list[TrialRow], objective: str, space: SearchSpace | None = None
                   ) -> str:
    """The trials as a Markdown table (numbers with thousands separators)."""
    header, cells = table_rows(rows, objective, space)
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---:" if h in NUMERIC or h == objective
                               else "---" for h in header) + " |"]
    for row in cells:
        pretty = [f"{int(c):,}" if h in ("params", "MACs") and c else c.replace("|", "/")
                  for h, c in zip(header, row)]
        lines.append("| " + " | ".join(pretty) + " |")
    return "\n".join(lines) + "\n"


def write_tables(out: Path, rows: list[TrialRow], objective: str,
                 space: SearchSpace | None = None, front: str = "") -> None:
    """trials.md (with the Pareto front's table, if given) and trials.csv, atomically."""
    header, cells = table_rows(rows, objective, space)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(cells)
    write_text_atomic(out / TABLE_CSV, buffer.getvalue())
    text = markdown_table(rows, objective, space)
    write_text_atomic(out / TABLE_MD, f"{front}\nAll trials:\n\n{text}" if front else text)


def plot_objective(out: Path, rows: list[TrialRow], objective: str, model: str,
                   best: TrialRow | None) -> Path:
    """Scatter of the objective against the parameter count (log scale), best trial starred."""

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


def summary_lines(result: SearchResult, plan: SearchPlan) -> list[str]:
    """The end-of-search summary printed by `zoo tune`."""
    counts = {s: sum(r.status == s for r in result.rows) for s in STATUSES}
    pruned = f"{counts['PRUNED']} pruned, " if counts["PRUNED"] else ""
    lines = [f"{len(result.rows)} trials: {counts['COMPLETED']} completed, {pruned}"
             f"{counts['INVALID']} refused before training, {counts['FAILED']} failed "
             f"({result.seconds:.1f} s this session, {result.trials_run_here} run here; "
             f"{sum(r.epochs or 0 for r in result.rows)} training epochs)"]
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
    if plan.cost:
        lines.append(f"Pareto front ({plan.objective} against {plan.cost}): trials "
                     + ", ".join(r.trial_id for r in result.front)
                     + f"; plot {result.out / 'pareto.png'}")
    lines.append(f"results: {result.out / TABLE_MD}, {result.out / TABLE_CSV}, "
                 f"{result.out / PLOT_FILE}, {result.out / BEST_FILE}")
    return lines
