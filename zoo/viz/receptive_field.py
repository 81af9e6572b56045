"""The input region one unit of a layer sees: the inspector's box, checked by the gradient.

The inspector (zoo.core.layer_table) derives each layer's receptive field from kernel sizes and
strides alone: size r, jump j (input pixels between neighbouring units) and start (centre of
unit 0's field). Unit (row, col) then sees the square of side r centred on
(start + row * j, start + col * j). The gradient of that unit with respect to the input is
non-zero exactly where the input can influence it, so its support must lie inside the box,
and for smooth paths (tanh, average pooling) it fills the box; max pooling and dead ReLUs
route the gradient through some inputs only, so there it may cover less.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.core.layer_table import summarize
from zoo.data.batches import to_float
from zoo.viz.figure import headless_pyplot, save_figure
from zoo.viz.inputs import InputImage, LoadedRun, VizError, find_layer, spatial_layers
from zoo.viz.maps import DPI, Picture, default_conv_layer

# A box is (top, left, bottom, right) in input pixel indices, both ends included.
Box = tuple[int, int, int, int]


@dataclass
class ReceptiveField:
    """One unit's receptive field from the inspector and its input gradient."""

    layer: str
    unit: tuple[int, int]  # (row, col) in the layer's output map
    channel: int | None  # None: the gradient of all channels at that position, summed
    size: int
    jump: int
    start: float
    box: Box  # the inspector's square; may reach past the image borders with 'same' padding
    image_shape: tuple[int, int]
    gradient: np.ndarray  # (H, W): |d unit / d input|, summed over input channels

    @property
    def clipped_box(self) -> Box:
        """The box cut to the image."""
        top, left, bottom, right = self.box
        height, width = self.image_shape
        return max(top, 0), max(left, 0), min(bottom, height - 1), min(right, width - 1)

    @property
    def gradient_box(self) -> Box | None:
        """The smallest box holding every pixel with a non-zero gradient (None if none)."""
        rows, cols = np.nonzero(self.gradient)
        if rows.size == 0:
            return None
        return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())

    @property
    def gradient_inside(self) -> bool:
        """Whether no pixel outside the inspector's box influences the unit."""
        top, left, bottom, right = self.clipped_box
        outside = self.gradient.copy()
        outside[top:bottom + 1, left:right + 1] = 0
        return not outside.any()

    @property
    def gradient_fills_box(self) -> bool:
        """Whether the gradient's support reaches all four sides of the (clipped) box."""
        return self.gradient_box == self.clipped_box


def unit_box(size: int, jump: int, start: float, unit: tuple[int, int]) -> Box:
    """The input pixels (top, left, bottom, right) seen by ``unit``, from the inspector's
    size/jump/start; pixel i spans [i, i + 1), so a centre c covers c - r/2 .. c + r/2 - 1."""
    row, col = unit
    top = round(start + row * jump - size / 2)
    left = round(start + col * jump - size / 2)
    return top, left, top + size - 1, left + size - 1


def _gradient(function, x: np.ndarray) -> np.ndarray:
    """d function(x) / dx with whatever backend Keras runs on."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = function(x)
        return np.asarray(tape.gradient(y, x))
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(function)(x))
    if backend == "torch":
        x = keras.ops.convert_to_tensor(x).detach().requires_grad_(True)
        function(x).backward()
        return x.grad.detach().cpu().numpy()
    raise VizError(f"input gradients are not implemented for the {backend!r} backend; use "
                   f"KERAS_BACKEND=tensorflow, jax or torch")


def input_gradient(model, layer_name: str, image: np.ndarray, unit: tuple[int, int],
                   channel: int | None = None) -> np.ndarray:
    """|d output[unit] / d input| (H, W) of layer ``layer_name`` at a uint8 image (H, W, C).

    ``channel`` None sums the layer's channels at that position: one channel can be dead
    (a ReLU below zero) and have no gradient at all, while every channel shares the box.
    """
    import keras

    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    row, col = unit

    def unit_output(x):
        out = probe(x, training=False)[0, row, col]
        return keras.ops.sum(out) if channel is None else out[channel]

    grad = _gradient(unit_output, to_float(image[None]))[0]
    return np.abs(grad).sum(axis=-1)


def receptive_field(run: LoadedRun, image: InputImage, *, layer: str | None = None,
                    unit: tuple[int, int] | None = None,
                    channel: int | None = None) -> ReceptiveField:
    """The inspector's receptive field of one unit (default: the centre unit of the last conv
    layer) beside the input gradient of that unit at ``image``."""

    candidates = spatial_layers(run.model)
    target = (find_layer(run.model, layer, allowed=candidates,
                         what="layer with 2-D feature maps")
              if layer else default_conv_layer(run, last=True))
    row = summarize(run.model).row(target.name)
    if row.receptive_field is None:
        raise VizError(f"layer {target.name!r} has no receptive field the inspector can draw")
    height, width, channels = row.output_shape
    if unit is None:
        unit = (height // 2, width // 2)
    unit = (int(unit[0]), int(unit[1]))
    if not (0 <= unit[0] < height and 0 <= unit[1] < width):
        raise VizError(f"unit {unit} is outside {target.name}'s {height}x{width} map; "
                       f"rows 0..{height - 1}, columns 0..{width - 1}")
    if channel is not None and not 0 <= channel < channels:
        raise VizError(f"channel {channel} is out of range: {target.name} has {channels} "
                       f"channels, pick 0..{channels - 1}")
    box = unit_box(row.receptive_field, row.jump, row.start, unit)
    gradient = input_gradient(run.model, target.name, image.pixels, unit, channel)
    return ReceptiveField(target.name, unit, channel, row.receptive_field, row.jump, row.start,
                          box, tuple(image.pixels.shape[:2]), gradient)


def plot_receptive_field(run: LoadedRun, image: InputImage, field: ReceptiveField,
                         out: str | Path) -> Picture:
    """Draw the unit's box on the image, and the input gradient with the same box on it."""
    from matplotlib.patches import Rectangle

    plt = headless_pyplot()
    size = (9.5, 4.8)
    fig, (ax_image, ax_grad) = plt.subplots(1, 2, figsize=size)
    pixels = image.pixels
    if pixels.shape[-1] == 1:
        ax_image.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax_image.imshow(pixels)
    shown = ax_grad.imshow(field.gradient, cmap="magma", interpolation="nearest")
    fig.colorbar(shown, ax=ax_grad, shrink=0.85, label="|d unit / d input pixel|")

    def outline(ax, box, **style):
        top, left, bottom, right = box
        # imshow centres pixel i on i, so its edges are at i - 0.5 and i + 0.5.
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left + 1, bottom - top + 1,
                               fill=False, **style))

    centre = (field.start + field.unit[1] * field.jump - 0.5,
              field.start + field.unit[0] * field.jump - 0.5)
    for ax in (ax_image, ax_grad):
        outline(ax, field.box, edgecolor="#00e5ff", linewidth=2,
                label=f"inspector: {field.size}x{field.size} px")
        ax.plot(*centre, "+", color="#00e5ff", markersize=10, markeredgewidth=2)
        ax.set_xlim(-0.5, pixels.shape[1] - 0.5)
        ax.set_ylim(pixels.shape[0] - 0.5, -0.5)
    if field.gradient_box is not None:
        outline(ax_grad, field.gradient_box, edgecolor="#7CFC00", linewidth=1.5,
                linestyle="--", label="non-zero gradient")
    ax_grad.legend(loc="lower right", fontsize=7, framealpha=0.8)
    ax_image.set_title(f"input: {image.caption}", fontsize=9)
    which = "all channels" if field.channel is None else f"channel {field.channel}"
    ax_grad.set_title(f"input gradient of the unit ({which})", fontsize=9)
    verdict = ("inside the box" if field.gradient_inside else "OUTSIDE the box") + (
        ", fills it" if field.gradient_fills_box else ", covers part of it")
    title = (f"{run.label} - {field.layer} unit (row {field.unit[0]}, col {field.unit[1]}): "
             f"receptive field {field.size}x{field.size} px, jump {field.jump}, "
             f"start {field.start:g}\ngradient {verdict}")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, out, dpi=DPI)
    return Picture(Path(out), size, title)
