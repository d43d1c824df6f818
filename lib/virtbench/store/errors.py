"""The store's errors and its atomic file write (a leaf: imports nothing from virtbench)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file (and line and column)."""


class RunRefused(RuntimeError):
    """A run that may not be written now: another writer holds it, another host, read-only."""


class WriteFailed(RuntimeError):
    """A file of a run could not be written (a full disk, a read-only file system, ...); the
    message names the path, the error and the free space of its file system."""

    #: the message already says that the rows written before are intact
    INTACT = "the rows written before are intact"

    def resumable(self) -> WriteFailed:
        """This error saying that the rows written before are intact and how to resume."""
        if self.INTACT in str(self):
            return self
        return WriteFailed(f"{self}; {self.INTACT}: free space and run the same --run-id "
                           "again to resume")


def free_space(path: Path) -> str:
    """"N MiB free of M MiB" on the file system of ``path`` (or of its nearest existing
    parent), or why that is unknown."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError as exc:
        return f"free space unknown: {exc.strerror}"
    mib = 1 << 20
    return (f"{st.f_bavail * st.f_frsize / mib:.2f} MiB free of "
            f"{st.f_blocks * st.f_frsize / mib:.2f} MiB")


def write_error(path: Path, exc: OSError) -> str:
    """One line on a failed write: the path, the error and the free space there."""
    return (f"cannot write {path}: {exc.strerror or exc} ({free_space(path)} on its "
            "file system)")


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` via a unique temporary file in the same folder: the
    file is either the old one or the new one, and the new one is on disk on return."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise WriteFailed(write_error(path, exc)) from exc
    try:
        data = text.encode() if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # readable like the run's other files (mkstemp makes it 0600)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise WriteFailed(write_error(path, exc)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
