"""A picture of what augmentation does: training images next to augmented copies of them.

`zoo augment-preview` draws it. It lives outside ``recipes.augment`` because it parses recipe
specs with the package's ``parse_recipes`` (which imports ``recipes.augment``) and loads data and
draws figures, which a recipe does not need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from recipes import parse_recipes
from recipes.augment import LABEL_MIXING, Augment
from recipes.base import RecipeError
from zoo.data.batches import to_float
from zoo.data.load import load_dataset
from zoo.training.train import TrainPlan
from zoo.viz.figure import headless_pyplot, save_figure


def augment_preview(out: str | Path, specs: list[str] | None = None, *, dataset: str = "digits",
                    data_dir: str | None = None, images: int = 6, copies: int = 7,
                    seed: int = 0) -> Path:
    """Save a PNG grid: each row one training image, its original then ``copies`` augmented.

    ``specs`` are augmentation recipe specs (default: ``augment`` with its data-set defaults).
    """
    if not 1 <= images <= 32 or not 1 <= copies <= 16:
        raise RecipeError(f"preview needs 1-32 images and 1-16 copies, got {images}, {copies}")
    chosen = parse_recipes(specs or ["augment"])
    other = [r.name for r in chosen if not isinstance(r, (Augment, *LABEL_MIXING))]
    if other:
        raise RecipeError(f"augment-preview shows augmentation recipes only (augment, mixup, "
                          f"cutmix); {', '.join(other)} change the model or optimizer")
    data = load_dataset(dataset, data_dir=data_dir)
    plan = TrainPlan(model="lenet5", dataset=dataset, seed=seed)
    for recipe in chosen:
        plan = recipe.apply(plan)
    # One image per class (then repeats), so the grid shows every kind of picture.
    rng = np.random.default_rng(seed)
    picks = [int(rng.choice(np.flatnonzero(data.y_train == c)))
             for c in np.unique(data.y_train)][:images]
    while len(picks) < images:
        picks.append(int(rng.integers(len(data.x_train))))
    x = to_float(data.x_train[picks])
    y = np.eye(data.num_classes, dtype=np.float32)[data.y_train[picks]]
    versions = [np.asarray(plan.augment(x, y)[0]) for _ in range(copies)]

    plt = headless_pyplot()
    fig, axes = plt.subplots(images, copies + 1, figsize=(1.3 * (copies + 1), 1.3 * images),
                             squeeze=False)
    grey = x.shape[-1] == 1
    for row in range(images):
        for col in range(copies + 1):
            image = x[row] if col == 0 else versions[col - 1][row]
            ax = axes[row][col]
            ax.imshow(np.clip(image[..., 0] if grey else image, 0, 1),
                      cmap="gray" if grey else None, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title("original" if col == 0 else f"#{col}", fontsize=8)
    fig.suptitle(" + ".join(plan.recipes) + f" on {data.name}", fontsize=9)
    out = Path(out)
    save_figure(fig, out)
    return out
