"""The CLI's one error funnel: every error a user can cause becomes one line and exit status 1.

Library code raises exceptions whose message names the input, what is wrong and what to do
(``DataError``, ``TrainingError``, ...). Errors from the operating system, Pillow, TensorFlow and
missing packages carry no such advice, so ``one_line`` adds it here, in one place, from the
error's kind (an ``OSError``'s errno, Pillow's decompression-bomb limit, a missing module). A
traceback is printed only with ``zoo --debug`` or ``ZOO_DEBUG=1``.
"""

from __future__ import annotations

import errno
import os
import re

# The zoo's own errors and the standard ones its library functions raise with a full message.
USER_ERRORS = (ValueError, KeyError, RuntimeError, MemoryError)

# What to do about each operating-system failure; the path and the system's words come first.
ERRNO_ADVICE = {
    errno.EROFS: "the file system is read-only; pass --out on a writable disk",
    errno.ENOSPC: "the disk is full; free some space or pass --out on another disk, then "
                  "run the command again",
    errno.EDQUOT: "the disk quota is exceeded; free some space or pass --out elsewhere",
    errno.EACCES: "permission denied; pass --out in a folder you can write, or fix the "
                  "permissions",
    errno.EPERM: "operation not permitted; pass --out in a folder you own",
    errno.EEXIST: "it already exists (another zoo command may have created it just now); "
                  "run the command again or choose another name",
    errno.ENOTEMPTY: "it already exists (another zoo command may have created it just now); "
                     "run the command again or choose another name",
    errno.ENOENT: "no such file or folder; check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "it is a folder where a file was expected; check the path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and run again",
    errno.EIO: "input/output error from the disk; check the device",
}
# The same failures inside the zoo's cache ($ZOO_HOME), which no --out moves.
CACHE_ADVICE = {
    errno.EROFS: "the zoo's cache is on a read-only disk; set ZOO_HOME to a writable folder",
    errno.EACCES: "the zoo's cache is not writable for you; set ZOO_HOME to a folder you own",
    errno.EPERM: "the zoo's cache is not writable for you; set ZOO_HOME to a folder you own",
    errno.ENOSPC: "the disk holding the zoo's cache is full; free some space or set ZOO_HOME "
                  "to a folder on another disk",
}
# h5py and TensorFlow report the system's errno inside their message text.
ERRNO_IN_TEXT = re.compile(r"errno\s*=\s*(\d+)")


def debug_requested(flag: bool = False) -> bool:
    """Whether tracebacks should be shown: ``--debug`` or ``ZOO_DEBUG`` set to anything but 0."""
    return flag or os.environ.get("ZOO_DEBUG", "") not in ("", "0")


def _first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else ""


def _in_zoo_home(filename) -> bool:
    if not filename:
        return False
    from zoo.data.cache import zoo_home

    home = os.path.realpath(zoo_home())
    return os.path.realpath(str(filename)).startswith(home + os.sep)


def _os_error_line(err: OSError) -> str:
    if err.errno is None:
        found = ERRNO_IN_TEXT.search(str(err))
        if found and int(found.group(1)) in ERRNO_ADVICE:  # h5py, TensorFlow
            return f"{_first_line(err)}: {ERRNO_ADVICE[int(found.group(1))]}"
        # Raised by the zoo (or a library) with its own message: that message is the advice.
        return f"{type(err).__name__}: {_first_line(err)}"
    path = err.filename or ""
    if err.filename2:
        path = f"{path} -> {err.filename2}"
    what = err.strerror or os.strerror(err.errno)
    advice = ERRNO_ADVICE.get(err.errno, "check the path and the disk")
    if err.errno in CACHE_ADVICE and _in_zoo_home(err.filename):
        advice = CACHE_ADVICE[err.errno]  # no --out moves the cache
    code = errno.errorcode.get(err.errno, err.errno)
    return f"{str(path) + ': ' if path else ''}{what} ({code}): {advice}"


def one_line(err: BaseException) -> str | None:
    """The one-line message for an anticipated error, or None for a bug in the zoo."""
    kind = type(err)
    names = {cls.__name__ for cls in kind.__mro__}
    if "DecompressionBombError" in names:  # Pillow's limit on image size; not an OSError
        return (f"{_first_line(err)} Pillow refuses images this large to protect memory; "
                f"remove the image, or shrink it")
    if isinstance(err, ImportError):
        missing = getattr(err, "name", None)
        hint = f"pip install {missing}" if missing else "check the installation"
        return f"a required package is missing or broken ({_first_line(err)}); {hint}"
    if isinstance(err, OSError):
        return _os_error_line(err)
    if kind.__module__.startswith("tensorflow") and "OpError" in names:
        return f"TensorFlow: {_first_line(getattr(err, 'message', err))}"
    if isinstance(err, USER_ERRORS):
        message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
        return f"{kind.__name__}: {_first_line(message)}"
    return None


def unexpected_line(err: BaseException) -> str:
    """The one line shown for an error the zoo did not anticipate (a bug to report)."""
    return (f"unexpected {type(err).__name__}: {_first_line(err)} (this is a bug in cnn-zoo; "
            f"rerun with --debug or ZOO_DEBUG=1 to see the traceback)")
