"""What a run folder holds: file names, the format version, the columns, rows and run ids.

Format versions (``store.json`` ``{"store_format": N}``; a run without it is version 1):

1. anything written before ``store.json``: with or without ``cells.jsonl``, the
   ``conditions``, ``host`` and ``started`` columns; migrated on load (:mod:`.migrate`).
2. :data:`COLUMNS` exactly, ``cells.jsonl`` always, each row's ``commit``, ``code`` and
   ``status``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pandas as pd

FORMAT_VERSION = 2
FORMAT_FILE = "store.json"
RESULTS_FILE = "results.csv"
CELLS_FILE = "cells.jsonl"
LOCK_FILE = "writer.lock"
HOST_FILE = "host.json"
#: A campaign run keeps each host's own host.json as ``hosts/<name>.json``.
HOSTS_DIR = "hosts"

COLUMNS = (
    "run_id", "experiment", "family", "variant", "workload", "metric", "conditions", "unit",
    "rep", "value", "reason", "warmup", "tags", "description", "timestamp", "host", "started",
    "commit", "code", "status",
)
#: A row's status: the reading of its cell's last attempt, or one measured again since.
CURRENT, SUPERSEDED = "current", "superseded"
STATUSES = (CURRENT, SUPERSEDED)
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Runs shipped with the project: written only with ``force=True`` (``--force``).
READ_ONLY_RUNS = frozenset({"reference"})
#: Reasons of cells that failed (measured again on the next run of the same id).
FAILED_PREFIXES = ("failed:", "preparation failed:")

CellKey = tuple[str, str, str, int, str]  # experiment, variant, workload, rep, host ("": one)


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
    """One tidy result row (see datasets/README.md): ``host`` is the campaign host that
    measured it ("" in a single-host run), ``started``/``timestamp`` when its cell began and
    ended, ``commit`` the git commit of the measuring tree, ``code`` the fingerprint of the
    measuring code (:mod:`.provenance`), ``status`` current or superseded."""

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
    commit: str = ""
    code: str = ""
    status: str = CURRENT

    @classmethod
    def from_record(cls, record: dict[str, str]) -> Row:
        """A row read back from its CSV text (the inverse of :meth:`as_dict`)."""
        fields = {k: record.get(k, "") for k in COLUMNS}
        return cls(**{**fields, "rep": int(fields["rep"]),
                      "value": float(fields["value"]) if fields["value"] else None,
                      "warmup": fields["warmup"] in ("1", "True", "true"),
                      "status": fields["status"] or CURRENT})

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


def now() -> str:
    """The current time as a row's ``timestamp`` or ``started`` (ISO 8601, UTC, ms)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def cell_key(cell: dict) -> CellKey:
    """The key of a ``cells.jsonl`` record."""
    return (cell["experiment"], cell["variant"], cell["workload"], int(cell["rep"]),
            str(cell.get("host", "")))


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Only the measured, non-warm-up samples."""
    return df[df["value"].notna() & ~df["warmup"]]
