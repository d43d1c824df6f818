"""The store's errors and its atomic file write (a leaf: imports nothing from virtbench)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file (and line and column)."""


class RunRefused(RuntimeError):
    """A run that may not be written now: another writer holds it, another host, read-only."""


def write_atomic(path: Path, text: str | bytes) -> None:
    """Replace ``path`` with ``text`` via a unique temporary file in the same folder: the
    file is either the old one or the new one, and the new one is on disk on return."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        data = text.encode() if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # readable like the run's other files (mkstemp makes it 0600)
        os.replace(tmp, path)
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
