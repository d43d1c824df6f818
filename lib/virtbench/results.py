"""Tidy result rows and the run store: the names the experiments, the runner and the tests
import, kept here for them. The store itself is the :mod:`virtbench.store` package."""

from __future__ import annotations

from virtbench.store.errors import DatasetError, RunRefused, write_atomic
from virtbench.store.reader import load_runs
from virtbench.store.repair import RepairReport, repair
from virtbench.store.rows import make_rows
from virtbench.store.scan import Scan, scan
from virtbench.store.schema import (
    CELLS_FILE,
    COLUMNS,
    CURRENT,
    FAILED_PREFIXES,
    FORMAT_FILE,
    FORMAT_VERSION,
    LOCK_FILE,
    READ_ONLY_RUNS,
    RESULTS_FILE,
    RUN_ID_PATTERN,
    SUPERSEDED,
    CellKey,
    Measurement,
    Row,
    check_run_id,
    decode_conditions,
    decode_tags,
    encode_conditions,
    measured,
    new_run_id,
    now,
)
from virtbench.store.writer import RunStore

_scan = scan  # the scanner under its former private name

__all__ = [
    "CELLS_FILE", "COLUMNS", "CURRENT", "FAILED_PREFIXES", "FORMAT_FILE", "FORMAT_VERSION",
    "LOCK_FILE", "READ_ONLY_RUNS", "RESULTS_FILE", "RUN_ID_PATTERN", "SUPERSEDED", "CellKey",
    "DatasetError", "Measurement", "RepairReport", "Row", "RunRefused", "RunStore", "Scan",
    "check_run_id", "decode_conditions", "decode_tags", "encode_conditions", "load_runs",
    "make_rows", "measured", "new_run_id", "now", "repair", "scan", "write_atomic",
]
