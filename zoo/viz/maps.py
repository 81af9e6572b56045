"""What a conv layer learned (its kernels) and what it computes (its feature maps)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.data.batches import to_float
from zoo.viz.figure import headless_pyplot, save_figure
from zoo.viz.inputs import (
    InputImage,
    LoadedRun,
    VizError,
    conv_layers,
    find_layer,
    spatial_layers,
)

DPI = 110  # zoo.viz.figure.save_figure's default; tests compare PNG sizes against it
DIVERGING = "RdBu_r"  # red = positive, blue = negative, white = 0


@dataclass
class Picture:
    """A PNG written by a viz function: where, and the figure size it was drawn at."""

    path: Path
    size_inches: tuple[float, float]
    title: str


@dataclass
class FilterGrid(Picture):
    """The kernels of one conv layer as tiles."""

    layer: str
    kernel_shape: tuple[int, int, int, int]  # (kh, kw, in channels, filters)
    filters_shown: int
    channels_shown: int  # input channels drawn per filter (1 tile holds 3 when in colour)
    colour: bool
    tiles: int


@dataclass
class FeatureMapGrid(Picture):
    """Every feature map of one layer for one image, one tile per channel."""

    layer: str
    activations: np.ndarray  # (H, W, C) of the layer's output
    tiles: int
    image_caption: str


def default_conv_layer(run: LoadedRun, *, last: bool = False):
    """The first (or last) Conv2D layer of the run's model."""
    convs = conv_layers(run.model)
    if not convs:
        raise VizError(f"model {run.model.name} has no Conv2D layer")
    return convs[-1 if last else 0]


def _grid(count: int) -> tuple[int, int]:
    """Rows and columns for ``count`` tiles, close to square, a little wider than tall."""
    cols = math.ceil(math.sqrt(count * 1.3))
    return math.ceil(count / cols), cols


def plot_filters(run: LoadedRun, out: str | Path, *, layer: str | None = None,
                 max_filters: int | None = None, max_channels: int = 8) -> FilterGrid:
    """Draw the learned kernels of a Conv2D layer (default: the first) as a grid of tiles.

    A first layer on RGB input is drawn in colour, one tile per filter, each filter scaled to
    its own +-max so that mid-grey is a zero weight. Otherwise each (filter, input channel)
    kernel is a tile on a shared red/blue scale with a colour bar: rows are filters, columns
    input channels (at most ``max_filters`` x ``max_channels``). ``max_filters`` defaults to
    64 tiles for first layers and 16 rows for deeper ones, so the picture stays readable.
    """
    if (max_filters is not None and max_filters < 1) or max_channels < 1:
        raise VizError("max_filters and max_channels must be at least 1")
    conv = (find_layer(run.model, layer, allowed=conv_layers(run.model), what="Conv2D layer")
            if layer else default_conv_layer(run))
    kernel = np.asarray(conv.get_weights()[0], dtype=np.float32)  # (kh, kw, cin, cout)
    kh, kw, cin, cout = kernel.shape
    first = conv is conv_layers(run.model)[0]
    colour = first and cin == 3 and run.input_shape[-1] == 3
    if max_filters is None:
        max_filters = 64 if (colour or cin == 1) else 16
    n_filters = min(cout, max_filters)
    plt = headless_pyplot()
    shown = f"{n_filters} of {cout}" if n_filters < cout else f"all {cout}"
    title = (f"{run.label} - {conv.name}: {shown} learned {kh}x{kw} kernels "
             f"({cin} input channel{'s' if cin > 1 else ''})")

    if colour or cin == 1:
        rows, cols = _grid(n_filters)
        n_channels = cin
    else:
        n_channels = min(cin, max_channels)
        rows, cols = n_filters, n_channels
    tile = 0.75 if max(rows, cols) <= 16 else 0.45
    size = (max(4.5, cols * tile + 1.6), max(2.5, rows * tile + 1.0))
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    limit = float(np.abs(kernel[..., :n_channels, :n_filters]).max()) or 1.0
    image = None
    if colour:
        for f in range(n_filters):
            w = kernel[..., f]
            scaled = 0.5 + w / (2 * (float(np.abs(w).max()) or 1.0))
            ax = axes.flat[f]
            ax.imshow(scaled, interpolation="nearest")
            ax.set_title(f"f{f}", fontsize=7, pad=2)
        title += "\nin colour: each filter scaled to its own range, mid-grey = 0"
    elif cin == 1:
        for f in range(n_filters):
            ax = axes.flat[f]
            image = ax.imshow(kernel[:, :, 0, f], cmap=DIVERGING, vmin=-limit, vmax=limit,
                              interpolation="nearest")
            ax.set_title(f"f{f}", fontsize=7, pad=2)
    else:
        for f in range(n_filters):
            for c in range(n_channels):
                ax = axes[f, c]
                image = ax.imshow(kernel[:, :, c, f], cmap=DIVERGING, vmin=-limit, vmax=limit,
                                  interpolation="nearest")
                if f == 0:
                    ax.set_title(f"in {c}", fontsize=7, pad=2)
                if c == 0:
                    ax.set_ylabel(f"f{f}", fontsize=7, rotation=0, labelpad=10, va="center")
        if n_channels < cin:
            title += f"\nrows: filters, columns: first {n_channels} of {cin} input channels"
        else:
            title += "\nrows: filters, columns: input channels"
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=min(0.8, 3.5 / size[1]),
                     label="weight")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, out, dpi=DPI)
    tiles = n_filters if (colour or cin == 1) else n_filters * n_channels
    return FilterGrid(Path(out), size, title, conv.name, (kh, kw, cin, cout), n_filters,
                      n_channels, colour, tiles)


def layer_activations(model, layer_name: str, images: np.ndarray) -> np.ndarray:
    """The output of layer ``layer_name`` for uint8 ``images`` (N, H, W, C), as NumPy."""
    import keras

    probe = keras.Model(model.input, model.get_layer(layer_name).output)
    return np.asarray(keras.ops.convert_to_numpy(probe(to_float(images), training=False)))


def plot_feature_maps(run: LoadedRun, image: InputImage, out: str | Path, *,
                      layer: str | None = None) -> FeatureMapGrid:
    """Draw every feature map of a layer (default: the first conv) for one input image.

    The image is on the left; each channel of the layer's output is one tile on a shared
    colour scale (with a colour bar) so that strong and weak maps can be compared.
    """
    target = (find_layer(run.model, layer, allowed=spatial_layers(run.model),
                         what="layer with 2-D feature maps")
              if layer else default_conv_layer(run))
    maps = layer_activations(run.model, target.name, image.pixels[None])[0]
    probs = layer_activations(run.model, run.model.layers[-1].name, image.pixels[None])[0]
    predicted = run.class_names[int(np.argmax(probs))] if len(run.class_names) == len(probs) \
        else str(int(np.argmax(probs)))
    height, width, channels = maps.shape
    rows, cols = _grid(channels)
    tile = 1.0 if channels <= 32 else 0.6
    size = (3.2 + cols * tile + 0.8, max(3.4, rows * tile + 1.0))
    plt = headless_pyplot()
    fig = plt.figure(figsize=size)
    outer = fig.add_gridspec(1, 2, width_ratios=[3.2, cols * tile + 0.8], wspace=0.08)
    ax_image = fig.add_subplot(outer[0])
    pixels = image.pixels
    if pixels.shape[-1] == 1:
        ax_image.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        ax_image.imshow(pixels)
    ax_image.set_title(f"input: {image.caption}\npredicted: {predicted} "
                       f"({probs.max():.0%})", fontsize=8)
    ax_image.set_xticks([])
    ax_image.set_yticks([])
    grid = outer[1].subgridspec(rows, cols, wspace=0.06, hspace=0.3)
    low, high = float(maps.min()), float(maps.max())
    if low < 0 < high:  # signed activations (tanh, pre-activation): centre the scale on 0
        high = max(-low, high)
        low, cmap = -high, DIVERGING
    else:
        cmap = "viridis"
    if low == high:
        high = low + 1.0
    tile_axes = []
    for c in range(channels):
        ax = fig.add_subplot(grid[c // cols, c % cols])
        shown = ax.imshow(maps[..., c], cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
        ax.set_title(f"{c}", fontsize=7, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
        tile_axes.append(ax)
    fig.colorbar(shown, ax=tile_axes, shrink=0.8, label="activation")
    title = (f"{run.label} - {target.name} ({type(target).__name__}): {channels} feature maps "
             f"of {height}x{width}")
    fig.suptitle(title, fontsize=10)
    save_figure(fig, out, dpi=DPI)
    return FeatureMapGrid(Path(out), size, title, target.name, maps, len(tile_axes),
                          image.caption)
