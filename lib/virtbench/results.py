"""Tidy result rows and the on-disk store: append-only, flushed per cell, resumable.

A run lives in ``datasets/<run_id>/``: ``results.csv`` (one row per sample, written as it
is measured), ``cells.jsonl`` (one line per complete cell, appended after its rows: its key
and number of rows), ``host.json`` (provenance) and ``writer.lock`` (held by the one
process writing the run). A *cell* is one repetition of one experiment on one variant and
workload. Rows past those of the recorded cells are a cell in flight when a crash came: they
are never loaded and are cut off before the next append, so running the same run id again
measures that cell afresh. A cell measured again (a retried failure) supersedes its earlier
rows in what the loaders return.

Every row is checked against the metric catalog (:mod:`virtbench.catalog`) when it is made;
its ``conditions`` are canonical JSON (sorted keys, "" when there are none).
"""

from __future__ import annotations

import bisect
import csv
import fcntl
import io
import itertools
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from virtbench import catalog
from virtbench.paths import datasets_dir

COLUMNS = (
    "run_id", "experiment", "family", "variant", "workload", "metric", "conditions", "unit",
    "rep", "value", "reason", "warmup", "tags", "description", "timestamp", "host", "started",
)
#: Columns an older results file may lack (read as ""). ``host`` names the host that measured
#: the row (a campaign's worker; "" in a single-host run: the loaders give it the run's
#: hostname); ``started`` is when the row's cell began (``timestamp``: when it ended).
OPTIONAL_COLUMNS = frozenset({"conditions", "host", "started"})
RESULTS_FILE = "results.csv"
CELLS_FILE = "cells.jsonl"
LOCK_FILE = "writer.lock"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Runs shipped with the project: written only with ``force=True`` (``--force``).
READ_ONLY_RUNS = frozenset({"reference"})
#: Reasons of cells that failed (measured again on the next run of the same id).
FAILED_PREFIXES = ("failed:", "preparation failed:")
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file (and line and column)."""


class RunRefused(RuntimeError):
    """A run that may not be written now: another writer holds it, another host, read-only."""


@dataclass(frozen=True)
class Measurement:
    """One measured (or not measurable) quantity, before it becomes a row.

    ``value`` is None when nothing could be measured; ``reason`` then says why.
    ``description`` says exactly what the number covers (from which event to which).
    ``conditions`` are what it was measured under (keys declared in the catalog).
    """

    metric: str
    value: float | None
    unit: str
    description: str = ""
    reason: str = ""
    workload: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    conditions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def missing(cls, metric: str, unit: str, reason: str, **kw) -> Measurement:
        """A measurement that could not be made, with the reason."""
        return cls(metric=metric, value=None, unit=unit, reason=reason, **kw)


@dataclass(frozen=True)
class Row:
    """One tidy result row (see DESIGN.md)."""

    run_id: str
    experiment: str
    family: str
    variant: str
    workload: str
    metric: str
    unit: str
    rep: int
    value: float | None
    conditions: str = ""
    reason: str = ""
    warmup: bool = False
    tags: str = ""
    description: str = ""
    timestamp: str = ""
    host: str = ""
    started: str = ""

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Row:
        """A row read back from its CSV text (the inverse of :meth:`as_dict`)."""
        fields = {k: record.get(k, "") for k in COLUMNS}
        return cls(**{**fields, "rep": int(fields["rep"]),
                      "value": float(fields["value"]) if fields["value"] else None,
                      "warmup": fields["warmup"] in ("1", "True", "true")})

    def as_dict(self) -> dict:
        d = asdict(self)
        d["value"] = "" if self.value is None else repr(float(self.value))
        d["warmup"] = int(self.warmup)
        return d


def encode_conditions(conditions: dict[str, str]) -> str:
    """The canonical text of conditions: JSON with sorted keys, "" when there are none."""
    return json.dumps(conditions, sort_keys=True) if conditions else ""


def decode_conditions(text: str) -> dict[str, str]:
    """The conditions of a row (the inverse of :func:`encode_conditions`)."""
    return json.loads(text) if text else {}


def decode_tags(text: str) -> dict[str, str]:
    """The tags of a row as a dict ("" is no tags)."""
    return json.loads(text) if text else {}


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` if it is a safe folder name, else raise ValueError saying what is valid."""
    if not RUN_ID_PATTERN.match(run_id):
        raise ValueError(
            f"invalid run id {run_id!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return run_id


def new_run_id(prefix: str = "run") -> str:
    """A fresh run id from the current UTC time."""
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


CellKey = tuple[str, str, str, int, str]  # experiment, variant, workload, rep, host ("": one)


class RunStore:
    """The rows of one run on disk; append-only, resumable, one writer at a time."""

    def __init__(self, run_id: str, root: Path | None = None, *, force: bool = False) -> None:
        self.run_id = check_run_id(run_id)
        self.dir = (root or datasets_dir()) / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS_FILE
        self.force = force
        self._done: set[CellKey] | None = None
        self._lock_fd: int | None = None

    def done(self, experiment: str, variant: str, workload: str, rep: int,
             host: str = "") -> bool:
        """True if this cell is complete and did not fail (in this or an earlier process);
        ``host``: the campaign host that measured it ("" in a single-host run)."""
        if self._done is None:
            self._done = _scan(self.path).done()
        return (experiment, variant, workload, rep, host) in self._done

    @contextmanager
    def locked(self, recover: bool = True) -> Iterator[RunStore]:
        """Hold the run's writer lock (re-entrant); a second process gets RunRefused.

        On taking it, a torn tail or an incomplete cell is cut off (unless ``recover`` is
        False) and the completed cells are read again.
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
        """Cut results back to the last complete cell; make sure cells.jsonl can be appended."""
        scan = _scan(self.path)
        if self.path.exists() and self.path.stat().st_size and "conditions" not in scan.header:
            raise DatasetError(
                f"{self.path} was written before the conditions column; migrate it "
                "(virtbench.catalog.migrate_file) before adding rows to it")
        cells = self.dir / CELLS_FILE
        if self.path.exists() and self.path.stat().st_size > scan.end:
            with self.path.open("r+b") as fh:
                fh.truncate(scan.end)
                os.fsync(fh.fileno())
        raw = cells.read_bytes() if cells.exists() else None
        if raw is None or (raw and not raw.endswith(b"\n")) or scan.legacy:
            write_atomic(cells, "".join(json.dumps(c) + "\n" for c in scan.cells))
        self._done = scan.done()

    def write_cell(self, rows: Sequence[Row], cell: CellKey | None = None) -> None:
        """Append the rows of one cell, then its end record; both on disk before returning.

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
            header = list(COLUMNS) if new else self._header()
            if any(row.host for row in rows) and "host" not in header:
                raise DatasetError(f"{self.path} has no host column (written by a single-host "
                                   "run); write the campaign under another run id")
            with self.path.open("a", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
                if new:
                    writer.writeheader()
                for row in rows:
                    writer.writerow(row.as_dict())
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

    def _header(self) -> list[str]:
        """The columns of the existing results file (older runs lack the optional ones)."""
        with self.path.open(newline="") as fh:
            return next(csv.reader([fh.readline()]))

    def rows(self) -> pd.DataFrame:
        """This run's rows as a DataFrame."""
        return load_runs([self.run_id], root=self.dir.parent)


def make_rows(
    measurements: Iterable[Measurement],
    *,
    run_id: str,
    experiment: str,
    family: str,
    variant: str,
    workload: str,
    rep: int,
    warmup: bool = False,
    host: str = "",
    started: str = "",
) -> list[Row]:
    """Turn one cell's measurements into rows stamped with the cell's identity (``host``:
    the campaign host that measured it; ``started``: when the cell began, see :func:`now`).

    Each measurement is validated against the catalog (ValueError: an undeclared metric,
    condition key or value, or a unit other than the catalog's).
    """
    ended = now()
    ms = list(measurements)
    for m in ms:
        catalog.validate(experiment, m.metric, m.unit, m.conditions)
    return [
        Row(
            run_id=run_id, experiment=experiment, family=family, variant=variant,
            workload=m.workload or workload, metric=m.metric,
            conditions=encode_conditions(m.conditions), unit=m.unit, rep=rep,
            value=m.value, reason=m.reason, warmup=warmup,
            tags=json.dumps(m.tags, sort_keys=True) if m.tags else "",
            description=m.description, timestamp=ended, host=host, started=started,
        )
        for m in ms
    ]


def now() -> str:
    """The current time as a row's ``timestamp`` or ``started`` (ISO 8601, UTC, ms)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def load_runs(run_ids: str | Sequence[str] | None = None, root: Path | None = None) -> pd.DataFrame:
    """Load one run, several, or (None) every run under ``root`` into one DataFrame."""
    root = root or datasets_dir()
    if run_ids is None:
        run_ids = sorted(p.name for p in root.iterdir() if (p / RESULTS_FILE).exists())
    elif isinstance(run_ids, str):
        run_ids = [run_ids]
    frames = []
    for run_id in run_ids:
        path = root / run_id / RESULTS_FILE
        if not path.exists():
            known = sorted(p.name for p in root.iterdir() if (p / RESULTS_FILE).exists())
            raise DatasetError(f"no dataset {path}; runs here: {', '.join(known) or 'none'}")
        frame = pd.DataFrame(_scan(path).latest(), columns=list(COLUMNS))
        frame["host"] = frame["host"].fillna("").replace("", _run_hostname(root / run_id))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["rep"] = df["rep"].astype(int)
    df["warmup"] = df["warmup"].astype(str).isin(("1", "True", "true"))
    df["reason"] = df["reason"].fillna("")
    df["conditions"] = df["conditions"].fillna("")
    return df


def _run_hostname(run_dir: Path) -> str:
    """The host a single-host run was measured on (its host.json), for rows without one."""
    from virtbench.host import read_host_json

    return str(read_host_json(run_dir).get("hostname") or "unknown host")


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Only the measured, non-warm-up samples."""
    return df[df["value"].notna() & ~df["warmup"]]


@dataclass
class _Scan:
    """What is on disk: the valid rows of complete cells, and what was left out."""

    header: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    attempt: list[int] = field(default_factory=list)   # index into ``cells`` of each row
    cells: list[dict] = field(default_factory=list)    # one record per complete cell written
    end: int = 0                                       # bytes of results.csv to keep
    dropped: list[tuple[int, str]] = field(default_factory=list)  # (line, why) left out
    legacy: bool = False                               # written before cells.jsonl existed

    def _last(self) -> dict[CellKey, int]:
        return {_key(c): i for i, c in enumerate(self.cells)}

    def latest(self) -> list[dict[str, str]]:
        """The rows of each cell's last attempt."""
        last = self._last()
        return [r for r, a in zip(self.rows, self.attempt, strict=True)
                if last[_key(self.cells[a])] == a]

    def done(self) -> set[CellKey]:
        """Cells whose last attempt is complete and did not fail."""
        failed = {self.attempt[i] for i, r in enumerate(self.rows)
                  if r["reason"].startswith(FAILED_PREFIXES)}
        return {k for k, a in self._last().items() if a not in failed}


def _key(cell: dict) -> CellKey:
    return (cell["experiment"], cell["variant"], cell["workload"], int(cell["rep"]),
            str(cell.get("host", "")))


def _records(data: bytes) -> Iterator[tuple[int, int, list[str] | None, str]]:
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


def _check(header: list[str], fields: list[str]) -> str:
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
    return ""


def _read_cells(path: Path, strict: bool) -> list[dict]:
    """The complete-cell records of ``cells.jsonl``; a torn last line is no record."""
    out: list[dict] = []
    lines = path.read_bytes().split(b"\n")[:-1] if path.exists() else []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            _key(record)
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


def _scan(path: Path, strict: bool = True) -> _Scan:
    """Read ``results.csv`` and ``cells.jsonl``; strict: a malformed row is a DatasetError."""
    repair_hint = f"; run `virtbench repair {path.parent.name}` to drop it"
    try:
        data = path.read_bytes() if path.exists() else b""
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from exc
    cells_path = path.with_name(CELLS_FILE)
    legacy = bool(data) and not cells_path.exists()
    records = list(_records(data))
    cells = [] if legacy else _read_cells(cells_path, strict)
    incomplete = f"incomplete cell (not recorded in {CELLS_FILE})"
    if not legacy and not cells:  # nothing complete yet, not even the header
        return _Scan(header=list(COLUMNS), dropped=[(r[0], incomplete) for r in records[1:]])
    if not records:
        raise DatasetError(f"{path}: missing, but {cells_path} records cells{repair_hint}")
    _line, header_end, header, problem = records[0]
    if header is None or problem:
        raise DatasetError(f"{path}:1: cannot read the header: {problem}")
    missing = [c for c in COLUMNS if c not in header and c not in OPTIONAL_COLUMNS]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing}")
    scan = _Scan(header=header, legacy=legacy, end=header_end)
    rows = records[1:]
    if legacy:  # every row that ends with a newline
        limit = data.rfind(b"\n") + 1
        committed = sum(end <= limit for _line, end, _f, _p in rows)
    else:
        scan.cells = cells
        bounds = list(itertools.accumulate(c["rows"] for c in cells))
        committed = bounds[-1]
        if committed > len(rows):
            if strict:
                raise DatasetError(f"{path}: cut short: {cells_path} records {committed} rows, "
                                   f"the file has {len(rows)}{repair_hint}")
            committed = len(rows)
    for i, (line, end, fields, problem) in enumerate(rows):
        if i >= committed:
            scan.dropped.append((line, "torn last line" if legacy else incomplete))
            continue
        scan.end = end
        problem = problem or _check(header, fields or [])
        if problem:
            if strict:
                raise DatasetError(f"{path}:{line}: {problem}{repair_hint}")
            scan.dropped.append((line, problem))
            continue
        row = dict(zip(header, fields or [], strict=True))
        for name in OPTIONAL_COLUMNS - set(header):
            row[name] = ""
        if legacy:  # a cell: consecutive rows of one make_rows call (one timestamp)
            prev = scan.rows[-1] if scan.rows else {}
            if any(prev.get(k) != row[k]
                   for k in ("experiment", "variant", "rep", "timestamp", "host")):
                scan.cells.append({**{k: row[k] for k in ("experiment", "variant", "workload")},
                                   "rep": int(row["rep"]), "rows": 0,
                                   **({"host": row["host"]} if row["host"] else {})})
            scan.cells[-1]["rows"] += 1
            scan.attempt.append(len(scan.cells) - 1)
        else:
            scan.attempt.append(bisect.bisect_right(bounds, i))
        scan.rows.append(row)
    return scan


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` via a unique temporary file in the same folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # readable like the run's other files (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RepairReport:
    """What ``repair`` kept and what it dropped (line of results.csv, why)."""

    path: Path
    kept: int
    dropped: list[tuple[int, str]]


def repair(run_id: str, root: Path | None = None, *, force: bool = False) -> RepairReport:
    """Rewrite a run keeping every valid row of every complete cell; report what was dropped."""
    store = RunStore(run_id, root, force=force)
    if not store.path.exists():
        raise DatasetError(f"no dataset {store.path}")
    with store.locked(recover=False):
        scan = _scan(store.path, strict=False)
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(scan.header)
        cells: list[dict] = []
        for i, row in enumerate(scan.rows):
            writer.writerow([row[c] for c in scan.header])
            if i == 0 or scan.attempt[i] != scan.attempt[i - 1]:
                cells.append({**scan.cells[scan.attempt[i]], "rows": 0})
            cells[-1]["rows"] += 1
        write_atomic(store.dir / CELLS_FILE, "".join(json.dumps(c) + "\n" for c in cells))
        write_atomic(store.path, buf.getvalue())
    return RepairReport(store.path, len(scan.rows), scan.dropped)
