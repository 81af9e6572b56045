"""`zoo weights list | import | info | verify`: pretrained weights entries and the cache."""

from __future__ import annotations

import json

import click


def weights_table(pattern: str = "*") -> list[dict]:
    """One row per known entry (no Keras import): key, data set, checksum, presence."""
    import fnmatch

    from zoo.weights.catalog import all_entries
    from zoo.weights.store import is_present, read_manifest

    rows = []
    for entry in all_entries():
        if not fnmatch.fnmatch(entry.model, pattern):
            continue
        manifest = read_manifest(entry) if is_present(entry) else None
        state = "missing"
        if manifest is not None:
            state = "packaged" if entry.packaged else (
                "present" if manifest.get("verified") else "present (UNVERIFIED)")
        rows.append({"entry": entry.key, "model": entry.model, "name": entry.name,
                     "dataset": entry.dataset, "file": entry.file_name,
                     "checksum": entry.checksum_label, "state": state,
                     "classifier": entry.classifier, "metrics": dict(entry.metrics),
                     "description": entry.description})
    return rows


@click.group("weights")
def weights_group() -> None:
    """Pretrained weights: list the known files, import them offline, check the cache."""


@weights_group.command("list")
@click.argument("pattern", default="*")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_command(pattern: str, as_json: bool) -> None:
    """Every known weights entry of models matching PATTERN, and whether it is present."""
    rows = weights_table(pattern)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'entry':<34} {'data set':<14} {'state':<21} file"
    click.echo(header)
    click.echo("-" * len(header))
    for r in rows:
        click.echo(f"{r['entry']:<34} {r['dataset']:<14} {r['state']:<21} {r['file']}")


@weights_group.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--unverified", is_flag=True,
              help="Import a file whose checksum differs from the published one; it is "
                   "marked unverified wherever it is used.")
@click.option("--as", "as_key", metavar="MODEL:ENTRY",
              help="The entry the file stands for (needed for an unknown file).")
def import_command(path: str, unverified: bool, as_key: str | None) -> None:
    """Identify PATH by its checksum, convert it to the zoo's layout and cache it."""
    from zoo.weights.store import import_weights

    result = import_weights(path, unverified=unverified, as_key=as_key)
    state = "checksum verified" if result.verified else "UNVERIFIED (checksum differs)"
    click.echo(f"imported {result.entry.key}: {result.layers} layers converted "
               f"({result.entry.converter}), {state} -> {result.folder}")


@weights_group.command("info")
@click.argument("key", metavar="MODEL:ENTRY")
def info_command(key: str) -> None:
    """Everything known about one entry: source, license, checksum, metrics, input, state."""
    from zoo.weights.catalog import parse_key
    from zoo.weights.store import import_command as how_to_import
    from zoo.weights.store import is_present, read_manifest, weights_file

    entry = parse_key(key, present=is_present)
    manifest = read_manifest(entry) if weights_file(entry) else None
    lines = [
        (entry.key, entry.description),
        ("data set", entry.dataset),
        ("file", entry.file_name + (f" ({entry.size:,} bytes)" if entry.size else
                                    f" (~{entry.published_size_mb} MB, published)"
                                    if entry.published_size_mb else "")),
        ("checksum", entry.checksum_label),
        ("source", entry.source),
        ("license", entry.license),
        ("converter", entry.converter),
        ("classifier", "yes" if entry.classifier else "no (build with include_top=False)"),
        ("classes", entry.classes or "-"),
        ("preprocessing", entry.preprocessing.describe()),
        ("builder args", ", ".join(f"{k}={v!r}" for k, v in entry.hparams.items()) or "-"),
        ("metrics", ", ".join(f"{k} {v}" for k, v in entry.metrics.items()) or "-"),
    ]
    if entry.command:
        lines.append(("trained with", entry.command))
    if entry.notes:
        lines.append(("notes", entry.notes))
    if manifest is None:
        lines.append(("state", f"missing: {how_to_import(entry)}"))
    else:
        state = "packaged with the zoo" if entry.packaged else (
            f"imported {manifest.get('imported_at')} from {manifest.get('source_file')}, "
            + ("checksum verified" if manifest.get("verified") else "UNVERIFIED"))
        lines.append(("state", state))
        lines.append(("local file", str(weights_file(entry))))
    width = max(len(k) for k, _ in lines[1:])
    click.echo(f"{lines[0][0]}: {lines[0][1]}")
    for label, value in lines[1:]:
        click.echo(f"  {label:<{width}}  {value}")


@weights_group.command("verify")
def verify_command() -> None:
    """Re-hash every present weights file against its manifest; exit 1 if one changed."""
    from zoo.weights.catalog import all_entries
    from zoo.weights.store import verify_entry

    bad = 0
    for entry in all_entries():
        status, detail = verify_entry(entry)
        if status == "missing":
            continue
        bad += status == "corrupt"
        click.echo(f"{status:<10} {entry.key:<34} {detail}")
    if bad:
        raise click.ClickException(f"{bad} weights file(s) changed since import; import "
                                   f"them again")



@weights_group.command("classify")
@click.argument("key", metavar="MODEL:ENTRY")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--top", "top_k", default=3, show_default=True, help="Classes per image.")
def classify_command(key: str, images: tuple[str, ...], top_k: int) -> None:
    """Classify IMAGES with a pretrained entry that has a classifier."""
    from zoo.weights.classify import classify

    for item in classify(key, list(images), top_k=top_k):
        tops = "; ".join(f"{t['class'].split(',')[0]} {t['probability']:.1%}" for t in item["top"])
        flag = "" if item["verified"] else "  [UNVERIFIED weights]"
        click.echo(f"{item['image']}: {tops}{flag}")


COMMANDS = [weights_group]
