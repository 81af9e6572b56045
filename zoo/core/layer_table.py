"""The layer inspector: output size, weights, MACs and receptive field for every layer.

Works on any functional Keras model (zoo models, keras.applications, loaded `.keras` files).
Output sizes are explained by the (W + 2P - F)/S + 1 rule; receptive fields follow the usual
recurrence r_out = r_in + (k - 1) * j_in, j_out = j_in * s (Araujo et al., Distill 2019).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from zoo.core.geometry import SpatialStep
from zoo.core.registry import build

if TYPE_CHECKING:
    import keras


@dataclass
class LayerRow:
    """One row of the inspector's table."""

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    receptive_field: int | None  # side of the input square one unit sees; None once flattened
    jump: int | None  # input pixels between neighbouring units
    start: float | None  # centre of the first unit's field, in input pixel coordinates
    geometry: str  # the size rule written out for window layers, else ""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the row."""
        return asdict(self)


@dataclass
class ModelSummary:
    """The inspector's table with totals."""

    model_name: str
    input_shape: tuple
    rows: list[LayerRow]

    @property
    def total_params(self) -> int:
        """Weights in the model (trainable and not)."""
        return sum(r.params for r in self.rows)

    @property
    def total_macs(self) -> int:
        """Multiply-accumulates for one image's forward pass."""
        return sum(r.macs for r in self.rows)

    def row(self, name: str) -> LayerRow:
        """The row of layer ``name``."""
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no layer {name!r} in {self.model_name}")


def _pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _window(layer) -> tuple[tuple[int, int], tuple[int, int], str] | None:
    """(kernel, strides, padding) for layers that slide a window, else None."""
    config = layer.get_config()
    if "kernel_size" in config:
        kernel = _pair(config["kernel_size"])
        dilation = _pair(config.get("dilation_rate", 1))
        kernel = tuple((k - 1) * d + 1 for k, d in zip(kernel, dilation))
        return kernel, _pair(config.get("strides", 1)), config.get("padding", "valid")
    if "pool_size" in config:
        pool = _pair(config["pool_size"])
        strides = _pair(config.get("strides") or pool)
        return pool, strides, config.get("padding", "valid")
    return None


def _macs(layer, input_shape: tuple, output_shape: tuple) -> int:
    """Multiply-accumulates of conv and dense layers (others are counted as free)."""
    kind = type(layer).__name__
    config = layer.get_config()
    out_positions = math.prod(d for d in output_shape[1:-1] if d) if len(output_shape) > 2 else 1
    if kind in ("Conv2D", "Conv1D", "Conv3D"):
        kernel = math.prod(_pair(config["kernel_size"]))
        in_channels = input_shape[-1] // config.get("groups", 1)
        return out_positions * output_shape[-1] * kernel * in_channels
    if kind == "DepthwiseConv2D":
        kernel = math.prod(_pair(config["kernel_size"]))
        return out_positions * output_shape[-1] * kernel
    if kind == "SeparableConv2D":
        kernel = math.prod(_pair(config["kernel_size"]))
        depthwise_out = out_positions * input_shape[-1] * config.get("depth_multiplier", 1)
        return depthwise_out * kernel + depthwise_out * output_shape[-1]
    if kind == "Dense":
        return out_positions * input_shape[-1] * output_shape[-1]
    return 0


def _is_nested_model(layer) -> bool:
    """Whether a layer is itself a functional or sequential model (a transfer run's base)."""
    return type(layer).__name__ in ("Functional", "Sequential") and hasattr(layer, "inputs")


def _through_nested(field_in: tuple[int, int, float], nested: ModelSummary
                    ) -> tuple[int, int, float] | None:
    """The receptive field after a nested model, from its own last row's (relative to its
    input) and the field of what it is fed."""
    last = nested.rows[-1] if nested.rows else None
    if last is None or last.receptive_field is None:
        return None
    size, jump, start = field_in
    return (size + (last.receptive_field - 1) * jump, jump * last.jump,
            start + (last.start - 0.5) * jump)


def _shape(tensor) -> tuple:
    return tuple(tensor.shape)


def summarize(model: "keras.Model") -> ModelSummary:
    """The inspector's table for a built functional Keras model."""
    input_shape = _shape(model.inputs[0])[1:]
    # Receptive field per tensor id: (size, jump, start). Inputs see one pixel each.
    field: dict[int, tuple[int, int, float] | None] = {
        id(t): (1, 1, 0.5) for t in model.inputs
    }
    rows = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        inputs = layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        in_fields = [field.get(id(t)) for t in inputs]
        in_shape = _shape(inputs[0])
        out_shape = _shape(layer.output)
        window = _window(layer)
        geometry = ""
        nested = summarize(layer) if _is_nested_model(layer) else None
        if any(f is None for f in in_fields) or len(out_shape) < 4:
            rf = None  # flattened or pooled globally: a unit sees the whole input
        elif nested is not None:
            rf = _through_nested(max(in_fields), nested)
        elif window is not None:
            size, jump, start = max(in_fields)
            kernel, strides, padding = window
            step = SpatialStep(in_shape[1], kernel[0], strides[0], padding)
            pad_left = step.pad_total // 2
            rf = (
                size + (kernel[0] - 1) * jump,
                jump * strides[0],
                start + ((kernel[0] - 1) / 2 - pad_left) * jump,
            )
            if in_shape[1] is not None:
                geometry = step.formula()
        else:
            rf = max(in_fields)  # element-wise layers and merges keep the widest field
        field[id(layer.output)] = rf
        rows.append(
            LayerRow(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=out_shape[1:],
                params=layer.count_params(),
                # A nested model (a transfer run's base) counts its own layers' MACs.
                macs=nested.total_macs if nested is not None else _macs(layer, in_shape,
                                                                          out_shape),
                receptive_field=rf[0] if rf else None,
                jump=rf[1] if rf else None,
                start=rf[2] if rf else None,
                geometry=geometry,
            )
        )
    return ModelSummary(model_name=model.name, input_shape=input_shape, rows=rows)


def _shape_text(shape: tuple) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


def format_summary(summary: ModelSummary) -> str:
    """The table as aligned text, with totals, as `zoo show` prints it."""
    header = ("layer", "type", "output", "weights", "MACs", "RF", "jump", "size rule")
    lines = [header]
    for r in summary.rows:
        lines.append((
            r.name,
            r.kind,
            _shape_text(r.output_shape),
            f"{r.params:,}",
            f"{r.macs:,}",
            "all" if r.receptive_field is None else str(r.receptive_field),
            "" if r.jump is None else str(r.jump),
            r.geometry,
        ))
    lines.append(("total", "", "", f"{summary.total_params:,}", f"{summary.total_macs:,}",
                  "", "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    right = {3, 4, 5, 6}
    out = [f"{summary.model_name}: input {_shape_text(summary.input_shape)}"]
    for n, line in enumerate(lines):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(line, widths))]
        out.append("  ".join(cells).rstrip())
        if n == 0 or n == len(lines) - 2:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def inspect_model(name: str, input_shape: tuple | None = None, **hparams: Any) -> ModelSummary:
    """Build registered model ``name`` (geometry checked first) and summarize it."""

    if input_shape is not None:
        hparams["input_shape"] = tuple(input_shape)
    return summarize(build(name, **hparams))
