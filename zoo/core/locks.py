"""One writer per folder: the exclusive lock every command takes on the run, sweep, search or
export folder it writes.

Two `zoo train --out runs/x` at once used to train into one folder (interleaved history,
HDF5 lock errors, one run taking the other down). ``folder_lock`` takes the kernel's
``flock`` on the folder itself (an ``O_DIRECTORY`` descriptor, so no lock file has to be
created or can be left behind), without waiting: a second command stops at once with
``FolderInUseError`` naming the folder and the holder's process id. The kernel drops a flock
when its process dies, so a folder whose writer was killed (SIGKILL, OOM, power) is taken over
by the next command, which says so (the dead holder's pid file is still there); nothing stale
has to be cleaned by hand.

The holder's process id is written to ``.zoo-lock`` in the folder for the refusal message and
removed when the lock is released (a killed holder's file is overwritten by the next one).
The lock is re-entrant within a process (a transfer holds its run folder while ``train``
writes each phase into it) and is not inherited by subprocesses started with exec: a
``tune --workers`` chief holds its search folder, and its workers, which write trial folders
into it on the chief's behalf, take no lock on it. File systems without flock support
(some network or FUSE mounts) run unlocked, as before.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path
from typing import Iterator

logger = logging.getLogger("zoo.core.locks")

PID_FILE = ".zoo-lock"
# flock errors meaning "this file system cannot lock", not "someone holds it"
UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF, errno.ENOSYS}

_held: dict[str, int] = {}  # this process's locks: real path -> nesting depth


class FolderInUseError(RuntimeError):
    """Another process holds the lock on a folder this command would write."""


def _holder(folder: Path) -> str:
    try:
        pid = int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return "another zoo command (its process id is not recorded)"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:  # the lock outlived its writer: a forked helper still runs
        return (f"a leftover process of zoo command {pid}, which has ended; stop its "
                f"remaining processes")
    except PermissionError:
        pass
    return f"another zoo command (process {pid})"


def _note_taken_over(folder: Path, what: str) -> None:
    """Say so when the lock was left by a command that did not end normally (killed)."""
    try:
        pid = int((folder / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return
    if pid != os.getpid():
        logger.warning(f"{what} {folder} was left locked by zoo command {pid}, which ended "
                       f"without releasing it (killed?); taking it over")


def _created_parents(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` is about to create, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _flock(descriptor: int) -> bool:
    """Take the exclusive lock without waiting: True, or False where the FS cannot lock."""
    import fcntl

    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno in UNSUPPORTED:
            return False
        raise
    return True


@contextlib.contextmanager
def folder_lock(folder: str | Path, *, what: str = "folder") -> Iterator[Path]:
    """Hold the exclusive lock on ``folder`` (created if missing) for the ``with`` block.

    Args:
        folder: the run, sweep, search or export folder about to be written.
        what: how the refusal names it ('run folder', 'search folder', ...).

    Raises:
        FolderInUseError: another process holds it (the message names it and its pid).

    Folders this call created are removed again if they are still empty at the end, so a
    command refused after taking the lock leaves nothing behind.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{what} {folder} is an existing file, not a folder; pass "
                                 f"--out a folder (new or one this command wrote before)")
    key = os.path.realpath(folder)
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    created = _created_parents(folder)
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            locked = _flock(descriptor)
        except BlockingIOError:
            created = []  # the holder's, even if it made them a moment ago
            raise FolderInUseError(
                f"{what} {folder} is in use by {_holder(folder)}; wait for it to finish or "
                f"stop it, or pass another --out") from None
        pid_file = folder / PID_FILE
        if locked:
            _note_taken_over(folder, what)
            with contextlib.suppress(OSError):  # only the message needs it
                pid_file.write_text(f"{os.getpid()}\n")
        _held[key] = 1
        try:
            yield folder
        finally:
            del _held[key]
            if locked:  # before unlocking: never remove the next holder's file
                with contextlib.suppress(OSError):
                    pid_file.unlink()
    finally:
        os.close(descriptor)  # releases the flock
        for path in created:
            try:
                path.rmdir()  # only if still empty
            except OSError:
                break
