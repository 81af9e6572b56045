"""Trials per hour of a fixed, small `zoo tune` search: the same space on CPU and on GPU.

The search: lenet5 on the embedded digits, kernel sizes {3, 5, 7} x feature maps {8, 16, 32}
of both conv layers, keras-tuner random search with a fixed seed, a fixed number of trials and
epochs, no retraining. Prints one JSON line (backend, devices, distribution, trials, seconds,
trials per hour). Runs without TensorFlow (KERAS_BACKEND=jax), as on the GPU machines.

    python benchmarks/tune_throughput.py --trials 6 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default="lenet5")
    args = parser.parse_args()
    try:
        import keras_tuner  # noqa: F401
    except ImportError:
        sys.exit("keras-tuner is not installed here: pip install keras-tuner (it needs no "
                 "TensorFlow; with KERAS_BACKEND=jax it runs on Keras 3 alone)")
    import keras

    from tuning.tune import SearchPlan, run_search
    from zoo.data.batches import has_tensorflow

    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        plan = SearchPlan(model=args.model, algorithm="random", max_trials=args.trials,
                          epochs=args.epochs, batch_size=args.batch_size, seed=0,
                          space={"kernel_sizes": "3,5,7", "filters": "8:32"}, only=True,
                          retrain=False, out=str(Path(folder) / "search"))
        start = time.perf_counter()
        result = run_search(plan, echo=lambda line: print(line, file=sys.stderr))
        seconds = time.perf_counter() - start
    done = sum(r.status == "COMPLETED" for r in result.rows)
    trial_seconds = [r.seconds for r in result.rows if r.seconds is not None]
    print(json.dumps({
        "backend": keras.backend.backend(),
        "tensorflow_installed": has_tensorflow(),
        "distribution": result.distribution,
        "model": args.model, "trials": len(result.rows), "completed": done,
        "epochs": args.epochs, "batch_size": args.batch_size,
        "search_seconds": round(result.seconds, 1), "total_seconds": round(seconds, 1),
        "mean_trial_seconds": round(sum(trial_seconds) / max(len(trial_seconds), 1), 2),
        "trials_per_hour": round(3600 * len(result.rows) / result.seconds, 1),
        "best_val_accuracy": result.best.objective if result.best else None,
    }))


if __name__ == "__main__":
    main()
