"""The PyTorch peer's training for benchmarks/time_to_accuracy.py: the zoo's recipe written
the way a PyTorch user writes it, with Keras' defaults where the two frameworks differ
(initialisation, Adam's epsilon, batch norm's epsilon and momentum), augmentation on the
device. Device, precision (TF32 float32 matmuls on CUDA, as JAX's default) and memory format
follow benchmarks/versus_torch.py's peer (``benchmarks.torch_peer``). Imported by the child
process only, so the parent never imports PyTorch."""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np


def train_to_target(task, data, start: float, emit: Callable[..., None]) -> None:
    """Train the task's PyTorch peer on ``data`` (fitted to the model, test split in), report
    each epoch's test accuracy through ``emit`` and stop at the task's target.

    Args:
        task: a time_to_accuracy.Task (model, recipe settings, target, epochs).
        data: the task's Dataset, images already at the model's input shape.
        start: the clock's zero (time.time() just before this process was started).
        emit: prints one report line (keyword arguments as JSON).
    """
    import torch
    from torch.nn import functional
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

    from benchmarks.torch_models import build_torch_peer
    from benchmarks.torch_peer import precision_settings, training_device

    torch.manual_seed(task.seed)
    device = training_device()
    cuda = device.type == "cuda"
    memory_format, autocast_dtype = precision_settings(task.dtype_policy)
    images = torch.from_numpy(np.ascontiguousarray(data.x_train.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(data.y_train.astype(np.int64))
    # One indexed gather per batch (the sampler yields index lists), not one per image.
    loader = DataLoader(TensorDataset(images, labels), batch_size=None, pin_memory=cuda,
                        sampler=BatchSampler(RandomSampler(images), task.batch_size, False))
    test_images = torch.from_numpy(np.ascontiguousarray(
        data.x_test.transpose(0, 3, 1, 2))).to(device)
    test_labels = torch.from_numpy(data.y_test.astype(np.int64)).to(device)
    model = build_torch_peer(task.model, task.input_shape, data.num_classes,
                             normalization="batch" if task.batch_norm else "none")
    keras_initialisation(model)
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=task.learning_rate, eps=1e-7)
    total_steps = task.epochs * len(loader)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total_steps)
                                                    / total_steps)))
    emit(event="ready", seconds=time.time() - start, versions={"torch": torch.__version__},
         device=torch.cuda.get_device_name(device) if cuda else "cpu")
    for epoch in range(1, task.epochs + 1):
        model.train()
        for batch, batch_labels in loader:
            batch = batch.to(device, non_blocking=True).float().div_(255.0)
            batch_labels = batch_labels.to(device, non_blocking=True)
            batch = augment(batch, task.augmentation).contiguous(memory_format=memory_format)
            with torch.autocast(device.type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                loss = functional.cross_entropy(model(batch), batch_labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        accuracy = accuracy_on(model, test_images, test_labels, autocast_dtype)
        emit(event="epoch", epoch=epoch, test_accuracy=accuracy, seconds=time.time() - start)
        if accuracy >= task.target:
            return


def keras_initialisation(model) -> None:
    """Glorot-uniform kernels and zero biases, as Keras initialises Conv2D and Dense."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def accuracy_on(model, images, labels, autocast_dtype=None, batch_size: int = 256) -> float:
    """Top-1 accuracy on uint8 images already on the device, in inference mode (under
    autocast to ``autocast_dtype`` if given)."""
    import torch

    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    with torch.no_grad(), torch.autocast(images.device.type, dtype=autocast_dtype,
                                         enabled=autocast_dtype is not None):
        for i in range(0, len(images), batch_size):
            logits = model(images[i:i + batch_size].float() / 255.0)
            correct += (logits.argmax(1) == labels[i:i + batch_size]).sum()
    return correct.item() / len(images)


def augment(images, spec):
    """Keras' augmentation layers' transforms on a float NCHW batch on the device.

    ``spec`` holds the strengths of time_to_accuracy.Augmentation. Per image, as Keras draws
    them: a horizontal flip with probability 1/2, a rotation by up to
    ``rotation`` of a full turn, a zoom by a factor in [1 - zoom, 1 + zoom], a shift by up to
    ``translate`` of each side (bilinear, zeros shifted in), then a brightness offset of up to
    ``brightness`` and a contrast factor in [1 - contrast, 1 + contrast] about each channel's
    mean, both clipped to [0, 1].
    """
    import torch
    from torch.nn import functional

    count, device = images.shape[0], images.device

    def uniform(half_width: float):
        return (torch.rand(count, device=device) * 2 - 1) * half_width

    if spec.flip:
        flipped = torch.rand(count, device=device) < 0.5
        images = torch.where(flipped[:, None, None, None], images.flip(3), images)
    if spec.rotation or spec.zoom or spec.translate:
        angle, scale = uniform(spec.rotation * 2 * math.pi), 1 + uniform(spec.zoom)
        # affine_grid maps output to input coordinates in [-1, 1]: a shift of f of the side
        # is 2f there.
        theta = torch.stack([
            torch.stack([scale * torch.cos(angle), -scale * torch.sin(angle),
                         uniform(2 * spec.translate)], 1),
            torch.stack([scale * torch.sin(angle), scale * torch.cos(angle),
                         uniform(2 * spec.translate)], 1)], 1)
        grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
        images = functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                        align_corners=False)
    if spec.brightness:
        images = (images + uniform(spec.brightness)[:, None, None, None]).clamp(0, 1)
    if spec.contrast:
        mean = images.mean(dim=(2, 3), keepdim=True)
        factor = 1 + uniform(spec.contrast)[:, None, None, None]
        images = ((images - mean) * factor + mean).clamp(0, 1)
    return images
