"""Package a finished run as one of the zoo's own weights files (``zoo/weights/packaged/``).

    python benchmarks/package_weights.py RUN_DIR MODEL ENTRY

Writes the weights of the run's model (the checkpoint its test metrics describe) to
``zoo/weights/packaged/MODEL-ENTRY.weights.h5`` with ``model.save_weights``, then loads that
file back the way users do (``zoo.build(MODEL, weights=FILE, **the run's hparams)``),
evaluates it on the run's data set's test split and prints what the weights entry beside the
builder records: SHA-256, size, the test accuracy measured with the packaged file, and the
run's own test accuracy (the two must agree). How vgg_small:fashion_mnist was made (lenet5:mnist
was written the same way, by hand, before this script existed).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PACKAGED = Path(__file__).resolve().parents[1] / "zoo" / "weights" / "packaged"


def main(argv: list[str] | None = None) -> None:
    """Package the run, evaluate the packaged file, print its entry's facts.

    Args:
        argv: RUN_DIR MODEL ENTRY (default: the command line).
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("model")
    parser.add_argument("entry")
    args = parser.parse_args(argv)

    import numpy as np

    import zoo
    from zoo.core.runs import load_run_config, load_run_metrics, load_run_model, publish_file
    from zoo.data.batches import to_float
    from zoo.data.dataset import fit_images
    from zoo.data.load import load_dataset
    from zoo.weights.store import digests

    config, metrics = load_run_config(args.run_dir), load_run_metrics(args.run_dir)
    if config.get("model") != args.model or "test_accuracy" not in metrics:
        raise SystemExit(f"{args.run_dir} is not a finished {args.model} run "
                         f"(model {config.get('model')!r}, metrics {sorted(metrics)})")
    target = PACKAGED / f"{args.model}-{args.entry}.weights.h5"
    staging = target.with_name(f".partial-{target.name}")  # Keras wants .weights.h5
    hparams = {k: tuple(v) if isinstance(v, list) else v
               for k, v in config.get("hparams", {}).items()}
    # A fresh, uncompiled model of the builder: a compiled model's .weights.h5 also holds the
    # optimizer's moments (3x the size), which nobody loading the weights needs.
    fresh = zoo.build(args.model, **hparams)
    fresh.set_weights(load_run_model(args.run_dir).get_weights())
    fresh.save_weights(staging)
    publish_file(staging, target)  # a killed run leaves no half-written package file

    model = zoo.build(args.model, weights=str(target), **hparams)
    data = load_dataset(config["dataset"], data_dir=config.get("data_dir"))
    x = to_float(fit_images(data.x_test, tuple(model.input_shape[1:])))
    predicted = np.asarray(model.predict(x, batch_size=256, verbose=0)).argmax(axis=1)
    correct = int((predicted == data.y_test).sum())
    sha256, _, size = digests(target)  # as `zoo weights import` checks the file
    report = {
        "file": str(target), "size": size, "sha256": sha256,
        "hparams": config.get("hparams", {}), "dataset": config["dataset"],
        "test_images": len(data.y_test), "test_correct": correct,
        "test_accuracy_packaged": correct / len(data.y_test),
        "test_accuracy_run": metrics["test_accuracy"], "recipes": config.get("recipes"),
        "epochs": metrics.get("epochs"), "train_seconds": metrics.get("train_seconds"),
    }
    print(json.dumps(report, indent=2))
    print(f"\nfor the entry: checksum={report['sha256']!r}, size={report['size']:_}, "
          f"metrics={{'{config['dataset']}_test_accuracy': "
          f"{report['test_accuracy_packaged']:.4f}}}, packaged={target.name!r}")


if __name__ == "__main__":
    main()
