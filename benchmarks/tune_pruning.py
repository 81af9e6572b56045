"""The same search with and without pruning: training epochs spent and best test accuracy.

One run per call (so seeds and settings can run side by side); each appends a line to
``--results`` (CSV): seed, pruner, trials, pruned, training epochs, best validation accuracy,
test accuracy of the best configuration retrained by zoo.training.train, seconds, 1-minute load.

    for seed in 0 1 2; do for prune in none median; do
      python benchmarks/tune_pruning.py --seed $seed --prune $prune &
    done; done; wait
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

FIELDS = ["seed", "prune", "trials", "pruned", "training_epochs", "best_val_accuracy",
          "best_test_accuracy", "best_trial", "seconds", "load_1min"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prune", default="none", choices=["none", "median", "asha"])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--model", default="lenet5")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-fraction", type=float, default=0.02)
    parser.add_argument("--space", action="append",
                        default=None, help="NAME=CHOICES (default: filters, kernels, rate)")
    parser.add_argument("--out", default="benchmarks/results/tune_pruning")
    parser.add_argument("--results", default="benchmarks/results/tune_pruning.csv")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    from tuning.tune import SearchPlan, run_search

    space = dict(s.split("=", 1) for s in (args.space or [
        "filters=4:16", "kernel_sizes=3,5", "learning_rate=0.0003,0.001,0.003,0.01"]))
    start = time.perf_counter()
    plan = SearchPlan(model=args.model, dataset=args.dataset, space=space, only=True,
                      max_trials=args.trials, epochs=args.epochs, seed=args.seed,
                      train_fraction=args.train_fraction,
                      prune=None if args.prune == "none" else args.prune,
                      prune_warmup_trials=2,
                      out=f"{args.out}/seed{args.seed}-{args.prune}")
    result = run_search(plan, echo=print)
    test = result.best_test_metrics.get("test_accuracy", float("nan"))
    row = {"seed": args.seed, "prune": args.prune, "trials": len(result.rows),
           "pruned": sum(r.status == "PRUNED" for r in result.rows),
           "training_epochs": sum(r.epochs or 0 for r in result.rows),
           "best_val_accuracy": f"{result.best.objective:.4f}" if result.best else "",
           "best_test_accuracy": f"{test:.4f}",
           "best_trial": result.best.trial_id if result.best else "",
           "seconds": f"{time.perf_counter() - start:.0f}",
           "load_1min": f"{os.getloadavg()[0]:.1f}"}
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    print(row)


if __name__ == "__main__":
    main()
