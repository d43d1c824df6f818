"""Rewrite a damaged run keeping every valid row, with ``cells.jsonl`` derived from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from virtbench.paths import datasets_dir
from virtbench.store.errors import DatasetError
from virtbench.store.migrate import ensure_current, write_scan
from virtbench.store.scan import scan
from virtbench.store.schema import CELLS_FILE, FORMAT_FILE, RESULTS_FILE, check_run_id
from virtbench.store.writer import RunStore


@dataclass(frozen=True)
class RepairReport:
    """What ``repair`` kept and what it dropped: (line of results.csv, why), and what it did
    to the cells (``notes``: records derived, dropped, or cells to measure again)."""

    path: Path
    kept: int
    dropped: list[tuple[int, str]]
    notes: list[str] = field(default_factory=list)


def repair(run_id: str, root: Path | None = None, *, force: bool = False,
           dry_run: bool = False) -> RepairReport:
    """Rewrite a run keeping every valid row; ``cells.jsonl`` is derived from the rows where
    it is damaged or disagrees with them, and a cell that lost rows is measured again on the
    next run. A run in an older format is migrated, dropping what cannot be read.
    ``dry_run``: only report what would be kept and dropped, writing nothing. A run that
    does not exist is a DatasetError (and no folder is made for it)."""
    run_dir = (root or datasets_dir()) / check_run_id(run_id)
    if not (run_dir / RESULTS_FILE).is_file():
        raise DatasetError(f"no dataset {run_dir / RESULTS_FILE}")
    store = RunStore(run_id, root, force=force)
    if dry_run:
        found = scan(store.path, strict=False)
        return RepairReport(store.path, len(found.rows), found.dropped, found.notes)
    with store.locked(recover=False):
        if not (store.dir / CELLS_FILE).exists():  # cells are inferred as for format 1
            (store.dir / FORMAT_FILE).unlink(missing_ok=True)
        migrated = ensure_current(store.dir, locked=True, strict=False)
        if migrated is not None:
            return RepairReport(store.path, migrated.rows, migrated.dropped, migrated.notes)
        found = scan(store.path, strict=False)
        write_scan(store.dir, found)
    return RepairReport(store.path, len(found.rows), found.dropped, found.notes)
