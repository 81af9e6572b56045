"""Few-shot transfer on real digits: pretrain on 0-4, learn 5-9 from k examples per class.

Compares, on the same few examples and seeds: the same model trained from scratch, and
transfer with head-only, partial (top two weight layers) and full fine-tuning. Every
method trains for the same number of epochs (50) at the same learning rate (fine-tuning
phases at a tenth of it). Prints a
Markdown table of test accuracy (mean +- std over seeds) on all test images of digits 5-9.

    python benchmarks/transfer_fewshot.py [--shots 5 10] [--seeds 0 1 2]

Everything runs through zoo.training.train.train (write_run=False: nothing is written); the model
of the last epoch is evaluated, no validation-based checkpoint selection.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MODEL = "lenet5"
SOURCE_CLASSES = [0, 1, 2, 3, 4]
TARGET_CLASSES = [5, 6, 7, 8, 9]
PRETRAIN_EPOCHS = 15
HEAD_EPOCHS = 30
FINE_TUNE_EPOCHS = 20
LEARNING_RATE = 3e-3
BATCH_SIZE = 16


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()

    import keras

    from recipes.transfer import Source, TransferSettings, _base_from_model, transfer
    from zoo.data.load import load_dataset
    from zoo.training.train import TrainPlan, train

    start = time.perf_counter()
    digits = load_dataset("digits")
    source_data = digits.subset(classes=SOURCE_CLASSES)
    pretrained = train(TrainPlan(model=MODEL, epochs=PRETRAIN_EPOCHS, batch_size=32,
                                 learning_rate=1e-3, seed=0),
                       data=source_data, verbose=0, write_run=False)
    print(f"pretrained {MODEL} on digits {SOURCE_CLASSES}: test accuracy "
          f"{pretrained.test_metrics['test_accuracy']:.3f} "
          f"({len(source_data.x_train)} training images)", flush=True)

    results: dict[tuple[int, str], list[float]] = {}
    for shots in args.shots:
        for seed in args.seeds:
            target = digits.subset(classes=TARGET_CLASSES, per_class=shots, seed=seed)
            scratch = train(TrainPlan(model=MODEL, epochs=HEAD_EPOCHS + FINE_TUNE_EPOCHS,
                                      batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE,
                                      seed=seed),
                            data=target, verbose=0, write_run=False)
            results.setdefault((shots, "scratch"), []).append(
                scratch.test_metrics["test_accuracy"])
            for strategy in ("head", "partial", "full"):
                model = keras.models.clone_model(pretrained.model)
                model.set_weights(pretrained.model.get_weights())
                source = Source(name=MODEL, kind="zoo", base=_base_from_model(model))
                # Every method gets the same number of epochs: head-only trains its head
                # for as long as the others train head + fine-tuning.
                head_epochs = (HEAD_EPOCHS + FINE_TUNE_EPOCHS if strategy == "head"
                               else HEAD_EPOCHS)
                settings = TransferSettings(strategy=strategy, head_epochs=head_epochs,
                                            fine_tune_epochs=FINE_TUNE_EPOCHS,
                                            learning_rate=LEARNING_RATE,
                                            fine_tune_lr=LEARNING_RATE / 10,
                                            batch_size=BATCH_SIZE, seed=seed)
                result = transfer(source, target, settings, verbose=0, write_run=False)
                results.setdefault((shots, strategy), []).append(
                    result.test_metrics["test_accuracy"])
            row = {m: results[(shots, m)][-1] for m in ("scratch", "head", "partial", "full")}
            print(f"shots={shots} seed={seed}: " +
                  ", ".join(f"{m} {v:.3f}" for m, v in row.items()), flush=True)

    print(f"\n{MODEL}, pretrained on digits 0-4; target digits 5-9, test accuracy "
          f"(mean ± std over seeds {args.seeds}):\n")
    print("| examples per class | scratch | head only | partial (top 2) | full |")
    print("|---|---|---|---|---|")
    for shots in args.shots:
        cells = [f"{np.mean(results[(shots, m)]):.3f} ± {np.std(results[(shots, m)]):.3f}"
                 for m in ("scratch", "head", "partial", "full")]
        print(f"| {shots} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
