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
import io
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from virtbench.paths import datasets_dir
from virtbench.store.errors import RunRefused, WriteFailed, write_atomic, write_error
from virtbench.store.lock import try_lock, unlock
from virtbench.store.migrate import ensure_current, write_format
from virtbench.store.reader import load_runs
from virtbench.store.scan import Scan, scan
from virtbench.store.schema import (
    CELLS_FILE,
    COLUMNS,
    CURRENT,
    FAILED_PREFIXES,
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
        self.dir = (root or datasets_dir()) / run_id  # made when the run is first locked
        self.path = self.dir / RESULTS_FILE
        self.force = force
        self._done: set[CellKey] | None = None
        self._scan: Scan | None = None  # what is on disk, kept up to date while locked
        self._lock_fd: int | None = None

    def done(self, experiment: str, variant: str, workload: str, rep: int,
             host: str = "") -> bool:
        """True if this cell is complete and did not fail (in this or an earlier process);
        ``host``: the campaign host that measured it ("" in a single-host run)."""
        if self._done is None:
            if not self.dir.is_dir():
                return False
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
        self._scan = None
        try:
            if recover:
                self._recover()
            yield self
        finally:
            fd, self._lock_fd, self._scan = self._lock_fd, None, None
            if fd is not None:
                unlock(self.dir, fd)

    def _acquire(self) -> None:
        if self.run_id in READ_ONLY_RUNS and not self.force:
            raise RunRefused(f"run {self.run_id!r} is the shipped reference dataset and is "
                             "read-only; choose another --run-id (or --force to write to it)")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WriteFailed(write_error(self.dir, exc)) from exc
        fd, holder = try_lock(self.dir)
        if fd is None:
            raise RunRefused(f"run {self.run_id!r} is being written by another process "
                             f"(PID {holder}, lock in {self.dir}); wait for it to end "
                             "or choose another --run-id")
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
        self._scan = found

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
            size = self.path.stat().st_size if self.path.exists() else 0
            cells = self.dir / CELLS_FILE
            cells_size = cells.stat().st_size if cells.exists() else 0
            kept = len(self._scan.rows) if self._scan else 0
            try:
                self._append(rows, key)
            except (OSError, WriteFailed) as exc:  # a full disk: cut back what was added
                self._scan = None
                self._cut(size, cells_size)
                what = (write_error(Path(exc.filename or self.path), exc)
                        if isinstance(exc, OSError) else str(exc))
                raise WriteFailed(
                    f"{what}; {WriteFailed.INTACT} ({kept} row(s)): free space and run the "
                    "same --run-id again to resume") from exc
            except BaseException:
                self._scan = None  # read again from the file next time
                raise

    def _cut(self, size: int, cells_size: int) -> None:
        """Truncate results.csv and cells.jsonl back to ``size`` and ``cells_size`` bytes
        (what a failed append added; truncating needs no free space)."""
        for path, keep in ((self.path, size), (self.dir / CELLS_FILE, cells_size)):
            try:
                if path.exists() and path.stat().st_size > keep:
                    os.truncate(path, keep)
            except OSError:
                pass  # cut on the next recovery, which reads the records

    def _append(self, rows: Sequence[Row], key: CellKey) -> None:
        found = self._scan = self._scan or scan(self.path)
        earlier = key in found.last()
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            write_format(self.dir)
        with _named(self.path), self.path.open("ab") as fh:
            if new:
                fh.write(_line(dict(zip(COLUMNS, COLUMNS, strict=True))))
            pos = fh.tell()
            for row in rows:  # row by row: a crash may cut a cell, never a cell record
                record = {k: str(v) for k, v in row.as_dict().items()} | {"status": CURRENT}
                text = _line(record)
                fh.write(text)
                found.rows.append(record)
                found.spans.append((pos, pos := pos + len(text)))
            fh.flush()
            os.fsync(fh.fileno())
        record = dict(zip(("experiment", "variant", "workload", "rep"), key[:4], strict=True))
        if key[4]:
            record["host"] = key[4]
        with _named(self.dir / CELLS_FILE), (self.dir / CELLS_FILE).open("a") as fh:
            fh.write(json.dumps({**record, "rows": len(rows)}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        found.cells.append({**record, "rows": len(rows)})
        found.attempt.extend([len(found.cells) - 1] * len(rows))
        found.end = pos
        assert self._done is not None
        if any(row.reason.startswith(FAILED_PREFIXES) for row in rows):
            self._done.discard(key)
        else:
            self._done.add(key)
        if earlier:
            self._mark(found)

    def _mark(self, found: Scan) -> None:
        """Rewrite results.csv (atomically) so each row's status field says what the cells
        say; rows that already do are copied byte for byte. ``found`` follows the file."""
        stale = set(found.stale())
        if not stale:
            return
        data = self.path.read_bytes()
        tail = data[found.end:]  # empty: the writer cut what lies past the last cell
        status = found.status()
        out = bytearray(data[:found.spans[0][0]])
        spans = []
        for i, (start, end) in enumerate(found.spans):
            if i in stale:
                found.rows[i]["status"] = status[i]
                chunk = _line(found.rows[i])
            else:
                chunk = data[start:end]
            spans.append((len(out), len(out) + len(chunk)))
            out += chunk
        found.spans, found.end = spans, len(out)
        write_atomic(self.path, bytes(out + tail))

    def rows(self, history: bool = False) -> pd.DataFrame:
        """This run's rows as a DataFrame (current ones; ``history``: all)."""
        return load_runs([self.run_id], root=self.dir.parent, history=history)


@contextmanager
def _named(path: Path) -> Iterator[None]:
    """An OSError inside names ``path`` (a write's error carries no file name)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


def _line(record: dict[str, str]) -> bytes:
    """One row of results.csv as the csv module writes it (quoted as needed, CRLF)."""
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=COLUMNS).writerow(record)
    return buf.getvalue().encode()
