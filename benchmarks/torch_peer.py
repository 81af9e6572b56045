"""The PyTorch peer of the zoo's models: the zoo's models in plain PyTorch (``torch_models``),
trained with the loop a PyTorch user writes (Adam, cross-entropy on logits, no metrics), each
epoch timed.

How the peer is fed (``feeding``):
- ``"float"``: a DataLoader over float32 tensors converted on the host (the CPU benchmark's
  peer, as a CPU user writes it);
- ``"host"``: a DataLoader over uint8 tensors, one indexed gather per batch
  (``BatchSampler`` as the sampler, the DataLoader's batched-loading idiom for in-memory
  tensors), pinned memory and worker processes with CUDA, non-blocking copies, cast and
  scaled on the device: 4x less host-to-device traffic than float32;
- ``"device"``: the whole data set on the device as float32, batches indexed there: no input
  cost at all, the upper bound.

Precision (``dtype_policy``, named as Keras names it): ``"float32"``, with TF32 tensor-core
math for matmuls as for convolutions on GPUs (``set_float32_matmul_precision("high")``; JAX's
default precision does the same, so both sides do the same arithmetic), or
``"mixed_bfloat16"``: ``torch.autocast`` to bfloat16 with the model and batches in
``channels_last``. cuDNN's benchmark mode is on with CUDA. ``training_device`` and
``precision_settings`` hold these rules; benchmarks/time_to_accuracy_torch.py uses them too,
so both GPU comparisons run PyTorch alike. Timing synchronizes the device at
both ends of an epoch; CUDA kernels run asynchronously, and the time to queue them says
nothing.

The benchmarks time the peer in a process of its own (``run_in_own_process``, ``run_jobs``):
beside TensorFlow's or JAX's thread pools and memory in one process, PyTorch's would compete
with them, which slows PyTorch and flatters the zoo.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.peer_jobs import (
    PEER_POLICIES,
    append_result,
    child_command,
    child_env,
    error_text,
    largest_batch_that_fits,
    peak_dtypes,
    peak_size,
    report_row,
)
from benchmarks.torch_models import TORCH_PEERS, build_torch_peer
from zoo.bench.run import random_images

TORCH_FEEDINGS = ("float", "host", "device")


def has_torch() -> bool:
    """Whether PyTorch is installed."""
    return importlib.util.find_spec("torch") is not None


def default_device() -> str:
    """'cuda' when PyTorch sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def training_device(device: str | None = None):
    """The torch.device to train on (``device``, or a GPU when PyTorch sees one), set up as
    the zoo's GPU comparisons run PyTorch: on CUDA, cuDNN's benchmark mode and TF32 tensor
    cores for float32 matmuls (``set_float32_matmul_precision("high")``; cuDNN's
    convolutions use TF32 by default), the precision JAX uses by default on GPUs.

    Args:
        device: ``"cuda"``, ``"cpu"``, ...; None: ``default_device()``.
    """
    import torch

    device = torch.device(device or default_device())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    return device


def precision_settings(dtype_policy: str):
    """(memory format, autocast dtype or None) of a Keras dtype policy: mixed_bfloat16 runs
    under ``torch.autocast`` to bfloat16 with the model and batches in channels_last; float32
    without autocast, in the contiguous format.

    Args:
        dtype_policy: ``"float32"`` or ``"mixed_bfloat16"``.
    """
    import torch

    if dtype_policy not in PEER_POLICIES:
        raise ValueError(f"the PyTorch peer runs {' or '.join(PEER_POLICIES)}, "
                         f"got {dtype_policy!r}")
    if dtype_policy == "mixed_bfloat16":
        return torch.channels_last, torch.bfloat16
    return torch.contiguous_format, None


def synchronize(device) -> None:
    """Wait until every kernel queued on ``device`` has finished (no-op on the CPU)."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


class _DeviceBatches:
    """Shuffled batches of tensors already on the device, indexed there."""

    def __init__(self, images, labels, batch_size: int):
        self.images, self.labels, self.batch_size = images, labels, batch_size

    def __iter__(self):
        import torch

        order = torch.randperm(len(self.images), device=self.images.device)
        for start in range(0, len(order), self.batch_size):
            picks = order[start:start + self.batch_size]
            yield self.images[picks], self.labels[picks]


class TorchPeer:
    """Trains the PyTorch peer of a model one epoch at a time, timing each epoch.

    Args:
        name: a model of ``TORCH_PEERS``.
        images: uint8 (N, H, W, C) training images.
        labels: integer labels.
        num_classes: outputs of the last layer.
        batch_size: images per step.
        seed: torch's seed (weights, shuffling).
        feeding: ``"float"``, ``"host"`` or ``"device"`` (see the module's docstring).
        dtype_policy: ``"float32"`` or ``"mixed_bfloat16"``.
        device: ``"cuda"``, ``"cpu"``, ...; None: a GPU when PyTorch sees one.
        loader_workers: DataLoader worker processes for the host feedings.
    """

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                 batch_size: int, seed: int, *, feeding: str = "float",
                 dtype_policy: str = "float32", device: str | None = None,
                 loader_workers: int = 0):
        import torch

        if feeding not in TORCH_FEEDINGS:
            raise ValueError(f"feeding must be one of {', '.join(TORCH_FEEDINGS)}, "
                             f"got {feeding!r}")
        self.memory_format, self.autocast_dtype = precision_settings(dtype_policy)
        torch.manual_seed(seed)
        self.device = training_device(device)
        self.feeding = feeding
        self.model = build_torch_peer(name, images.shape[1:], num_classes).to(
            self.device, memory_format=self.memory_format)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.loss = torch.nn.CrossEntropyLoss()
        self.batches = self._batches(images, labels, batch_size, loader_workers)
        self.version = torch.__version__
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def _batches(self, images: np.ndarray, labels: np.ndarray, batch_size: int, workers: int):
        import torch
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

        y = torch.from_numpy(np.array(labels, dtype=np.int64))
        if self.feeding == "float":
            x = torch.from_numpy(np.ascontiguousarray(
                images.astype(np.float32).transpose(0, 3, 1, 2) / 255.0))
            return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
        x = torch.from_numpy(np.array(images.transpose(0, 3, 1, 2), order="C"))  # uint8 NCHW
        if self.feeding == "device":
            x = x.to(self.device).to(torch.float32, memory_format=self.memory_format) / 255.0
            return _DeviceBatches(x, y.to(self.device), batch_size)
        data = TensorDataset(x, y)
        batches = BatchSampler(RandomSampler(data), batch_size, drop_last=False)
        return DataLoader(data, sampler=batches, batch_size=None,
                          pin_memory=self.device.type == "cuda", num_workers=workers,
                          persistent_workers=workers > 0)

    def _on_device(self, images, labels):
        """A batch as the model takes it: on the device, float [0, 1], in its memory format."""
        import torch

        if self.feeding == "device":
            return images, labels
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking)
        labels = labels.to(self.device, non_blocking=non_blocking)
        if images.dtype == torch.uint8:
            images = images.to(torch.float32, memory_format=self.memory_format).div_(255.0)
        else:
            images = images.contiguous(memory_format=self.memory_format)
        return images, labels

    def step(self, images, labels) -> None:
        """One training step on a batch already on the device."""
        import torch

        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype,
                            enabled=self.autocast_dtype is not None):
            loss = self.loss(self.model(images), labels)
        loss.backward()
        self.optimizer.step()

    def run_epoch(self) -> None:
        """One epoch over the data; its wall and CPU seconds are appended."""
        synchronize(self.device)
        start, cpu = time.perf_counter(), time.process_time()
        self.model.train()
        for images, labels in self.batches:
            self.step(*self._on_device(images, labels))
        synchronize(self.device)
        self.wall.append(time.perf_counter() - start)
        self.cpu.append(time.process_time() - cpu)


def torch_peer(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
               batch_size: int, seed: int, **options: Any) -> TorchPeer | None:
    """The PyTorch peer of ``name`` (``options`` as TorchPeer takes them), or None without
    PyTorch or a hand-written version."""
    if name not in TORCH_PEERS or not has_torch():
        return None
    return TorchPeer(name, images, labels, num_classes, batch_size, seed, **options)


def matmul_peak(size: int, dtype: str = "bfloat16", device: str | None = None,
                repeats: int = 10, chain: int = 4) -> dict[str, Any]:
    """GFLOP/s of ``size``³ products with ``torch.matmul``: best and median of ``repeats``
    timed calls, each ``chain`` products between two device synchronizations."""
    import torch

    device = torch.device(device or default_device())
    generator = torch.Generator(device=device).manual_seed(0)  # drawn on the device: fast
    a = torch.randn(size, size, generator=generator, device=device).to(getattr(torch, dtype))
    b = (torch.randn(size, size, generator=generator, device=device) / size).to(a.dtype)
    rates = []
    for i in range(repeats + 2):  # the first calls pick and load kernels
        synchronize(device)
        start = time.perf_counter()
        c = a
        for _ in range(chain):
            c = torch.matmul(c, b)
        synchronize(device)
        if i >= 2:
            rates.append(2 * size**3 * chain / (time.perf_counter() - start) / 1e9)
    return {"dtype": dtype, "size": size, "peak_gflops": max(rates),
            "median_gflops": statistics.median(rates), "library": "torch.matmul"}


def _release_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _timed_configuration(job: dict[str, Any], policy: str, feeding: str, batch: int,
                         steps: int, spec: dict[str, Any], device: str) -> list[float]:
    """Wall seconds of each epoch (warm-up first) of one model/precision/feeding at ``batch``."""
    images, labels = random_images(job["input_shape"], job["num_classes"], batch * steps,
                                   spec["seed"])
    peer = TorchPeer(job["model"], images, labels, job["num_classes"], batch, spec["seed"],
                     feeding=feeding, dtype_policy=policy, device=device,
                     loader_workers=spec["loader_workers"])
    for _ in range(1 + spec["repeats"]):
        peer.run_epoch()
    return peer.wall


def run_jobs(spec: dict[str, Any], results: Path) -> None:
    """Time every configuration of ``spec`` (written by benchmarks/versus_torch.py), appending
    one JSON line per configuration to ``results``: its facts, the matmul peak, then rows."""
    import torch

    device = spec.get("device") or default_device()
    if spec.get("loader_workers") is None:
        # Worker processes overlap gathering and pinning batches with the GPU's work; on a
        # CPU they would take cores from the training itself.
        spec = {**spec, "loader_workers": min(4, os.cpu_count() or 1) if device == "cuda" else 0}
    name = torch.cuda.get_device_name(device) if device == "cuda" else "cpu"
    append_result(results, {"kind": "facts", "side": "torch", "version": torch.__version__,
                            "device": name, "pid": os.getpid(),
                            "loader_workers": spec["loader_workers"],
                            "cudnn_benchmark": device == "cuda",
                            "float32_matmul_precision": "high" if device == "cuda" else
                            torch.get_float32_matmul_precision()})
    size = peak_size(spec, device == "cuda")
    for dtype in peak_dtypes(spec):
        append_result(results, {"kind": "peak", "side": "torch",
                                **matmul_peak(size, dtype, device)})
    for job in spec["jobs"]:
        for policy in job["dtype_policies"]:
            for feeding in job["feedings"]:
                row = {"kind": "row", "side": "torch", "model": job["model"],
                       "dtype_policy": policy, "feeding": feeding, "steps": job["steps"],
                       "input_shape": job["input_shape"]}
                try:
                    batch, wall, failed = largest_batch_that_fits(
                        job["batch_sizes"],
                        lambda b: _timed_configuration(job, policy, feeding, b, job["steps"],
                                                       spec, device),
                        _release_memory)
                    row.update(batch_size=batch, wall=wall, out_of_memory=failed)
                except Exception as error:  # noqa: BLE001 - recorded; the other rows go on
                    row.update(error=error_text(error))
                _release_memory()
                append_result(results, row)
                report_row("PyTorch", row)
    append_result(results, {"kind": "done", "side": "torch",
                            "tensorflow_loaded": "tensorflow" in sys.modules})


def run_in_own_process(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int,
                       batch_size: int, seed: int, epochs: int, work_dir: Path,
                       dtype_policy: str = "float32") -> dict[str, Any] | None:
    """Train the PyTorch peer of ``name`` (float feeding) for ``epochs`` epochs in a fresh
    Python process: the CPU benchmark's peer.

    Args:
        name, images, labels, num_classes, batch_size, seed: as TorchPeer takes them.
        epochs: epochs to train and time.
        work_dir: where the images are handed to the child (an .npz file).
        dtype_policy: the zoo's policy; ``"mixed_bfloat16"`` runs the peer under autocast.

    Returns the child's report: ``wall`` and ``cpu`` seconds per epoch, ``version``, ``pid``,
    ``dtype_policy`` and ``tensorflow_loaded`` (False: nothing of TensorFlow shares its
    cores), or None without PyTorch, a hand-written version of ``name``, or a PyTorch
    counterpart of ``dtype_policy`` (mixed_float16 needs a GPU's loss scaling).
    """
    if name not in TORCH_PEERS or not has_torch() or dtype_policy not in PEER_POLICIES:
        return None
    data_file = Path(work_dir) / f"torch-peer-{name}.npz"
    np.savez(data_file, images=images, labels=labels)
    command = child_command("benchmarks.torch_peer", "epochs", name, str(data_file),
                            "--classes", str(num_classes), "--batch-size", str(batch_size),
                            "--seed", str(seed), "--epochs", str(epochs),
                            "--dtype-policy", dtype_policy)
    done = subprocess.run(command, capture_output=True, text=True, check=False,
                          env=child_env())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the PyTorch peer of {name} failed in its own process: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the child process.

    ``epochs NAME DATA ...``: train one peer on an .npz file, print one JSON line of timings.
    ``jobs SPEC RESULTS``: run a benchmarks/versus_torch.py job file (``run_jobs``).
    """
    parser = argparse.ArgumentParser(description="Time the PyTorch peer of a zoo model.")
    modes = parser.add_subparsers(dest="mode", required=True)
    epochs = modes.add_parser("epochs", help="train one peer, print its epoch timings")
    epochs.add_argument("name", choices=sorted(TORCH_PEERS))
    epochs.add_argument("data", help=".npz file with uint8 'images' (N, H, W, C) and 'labels'")
    epochs.add_argument("--classes", type=int, required=True)
    epochs.add_argument("--batch-size", type=int, required=True)
    epochs.add_argument("--seed", type=int, default=0)
    epochs.add_argument("--epochs", type=int, required=True)
    epochs.add_argument("--dtype-policy", choices=PEER_POLICIES, default="float32")
    jobs = modes.add_parser("jobs", help="run a job file of benchmarks/versus_torch.py")
    jobs.add_argument("spec", help="the job file (JSON)")
    jobs.add_argument("results", help="JSON-lines file the results are appended to")
    args = parser.parse_args(argv)
    if args.mode == "jobs":
        run_jobs(json.loads(Path(args.spec).read_text()), Path(args.results))
        return
    with np.load(args.data) as data:
        images, labels = data["images"], data["labels"]
    # The CPU benchmark's peer ran on the CPU before GPUs were compared; it still does.
    peer = TorchPeer(args.name, images, labels, args.classes, args.batch_size, args.seed,
                     dtype_policy=args.dtype_policy, device="cpu")
    for _ in range(args.epochs):
        peer.run_epoch()
    print(json.dumps({"version": peer.version, "wall": peer.wall, "cpu": peer.cpu,
                      "pid": os.getpid(), "dtype_policy": args.dtype_policy,
                      "tensorflow_loaded": "tensorflow" in sys.modules}))


if __name__ == "__main__":
    main()
