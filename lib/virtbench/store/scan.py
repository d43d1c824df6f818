"""Reading a run as it is on disk (current format): the valid rows of complete cells, which
attempt of its cell each row belongs to, its status, and what was left out.

``cells.jsonl`` says which rows are complete: the first N rows of ``results.csv`` where N is
the sum of the recorded cells' rows; rows past them are a cell in flight when a crash came.
A row's status follows from the cells (the last attempt of a key is current, earlier ones
superseded), whatever its ``status`` field says: a crash between appending a cell and
marking the earlier attempt in the file resolves the same way on every load.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from virtbench.store.errors import DatasetError
from virtbench.store.schema import (
    CELLS_FILE,
    COLUMNS,
    CURRENT,
    FAILED_PREFIXES,
    STATUSES,
    SUPERSEDED,
    CellKey,
    cell_key,
)

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


@dataclass
class Scan:
    """What is on disk: the valid rows of complete cells, and what was left out."""

    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    attempt: list[int] = field(default_factory=list)   # index into ``cells`` of each row
    spans: list[tuple[int, int]] = field(default_factory=list)  # bytes of each row
    cells: list[dict] = field(default_factory=list)    # one record per complete cell written
    end: int = 0                                       # bytes of results.csv to keep
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (line, why) left out

    def last(self) -> dict[CellKey, int]:
        """The index of each cell key's last attempt."""
        return {cell_key(c): i for i, c in enumerate(self.cells)}

    def status(self) -> list[str]:
        """Each row's status as the cells say (last attempt current, earlier superseded)."""
        last = self.last()
        return [CURRENT if last[cell_key(self.cells[a])] == a else SUPERSEDED
                for a in self.attempt]

    def resolved(self, history: bool = False) -> list[dict[str, str]]:
        """The current rows (``history``: every row), each with its resolved status."""
        return [{**r, "status": s} for r, s in zip(self.rows, self.status(), strict=True)
                if history or s == CURRENT]

    def stale(self) -> list[int]:
        """Rows whose ``status`` field differs from what the cells say."""
        return [i for i, (r, s) in enumerate(zip(self.rows, self.status(), strict=True))
                if r["status"] != s]

    def done(self) -> set[CellKey]:
        """Cells whose last attempt is complete and did not fail."""
        failed = {self.attempt[i] for i, r in enumerate(self.rows)
                  if r["reason"].startswith(FAILED_PREFIXES)}
        return {k for k, a in self.last().items() if a not in failed}


def records(data: bytes) -> Iterator[tuple[int, int, list[str] | None, str]]:
    """(first line, end offset, fields or None, problem) of each CSV record in ``data``."""
    ends: list[int] = []
    undecodable: set[int] = set()

    def lines() -> Iterator[str]:
        pos = 0
        while pos < len(data):
            newline = data.find(b"\n", pos)
            stop = len(data) if newline < 0 else newline + 1
            ends.append(stop)
            try:
                yield data[pos:stop].decode()
            except UnicodeDecodeError:
                undecodable.add(len(ends))
                yield data[pos:stop].decode(errors="replace")
            pos = stop

    reader = csv.reader(lines())
    first = 1
    while True:
        try:
            fields: list[str] | None = next(reader)
            problem = ""
        except StopIteration:
            return
        except csv.Error as exc:
            fields, problem = None, f"CSV syntax: {exc}"
        last = reader.line_num
        if not problem and any(first <= n <= last for n in undecodable):
            problem = "not UTF-8 text"
        if fields != []:  # a blank line is no record
            yield first, ends[last - 1], fields, problem
        first = last + 1


def check_row(header: list[str], fields: list[str]) -> str:
    """What is wrong with one row ("" if nothing), naming the column."""
    if len(fields) != len(header):
        return f"has {len(fields)} fields, expected {len(header)} ({', '.join(header)})"
    row = dict(zip(header, fields, strict=True))
    for column in ("run_id", "experiment", "variant", "metric"):
        if not row[column]:
            return f"column {column!r}: is empty"
    if not (row["rep"].isascii() and row["rep"].isdigit()):
        return f"column 'rep': {row['rep']!r} is not a non-negative integer"
    if row["warmup"] not in ("0", "1"):
        return f"column 'warmup': {row['warmup']!r} is not 0 or 1"
    if row["value"]:
        try:
            float(row["value"])
        except ValueError:
            return f"column 'value': {row['value']!r} is not a number (or empty)"
    try:
        if not _TIMESTAMP.match(row["timestamp"]):
            raise ValueError
        datetime.fromisoformat(row["timestamp"])
    except ValueError:
        return f"column 'timestamp': {row['timestamp']!r} is not an ISO 8601 time with zone"
    started = row.get("started", "")
    if started and not _TIMESTAMP.match(started):
        return f"column 'started': {started!r} is not an ISO 8601 time with zone (or empty)"
    if row.get("status") not in ("", None, *STATUSES):  # "": not marked yet (the cells say)
        return f"column 'status': {row['status']!r} is not {' or '.join(STATUSES)} (or empty)"
    return ""


def read_cells(path: Path, strict: bool) -> list[dict]:
    """The complete-cell records of ``cells.jsonl``; a torn last line is no record."""
    out: list[dict] = []
    lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            cell_key(record)
            record["rows"] = int(record["rows"])
            if record["rows"] < 1:
                raise ValueError("rows must be 1 or more")
        except (ValueError, KeyError, TypeError) as exc:
            if strict:
                raise DatasetError(f"{path}:{n}: not a cell record ({exc}); run "
                                   f"`virtbench repair {path.parent.name}`") from None
            continue
        out.append(record)
    return out


def read_bytes(path: Path) -> bytes:
    """The bytes of a run's file (b"" when it does not exist); DatasetError if unreadable."""
    try:
        return path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from exc


def scan(path: Path, strict: bool = True) -> Scan:
    """Read ``results.csv`` and ``cells.jsonl`` of the current format; strict: a malformed
    row is a DatasetError."""
    repair_hint = f"; run `virtbench repair {path.parent.name}` to drop it"
    data = read_bytes(path)
    cells_path = path.with_name(CELLS_FILE)
    rows = list(records(data))
    if data and not cells_path.exists() and strict:
        raise DatasetError(f"{path}: {cells_path.name} is missing, so no cell is known to be "
                           f"complete; run `virtbench repair {path.parent.name}`")
    cells = read_cells(cells_path, strict)
    incomplete = f"incomplete cell (not recorded in {CELLS_FILE})"
    if not cells:  # nothing complete yet, not even the header
        return Scan(header=list(COLUMNS), dropped=[(r[0], incomplete) for r in rows[1:]])
    if not rows:
        raise DatasetError(f"{path}: missing, but {cells_path} records cells{repair_hint}")
    _line, header_end, header, problem = rows.pop(0)
    if header is None or problem:
        raise DatasetError(f"{path}:1: cannot read the header: {problem}")
    if header != list(COLUMNS):
        raise DatasetError(f"{path}: the header is not that of the store format: expected "
                           f"{', '.join(COLUMNS)}; got {', '.join(header)}")
    out = Scan(header=header, end=header_end, cells=cells)
    bounds = list(itertools.accumulate(c["rows"] for c in cells))
    committed = bounds[-1]
    if committed > len(rows):
        if strict:
            raise DatasetError(f"{path}: cut short: {cells_path} records {committed} rows, "
                               f"the file has {len(rows)}{repair_hint}")
        committed = len(rows)
    start = header_end
    for i, (line, end, fields, problem) in enumerate(rows):
        span, start = (start, end), end
        if i >= committed:
            out.dropped.append((line, incomplete))
            continue
        out.end = end
        problem = problem or check_row(header, fields or [])
        if problem:
            if strict:
                raise DatasetError(f"{path}:{line}: {problem}{repair_hint}")
            out.dropped.append((line, problem))
            continue
        out.rows.append(dict(zip(header, fields or [], strict=True)))
        out.attempt.append(bisect.bisect_right(bounds, i))
        out.spans.append(span)
    return out
