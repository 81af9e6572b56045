"""Converters: an official weights file -> {Keras layer name: [arrays]} for a built model.

Each converter pairs the file's tensors with the model's layers, converts layouts and checks
every shape before anything is assigned, so a file for another architecture fails with the
layer and both shapes named.

torchvision (.pth state dicts): modules in file order pair with the model's weighted layers in
order (both follow the forward pass for VGG, AlexNet and MobileNetV2).
- conv kernels OIHW -> HWIO; depthwise (C, 1, kh, kw) -> (kh, kw, C, 1);
- dense weights (out, in) are transposed;
- the first dense layer after a Flatten of an HxWxC map: torch flattens C, H, W (channels
  first), Keras H, W, C, so its input rows are re-ordered;
- batch norm: gamma, beta, running mean and variance. torchvision uses epsilon 1e-5, Keras
  1e-3 by default. Where the model's layer epsilon differs from the file's, the difference is
  folded into the moving variance (var_k = var_t + eps_t - eps_k, so var_k + eps_k equals
  var_t + eps_t); a channel whose variance is smaller than the difference keeps var_k = 0 and
  gets gamma scaled by sqrt(eps_k / (var_t + eps_t)) instead. Both are exact in inference
  mode. (zoo.weights.applications sets MobileNetV2's epsilon to 1e-5 instead, which needs no
  folding.)
keras.applications (.h5, legacy Keras format): layers are matched by name; kernels already HWIO.
LPIPS (pickled NumPy, flax layout): ``Conv_i`` kernels are HWIO already, paired in order with
the model's convolutions.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.weights.grey import adapt_layers

if TYPE_CHECKING:
    import keras

    from zoo.weights.entry import Preprocessing

TORCH_BATCHNORM_EPSILON = 1e-5
WEIGHTED_KINDS = {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "Dense": "dense",
                  "BatchNormalization": "batchnorm"}


class ConversionError(ValueError):
    """The file's tensors do not fit the model's layers."""


# ---------------------------------------------------------------- layouts


def conv_kernel_oihw_to_hwio(weight: np.ndarray) -> np.ndarray:
    """A torch Conv2d weight (out, in, kh, kw) as a Keras Conv2D kernel (kh, kw, in, out)."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


def depthwise_kernel_to_keras(weight: np.ndarray) -> np.ndarray:
    """A torch depthwise weight (C, 1, kh, kw) as a Keras DepthwiseConv2D kernel (kh, kw, C, 1)."""
    return np.ascontiguousarray(weight.transpose(2, 3, 0, 1))


def dense_after_flatten(weight: np.ndarray, feature_shape: tuple[int, int, int]) -> np.ndarray:
    """A torch Linear weight reading a flattened (C, H, W) map, as a Keras Dense kernel that
    reads the same map flattened (H, W, C).

    Args:
        weight: (out, C*H*W), torch's layout.
        feature_shape: (H, W, C) of the map the Keras Flatten receives.
    """
    height, width, channels = feature_shape
    out = weight.shape[0]
    chw = weight.reshape(out, channels, height, width)
    return np.ascontiguousarray(chw.transpose(0, 2, 3, 1).reshape(out, -1).T)


def fold_batchnorm_epsilon(gamma: np.ndarray, variance: np.ndarray, *, file_epsilon: float,
                           layer_epsilon: float) -> tuple[np.ndarray, np.ndarray]:
    """(gamma, moving_variance) for a layer with ``layer_epsilon`` that normalizes exactly as
    the file's layer did with ``file_epsilon`` (in inference mode)."""
    target = variance + file_epsilon  # what the file's layer divides by, squared
    folded = np.maximum(target - layer_epsilon, 0.0)
    scale = np.sqrt((folded + layer_epsilon) / target)  # 1 except where the variance hit 0
    return (gamma * scale).astype(gamma.dtype), folded.astype(variance.dtype)


# ---------------------------------------------------------------- model side


def weighted_layers(model: "keras.Model") -> list[Any]:
    """The model's layers that hold weights, in order (nested models flattened)."""
    found = []
    for layer in model.layers:
        if hasattr(layer, "layers") and type(layer).__name__ in ("Functional", "Sequential"):
            found.extend(weighted_layers(layer))
        elif layer.weights:
            found.append(layer)
    return found


def _flatten_inputs(model: "keras.Model") -> dict[str, tuple[int, int, int]]:
    """Dense layer name -> the (H, W, C) map flattened just before it (first dense only)."""
    result, pending = {}, None
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Flatten" and len(layer.input.shape) == 4:
            pending = tuple(int(d) for d in layer.input.shape[1:])
        elif kind == "Dense" and pending is not None:
            result[layer.name] = pending
            pending = None
    return result


def _check_shapes(layer, arrays: list[np.ndarray], origin: str) -> None:
    expected = [tuple(w.shape) for w in layer.weights]
    found = [tuple(a.shape) for a in arrays]
    if expected != found:
        raise ConversionError(f"{origin} -> layer {layer.name!r}: shapes {found} do not fit the "
                              f"layer's {expected}; the file is for another architecture or "
                              f"configuration")


def assign(model: "keras.Model", layer_weights: dict[str, list[np.ndarray]]) -> None:
    """Set each named layer's weights, after checking every shape first (all or nothing)."""
    layers = {layer.name: layer for layer in weighted_layers(model)}
    for name, arrays in layer_weights.items():
        if name not in layers:
            raise ConversionError(f"the model has no weighted layer {name!r}")
        _check_shapes(layers[name], arrays, name)
    for name, arrays in layer_weights.items():
        layers[name].set_weights(arrays)


# ---------------------------------------------------------------- torchvision


def _torch_modules(state: dict[str, np.ndarray]) -> list[tuple[str, dict[str, np.ndarray]]]:
    modules: dict[str, dict[str, np.ndarray]] = {}
    for key, tensor in state.items():
        module, _, param = key.rpartition(".")
        if param == "num_batches_tracked":
            continue
        modules.setdefault(module, {})[param] = tensor
    return list(modules.items())


def _torch_kind(params: dict[str, np.ndarray]) -> str:
    if "running_mean" in params:
        return "batchnorm"
    weight = params.get("weight")
    if weight is None:
        return "unknown"
    if weight.ndim == 4:
        return "depthwise" if weight.shape[1] == 1 and weight.shape[0] > 1 else "conv"
    return "dense" if weight.ndim == 2 else "unknown"


def _convert_torch_module(layer, kind: str, params: dict[str, np.ndarray],
                          flattened: tuple[int, int, int] | None, file_epsilon: float
                          ) -> list[np.ndarray]:
    weight = params["weight"]
    if kind == "batchnorm":
        gamma, beta = params["weight"], params["bias"]
        mean, variance = params["running_mean"], params["running_var"]
        if abs(layer.epsilon - file_epsilon) > 1e-12:
            gamma, variance = fold_batchnorm_epsilon(gamma, variance, file_epsilon=file_epsilon,
                                                     layer_epsilon=layer.epsilon)
        return [gamma, beta, mean, variance]
    if kind == "depthwise" and type(layer).__name__ == "DepthwiseConv2D":
        kernel = depthwise_kernel_to_keras(weight)
    elif kind in ("conv", "depthwise"):
        kernel = conv_kernel_oihw_to_hwio(weight)
    elif flattened is not None and int(np.prod(flattened[:2])) > 1:
        kernel = dense_after_flatten(weight, flattened)
    else:
        kernel = np.ascontiguousarray(weight.T)
    return [kernel, params["bias"]] if "bias" in params else [kernel]


def torchvision_to_layers(state: dict[str, np.ndarray], model: "keras.Model", *,
                          file_epsilon: float = TORCH_BATCHNORM_EPSILON,
                          origin: str = "state dict") -> dict[str, list[np.ndarray]]:
    """Pair a torchvision state dict's modules with the model's weighted layers, converted.

    Args:
        state: tensors by key, in file order (``zoo.weights.pth.read_state_dict``).
        model: the Keras model to fill (same architecture).
        file_epsilon: the batch-norm epsilon the file's model used (torchvision: 1e-5).
        origin: the file's name for error messages.
    """
    modules = _torch_modules(state)
    layers = weighted_layers(model)
    if len(modules) != len(layers):
        raise ConversionError(
            f"{origin} has {len(modules)} weighted modules, the model {len(layers)} weighted "
            f"layers: it is for another architecture (file: {_listing(m for m, _ in modules)}; "
            f"model: {_listing(layer.name for layer in layers)})")
    flattened = _flatten_inputs(model)
    converted = {}
    for (module, params), layer in zip(modules, layers):
        kind, layer_kind = _torch_kind(params), WEIGHTED_KINDS.get(type(layer).__name__)
        compatible = kind == layer_kind or (kind == "depthwise" and layer_kind == "conv")
        if not compatible:
            raise ConversionError(f"{origin}: module {module!r} ({kind}) meets layer "
                                  f"{layer.name!r} ({layer_kind}); the layer order differs")
        arrays = _convert_torch_module(layer, kind, params, flattened.get(layer.name),
                                       file_epsilon)
        _check_shapes(layer, arrays, f"{origin}: {module}")
        converted[layer.name] = arrays
    return converted


def _listing(names) -> str:
    names = list(names)
    return ", ".join(names) if len(names) <= 8 else f"{', '.join(names[:4])}, ..., {names[-1]}"


# ---------------------------------------------------------------- keras.applications .h5


def keras_h5_to_layers(path: str | Path, model: "keras.Model") -> dict[str, list[np.ndarray]]:
    """The weights of a legacy Keras .h5 file (keras.applications), by layer name.

    Every weighted layer of the model must be in the file; the file's other layers (a top the
    model was built without) are left out.
    """
    import h5py

    converted = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in group.attrs.get("layer_names", [])]
        if not names:
            raise ConversionError(f"{path} is not a Keras .h5 weights file (no layer_names)")
        missing = [layer.name for layer in weighted_layers(model) if layer.name not in names]
        if missing:
            raise ConversionError(f"{path} has no weights for the model's layers "
                                  f"{_listing(missing)}; build it with include_top=False if "
                                  f"the file holds the convolutions only")
        for layer in weighted_layers(model):
            layer_group = group[layer.name]
            weight_names = [n.decode() if isinstance(n, bytes) else n
                            for n in layer_group.attrs["weight_names"]]
            arrays = [np.asarray(layer_group[n]) for n in weight_names]
            _check_shapes(layer, arrays, f"{path}: {layer.name}")
            converted[layer.name] = arrays
    return converted


# ---------------------------------------------------------------- LPIPS pickled NumPy


def _is_grey_first_conv(index: int, expected: list[tuple], found: list[tuple]) -> bool:
    """Whether the model's first weighted layer is a 1-channel version of the file's RGB
    convolution (same kernel size, outputs and bias)."""
    return (index == 0 and len(expected[0]) == 4 and expected[0][2] == 1 and found[0][2] == 3
            and expected[0][:2] + expected[0][3:] == found[0][:2] + found[0][3:]
            and expected[1:] == found[1:])


def read_keras_weights(path: str | Path, model: "keras.Model",
                       grey: Preprocessing | None = None) -> dict[str, list[np.ndarray]]:
    """The weights of a Keras 3 ``.weights.h5`` for ``model``'s layers, matched by layer name.

    Layers of the file that the model lacks (a top left out) are skipped; a weighted layer of
    the model that the file lacks, or a shape that differs, raises with the fix. With ``grey``
    (the preprocessing the file's RGB weights expect), a model built for 1-channel images gets
    its first convolution summed over the colour channels (``zoo.weights.grey``).
    """
    import h5py

    stored: dict[str, list[np.ndarray]] = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if name.endswith("/vars") and "name" in obj.attrs and len(obj):
                stored[str(obj.attrs["name"])] = [np.asarray(obj[k])
                                                  for k in sorted(obj, key=int)]
        f.visititems(visit)
    result, missing, adapt = {}, [], False
    layers = weighted_layers(model)
    for index, layer in enumerate(layers):
        if layer.name not in stored:
            missing.append(layer.name)
            continue
        arrays = stored[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in arrays]
        if grey is not None and expected != found and _is_grey_first_conv(index, expected,
                                                                          found):
            adapt = True
        elif expected != found:
            raise ConversionError(
                f"{path}: layer {layer.name!r} holds {found}, the model needs {expected}. "
                f"Build the model as the weights were made (see `zoo weights info`), or "
                f"without its top (--set include_top=false) to use the convolutions at "
                f"another input size")
        result[layer.name] = arrays
    if missing:
        raise ConversionError(
            f"{path} has no weights for layer(s) {', '.join(missing[:6])}"
            f"{' ...' if len(missing) > 6 else ''}: the file holds fewer layers (the "
            f"convolutions only?); build with include_top=False")
    if adapt:
        adapt_layers(result, layers, 0, grey)
    return result


def lpips_to_layers(tree: dict[str, Any], model: "keras.Model", *, origin: str = "checkpoint"
                    ) -> dict[str, list[np.ndarray]]:
    """An LPIPS checkpoint's backbone convolutions (``Conv_0``, ``Conv_1``, ...; HWIO) paired
    in order with the model's Conv2D layers; its linear LPIPS heads are not backbone weights."""
    backbones = [k for k in tree if not str(k).startswith("NetLinLayer")]
    if len(backbones) != 1 or not isinstance(tree[backbones[0]], dict):
        raise ConversionError(f"{origin}: expected one backbone entry besides the NetLinLayer "
                              f"heads, found {list(tree)}")
    convs = tree[backbones[0]]

    def index(name: str) -> int:
        match = re.fullmatch(r"Conv_(\d+)", str(name))
        if not match:
            raise ConversionError(f"{origin}: unexpected backbone entry {name!r}")
        return int(match.group(1))

    ordered = [convs[k] for k in sorted(convs, key=index)]
    layers = [layer for layer in weighted_layers(model) if type(layer).__name__ == "Conv2D"]
    if len(ordered) != len(layers):
        raise ConversionError(f"{origin} holds {len(ordered)} convolutions, the model "
                              f"{len(layers)}: it is for another architecture")
    converted = {}
    for i, (params, layer) in enumerate(zip(ordered, layers)):
        arrays = [np.asarray(params["kernel"], np.float32), np.asarray(params["bias"],
                                                                       np.float32)]
        _check_shapes(layer, arrays, f"{origin}: Conv_{i}")
        converted[layer.name] = arrays
    return converted
