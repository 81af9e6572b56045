"""Few-shot transfer onto Fashion-MNIST: ImageNet VGG16 and MobileNetV2, MNIST LeNet-5, scratch.

The table issue 14 asks for: `zoo transfer vgg16 --weights imagenet` (and MobileNetV2, and the
zoo's `lenet5:mnist`) onto Fashion-MNIST with 10 and 100 training images per class, head only
against the head plus the top two weight layers fine-tuned, against LeNet-5 trained from
scratch on the same images, over seeds, evaluated on the full official test split (10,000).

    python benchmarks/transfer_fashion.py --csv benchmarks/results/transfer-fashion.csv \
        [--shots 10 100] [--seeds 0 1 2] [--size 32] [--sources vgg16 MobileNetV2 lenet5]

Every run goes through ``recipes.transfer.transfer`` (and ``zoo.training.train.train`` for scratch),
in memory (write_run=False), and the model of the last epoch is evaluated: no checkpoint is
picked on validation, so the validation split is cut to 10 images per class (seed 0) to
save time. Every method trains for the same number of epochs (the benchmark on digits,
transfer_fewshot.py, does the same): head only 50; head 30 then fine-tuning 20 at a tenth
of the learning rate; scratch 50.

The ImageNet backbones are too slow on this CPU to run over the 10,000 test images in every
cell (VGG16 at 32x32 costs 0.31 GMACs an image). Their frozen layers compute the same thing
in every cell, so they run once per image: the backbone is cut below the layers that train
(the top two weight layers for fine-tuning); the frozen part's outputs are computed once for
the test split, the validation images and each seed's training images, and ``transfer`` trains
the same head and top layers (the same layer objects, reset to the pretrained weights before
each run) on those outputs. ``--check`` runs one cell both ways on a small test slice and
prints the largest difference in test probabilities. Rows are appended to the CSV as cells
finish; a re-run skips the cells already there.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

WEIGHTS = {"vgg16": "imagenet", "MobileNetV2": "imagenet", "lenet5": "mnist"}
HEAD_EPOCHS = 30
FINE_TUNE_EPOCHS = 20
LEARNING_RATE = 3e-3
BATCH_SIZE = 16
VAL_PER_CLASS = 10
FIELDS = ["source", "weights", "input", "shots", "seed", "method", "test_accuracy",
          "train_images", "test_images", "train_seconds", "load_start", "load_end"]
METHODS = ("head", "partial")


def settings_for(method: str, seed: int, fine_tune_lr: float | None = None):
    """The transfer settings of one method (same epochs for both); fine-tuning runs at a
    tenth of the head's learning rate unless ``fine_tune_lr``."""
    from recipes.transfer import TransferSettings

    head = HEAD_EPOCHS + FINE_TUNE_EPOCHS if method == "head" else HEAD_EPOCHS
    return TransferSettings(strategy=method, head_epochs=head,
                            fine_tune_epochs=FINE_TUNE_EPOCHS, learning_rate=LEARNING_RATE,
                            fine_tune_lr=fine_tune_lr or LEARNING_RATE / 10,
                            batch_size=BATCH_SIZE, seed=seed)


def method_label(method: str, fine_tune_lr: float | None) -> str:
    """The CSV's method: 'partial' at the default fine-tuning rate, else 'partial@RATE'."""
    return method if method == "head" or fine_tune_lr is None else f"{method}@{fine_tune_lr:g}"


def target_data(fashion, shots: int, seed: int, val):
    """``shots`` training images per class (drawn with ``seed``), the fixed validation slice
    and the whole test split."""
    data = fashion.subset(per_class=shots, seed=seed)
    return replace(data, x_val=val[0], y_val=val[1])


# ---------------------------------------------------------------- cutting a frozen backbone


def split_base(base, frozen: int):
    """(bottom, top): the base's first ``frozen`` layers as a model of its input, and the
    layers above as a model of the bottom's output (the same layer objects, so the same
    weights). Needs the layers above the cut to form a chain, as VGG's and MobileNetV2's
    last layers do."""
    import keras

    from recipes.transfer import BASE_NAME, base_layers

    layers = base_layers(base)
    cut = layers[frozen - 1].output
    bottom = keras.Model(base.inputs, cut, name="frozen_bottom")
    inputs = keras.Input(tuple(cut.shape[1:]), name="frozen_features")
    x, previous = inputs, cut
    for layer in layers[frozen:]:
        if layer.input is not previous:
            raise ValueError(f"{layer.name} does not take {previous.name}: not a chain")
        x, previous = layer(x), layer.output
    return bottom, keras.Model(inputs, x, name=BASE_NAME)


def as_maps(features: np.ndarray) -> np.ndarray:
    """Feature vectors as 1x1 maps: the training loop's pipeline takes (N, H, W, C)."""
    return features.reshape(len(features), 1, 1, -1) if features.ndim == 2 else features


class FrozenFeatures:
    """A pretrained backbone cut at the fine-tuning point, its frozen outputs cached."""

    def __init__(self, name: str, size: int, fashion, cache: Path | None = None):
        import keras

        from recipes.transfer import frozen_layer_count, load_source

        self.source = load_source(name, weights=WEIGHTS[name], input_shape=(size, size, 3),
                                  target=fashion)
        base = self.source.base
        frozen = frozen_layer_count(base, settings_for("partial", 0), "partial")
        bottom, self.top = split_base(base, frozen)
        inputs = keras.Input(tuple(base.input_shape[1:]), name="image")
        x = inputs
        for layer in self.source.preprocess:
            x = layer(x)
        self.bottom = keras.Model(inputs, bottom(x))
        self.pretrained = self.top.get_weights()
        self.input_shape = tuple(base.input_shape[1:])
        self.cache = cache / f"{name}-{size}" if cache else None

    def maps(self, images: np.ndarray, key: str | None = None) -> np.ndarray:
        """The frozen bottom's outputs for uint8 images (float32), kept in the cache folder
        under ``key`` (the bottom's pass is the expensive part: a re-run reuses it)."""
        from zoo.data.batches import to_float
        from zoo.data.dataset import fit_images

        path = self.cache / f"{key}-{len(images)}.npy" if self.cache and key else None
        if path is not None and path.exists():
            return np.load(path)
        x = to_float(fit_images(images, self.input_shape))
        maps = as_maps(np.asarray(self.bottom.predict(x, batch_size=128, verbose=0)))
        if path is not None:
            from zoo.core.runs import atomic_write

            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as tmp:
                np.save(tmp, maps)
        return maps

    def pooled(self, maps: np.ndarray) -> np.ndarray:
        """The whole frozen base's output (what head-only trains on), from the bottom's."""
        self.top.set_weights(self.pretrained)
        return as_maps(np.asarray(self.top.predict(maps, batch_size=256, verbose=0)))

    def source_for(self, method: str):
        """A transfer Source whose base is the part that trains (head only: nothing).

        The training loop's pipeline divides by 255 (it expects uint8 images), so the
        features are multiplied back first.
        """
        import keras

        from recipes.transfer import BASE_NAME

        self.top.set_weights(self.pretrained)
        if method == "head":
            width = int(self.top.output_shape[-1])
            inputs = keras.Input((1, 1, width), name="frozen_features")
            base = keras.Model(inputs, keras.layers.Flatten()(inputs), name=BASE_NAME)
        else:
            base = self.top
        return replace(self.source, base=base,
                       preprocess=[keras.layers.Rescaling(255.0, name="undo_pipeline_scale")])


# ---------------------------------------------------------------- running the cells


def done_cells(path: Path) -> set[tuple]:
    """Cells already in the CSV (a re-run skips them)."""
    if not path.exists():
        return set()
    with path.open() as f:
        return {(r["source"], r["input"], r["shots"], r["seed"], r["method"])
                for r in csv.DictReader(f)}


def append_row(path: Path, row: dict) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def record(path: Path, row: dict, start: float, load: float) -> None:
    row.update(train_seconds=round(time.perf_counter() - start, 1), load_start=load,
               load_end=round(os.getloadavg()[0], 1))
    append_row(path, row)
    print(", ".join(f"{k}={row[k]}" for k in ("source", "input", "shots", "seed", "method",
                                              "test_accuracy", "train_seconds")), flush=True)


def run_backbone(name: str, size: int, args, fashion, val, csv_path: Path) -> None:
    """Head-only and partial fine-tuning cells of one ImageNet backbone at one input size."""
    from recipes.transfer import transfer

    done = done_cells(csv_path)
    todo = [(shots, seed, m) for shots in args.shots for seed in args.seeds
            for m in args.methods if (name, str(size), str(shots), str(seed),
                                      method_label(m, args.fine_tune_lr)) not in done]
    if not todo:
        return
    start = time.perf_counter()
    cut = FrozenFeatures(name, size, fashion, args.cache)
    test_maps, val_maps = cut.maps(fashion.x_test, "test"), cut.maps(val[0], "val")
    print(f"{name} {size}x{size}: frozen outputs {test_maps.shape[1:]} of the test and "
          f"validation images in {time.perf_counter() - start:.0f} s", flush=True)
    pooled = {}
    for shots, seed, method in todo:
        start, load = time.perf_counter(), round(os.getloadavg()[0], 1)
        data = target_data(fashion, shots, seed, val)
        maps = cut.maps(data.x_train, f"train-{shots}-{seed}")
        if method == "head":
            if "test" not in pooled:
                pooled.update(test=cut.pooled(test_maps), val=cut.pooled(val_maps))
            x_train, x_val, x_test = cut.pooled(maps), pooled["val"], pooled["test"]
        else:
            x_train, x_val, x_test = maps, val_maps, test_maps
        features = replace(data, x_train=x_train, x_val=x_val, x_test=x_test)
        result = transfer(cut.source_for(method), features,
                          settings_for(method, seed, args.fine_tune_lr), verbose=0,
                          write_run=False)
        record(csv_path, {"source": name, "weights": cut.source.weights["entry"],
                          "input": size, "shots": shots, "seed": seed,
                          "method": method_label(method, args.fine_tune_lr),
                          "test_accuracy": round(result.test_metrics["test_accuracy"], 4),
                          "train_images": len(data.x_train), "test_images": len(x_test)},
               start, load)


def run_lenet(args, fashion, val, csv_path: Path) -> None:
    """lenet5:mnist through ``zoo transfer``'s own path, and LeNet-5 from scratch."""
    from recipes.transfer import load_source, transfer
    from zoo.training.train import TrainPlan, train

    done = done_cells(csv_path)
    for shots in args.shots:
        for seed in args.seeds:
            data = target_data(fashion, shots, seed, val)
            for method in [*args.methods, "scratch"]:
                name = "lenet5" if method != "scratch" else "lenet5-scratch"
                if (name, "32", str(shots), str(seed), method) in done:
                    continue
                start, load = time.perf_counter(), round(os.getloadavg()[0], 1)
                if method == "scratch":
                    result = train(TrainPlan(model="lenet5", epochs=HEAD_EPOCHS +
                                             FINE_TUNE_EPOCHS, batch_size=BATCH_SIZE,
                                             learning_rate=LEARNING_RATE, seed=seed),
                                   data=data, verbose=0, write_run=False)
                    weights = "-"
                else:
                    source = load_source("lenet5", weights=WEIGHTS["lenet5"], target=data)
                    result = transfer(source, data, settings_for(method, seed), verbose=0,
                                      write_run=False)
                    weights = source.weights["entry"]
                record(csv_path, {"source": name, "weights": weights, "input": 32,
                                  "shots": shots, "seed": seed, "method": method,
                                  "test_accuracy": round(result.test_metrics["test_accuracy"], 4),
                                  "train_images": len(data.x_train),
                                  "test_images": len(data.x_test)}, start, load)


def check_cut(name: str, size: int, fashion, val, test_images: int = 500) -> None:
    """One cell (10 per class, seed 0, partial, short) both ways: through the whole backbone,
    as `zoo transfer` runs it, and through the cut; prints how far the predictions differ."""
    from recipes.transfer import load_source, transfer
    from zoo.data.batches import to_float
    from zoo.data.dataset import fit_images

    data = target_data(fashion, 10, 0, (val[0][:50], val[1][:50]))
    data = replace(data, x_test=data.x_test[:test_images], y_test=data.y_test[:test_images])
    settings = replace(settings_for("partial", 0), head_epochs=3, fine_tune_epochs=2)
    whole = transfer(load_source(name, weights=WEIGHTS[name], input_shape=(size, size, 3),
                                 target=data), data, settings, verbose=0, write_run=False)
    expected = np.asarray(whole.model.predict(
        to_float(fit_images(data.x_test, (size, size, 3))), verbose=0))
    cut = FrozenFeatures(name, size, fashion)
    features = replace(data, x_train=cut.maps(data.x_train), x_val=cut.maps(data.x_val),
                       x_test=cut.maps(data.x_test))
    split = transfer(cut.source_for("partial"), features, settings, verbose=0, write_run=False)
    # The cut model's first layer multiplies by 255 what the pipeline divided by 255.
    found = np.asarray(split.model.predict(to_float(features.x_test), verbose=0))
    print(f"check {name} {size}x{size}: test accuracy whole "
          f"{whole.test_metrics['test_accuracy']:.4f}, cut "
          f"{split.test_metrics['test_accuracy']:.4f}; largest probability difference "
          f"{np.abs(found - expected).max():.2e} over {test_images} images", flush=True)


def summary(path: Path) -> str:
    """The Markdown table: mean ± std over seeds per source, input, shots and method."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    cells: dict[tuple, list[float]] = {}
    for r in rows:
        cells.setdefault((r["source"], r["input"], r["method"], int(r["shots"])), []).append(
            float(r["test_accuracy"]))
    shots = sorted({k[3] for k in cells})
    lines = ["| source | input | method | " + " | ".join(f"{s} per class" for s in shots)
             + " |", "|---" * (3 + len(shots)) + "|"]
    for key in sorted({k[:3] for k in cells}):
        values = [cells.get((*key, s), []) for s in shots]
        lines.append(f"| {key[0]} | {key[1]}x{key[1]} | {key[2]} | " + " | ".join(
            f"{np.mean(v):.3f} ± {np.std(v):.3f} (n={len(v)})" if v else "-" for v in values)
            + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--shots", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--size", type=int, default=32, help="ImageNet backbones' input side")
    parser.add_argument("--sources", nargs="+", default=["vgg16", "MobileNetV2", "lenet5"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/transfer-fashion-cache"),
                        help="where the frozen layers' outputs are kept between runs")
    parser.add_argument("--fine-tune-lr", type=float, default=None,
                        help="backbones' fine-tuning rate (default: a tenth of the head's)")
    parser.add_argument("--check", action="store_true", help="compare the cut with the whole "
                                                             "backbone on one cell first")
    parser.add_argument("--summary", action="store_true", help="only print the table")
    args = parser.parse_args()
    if args.summary:
        print(summary(args.csv))
        return

    from zoo.data.load import load_dataset

    begin = time.perf_counter()
    fashion = load_dataset("fashion_mnist")
    rng = np.random.default_rng(0)
    picks = np.sort(np.concatenate([rng.choice(np.flatnonzero(fashion.y_val == c),
                                               VAL_PER_CLASS, replace=False)
                                    for c in range(fashion.num_classes)]))
    val = (fashion.x_val[picks], fashion.y_val[picks])
    print(f"Fashion-MNIST: {len(fashion.x_train)} training images to draw from, validation "
          f"{len(val[1])} (of {len(fashion.y_val)}), test {len(fashion.y_test)}; load "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    for name in args.sources:
        if args.check and name != "lenet5":
            check_cut(name, args.size, fashion, val)
        if name == "lenet5":
            run_lenet(args, fashion, val, args.csv)
        else:
            run_backbone(name, args.size, args, fashion, val, args.csv)
    print(f"\n{summary(args.csv)}\n\ntotal {time.perf_counter() - begin:.0f} s, load "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
