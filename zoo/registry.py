"""The model registry: one decorator, one way in.

Builders are plain functions with keyword hyperparameters that return a ``keras.Model``.
``@register_model`` records each one with metadata that tools can print without building
anything (parameter count and MACs at the default configuration, like torchvision's weight
metadata); the test suite checks that metadata against the built model.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

# Family modules register their builders on import; they are imported on first use so that
# `zoo --help` does not pay for importing Keras.
_FAMILY_MODULES = ("zoo.models.lenet", "zoo.models.alexnet", "zoo.models.vgg")


class UnknownModelError(KeyError):
    """Raised for a model name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it readable.
        return str(self.args[0])


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a model without building it."""

    name: str
    builder: Callable[..., Any]
    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    paper: str
    description: str
    num_params: int
    macs: int
    default_search_space: dict[str, Any] = field(default_factory=dict)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The builder's keyword hyperparameters and their defaults."""
        return {
            name: p.default
            for name, p in inspect.signature(self.builder).parameters.items()
            if p.kind is p.KEYWORD_ONLY
        }


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    *,
    family: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    paper: str,
    description: str,
    num_params: int,
    macs: int,
    default_search_space: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a builder under its function name with metadata at its default configuration."""

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelInfo(
            name=name,
            builder=builder,
            family=family,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            paper=paper,
            description=description,
            num_params=num_params,
            macs=macs,
            default_search_space=dict(default_search_space or {}),
        )
        return builder

    return decorator


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
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"unknown model {name!r}.{hint} Registered models: {', '.join(sorted(_REGISTRY))}."
        ) from None


def check_hyperparameters(name: str, hparams: dict[str, Any]) -> None:
    """Raise a clear error for hyperparameters the builder does not take."""
    known = get_model_info(name).hyperparameters
    for key in hparams:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"model {name!r} has no hyperparameter {key!r}.{hint} "
                f"Valid: {', '.join(known)}."
            )


def build(name: str, **hparams: Any):
    """Build the registered model ``name`` with the given keyword hyperparameters."""
    check_hyperparameters(name, hparams)
    return get_model_info(name).builder(**hparams)
