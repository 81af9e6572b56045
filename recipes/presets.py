"""Named training presets: each row of the results table, reproducible by one short command.

``zoo train --preset lenet5-mnist --seed 1`` runs exactly what the row "lenet5, MNIST, augment
+ weight decay + cosine, 20 epochs" ran: model, data set, epochs, batch size, recipes, builder
arguments, training fraction and dtype policy, as torchvision's reference recipes and timm's
results files record a result's command beside it. A preset is data: the `zoo train` options it
stands for and the figure it measured. ``benchmarks/data_results.py`` names each row's preset,
and a test checks that every preset expands to its row's exact command.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.core.names import did_you_mean


class PresetError(ValueError):
    """An unknown preset, or options that contradict the one chosen."""


@dataclass(frozen=True)
class Preset:
    """One results row's `zoo train` settings and what they measured (seeds in ``measured``)."""

    name: str
    model: str
    dataset: str
    epochs: int
    batch_size: int = 32
    recipes: tuple[str, ...] = ()
    assignments: tuple[str, ...] = ()  # --set NAME=VALUE builder arguments
    input_shape: str | None = None
    train_fraction: float = 1.0
    dtype_policy: str | None = None
    measured: str = ""  # test top-1 on the official test split, per results/data.csv

    def options(self) -> dict[str, object]:
        """The `zoo train` option values this preset sets, by the command's parameter names."""
        return {"name": self.model, "dataset": self.dataset, "epochs": self.epochs,
                "batch_size": str(self.batch_size), "recipes": self.recipes,
                "assignments": self.assignments, "input_shape": self.input_shape,
                "train_fraction": self.train_fraction, "dtype_policy": self.dtype_policy}

    def command(self, seed: str | int = "S") -> str:
        """The whole `zoo train` command the preset stands for (S: the seed)."""
        words = ["zoo train", self.model, "--dataset", self.dataset]
        if self.input_shape:
            words += ["--input-shape", self.input_shape]
        if self.train_fraction != 1.0:
            words += ["--train-fraction", f"{self.train_fraction:g}"]
        words += ["--epochs", str(self.epochs)]
        if self.batch_size != 32:
            words += ["--batch-size", str(self.batch_size)]
        for assignment in self.assignments:
            words += ["--set", assignment]
        for recipe in self.recipes:
            words += ["--recipe", recipe]
        if self.dtype_policy:
            words += ["--dtype-policy", self.dtype_policy]
        return " ".join([*words, "--seed", str(seed)])

    @property
    def short_command(self) -> str:
        """How the results table names the row's reproduction."""
        return f"zoo train --preset {self.name} --seed S"


# The augmentation the MNIST rows use: small rotations, no flips (digits), no intensity change.
MNIST_AUGMENT = "augment:rotation=0.03,brightness=0,contrast=0"
COSINE = "schedule:kind=cosine"
VGG_SMALL_FASHION = dict(model="vgg_small", dataset="fashion_mnist", input_shape="32,32,1",
                         epochs=20, batch_size=128,
                         recipes=("batchnorm", "augment:flip=horizontal,fill=constant,"
                                  "rotation=0.0", COSINE))

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("lenet5-mnist", "lenet5", "mnist", epochs=20, batch_size=64,
           recipes=(MNIST_AUGMENT, "weight-decay", COSINE),
           measured="99.07 ± 0.07 % (seeds 0, 1, 2)"),
    Preset("lenet5_modern-mnist", "lenet5_modern", "mnist", epochs=20, batch_size=64,
           recipes=(MNIST_AUGMENT, "weight-decay", COSINE),
           measured="99.31 ± 0.09 % (seeds 0, 1, 2)"),
    Preset("lenet5_modern-mnist-batchnorm", "lenet5_modern", "mnist", epochs=20, batch_size=64,
           recipes=(MNIST_AUGMENT, "batchnorm", "weight-decay", COSINE),
           measured="99.06 % (seed 0)"),
    Preset("lenet5-mnist-cosine", "lenet5", "mnist", epochs=15, batch_size=64,
           recipes=(COSINE,),
           measured="98.70 ± 0.09 % (seeds 0, 1, 2; H200), 98.81 % (seed 0; CPU)"),
    Preset("lenet5-mnist-weight-decay", "lenet5", "mnist", epochs=15, batch_size=64,
           recipes=("weight-decay", COSINE), measured="98.98 ± 0.06 % (seeds 0, 1, 2)"),
    Preset("lenet5-fashion_mnist", "lenet5", "fashion_mnist", epochs=15, batch_size=64,
           recipes=(COSINE,), measured="89.51 ± 0.08 % (seeds 0, 1, 2)"),
    Preset("lenet5-fashion_mnist-4pct", "lenet5", "fashion_mnist", epochs=10,
           train_fraction=0.04, measured="80.83 ± 0.56 % (seeds 1, 2, 3)"),
    Preset("lenet5-fashion_mnist-4pct-searched", "lenet5", "fashion_mnist", epochs=10,
           train_fraction=0.04, assignments=("filters=32,16", "kernel_sizes=5,3"),
           measured="82.14 ± 0.12 % (seeds 1, 2, 3)"),
    Preset("vgg_small-fashion_mnist", **VGG_SMALL_FASHION,
           measured="93.33 ± 0.16 % (seeds 0, 1, 2)"),
    Preset("vgg_small-fashion_mnist-bfloat16", **VGG_SMALL_FASHION,
           dtype_policy="mixed_bfloat16", measured="93.54 % (seed 0)"),
)}


def list_presets(*, model: str | None = None, dataset: str | None = None) -> list[Preset]:
    """The presets, optionally only those of one model and/or data set."""
    return [p for p in PRESETS.values()
            if (model is None or p.model == model) and (dataset is None or p.dataset == dataset)]


def get_preset(name: str) -> Preset:
    """The preset called ``name``; PresetError with close matches otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise PresetError(f"unknown preset {name!r}{did_you_mean(name, list(PRESETS), n=3)}; "
                          f"`zoo train --list-presets` lists them") from None
