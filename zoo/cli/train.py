"""`zoo train`: train a zoo model into a run directory."""

from __future__ import annotations

from dataclasses import replace

import click
from click.core import ParameterSource

from zoo.cli.options import (
    balanced_sampler_option,
    class_report_lines,
    input_shape_option,
    parse_assignments,
    parse_shape,
    set_option,
    setting_help,
    training_options,
)
from zoo.training.settings import TRAINING_SETTINGS, settings_of


@click.command("train")
@click.argument("name", required=False)
@click.option("--preset", default=None, metavar="PRESET",
              help="Train as a row of the results table did (`zoo results` lists them): its "
                   "model, data set, epochs, batch size, recipes and builder arguments. "
                   "Options given as well replace the preset's value.")
@training_options(
    *TRAINING_SETTINGS,
    batch_size={"type": str, "help": "Mini-batch size, or 'auto' for the largest power of two "
                                     "that fits."},
    dtype_policy={"help": setting_help("dtype_policy") + " Same as --recipe "
                                                         "precision:policy=..."},
    devices={"metavar": "N|all"})
@balanced_sampler_option
@click.option("--recipe", "recipes", multiple=True, metavar="NAME[:k=v,...]",
              help="Apply a recipe (see `zoo recipes`); repeatable, e.g. --recipe augment "
                   "--recipe dropout:rate=0.3.")
@input_shape_option
@set_option
@click.option("--out", default=None, help="Run directory (default saved_models/runs/NAME-TIME); "
                                          "an interrupted run resumes when given the same one.")
def train_command(name, preset, settings, balanced_sampler, recipes, input_shape, assignments,
                  out) -> None:
    """Train model NAME on a data set and write a run directory (config, history, best
    .keras, test metrics, TensorBoard logs, curves)."""
    from zoo.training.train import TrainPlan, train

    if preset is not None:
        values = preset_values(click.get_current_context(), preset)
        name, recipes, assignments, input_shape = (values.pop(key) for key in (
            "name", "recipes", "assignments", "input_shape"))
        settings = replace(settings, **values)
    elif name is None:
        raise click.UsageError("give the model to train (NAME, see `zoo list`) or --preset "
                               "PRESET (see `zoo results`)")
    hparams = parse_assignments(assignments)
    shape = parse_shape(input_shape)
    if shape is not None:
        hparams["input_shape"] = shape
    plan = TrainPlan(model=name, hparams=hparams, out=out, **settings_of(settings),
                     balanced_sampler=balanced_sampler)
    if recipes:
        from recipes import apply_recipes

        plan = apply_recipes(plan, recipes)
    plan.batch_size = resolve_batch_size(plan)
    result = train(plan, announce=click.echo)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items())
    if result.distribution:
        click.echo(f"data parallel: {result.distribution}")
    if result.finished_earlier:
        click.echo(f"run: {result.run_dir} had already finished with these settings; nothing "
                   f"trained (another --out trains again)")
    else:
        click.echo(f"run: {result.run_dir}")
    click.echo(f"{metrics} ({result.seconds:.1f} s training)")
    for line in class_report_lines(result):
        click.echo(line)
    epochs = len(result.history.get("loss", []))
    click.echo(f"kept: the model of epoch {result.kept_epoch} of {epochs} (lowest val_loss)")


def preset_values(ctx: click.Context, name: str) -> dict:
    """The preset's option values (Preset.options), except those given on the command line."""
    from recipes.presets import get_preset

    preset = get_preset(name)
    given = ctx.params.get("name")
    if given is not None and given != preset.model:
        raise click.UsageError(f"--preset {name} trains {preset.model}, not {given}; drop "
                               f"NAME or the preset")
    return {key: value if key == "name" or ctx.get_parameter_source(key)
            is ParameterSource.DEFAULT else ctx.params[key]
            for key, value in preset.options().items()}


def resolve_batch_size(plan) -> int:
    """An integer batch size from the option text ('auto' asks the batch-size recipe)."""
    value = plan.batch_size
    if isinstance(value, int):
        return value
    if str(value).lower() == "auto":
        from recipes.batch_size import estimate_batch_size

        estimate = estimate_batch_size(plan)
        click.echo(f"--batch-size auto: {estimate.batch_size} ({estimate.train_size:,} training "
                   f"images, {estimate.per_image_bytes / 2**20:.1f} MiB per image, "
                   f"{estimate.available_bytes / 2**30:.1f} GiB free in {estimate.device})")
        return estimate.batch_size
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise click.BadParameter(f"expected a positive integer or 'auto', got {value!r}",
                                 param_hint="--batch-size")
    return size


COMMANDS = [train_command]
