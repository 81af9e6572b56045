"""What a run will cost, said before it is paid: the input size and why, MACs per image, and
the weights' own size when the images are far larger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.core.layer_table import summarize

if TYPE_CHECKING:
    import keras

# Offer the native size when the chosen input has this many times its pixels or more (the
# issue's 300x300 folder on 224x224 ImageNet weights: 1.8x; on a 32x32 model: 88x).
FAR_LARGER = 1.5


@dataclass(frozen=True)
class InputNote:
    """Why a model's input has its size, and the size it (or its weights) was made for."""

    reason: str
    native: tuple[int, ...] | None = None
    native_what: str = ""


def _shape_text(shape) -> str:
    return "x".join(str(d) for d in shape)


def cost_lines(model: "keras.Model", images_shape: tuple[int, ...] | None, reason: str,
               native: tuple[int, ...] | None = None, native_what: str = "") -> list[str]:
    """Lines naming the model's input and why, its MACs per image, and (when the input has
    FAR_LARGER times the pixels of ``native`` or more) the cheaper native size.

    Args:
        model: the model about to train (nested models counted).
        images_shape: (H, W, C) of the data set's images, None where unknown.
        reason: why the input is this size ('--input-shape', 'the folder's images', ...).
        native: the size the model or its weights were made for.
        native_what: what ``native`` is, e.g. 'the ImageNet weights' size'.
    """
    shape = tuple(int(d) for d in model.input_shape[1:])
    macs = summarize(model).total_macs
    images = f"; the images are {_shape_text(images_shape)}" if images_shape else ""
    lines = [f"model input: {_shape_text(shape)} ({reason}{images}), {macs / 1e6:,.1f} M MACs "
             f"per image"]
    if native is not None:
        ratio = (shape[0] * shape[1]) / (native[0] * native[1])
        if ratio >= FAR_LARGER:
            hint = ",".join(str(d) for d in (*native[:2], shape[2]))
            lines.append(f"cost: {ratio:.1f}x the pixels of {native_what or 'its own size'} "
                         f"({native[0]}x{native[1]}); --input-shape {hint} would need about "
                         f"{macs / ratio / 1e6:,.1f} M MACs per image (convolutions scale "
                         f"with the pixels)")
    return lines
