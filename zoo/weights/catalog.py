"""Finding weights entries: by model, by 'MODEL:ENTRY' key, by a file's checksum.

Entries live beside the builders (each family's ``WEIGHTS`` table, attached to the registry)
and, for keras.applications backbones, in ``zoo.weights.applications``. Nothing here imports
Keras, so `zoo list` and `zoo weights list` stay fast.
"""

from __future__ import annotations

from collections.abc import Callable

from zoo.core.names import did_you_mean
from zoo.weights.entry import WeightsEntry

IMAGENET = "imagenet"


class UnknownWeightsError(KeyError):
    """A weights entry that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


def application_entries() -> tuple[WeightsEntry, ...]:
    """Entries of keras.applications backbones (converted from other frameworks)."""
    from zoo.weights.applications import APPLICATION_WEIGHTS

    return APPLICATION_WEIGHTS


def all_entries() -> list[WeightsEntry]:
    """Every known entry: the registered models' in registry order, then the backbones'."""
    from zoo.core.registry import get_model_info, list_models

    entries = [e for name in list_models() for e in get_model_info(name).weights]
    return entries + list(application_entries())


def entries_for(model: str) -> list[WeightsEntry]:
    """The entries of one model (registered name or keras.applications backbone)."""
    return [e for e in all_entries() if e.model == model]


def has_weights_model(model: str) -> bool:
    """Whether ``model`` is a zoo model or a backbone that entries exist for."""
    from zoo.core.registry import list_models

    return model in list_models() or any(e.model == model for e in application_entries())


def get_entry(model: str, name: str) -> WeightsEntry:
    """The entry ``name`` of ``model``; unknown names raise with the model's entries."""
    entries = entries_for(model)
    for entry in entries:
        if entry.name == name:
            return entry
    names = [e.name for e in entries]
    known = ", ".join(names) if names else "none"
    raise UnknownWeightsError(f"{model} has no weights entry {name!r}"
                              f"{did_you_mean(name, names)}. Its entries: {known} (see `zoo "
                              f"weights list`)")


def split_key(key: str) -> tuple[str, str]:
    """'MODEL:ENTRY' -> (MODEL, ENTRY); anything else raises saying how to write it."""
    model, sep, name = key.partition(":")
    if not sep or not model or not name:
        raise UnknownWeightsError(f"weights entry {key!r} must be MODEL:ENTRY, e.g. "
                                  f"vgg16:torchvision or MobileNetV2:imagenet (see `zoo "
                                  f"weights list`)")
    return model, name


def parse_key(key: str, present: Callable[[WeightsEntry], bool] | None = None
              ) -> WeightsEntry:
    """The entry named 'MODEL:ENTRY' (as `zoo weights list` prints it); 'MODEL:imagenet'
    means the model's ImageNet entry, as ``--weights imagenet`` does: the first one
    ``present`` accepts, else the first in table order."""
    model, name = split_key(key)
    return find_entry(model, name, present)


def find_entry(model: str, name: str, present: Callable[[WeightsEntry], bool] | None = None
               ) -> WeightsEntry:
    """The entry ``name`` of ``model``, where 'imagenet' (unless an entry has that name)
    stands for its ImageNet entry: the first one ``present`` accepts, else the first."""
    if name == IMAGENET and name not in {e.name for e in entries_for(model)}:
        candidates = imagenet_candidates(model)
        chosen = [e for e in candidates if present is not None and present(e)]
        if chosen or candidates:
            return (chosen or candidates)[0]
    return get_entry(model, name)


def imagenet_candidates(model: str) -> list[WeightsEntry]:
    """The model's ImageNet entries in order of preference (what --weights imagenet means)."""
    return [e for e in entries_for(model) if e.dataset == IMAGENET]


def identify(sha256: str, md5: str) -> list[WeightsEntry]:
    """The entries whose published checksum the file's digests match."""
    return [e for e in all_entries() if e.matches(sha256, md5)]


def by_file_name(file_name: str) -> list[WeightsEntry]:
    """The entries whose official file has this name."""
    return [e for e in all_entries() if e.file_name == file_name]
