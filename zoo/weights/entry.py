"""A pretrained-weights entry: everything known about one weights file, as data.

Like torchvision's ``Weights`` records and keras-hub's presets, an entry holds the file's
identity (official name, checksum, size), where it comes from and under which license, what it
was measured to do, what input it expects and how it is converted to the zoo's layout. Tools
print tables from entries without importing Keras or touching the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# How an official file becomes a Keras .weights.h5 of the zoo model (zoo.weights.convert).
CONVERTERS = ("torchvision", "keras_h5", "lpips_numpy", "zoo")
# Checksum kinds: a full SHA-256 (computed from the genuine file), the SHA-256 prefix that
# torchvision publishes in its file names (torchvision's own check compares only that prefix),
# or the MD5 that keras.applications keeps in its source.
CHECKSUM_KINDS = ("sha256", "sha256_prefix", "md5")


@dataclass(frozen=True)
class Preprocessing:
    """The input the weights were trained on, from uint8 RGB (or grey) images.

    ``kind``: 'scale' (x / 255), 'mean_std' ((x / 255 - mean) / std, RGB) or 'caffe'
    (RGB -> BGR, x - mean with x in 0..255, as keras.applications' VGG16/VGG19 expect).
    """

    kind: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    resolution: int | None = None  # the training/evaluation crop, where one was published

    def describe(self) -> str:
        """One line for tables: 'x/255', 'ImageNet mean/std', ..."""
        if self.kind == "scale":
            return "x / 255"
        if self.kind == "mean_std":
            return f"(x / 255 - mean {list(self.mean)}) / std {list(self.std)}"
        return f"BGR, x - mean {list(self.mean)} (0..255)"


IMAGENET_MEAN_STD = Preprocessing("mean_std", mean=(0.485, 0.456, 0.406),
                                  std=(0.229, 0.224, 0.225), resolution=224)
CAFFE_BGR = Preprocessing("caffe", mean=(103.939, 116.779, 123.68), resolution=224)
UNIT_SCALE = Preprocessing("scale")


@dataclass(frozen=True)
class WeightsEntry:
    """One named weights file of one model (a zoo model or a keras.applications backbone).

    ``hparams`` are the builder hyperparameters the file was made for (they are applied under
    the caller's own when building). ``classifier`` says whether the file holds the top
    (fc/predictions) layers; without it the model must be built with ``include_top=False``.
    ``classes`` names where the class names come from: 'imagenet' (shipped with the zoo) or a
    data set of ``zoo data``. ``packaged`` is a file inside the zoo package (the zoo's own
    small weights, present on every install).
    """

    model: str
    name: str
    description: str
    dataset: str
    file_name: str
    checksum: str
    checksum_kind: str
    license: str
    source: str
    converter: str
    preprocessing: Preprocessing
    classifier: bool
    size: int | None = None  # bytes, where the genuine file was measured
    published_size_mb: float | None = None  # as the publisher states it
    metrics: Mapping[str, float] = field(default_factory=dict)
    classes: str | None = None
    hparams: Mapping[str, Any] = field(default_factory=dict)
    packaged: str | None = None
    command: str | None = None  # how the zoo produced it (its own weights)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.converter not in CONVERTERS:
            raise ValueError(f"weights {self.key}: converter must be one of {CONVERTERS}")
        if self.checksum_kind not in CHECKSUM_KINDS:
            raise ValueError(f"weights {self.key}: checksum_kind must be one of "
                             f"{CHECKSUM_KINDS}")
        lengths = {"sha256": 64, "md5": 32}
        if self.checksum_kind in lengths and len(self.checksum) != lengths[self.checksum_kind]:
            raise ValueError(f"weights {self.key}: a {self.checksum_kind} has "
                             f"{lengths[self.checksum_kind]} hex digits, got {self.checksum!r}")

    @property
    def key(self) -> str:
        """'MODEL:ENTRY', how the CLI names an entry."""
        return f"{self.model}:{self.name}"

    @property
    def checksum_label(self) -> str:
        """The checksum as tables print it, saying which kind it is."""
        if self.checksum_kind == "sha256_prefix":
            return f"SHA-256 {self.checksum}... (prefix, as published)"
        return f"{'SHA-256' if self.checksum_kind == 'sha256' else 'MD5'} {self.checksum}"

    def matches(self, sha256: str, md5: str) -> bool:
        """Whether a file with these digests is this entry's file."""
        if self.checksum_kind == "sha256":
            return sha256 == self.checksum
        if self.checksum_kind == "sha256_prefix":
            return sha256.startswith(self.checksum)
        return md5 == self.checksum

    def expected_vs(self, sha256: str, md5: str) -> str:
        """'expected X, found Y' in this entry's checksum kind."""
        if self.checksum_kind == "md5":
            return f"expected MD5 {self.checksum}, found {md5}"
        if self.checksum_kind == "sha256_prefix":
            return f"expected SHA-256 {self.checksum}... (published prefix), found {sha256}"
        return f"expected SHA-256 {self.checksum}, found {sha256}"
