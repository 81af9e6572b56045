"""How the worker processes of `zoo tune --workers N` share one machine.

Sharing the machine (``share_machine``): the CPUs this process may use are split between the
workers (each pinned to its own cores, with OMP_NUM_THREADS and TF_NUM_INTRAOP_THREADS set to
their number; more workers than cores share cores round-robin). Visible GPUs are dealt out
round-robin (CUDA_VISIBLE_DEVICES), and the workers on one GPU split ``GPU_MEMORY_SHARE`` of
its memory: JAX allocates on demand (XLA_PYTHON_CLIENT_PREALLOCATE=false) up to its fraction
(XLA_PYTHON_CLIENT_MEM_FRACTION), TensorFlow grows its memory (TF_FORCE_GPU_ALLOW_GROWTH), and
PyTorch caps the process (``torch.cuda.set_per_process_memory_fraction``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Mapping, Sequence

# Of each GPU's memory, what the workers on it share (the rest: the chief, CUDA contexts).
GPU_MEMORY_SHARE = 0.9
# Set for each worker process by the chief: its CPUs, and its GPU memory cap (PyTorch).
CPUS_ENV = "ZOO_TUNE_WORKER_CPUS"
GPU_FRACTION_ENV = "ZOO_TUNE_GPU_MEMORY_FRACTION"
# keras-tuner's role variables: the chief's are not the workers'.
KERASTUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@dataclass(frozen=True)
class WorkerShare:
    """The part of the machine one worker gets."""

    cpus: tuple[int, ...]
    gpu: str | None = None  # its CUDA_VISIBLE_DEVICES entry
    gpu_memory_fraction: float | None = None  # of that GPU's memory

    def describe(self) -> str:
        """'CPUs 0-3, GPU 0 (22 % of its memory)'."""
        cpus = (f"{self.cpus[0]}-{self.cpus[-1]}"
                if len(self.cpus) > 2 and self.cpus == tuple(range(self.cpus[0],
                                                                   self.cpus[-1] + 1))
                else ",".join(map(str, self.cpus)))
        text = f"CPU{'s' if len(self.cpus) > 1 else ''} {cpus}"
        if self.gpu is not None:
            text += f", GPU {self.gpu} ({self.gpu_memory_fraction:.0%} of its memory)"
        return text


def share_machine(workers: int, cpus: Sequence[int], gpus: Sequence[str]) -> list[WorkerShare]:
    """Split ``cpus`` and ``gpus`` between ``workers`` processes.

    Args:
        workers: the number of worker processes.
        cpus: the CPU ids this process may run on.
        gpus: the visible GPUs, as CUDA_VISIBLE_DEVICES entries (empty: none).

    Returns:
        One share per worker: a contiguous block of CPUs each (one CPU round-robin when there
        are more workers than CPUs), GPUs dealt round-robin, each GPU's ``GPU_MEMORY_SHARE``
        split between the workers on it.
    """
    cpus = list(cpus) or [0]
    shares = []
    for k in range(workers):
        if workers <= len(cpus):
            mine = tuple(cpus[k * len(cpus) // workers:(k + 1) * len(cpus) // workers])
        else:
            mine = (cpus[k % len(cpus)],)
        if gpus:
            on_this_gpu = len(range(k % len(gpus), workers, len(gpus)))
            shares.append(WorkerShare(mine, gpus[k % len(gpus)],
                                      round(GPU_MEMORY_SHARE / on_this_gpu, 3)))
        else:
            shares.append(WorkerShare(mine))
    return shares


def worker_environment(share: WorkerShare, base: Mapping[str, str]) -> dict[str, str]:
    """The environment of a worker process with ``share``: ``base`` plus its thread counts,
    CPUs and GPU settings (for every backend: each reads only its own variables)."""
    env = {k: v for k, v in base.items() if k not in KERASTUNER_ENV}
    threads = str(len(share.cpus))
    env.update({"OMP_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads,
                CPUS_ENV: ",".join(map(str, share.cpus)), "PYTHONUNBUFFERED": "1"})
    if share.gpu is not None:
        fraction = f"{share.gpu_memory_fraction:.3f}"
        # JAX reads XLA_CLIENT_MEM_FRACTION (newer) or XLA_PYTHON_CLIENT_MEM_FRACTION (every
        # version) and refuses to start when both are set: keep the one all versions read.
        env.pop("XLA_CLIENT_MEM_FRACTION", None)
        env.update({"CUDA_VISIBLE_DEVICES": share.gpu,
                    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
                    "XLA_PYTHON_CLIENT_MEM_FRACTION": fraction,
                    "TF_FORCE_GPU_ALLOW_GROWTH": "true",
                    GPU_FRACTION_ENV: fraction})
    return env


def available_cpus() -> list[int]:
    """The CPU ids this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def visible_gpus() -> list[str]:
    """The GPUs the active Keras backend sees, as CUDA_VISIBLE_DEVICES entries."""
    import keras

    backend, count = keras.backend.backend(), 0
    if backend == "jax":
        import jax

        count = sum(device.platform == "gpu" for device in jax.devices())
    elif backend == "tensorflow":
        import tensorflow as tf

        count = len(tf.config.list_physical_devices("GPU"))
    elif backend == "torch":
        import torch

        count = torch.cuda.device_count()
    listed = [e.strip() for e in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
              if e.strip()]
    return listed[:count] if len(listed) >= count > 0 else [str(i) for i in range(count)]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at ``host`` now (the system's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
