"""The model registry: one decorator, one way in.

A family is one builder function with explicit keyword-only hyperparameters that returns a
``keras.Model``; its named configurations are data, a table of ``Variant`` records (as timm's
and torchvision's ``cfgs``). ``@register_model`` registers each variant under its own name as
the family builder with the variant's defaults, so ``inspect.signature`` (``zoo show``, the
tuner, ``--set``) sees a real signature whose defaults are that variant's. Each entry carries
metadata that tools print without building anything (parameter count and MACs at the default
configuration, like torchvision's weight metadata); the test suite checks it against the built
model. A family's pretrained-weights entries (``zoo.weights.entry.WeightsEntry``) are data beside
its builder too, attached to the variant each one names.
"""

from __future__ import annotations

import fnmatch
import importlib
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable

from zoo.core.hyperparameter_types import check_hyperparameter_types, coerce_booleans
from zoo.core.names import close_matches

# Family modules register their builders on import; they are imported on first use so that
# `zoo --help` does not pay for importing Keras.
_FAMILY_MODULES = ("zoo.models.lenet", "zoo.models.alexnet", "zoo.models.vgg")


class UnknownModelError(KeyError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0])


@dataclass(frozen=True)
class Variant:
    """One named configuration of a family: the defaults it overrides and its metadata.

    ``num_params`` and ``macs`` are counted at the variant's defaults (the tests build it and
    compare); ``search_space``, when given, replaces the family's default search space.
    """

    name: str
    description: str
    num_params: int
    macs: int
    defaults: Mapping[str, Any] = field(default_factory=dict)
    search_space: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model without building it."""

    name: str
    builder: Callable[..., Any]
    family: str
    paper: str
    description: str
    num_params: int
    macs: int
    default_search_space: dict[str, Any] = field(default_factory=dict)
    weights: tuple[Any, ...] = ()  # WeightsEntry records, in order of preference

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The builder's keyword hyperparameters and their defaults."""
        return {
            name: p.default
            for name, p in inspect.signature(self.builder).parameters.items()
            if p.kind is p.KEYWORD_ONLY
        }

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The default input (height, width, channels), read from the builder's signature."""
        return tuple(self.hyperparameters["input_shape"])

    @property
    def num_classes(self) -> int:
        """The default number of classes, read from the builder's signature."""
        return self.hyperparameters["num_classes"]


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    paper: str,
    variants: Sequence[Variant],
    default_search_space: Mapping[str, Any] | None = None,
    weights: Sequence[Any] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register every variant of the decorated family builder under the variant's name.

    Args:
        family: the family's name (``zoo list`` prints it).
        paper: the reference the family comes from.
        variants: the family's named configurations, registered in this order.
        default_search_space: choices the tuner searches for the family's dimensions
            (``tuning.space``); a variant's ``search_space`` replaces it.
        weights: the family's pretrained-weights entries; each names its variant (``model``).

    The builder is ``builder(name, /, *, <hyperparameters with defaults>)``: the model's name
    comes positionally, every hyperparameter is keyword-only. The builder is returned as is.
    """

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        names = [variant.name for variant in variants]
        for entry in weights:
            if entry.model not in names:
                raise ValueError(f"weights {entry.key} names no variant of {family} "
                                 f"({', '.join(names)})")
        for variant in variants:
            if variant.name in _REGISTRY:
                raise ValueError(f"model {variant.name!r} is registered twice")
            space = variant.search_space if variant.search_space is not None \
                else default_search_space
            _REGISTRY[variant.name] = ModelInfo(
                name=variant.name,
                builder=variant_builder(builder, variant),
                family=family,
                paper=paper,
                description=variant.description,
                num_params=variant.num_params,
                macs=variant.macs,
                default_search_space=dict(space or {}),
                weights=tuple(e for e in weights if e.model == variant.name),
            )
        return builder

    return decorator


def variant_builder(builder: Callable[..., Any], variant: Variant) -> Callable[..., Any]:
    """``builder`` bound to ``variant``: named after it, its defaults in the signature.

    Args:
        builder: a family builder, ``builder(name, /, *, **hyperparameters)``.
        variant: the configuration; each of its defaults must be one of the builder's
            keyword-only hyperparameters.
    """
    signature = inspect.signature(builder)
    params = list(signature.parameters.values())
    if not params or params[0].kind is not params[0].POSITIONAL_ONLY:
        raise TypeError(f"family builder {builder.__name__} must take the model name as its "
                        f"first, positional-only argument: def {builder.__name__}(name, /, *, ...)")
    hyper = [p for p in params[1:] if p.kind is p.KEYWORD_ONLY]
    known = [p.name for p in hyper]
    for key in variant.defaults:
        if key not in known:
            raise TypeError(f"variant {variant.name!r} sets {key!r}, which {builder.__name__} "
                            f"does not take.{_did_you_mean(key, known)} Valid: {', '.join(known)}.")
    defaults = dict(variant.defaults)
    name = variant.name

    def build_variant(**hparams: Any):
        return builder(name, **{**defaults, **hparams})

    build_variant.__name__ = build_variant.__qualname__ = name
    build_variant.__module__ = builder.__module__
    build_variant.__doc__ = (f"{variant.description}.\n\n``{builder.__name__}`` with "
                             f"{_format_defaults(defaults)}.\n\n{inspect.getdoc(builder) or ''}")
    build_variant.__signature__ = signature.replace(
        parameters=[p.replace(default=defaults.get(p.name, p.default)) for p in hyper])
    return build_variant


def _format_defaults(defaults: Mapping[str, Any]) -> str:
    if not defaults:
        return "its own defaults"
    return ", ".join(f"{key}={value!r}" for key, value in defaults.items())


def _did_you_mean(word: str, choices) -> str:
    close = close_matches(word, choices)
    return f" Did you mean {', '.join(close)}?" if close else ""


def _load_families() -> None:
    for module in _FAMILY_MODULES:
        importlib.import_module(module)


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a shell-style pattern, sorted."""
    _load_families()
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def get_model_info(name: str) -> ModelInfo:
    """The registry entry for ``name``; unknown names raise with the close matches."""
    _load_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}.{_did_you_mean(name, _REGISTRY)} "
            f"Registered models: {', '.join(sorted(_REGISTRY))}."
        ) from None


def check_hyperparameters(name: str, hparams: dict[str, Any]) -> None:
    """Raise a clear error for hyperparameters the builder does not take or of the wrong type."""

    known = get_model_info(name).hyperparameters
    for key in hparams:
        if key not in known:
            raise ValueError(
                f"model {name!r} has no hyperparameter {key!r}.{_did_you_mean(key, known)} "
                f"Valid: {', '.join(known)}."
            )
    check_hyperparameter_types(name, known, hparams)


def normalize_hyperparameters(name: str, hparams: dict[str, Any]) -> dict[str, Any]:
    """``hparams`` checked (``check_hyperparameters``), with booleans given as 1/0 or words
    ('false', 'yes') turned into True/False."""
    check_hyperparameters(name, hparams)
    return coerce_booleans(get_model_info(name).hyperparameters, hparams)


def build(name: str, **hparams: Any):
    """Build the registered model ``name`` with the given keyword hyperparameters.

    The registry's one way in: every build goes through here (``zoo.build``, the facade in
    ``zoo.weights.factory``, adds ``weights=``). Unknown names and values of the wrong type are
    refused before Keras builds anything. Returns the uncompiled ``keras.Model``.
    """
    hparams = normalize_hyperparameters(name, hparams)
    return get_model_info(name).builder(**hparams)
