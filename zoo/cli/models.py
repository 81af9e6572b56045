"""`zoo list` and `zoo show`: the registry and the layer inspector."""

from __future__ import annotations

import json

import click

from zoo.cli.options import input_shape_option, parse_assignments, parse_shape, set_option


def registry_table(pattern: str = "*") -> list[dict]:
    """One row per registered model, from registry metadata alone (nothing is built)."""
    from zoo.core.registry import get_model_info, list_models
    from zoo.weights.store import is_present

    rows = []
    for name in list_models(pattern):
        info = get_model_info(name)
        rows.append({
            "name": name, "family": info.family, "params": info.num_params, "macs": info.macs,
            "input": "x".join(map(str, info.input_shape)), "classes": info.num_classes,
            "description": info.description,
            "weights": [{"name": e.name, "dataset": e.dataset, "present": is_present(e)}
                        for e in info.weights],
        })
    return rows


def _weights_cell(weights: list[dict]) -> str:
    """'torchvision, lpips*' (* present locally) or '-'."""
    return ", ".join(w["name"] + ("*" if w["present"] else "") for w in weights) or "-"


@click.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern: str, as_json: bool) -> None:
    """List the zoo's models with parameters, MACs, default input and pretrained weights
    (PATTERN: e.g. 'vgg*'; * marks weights present locally, see `zoo weights list`)."""
    rows = registry_table(pattern)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = (f"{'model':<20} {'family':<8} {'params':>13} {'MACs':>16} {'input':<11} "
              f"{'weights (* present)':<36} description")
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        click.echo(f"{r['name']:<20} {r['family']:<8} {r['params']:>13,} {r['macs']:>16,} "
                   f"{r['input']:<11} {_weights_cell(r['weights']):<36} {r['description']}")


def weights_lines(name: str, chosen: str | None) -> tuple[list[str], dict | None]:
    """Lines naming the model's weights entries and presence, and the chosen one's provenance
    (whose file must exist; an unverified import says so)."""
    from zoo.weights.catalog import entries_for
    from zoo.weights.load import resolve
    from zoo.weights.store import is_present

    lines = [f"weights: {e.key:<34} {e.dataset:<14} "
             f"{'present' if is_present(e) else 'missing'}" for e in entries_for(name)]
    provenance = None
    if chosen is not None:
        provenance = resolve(name, chosen).provenance
        flag = "" if provenance.get("verified") else (
            "  UNVERIFIED" if provenance.get("verified") is False else "  (unchecked file)")
        lines.append(f"loaded:  {provenance.get('entry', provenance['file'])}{flag}")
    return lines, provenance


def run_weights_lines(path: str) -> tuple[list[str], dict | None]:
    """The line saying which pretrained weights a run started from, and their provenance,
    as the run's config records them (an --unverified import says UNVERIFIED)."""
    from zoo.core.runs import load_run_config

    provenance = load_run_config(path).get("weights")
    if not provenance:
        return [], None
    verified = provenance.get("verified")
    flag = ("" if verified else "  UNVERIFIED" if verified is False else "  (unchecked file)")
    digest = provenance.get("source_sha256")
    return [f"started from weights: {provenance.get('entry', provenance.get('file'))}{flag}"
            + (f" (source SHA-256 {digest})" if digest else "")], provenance


def _saved_model_name(path: str) -> str:
    """The registry name a run directory was trained from ('MODEL' when it does not say)."""
    from pathlib import Path

    config = Path(path) / "config.json"
    try:
        return str(json.loads(config.read_text()).get("model") or "MODEL")
    except (OSError, ValueError, AttributeError):
        return "MODEL"


def _as_options(assignments: tuple[str, ...], input_shape: str | None,
                weights: str | None) -> str:
    options = [f"--set {a}" for a in assignments]
    options += [f"--input-shape {input_shape}"] if input_shape else []
    return " ".join(options + ([f"--weights {weights}"] if weights else []))


@click.command("show")
@click.argument("name")
@input_shape_option
@set_option
@click.option("--weights", "weights", default=None, metavar="ENTRY|PATH",
              help="Pretrained weights to describe with the layers (an entry name, 'imagenet' "
                   "or a .weights.h5 file); their builder arguments apply.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show_command(name: str, input_shape: str | None, assignments: tuple[str, ...],
                 weights: str | None, as_json: bool) -> None:
    """Print every layer of NAME (a registered model, a run directory or a .keras file) with
    output size, weights, MACs and receptive field, and the model's pretrained weights entries
    (for a run: the weights it started from, UNVERIFIED where they were)."""
    import warnings
    from pathlib import Path

    from zoo.core.layer_table import format_summary, inspect_model, summarize

    hparams = parse_assignments(assignments)
    is_file = "/" in name or name.endswith(".keras") or Path(name).exists()
    given = [option for option, value in (("--set", assignments), ("--input-shape", input_shape),
                                          ("--weights", weights)) if value]
    if is_file and given:
        # A run's (or .keras file's) model is fixed by its trained weights: changing its
        # hyperparameters would describe another, untrained model, so refuse, never ignore.
        raise click.UsageError(
            f"{' and '.join(given)} cannot change saved model {name} (its layers are fixed by "
            f"its weights); drop them, or show the registry's model with them: "
            f"zoo show {_saved_model_name(name)} "
            f"{_as_options(assignments, input_shape, weights)}")
    lines, provenance = run_weights_lines(name) if is_file else weights_lines(name, weights)
    if not is_file and provenance is not None and provenance.get("entry"):
        from zoo.weights.catalog import parse_key

        entry_hparams = dict(parse_key(provenance["entry"]).hparams)
        if input_shape is None and "input_shape" in entry_hparams:
            input_shape = ",".join(map(str, entry_hparams["input_shape"]))
        entry_hparams.pop("input_shape", None)
        hparams = {**entry_hparams, **hparams}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if is_file:
            if not Path(name).exists():  # a path, not a model name: say so, not "unknown model"
                raise FileNotFoundError(f"no such run directory or .keras file: {name}")
            from zoo.core.runs import load_run_model

            summary = summarize(load_run_model(name))
        else:
            summary = inspect_model(name, parse_shape(input_shape), **hparams)
    if as_json:
        click.echo(json.dumps({"model": summary.model_name,
                               "input_shape": list(summary.input_shape),
                               "total_params": summary.total_params,
                               "total_macs": summary.total_macs,
                               "layers": [r.as_dict() for r in summary.rows],
                               "pretrained_weights": provenance}, indent=2))
    else:
        click.echo(format_summary(summary))
        for line in lines:
            click.echo(line)
        if not is_file:
            echo_presets(model=name)
    for warning in caught:
        if "floor" in str(warning.message):
            click.echo(f"warning: {warning.message}", err=True)


def echo_presets(**where: str) -> None:
    """The results-table rows of a model or data set, each with its one-command reproduction."""
    from recipes.presets import list_presets
    from zoo.cli.recipes import preset_lines

    presets = list_presets(**where)
    if presets:
        click.echo("\nmeasured results, each reproduced by one command (`zoo results`):")
        for line in preset_lines(presets):
            click.echo(f"  {line}")


COMMANDS = [list_command, show_command]
