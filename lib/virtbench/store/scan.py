"""Reading a run as it is on disk (current format): the valid rows of complete cells, which
attempt of its cell each row belongs to, its status, and what was left out.

``cells.jsonl`` says which cells are complete; each row is tied to its record by its own
keys (:mod:`.pairing`), so a garbled line of either file costs that line and no other. Rows
past the last recorded cell are a cell in flight when a crash came. A record whose cell
lost rows (``"complete": false``, written by repair) keeps its rows until the cell is
measured again. A row's status follows from the cells (the last attempt of a key is
current, earlier ones superseded), whatever its ``status`` field says: a crash between
appending a cell and marking the earlier attempt in the file resolves the same way on every
load.

A lenient scan (``strict=False``, what repair uses) reads through damage: a line that is
not a valid row is left out alone (reading resumes on the next line), a record whose rows
are gone is left out, and a cell whose record is lost or garbled gets one derived from its
rows; :attr:`Scan.notes` says what was done to the cells.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from virtbench.store.errors import DatasetError
from virtbench.store.pairing import pair, record_key, row_key
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
    notes: list[str] = field(default_factory=list)  # what a lenient scan did to the cells

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
        """Cells whose last attempt is complete (no row lost) and did not fail."""
        failed = {self.attempt[i] for i, r in enumerate(self.rows)
                  if r["reason"].startswith(FAILED_PREFIXES)}
        failed |= {i for i, c in enumerate(self.cells) if c.get("complete", True) is False}
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
    return read_cell_lines(path, strict)[0]


def read_cell_lines(path: Path, strict: bool
                    ) -> tuple[list[dict], list[int], list[tuple[int, str]]]:
    """The records of ``cells.jsonl``, the line of each, and the (line, why) of lines that
    are no record (strict: a DatasetError instead). A torn last line is no record."""
    out: list[dict] = []
    numbers: list[int] = []
    bad: list[tuple[int, str]] = []
    lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            cell_key(record)
            record["rows"] = int(record["rows"])
            if record["rows"] < 1:
                raise ValueError("rows must be 1 or more")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if strict:
                raise DatasetError(f"{path}:{n}: not a cell record ({exc}); run "
                                   f"`virtbench repair {path.parent.name}`") from None
            bad.append((n, f"not a cell record ({exc})"))
            continue
        out.append(record)
        numbers.append(n)
    return out, numbers, bad


def read_bytes(path: Path) -> bytes:
    """The bytes of a run's file (b"" when it does not exist); DatasetError if unreadable."""
    try:
        return path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from exc


#: The most lines one row may span (quoted fields with line breaks); a garbled line with an
#: unmatched quote is not read further than this.
MAX_SPAN = 64


def parse(data: bytes, start: int, line: int, check: Callable[[list[str]], str]
          ) -> Iterator[tuple[int, int, int, list[str] | None, str]]:
    """(first line, start, end offset, fields, problem) of each record of ``data`` from byte
    ``start`` (line number ``line``). A record with a problem (CSV syntax, not UTF-8, or what
    ``check`` says) that spans several lines is given up for its first line alone and
    reading resumes on the next line: an unmatched quote costs one line, not the rows after
    it."""
    while start < len(data):
        lines: list[bytes] = []
        ends: list[int] = []
        pos, inside = start, False
        while pos < len(data) and len(lines) < MAX_SPAN:
            newline = data.find(b"\n", pos)
            stop = len(data) if newline < 0 else newline + 1
            lines.append(data[pos:stop])
            ends.append(stop)
            pos = stop
            inside ^= lines[-1].count(b'"') % 2 == 1
            if not inside:
                break
        fields, problem, used = _one_record(lines, check)
        if problem and used > 1:  # resynchronise: give up the first line only
            fields, problem, used = _one_record(lines[:1], check)
            if lines[0].count(b'"') % 2:
                problem = f"an unmatched quote ({problem or 'it runs into the next lines'})"
        if fields != []:  # a blank line is no record
            yield line, start, ends[used - 1], fields, problem
        start, line = ends[used - 1], line + used


def _one_record(lines: list[bytes], check: Callable[[list[str]], str]
                ) -> tuple[list[str] | None, str, int]:
    """(fields, problem, lines used) of the first record in ``lines``."""
    try:
        text = [x.decode() for x in lines]
        problem = ""
    except UnicodeDecodeError:
        text = [x.decode(errors="replace") for x in lines]
        problem = "not UTF-8 text"
    reader = csv.reader(iter(text))
    try:
        fields: list[str] | None = next(reader)
    except StopIteration:
        return [], "", len(lines)
    except csv.Error as exc:
        return None, f"CSV syntax: {exc}", max(reader.line_num, 1)
    used = max(reader.line_num, 1)
    if problem or fields == []:
        return fields, problem, used
    return fields, check(fields or []), used


def scan(path: Path, strict: bool = True, data: bytes | None = None,
         problems: dict[int, str] | None = None) -> Scan:
    """Read ``results.csv`` and ``cells.jsonl`` of the current format; strict: a malformed
    row, or rows and records that disagree, is a DatasetError naming the file and line.
    ``data``: the bytes to read as ``path`` (a migration's upgraded rows), else the file's;
    ``problems``: line -> why, for lines known to be unreadable (as the older format read
    them)."""
    repair_hint = f"; run `virtbench repair {path.parent.name}`"
    data = read_bytes(path) if data is None else data
    cells_path = path.with_name(CELLS_FILE)
    if data and not cells_path.exists() and strict:
        raise DatasetError(f"{path}: {cells_path.name} is missing, so no cell is known to be "
                           f"complete; run `virtbench repair {path.parent.name}`")
    records, numbers, bad_cells = read_cell_lines(cells_path, strict)
    if not data:
        if records and strict:
            raise DatasetError(f"{path}: missing, but {cells_path} records cells{repair_hint}")
        return Scan(header=list(COLUMNS), notes=[
            f"{cells_path}:{n}: no valid row of this cell is left" for n in numbers])
    header_end = data.find(b"\n") + 1 or len(data)
    try:
        header = next(csv.reader([data[:header_end].decode()]))
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        if strict:
            raise DatasetError(f"{path}:1: cannot read the header: {exc}{repair_hint}"
                               ) from None
        header = []
    if header != list(COLUMNS):
        if strict:
            raise DatasetError(f"{path}: the header is not that of the store format: expected "
                               f"{', '.join(COLUMNS)}; got {', '.join(header)}{repair_hint}")
        header, header_end = list(COLUMNS), 0  # a damaged header: read as the first line
    valid: list[dict[str, str]] = []
    where: list[tuple[int, int, int]] = []   # line, start, end of each valid row
    invalid: list[tuple[int, int, str]] = []  # line, start, why
    for line, start, end, fields, problem in parse(data, header_end, 1 + (header_end > 0),
                                                   lambda f: check_row(header, f)):
        if problem:
            invalid.append((line, start, (problems or {}).get(line, problem)))
        else:
            valid.append(dict(zip(header, fields or [], strict=True)))
            where.append((line, start, end))
    owner = pair(records, valid)
    return _resolve(path, header, header_end, records, numbers, bad_cells, valid, where,
                    invalid, owner, strict)


def _describe(record: dict) -> str:
    experiment, variant, workload, rep, host = record_key(record)
    return (f"{experiment} {variant} {workload} rep {rep}" + (f" on {host}" if host else ""))


def _resolve(path: Path, header: list[str], header_end: int, records: list[dict],
             numbers: list[int], bad_cells: list[tuple[int, str]],
             valid: list[dict[str, str]], where: list[tuple[int, int, int]],
             invalid: list[tuple[int, int, str]], owner: list[int | None],
             strict: bool) -> Scan:
    """The Scan of paired rows: records checked against their rows, lost records derived,
    the tail after the last recorded cell cut."""
    cells_path = path.with_name(CELLS_FILE)
    hint = f"; run `virtbench repair {path.parent.name}`"
    owned = [i for i, who in enumerate(owner) if who is not None]
    end = where[owned[-1]][2] if owned else header_end
    incomplete = f"incomplete cell (not recorded in {CELLS_FILE})"
    out = Scan(header=header, end=end if owned else 0)
    for n, why in bad_cells:
        out.notes.append(f"{cells_path}:{n}: {why}: its cell is derived from its rows")
    for line, start, why in invalid:
        if start >= end and not bad_cells:
            out.dropped.append((line, incomplete))
        elif strict:
            raise DatasetError(f"{path}:{line}: {why}{hint} to drop it")
        else:
            out.dropped.append((line, why))
    rows_of: dict[int, list[int]] = {}
    for i, who in enumerate(owner):
        if who is not None:
            rows_of.setdefault(who, []).append(i)
    chosen: list[tuple[int, dict, list[int]]] = []  # first row, record, its rows
    for r, record in enumerate(records):
        mine = rows_of.get(r, [])
        at = f"{cells_path}:{numbers[r]}"
        if not mine:
            if strict:
                raise DatasetError(f"{at}: no row of cell {_describe(record)} is in {path.name}"
                                   f"{hint}")
            out.notes.append(f"{at}: no valid row of cell {_describe(record)} is left: "
                             "dropped, measured again on the next run")
            continue
        if len(mine) != record["rows"]:
            if strict:
                raise DatasetError(f"{at}: cell {_describe(record)} records {record['rows']} "
                                   f"rows, {path.name} has {len(mine)} of them{hint}")
            if len(mine) < record["rows"]:
                lost = record["rows"] - len(mine) + int(record.get("lost", 0))
                record = {**record, "complete": False, "lost": lost}
                out.notes.append(f"{at}: cell {_describe(record)} lost {lost} row(s): its "
                                 f"{len(mine)} other row(s) kept, measured again on the next "
                                 "run")
            else:
                out.notes.append(f"{at}: cell {_describe(record)} has {len(mine)} rows, "
                                 f"{record['rows']} recorded: recorded as {len(mine)}")
            record = {**record, "rows": len(mine)}
        chosen.append((mine[0], record, mine))
    tail = end if not bad_cells else None  # a lost record may be the last one
    for j, who in enumerate(owner):
        if who is not None:
            continue
        line = where[j][0]
        if tail is not None and where[j][1] >= tail:
            out.dropped.append((line, incomplete))
            continue
        if strict:
            raise DatasetError(f"{path}:{line}: a row of cell {_describe(_as_record(valid[j]))} "
                               f"that {CELLS_FILE} does not record{hint}")
        if chosen and chosen[-1][2][-1] == j - 1 and chosen[-1][1].get("_derived") and \
                row_key(valid[j - 1]) == row_key(valid[j]) and \
                all(valid[j - 1][c] == valid[j][c] for c in ("started", "timestamp")):
            chosen[-1][2].append(j)
            chosen[-1][1]["rows"] += 1
            continue
        record = {**_as_record(valid[j]), "rows": 1, "_derived": True}
        chosen.append((j, record, [j]))
    chosen.sort(key=lambda c: c[0])
    if chosen and chosen[-1][1].get("_derived") and where[chosen[-1][0]][1] >= end:
        # the last cell, with no record after the others: it may have been cut short (an
        # earlier one was complete: the writer went on to the next cell)
        chosen[-1][1]["complete"] = False
    for _first, record, mine in chosen:
        if record.pop("_derived", False):
            out.notes.append(f"{path}:{where[mine[0]][0]}: cell {_describe(record)} "
                             f"({record['rows']} row(s)) had no record in {CELLS_FILE}: "
                             "derived from its rows"
                             + (", measured again on the next run (it may be incomplete)"
                                if record.get("complete") is False else ""))
        out.cells.append(record)
        for i in mine:
            out.rows.append(valid[i])
            out.attempt.append(len(out.cells) - 1)
            out.spans.append(where[i][1:])
    order = sorted(range(len(out.rows)), key=lambda k: out.spans[k][0])
    out.rows = [out.rows[k] for k in order]
    out.attempt = [out.attempt[k] for k in order]
    out.spans = [out.spans[k] for k in order]
    return out


def _as_record(row: dict[str, str]) -> dict:
    """The cell record a row names (its own workload)."""
    experiment, variant, workload, rep, host = row_key(row)
    record: dict = {"experiment": experiment, "variant": variant, "workload": workload,
                    "rep": rep}
    if host:
        record["host"] = host
    return record
