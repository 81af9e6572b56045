"""Where converted weights live, and `zoo weights import` / `verify`.

Layout, in the same cache as the data sets (``zoo.data.cache.zoo_home``):
``<cache>/weights/MODEL/ENTRY/`` holding ``model.weights.h5`` (a Keras weights file of the
zoo's model, written by ``model.save_weights``) and ``manifest.json`` (the entry, the source
file's SHA-256/MD5/size, whether they matched the published checksum, the converted file's
SHA-256). The folder is written under a temporary name and renamed in one step, so a killed
import leaves nothing that looks imported. The zoo's own small weights ship inside the package
(``zoo/weights/packaged/``) and need no import.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.data.cache import MANIFEST, remove_leftovers, staged_folder, zoo_home
from zoo.weights.catalog import by_file_name, identify, parse_key
from zoo.weights.entry import WeightsEntry

if TYPE_CHECKING:
    import keras

WEIGHTS_FILE = "model.weights.h5"
PACKAGED_DIR = Path(__file__).parent / "packaged"


class WeightsImportError(ValueError):
    """A file that cannot be imported as the weights it claims (or seems) to be."""


@dataclass
class ImportResult:
    """What an import wrote."""

    entry: WeightsEntry
    folder: Path
    verified: bool
    sha256: str
    layers: int


def weights_root() -> Path:
    """The folder holding one sub-folder per model with imported weights."""
    return zoo_home() / "weights"


def entry_dir(entry: WeightsEntry) -> Path:
    """The cache folder of one entry (which may not exist yet)."""
    return weights_root() / entry.model / entry.name


def read_manifest(entry: WeightsEntry) -> dict[str, Any] | None:
    """The manifest of an imported entry, or None when it is not imported."""
    if entry.packaged:
        return {"entry": entry.key, "verified": True, "packaged": True,
                "sha256": entry.checksum, "converted_sha256": entry.checksum}
    path = entry_dir(entry) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else None


def weights_file(entry: WeightsEntry) -> Path | None:
    """The entry's Keras weights file when present (packaged or imported), else None."""
    if entry.packaged:
        path = PACKAGED_DIR / entry.packaged
        return path if path.is_file() else None
    if read_manifest(entry) is None:
        return None
    return entry_dir(entry) / WEIGHTS_FILE


def is_present(entry: WeightsEntry) -> bool:
    """Whether the entry can be loaded now (a file check only)."""
    return weights_file(entry) is not None


def import_command(entry: WeightsEntry) -> str:
    """The command that imports the entry's official file."""
    return f"zoo weights import PATH/{entry.file_name}"


def digests(path: Path) -> tuple[str, str, int]:
    """(SHA-256, MD5, size in bytes) of a file, read in chunks."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def choose_entry(path: Path, sha256: str, md5: str, *, as_key: str | None,
                 unverified: bool) -> tuple[WeightsEntry, bool]:
    """(entry, verified) for a file: identified by checksum, or named with ``as_key``.

    An altered or unknown file is refused with the expected and found checksums unless
    ``unverified``; then it must say which entry it stands for (by name or ``as_key``).
    """
    if as_key is not None:
        # 'MODEL:imagenet' stands for the ImageNet entry this file is (by checksum or name).
        entry = parse_key(as_key, present=lambda e: e.matches(sha256, md5)
                          or e.file_name == path.name)
        if entry.matches(sha256, md5):
            return entry, True
        if not unverified:
            raise WeightsImportError(
                f"{path} is not the official {entry.key} file: {entry.expected_vs(sha256, md5)}. "
                f"Pass --unverified to import it anyway (it is then marked unverified "
                f"wherever it is used)")
        return entry, False
    matches = identify(sha256, md5)
    if matches:
        return matches[0], True
    named = by_file_name(path.name)
    if named:
        entry = named[0]
        if unverified:
            return entry, False
        raise WeightsImportError(
            f"{path} is named like the official {entry.key} file but differs: "
            f"{entry.expected_vs(sha256, md5)} (altered or truncated?). Pass --unverified to "
            f"import it anyway (marked unverified wherever it is used)")
    hint = ("; with --unverified, also say which entry it is: --as MODEL:ENTRY" if unverified
            else "; if you trust it: --unverified --as MODEL:ENTRY")
    raise WeightsImportError(
        f"{path} matches no known weights file (SHA-256 {sha256}, MD5 {md5}): see "
        f"`zoo weights list` for the official files{hint}")


def build_architecture(entry: WeightsEntry, **overrides: Any) -> "keras.Model":
    """The model the entry's file fills, built with the entry's hyperparameters."""
    from zoo.core.registry import build, list_models
    from zoo.weights.applications import APPLICATION_BUILDERS

    hparams = {**entry.hparams, **overrides}
    if entry.model in list_models():
        return build(entry.model, **hparams)
    return APPLICATION_BUILDERS[entry.model](**hparams)


def convert_file(entry: WeightsEntry, path: Path, model: "keras.Model") -> dict[str, list]:
    """The file's weights converted for ``model`` by the entry's converter, by layer name."""
    from zoo.weights import convert
    from zoo.weights.pth import read_state_dict
    from zoo.weights.safe_pickle import load_numpy_pickle

    if entry.converter == "torchvision":
        return convert.torchvision_to_layers(read_state_dict(path), model, origin=str(path))
    if entry.converter == "keras_h5":
        return convert.keras_h5_to_layers(path, model)
    if entry.converter == "lpips_numpy":
        return convert.lpips_to_layers(load_numpy_pickle(path), model, origin=str(path))
    return convert.read_keras_weights(path, model)


def import_weights(path: str | Path, *, unverified: bool = False,
                   as_key: str | None = None) -> ImportResult:
    """Identify ``path`` among the known entries, convert it and store it in the cache.

    Args:
        path: an official weights file (.pth, .h5, .ckpt, or a Keras .weights.h5).
        unverified: accept a file whose checksum differs from the published one (or that is
            unknown, together with ``as_key``); it is marked unverified everywhere it is used.
        as_key: 'MODEL:ENTRY' the file stands for, when it cannot be identified by checksum.
    """
    from zoo.weights.convert import assign

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    sha256, md5, size = digests(path)
    entry, verified = choose_entry(path, sha256, md5, as_key=as_key, unverified=unverified)
    if entry.packaged:
        raise WeightsImportError(f"{entry.key} ships with the zoo (nothing to import)")
    model = build_architecture(entry)
    converted = convert_file(entry, path, model)
    assign(model, converted)
    remove_leftovers(entry.name, root=entry_dir(entry).parent)
    with staged_folder(entry_dir(entry)) as staging:
        model.save_weights(staging / WEIGHTS_FILE)
        manifest = {
            "entry": entry.key, "model": entry.model, "name": entry.name,
            "verified": verified, "source_file": str(path.resolve()),
            "file_name": path.name, "sha256": sha256, "md5": md5, "size": size,
            "published_checksum": entry.checksum_label, "converter": entry.converter,
            "hparams": dict(entry.hparams), "layers": sorted(converted),
            "converted_sha256": digests(staging / WEIGHTS_FILE)[0],
            "imported_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return ImportResult(entry, entry_dir(entry), verified, sha256, len(converted))


def verify_entry(entry: WeightsEntry) -> tuple[str, str]:
    """(status, detail) of one entry: 'ok', 'unverified', 'corrupt' or 'missing'."""
    manifest = read_manifest(entry)
    path = weights_file(entry)
    if manifest is None or path is None:
        return "missing", f"not imported ({import_command(entry)})"
    found = digests(path)[0]
    if found != manifest["converted_sha256"]:
        return "corrupt", (f"{path} changed since import: expected SHA-256 "
                           f"{manifest['converted_sha256']}, found {found}; import it again")
    if not manifest.get("verified", False):
        return "unverified", (f"imported with --unverified from {manifest.get('file_name')} "
                              f"(SHA-256 {manifest.get('sha256')})")
    return "ok", str(path)
