"""`zoo data`: list, import, fetch, describe and preview the data sets."""

from __future__ import annotations

import click


@click.group("data")
def data_group() -> None:
    """Known data sets (digits, mnist, fashion_mnist, cifar10, cifar100): import them from
    the official files, then use them with --dataset NAME in every command."""


@data_group.command("list")
@click.option("--data-dir", default=None, help="Also list the tfds sets prepared here.")
def list_command(data_dir) -> None:
    """Every known data set: state, where it is cached, split sizes, shape, license, citation."""
    from zoo.data.info import catalog_rows, tfds_rows

    rows = catalog_rows() + (tfds_rows(data_dir) if data_dir else [])
    click.echo(f"{'name':<15} {'state':<19} {'train/val/test':<20} {'shape':<11} where")
    for row in rows:
        sizes = "/".join(f"{n:,}" for n in row.splits.values())
        shape = "x".join(map(str, row.image_shape)) or "-"
        click.echo(f"{row.name:<15} {row.state:<19} {sizes:<20} {shape:<11} {row.where}")
        if row.problem:
            click.echo(f"{'':<15} {row.problem}")
        if row.license or row.citation:
            click.echo(f"{'':<15} license: {row.license or '-'}; cite: {row.citation or '-'}")


@data_group.command("import")
@click.argument("name")
@click.argument("path", type=click.Path())
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Refuse files whose MD5 differs from the published one. --no-verify "
                   "imports a modified copy and marks it UNVERIFIED wherever it is used.")
def import_command(name, path, verify) -> None:
    """Import data set NAME from PATH: a folder or archive holding the files as their authors
    distribute them (MNIST/Fashion-MNIST: the four IDX files, raw or .gz; CIFAR: the python
    archive or its extracted batches)."""
    from zoo.data.imports import import_dataset

    _echo_import(import_dataset(name, path, verify=verify))


@data_group.command("fetch")
@click.argument("name")
@click.option("--verify/--no-verify", default=True, show_default=True)
def fetch_command(name, verify) -> None:
    """Download NAME's official files and import them (needs internet; offline it fails
    within seconds with the import command to use)."""
    from zoo.data.fetch import fetch_dataset

    _echo_import(fetch_dataset(name, verify=verify))


def _echo_import(result) -> None:
    sizes = ", ".join(f"{split} {n:,}" for split, n in result.counts.items())
    state = "checksums verified" if result.verified else "UNVERIFIED (checksums differ)"
    click.echo(f"imported {result.name}: {sizes} images, {state} -> {result.folder}")


@data_group.command("info")
@click.argument("name")
@click.option("--data-dir", default=None, help="tensorflow-datasets data directory.")
def info_command(name, data_dir) -> None:
    """Counts per split and class, image shape, pixel mean/std, checksums and source of NAME
    (any --dataset value)."""
    from zoo.data.info import dataset_info

    info = dataset_info(name, data_dir=data_dir)
    click.echo(f"{info.name}: images {'x'.join(map(str, info.image_shape))}, "
               f"{len(info.class_names)} classes")
    for key, value in info.extra.items():
        click.echo(f"  {key}: {value}")
    width = max(5, *(len(c) for c in info.class_names))
    click.echo(f"  {'class':<{width}} " + " ".join(f"{s:>7}" for s in info.counts))
    for c, cls in enumerate(info.class_names):
        click.echo(f"  {cls:<{width}} " + " ".join(f"{info.counts[s][c]:>7,}" for s in info.counts))
    click.echo(f"  {'total':<{width}} " + " ".join(f"{sum(n):>7,}" for n in info.counts.values()))
    stats = ", ".join(f"{m:.4f}/{s:.4f}" for m, s in zip(info.pixel_mean, info.pixel_std))
    click.echo(f"  pixel mean/std per channel (train, [0, 1]): {stats}")
    if info.manifest:
        m = info.manifest
        click.echo(f"  imported {m['imported_at']} from {m['source']}, "
                   f"{'verified' if m['verified'] else 'UNVERIFIED'}")
        for official, entry in m["checksums"].items():
            verdict = "matches" if entry["matches"] else f"DIFFERS from {entry['published_md5']}"
            click.echo(f"    {official}: MD5 {entry['md5']} ({verdict} the published MD5)")
    from zoo.cli.models import echo_presets

    echo_presets(dataset=name)


@data_group.command("preview")
@click.argument("name")
@click.option("--out", default="data-preview.png", show_default=True, help="PNG to write.")
@click.option("--per-class", default=8, show_default=True, type=click.IntRange(1, 32))
@click.option("--data-dir", default=None, help="tensorflow-datasets data directory.")
def preview_command(name, out, per_class, data_dir) -> None:
    """Save a labelled grid of NAME's training images, one row per class."""
    from zoo.viz.preview import preview_grid

    click.echo(f"wrote {preview_grid(name, out, per_class=per_class, data_dir=data_dir)}")


@data_group.command("cache")
@click.option("--clear", is_flag=True, help="Delete every decoded image folder in the cache.")
def cache_command(clear) -> None:
    """Show (or --clear) the cache of image folders decoded into memory ($ZOO_HOME/folders;
    budget $ZOO_FOLDER_CACHE_GB, default 4; streamed folders are never cached)."""
    from zoo.data import folder_cache

    if clear:
        freed = folder_cache.clear()
        click.echo(f"cleared {folder_cache.cache_root()}: {freed / 2**20:,.1f} MiB freed")
        return
    entries = folder_cache.entries()
    used = sum(e.bytes for e in entries)
    click.echo(f"{folder_cache.cache_root()}: {len(entries)} decoded folder(s), "
               f"{used / 2**20:,.1f} MiB of {folder_cache.budget_bytes() / 2**20:,.0f} MiB")
    for e in reversed(entries):  # most recently used first
        from datetime import datetime

        used_at = datetime.fromtimestamp(e.last_used).strftime("%Y-%m-%d %H:%M")
        click.echo(f"  {e.bytes / 2**20:>9,.1f} MiB  {e.images:>8,} images  "
                   f"{'x'.join(map(str, e.shape)):<11} used {used_at}  {e.root}")


COMMANDS = [data_group]
