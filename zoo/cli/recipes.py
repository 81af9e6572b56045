"""`zoo recipes`, `zoo augment-preview`, `zoo compare`: list, picture and measure recipes."""

from __future__ import annotations

import click

from zoo.cli.options import (
    RATE,
    dataset_options,
    input_shape_option,
    parse_assignments,
    parse_shape,
    set_option,
    training_options,
)
from zoo.training.settings import settings_of

# recipes.compare.RunSettings' own defaults.
COMPARE_DEFAULTS = {"epochs": 20, "train_fraction": 0.1}


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
    from recipes.augment_preview import augment_preview

    path = augment_preview(out, list(recipes) or None, dataset=dataset, data_dir=data_dir,
                           images=images, copies=copies, seed=seed)
    click.echo(f"wrote {path}")


@click.command("compare")
@click.argument("name")
@click.option("--recipes", "recipe_sets", multiple=True, metavar="SET,SET,...",
              help="Recipe sets separated by ',', recipes within a set joined by '+', e.g. "
                   "none,augment,dropout,batchnorm,augment+dropout,batchnorm+lr:scale=10 "
                   "(default with --sweep: none).")
@click.option("--sweep", "sweeps", multiple=True, metavar="KEY=V1,V2,...",
              help="Sweep one setting across runs, crossed with --recipes: lr, batch_size, a "
                   "builder hyperparameter (normalization=none,batch,group) or RECIPE:PARAM "
                   "(dropout:rate=0,0.3,0.5); ';' separates values that are lists. Each "
                   "--sweep writes its own table and plot.")
@training_options("dataset", "data_dir", "train_fraction", "epochs", "learning_rate",
                  "batch_size", "optimizer", "deterministic", "class_weight", "input_mode",
                  "memory_budget", "skip_bad_images", defaults=COMPARE_DEFAULTS,
                  train_fraction={"help": "Train every run on this stratified fraction of the "
                                          "training split."})
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 20))
@click.option("--target", default=0.9, show_default=True, type=RATE,
              help="Validation accuracy whose first epoch (steps with --sweep) is reported.")
@input_shape_option
@set_option
@click.option("--out", default=None, help="Folder for the tables, CSVs and plots "
                                          "(default saved_models/compare/...); a --sweep "
                                          "into its own earlier folder trains only the "
                                          "runs it does not hold yet.")
@click.pass_context
def compare_command(ctx, name, recipe_sets, sweeps, settings, seeds, target, input_shape,
                    assignments, out) -> None:
    """Train model NAME under each recipe set (same split, several seeds) and tabulate
    train/validation accuracy, their gap, epochs to a target accuracy and time; with --sweep,
    one table and plot per swept setting."""
    hparams = parse_assignments(assignments)
    shape = parse_shape(input_shape)
    if shape is not None:
        hparams["input_shape"] = shape
    arguments = dict(hparams=hparams, **settings_of(settings), seeds=seeds, target=target,
                     out=out, progress=click.echo)
    if sweeps:
        _refuse_option_also_swept(ctx, sweeps)
        from recipes.sweep import compare_sweeps

        results = compare_sweeps(name, sweeps, recipe_sets or "none", **arguments)
        for result in results:
            click.echo("")
            click.echo(result.table)
            click.echo(f"wrote {result.table_path} (and .csv) and {result.plot_path}")
        return
    if not recipe_sets:
        raise click.UsageError("give --recipes SET,SET,... and/or --sweep KEY=V1,V2,...")
    from recipes.compare import compare

    result = compare(name, recipe_sets, **arguments)
    click.echo("")
    click.echo(result.table)
    click.echo(f"wrote {result.out_dir}/table.md, summary.csv, runs.csv, val_curves.png")


def _refuse_option_also_swept(ctx: click.Context, sweeps: tuple[str, ...]) -> None:
    """--lr 0.01 --sweep lr=... (or --batch-size with a batch-size sweep) is ambiguous."""
    from recipes.sweep import PLAN_KEYS

    for text in sweeps:
        field_name = PLAN_KEYS.get(text.partition("=")[0].strip())
        option = {"learning_rate": "--lr", "batch_size": "--batch-size"}.get(field_name or "")
        source = ctx.get_parameter_source(field_name) if field_name else None
        if option and source is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{option} and --sweep {text.partition('=')[0]} both set "
                                   f"{field_name}; drop one of them")


@click.command("results")
@click.option("--model", default=None, help="Only the rows of this model.")
@click.option("--dataset", default=None, help="Only the rows on this data set.")
def results_command(model, dataset) -> None:
    """The results table's rows and the one command that reproduces each (a preset of
    `zoo train`; S is the seed). Figures: test top-1 on the official test split."""
    from recipes.presets import list_presets

    presets = list_presets(model=model, dataset=dataset)
    if not presets:
        raise click.ClickException(f"no results row for {model or 'any model'} on "
                                   f"{dataset or 'any data set'}; `zoo results` lists them all")
    for line in preset_lines(presets):
        click.echo(line)


def preset_lines(presets) -> list[str]:
    """Three lines a preset: what it measured, its command, and the command it stands for."""
    lines = []
    for p in presets:
        lines += [f"{p.name}: {p.model} on {p.dataset}, test top-1 {p.measured}",
                  f"    {p.short_command}", f"    = {p.command()}"]
    return lines


COMMANDS = [recipes_command, augment_preview_command, compare_command, results_command]
