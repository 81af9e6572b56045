"""cnn-zoo: a registry of Keras CNN builders with an inspector, training, export and tuning.

    >>> import zoo
    >>> zoo.list_models("vgg*")
    >>> model = zoo.build("lenet5", activation="relu")
"""

import os

# TensorFlow's C++ start-up chatter drowns the CLI's output; users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from zoo.core.geometry import GeometryError, output_size  # noqa: E402
from zoo.core.registry import (  # noqa: E402
    UnknownModelError,
    get_model_info,
    list_models,
    register_model,
)
from zoo.weights.factory import build  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "GeometryError",
    "UnknownModelError",
    "build",
    "get_model_info",
    "list_models",
    "output_size",
    "register_model",
]
