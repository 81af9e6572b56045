"""`zoo viz`: pictures of filters, feature maps, receptive fields, confusion, curves, pooling."""

from __future__ import annotations

import click


def _unit(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected ROW,COL, got {text!r}", param_hint="--unit") from None
    return row, col


run_argument = click.argument("run", type=click.Path(exists=True))
unsafe_option = click.option("--unsafe", is_flag=True,
                             help="Allow Lambda layers (runs code stored in the model file).")


def _out_option(default: str):
    return click.option("--out", default=default, show_default=True, type=click.Path(),
                        help="PNG file to write.")


def _image_options(function):
    """--image / --sample / --split / --dataset / --data-dir: the image a picture is for."""
    function = click.option("--data-dir", default=None,
                            help="tensorflow-datasets directory (default: the run's).")(function)
    function = click.option("--dataset", default=None,
                            help="Data set for --sample (default: the run's).")(function)
    function = click.option("--split", default="test", show_default=True,
                            type=click.Choice(["train", "val", "test"]))(function)
    function = click.option("--sample", type=int, default=None,
                            help="Index of an image of --split (default 0).")(function)
    return click.option("--image", type=click.Path(), default=None,
                        help="An image file instead of a data set sample.")(function)


@click.group("viz")
def viz_group() -> None:
    """Look inside a trained run: filters, feature maps, receptive fields, confusion matrix,
    training curves, and the lecture's max-pooling example."""


@viz_group.command("filters")
@run_argument
@click.option("--layer", default=None, help="A Conv2D layer (default: the first).")
@click.option("--max-filters", default=None, type=click.IntRange(min=1),
              help="Filters drawn (default: 64 for a first layer, 16 for deeper ones).")
@click.option("--max-channels", default=8, show_default=True, type=click.IntRange(min=1),
              help="Input channels drawn per filter for deeper layers.")
@_out_option("filters.png")
@unsafe_option
def filters_command(run, layer, max_filters, max_channels, out, unsafe) -> None:
    """Draw the learned kernels of a conv layer of RUN (first layer in colour on RGB input)."""
    from zoo.viz import load_run, plot_filters

    grid = plot_filters(load_run(run, unsafe=unsafe), out, layer=layer,
                        max_filters=max_filters, max_channels=max_channels)
    kh, kw, cin, cout = grid.kernel_shape
    click.echo(f"{grid.layer}: {cout} filters of {kh}x{kw}x{cin}, {grid.tiles} tiles"
               f"{' in colour' if grid.colour else ''} -> {grid.path}")


@viz_group.command("featuremaps")
@run_argument
@click.option("--layer", default=None, help="Any layer with 2-D maps (default: first conv).")
@_image_options
@_out_option("featuremaps.png")
@unsafe_option
def featuremaps_command(run, layer, image, sample, split, dataset, data_dir, out,
                        unsafe) -> None:
    """Draw every feature map of a layer of RUN for one image, beside the image."""
    from zoo.viz import find_layer, input_image, load_run, plot_feature_maps

    loaded = load_run(run, unsafe=unsafe)
    if layer:
        find_layer(loaded.model, layer)  # a wrong name fails before any data is read
    picture = input_image(loaded, image=image, sample=sample, split=split, dataset=dataset,
                          data_dir=data_dir)
    grid = plot_feature_maps(loaded, picture, out, layer=layer)
    h, w, c = grid.activations.shape
    click.echo(f"{grid.layer}: {c} feature maps of {h}x{w} for {grid.image_caption} "
               f"-> {grid.path}")


@viz_group.command("receptive-field")
@run_argument
@click.option("--layer", default=None, help="Any layer with 2-D maps (default: last conv).")
@click.option("--unit", default=None, metavar="ROW,COL",
              help="Unit of the layer's map (default: the centre one).")
@click.option("--channel", type=int, default=None,
              help="One channel's gradient (default: all channels at that unit, summed).")
@_image_options
@_out_option("receptive_field.png")
@unsafe_option
def receptive_field_command(run, layer, unit, channel, image, sample, split, dataset, data_dir,
                            out, unsafe) -> None:
    """Draw the input region one unit of a layer of RUN sees (the inspector's box) and the
    input gradient of that unit, which must lie inside the box."""
    from zoo.viz import find_layer, input_image, load_run, plot_receptive_field, receptive_field

    loaded = load_run(run, unsafe=unsafe)
    if layer:
        find_layer(loaded.model, layer)
    picture = input_image(loaded, image=image, sample=sample, split=split, dataset=dataset,
                          data_dir=data_dir)
    field = receptive_field(loaded, picture, layer=layer, unit=_unit(unit), channel=channel)
    plot_receptive_field(loaded, picture, field, out)
    top, left, bottom, right = field.box
    grad = field.gradient_box
    click.echo(f"{field.layer} unit {field.unit}: receptive field {field.size}x{field.size} "
               f"(jump {field.jump}, start {field.start:g}), rows {top}..{bottom}, "
               f"columns {left}..{right}")
    click.echo("input gradient: " + ("none (the unit does not depend on this image)"
               if grad is None else f"rows {grad[0]}..{grad[2]}, columns {grad[1]}..{grad[3]}, "
               f"{'inside' if field.gradient_inside else 'OUTSIDE'} the box, "
               f"{'fills it' if field.gradient_fills_box else 'covers part of it'}"))
    click.echo(f"-> {out}")


@viz_group.command("confusion")
@run_argument
@click.option("--split", default="test", show_default=True,
              type=click.Choice(["train", "val", "test"]))
@click.option("--dataset", default=None, help="Data set (default: the run's).")
@click.option("--data-dir", default=None, help="tensorflow-datasets directory.")
@click.option("--normalize", is_flag=True, help="Show each row as fractions of its class.")
@click.option("--table", "table_path", type=click.Path(), default=None,
              help="Also write the per-class table: .csv, or Markdown for .md.")
@_out_option("confusion.png")
@unsafe_option
def confusion_command(run, split, dataset, data_dir, normalize, table_path, out,
                      unsafe) -> None:
    """Draw the confusion matrix of RUN on a split and print per-class precision/recall."""
    from zoo.viz import (
        evaluate_classes,
        format_class_table,
        load_run,
        plot_confusion,
        write_class_table,
    )

    loaded = load_run(run, unsafe=unsafe)
    report = evaluate_classes(loaded, split, dataset=dataset, data_dir=data_dir)
    plot_confusion(report, out, title=loaded.label, normalize=normalize)
    click.echo(format_class_table(report), nl=False)
    if table_path:
        click.echo(f"table -> {write_class_table(report, table_path)}")
    click.echo(f"-> {out}")


@viz_group.command("curves")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@_out_option("curves.png")
def curves_command(run, out) -> None:
    """Draw loss and accuracy per epoch, train vs validation, from RUN's history.csv."""
    from zoo.viz import plot_run_curves

    picture = plot_run_curves(run, out)
    click.echo(f"{picture.title} -> {picture.path}")


@viz_group.command("pooling")
@click.option("--map", "grid", default=None, metavar="'1 0 2 3 / 4 6 6 8 / ...'",
              help="Another map, rows separated by '/' (default: the lecture's 4x4).")
@click.option("--kind", default="max", show_default=True, type=click.Choice(["max", "avg"]))
@click.option("--size", "pool_size", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--stride", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--out", default=None, type=click.Path(), help="Also draw it as a PNG.")
def pooling_command(grid, kind, pool_size, stride, out) -> None:
    """Print the lecture's worked example of 2x2 max pooling, stride 2, computed by Keras."""
    from zoo.viz import LECTURE_MAP, format_pooling, parse_grid, plot_pooling, pooling_example

    example = pooling_example(parse_grid(grid) if grid else LECTURE_MAP, kind=kind,
                              pool_size=pool_size, stride=stride)
    click.echo(format_pooling(example), nl=False)
    if out:
        click.echo(f"-> {plot_pooling(example, out).path}")


COMMANDS = [viz_group]
