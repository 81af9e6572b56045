"""Output-size arithmetic for convolution and pooling: the (W + 2P - F)/S + 1 rule.

Pure Python, no Keras: the builders call it before creating each layer so that an impossible
configuration is refused with a clear message before Keras sees it, and the inspector uses it
to explain every output size.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass


class GeometryError(ValueError):
    """A layer cannot be applied to the feature map it receives."""


class FlooredOutputWarning(UserWarning):
    """(W + 2P - F)/S is not an integer, so Keras silently drops border pixels."""


@dataclass(frozen=True)
class SpatialStep:
    """One axis of a convolution or pooling: input size, filter, stride, padding."""

    size: int
    kernel: int
    stride: int
    padding: str  # "valid" or "same", as in Keras

    @property
    def pad_total(self) -> int:
        """Total zero padding Keras adds on this axis ('same' pads so out = ceil(W/S))."""
        if self.padding == "valid":
            return 0
        out = math.ceil(self.size / self.stride)
        return max((out - 1) * self.stride + self.kernel - self.size, 0)

    @property
    def output_size(self) -> int:
        """Output size by (W + 2P - F)/S + 1, floored as Keras does."""
        return (self.size + self.pad_total - self.kernel) // self.stride + 1

    @property
    def is_exact(self) -> bool:
        """Whether (W + 2P - F) divides evenly by S (no pixels are dropped)."""
        return (self.size + self.pad_total - self.kernel) % self.stride == 0

    def formula(self) -> str:
        """The size rule written out, e.g. '(27 + 2*2 - 5)/1 + 1 = 27'."""
        pad = self.pad_total
        # Keras' 'same' can pad one side more than the other; then show the total.
        padding = f"2*{pad // 2}" if pad % 2 == 0 else f"{pad}"
        return (
            f"({self.size} + {padding} - {self.kernel})/{self.stride} + 1 = {self.output_size}"
        )


def output_size(size: int, kernel: int, stride: int = 1, padding: int | str = 0) -> int:
    """(W + 2P - F)/S + 1 for an explicit padding P per side, or Keras' 'valid'/'same'."""
    if isinstance(padding, str):
        return SpatialStep(size, kernel, stride, padding).output_size
    return (size + 2 * padding - kernel) // stride + 1


def check_window(
    layer: str,
    spatial: tuple[int | None, int | None],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    *,
    model: str = "",
) -> tuple[int, int]:
    """Return the (H, W) output of a window op, or raise GeometryError explaining the fix.

    A window larger than its (unpadded) input is impossible with 'valid' padding; a stride that
    does not divide evenly is allowed but warned about, since Keras floors silently.
    """
    if padding not in ("valid", "same"):
        raise GeometryError(f"layer {layer!r}: padding must be 'valid' or 'same', not {padding!r}")
    where = f"{model}: " if model else ""
    out = []
    for axis, size, k, s in zip(("height", "width"), spatial, kernel, strides):
        if size is None:  # unknown spatial size (variable input): nothing to check
            out.append(None)
            continue
        if k < 1 or s < 1:
            raise GeometryError(f"{where}layer {layer!r}: kernel and stride must be >= 1")
        step = SpatialStep(size, k, s, padding)
        if padding == "valid" and k > size:
            raise GeometryError(
                f"{where}layer {layer!r} has a {kernel[0]}x{kernel[1]} window but its input "
                f"feature map is only {spatial[0]}x{spatial[1]} ({axis} {size} < {k}). "
                f"Use a larger input (--input-shape), a smaller kernel or stride earlier in "
                f"the network, or padding='same'."
            )
        if not step.is_exact:
            warnings.warn(
                f"{where}layer {layer!r}: {axis} {step.formula().split(' = ')[0]} is not an "
                f"integer; Keras floors it to {step.output_size} and ignores "
                f"{(step.size + step.pad_total - step.kernel) % step.stride} border pixel(s).",
                FlooredOutputWarning,
                stacklevel=3,
            )
        out.append(step.output_size)
    return out[0], out[1]
