"""The writer of one run: append-only, flushed per cell, resumable, one process at a time.

A *cell* is one repetition of one experiment on one variant and workload (and host, in a
campaign). Its rows are appended to ``results.csv`` and then its record to ``cells.jsonl``,
each on disk before the next step. A cell measured again (a retried failure, or
``--remeasure``) supersedes its earlier attempt: once the new rows and record are on disk,
``results.csv`` is rewritten atomically with the earlier rows marked ``superseded``. A crash
before that rewrite leaves them marked ``current`` in the file, but the cells say which
attempt is last, so every load reads the same rows, and the next writer marks them.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from virtbench.paths import datasets_dir
from virtbench.store.errors import RunRefused, write_atomic
from virtbench.store.migrate import ensure_current, write_format
from virtbench.store.reader import load_runs
from virtbench.store.scan import Scan, scan
from virtbench.store.schema import (
    CELLS_FILE,
    COLUMNS,
    CURRENT,
    FAILED_PREFIXES,
    LOCK_FILE,
    READ_ONLY_RUNS,
    RESULTS_FILE,
    CellKey,
    Row,
    check_run_id,
)


class RunStore:
    """The rows of one run on disk; append-only, resumable, one writer at a time."""

    def __init__(self, run_id: str, root: Path | None = None, *, force: bool = False) -> None:
        self.run_id = check_run_id(run_id)
        self.dir = (root or datasets_dir()) / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS_FILE
        self.force = force
        self._done: set[CellKey] | None = None
        self._keys: set[CellKey] = set()  # every cell with an attempt on disk
        self._lock_fd: int | None = None

    def done(self, experiment: str, variant: str, workload: str, rep: int,
             host: str = "") -> bool:
        """True if this cell is complete and did not fail (in this or an earlier process);
        ``host``: the campaign host that measured it ("" in a single-host run)."""
        if self._done is None:
            ensure_current(self.dir, locked=self._lock_fd is not None)
            self._done = scan(self.path).done()
        return (experiment, variant, workload, rep, host) in self._done

    @contextmanager
    def locked(self, recover: bool = True) -> Iterator[RunStore]:
        """Hold the run's writer lock (re-entrant); a second process gets RunRefused.

        On taking it, an older format is migrated, a torn tail or an incomplete cell is cut
        off and rows of superseded attempts still marked current are marked (unless
        ``recover`` is False), and the completed cells are read again.
        """
        if self._lock_fd is not None:
            yield self
            return
        self._acquire()
        try:
            if recover:
                self._recover()
            yield self
        finally:
            fd, self._lock_fd = self._lock_fd, None
            if fd is not None:
                os.ftruncate(fd, 0)
                os.close(fd)

    def _acquire(self) -> None:
        if self.run_id in READ_ONLY_RUNS and not self.force:
            raise RunRefused(f"run {self.run_id!r} is the shipped reference dataset and is "
                             "read-only; choose another --run-id (or --force to write to it)")
        fd = os.open(self.dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunRefused(f"run {self.run_id!r} is being written by another process "
                             f"(PID {holder}, lock {self.dir / LOCK_FILE}); wait for it to end "
                             "or choose another --run-id") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _recover(self) -> None:
        """Migrate an older format; cut results back to the last complete cell; make sure
        cells.jsonl can be appended; mark superseded rows the file still calls current."""
        ensure_current(self.dir, locked=True)
        found = scan(self.path)
        cells = self.dir / CELLS_FILE
        if self.path.exists() and self.path.stat().st_size > found.end:
            with self.path.open("r+b") as fh:
                fh.truncate(found.end)
                os.fsync(fh.fileno())
        raw = cells.read_bytes() if cells.exists() else None
        if raw and not raw.endswith(b"\n"):
            write_atomic(cells, "".join(json.dumps(c) + "\n" for c in found.cells))
        self._mark(found)
        self._done = found.done()
        self._keys = set(found.last())

    def write_cell(self, rows: Sequence[Row], cell: CellKey | None = None) -> None:
        """Append the rows of one cell, then its end record; both on disk before returning.
        An earlier attempt of the same cell is then marked superseded in the file.

        ``cell`` is the runner's key of the cell (default: that of the first row); without
        a host it is the first row's host.
        """
        if not rows:
            return
        r = rows[0]
        key = tuple(cell or (r.experiment, r.variant, r.workload, r.rep))
        key = key if len(key) == 5 else (*key, r.host)
        with self.locked():
            new = not self.path.exists() or self.path.stat().st_size == 0
            if new:
                write_format(self.dir)
            with self.path.open("a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=COLUMNS)
                if new:
                    writer.writeheader()
                for row in rows:
                    writer.writerow({**row.as_dict(), "status": CURRENT})
                fh.flush()
                os.fsync(fh.fileno())
            record = dict(zip(("experiment", "variant", "workload", "rep"), key[:4], strict=True))
            if key[4]:
                record["host"] = key[4]
            with (self.dir / CELLS_FILE).open("a") as fh:
                fh.write(json.dumps({**record, "rows": len(rows)}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            assert self._done is not None
            if any(row.reason.startswith(FAILED_PREFIXES) for row in rows):
                self._done.discard(key)
            else:
                self._done.add(key)
            if key in self._keys:
                self._mark(scan(self.path))
            self._keys.add(key)

    def _mark(self, found: Scan) -> None:
        """Rewrite results.csv (atomically) so each row's status field says what the cells
        say; rows that already do are copied byte for byte."""
        stale = set(found.stale())
        if not stale:
            return
        data = self.path.read_bytes()
        status = found.status()
        out = io.BytesIO()
        out.write(data[:found.spans[0][0]] if found.spans else data)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=found.header)
        for i, (start, end) in enumerate(found.spans):
            if i in stale:
                text.seek(0)
                text.truncate()
                writer.writerow({**found.rows[i], "status": status[i]})
                out.write(text.getvalue().encode())
            else:
                out.write(data[start:end])
        out.write(data[found.end:])
        write_atomic(self.path, out.getvalue())

    def rows(self, history: bool = False) -> pd.DataFrame:
        """This run's rows as a DataFrame (current ones; ``history``: all)."""
        return load_runs([self.run_id], root=self.dir.parent, history=history)

