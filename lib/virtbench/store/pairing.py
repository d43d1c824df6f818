"""Which cell record of ``cells.jsonl`` each row of ``results.csv`` belongs to, decided by
the row's own keys, never by its position in either file.

The rows of one cell are written together, one after the other, by one ``make_rows`` call:
they share experiment, variant, rep, host, started and timestamp, and nearly always the
cell's workload (a disk row names the workload its artifact belongs to, an idle-CPU row the
workload that stood in). An *atom* is a run of consecutive rows that share all of these and
the workload. A record owns the atom with its key; atoms of the same cell around it (same
times, other workloads) join it up to the row count the record gives. Both files are
appended in the same order, so records and atoms are aligned as two sequences: one lost
line in either file leaves every other row with its own cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

#: The columns a cell's rows share (besides the workload, which a few rows name otherwise).
SAME_CELL = ("experiment", "variant", "rep", "host", "started", "timestamp")

Key = tuple[str, str, str, int, str]  # experiment, variant, workload, rep, host


def record_key(record: dict) -> Key:
    """The key of a ``cells.jsonl`` record (as :func:`row_key` spells it)."""
    return (record["experiment"], record["variant"], record["workload"], int(record["rep"]),
            str(record.get("host", "")))


def row_key(row: dict[str, str]) -> Key:
    """The cell key a row names: experiment, variant, its workload, rep and host."""
    return (row["experiment"], row["variant"], row["workload"], int(row["rep"]), row["host"])


def _same_cell(a: dict[str, str], b: dict[str, str]) -> bool:
    return all(a[c] == b[c] for c in SAME_CELL)


def _but_workload(key: Key) -> tuple:
    return key[:2] + key[3:]


def atoms(rows: Sequence[dict[str, str]]) -> list[range]:
    """Runs of consecutive rows with the same key and the same cell times."""
    out: list[range] = []
    start = 0
    for i in range(1, len(rows) + 1):
        if (i == len(rows) or row_key(rows[i]) != row_key(rows[start])
                or not _same_cell(rows[i], rows[start])):
            out.append(range(start, i))
            start = i
    return out


def pair(records: Sequence[dict], rows: Sequence[dict[str, str]]) -> list[int | None]:
    """The record (index) that owns each row, None for a row no record claims."""
    parts = atoms(rows)
    owner = _in_order(records, rows, parts)
    if owner is None:
        owner = _aligned(records, rows, parts)
    out: list[int | None] = [None] * len(rows)
    for part, who in zip(parts, owner, strict=True):
        for i in part:
            out[i] = who
    return out


def _in_order(records: Sequence[dict], rows: Sequence[dict[str, str]],
              parts: list[range]) -> list[int | None] | None:
    """Each record takes the next atoms (the usual case); None when a record does not find
    its own rows there, in full."""
    owner: list[int | None] = [None] * len(parts)
    a = 0
    for i, record in enumerate(records):
        key = record_key(record)
        if a >= len(parts) or _but_workload(row_key(rows[parts[a].start])) != _but_workload(key):
            return None
        first, taken, workloads = rows[parts[a].start], 0, set()
        while (a < len(parts) and taken < record["rows"]
               and _same_cell(rows[parts[a].start], first)):
            owner[a] = i
            taken += len(parts[a])
            workloads.add(rows[parts[a].start]["workload"])
            a += 1
        if taken != record["rows"] or key[2] not in workloads:
            return None
    return owner


def _aligned(records: Sequence[dict], rows: Sequence[dict[str, str]],
             parts: list[range]) -> list[int | None]:
    """Align records and atoms as sequences of keys; atoms of a cell that name another
    workload join the record of their neighbour in that cell while it has room."""
    rkeys = [record_key(r) for r in records]
    akeys = [row_key(rows[p.start]) for p in parts]
    owner: list[int | None] = [None] * len(parts)
    taken = [0] * len(records)
    matcher = SequenceMatcher(None, rkeys, akeys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for i, j in zip(range(i1, i2), range(j1, j2), strict=True):
                owner[j] = i
                taken[i] += len(parts[j])
        elif tag == "replace":  # same cell, rows naming another workload: in order
            j = j1
            for i in range(i1, i2):
                k = next((k for k in range(j, j2)
                          if _but_workload(akeys[k]) == _but_workload(rkeys[i])), None)
                if k is not None:
                    owner[k] = i
                    taken[i] += len(parts[k])
                    j = k + 1

    def join(j: int, k: int) -> None:  # atom j joins the record of its neighbour k
        who = owner[k]
        if (owner[j] is None and who is not None
                and _same_cell(rows[parts[j].start], rows[parts[k].start])
                and taken[who] + len(parts[j]) <= records[who]["rows"]):
            owner[j] = who
            taken[who] += len(parts[j])

    for j in range(1, len(parts)):
        join(j, j - 1)
    for j in range(len(parts) - 2, -1, -1):
        join(j, j + 1)
    return owner
