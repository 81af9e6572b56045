"""What the pictures are made from: a run's model and config, one of its layers, input images.

Every check on user input (layer names, sample indices, image files) happens here, before a
picture is computed, so a mistake fails in one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zoo.core.names import close_matches
from zoo.core.runs import load_run_config, load_run_model
from zoo.data.dataset import fit_images
from zoo.data.images import read_image
from zoo.data.inputs import open_source
from zoo.data.listing import FolderListing

if TYPE_CHECKING:
    import keras


class VizError(ValueError):
    """A picture cannot be drawn from the given run, layer, image or sample."""


@dataclass
class LoadedRun:
    """A run's model with its config.json (empty for a bare `.keras` file)."""

    source: Path
    model: "keras.Model"
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) the model takes."""
        return tuple(self.model.input_shape[1:])

    @property
    def class_names(self) -> list[str]:
        """Class names from the run's config, else '0'..'k-1' from the output width."""
        names = self.config.get("class_names")
        if names:
            return list(names)
        return [str(i) for i in range(int(self.model.output_shape[-1]))]

    @property
    def label(self) -> str:
        """How pictures name the run: the model, and the data set it was trained on."""
        data = self.config.get("dataset_name") or self.config.get("dataset")
        return f"{self.model.name} on {data}" if data else self.model.name


@dataclass
class InputImage:
    """One uint8 image (H, W, C) already fitted to the model, and where it came from."""

    pixels: np.ndarray
    caption: str


def load_run(source: str | Path, *, unsafe: bool = False) -> LoadedRun:
    """Load a run directory (or `.keras` file) with its config."""

    model = load_run_model(source, unsafe=unsafe)
    return LoadedRun(Path(source), model, load_run_config(source))


def _is_conv(layer) -> bool:
    import keras

    # Depthwise, separable and transposed convs are not Conv2D subclasses in Keras 3: their
    # kernels are laid out differently and would be drawn wrongly.
    return isinstance(layer, keras.layers.Conv2D)


def conv_layers(model: "keras.Model") -> list:
    """The model's Conv2D layers, input to output."""
    return [layer for layer in model.layers if _is_conv(layer)]


def spatial_layers(model: "keras.Model") -> list:
    """Layers whose output is still a stack of 2-D feature maps (N, H, W, C)."""
    return [layer for layer in model.layers
            if type(layer).__name__ != "InputLayer" and len(layer.output.shape) == 4]


def find_layer(model: "keras.Model", name: str, *, allowed: list | None = None,
               what: str = "layer"):
    """Layer ``name`` of ``model``; an unknown name fails listing close matches.

    ``allowed`` restricts the choice (e.g. to conv layers); a layer outside it fails naming
    the ones that would do.
    """
    names = [layer.name for layer in model.layers if type(layer).__name__ != "InputLayer"]
    choices = [layer.name for layer in allowed] if allowed is not None else names
    if name not in names:
        close = close_matches(name, names, n=4)
        hint = f"did you mean {', '.join(close)}?" if close else \
            f"pick one of: {_listing(choices)}"
        raise VizError(f"model {model.name} has no layer {name!r}; {hint}")
    if name not in choices:
        kind = type(model.get_layer(name)).__name__
        raise VizError(f"layer {name!r} ({kind}) is not a {what}; pick one of "
                       f"{model.name}'s: {_listing(choices)}")
    return model.get_layer(name)


def _listing(names: list[str], limit: int = 12) -> str:
    if not names:
        return "(none)"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def load_image(path: str | Path, input_shape: tuple[int, int, int]) -> InputImage:
    """An image file as uint8 (``zoo.data.images``), fitted to the model's channels and size."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise VizError(f"image {path} does not exist or is not a file")
    if input_shape[-1] not in (1, 3):
        raise VizError(f"the model takes {input_shape[-1]}-channel input; only grey and RGB "
                       f"image files can be fed to it")
    pixels = read_image(path, input_shape[-1])
    return InputImage(fit_images(pixels[None], input_shape, what="image")[0], path.name)


SPLITS = ("train", "val", "test")


def run_source(run: LoadedRun, split: str = "test", *, dataset: str | None = None,
               data_dir: str | None = None):
    """The run's data (``zoo.data.inputs.open_source``: an image folder only listed), checked
    against the model's classes."""
    if split not in SPLITS:
        raise VizError(f"split must be one of {list(SPLITS)}, got {split!r}")
    spec = dataset or run.config.get("dataset")
    if not spec:
        raise VizError(f"{run.source} has no config.json naming its data set; pass --dataset")
    data = open_source(spec, data_dir=data_dir or run.config.get("data_dir"))
    outputs = int(run.model.output_shape[-1])
    if data.num_classes != outputs:
        raise VizError(f"data set {spec!r} has {data.num_classes} classes but the model "
                       f"predicts {outputs}; pass the --dataset it was trained on")
    return data


def load_split(run: LoadedRun, split: str = "test", *, dataset: str | None = None,
               data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (fitted to the model), labels and class names of a split of the run's data.

    An image folder's split alone is decoded, straight to the model's input size.
    """
    data = run_source(run, split, dataset=dataset, data_dir=data_dir)
    if isinstance(data, FolderListing):
        from zoo.data.folders import decode_fitted
        from zoo.data.tfds_listing import TfdsListing

        x = (np.stack([data.read_fitted(int(i), run.input_shape) for i in data.splits[split]])
             if isinstance(data, TfdsListing) else
             decode_fitted(data.split_files(split), run.input_shape))
        return x, data.split_labels(split), data.class_names
    spec = dataset or run.config.get("dataset")
    x = getattr(data, f"x_{split}")
    y = getattr(data, f"y_{split}")
    return fit_images(x, run.input_shape, what=f"data set {spec!r}"), y, data.class_names


def sample_image(run: LoadedRun, index: int, split: str = "test", *,
                 dataset: str | None = None, data_dir: str | None = None) -> InputImage:
    """Image number ``index`` of a split of the run's data, captioned with its class."""
    data = run_source(run, split, dataset=dataset, data_dir=data_dir)
    if isinstance(data, FolderListing):  # that one image, not the split
        files, y, class_names = data.split_files(split), data.split_labels(split), data.class_names
        if 0 <= index < len(files):
            return InputImage(data.read_fitted(int(data.splits[split][index]), run.input_shape),
                              f"{split} sample {index} (class {class_names[int(y[index])]})")
        x = files
    else:
        x, y, class_names = load_split(run, split, dataset=dataset, data_dir=data_dir)
    if not 0 <= index < len(x):
        raise VizError(f"sample {index} is out of range: the {split} split has {len(x)} "
                       f"images, pick 0..{len(x) - 1}")
    return InputImage(x[index], f"{split} sample {index} (class {class_names[int(y[index])]})")


def input_image(run: LoadedRun, *, image: str | Path | None = None, sample: int | None = None,
                split: str = "test", dataset: str | None = None,
                data_dir: str | None = None) -> InputImage:
    """The image a picture is drawn for: a file, or a sample of the run's data (default 0)."""
    if image is not None and sample is not None:
        raise VizError("give either an image file or a sample index, not both")
    if image is not None:
        return load_image(image, run.input_shape)
    return sample_image(run, 0 if sample is None else sample, split, dataset=dataset,
                        data_dir=data_dir)
