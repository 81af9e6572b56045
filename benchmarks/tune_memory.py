"""Resident memory over a long search in one process (issue 15: flat over 100 tiny trials).

Runs ``zoo tune lenet5 --space filters=4:16 --space kernel_sizes=3,5 --only --epochs 1`` as a
library call for ``--trials`` trials, records the process's resident size after every trial
(the same number the search writes in trials.csv's ``rss_mb`` column) and writes
``memory.csv`` and ``memory.png`` (RSS against trial) into ``--out``. ``--no-free`` replaces the
search's clean-up between trials by nothing, to show what it fixes.

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
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--train-fraction", type=float, default=0.1)
    parser.add_argument("--out", default="benchmarks/results/tune_memory")
    parser.add_argument("--no-free", action="store_true",
                        help="skip the clean-up between trials (the behaviour before the fix)")
    parser.add_argument("--isolate", action="store_true", help="each trial in a fresh process")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    import tuning.resources as resources
    import tuning.tuners as tuners
    from tuning.search import SearchPlan, run_search

    if args.no_free:
        tuners.free_memory = lambda: None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = "isolate" if args.isolate else ("no-free" if args.no_free else "free")
    rows: list[tuple[int, float, float]] = []
    start = time.perf_counter()

    def echo(line: str) -> None:
        if line.startswith("trial ") and " out of memory" not in line:
            rows.append((len(rows) + 1, resources.resident_mb(), time.perf_counter() - start))
            print(f"{rows[-1][0]:4d}  {rows[-1][1]:7.1f} MB  {rows[-1][2]:6.0f} s", flush=True)
            _write(out, label, rows)

    plan = SearchPlan(model="lenet5", space={"filters": "4:16", "kernel_sizes": "3,5"},
                      only=True, max_trials=args.trials, epochs=1, retrain=False,
                      train_fraction=args.train_fraction, isolate=args.isolate,
                      out=str(out / f"search-{label}"))
    run_search(plan, echo=echo)
    _write(out, label, rows)
    if len(rows) >= 10:
        print(f"{label}: {rows[9][1]:.0f} MB after trial 10, {rows[-1][1]:.0f} MB after trial "
              f"{rows[-1][0]}: growth {rows[-1][1] - rows[9][1]:+.0f} MB")


def _write(out: Path, label: str, rows) -> None:
    with (out / f"memory-{label}.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "rss_mb", "seconds"])
        writer.writerows([(t, f"{r:.1f}", f"{s:.0f}") for t, r, s in rows])


if __name__ == "__main__":
    main()
