"""In memory or streamed: which input path a run takes, and why.

A set whose images, decoded at the model's input size, fit the memory budget (a quarter of the
memory available when the run starts, unless set) is decoded once into arrays: the fastest path
for small sets. A larger image folder streams (``zoo.data.stream``). ``stream`` / ``in-memory``
force either. Only image folders stream; the other sources (digits, imported sets, tfds) are
arrays already.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from zoo.data.dataset import DataError

MODES = ("auto", "stream", "in-memory")
BUDGET_SHARE = 0.25  # of the memory available when the run starts


@dataclass(frozen=True)
class InputChoice:
    """The path taken (``streamed``), in words (``reason``), with the figures behind it."""

    streamed: bool
    reason: str
    mode: str
    images: int
    decoded_bytes: int
    budget_bytes: int

    @property
    def path(self) -> str:
        """'stream' or 'in-memory'."""
        return "stream" if self.streamed else "in-memory"

    def config(self) -> dict:
        """The choice as written to a run's config.json."""
        return {"path": self.path, **asdict(self)}

    def line(self) -> str:
        """The first line a run prints about its input."""
        return f"input: {self.path} ({self.reason})"


def available_memory() -> int:
    """Bytes of memory available to new allocations (Linux MemAvailable, else total)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_budget(budget: float | None = None) -> int:
    """The budget in bytes: ``budget`` when given, else a quarter of the available memory."""
    if budget is not None:
        if not (isinstance(budget, (int, float)) and budget > 0 and math.isfinite(budget)):
            raise DataError(f"the memory budget must be a positive number of bytes, got "
                            f"{budget!r}")
        return int(budget)
    return int(available_memory() * BUDGET_SHARE)


def _size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def choose_input(images: int, shape: tuple[int, int, int], *, mode: str = "auto",
                 budget: float | None = None, streamable: bool = True,
                 what: str = "the data set") -> InputChoice:
    """Whether ``images`` images of ``shape`` (H, W, C) stream, under ``mode``.

    Raises DataError for an unknown mode, or ``stream`` asked of a source that cannot stream.
    """
    if mode not in MODES:
        raise DataError(f"unknown input mode {mode!r}; use one of {', '.join(MODES)}")
    decoded = images * math.prod(int(d) for d in shape)
    limit = memory_budget(budget)
    figures = (f"{images:,} images at {'x'.join(map(str, shape))} decode to {_size(decoded)}, "
               f"budget {_size(limit)}" + ("" if budget is not None else
                                           " = a quarter of available memory"))

    def made(streamed: bool, reason: str) -> InputChoice:
        return InputChoice(streamed, reason, mode, images, decoded, limit)

    if mode == "stream":
        if not streamable:
            raise DataError(f"{what} cannot stream: only image folders and tfds sets "
                            f"prepared as ArrayRecord (tfds build --file_format "
                            f"array_record) stream; drop --stream")
        return made(True, f"--stream asked; {figures}")
    if mode == "in-memory":
        return made(False, f"--in-memory asked; {figures}")
    if not streamable:
        return made(False, f"{what} is held as arrays, not an image folder; {figures}")
    if decoded > limit:
        return made(True, f"{figures}: over the budget")
    return made(False, f"{figures}: within the budget")
