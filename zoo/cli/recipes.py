"""`zoo recipes`, `zoo augment-preview`, `zoo compare`: list, picture and measure recipes."""

from __future__ import annotations

import click

from zoo.cli.options import (
    POSITIVE,
    RATE,
    dataset_options,
    input_shape_option,
    parse_assignments,
    parse_shape,
    set_option,
)


@click.command("recipes")
def recipes_command() -> None:
    """List the recipes with their parameters, defaults and allowed values."""
    from recipes import list_recipes

    for cls in list_recipes():
        click.echo(f"{cls.name:<13} {cls.summary}")
        for p in cls.params():
            click.echo(f"    {p.name + '=' + str(p.default):<18} {p.allowed:<30} {p.help}")
    click.echo("\nUse: zoo train MODEL --recipe NAME[:key=value,...] (repeatable), e.g. "
               "--recipe augment:rotation=0.1,flip=none --recipe dropout:rate=0.3")


@click.command("augment-preview")
@click.option("--recipe", "recipes", multiple=True, metavar="NAME[:k=v,...]",
              help="Augmentation recipe(s): augment, mixup, cutmix (default: augment).")
@dataset_options
@click.option("--images", default=6, show_default=True, type=click.IntRange(min=1),
              help="Rows (one per class).")
@click.option("--copies", default=7, show_default=True, type=click.IntRange(min=1),
              help="Augmented versions per image.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--out", default="augment-preview.png", show_default=True, help="PNG to write.")
def augment_preview_command(recipes, dataset, data_dir, images, copies, seed, out) -> None:
    """Save a grid of training images beside augmented versions of them."""
    from recipes.augment import augment_preview

    path = augment_preview(out, list(recipes) or None, dataset=dataset, data_dir=data_dir,
                           images=images, copies=copies, seed=seed)
    click.echo(f"wrote {path}")


@click.command("compare")
@click.argument("name")
@click.option("--recipes", "recipe_sets", multiple=True, required=True,
              metavar="SET,SET,...",
              help="Recipe sets separated by ',', recipes within a set joined by '+', e.g. "
                   "none,augment,dropout,batchnorm,augment+dropout,batchnorm+lr:scale=10.")
@dataset_options
@click.option("--train-fraction", default=0.1, show_default=True,
              type=click.FloatRange(0, 1, min_open=True))
@click.option("--epochs", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--lr", "learning_rate", default=1e-3, show_default=True, type=POSITIVE)
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--optimizer", default="adam", show_default=True)
@click.option("--target", default=0.9, show_default=True, type=RATE,
              help="Validation accuracy whose first epoch is reported.")
@input_shape_option
@set_option
@click.option("--out", default=None, help="Folder for table.md, summary.csv, runs.csv and "
                                          "val_curves.png (default saved_models/compare/...).")
def compare_command(name, recipe_sets, dataset, data_dir, train_fraction, epochs, seeds,
                    learning_rate, batch_size, optimizer, target, input_shape, assignments,
                    out) -> None:
    """Train model NAME under each recipe set (same split, several seeds) and tabulate
    train/validation accuracy, their gap, epochs to a target accuracy and time."""
    from recipes.compare import compare

    hparams = parse_assignments(assignments)
    shape = parse_shape(input_shape)
    if shape is not None:
        hparams["input_shape"] = shape
    result = compare(name, recipe_sets, hparams=hparams, dataset=dataset, data_dir=data_dir,
                     train_fraction=train_fraction, epochs=epochs, seeds=seeds,
                     learning_rate=learning_rate, batch_size=batch_size, optimizer=optimizer,
                     target=target, out=out, progress=click.echo)
    click.echo("")
    click.echo(result.table)
    click.echo(f"wrote {result.out_dir}/table.md, summary.csv, runs.csv, val_curves.png")


COMMANDS = [recipes_command, augment_preview_command, compare_command]
