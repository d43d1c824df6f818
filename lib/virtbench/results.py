"""Tidy result rows and the on-disk store: append-only, flushed per cell, resumable.

A run lives in ``datasets/<run_id>/``: ``results.csv`` (one row per sample, written as it
is measured) and ``host.json`` (provenance). A *cell* is one repetition of one experiment
on one variant and workload; its rows are written together, so a crash loses at most the
cell in flight, and running the same run id again skips completed cells.

Every row is checked against the metric catalog (:mod:`virtbench.catalog`) when it is made;
its ``conditions`` are canonical JSON (sorted keys, "" when there are none).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from virtbench import catalog
from virtbench.paths import datasets_dir

COLUMNS = (
    "run_id", "experiment", "family", "variant", "workload", "metric", "conditions", "unit",
    "rep", "value", "reason", "warmup", "tags", "description", "timestamp",
)
#: Columns an older results file may lack (read as "").
OPTIONAL_COLUMNS = frozenset({"conditions"})
RESULTS_FILE = "results.csv"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file."""


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


CellKey = tuple[str, str, str, int]  # experiment, variant, workload, rep


class RunStore:
    """The rows of one run on disk; append-only and resumable."""

    def __init__(self, run_id: str, root: Path | None = None) -> None:
        self.run_id = check_run_id(run_id)
        self.dir = (root or datasets_dir()) / run_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RESULTS_FILE
        self._done: set[CellKey] = set()
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open(newline="") as fh:
                header = next(csv.reader(fh), [])
            if "conditions" not in header:
                raise DatasetError(
                    f"{self.path} was written before the conditions column; migrate it "
                    "(virtbench.catalog.migrate_file) before adding rows to it")
            for row in _read_rows(self.path):
                self._done.add(_cell_of(row))

    def done(self, experiment: str, variant: str, workload: str, rep: int) -> bool:
        """True if this cell was already written (by this or an earlier process)."""
        return (experiment, variant, workload, rep) in self._done

    def write_cell(self, rows: Sequence[Row]) -> None:
        """Append the rows of one cell and flush them to disk before returning."""
        if not rows:
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        with self.path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            for row in rows:
                writer.writerow(row.as_dict())
            fh.flush()
            os.fsync(fh.fileno())
        for row in rows:
            self._done.add((row.experiment, row.variant, row.workload, row.rep))

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
) -> list[Row]:
    """Turn one cell's measurements into rows stamped with the cell's identity.

    Each measurement is validated against the catalog (ValueError: an undeclared metric,
    condition key or value, or a unit other than the catalog's).
    """
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
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
            description=m.description, timestamp=now,
        )
        for m in ms
    ]


def _cell_of(row: dict) -> CellKey:
    return (row["experiment"], row["variant"], row["workload"], int(row["rep"]))


def _read_rows(path: Path) -> list[dict]:
    """Rows of a results file; a torn last line (crash mid-write) is dropped."""
    try:
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                return []
            missing = set(COLUMNS) - set(reader.fieldnames) - OPTIONAL_COLUMNS
            if missing:
                raise DatasetError(f"{path}: missing columns {sorted(missing)}")
            rows = []
            for row in reader:
                if None in row.values() or row.get("timestamp") in (None, ""):
                    continue  # incomplete trailing line
                for name in OPTIONAL_COLUMNS - set(reader.fieldnames):
                    row[name] = ""
                rows.append(row)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from exc


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
        frames.append(pd.DataFrame(_read_rows(path), columns=list(COLUMNS)))
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["rep"] = df["rep"].astype(int)
    df["warmup"] = df["warmup"].astype(str).isin(("1", "True", "true"))
    df["reason"] = df["reason"].fillna("")
    df["conditions"] = df["conditions"].fillna("")
    return df


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Only the measured, non-warm-up samples."""
    return df[df["value"].notna() & ~df["warmup"]]
