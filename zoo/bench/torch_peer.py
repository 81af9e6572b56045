"""The optional PyTorch peer of `zoo bench`: LeNet-5 and vgg_small written in plain PyTorch.

PyTorch is not a dependency (``pip install 'cnn-zoo[torch]'`` adds it); without it, or for a
model nobody wrote here, the benchmark leaves the PyTorch columns empty. The loop is what a
PyTorch user writes: a DataLoader over tensors, Adam, cross-entropy on logits, no metrics.

``zoo bench`` times it in a process of its own (``run_in_own_process``): beside TensorFlow's
thread pools in one process, PyTorch's threads compete with them for the cores, which
slows PyTorch and flatters the zoo.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np


def has_torch() -> bool:
    """Whether PyTorch is installed."""
    return importlib.util.find_spec("torch") is not None


def lenet5(channels: int, height: int, width: int, num_classes: int):
    """LeNet-5 classic (tanh, average pooling) as a torch.nn.Sequential."""
    from torch import nn

    side_h, side_w = ((height - 4) // 2 - 4) // 2, ((width - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * side_h * side_w, 120), nn.Tanh(),
        nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, num_classes),
    )


def vgg_small(channels: int, height: int, width: int, num_classes: int):
    """Three blocks of two 3x3 convs (32-64-128) with max pooling, a 128-unit dense layer."""
    from torch import nn

    layers, inputs = [], channels
    for width_out in (32, 64, 128):
        layers += [nn.Conv2d(inputs, width_out, 3, padding=1), nn.ReLU(),
                   nn.Conv2d(width_out, width_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        inputs = width_out
    return nn.Sequential(
        *layers, nn.Flatten(),
        nn.Linear(128 * (height // 8) * (width // 8), 128), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(128, num_classes),
    )


TORCH_PEERS: dict[str, Callable[..., Any]] = {"lenet5": lenet5, "vgg_small": vgg_small}


class TorchPeer:
    """Trains the PyTorch version of a model one epoch at a time, timing each epoch."""

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                 batch_size: int, seed: int):
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        torch.manual_seed(seed)
        height, width, channels = images.shape[1:]
        x = torch.from_numpy(np.ascontiguousarray(
            images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0))
        y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
        self.loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
        self.model = TORCH_PEERS[name](channels, height, width, num_classes)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.version = torch.__version__
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run_epoch(self) -> None:
        """One epoch over the data; wall and CPU seconds are appended."""
        start, cpu = time.perf_counter(), time.process_time()
        self.model.train()
        for images, labels in self.loader:
            self.optimizer.zero_grad()
            self.loss(self.model(images), labels).backward()
            self.optimizer.step()
        self.wall.append(time.perf_counter() - start)
        self.cpu.append(time.process_time() - cpu)


def torch_peer(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
               batch_size: int, seed: int) -> TorchPeer | None:
    """The PyTorch peer of ``name``, or None without PyTorch or a hand-written version."""
    if name not in TORCH_PEERS or not has_torch():
        return None
    return TorchPeer(name, images, labels, num_classes, batch_size, seed)


def run_in_own_process(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                       batch_size: int, seed: int, epochs: int, work_dir: Path
                       ) -> dict[str, Any] | None:
    """Train the PyTorch peer of ``name`` for ``epochs`` epochs in a fresh Python process.

    Returns the child's report: ``wall`` and ``cpu`` seconds per epoch, ``version``, ``pid``
    and ``tensorflow_loaded`` (False: nothing of TensorFlow shares its cores), or None
    without PyTorch or a hand-written version of ``name``.
    """
    if name not in TORCH_PEERS or not has_torch():
        return None
    data_file = Path(work_dir) / f"torch-peer-{name}.npz"
    np.savez(data_file, images=images, labels=labels)
    command = [sys.executable, "-m", "zoo.bench.torch_peer", name, str(data_file),
               "--classes", str(num_classes), "--batch-size", str(batch_size),
               "--seed", str(seed), "--epochs", str(epochs)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the PyTorch peer of {name} failed in its own process: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the child process: train, then print one JSON line of timings."""
    parser = argparse.ArgumentParser(description="Time the PyTorch peer of a zoo model.")
    parser.add_argument("name", choices=sorted(TORCH_PEERS))
    parser.add_argument("data", help=".npz file with uint8 'images' (N, H, W, C) and 'labels'")
    parser.add_argument("--classes", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, required=True)
    args = parser.parse_args(argv)
    with np.load(args.data) as data:
        images, labels = data["images"], data["labels"]
    peer = TorchPeer(args.name, images, labels, args.classes, args.batch_size, args.seed)
    for _ in range(args.epochs):
        peer.run_epoch()
    print(json.dumps({"version": peer.version, "wall": peer.wall, "cpu": peer.cpu,
                      "pid": os.getpid(), "tensorflow_loaded": "tensorflow" in sys.modules}))


if __name__ == "__main__":
    main()
