"""The machine a benchmark ran on (CPU, load, backend, devices, versions) and its matrix-multiply
peak, which turns training FLOPs into a fraction of what the hardware can do."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("keras", "tensorflow", "jax", "jaxlib", "numpy", "torch", "cnn-zoo"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _devices() -> list[str]:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return [f"{d.platform}:{getattr(d, 'device_kind', d)}" for d in jax.devices()]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_logical_devices()]
    return []


def accelerated() -> bool:
    """Whether Keras' backend computes on something other than the CPU."""
    return any(not d.lower().startswith(("cpu", "/device:cpu")) for d in _devices())


def machine_facts() -> dict[str, Any]:
    """CPU, load, backend, devices and package versions of this run."""
    import keras

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_model": _cpu_model(),
        "cpu_count": cpus,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "backend": keras.backend.backend(),
        "devices": _devices(),
        "versions": _versions(),
    }


def measure_matmul_peak(dtype: str = "float32", size: int = 1024, repeats: int = 12,
                        chain: int = 4) -> dict[str, float]:
    """GFLOP/s of ``size`` x ``size`` matrix products with keras.ops on the active backend.

    Each timed call chains ``chain`` products before waiting for the result, so asynchronous
    backends (JAX) are timed on the work, not on dispatch. The best repeat is the peak.
    """
    import keras

    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((size, size), np.float32), dtype=dtype)
    b = keras.ops.convert_to_tensor(rng.standard_normal((size, size), np.float32) / size,
                                    dtype=dtype)
    rates = []
    for i in range(repeats + 2):
        start = time.perf_counter()
        c = a
        for _ in range(chain):
            c = keras.ops.matmul(c, b)
        # float32 on the way out: TensorFlow hands no bfloat16 scalars to NumPy.
        keras.ops.convert_to_numpy(keras.ops.cast(c[0, 0], "float32"))
        if i >= 2:  # the first calls load kernels
            rates.append(2 * size**3 * chain / (time.perf_counter() - start) / 1e9)
    return {"dtype": dtype, "size": size, "peak_gflops": max(rates),
            "median_gflops": statistics.median(rates)}

