"""`--batch-size auto`: the largest power-of-two mini-batch that fits in memory.

The lecture: mini-batches "as high as your computer allows". The estimate, not a probe (a
probe that runs out of GPU memory can leave the device unusable for the rest of the process):

* per image, training keeps every layer's output for the backward pass and needs a gradient of
  the same size: ``2 x sum(layer output elements) x 4 bytes`` (float32), read from the layer
  table of ``zoo.core.layer_table.summarize``, plus the input image itself;
* fixed: weights, their gradients and two Adam moments, ``4 x params x 4 bytes``;
* available: free accelerator memory (JAX's device statistics, or ``nvidia-smi`` under
  TensorFlow), else the host's available memory (``/proc/meminfo`` MemAvailable); only
  ``MEMORY_FRACTION`` of it is used, leaving room for kernels' workspaces and the framework.

The batch is the largest power of two with ``fixed + batch x per_image <= budget``, capped so
that an epoch still has ``MIN_STEPS_PER_EPOCH`` updates and at ``MAX_BATCH``. Memory alone chose
1024 for the digits' 1,259 training images: two updates per epoch, so 30 epochs made only 60
steps; the cap gives 64 there (20 steps per epoch).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recipes.base import RecipeError
from zoo.core.layer_table import summarize
from zoo.core.registry import build
from zoo.training.train import prepare_data, resolve_hparams

if TYPE_CHECKING:
    from zoo.training.train import TrainPlan

BYTES_PER_VALUE = 4  # float32
MEMORY_FRACTION = 0.5
MAX_BATCH = 8192
MIN_STEPS_PER_EPOCH = 16


@dataclass(frozen=True)
class MemoryEstimate:
    """The numbers behind an automatic batch size."""

    per_image_bytes: int
    fixed_bytes: int
    available_bytes: int
    device: str
    train_size: int
    batch_size: int


def available_memory() -> tuple[int, str]:
    """(free bytes, where) on the accelerator training will use, else on the host."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            stats = device.memory_stats() or {}
            if "bytes_limit" in stats:
                return stats["bytes_limit"] - stats.get("bytes_in_use", 0), str(device)
    elif keras.backend.backend() == "tensorflow" and shutil.which("nvidia-smi"):
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                capture_output=True, text=True, check=False).stdout.split()
            if out:
                return int(out[0]) * 2**20, "GPU:0 (nvidia-smi)"
    return _host_available(), "host memory"


def _host_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def estimate_batch_size(plan: "TrainPlan", available_bytes: int | None = None
                        ) -> MemoryEstimate:
    """The memory estimate and the batch size it allows (see the module docstring)."""

    data = prepare_data(plan)
    model = build(plan.model, **resolve_hparams(plan, data))
    summary = summarize(model)
    activations = sum(_elements(row.output_shape) for row in summary.rows)
    input_shape = tuple(model.input_shape[1:])
    per_image = (2 * activations + _elements(input_shape)) * BYTES_PER_VALUE
    fixed = 4 * summary.total_params * BYTES_PER_VALUE
    device = "given"
    if available_bytes is None:
        available_bytes, device = available_memory()
    budget = available_bytes * MEMORY_FRACTION - fixed
    if budget < per_image:
        raise RecipeError(
            f"{plan.model} needs about {fixed / 2**20:.0f} MiB for weights and optimizer state "
            f"plus {per_image / 2**20:.1f} MiB per image, but only "
            f"{available_bytes / 2**20:.0f} MiB are free ({device}); use a smaller model or "
            f"input shape"
        )
    train_size = len(data.x_train)
    batch = 1
    largest = max(1, train_size // MIN_STEPS_PER_EPOCH)
    while (batch * 2 <= MAX_BATCH and batch * 2 <= largest
           and (batch * 2) * per_image <= budget):
        batch *= 2
    return MemoryEstimate(per_image, fixed, available_bytes, device, train_size, batch)


def _elements(shape: tuple) -> int:
    count = 1
    for dim in shape:
        if dim is not None:
            count *= int(dim)
    return count


def auto_batch_size(plan: "TrainPlan") -> int:
    """The largest power-of-two batch that fits the model and input in memory."""
    return estimate_batch_size(plan).batch_size
