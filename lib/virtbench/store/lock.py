"""The writer lock of a run folder: ``writer.lock``, held with flock and removed on release.

The file exists only while a process holds it (it holds that process's PID). Removing it
on release is safe against a process that opened it just before: after taking the lock,
the taker checks that the path still names the file it locked, and starts again if not.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from virtbench.store.errors import WriteFailed, write_error
from virtbench.store.schema import LOCK_FILE


def try_lock(run_dir: Path) -> tuple[int | None, str]:
    """Take the writer lock of ``run_dir``: (fd, "") or (None, the holder's PID or
    "unknown") when another process holds it. WriteFailed when the file cannot be made."""
    path = run_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WriteFailed(write_error(path, exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            return None, holder
        mine = os.fstat(fd)
        try:  # still linked (a removed file's inode number may be reused at once)
            named = os.stat(path)
            same = mine.st_nlink > 0 and (mine.st_dev, mine.st_ino) == (named.st_dev,
                                                                         named.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # released and removed by its holder meanwhile: take the new one
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass  # a full disk: the lock holds without the PID in it
    return fd, ""


def unlock(run_dir: Path, fd: int) -> None:
    """Release the lock taken by :func:`try_lock` and remove its file."""
    try:
        (run_dir / LOCK_FILE).unlink(missing_ok=True)
    except OSError:
        pass  # a read-only file system: the next writer takes the same file
    finally:
        os.close(fd)
