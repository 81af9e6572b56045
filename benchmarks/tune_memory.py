"""Resident memory over a long search in one process (issue 15: flat over 100 tiny trials).

Runs ``zoo tune lenet5 --space filters=4:16 --space kernel_sizes=3,5 --space
learning_rate=0.0003,0.001,0.003,0.01 --only --epochs 1`` as a library call for ``--trials``
trials, records the process's resident size after every trial (the same number the search
writes in trials.csv's ``rss_mb`` column) and writes ``memory-LABEL.csv`` and ``memory.png``
(every curve in ``--out``) into ``--out``.
``--cleanup`` chooses what runs between trials, to compare: ``full`` (the search's: forget
the trial's custom gradients, clear the Keras session, collect garbage, trim the heap),
``session`` (all but forgetting the custom gradients) or ``none``.

    python benchmarks/tune_memory.py --trials 100 --out benchmarks/results/tune_memory
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100,
                        help="trials to run (0: only redraw memory.png from the CSVs in --out)")
    parser.add_argument("--train-fraction", type=float, default=0.1)
    parser.add_argument("--out", default="benchmarks/results/tune_memory")
    parser.add_argument("--label", default=None, help="name of this curve (default: settings)")
    parser.add_argument("--cleanup", choices=("full", "session", "none"), default="full",
                        help="between trials: the search's clean-up (full), all but forgetting "
                             "the trial's custom gradients (session), or nothing (none)")
    parser.add_argument("--isolate", action="store_true", help="each trial in a fresh process")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import tuning.resources as resources
    import tuning.tuners as tuners
    from tuning.tune import SearchPlan, run_search

    if args.cleanup == "none":
        tuners.free_memory = lambda keep_gradients=None: None
    elif args.cleanup == "session":
        tuners.free_memory = lambda keep_gradients=None: resources.free_memory(None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = args.label or ("isolate" if args.isolate else f"cleanup-{args.cleanup}")
    rows: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    def echo(line: str) -> None:
        if line.startswith("trial ") and " out of memory" not in line:
            rows.append((len(rows) + 1, resources.resident_mb(), time.perf_counter() - start))
            print(f"{rows[-1][0]:4d}  {rows[-1][1]:7.1f} MB  {rows[-1][2]:6.0f} s", flush=True)
            _write(out, label, rows)

    # 3 x 3 x 2 x 2 x 4 = 144 configurations (36 architectures): keras-tuner's random search
    # stops when it keeps drawing configurations already tried, which with 108 happened after
    # 95 trials (the filters x kernel sizes alone have 36).
    space = {"filters": "4:16", "kernel_sizes": "3,5",
             "learning_rate": "0.0003,0.001,0.003,0.01"}
    plan = SearchPlan(model="lenet5", space=space,
                      only=True, max_trials=args.trials, epochs=1, retrain=False,
                      train_fraction=args.train_fraction, isolate=args.isolate,
                      out=str(out / f"search-{label}"))
    if args.trials:
        run_search(plan, echo=echo)
        _write(out, label, rows)
    plot(out)
    if len(rows) >= 10:
        print(f"{label}: {rows[9][1]:.0f} MB after trial 10, {rows[-1][1]:.0f} MB after trial "
              f"{rows[-1][0]}: growth {rows[-1][1] - rows[9][1]:+.0f} MB")


def plot(out: Path) -> Path:
    """memory.png: resident memory against trial for every memory-*.csv in ``out``."""
    from zoo.viz.figure import headless_pyplot, save_figure

    plt = headless_pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for path in sorted(out.glob("memory-*.csv")):
        with path.open() as f:
            rows = list(csv.DictReader(f))
        ax.plot([int(r["trial"]) for r in rows], [float(r["rss_mb"]) for r in rows],
                marker=".", label=path.stem.removeprefix("memory-"))
    ax.set_xlabel("trials finished")
    ax.set_ylabel("resident memory, MiB")
    ax.set_title("zoo tune lenet5, 1 epoch per trial: the search process")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out / "memory.png")
    return out / "memory.png"


def _write(out: Path, label: str, rows) -> None:
    with (out / f"memory-{label}.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "rss_mb", "seconds"])
        writer.writerows([(t, f"{r:.1f}", f"{s:.0f}") for t, r, s in rows])


if __name__ == "__main__":
    main()
