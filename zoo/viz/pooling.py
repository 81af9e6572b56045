"""The lecture's worked example of pooling, computed by the real Keras layer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.viz.figure import headless_pyplot, save_figure
from zoo.viz.inputs import VizError
from zoo.viz.maps import DPI, Picture

# The lecture's 4x4 feature map; 2x2 max pooling with stride 2 gives 6 8 / 3 4.
LECTURE_MAP = ((1, 0, 2, 3), (4, 6, 6, 8), (3, 1, 1, 0), (1, 2, 2, 4))
POOL_KINDS = ("max", "avg")
# Window colours for the picture (pastel, so the black numbers stay readable).
WINDOW_COLOURS = ("#a6cee3", "#fdbf6f", "#b2df8a", "#fb9a99", "#cab2d6", "#ffff99")


@dataclass
class PoolingExample:
    """An input map, the pooled map Keras computed, and the pooling settings."""

    input: np.ndarray
    output: np.ndarray
    kind: str
    pool_size: int
    stride: int

    @property
    def layer_name(self) -> str:
        """The Keras layer that computed it."""
        return "MaxPooling2D" if self.kind == "max" else "AveragePooling2D"

    @property
    def tiles_exactly(self) -> bool:
        """Whether the windows cover the map without overlap or leftovers."""
        return (self.stride == self.pool_size
                and all(n % self.pool_size == 0 for n in self.input.shape))


def parse_grid(text: str) -> np.ndarray:
    """'1 0 2 3 / 4 6 6 8 / ...' (rows split by '/' or ';') -> a 2-D float array."""
    rows = [r.replace(",", " ").split() for r in text.replace(";", "/").split("/")]
    rows = [r for r in rows if r]
    try:
        grid = np.array([[float(v) for v in r] for r in rows], dtype=np.float32)
    except ValueError:
        raise VizError(f"expected numbers in rows separated by '/', e.g. '1 0 / 4 6', got "
                       f"{text!r}") from None
    if not rows or grid.ndim != 2:
        raise VizError(f"every row of the map needs the same number of values, got {text!r}")
    return grid


def pooling_example(values=LECTURE_MAP, *, kind: str = "max", pool_size: int = 2,
                    stride: int = 2) -> PoolingExample:
    """Pool a 2-D map with keras.layers.MaxPooling2D (or AveragePooling2D)."""
    import keras

    if kind not in POOL_KINDS:
        raise VizError(f"pooling kind must be one of {list(POOL_KINDS)}, got {kind!r}")
    grid = np.asarray(values, dtype=np.float32)
    if grid.ndim != 2:
        raise VizError(f"the map must be 2-D, got shape {grid.shape}")
    if pool_size < 1 or stride < 1 or pool_size > min(grid.shape):
        raise VizError(f"pool size {pool_size} and stride {stride} do not fit a "
                       f"{grid.shape[0]}x{grid.shape[1]} map")
    layer_class = keras.layers.MaxPooling2D if kind == "max" else keras.layers.AveragePooling2D
    layer = layer_class(pool_size=pool_size, strides=stride, padding="valid")
    pooled = keras.ops.convert_to_numpy(layer(grid[None, :, :, None]))[0, :, :, 0]
    return PoolingExample(grid, np.asarray(pooled), kind, pool_size, stride)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def _grid_lines(grid: np.ndarray, width: int, block: int | None) -> list[str]:
    """Rows of numbers, with | and --+-- between pooling windows when ``block`` is given."""
    step = block or grid.shape[1]
    lines = []
    for i, row in enumerate(grid):
        groups = ["  ".join(_number(v).rjust(width) for v in row[j:j + step])
                  for j in range(0, len(row), step)]
        if block and i and i % block == 0:
            lines.append("-+-".join("-" * len(g) for g in groups))
        lines.append(" | ".join(groups))
    return lines


def format_pooling(example: PoolingExample) -> str:
    """Input grid, an arrow naming the pooling, output grid, as the lecture writes it."""
    numbers = [_number(v) for v in np.concatenate([example.input.ravel(),
                                                   example.output.ravel()])]
    width = max(len(n) for n in numbers)
    block = example.pool_size if example.tiles_exactly else None
    left = _grid_lines(example.input, width, block)
    right = _grid_lines(example.output, width, None)
    arrow = f"{example.pool_size}x{example.pool_size} {example.kind} pool, stride " \
            f"{example.stride}"
    arrow_line = "-" * (len(arrow) - 1) + ">"
    left_width = max(len(line) for line in left)
    h, w = example.input.shape
    oh, ow = example.output.shape
    header = f"input {h}x{w}".ljust(left_width) + "    " + arrow + "    " + f"output {oh}x{ow}"
    first = max(0, (len(left) - len(right)) // 2)
    lines = [header]
    for i in range(max(len(left), first + len(right))):
        text = (left[i] if i < len(left) else "").ljust(left_width)
        if first <= i < first + len(right):
            middle = arrow_line if i == first else " " * len(arrow)
            text += "    " + middle + "    " + right[i - first]
        lines.append(text.rstrip())
    title = f"{arrow} (keras.layers.{example.layer_name})"
    return "\n".join([title, "", *lines]) + "\n"


def plot_pooling(example: PoolingExample, out: str | Path):
    """The example as a picture: windows coloured, each window's result marked."""
    from matplotlib.patches import FancyArrowPatch, Rectangle

    plt = headless_pyplot()
    h, w = example.input.shape
    oh, ow = example.output.shape
    size = (2.0 + 0.9 * (w + ow), 1.6 + 0.8 * max(h, oh))
    fig, (ax_in, ax_out) = plt.subplots(1, 2, figsize=size,
                                        gridspec_kw={"width_ratios": [w, ow], "wspace": 0.6})
    k, s = example.pool_size, example.stride

    def window_colour(i, j):
        return WINDOW_COLOURS[(i * ow + j) % len(WINDOW_COLOURS)]

    def cells(ax, grid, colour_of, bold):
        for (i, j), value in np.ndenumerate(grid):
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colour_of(i, j), edgecolor="grey"))
            ax.text(j + 0.5, i + 0.5, _number(value), ha="center", va="center",
                    fontsize=14, fontweight="bold" if bold(i, j) else "normal")
        ax.set_xlim(0, grid.shape[1])
        ax.set_ylim(grid.shape[0], 0)
        ax.set_aspect("equal")
        ax.axis("off")

    # An input cell belongs to a window only when windows tile the map; otherwise leave white.
    def input_colour(i, j):
        if not example.tiles_exactly:
            return "white"
        return window_colour(i // k, j // k)

    winners = set()
    if example.kind == "max":
        for i in range(oh):
            for j in range(ow):
                window = example.input[i * s:i * s + k, j * s:j * s + k]
                r, c = np.unravel_index(np.argmax(window), window.shape)
                winners.add((i * s + r, j * s + c))
    cells(ax_in, example.input, input_colour, lambda i, j: (i, j) in winners)
    cells(ax_out, example.output, window_colour, lambda i, j: True)
    ax_in.set_title(f"input {h}x{w}", fontsize=11)
    ax_out.set_title(f"output {oh}x{ow}", fontsize=11)
    for ax in (ax_in, ax_out):
        ax.apply_aspect()  # so positions below are the drawn (equal-aspect) boxes
    start, end = ax_in.get_position(), ax_out.get_position()
    gap = end.x0 - start.x1
    middle = (start.y0 + start.y1) / 2
    fig.add_artist(FancyArrowPatch((start.x1 + 0.15 * gap, middle), (end.x0 - 0.15 * gap, middle),
                                   transform=fig.transFigure, arrowstyle="-|>",
                                   mutation_scale=20, linewidth=2))
    label = f"{k}x{k} {example.kind} pool\nstride {s}"
    fig.text((start.x1 + end.x0) / 2, middle + 0.04, label, ha="center", va="bottom",
             fontsize=9)
    title = f"{label.replace(chr(10), ', ')} (keras.layers.{example.layer_name})"
    fig.suptitle(title, fontsize=11)
    save_figure(fig, out, dpi=DPI)
    return Picture(Path(out), size, title)
