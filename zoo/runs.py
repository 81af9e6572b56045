"""Reading run directories and `.keras` files back: the model, its config, its metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.train import CONFIG_FILE, METRICS_FILE, MODEL_FILE

if TYPE_CHECKING:
    import keras


class UnsafeModelError(ValueError):
    """Loading the file would run arbitrary code (Lambda layers) and --unsafe was not given."""


def model_path(source: str | Path) -> Path:
    """The `.keras` file of a run directory, or the file itself."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{source} is neither a `.keras` file nor a run directory holding {MODEL_FILE}"
        )
    if path.suffix != ".keras":
        raise ValueError(f"{path} is not a `.keras` model file")
    return path


def load_run_model(source: str | Path, *, unsafe: bool = False) -> "keras.Model":
    """Load a run's model (or a `.keras` file) in Keras' safe mode unless ``unsafe``.

    Safe mode refuses Lambda layers, whose Python bytecode would run on load.
    """
    import keras

    path = model_path(source)
    try:
        return keras.saving.load_model(path, safe_mode=not unsafe)
    except ValueError as err:
        if "unsafe" in str(err).lower() or "lambda" in str(err).lower():
            raise UnsafeModelError(
                f"{path} contains a Lambda layer; loading it would execute code stored in the "
                f"file. Pass --unsafe only if you trust where it came from."
            ) from None
        raise ValueError(f"{path} is not a loadable Keras model: {err}") from None
    except (OSError, KeyError) as err:  # a truncated or foreign file
        raise ValueError(f"{path} is not a loadable Keras model: {err}") from None


def load_run_config(source: str | Path) -> dict[str, Any]:
    """A run's config.json ({} for a bare `.keras` file)."""
    path = Path(source).expanduser()
    config = (path if path.is_dir() else path.parent) / CONFIG_FILE
    return json.loads(config.read_text()) if config.exists() else {}


def load_run_metrics(source: str | Path) -> dict[str, Any]:
    """A run's metrics.json ({} if the run has none)."""
    path = Path(source).expanduser()
    metrics = (path if path.is_dir() else path.parent) / METRICS_FILE
    return json.loads(metrics.read_text()) if metrics.exists() else {}
