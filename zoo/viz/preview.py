"""`zoo data preview`: a labelled grid of training images, one row per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from zoo.data.load import load_dataset
from zoo.viz.figure import headless_pyplot, save_figure

MAX_ROWS = 20  # CIFAR-100's 100 classes would make an unreadable sheet: the first 20 rows


def preview_grid(name: str, out: str | Path, *, per_class: int = 8, seed: int = 0,
                 data_dir: str | None = None) -> Path:
    """Save a PNG with ``per_class`` random training images of each class, labelled.

    Args:
        name: any --dataset value.
        out: the PNG path.
        per_class: images per row.
        seed: which images are drawn.
        data_dir: tensorflow-datasets data directory for tfds: names.
    """
    plt = headless_pyplot()
    data = load_dataset(name, data_dir=data_dir)
    rng = np.random.default_rng(seed)
    classes = list(range(min(data.num_classes, MAX_ROWS)))
    fig, axes = plt.subplots(len(classes), per_class, squeeze=False,
                             figsize=(per_class * 0.9 + 1.6, len(classes) * 0.9 + 0.4))
    for row, c in enumerate(classes):
        idx = np.flatnonzero(data.y_train == c)
        picks = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            if col < len(picks):
                img = np.asarray(data.x_train[picks[col]])
                ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            else:
                ax.axis("off")
        axes[row][0].set_ylabel(data.class_names[c], rotation=0, ha="right", va="center",
                                fontsize=8)
    more = (f" (first {len(classes)} of {data.num_classes} classes)"
            if len(classes) < data.num_classes else "")
    fig.suptitle(f"{data.name}: training images per class{more}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out, dpi=100)
    return Path(out)
