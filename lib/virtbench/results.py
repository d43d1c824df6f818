"""Tidy result rows and the on-disk store: append-only, flushed per cell, resumable.

A run lives in ``datasets/<run_id>/``: ``results.csv`` (one row per sample, written as it
is measured) and ``host.json`` (provenance). A *cell* is one repetition of one experiment
on one variant and workload; its rows are written together, so a crash loses at most the
cell in flight, and running the same run id again skips completed cells.
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

from virtbench.paths import datasets_dir

COLUMNS = (
    "run_id", "experiment", "family", "variant", "workload", "metric", "unit", "rep",
    "value", "reason", "warmup", "tags", "description", "timestamp",
)
RESULTS_FILE = "results.csv"
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file."""


@dataclass(frozen=True)
class Measurement:
    """One measured (or not measurable) quantity, before it becomes a row.

    ``value`` is None when nothing could be measured; ``reason`` then says why.
    ``description`` says exactly what the number covers (from which event to which).
    """

    metric: str
    value: float | None
    unit: str
    description: str = ""
    reason: str = ""
    workload: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

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
        if self.path.exists():
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
    """Turn one cell's measurements into rows stamped with the cell's identity."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds")
    return [
        Row(
            run_id=run_id, experiment=experiment, family=family, variant=variant,
            workload=m.workload or workload, metric=m.metric, unit=m.unit, rep=rep,
            value=m.value, reason=m.reason, warmup=warmup,
            tags=json.dumps(m.tags, sort_keys=True) if m.tags else "",
            description=m.description, timestamp=now,
        )
        for m in measurements
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
            missing = set(COLUMNS) - set(reader.fieldnames)
            if missing:
                raise DatasetError(f"{path}: missing columns {sorted(missing)}")
            rows = []
            for row in reader:
                if None in row.values() or row.get("timestamp") in (None, ""):
                    continue  # incomplete trailing line
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
    return df


def measured(df: pd.DataFrame) -> pd.DataFrame:
    """Only the measured, non-warm-up samples."""
    return df[df["value"].notna() & ~df["warmup"]]
