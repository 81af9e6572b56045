"""Data augmentation from Keras 3 preprocessing layers, applied to training batches only.

The lecture's list — cropping, rotation, scale, reflection, elastic deformation, intensity —
maps onto RandomTranslation (a padded random crop is a translation with zero fill, and keeps
the image size), RandomRotation, RandomZoom, RandomFlip, RandomElasticTransform,
RandomBrightness and RandomContrast; MixUp and CutMix mix images and their labels.

The layers run inside the input pipeline (tf.data, or NumPy batches without TensorFlow), never
inside the model: evaluated and exported models contain none of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from recipes.base import Recipe, RecipeError, param

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan

# Data sets whose classes change under a mirror image (a mirrored 2 is no digit) and whose
# background is black, so shifted-in pixels are filled with 0 rather than reflected strokes.
DIGIT_LIKE = ("digits", "mnist", "svhn", "usps")
FLIPS = {"none": None, "horizontal": "horizontal", "vertical": "vertical",
         "both": "horizontal_and_vertical"}
FILLS = ("auto", "constant", "reflect", "nearest")
# Images in training batches are float32 in [0, 1] (zoo.data.batches.to_float).
VALUE_RANGE = (0.0, 1.0)


def is_digit_like(dataset: str) -> bool:
    """Whether a data set holds characters/digits (no reflection, black background)."""
    name = dataset.lower()
    # Fashion-MNIST borrows MNIST's name and format but holds clothes: a mirrored shoe is a shoe.
    return "fashion" not in name and any(word in name for word in DIGIT_LIKE)


@dataclass(frozen=True)
class Augment(Recipe):
    """Geometric and intensity augmentation; each strength 0 switches that transform off."""

    name = "augment"
    concern = "augment"
    summary = "random translation, rotation, zoom, flip, elastic warp, brightness, contrast"
    rank = 20

    translate: float = param(0.1, "shift up to this fraction of height/width (= padded crop)",
                             low=0, high=0.5)
    rotation: float = param(0.04, "rotate up to this fraction of a full turn (0.04 = 14.4 deg)",
                            low=0, high=0.5)
    zoom: float = param(0.1, "zoom in/out by up to this fraction", low=0, high=0.9)
    flip: str = param("auto", "mirror images (auto: none for digits, horizontal otherwise)",
                      choices=("auto", *FLIPS))
    elastic: float = param(0.0, "elastic deformation strength (Keras scale; 0 = off)", low=0,
                           high=1)
    brightness: float = param(0.1, "add up to this fraction of the value range", low=0, high=1)
    contrast: float = param(0.1, "scale contrast by up to this fraction", low=0, high=1)
    fill: str = param("auto", "pixels shifted in (auto: constant 0 for digits, else reflect)",
                      choices=FILLS)

    def validate(self) -> None:
        strengths = (self.translate, self.rotation, self.zoom, self.elastic, self.brightness,
                     self.contrast)
        if not any(strengths) and self.flip in ("auto", "none"):
            raise RecipeError("recipe 'augment' with every strength 0 changes nothing; "
                              "leave it out instead")

    def for_dataset(self, dataset: str) -> "Augment":
        """This recipe with 'auto' flip and fill resolved for ``dataset``."""
        digits = is_digit_like(dataset)
        return dataclasses.replace(
            self,
            flip=("none" if digits else "horizontal") if self.flip == "auto" else self.flip,
            fill=("constant" if digits else "reflect") if self.fill == "auto" else self.fill,
        )

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        resolved = self.for_dataset(plan.dataset)
        return resolved.recorded(plan, augment=_pipeline(plan, self).with_stage(resolved))

    def make_layers(self, seed: int) -> list:
        """The Keras preprocessing layers, in the order geometry -> warp -> intensity."""
        from keras import layers

        fill = {"fill_mode": self.fill, "fill_value": 0.0}
        made = []
        if FLIPS[self.flip]:
            made.append(layers.RandomFlip(FLIPS[self.flip], seed=seed))
        if self.rotation:
            made.append(layers.RandomRotation(self.rotation, seed=seed + 1, **fill))
        if self.zoom:
            made.append(layers.RandomZoom(self.zoom, seed=seed + 2, **fill))
        if self.translate:
            made.append(layers.RandomTranslation(self.translate, self.translate,
                                                 seed=seed + 3, **fill))
        if self.elastic:
            made.append(gentle_elastic_transform(self.elastic, seed=seed + 4, **fill))
        if self.brightness:
            made.append(layers.RandomBrightness(self.brightness, value_range=VALUE_RANGE,
                                                seed=seed + 5))
        if self.contrast:
            made.append(layers.RandomContrast(self.contrast, value_range=VALUE_RANGE,
                                              seed=seed + 6))
        return made


def gentle_elastic_transform(strength: float, **kwargs):
    """keras.layers.RandomElasticTransform applied to every image, with smooth warps.

    Keras ties the field's smoothness (sigma) to the displacement (alpha) and makes both 5-10%
    of the image side; on a 28-pixel digit that is a 1-pixel smoothing of 3-pixel moves, which
    scrambles strokes instead of bending them. As in Simard et al. (2003), the field here is
    smoothed over 12% of the side (about 3 pixels on 28) and pixels move by about 4% of the
    side (1.2 pixels on 28, standard deviation) times a strength drawn from [0, ``strength``].
    Only that mapping is changed; Keras draws and applies the field.
    """
    from keras import layers

    class GentleElasticTransform(layers.RandomElasticTransform):
        def get_elastic_transform_params(self, height, width, factor):
            size = min(height, width)
            return 0.15 * size * factor, 0.12 * size

    return GentleElasticTransform(factor=(1.0, 1.0), scale=(0.0, strength),
                                  value_range=VALUE_RANGE, **kwargs)


def _call_per_image(layer, images):
    """Run ``layer`` image by image when the batch size is unknown (tf.data).

    Keras 3.15's elastic transform reads the static batch size and takes None for 1: inside
    tf.data every image of a batch would become a warped copy of the first one.
    """
    if images.shape[0] is not None:
        return layer(images, training=True)
    import tensorflow as tf  # only tf.data has an unknown batch size, so TF is there

    return tf.map_fn(lambda image: layer(image, training=True), images)


@dataclass(frozen=True)
class MixUp(Recipe):
    """MixUp (Zhang et al. 2018): blend pairs of images and their one-hot labels."""

    name = "mixup"
    concern = "label_mixing"
    summary = "blend pairs of training images and their labels (soft labels)"
    rank = 30

    alpha: float = param(0.2, "Beta(alpha, alpha) mixing weights", low=0, high=1,
                         low_open=True)

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        return self.recorded(plan, augment=_pipeline(plan, self).with_stage(self),
                             one_hot_labels=True)

    def make_layers(self, seed: int) -> list:
        from keras import layers

        return [layers.MixUp(alpha=self.alpha, seed=seed + 7)]


@dataclass(frozen=True)
class CutMix(Recipe):
    """CutMix (Yun et al. 2019): paste a patch of another image, labels mixed by area."""

    name = "cutmix"
    concern = "label_mixing"
    summary = "paste a patch of another training image; labels mixed by patch area"
    rank = 30

    alpha: float = param(1.0, "Beta(alpha, alpha) patch-area weights (Keras factor)", low=0,
                         high=1, low_open=True)

    def apply(self, plan: "TrainPlan") -> "TrainPlan":
        return self.recorded(plan, augment=_pipeline(plan, self).with_stage(self),
                             one_hot_labels=True)

    def make_layers(self, seed: int) -> list:
        from keras import layers

        return [layers.CutMix(factor=self.alpha, seed=seed + 8)]


LABEL_MIXING = (MixUp, CutMix)


@dataclass(frozen=True)
class AugmentPipeline:
    """The plan's ``augment`` callable: (images, labels) -> (images, labels) on a batch.

    Holds the augmentation recipes (sorted by rank, so augment-then-mix whatever the order they
    were given in) and builds their Keras layers once, on first use.
    """

    stages: tuple = ()
    seed: int = 0

    def with_stage(self, stage: Recipe) -> "AugmentPipeline":
        """A new pipeline with ``stage`` added in its rank's place."""
        stages = tuple(sorted((*self.stages, stage), key=lambda s: (s.rank, s.name)))
        return AugmentPipeline(stages, self.seed)

    @cached_property
    def layers(self) -> list[tuple[Any, bool]]:
        """(Keras layer, mixes labels?) in the order they run."""
        return [(layer, isinstance(stage, LABEL_MIXING))
                for i, stage in enumerate(self.stages)
                for layer in stage.make_layers(self.seed + 10 * i)]

    def __call__(self, images, labels):
        for layer, mixes_labels in self.layers:
            if mixes_labels:
                mixed = layer({"images": images, "labels": labels}, training=True)
                images, labels = mixed["images"], mixed["labels"]
            elif isinstance(layer, _elastic_base()):
                images = _call_per_image(layer, images)
            else:
                images = layer(images, training=True)
        return images, labels


def _elastic_base():
    from keras import layers

    return layers.RandomElasticTransform


def _pipeline(plan: "TrainPlan", recipe: Recipe) -> AugmentPipeline:
    if plan.augment is None:
        return AugmentPipeline(seed=plan.seed)
    if not isinstance(plan.augment, AugmentPipeline):
        raise RecipeError(f"recipe {recipe.name!r} cannot be combined with the plan's own "
                          f"augment function {plan.augment!r}")
    return plan.augment


RECIPES = (Augment, MixUp, CutMix)
