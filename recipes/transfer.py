"""Transfer learning: reuse a trained network's features on a new problem.

The lecture's recipe, in code: take a network trained on another domain, cut off its
classifier, put a new one for the target's classes on top, train that head with the base
frozen (phase 1), then unfreeze the top layers of the base and fine-tune them at a lower
learning rate (phase 2). Both phases run through the one training loop
(``zoo.training.train.train``)
into one run directory.

Sources: a run directory or `.keras` file, a registered zoo model with a weights file or one of
its weights entries (``zoo weights list``: ``--weights imagenet``, ``--weights mnist``), or a
``keras.applications`` backbone with a weights file, an entry (MobileNetV2 converted from
torchvision) or Keras' own ``imagenet`` download.
"""

from __future__ import annotations

import contextlib
import csv
import os
import socket
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from zoo.core.locks import PID_FILE, folder_lock
from zoo.core.names import did_you_mean
from zoo.core.registry import build, list_models
from zoo.core.runs import (
    CONFIG_FILE,
    HISTORY_FILE,
    METRICS_FILE,
    atomic_write,
    load_run_config,
    load_run_model,
    new_run_dir,
    read_history,
    write_json_atomic,
)
from zoo.data.dataset import Dataset, fit_images
from zoo.data.inputs import split_labels
from zoo.data.listing import FolderListing
from zoo.models.layers import classifier
from zoo.training.cost import InputNote
from zoo.training.distribution import distribution_settings, start_distribution
from zoo.training.settings import TrainingSettings, settings_of
from zoo.training.train import TrainPlan, train
from zoo.weights.backbone import classifier_input

if TYPE_CHECKING:
    import keras

STRATEGIES = ("auto", "head", "partial", "full")
# --strategy auto, by training images per class (the lecture: little data -> train only the
# head and maybe the top layers, a lot -> fine-tune everything). benchmarks/transfer_fewshot.py
# found fine-tuning the top two layers better than head-only already at 5 digits per class,
# so head-only is kept for even fewer; FULL_FROM is the lecture's "a lot", not measured here.
HEAD_ONLY_BELOW = 5
FULL_FROM = 1000
# "partial" without --freeze/--fine-tune-layers fine-tunes the top two layers with weights.
PARTIAL_WEIGHT_LAYERS = 2
# The phases' default learning rates (Adam). The new head starts from random weights on top of
# frozen features, so it can take a large step; the pretrained layers fine-tuned after it take
# a 100x smaller one (Keras' transfer-learning guide uses the same ratio, 1e-3 then 1e-5).
# Measured on the README tour (`zoo transfer runs/lenet5 --dataset digits --per-class 5
# --strategy auto`, LeNet-5 trained 10 epochs on the digits, test accuracy 0.978; seeds 0, 1,
# 2): with the head at 1e-3 and fine-tuning at 1e-4 the 50 images give 2 updates per epoch, 20
# in the head phase, and the head ends at 0.25 test accuracy, loss still falling; partial
# transfer ended at 0.40/0.51/0.41. Head at 1e-2 and fine-tuning at 1e-3: 0.92/0.94/0.88;
# head at 1e-2 and fine-tuning at 1e-4 (these defaults): 0.93/0.94/0.91.
HEAD_LEARNING_RATE = 1e-2
FINE_TUNE_LR_FACTOR = 0.01
BASE_NAME = "base"
# Where keras.applications downloads ImageNet weights from; probed before asking Keras, whose
# download would otherwise wait on the network for minutes when offline.
WEIGHTS_HOST = ("storage.googleapis.com", 443)
# How keras.applications families expect their input; our pipelines give float [0, 1].
#   tf: [-1, 1]; torch: ImageNet mean/std; caffe: BGR 0..255 minus the mean; raw: 0..255
#   (the model rescales itself).
APPLICATION_PREPROCESSING = {
    "mobilenet": "tf", "mobilenet_v2": "tf", "xception": "tf", "inception_v3": "tf",
    "inception_resnet_v2": "tf", "nasnet": "tf", "resnet_v2": "tf", "densenet": "torch",
    "vgg16": "caffe", "vgg19": "caffe", "resnet": "caffe", "efficientnet": "raw",
    "efficientnet_v2": "raw", "convnext": "raw", "regnet": "raw", "mobilenet_v3": "raw",
}
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


class TransferError(ValueError):
    """The source, target or freezing options cannot be used together."""


@dataclass
class Source:
    """A pretrained feature extractor: ``base`` maps images to feature vectors."""

    name: str
    kind: str  # run | zoo | applications | pretrained
    base: "keras.Model"
    hparams: dict[str, Any] = field(default_factory=dict)
    preprocess: list[Any] = field(default_factory=list)  # layers put before the base
    weights: dict[str, Any] | None = None  # provenance of pretrained weights (zoo.weights)
    input_note: InputNote | None = None  # why the input has its size, and the weights' size


@dataclass(kw_only=True)
class TransferSettings(TrainingSettings):
    """How to transfer: strategy, what stays frozen, the new head and the two phases.

    The training settings are TrainingSettings', except ``epochs`` (the phases train
    ``head_epochs`` and ``fine_tune_epochs``) and ``learning_rate``: the head phase's, 1e-2 by
    default (HEAD_LEARNING_RATE), with fine-tuning 100x lower unless ``fine_tune_lr``.
    """

    strategy: str = "partial"
    freeze: int | None = None  # bottom N base layers frozen throughout
    freeze_until: str | None = None  # ... up to and including this layer
    fine_tune_layers: int | None = None  # top K base layers unfrozen in phase 2
    head_units: tuple[int, ...] = ()  # hidden Dense layers of the new head
    head_dropout: float = 0.0
    head_epochs: int = 10
    fine_tune_epochs: int = 10
    learning_rate: float = HEAD_LEARNING_RATE  # the head phase's
    fine_tune_lr: float | None = None  # default learning_rate * FINE_TUNE_LR_FACTOR
    out: str | None = None


@dataclass
class TransferResult:
    """A finished transfer: the run directory, the model and what was decided."""

    run_dir: Path
    model: "keras.Model"
    history: dict[str, list[float]]
    test_metrics: dict[str, float]
    strategy: str
    reason: str
    frozen_layers: list[str]  # base layers frozen in the last phase that ran
    fine_tuned: bool  # whether phase 2 ran
    seconds: float
    kept_epoch: int | None = None  # the epoch whose model was kept (best val_loss)
    kept_phase: str | None = None  # 'head' or 'fine-tune'
    class_metrics: dict[str, Any] = field(default_factory=dict)  # per-class, macro F1


# ---------------------------------------------------------------- sources


def _base_from_model(model: "keras.Model") -> "keras.Model":
    import keras

    return keras.Model(model.inputs, classifier_input(model), name=BASE_NAME)


def application_names() -> list[str]:
    """The backbones keras.applications offers (class-like names such as MobileNetV2)."""
    import keras

    return sorted(n for n in dir(keras.applications)
                  if n[:1].isupper() and callable(getattr(keras.applications, n)))


def _check_imagenet_reachable(app_name: str) -> None:
    """Refuse at once when ImageNet weights are neither cached nor downloadable."""
    import keras

    module = getattr(keras.applications, app_name).__module__.rsplit(".", 1)[-1]
    cache = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"
    if cache.is_dir() and any(module in f.name and "notop" in f.name.replace("_", "")
                              for f in cache.iterdir()):
        return
    try:
        socket.create_connection(WEIGHTS_HOST, timeout=3).close()
    except OSError:
        raise TransferError(
            f"--weights imagenet needs to download the {app_name} weights from "
            f"{WEIGHTS_HOST[0]}, which this machine cannot reach (offline). Download them on a "
            f"machine with internet (keras.applications.{app_name}(weights='imagenet', "
            f"include_top=False) and model.save_weights('{app_name}.weights.h5')), copy the "
            f"file here and pass --weights {app_name}.weights.h5"
        ) from None


def _preprocessing_layers(app_name: str) -> list[Any]:
    """Layers turning our [0, 1] images into what the backbone's weights were trained on."""
    import keras
    import numpy as np

    module = getattr(keras.applications, app_name).__module__.rsplit(".", 1)[-1]
    mode = APPLICATION_PREPROCESSING.get(module, "tf")
    if mode == "tf":
        return [keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")]
    if mode == "raw":
        return [keras.layers.Rescaling(255.0, name="to_0_255")]
    if mode == "torch":
        return [keras.layers.Normalization(mean=IMAGENET_MEAN_RGB,
                                           variance=np.square(IMAGENET_STD_RGB),
                                           name="imagenet_normalize")]
    # caffe: 255 * x, RGB -> BGR, minus the mean. A fixed 1x1 convolution does all three
    # without a Lambda layer (which would make the saved model unsafe to load).
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):
        kernel[0, 0, in_channel, out_channel] = 255.0
    layer = keras.layers.Conv2D(3, 1, name="to_caffe_bgr", trainable=False,
                                kernel_initializer=keras.initializers.Constant(kernel),
                                bias_initializer=keras.initializers.Constant(
                                    [-m for m in CAFFE_MEAN_BGR]))
    return [layer]


def load_source(source: str, *, weights: str | None = None, unsafe: bool = False,
                hparams: dict[str, Any] | None = None,
                input_shape: tuple[int, int, int] | None = None,
                target: Dataset | None = None) -> Source:
    """Resolve SOURCE (run dir / `.keras`, zoo model + weights, keras.applications backbone).

    ``hparams`` rebuild a zoo model (or a backbone, e.g. alpha=0.35) as it was trained:
    they must match the weights file;
    ``input_shape`` sizes a keras.applications backbone (default: the target's images, RGB,
    at least 32x32).
    """
    import keras

    hparams = dict(hparams or {})
    looks_like_path = (source.endswith(".keras") or os.sep in source or Path(source).exists())
    if looks_like_path:
        if weights is not None or hparams:
            raise TransferError(f"{source} is a saved model: it brings its own weights and "
                                f"hyperparameters; drop --weights/--set")
        model = load_run_model(source, unsafe=unsafe)
        config = load_run_config(source)
        name = config.get("model") or model.name
        return Source(name=name, kind="run", base=_base_from_model(model),
                      hparams=config.get("hparams", {}))
    if weights is not None and _is_weights_entry(source, weights):
        return _pretrained_source(source, weights, hparams, input_shape, target)
    if source in list_models():
        if weights is None:
            raise TransferError(
                f"{source} is a zoo model; transferring needs its trained weights: pass "
                f"--weights PATH (a .weights.h5 file), or a run directory as SOURCE. To train "
                f"it from scratch use `zoo train {source}`"
            )
        model = build(source, **hparams)
        _load_weights(model, weights, source)
        return Source(name=source, kind="zoo", base=_base_from_model(model), hparams=hparams)
    apps = application_names()
    if source in apps:
        if weights is None:
            raise TransferError(f"keras.applications.{source} needs --weights PATH (a local "
                                f"weights file) or --weights imagenet")
        if weights != "imagenet" and not Path(weights).expanduser().is_file():
            raise FileNotFoundError(f"weights file {weights} does not exist")
        size_reason = "--input-shape"
        if input_shape is None:
            h, w = target.image_shape[:2] if target is not None else (224, 224)
            input_shape = (max(h, 32), max(w, 32), 3)
            size_reason = "the images' size, at least 32x32, RGB"
        if input_shape[-1] != 3:
            raise TransferError(f"{source} takes RGB images (3 channels), got --input-shape "
                                f"{input_shape}; grey images are converted to RGB for you")
        if weights == "imagenet":
            _check_imagenet_reachable(source)
        builder = getattr(keras.applications, source)
        try:
            backbone = builder(include_top=False, weights=None, input_shape=input_shape,
                               pooling="avg", **hparams)
        except (TypeError, ValueError) as err:
            raise TransferError(f"keras.applications.{source} cannot be built with input "
                                f"{input_shape} and {hparams or 'its defaults'}: {err}") from None
        if weights == "imagenet":
            backbone = builder(include_top=False, weights="imagenet", input_shape=input_shape,
                               pooling="avg", **hparams)
        else:
            _load_weights(backbone, weights, source)
        base = keras.Model(backbone.inputs, backbone.output, name=BASE_NAME)
        return Source(name=source, kind="applications", base=base,
                      hparams={**hparams, "input_shape": list(input_shape)},
                      preprocess=_preprocessing_layers(source),
                      input_note=InputNote(size_reason, (224, 224, 3),
                                           "the ImageNet weights' size"))
    raise TransferError(
        f"unknown source {source!r}: not a run directory or .keras file, not a zoo model"
        f"{did_you_mean(source, list_models(), n=4)} and not a keras.applications backbone"
        f"{did_you_mean(source, apps, n=4)}. See `zoo list`."
    )


def _is_weights_entry(source: str, weights: str) -> bool:
    """Whether --weights names one of SOURCE's weights entries (or 'imagenet' among them)."""
    from zoo.weights.catalog import entries_for

    names = {e.name for e in entries_for(source)}
    prefix, sep, name = weights.partition(":")
    if sep and prefix == source:  # 'vgg16:torchvision', as `zoo weights list` prints it
        weights = name
    if weights in names:
        return True
    return weights == "imagenet" and any(e.dataset == "imagenet" for e in entries_for(source))


def _pretrained_source(source: str, weights: str, hparams: dict[str, Any],
                       input_shape: tuple[int, int, int] | None, target: Dataset | None
                       ) -> Source:
    """A zoo model or backbone with one of its weights entries (zoo weights list)."""
    import keras

    from zoo.weights.backbone import pretrained_backbone

    backbone = pretrained_backbone(
        source, weights, input_shape=input_shape, hparams=hparams,
        images_shape=target.image_shape if target is not None else None)
    base = keras.Model(backbone.model.inputs, classifier_input(backbone.model), name=BASE_NAME)
    native = backbone.native
    what = (f"the {backbone.resolved.entry.dataset} weights' size" if backbone.resolved.entry
            else "the model's default input")
    return Source(name=source, kind="pretrained", base=base, hparams=backbone.hparams,
                  preprocess=backbone.preprocess, weights=backbone.resolved.provenance,
                  input_note=InputNote(backbone.size_reason, native, what))


# Keras 3.15 warns "Skipping nested container at '_operations_by_depth/...'" while loading a
# .weights.h5 whose shapes do not fit: its loader retries the functional model's
# _operations_by_depth lists (which only mirror the layers, saved under layers/) with
# skip_mismatch, and every mismatching layer there counts as a failure. Measured: a file of
# the same architecture loads every array with no warning; a mismatching one warns and then
# raises anyway. So the warning is noise beside the error below, and it is kept out of the
# output; were it ever to come with a load that succeeds, some layers would have kept their
# initial weights, and that is refused.
SKIPPED_CONTAINER = "Skipping nested container"


def _load_weights(model: "keras.Model", weights: str, source: str) -> None:
    import warnings

    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {weights} does not exist")
    hint = ("The file must come from model.save_weights() of the same architecture: pass the "
            "hyperparameters it was built with (--set num_classes=..., --set alpha=..., "
            "...); a keras.applications file must be of the backbone without its top")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(path)
        except Exception as err:  # Keras raises ValueError, OSError or KeyError by format
            raise TransferError(f"cannot load {weights} into {source}: "
                                f"{str(err).splitlines()[0][:300]}. {hint}") from None
    skipped = [w for w in caught if SKIPPED_CONTAINER in str(w.message)]
    for warning in caught:
        if warning not in skipped:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
    if skipped:
        raise TransferError(f"cannot load {weights} into {source}: Keras left some layers at "
                            f"their initial weights ({str(skipped[0].message)[:160]}). {hint}")


# ---------------------------------------------------------------- freezing


def base_layers(base: "keras.Model") -> list[Any]:
    """The base's layers bottom to top, without its input layer: what --freeze N counts."""
    return [layer for layer in base.layers if type(layer).__name__ != "InputLayer"]


def _nested_layers(layer) -> list[Any]:
    found = []
    for child in getattr(layer, "layers", []):
        found.append(child)
        found.extend(_nested_layers(child))
    return found


def frozen_layer_count(base: "keras.Model", settings: TransferSettings, strategy: str) -> int:
    """How many bottom base layers stay frozen during fine-tuning (phase 2)."""
    layers = base_layers(base)
    names = [layer.name for layer in layers]
    listing = ", ".join(names) if len(names) <= 12 else f"{', '.join(names[:6])}, ..."
    if settings.freeze is not None:
        if not 0 <= settings.freeze <= len(layers):
            raise TransferError(f"--freeze {settings.freeze}: the base has {len(layers)} "
                                f"layers ({listing}); give 0..{len(layers)}")
        return settings.freeze
    if settings.freeze_until is not None:
        wanted = settings.freeze_until
        if wanted not in names:
            raise TransferError(f"--freeze-until: the base has no layer "
                                f"{wanted!r}{did_you_mean(wanted, names, n=4)}"
                                f"; its layers: {listing}")
        return names.index(settings.freeze_until) + 1
    if settings.fine_tune_layers is not None:
        if not 1 <= settings.fine_tune_layers <= len(layers):
            raise TransferError(f"--fine-tune-layers {settings.fine_tune_layers}: the base has "
                                f"{len(layers)} layers ({listing}); give 1..{len(layers)}")
        return len(layers) - settings.fine_tune_layers
    if strategy == "full":
        return 0
    if strategy == "head":
        return len(layers)
    with_kernels = [i for i, layer in enumerate(layers) if hasattr(layer, "kernel")]
    if not with_kernels:
        return 0
    return with_kernels[-min(PARTIAL_WEIGHT_LAYERS, len(with_kernels))]


def set_trainable(base: "keras.Model", frozen: int) -> None:
    """Freeze the bottom ``frozen`` base layers and every batch-norm layer; unfreeze the rest.

    Batch norm stays frozen everywhere in the base: a frozen BatchNormalization layer runs in
    inference mode in Keras 3, so its moving statistics keep the source's values. Calling the
    base with training=False alone is not enough: Keras 3 functional models pass the outer
    training flag down to nested models, overriding it.
    """
    base.trainable = True
    # Set every layer (and every layer nested in it): Keras does not pass trainable=True down
    # to layers that were frozen one by one.
    for i, layer in enumerate(base_layers(base)):
        for inner in [layer, *_nested_layers(layer)]:
            inner.trainable = i >= frozen
    for layer in _nested_layers(base):
        if type(layer).__name__ == "BatchNormalization":
            layer.trainable = False


# ---------------------------------------------------------------- strategy and model


def choose_strategy(data: "Dataset | FolderListing") -> tuple[str, str]:
    """(strategy, reason) for --strategy auto, from the training images per class."""
    import numpy as np

    labels = split_labels(data, "train")
    per_class = int(np.bincount(labels, minlength=data.num_classes).min())
    if per_class < HEAD_ONLY_BELOW:
        return "head", (f"{per_class} training images in the smallest class (< "
                        f"{HEAD_ONLY_BELOW}): train only the new head; fine-tuning base "
                        f"layers on so few examples overfits")
    if per_class < FULL_FROM:
        return "partial", (f"{per_class} training images in the smallest class "
                           f"({HEAD_ONLY_BELOW}..{FULL_FROM - 1}): train the head, then "
                           f"fine-tune the top layers at a lower learning rate")
    return "full", (f"{per_class} training images in the smallest class (>= {FULL_FROM}): "
                    f"enough data to fine-tune the whole network after the head")


def build_transfer_model(source: Source, num_classes: int, *, head_units=(),
                         head_dropout: float = 0.0) -> "keras.Model":
    """The source's base (called in inference mode) under a new head for ``num_classes``."""
    import keras

    inputs = keras.Input(tuple(source.base.input_shape[1:]), name="image")
    x = inputs
    for layer in source.preprocess:
        x = layer(x)
    x = source.base(x, training=False)
    if len(x.shape) > 2:
        x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    for j, units in enumerate(head_units, start=1):
        x = keras.layers.Dense(units, activation="relu", name=f"head_fc{j}")(x)
        if head_dropout:
            x = keras.layers.Dropout(head_dropout, name=f"head_fc{j}_dropout")(x)
    if head_dropout and not head_units:
        x = keras.layers.Dropout(head_dropout, name="head_dropout")(x)
    outputs = classifier(x, num_classes=num_classes, activation="softmax", weight_decay=0.0)
    return keras.Model(inputs, outputs, name=f"{source.name}_transfer")


def check_fits(data: "Dataset | FolderListing", input_shape: tuple[int, int, int]) -> None:
    """Refuse, before training, a target whose images cannot be fitted to ``input_shape``
    (the first training image of a folder stands for the rest)."""
    if isinstance(data, FolderListing):
        data.read_fitted(int(data.splits["train"][0]), input_shape)
    else:
        fit_images(data.x_train[:1], input_shape, what="target data set")


def _check_settings(settings: TransferSettings) -> str:
    if settings.strategy not in STRATEGIES:
        raise TransferError(f"--strategy must be one of {', '.join(STRATEGIES)}, got "
                            f"{settings.strategy!r}")
    chosen = [o for o, v in (("--freeze", settings.freeze),
                             ("--freeze-until", settings.freeze_until),
                             ("--fine-tune-layers", settings.fine_tune_layers)) if v is not None]
    if len(chosen) > 1:
        raise TransferError(f"{' and '.join(chosen)} both say what to freeze; give one")
    if chosen and settings.strategy != "partial":
        raise TransferError(f"{chosen[0]} sets up partial fine-tuning; it cannot be combined "
                            f"with --strategy {settings.strategy}")
    if settings.head_epochs < 1 or settings.fine_tune_epochs < 0:
        raise TransferError("--head-epochs must be >= 1 and --fine-tune-epochs >= 0")
    if not 0.0 <= settings.head_dropout < 1.0:
        raise TransferError(f"--head-dropout must be in [0, 1), got {settings.head_dropout}")
    return settings.strategy


# ---------------------------------------------------------------- the two phases


@contextlib.contextmanager
def distribution_scope(settings: TransferSettings):
    """Start the settings' distribution (``--devices``, processes; if any) and stay in its
    scope: load the source and call ``transfer`` inside it, so that the pretrained variables
    are made on every device (both phases' ``train`` then reuse it)."""
    distribution = start_distribution(distribution_settings(settings))
    if distribution is None:
        yield None
        return
    distribution.check_batch(settings.batch_size)
    with distribution.scope():
        yield distribution


def transfer(source: Source, data: "Dataset | FolderListing", settings: TransferSettings, *,
             dataset: str | None = None, data_dir: str | None = None,
             verbose: int | str = "auto", write_run: bool = True,
             announce: Callable[[str], None] | None = None) -> TransferResult:
    """Train a new head on ``source``'s features (phase 1), then fine-tune (phase 2).

    The run folder is locked (``zoo.core.locks``) for both phases and the files written after
    them; ``transfer_phases`` does the work.

    Args:
        source: the pretrained feature extractor (``load_source``).
        data: the target data set, already loaded, or an image folder listed
            (``zoo.data.inputs.open_source``): decoded to the model's input or streamed.
        settings: strategy, frozen layers, the new head, epochs and learning rates of both
            phases, the training settings, and the run directory (``settings.out``).
        dataset: the target data set's name, recorded in the run's config (default
            ``settings.dataset``).
        data_dir: its tensorflow-datasets data directory, recorded likewise (default
            ``settings.data_dir``).
        verbose: Keras' ``fit`` verbosity.
        write_run: False keeps everything in memory (no run directory).
        announce: called with what a user should read before paying for the run (class
            counts, input size and why, MACs, epoch time; ``zoo.training.train.train``).

    Returns:
        The run directory, the trained model, the history of both phases, the test metrics
        and the strategy chosen, with why.

    Raises:
        TransferError: conflicting settings, or a non-empty run directory.
    """
    if not write_run:
        return transfer_phases(source, data, settings, dataset=dataset, data_dir=data_dir,
                               verbose=verbose, write_run=False, announce=announce)
    if not settings.out:
        settings = replace(settings, out=str(new_run_dir(f"transfer-{source.name}")))
    with folder_lock(settings.out, what="run folder"):
        return transfer_phases(source, data, settings, dataset=dataset, data_dir=data_dir,
                               verbose=verbose, write_run=True, announce=announce)


def transfer_phases(source: Source, data: "Dataset | FolderListing",
                    settings: TransferSettings, *, dataset: str, data_dir: str | None,
                    verbose: int | str, write_run: bool,
                    announce: Callable[[str], None] | None = None) -> TransferResult:
    """``transfer``'s two phases and files, with the run folder already locked."""
    import keras

    strategy = _check_settings(settings)
    reason = "chosen with --strategy"
    if strategy == "auto":
        strategy, reason = choose_strategy(data)
    layers = base_layers(source.base)
    frozen = frozen_layer_count(source.base, settings, strategy)
    keras.utils.set_random_seed(settings.seed)  # the new head's initial weights
    model = build_transfer_model(source, data.num_classes, head_units=settings.head_units,
                                 head_dropout=settings.head_dropout)
    check_fits(data, tuple(model.input_shape[1:]))
    fine_tune = strategy != "head" and settings.fine_tune_epochs > 0 and frozen < len(layers)
    run_dir = Path(settings.out) if settings.out else new_run_dir(f"transfer-{source.name}")
    if write_run and run_dir.exists() and any(p.name != PID_FILE for p in run_dir.iterdir()):
        raise TransferError(f"{run_dir} is not empty; pass another --out or delete it")

    shared = settings_of(settings, epochs=settings.head_epochs)
    shared.update({k: v for k, v in (("dataset", dataset), ("data_dir", data_dir)) if v})
    plan = TrainPlan(model=f"transfer-{source.name}", hparams=source.hparams,
                     out=str(run_dir), **shared)
    set_trainable(source.base, len(layers))
    note = source.input_note or InputNote(f"the {source.kind} source's input")
    head = train(plan, model=model, data=data, verbose=verbose, write_run=write_run,
                 announce=announce, input_note=note)
    result, history = head, dict(head.history)
    fine_tune_lr = (settings.fine_tune_lr if settings.fine_tune_lr is not None
                    else settings.learning_rate * FINE_TUNE_LR_FACTOR)
    if fine_tune:
        model = head.model
        set_trainable(model.get_layer(BASE_NAME), frozen)
        plan2 = replace(plan, epochs=settings.fine_tune_epochs, learning_rate=fine_tune_lr,
                        initial_epoch=settings.head_epochs)
        result = train(plan2, model=model, data=data, verbose=verbose, write_run=write_run,
                       announce=announce, input_note=note)
        history = (result.history if write_run else
                   {k: v + result.history.get(k, []) for k, v in history.items()})
    seconds = head.seconds + (result.seconds if fine_tune else 0.0)
    frozen_names = [layer.name for layer in layers[:frozen if fine_tune else len(layers)]]
    if write_run:
        phases = [{"phase": 1, "name": "head", "epochs": [1, settings.head_epochs],
                   "learning_rate": settings.learning_rate, "frozen": "whole base"}]
        if fine_tune:
            phases.append({"phase": 2, "name": "fine-tune",
                           "epochs": [settings.head_epochs + 1,
                                      settings.head_epochs + settings.fine_tune_epochs],
                           "learning_rate": fine_tune_lr, "frozen_layers": frozen_names,
                           "trainable_layers": [layer.name for layer in layers[frozen:]]})
        config = _read_json(run_dir / CONFIG_FILE)
        config.update(epochs=len(history.get("loss", [])), learning_rate=settings.learning_rate,
                      transfer={"source": source.name, "source_kind": source.kind,
                                "strategy": strategy, "reason": reason,
                                "batch_norm": "frozen (inference mode)",
                                "head_units": list(settings.head_units),
                                "head_dropout": settings.head_dropout, "phases": phases},
                      weights=source.weights)
        write_json_atomic(run_dir / CONFIG_FILE, config)
        _add_phase_column(run_dir / HISTORY_FILE, settings.head_epochs)
        metrics = _read_json(run_dir / METRICS_FILE)
        metrics.update(train_seconds=seconds,
                       head_phase_test_accuracy=head.test_metrics.get("test_accuracy"),
                       kept_phase=_phase_of(result.kept_epoch, settings.head_epochs))
        write_json_atomic(run_dir / METRICS_FILE, metrics)
        history = read_history(run_dir / HISTORY_FILE)
    kept = result.kept_epoch if write_run or not fine_tune else (
        settings.head_epochs + (result.kept_epoch or 0))
    return TransferResult(run_dir, result.model, history, result.test_metrics, strategy, reason,
                          frozen_names, fine_tune, seconds, kept,
                          _phase_of(kept, settings.head_epochs), result.class_metrics)


def _phase_of(epoch: int | None, head_epochs: int) -> str | None:
    """'head' or 'fine-tune': the phase a 1-based epoch of a transfer run belongs to."""
    if epoch is None:
        return None
    return "head" if epoch <= head_epochs else "fine-tune"


def _read_json(path: Path) -> dict[str, Any]:
    import json

    return json.loads(path.read_text()) if path.exists() else {}


def _add_phase_column(path: Path, head_epochs: int) -> None:
    """Mark each history row with its phase (1 head, 2 fine-tune); epochs run on across both."""
    with path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    for row in rows:
        row["phase"] = "1" if int(row["epoch"]) < head_epochs else "2"
    with atomic_write(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

