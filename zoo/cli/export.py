"""`zoo export`, `zoo predict` and `zoo models`: verified exports and using them."""

from __future__ import annotations

import json

import click

from zoo.cli.options import POSITIVE

FORMAT_CHOICES = ("savedmodel", "keras", "tflite", "onnx")


@click.command("export")
@click.argument("source")
@click.option("--format", "formats", default="savedmodel,keras", show_default=True,
              metavar="F[,F...]", help="Comma-separated: savedmodel, keras, tflite, onnx, or "
                                       "'all'. tflite and onnx need the extras of those names.")
@click.option("--name", default=None, help="Folder name under saved_models/ (default: the "
                                           "model's name).")
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="Version number (default: the next free one). Must be free unless --force.")
@click.option("--force", is_flag=True, help="Replace --version if it exists.")
@click.option("--out", default=None, help="Write to OUT/NAME/VERSION instead of saved_models/.")
@click.option("--unsafe", is_flag=True, help="Allow Lambda layers (runs code from the file).")
@click.option("--tolerance", default=1e-4, show_default=True, type=POSITIVE,
              help="Largest probability difference with Keras a format may show.")
@click.option("--allow-unfinished", is_flag=True,
              help="Export a run that has not finished (its best checkpoint so far, never "
                   "tested); the manifest records it.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def export_command(source, formats, name, version, force, out, unsafe, tolerance,
                   allow_unfinished, as_json) -> None:
    """Export SOURCE (a run directory, a .keras file or a registered model name) to
    saved_models/NAME/VERSION/, verifying every format by reloading it in a fresh process."""
    from zoo.deploy.export import export_model

    result = export_model(source, formats=formats, name=name, version=version, force=force,
                          out=out, unsafe=unsafe, tolerance=tolerance,
                          allow_unfinished=allow_unfinished)
    if as_json:
        click.echo(json.dumps(result.manifest, indent=2))
        return
    manifest = result.manifest
    click.echo(f"exported {manifest['model']['name']} as {result.name} version "
               f"{result.version}: {result.path}")
    if manifest["training"].get("finished") is False:
        click.echo(f"warning: unfinished run ({manifest['training']['epochs_done']} epochs, "
                   f"never tested), exported with --allow-unfinished", err=True)
    if not manifest["model"]["trained"]:
        click.echo("warning: untrained model (random weights); its predictions mean nothing",
                   err=True)
    click.echo(f"{'format':<11} {'path':<22} {'max |diff|':>11}  reloaded by")
    for fmt, entry in manifest["formats"].items():
        path = "saved_model.pb" if entry["path"] == "." else entry["path"]
        click.echo(f"{fmt:<11} {path:<22} {entry['max_abs_diff']:>11.2e}  "
                   f"{entry['runtime']}")


@click.command("predict")
@click.argument("export_dir")
@click.argument("images", nargs=-1, required=True)
@click.option("--top-k", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default=None,
              help="Which format to run (default: the lightest the export has).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def predict_command(export_dir, images, top_k, fmt, as_json) -> None:
    """Classify IMAGES (files, or folders of them) with the export in EXPORT_DIR
    (saved_models/NAME or NAME/VERSION); many images are streamed in batches."""
    from zoo.deploy.predict import predict_images

    result = predict_images(export_dir, list(images), top_k=top_k, fmt=fmt)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(f"{result['export']} ({result['format']})")
    for item in result["predictions"]:
        top = ", ".join(f"{p['class_name']} {p['probability']:.3f}" for p in item["top"])
        click.echo(f"{item['image']}: {top}")


@click.command("models")
@click.option("--root", default="saved_models", show_default=True, help="Where exports live.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models_command(root, as_json) -> None:
    """List the exported models: versions, formats of the latest, its data set and metrics."""
    from zoo.deploy.predict import list_exports

    rows = list_exports(root)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no exports under {root}/ (create one with `zoo export RUN_DIR`)")
        return
    header = (f"{'name':<20} {'model':<14} {'versions':<10} {'formats':<30} {'data set':<12} "
              f"test acc")
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        accuracy = row["test_metrics"].get("test_accuracy")
        versions = ",".join(map(str, row["versions"]))
        click.echo(f"{row['name']:<20} {row['model']:<14} {versions:<10} "
                   f"{','.join(row['formats']):<30} {row['dataset'] or '-':<12} "
                   f"{_accuracy_text(row['trained'], accuracy)}")


def _accuracy_text(trained: bool, accuracy: float | None) -> str:
    if not trained:
        return "untrained"
    return "-" if accuracy is None else f"{accuracy:.4f}"


COMMANDS = [export_command, predict_command, models_command]
