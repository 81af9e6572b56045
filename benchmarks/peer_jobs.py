"""What the processes of benchmarks/versus_torch.py share: the job file each side reads, the
result lines it appends, how a side is started, and the search for the largest batch that fits
(both sides train on ``zoo.bench.run.random_images``).

Each framework trains in a process of its own, one after the other, so each has the
accelerator's memory and the machine's cores to itself (JAX keeps the memory it reserved
until its process ends). Result lines are appended and flushed as each configuration
finishes: a side that is killed or crashes keeps what it measured. Importing this module
starts no framework.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The checkout holding the benchmarks package: the sides run as `python -m benchmarks.NAME`.
ROOT = Path(__file__).resolve().parents[1]
# How each side is fed: "host" = the framework's usual input path from uint8 arrays in host
# memory; "device" = the whole data set on the device, batches indexed there (upper bound).
FEEDINGS = ("host", "device")
# Keras dtype policies the PyTorch peer has a counterpart for (float32; autocast bfloat16).
PEER_POLICIES = ("float32", "mixed_bfloat16")
# The matmul peaks each side measures, and the product's size: 8192^3 on an accelerator (large
# enough to reach a GPU's bf16 peak), 1024^3 on a CPU; the spec's "peak_size" overrides it.
# Both sides use the same size, since the report compares against the better of their peaks.
PEAK_DTYPES = ("bfloat16", "float32")


def peak_size(spec: dict[str, Any], accelerated: bool) -> int:
    """The side of the square matmul whose speed is the peak, for ``spec``'s side."""
    return spec.get("peak_size") or (8192 if accelerated else 1024)


def peak_dtypes(spec: dict[str, Any]) -> tuple[str, ...]:
    """The dtypes whose matmul peak ``spec``'s side measures (none after the first model)."""
    return PEAK_DTYPES if spec.get("measure_peak", True) else ()


# Messages of an exhausted accelerator: PyTorch's CUDA allocator, cuDNN/cuBLAS workspaces,
# XLA (JAX) and TensorFlow.
_OUT_OF_MEMORY = ("out of memory", "resource_exhausted", "alloc_failed", "oom when allocating")


def registry_macs(model: str, input_shape) -> int | None:
    """The registry's MACs of ``model`` at its own input shape (None at another)."""
    from zoo.core.registry import get_model_info

    info = get_model_info(model)
    return info.macs if tuple(input_shape) == tuple(info.input_shape) else None


def batch_candidates(largest: int) -> list[int]:
    """Batch sizes to try, largest first: ``largest``, then steps of 3/4 and 2/3 (256, 192,
    128, 96, 64, 48, 32, ...), at most ten, so an out-of-memory search ends after ten tries."""
    sizes, size = [], largest
    while size >= 1 and len(sizes) < 10:
        sizes.append(size)
        size = size * 3 // 4 if size & (size - 1) == 0 else size * 2 // 3
    return sizes


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the accelerator (or host) ran out of memory."""
    text = f"{type(error).__name__}: {error}".lower()
    return any(marker in text for marker in _OUT_OF_MEMORY)


def largest_batch_that_fits(candidates: list[int], attempt: Callable[[int], Any],
                            release: Callable[[], None] = lambda: None
                            ) -> tuple[int, Any, list[int]]:
    """(batch, attempt's result, batches that ran out of memory): ``attempt(batch)`` for each
    candidate, largest first, until one does not run out of memory.

    ``release`` runs after each failed try (free the framework's cached memory). Errors other
    than running out of memory propagate; so does the last one when no candidate fits.
    """
    failed = []
    for i, batch in enumerate(candidates):
        try:
            return batch, attempt(batch), failed
        except Exception as error:  # noqa: BLE001 - only memory errors are retried
            if not is_out_of_memory(error) or i == len(candidates) - 1:
                raise
        failed.append(batch)
        release()  # outside the except block: the traceback no longer holds the try's arrays
    raise ValueError("no batch sizes to try")


def error_text(error: BaseException) -> str:
    """One line naming an error, for a result line."""
    first = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {first}"[:300]


def report_row(side: str, row: dict[str, Any]) -> None:
    """Print one finished configuration to stderr (the sides' progress while they run)."""
    what = (row["error"] if "error" in row else
            f"batch {row['batch_size']} x {row['steps']} steps, epochs "
            f"{', '.join(f'{s:.3f}' for s in row['wall'])} s")
    print(f"{side} {row['model']} {row['dtype_policy']} {row['feeding']}: {what}",
          file=sys.stderr, flush=True)


def append_result(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``path`` and flush it to disk."""
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(record) + "\n")
        out.flush()


def read_results(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``path`` (none if it does not exist)."""
    if not Path(path).exists():
        return []
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut off by a kill
            pass
    return records


def child_command(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter and its -S (no site-packages) flag,
    so a child sees the same packages as its parent (run it with ``child_env``)."""
    flags = ["-S"] if sys.flags.no_site else []
    return [sys.executable, *flags, "-m", module, *args]


def child_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's environment) with the checkout first on PYTHONPATH,
    so that a child finds ``benchmarks`` from any working directory."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env
