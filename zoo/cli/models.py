"""`zoo list` and `zoo show`: the registry and the layer inspector."""

from __future__ import annotations

import json

import click

from zoo.cli.options import input_shape_option, parse_assignments, parse_shape, set_option


def registry_table(pattern: str = "*") -> list[dict]:
    """One row per registered model, from registry metadata alone (nothing is built)."""
    from zoo.registry import get_model_info, list_models

    rows = []
    for name in list_models(pattern):
        info = get_model_info(name)
        rows.append({
            "name": name, "family": info.family, "params": info.num_params, "macs": info.macs,
            "input": "x".join(map(str, info.input_shape)), "classes": info.num_classes,
            "description": info.description,
        })
    return rows


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern: str, as_json: bool) -> None:
    """List the zoo's models with parameters, MACs and default input (PATTERN: e.g. 'vgg*')."""
    rows = registry_table(pattern)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'model':<14} {'family':<8} {'params':>13} {'MACs':>16} {'input':<11} description"
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        click.echo(f"{r['name']:<14} {r['family']:<8} {r['params']:>13,} {r['macs']:>16,} "
                   f"{r['input']:<11} {r['description']}")


@click.command("show")
@click.argument("name")
@input_shape_option
@set_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(name: str, input_shape: str | None, assignments: tuple[str, ...],
                 as_json: bool) -> None:
    """Print every layer of NAME (a registered model or a .keras file) with output size,
    weights, MACs and receptive field."""
    import warnings
    from pathlib import Path

    from zoo.layer_table import format_summary, inspect_model, summarize

    hparams = parse_assignments(assignments)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if "/" in name or name.endswith(".keras") or Path(name).exists():
            if not Path(name).exists():  # a path, not a model name: say so, not "unknown model"
                raise FileNotFoundError(f"no such run directory or .keras file: {name}")
            from zoo.runs import load_run_model

            summary = summarize(load_run_model(name))
        else:
            summary = inspect_model(name, parse_shape(input_shape), **hparams)
    if as_json:
        click.echo(json.dumps({"model": summary.model_name,
                               "input_shape": list(summary.input_shape),
                               "total_params": summary.total_params,
                               "total_macs": summary.total_macs,
                               "layers": [r.as_dict() for r in summary.rows]}, indent=2))
    else:
        click.echo(format_summary(summary))
    for warning in caught:
        if "floor" in str(warning.message):
            click.echo(f"warning: {warning.message}", err=True)


COMMANDS = [list_command, show_command]
