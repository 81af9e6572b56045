"""A trained network as a feature extractor: embeddings and nearest neighbours.

The last hidden layer's activations (what the classifier sees) are the image's feature
vector. Images whose vectors are close in Euclidean distance look alike to the network:
the AlexNet paper (Krizhevsky et al. 2012, Figure 4 right) shows test images with the
training images nearest to them in this space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zoo.core.runs import atomic_write
from zoo.data.batches import to_float
from zoo.data.dataset import Dataset, fit_images
from zoo.data.inputs import fit_source, split_images, split_labels
from zoo.data.listing import FolderListing
from zoo.data.stream import ImageStream
from zoo.viz.figure import headless_pyplot, save_figure
from zoo.weights.backbone import classifier_input

if TYPE_CHECKING:
    import keras

SPLITS = ("train", "val", "test")


def feature_model(model: "keras.Model") -> "keras.Model":
    """The model cut below its classifier: images -> last hidden feature vectors."""
    import keras

    features = classifier_input(model)
    if len(features.shape) > 2:  # a headless model's feature maps
        features = keras.layers.Flatten(name="features_flat")(features)
    return keras.Model(model.inputs, features, name=f"{model.name}_features")


def embed_images(extractor: "keras.Model", images: np.ndarray, batch_size: int = 256
                 ) -> np.ndarray:
    """Feature vectors (N, D) of uint8 images, fitted to the extractor's input first."""
    x = to_float(fit_images(images, tuple(extractor.input_shape[1:])))
    return np.asarray(extractor.predict(x, batch_size=batch_size, verbose=0), np.float32)


def fitted_data(model: "keras.Model", data: "Dataset | FolderListing"
                ) -> "Dataset | ImageStream":
    """``data`` ready for ``model``: an image folder decoded straight to its input size, or
    streamed past the memory budget (zoo.data.inputs); arrays as they are."""
    if isinstance(data, FolderListing):
        return fit_source(data, tuple(model.input_shape[1:]))[0]
    return data


def embed_split(extractor: "keras.Model", data: "Dataset | ImageStream", split: str,
                batch_size: int = 256) -> np.ndarray:
    """Feature vectors (N, D) of a split, arrays fitted to the extractor or a stream's batches."""
    if isinstance(data, ImageStream):
        batches = data.batches(split, batch_size=batch_size)
        return np.asarray(extractor.predict(batches, verbose=0), np.float32)
    return embed_images(extractor, getattr(data, f"x_{split}"), batch_size)


def embed_dataset(model: "keras.Model", data: "Dataset | FolderListing", splits=SPLITS
                  ) -> dict[str, np.ndarray]:
    """{'features_train', 'labels_train', ...} for each split, plus the class names."""
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; choose from {', '.join(SPLITS)}")
    extractor = feature_model(model)
    data = fitted_data(extractor, data)
    arrays = {"class_names": np.array(data.class_names)}
    for split in splits:
        arrays[f"features_{split}"] = embed_split(extractor, data, split)
        arrays[f"labels_{split}"] = np.asarray(split_labels(data, split), np.int64)
    return arrays


def write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """np.savez_compressed via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)
    return path


def nearest_neighbors(queries: np.ndarray, references: np.ndarray, k: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances), each (Q, k): the k references nearest to each query (Euclidean)."""
    if not 1 <= k <= len(references):
        raise ValueError(f"k must be in 1..{len(references)} (the number of reference "
                         f"images), got {k}")
    squared = ((queries ** 2).sum(1)[:, None] + (references ** 2).sum(1)[None, :]
               - 2.0 * queries @ references.T)
    order = np.argsort(squared, axis=1, kind="stable")[:, :k]
    distances = np.sqrt(np.maximum(np.take_along_axis(squared, order, axis=1), 0.0))
    return order, distances


def pick_queries(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` test indices spread over the classes (round-robin, random within a class)."""
    if count < 1:
        raise ValueError(f"--query must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picks = []
    while len(picks) < min(count, len(labels)):
        for pool in pools:
            if pool and len(picks) < count:
                picks.append(pool.pop())
    return np.array(picks)


@dataclass
class NeighborResult:
    """Queries (test indices), their neighbours (training indices) and distances."""

    queries: np.ndarray
    neighbors: np.ndarray
    distances: np.ndarray
    agreement: float  # fraction of neighbours with the query's label
    path: Path


def neighbor_grid(model: "keras.Model", data: "Dataset | FolderListing", *, queries: int = 5,
                  k: int = 6, seed: int = 0, out: str | Path = "neighbors.png"
                  ) -> NeighborResult:
    """For ``queries`` test images, draw the ``k`` nearest training images (one row each).

    An image folder past the memory budget streams: its training split is embedded batch by
    batch and only the pictured images are decoded again.
    """
    y_train, y_test = split_labels(data, "train"), split_labels(data, "test")
    if not 1 <= k <= len(y_train):
        raise ValueError(f"--k must be in 1..{len(y_train)}, got {k}")
    extractor = feature_model(model)
    data = fitted_data(extractor, data)
    picks = pick_queries(y_test, queries, seed)
    train_features = embed_split(extractor, data, "train")
    query_images = split_images(data, "test", picks)
    query_features = embed_images(extractor, query_images)
    neighbors, distances = nearest_neighbors(query_features, train_features, k)
    agreement = float(np.mean(y_train[neighbors] == y_test[picks][:, None]))
    pictures = Pictures(data.class_names, query_images, y_test[picks],
                        split_images(data, "train", neighbors), y_train[neighbors])
    path = _draw_grid(pictures, distances, Path(out))
    return NeighborResult(picks, neighbors, distances, agreement, path)


@dataclass
class Pictures:
    """The images of a neighbour grid: queries (Q, ...) and their neighbours (Q, k, ...)."""

    class_names: list[str]
    queries: np.ndarray
    query_labels: np.ndarray
    neighbors: np.ndarray
    neighbor_labels: np.ndarray


def _draw_grid(pictures: Pictures, distances, path: Path) -> Path:
    plt = headless_pyplot()
    rows, cols = len(pictures.queries), pictures.neighbors.shape[1] + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.45 * rows), squeeze=False)

    def show(ax, image, title, color):
        grey = image.shape[-1] == 1
        ax.imshow(image[..., 0] if grey else image, cmap="gray" if grey else None)
        ax.set_title(title, fontsize=7, color=color)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_color(color)
            spine.set_linewidth(2)

    names = pictures.class_names
    for r, (query, label) in enumerate(zip(pictures.queries, pictures.query_labels)):
        show(axes[r, 0], query, f"query: {names[label]}", "blue")
        for c, d in enumerate(distances[r], start=1):
            other = pictures.neighbor_labels[r, c - 1]
            show(axes[r, c], pictures.neighbors[r, c - 1], f"{names[other]}  d={d:.2f}",
                 "green" if other == label else "red")
    fig.suptitle("test images (left) and their nearest training images in feature space",
                 fontsize=9)
    save_figure(fig, path)
    return path
