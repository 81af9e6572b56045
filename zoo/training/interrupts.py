"""SIGTERM handled as Ctrl-C, so that a kill (`timeout`, a scheduler) keeps finished work.

Commands that run children or write results as they go (`zoo tune --workers`,
benchmarks/versus_torch.py) already turn KeyboardInterrupt into "stop the children, write what was
measured, exit non-zero"; inside ``sigterm_as_interrupt`` a SIGTERM takes the same path.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM raises KeyboardInterrupt; the previous handler after it.

    Python delivers signals to the main thread only, so elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
