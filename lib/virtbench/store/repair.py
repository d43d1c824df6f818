"""Rewrite a damaged run keeping every valid row of every complete cell."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from virtbench.store.errors import DatasetError, write_atomic
from virtbench.store.migrate import ensure_current
from virtbench.store.scan import scan
from virtbench.store.schema import CELLS_FILE, FORMAT_FILE
from virtbench.store.writer import RunStore


@dataclass(frozen=True)
class RepairReport:
    """What ``repair`` kept and what it dropped (line of results.csv, why)."""

    path: Path
    kept: int
    dropped: list[tuple[int, str]]


def repair(run_id: str, root: Path | None = None, *, force: bool = False,
           dry_run: bool = False) -> RepairReport:
    """Rewrite a run keeping every valid row of every complete cell; report what was dropped.
    A run in an older format is migrated, dropping what cannot be read. ``dry_run``: only
    report what would be kept and dropped (a run in the current format), writing nothing."""
    store = RunStore(run_id, root, force=force)
    if not store.path.exists():
        raise DatasetError(f"no dataset {store.path}")
    if dry_run:
        found = scan(store.path, strict=False)
        return RepairReport(store.path, len(found.rows), found.dropped)
    with store.locked(recover=False):
        if not (store.dir / CELLS_FILE).exists():  # cells are inferred as for format 1
            (store.dir / FORMAT_FILE).unlink(missing_ok=True)
        migrated = ensure_current(store.dir, locked=True, strict=False)
        if migrated is not None:
            return RepairReport(store.path, migrated.rows, migrated.dropped)
        found = scan(store.path, strict=False)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(found.header)
        cells: list[dict] = []
        for i, row in enumerate(found.rows):
            writer.writerow([row[c] for c in found.header])
            if i == 0 or found.attempt[i] != found.attempt[i - 1]:
                cells.append({**found.cells[found.attempt[i]], "rows": 0})
            cells[-1]["rows"] += 1
        write_atomic(store.dir / CELLS_FILE, "".join(json.dumps(c) + "\n" for c in cells))
        write_atomic(store.path, buf.getvalue())
    return RepairReport(store.path, len(found.rows), found.dropped)
