"""Which file --weights means, and loading it into a built model (``zoo.weights.factory``).

``--weights`` takes an entry name of the model (``zoo weights list``), 'imagenet' (the model's
ImageNet entry that is present, in table order), or the path of a Keras ``.weights.h5``. Layers
are matched by name, so a file with a classifier also fills a model built without its top
(``include_top=False``, any input size the convolutions accept).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.weights.catalog import (
    IMAGENET,
    UnknownWeightsError,
    entries_for,
    get_entry,
    imagenet_candidates,
)
from zoo.weights.entry import UNIT_SCALE, WeightsEntry
from zoo.weights.store import import_command, is_present, read_manifest, weights_file

if TYPE_CHECKING:
    import keras


class WeightsNotImportedError(FileNotFoundError):
    """A known entry whose file has not been imported yet."""


@dataclass
class ResolvedWeights:
    """Which file --weights means, and what runs and exports record about it."""

    path: Path
    entry: WeightsEntry | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def verified(self) -> bool | None:
        """True/False for an entry's file; None for a plain file the zoo cannot check."""
        return self.provenance.get("verified")


def _missing(entry: WeightsEntry, others: list[WeightsEntry] = ()) -> WeightsNotImportedError:
    also = (f" (or import one of: {', '.join(e.file_name for e in others)})" if others else "")
    return WeightsNotImportedError(
        f"weights {entry.key} are not imported: get the official file {entry.file_name} "
        f"({entry.source}) and run `{import_command(entry)}`{also}")


def _entry_name(model: str, weights: str, names: set[str], path: Path) -> str:
    """``weights`` without a 'MODEL:' prefix, so '--weights vgg16:torchvision' (the key `zoo
    weights list` prints) names the same entry as '--weights torchvision'."""
    prefix, sep, name = weights.partition(":")
    if not sep or weights in names or path.exists() or prefix != prefix.strip() or "/" in prefix:
        return weights
    if prefix != model:
        raise UnknownWeightsError(f"--weights {weights} names weights of {prefix}, not of "
                                  f"{model}; give one of {model}'s (`zoo weights list "
                                  f"{model}`) or use {prefix} as the model")
    return name


def resolve(model: str, weights: str) -> ResolvedWeights:
    """The file and provenance ``weights`` stands for, for ``model``.

    Args:
        model: a zoo model or keras.applications backbone with entries.
        weights: an entry name ('torchvision', or 'MODEL:torchvision' as `zoo weights list`
            prints it), 'imagenet', or the path of a Keras .weights.h5 file.
    """
    path = Path(weights).expanduser()
    names = {e.name for e in entries_for(model)}
    weights = _entry_name(model, weights, names, path)
    if weights not in names and weights != IMAGENET and (
            path.suffix in (".h5", ".keras") or path.exists()):
        if not path.is_file():
            raise FileNotFoundError(f"weights file {weights} does not exist")
        return ResolvedWeights(path, None, {"file": str(path.resolve()), "verified": None,
                                            "note": "a local file; the zoo cannot check it"})
    if weights == IMAGENET and IMAGENET not in names:
        candidates = imagenet_candidates(model)
        if not candidates:
            get_entry(model, IMAGENET)  # raises UnknownWeightsError naming the model's entries
        present = [e for e in candidates if is_present(e)]
        if not present:
            raise _missing(candidates[0], candidates[1:])
        entry = present[0]
    else:
        entry = get_entry(model, weights)
    file = weights_file(entry)
    if file is None:
        raise _missing(entry)
    manifest = read_manifest(entry) or {}
    provenance = {"entry": entry.key, "dataset": entry.dataset, "file": str(file),
                  "verified": bool(manifest.get("verified", False)),
                  "source_sha256": manifest.get("sha256"), "license": entry.license,
                  "preprocessing": entry.preprocessing.describe()}
    return ResolvedWeights(file, entry, provenance)


def load_into(model: "keras.Model", resolved: ResolvedWeights, *, grey: bool = False) -> None:
    """Fill ``model`` from a resolved weights file (all layers checked before any is set).

    ``grey``: the model takes 1-channel images and the file holds RGB weights; its first
    convolution is summed over the colour channels, normalisation folded in
    (``zoo.weights.grey``; pair it with ``grey_preprocessing_layers``).
    """
    from zoo.weights.convert import assign, read_keras_weights

    preprocessing = resolved.entry.preprocessing if resolved.entry else UNIT_SCALE
    assign(model, read_keras_weights(resolved.path, model, preprocessing if grey else None))
