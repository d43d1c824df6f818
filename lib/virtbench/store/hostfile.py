"""Reading and writing a run's ``host.json`` (the provenance :mod:`virtbench.host` collects)."""

from __future__ import annotations

import json
from pathlib import Path

from virtbench.store.errors import DatasetError, write_atomic
from virtbench.store.schema import HOST_FILE


def read_host_json(run_dir: Path) -> dict:
    """A run's ``host.json`` ({} when there is none); an unreadable one is a DatasetError
    naming the file."""
    path = run_dir / HOST_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def write_host_json_file(run_dir: Path, data: dict) -> Path:
    """Replace a run's ``host.json`` with ``data`` atomically."""
    path = run_dir / HOST_FILE
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path
