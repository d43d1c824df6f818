"""Loading runs into pandas: the current rows by default, every row on request."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from virtbench.paths import datasets_dir
from virtbench.store.errors import DatasetError
from virtbench.store.hostfile import read_host_json
from virtbench.store.migrate import ensure_current
from virtbench.store.scan import scan
from virtbench.store.schema import COLUMNS, RESULTS_FILE


def stored_runs(root: Path) -> list[str]:
    """The runs stored under ``root`` (folders with a results file)."""
    return sorted(p.name for p in root.iterdir() if (p / RESULTS_FILE).exists())


def load_runs(run_ids: str | Sequence[str] | None = None, root: Path | None = None, *,
              history: bool = False) -> pd.DataFrame:
    """Load one run, several, or (None) every run under ``root`` into one DataFrame.

    The rows are those of each cell's last attempt (status ``current``); ``history``: every
    row, earlier attempts with status ``superseded``. A run in an older store format is
    migrated first (once, on disk).
    """
    root = root or datasets_dir()
    if run_ids is None:
        run_ids = stored_runs(root)
    elif isinstance(run_ids, str):
        run_ids = [run_ids]
    frames = []
    for run_id in run_ids:
        path = root / run_id / RESULTS_FILE
        if not path.exists():
            raise DatasetError(f"no dataset {path}; runs here: "
                               f"{', '.join(stored_runs(root)) or 'none'}")
        ensure_current(path.parent)
        frame = pd.DataFrame(scan(path).resolved(history), columns=list(COLUMNS))
        frame["host"] = frame["host"].fillna("").replace("", _run_hostname(root / run_id))
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.concat(frames, ignore_index=True)
    df["value"] = pd.to_numeric(df["value"], errors="coerce")
    df["rep"] = df["rep"].astype(int)
    df["warmup"] = df["warmup"].astype(str).isin(("1", "True", "true"))
    return df


def _run_hostname(run_dir: Path) -> str:
    """The host a single-host run was measured on (its host.json), for rows without one."""
    return str(read_host_json(run_dir).get("hostname") or "unknown host")
