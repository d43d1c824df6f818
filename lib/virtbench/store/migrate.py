"""Older run folders -> the current store format, once, on load (atomic rewrites).

Version 1 (no ``store.json``) covers every run written before the format was versioned:
with ``cells.jsonl`` (each upgraded row is then tied to its cell record by its own keys, as
the current format is read: a lost line in either file costs that line alone) or without
it (a cell is then consecutive rows of one ``make_rows`` call, and a torn last line is
cut); without the ``conditions`` column (metric-name suffixes such as
``startup_cold_none`` or ``rss_idle`` become metric + conditions), io rows of an in-memory
file system told only by their ``where`` tag (they get ``fs=memory``), without ``host`` and
``started`` (read as ""), and without ``commit``, ``code`` and ``status``: the commit comes
from the ``host.json`` invocation or campaign that measured the row's experiment at the
row's time, the code is ``commit:<12 hex>`` and the status follows from the cells.

The files are rewritten in an order that a crash cannot spoil: ``results.csv``, then
``cells.jsonl``, then ``store.json`` (the version, written last, says it is done), and a
migration interrupted before ``store.json`` is done again from what is on disk.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from virtbench import catalog
from virtbench.store.errors import DatasetError, write_atomic
from virtbench.store.hostfile import read_host_json
from virtbench.store.lock import try_lock, unlock
from virtbench.store.provenance import DIRTY, migrated_code
from virtbench.store.scan import Scan, check_row, parse, read_bytes, records, scan
from virtbench.store.schema import (
    CELLS_FILE,
    COLUMNS,
    CURRENT,
    FORMAT_FILE,
    FORMAT_VERSION,
    RESULTS_FILE,
    SUPERSEDED,
    cell_key,
)

#: Columns of version 1 that a file may lack (they are added, empty or derived).
ADDED_COLUMNS = ("conditions", "host", "started", "commit", "code", "status")


def format_version(run_dir: Path) -> int:
    """The store format of a run folder (1 when ``store.json`` is absent)."""
    path = run_dir / FORMAT_FILE
    if not path.exists():
        return 1
    try:
        version = json.loads(path.read_text())["store_format"]
        if not isinstance(version, int):
            raise ValueError(f"store_format {version!r} is not an integer")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}; expected "
                           f'{{"store_format": {FORMAT_VERSION}}}') from None
    if version > FORMAT_VERSION:
        raise DatasetError(f"{run_dir} is in store format {version}, newer than this "
                           f"virtbench reads ({FORMAT_VERSION}); update virtbench")
    return version


def write_format(run_dir: Path) -> None:
    """Write ``store.json`` saying the run is in the current format."""
    write_atomic(run_dir / FORMAT_FILE, json.dumps({"store_format": FORMAT_VERSION}) + "\n")


@dataclass(frozen=True)
class Migrated:
    """What a migration did: rows kept, (line, why) of those left out, and what it did to
    the cells (``notes``: records derived, or cells to measure again)."""

    rows: int
    dropped: list[tuple[int, str]]
    notes: list[str] = field(default_factory=list)


def ensure_current(run_dir: Path, *, locked: bool = False, strict: bool = True
                   ) -> Migrated | None:
    """Migrate ``run_dir`` to the current format if it is older (None when it was current
    or holds no rows yet). ``locked``: the caller holds the run's writer lock; otherwise it
    is taken for the migration (DatasetError when another process holds it)."""
    if format_version(run_dir) == FORMAT_VERSION:
        return None
    if not (run_dir / RESULTS_FILE).exists():
        return None
    if locked:
        return _migrate_v1(run_dir, strict)
    fd, holder = try_lock(run_dir)
    if fd is None:
        raise DatasetError(f"{run_dir} is in store format 1 and is being written by "
                           f"another process (PID {holder}); load it when that ends")
    try:
        if format_version(run_dir) == FORMAT_VERSION:  # migrated while we waited
            return None
        return _migrate_v1(run_dir, strict)
    finally:
        unlock(run_dir, fd)


def _migrate_v1(run_dir: Path, strict: bool) -> Migrated:
    path = run_dir / RESULTS_FILE
    data = read_bytes(path)
    found = list(records(data))
    if not found:
        write_format(run_dir)
        return Migrated(0, [])
    _line, header_end, header, problem = found.pop(0)
    if header is None or problem:
        raise DatasetError(f"{path}:1: cannot read the header: {problem}")
    missing = [c for c in COLUMNS if c not in header and c not in ADDED_COLUMNS]
    if missing:
        raise DatasetError(f"{path}: missing columns {missing}")
    try:
        host = read_host_json(run_dir)
    except DatasetError:
        if strict:
            raise
        host = {}  # damaged: the commits of the rows are not known (repair rebuilds it)
    commit_of = commit_finder(host)
    if (run_dir / CELLS_FILE).exists():
        return _migrate_v1_paired(run_dir, data, header, header_end, commit_of, strict)
    limit = data.rfind(b"\n") + 1  # every row that ends with a newline
    rows: list[dict[str, str]] = []
    attempt: list[int] = []
    cells: list[dict] = []
    dropped: list[tuple[int, str]] = []
    for line, end, fields, problem in found:
        if end > limit:
            dropped.append((line, "torn last line"))
            continue
        problem = problem or check_row(header, fields or [])
        if problem:
            if strict:
                raise DatasetError(f"{path}:{line}: {problem}; run `virtbench repair "
                                   f"{run_dir.name}` to drop it")
            dropped.append((line, problem))
            continue
        row = _v1_row(header, fields or [])
        attempt.append(_infer_cell(cells, rows[-1] if rows else None, row))
        rows.append(_upgrade(row, "conditions" in header, commit_of))
    _write_v1_result(run_dir, rows, attempt, cells)
    return Migrated(len(rows), dropped)


def _v1_row(header: list[str], fields: list[str]) -> dict[str, str]:
    row = dict(zip(header, fields, strict=True))
    row.update({c: row.get(c, "") for c in ADDED_COLUMNS})
    return row


def _migrate_v1_paired(run_dir: Path, data: bytes, header: list[str], header_end: int,
                       commit_of: Callable[[str, str], str], strict: bool) -> Migrated:
    """Version-1 rows with a ``cells.jsonl``: every valid row upgraded in place (a line
    that cannot be read is kept as it is, so it stays where it was), then read as the
    current format reads: each row tied to its record by its own keys."""
    path = run_dir / RESULTS_FILE
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    why: dict[int, str] = {}  # line of the upgraded text -> why the v1 line was not read
    for _line, start, end, fields, problem in parse(data, header_end, 2,
                                                   lambda f: check_row(header, f)):
        if problem:  # kept as it was, where it was: the scan below decides what it costs
            why[buf.getvalue().count("\n") + 1] = problem
            buf.write(data[start:end].decode(errors="replace"))
        else:
            row = _upgrade(_v1_row(header, fields or []), "conditions" in header, commit_of)
            writer.writerow({**row, "status": ""})
    found_now = scan(path, strict, data=buf.getvalue().encode(), problems=why)
    write_scan(run_dir, found_now)
    write_format(run_dir)
    return Migrated(len(found_now.rows), found_now.dropped, found_now.notes)


def write_scan(run_dir: Path, found: Scan) -> None:
    """Write the rows and cells of a lenient scan: results.csv (each row's status as the
    cells say), then cells.jsonl, each replaced atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(found.header)
    for row in found.resolved(history=True):
        writer.writerow([row[c] for c in found.header])
    counts = [0] * len(found.cells)
    for a in found.attempt:
        counts[a] += 1
    cells = [{**c, "rows": n} for c, n in zip(found.cells, counts, strict=True) if n]
    write_atomic(run_dir / RESULTS_FILE, buf.getvalue())
    write_atomic(run_dir / CELLS_FILE, "".join(json.dumps(c) + "\n" for c in cells))


def _infer_cell(cells: list[dict], prev: dict | None, row: dict) -> int:
    """Append ``row`` to the inferred cells (a cell: consecutive rows of one make_rows
    call, one timestamp) and return its index."""
    if prev is None or any(prev.get(k) != row[k]
                           for k in ("experiment", "variant", "rep", "timestamp", "host")):
        cells.append({**{k: row[k] for k in ("experiment", "variant", "workload")},
                      "rep": int(row["rep"]), "rows": 0,
                      **({"host": row["host"]} if row["host"] else {})})
    cells[-1]["rows"] += 1
    return len(cells) - 1


def _upgrade(row: dict[str, str], has_conditions: bool,
             commit_of: Callable[[str, str], str]) -> dict[str, str]:
    """One version-1 row in the current format (before its status is known)."""
    tags = json.loads(row["tags"]) if row.get("tags") else {}
    if not has_conditions:
        migrate_row(row)
    have = json.loads(row["conditions"]) if row["conditions"] else {}
    implied = implied_conditions(row["experiment"], tags)
    if implied and not set(implied) <= set(have):
        row["conditions"] = json.dumps({**implied, **have}, sort_keys=True)
    if not row["commit"]:
        row["commit"] = commit_of(row["experiment"], row["timestamp"])
    if not row["code"]:
        row["code"] = migrated_code(row["commit"])
    return row


def _write_v1_result(run_dir: Path, rows: list[dict[str, str]], attempt: list[int],
                     cells: list[dict]) -> None:
    last = {cell_key(c): i for i, c in enumerate(cells)}
    kept: list[dict] = []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for i, (row, a) in enumerate(zip(rows, attempt, strict=True)):
        row["status"] = CURRENT if last[cell_key(cells[a])] == a else SUPERSEDED
        writer.writerow(row)
        if i == 0 or attempt[i - 1] != a:
            kept.append({**cells[a], "rows": 0})
        kept[-1]["rows"] += 1
    write_atomic(run_dir / RESULTS_FILE, buf.getvalue())
    text = "".join(json.dumps(c) + "\n" for c in kept)
    cells_path = run_dir / CELLS_FILE
    if not cells_path.exists() or cells_path.read_text() != text:
        write_atomic(cells_path, text)
    write_format(run_dir)


# -- the commit that measured a row, from host.json ---------------------------------------

def _time(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


def _normalized(commit: object) -> str:
    text = str(commit or "")
    return text.removesuffix("-dirty") + DIRTY if text.endswith("-dirty") else text


def commit_finder(host: Mapping) -> Callable[[str, str], str]:
    """A function (experiment, row timestamp) -> the commit of the invocation or campaign
    of ``host`` (a host.json) that measured that experiment then ("" when none or several
    commits fit). Times in host.json are whole seconds: a row may end up to 1 s after."""
    spans = []
    for entry in [*host.get("invocations", []), *host.get("campaigns", [])]:
        params = entry.get("parameters") or {}
        names = set(entry.get("experiments") or params.get("experiments") or [])
        names |= {params["experiment"]} if params.get("experiment") else set()
        start, end = _time(entry.get("started_at")), _time(entry.get("finished_at"))
        if start is not None and names:
            spans.append((names, start, end + timedelta(seconds=1) if end else None,
                          _normalized(entry.get("git_commit"))))

    def commit_of(experiment: str, timestamp: str) -> str:
        t = _time(timestamp)
        if t is None:
            return ""
        fits = {c for names, start, end, c in spans
                if experiment in names and start <= t and (end is None or t <= end)}
        return fits.pop() if len(fits) == 1 else ""
    return commit_of


# -- metric names of datasets written before the catalog (metric-name suffixes) -----------

_STARTUP_RENAMES = {
    "startup_warm_pooling": ("startup_warm", {"allocator": "pooling"}),
    "startup_process_pooling": ("startup_process", {"allocator": "pooling"}),
    "startup_process_cached": ("startup_process", {"code_cache": "on"}),
    "startup_process_aot": ("startup_process", {"module": "precompiled"}),
}
_MEMORY_NAME = re.compile(r"(?P<base>.+?)(?:_guest(?P<guest>\d+))?_(?P<state>idle|loaded)")
_SLOWDOWN_NAME = re.compile(r"slowdown_(?P<attack>[a-z]+?)(?P<limited>_limited)?")
#: What an io row's ``where`` tag said when the work directory was the runtime's own
#: in-memory file system (wasmer-sdk sandboxes), before the fs condition.
MEMORY_FS_WHERE = "in-memory file system"


def implied_conditions(experiment: str, tags: Mapping[str, str]) -> dict[str, str]:
    """Conditions that a version-1 row's tags state but its conditions column does not: io
    rows measured on an in-memory file system (``where`` tag) get fs=memory."""
    if experiment == "io" and MEMORY_FS_WHERE in str(tags.get("where", "")):
        return {"fs": "memory"}
    return {}


def migrate_metric(experiment: str, family: str, metric: str,
                   tags: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The catalog name and conditions of a metric as datasets before the catalog named it."""
    conditions: dict[str, str] = {}
    if experiment == "startup":
        if metric in _STARTUP_RENAMES:
            metric, extra = _STARTUP_RENAMES[metric]
            conditions.update(extra)
        elif metric.endswith("_none") and (experiment, metric[:-5]) in catalog.CATALOG:
            metric, conditions["network"] = metric[:-5], "none"
        declared = catalog.CATALOG.get((experiment, metric))
        if (family == "docker" and "network" in tags and "network" not in conditions
                and declared is not None and "network" in declared.conditions):
            conditions["network"] = tags["network"]
    elif experiment == "memory" and (found := _MEMORY_NAME.fullmatch(metric)):
        metric, conditions["state"] = found["base"], found["state"]
        guest = found["guest"] or (tags.get("guest_memory_mib") if family == "vm" else None)
        if guest and metric in ("rss", "pss"):
            conditions["guest_memory_mib"] = guest
    elif experiment == "isolation" and (found := _SLOWDOWN_NAME.fullmatch(metric)):
        metric = "slowdown"
        conditions = {"attack": found["attack"], "limits": "on" if found["limited"] else "off"}
    conditions.update(implied_conditions(experiment, tags))
    return metric, conditions


def migrate_row(row: MutableMapping[str, str]) -> bool:
    """Give one row written before the conditions column its catalog metric and
    conditions, in place. True if the metric changed."""
    tags = row.get("tags")
    metric, conditions = migrate_metric(row["experiment"], row["family"], row["metric"],
                                        json.loads(tags) if tags else {})
    changed = metric != row["metric"]
    row["metric"] = metric
    row["conditions"] = json.dumps(conditions, sort_keys=True) if conditions else ""
    return changed
