"""`zoo transfer`, `zoo embed`, `zoo neighbors`: reuse a trained network on new data."""

from __future__ import annotations

import click

from zoo.cli.options import (
    DISTRIBUTION_SETTINGS,
    POSITIVE,
    RATE,
    class_report_lines,
    dataset_options,
    input_shape_option,
    parse_assignments,
    parse_shape,
    set_option,
    training_options,
)
from zoo.training.settings import settings_of


def _parse_units(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        units = tuple(int(v) for v in text.split(","))
    except ValueError:
        units = (0,)
    if min(units) < 1:
        raise click.BadParameter(f"expected comma-separated positive widths, got {text!r}",
                                 param_hint="--head")
    return units


def _load_target(dataset: str, data_dir: str | None, per_class: int | None, seed: int):
    """The target: arrays, or an image folder listed (decoded or streamed once the model's
    input size is known)."""
    from zoo.data.inputs import open_source

    data = open_source(dataset, data_dir=data_dir)
    return data.subset(per_class=per_class, seed=seed) if per_class else data


# recipes.transfer.TransferSettings' own defaults (tests/test_settings.py checks they agree),
# stated here so that `zoo --help` imports no recipe.
TRANSFER_DEFAULTS = {"learning_rate": 1e-2}


@click.command("transfer")
@click.argument("source")
@training_options("dataset", "data_dir", "input_mode", "memory_budget", "skip_bad_images")
@click.option("--weights", default=None, metavar="ENTRY|imagenet|PATH",
              help="Weights of a zoo model or keras.applications backbone SOURCE: one of its "
                   "entries (`zoo weights list`), 'imagenet', or a .weights.h5 file.")
@click.option("--strategy", type=click.Choice(["auto", "head", "partial", "full"]),
              default=None, help="head: train the new head only; partial: then fine-tune the "
              "top layers; full: then fine-tune everything; auto: choose from the images per "
              "class.  [default: partial]")
@click.option("--freeze", type=click.IntRange(min=0), default=None, metavar="N",
              help="Keep the bottom N base layers frozen throughout.")
@click.option("--freeze-until", default=None, metavar="LAYER",
              help="Keep base layers up to and including LAYER frozen throughout.")
@click.option("--fine-tune-layers", type=click.IntRange(min=1), default=None, metavar="K",
              help="Unfreeze the top K base layers in phase 2 (default: the top two layers "
                   "with weights).")
@click.option("--head", default=None, metavar="UNITS",
              help="Hidden Dense widths of the new head, e.g. 64 or 128,64 (default: a "
                   "single softmax layer).")
@click.option("--head-dropout", default=0.0, show_default=True, type=RATE)
@click.option("--head-epochs", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--fine-tune-epochs", default=10, show_default=True, type=click.IntRange(min=0))
@training_options("learning_rate", defaults=TRANSFER_DEFAULTS,
                  learning_rate={"help": "Learning rate of the new head's phase."})
@click.option("--fine-tune-lr", default=None, type=POSITIVE,
              help="Learning rate of the fine-tuning phase  [default: --lr / 100]")
@training_options("batch_size", "optimizer", "seed", "class_weight")
@training_options(*DISTRIBUTION_SETTINGS, devices={"metavar": "N|all"})
@click.option("--per-class", default=None, type=click.IntRange(min=1),
              help="Use only this many training images per class of the target (few-shot).")
@input_shape_option
@set_option
@click.option("--unsafe", is_flag=True,
              help="Allow loading a .keras SOURCE with Lambda layers (runs code from the file).")
@click.option("--out", default=None, help="Run directory (default "
                                          "saved_models/runs/transfer-SOURCE-TIME).")
def transfer_command(source, settings, weights, strategy, freeze, freeze_until,
                     fine_tune_layers, head, head_dropout, head_epochs, fine_tune_epochs,
                     fine_tune_lr, per_class, input_shape, assignments, unsafe, out) -> None:
    """Reuse SOURCE (a run directory or .keras file, a zoo model with --weights, or a
    keras.applications backbone such as MobileNetV2 with --weights) on a new data set:
    new head first, then fine-tuning. Writes a normal run directory."""
    from recipes.transfer import TransferSettings, distribution_scope, load_source, transfer

    settings = TransferSettings(
        strategy=strategy or "partial", freeze=freeze, freeze_until=freeze_until,
        fine_tune_layers=fine_tune_layers, head_units=_parse_units(head),
        head_dropout=head_dropout, head_epochs=head_epochs, fine_tune_epochs=fine_tune_epochs,
        fine_tune_lr=fine_tune_lr, out=out, **settings_of(settings))
    with distribution_scope(settings) as distribution:
        data = _load_target(settings.dataset, settings.data_dir, per_class, settings.seed)
        loaded = load_source(source, weights=weights, unsafe=unsafe,
                             hparams=parse_assignments(assignments),
                             input_shape=parse_shape(input_shape), target=data)
        if loaded.weights:
            verified = loaded.weights.get("verified")
            click.echo(f"weights: {loaded.weights.get('entry', loaded.weights.get('file'))}"
                       + ("" if verified else " (UNVERIFIED)" if verified is False else ""))
        result = transfer(loaded, data, settings, announce=click.echo)
    if distribution is not None:
        click.echo(f"data parallel: {distribution.describe()}")
    click.echo(f"strategy: {result.strategy} ({result.reason})")
    frozen = result.frozen_layers
    if result.fine_tuned:
        click.echo(f"frozen while fine-tuning: {len(frozen)} base layers"
                   + (f" ({frozen[0]} .. {frozen[-1]})" if frozen else ""))
    else:
        click.echo(f"base frozen throughout ({len(frozen)} layers): only the new head trained")
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
    click.echo(f"run: {result.run_dir}")
    click.echo(f"{metrics} ({result.seconds:.1f} s training)")
    for line in class_report_lines(result):
        click.echo(line)
    if result.kept_epoch is not None:
        epochs = len(result.history.get("loss", []))
        unused = (" (fine-tuning never lowered the validation loss)"
                  if result.fine_tuned and result.kept_phase == "head" else "")
        click.echo(f"kept: the {result.kept_phase} phase's model, epoch {result.kept_epoch} of "
                   f"{epochs} (lowest val_loss){unused}")


WEIGHTS_HELP = ("Pretrained weights: MODEL is then a zoo model or backbone (e.g. vgg16, "
                "MobileNetV2) and this one of its entries, 'imagenet' or a .weights.h5 file.")


def _feature_source(model: str, weights: str | None, unsafe: bool, data, input_shape):
    """A run's model, or a pretrained backbone's feature extractor (with its provenance)."""
    if weights is None:
        from zoo.core.runs import load_run_model

        return load_run_model(model, unsafe=unsafe), None
    from zoo.weights.backbone import feature_extractor, pretrained_backbone

    backbone = pretrained_backbone(model, weights, input_shape=parse_shape(input_shape),
                                   images_shape=data.image_shape)
    provenance = backbone.resolved.provenance
    if provenance.get("verified") is False:
        click.echo(f"warning: {provenance.get('entry')} weights are UNVERIFIED (imported "
                   f"with --unverified)", err=True)
    return feature_extractor(backbone), provenance


@click.command("embed")
@click.argument("model")
@dataset_options
@click.option("--weights", default=None, metavar="ENTRY|imagenet|PATH", help=WEIGHTS_HELP)
@input_shape_option
@click.option("--split", "splits", multiple=True, type=click.Choice(["train", "val", "test"]),
              help="Which splits to embed (repeatable; default all three).")
@click.option("--unsafe", is_flag=True, help="Allow a .keras file with Lambda layers.")
@click.option("--out", default="features.npz", show_default=True)
def embed_command(model, dataset, data_dir, weights, input_shape, splits, unsafe, out) -> None:
    """Write the last hidden layer's feature vectors (and labels) of MODEL (a run directory
    or .keras file, or a zoo model/backbone with --weights) for a data set to an .npz file."""
    import json

    import numpy as np

    from recipes.embed import embed_dataset, write_npz_atomic
    from zoo.data.inputs import open_source

    data = open_source(dataset, data_dir=data_dir)
    loaded, provenance = _feature_source(model, weights, unsafe, data, input_shape)
    arrays = embed_dataset(loaded, data, splits or ("train", "val", "test"))
    if provenance is not None:
        arrays["weights"] = np.array(json.dumps(provenance))
    path = write_npz_atomic(out, arrays)
    shapes = ", ".join(f"{k} {v.shape}" for k, v in arrays.items() if k.startswith("features"))
    click.echo(f"wrote {path}: {shapes}")


@click.command("neighbors")
@click.argument("model")
@dataset_options
@click.option("--query", "queries", default=5, show_default=True, type=click.IntRange(min=1),
              help="Number of test images to look up.")
@click.option("--k", default=6, show_default=True, type=click.IntRange(min=1),
              help="Nearest training images shown per query.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--weights", default=None, metavar="ENTRY|imagenet|PATH", help=WEIGHTS_HELP)
@input_shape_option
@click.option("--unsafe", is_flag=True, help="Allow a .keras file with Lambda layers.")
@click.option("--out", default="neighbors.png", show_default=True)
def neighbors_command(model, dataset, data_dir, queries, k, seed, weights, input_shape, unsafe,
                      out) -> None:
    """For a few test images, draw the training images nearest in MODEL's feature space
    (Euclidean distance of the last hidden layer), as in the AlexNet paper's Figure 4."""
    from recipes.embed import neighbor_grid
    from zoo.data.inputs import open_source

    data = open_source(dataset, data_dir=data_dir)
    loaded, _ = _feature_source(model, weights, unsafe, data, input_shape)
    result = neighbor_grid(loaded, data, queries=queries, k=k, seed=seed, out=out)
    click.echo(f"wrote {result.path}: {len(result.queries)} queries x {k} neighbours; "
               f"{result.agreement:.0%} of neighbours share the query's class")


COMMANDS = [transfer_command, embed_command, neighbors_command]
