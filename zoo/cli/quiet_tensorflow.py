"""Keep TensorFlow's start-up lines off a practitioner's terminal (shown again with --debug).

Importing TensorFlow 2.21 prints, from C++ and before Python sees anything, three lines, twice
(once per native library that initialises absl logging): absl's "All log messages before
absl::InitializeLog() ..." warning, oneDNN's round-off notice and cudart_stub's "Could not find
cuda drivers". absl writes them before TensorFlow reads TF_CPP_MIN_LOG_LEVEL, so even level 3
shows them. The only place to catch them is file descriptor 2 while the import runs:
``hide_tensorflow_start_up`` installs an import hook that, on the first import of tensorflow
(from Keras, tf.data or the zoo, wherever it happens), points fd 2 at a temporary file, then
writes back every captured line except informational and warning start-up lines. Errors
(glog ``E``/``F`` lines) and anything else, such as Python warnings or a failed import's own
output, still reach the terminal. It also sets TF_CPP_MIN_LOG_LEVEL=2 unless the user chose a
level, which hides TensorFlow's later informational lines (e.g. "Local rendezvous is aborting
with status: OUT_OF_RANGE" after each tf.data epoch) and keeps its errors.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile

QUIET_LOG_LEVEL = "2"  # TensorFlow's C++ levels: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR
# glog/absl lines: severity letter, MMDD, time, thread, file:line] message; TensorFlow 2.21's
# time reads 00:00:<epoch seconds>
START_UP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    r"STDERR|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] .*)$")


def without_start_up_noise(text: str) -> str:
    """``text`` less TensorFlow's informational and warning start-up lines (errors stay)."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not START_UP_NOISE.match(line.rstrip("\n")))


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader with fd 2 captured, then replays what was not noise."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietFinder)]
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as captured:
            os.dup2(captured.fileno(), 2)
            try:
                self._loader.exec_module(module)
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                captured.seek(0)
                kept = without_start_up_noise(captured.read().decode(errors="replace"))
                if kept:
                    sys.stderr.write(kept)
                    sys.stderr.flush()

    def __getattr__(self, name):  # resources, get_code, ...: the wrapped loader's
        return getattr(self._loader, name)


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds tensorflow with the other finders and wraps its loader in ``_QuietLoader``.

    It stays installed until tensorflow is imported: ``importlib.util.find_spec`` (asking
    whether TensorFlow is installed) calls finders too without importing anything.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def hide_tensorflow_start_up() -> None:
    """Hide TensorFlow's start-up lines from the next import of tensorflow in this process."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", QUIET_LOG_LEVEL)
    if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        return
    try:
        os.fstat(2)
    except OSError:  # no standard error to capture
        return
    sys.meta_path.insert(0, _QuietFinder())
