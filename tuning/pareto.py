"""Accuracy against cost: the Pareto front of a search, its table and its plot.

keras-tuner ranks trials by one number (its ``MultiObjective`` adds objectives together), so
there is no trade-off curve. Here every trained trial carries its cost (parameters, MACs or
measured latency, ``--cost``) next to its objective, and the front is the set of trials that
no other trial beats on both: at most the same cost and at least as good an objective, better
on one. Nothing here imports Keras; the plot imports matplotlib when it is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tuning.records import TrialRow

COSTS = ("params", "macs", "latency")
COST_LABELS = {"params": "parameters", "macs": "MACs (multiply-accumulates per image)",
               "latency": "latency, ms (batch 1, inference, median; this machine)"}
PARETO_PLOT = "pareto.png"


def dominates(a: tuple[float, float], b: tuple[float, float], direction: str = "max") -> bool:
    """Whether point a = (cost, objective) beats b: no worse on both, strictly better on one."""
    cost_a, obj_a = a
    cost_b, obj_b = b
    better_obj = obj_a > obj_b if direction == "max" else obj_a < obj_b
    no_worse_obj = better_obj or obj_a == obj_b
    return cost_a <= cost_b and no_worse_obj and (cost_a < cost_b or better_obj)


def pareto_front(points: Sequence[tuple[float, float]], direction: str = "max") -> list[int]:
    """Indices of the points no other point dominates, cheapest first.

    Args:
        points: (cost, objective) pairs; lower cost is better.
        direction: 'max' when a higher objective is better (accuracy), 'min' for a loss.

    Identical points do not dominate each other, so ties are all on the front.
    """
    front = [i for i, p in enumerate(points)
             if not any(dominates(q, p, direction) for j, q in enumerate(points) if j != i)]
    return sorted(front, key=lambda i: (points[i][0], i))


def row_cost(row: TrialRow, cost: str) -> float | None:
    """The trial's cost of the given kind (None when it was not measured)."""
    value = {"params": row.params, "macs": row.macs, "latency": row.latency_ms}[cost]
    return None if value is None else float(value)


def trained_rows(rows: list[TrialRow], cost: str) -> list[TrialRow]:
    """Trials trained to the end with an objective and a cost: the candidates for the front."""
    return [r for r in rows if r.status == "COMPLETED" and r.objective is not None
            and row_cost(r, cost) is not None]


def front_rows(rows: list[TrialRow], cost: str, direction: str) -> list[TrialRow]:
    """The trials on the Pareto front of objective against ``cost``, cheapest first."""
    candidates = trained_rows(rows, cost)
    points = [(row_cost(r, cost), r.objective) for r in candidates]
    return [candidates[i] for i in pareto_front(points, direction)]


@dataclass
class DefaultPoint:
    """The builder's default configuration: its cost, and its objective when it was trained."""

    cost: float
    objective: float | None = None
    label: str = "default configuration"


def front_markdown(front: list[TrialRow], objective: str, cost: str) -> str:
    """The front as a Markdown table (cheapest first)."""
    names: list[str] = []
    for row in front:
        names += [n for n in row.values if n not in names]
    header = ["trial", *names, objective, "params", "MACs", "latency ms"]
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if h == "trial" or h in names else "---:"
                               for h in header) + " |"]
    for r in front:
        cells = [r.trial_id, *(str(r.values.get(n, "")) for n in names), f"{r.objective:.4f}",
                 "" if r.params is None else f"{r.params:,}",
                 "" if r.macs is None else f"{r.macs:,}",
                 "" if r.latency_ms is None else f"{r.latency_ms:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return (f"Pareto front ({objective} against {COST_LABELS[cost]}): the trials no other "
            f"trial beats on both, cheapest first.\n\n" + "\n".join(lines) + "\n")


def plot_pareto(out: Path, rows: list[TrialRow], objective: str, cost: str, direction: str,
                model: str, default: DefaultPoint | None = None) -> Path:
    """pareto.png: every trained trial, the front joined and highlighted, the default marked."""
    from zoo.viz.figure import headless_pyplot, save_figure

    plt = headless_pyplot()
    done = trained_rows(rows, cost)
    front = front_rows(rows, cost, direction)
    pruned = [r for r in rows if r.status == "PRUNED" and r.objective is not None
              and row_cost(r, cost) is not None]
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    ax.scatter([row_cost(r, cost) for r in done], [r.objective for r in done], color="0.6",
               label="trained trial")
    if pruned:
        ax.scatter([row_cost(r, cost) for r in pruned], [r.objective for r in pruned],
                   marker="x", color="0.75", label="pruned (objective when stopped)")
    ax.step([row_cost(r, cost) for r in front], [r.objective for r in front], where="post",
            color="tab:red", alpha=0.6)
    ax.scatter([row_cost(r, cost) for r in front], [r.objective for r in front],
               color="tab:red", edgecolor="black", zorder=3, label="Pareto front")
    for r in front:
        ax.annotate(r.trial_id, (row_cost(r, cost), r.objective), textcoords="offset points",
                    xytext=(4, -10), fontsize=7, color="tab:red")
    if default is not None:
        if default.objective is not None:
            ax.scatter([default.cost], [default.objective], marker="D", s=70,
                       color="tab:green", edgecolor="black", zorder=4, label=default.label)
        else:
            ax.axvline(default.cost, color="tab:green", linestyle="--",
                       label=f"{default.label} (cost only)")
    if done or pruned:
        ax.set_xscale("log")
    ax.set_xlabel(COST_LABELS[cost])
    ax.set_ylabel(objective)
    ax.set_title(f"{model}: {len(done)} trained trials, {len(front)} on the front")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    path = out / PARETO_PLOT
    save_figure(fig, path)
    return path
