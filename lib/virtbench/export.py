"""A run's rows with its host metadata, as one file: parquet, CSV or JSON. The rows are the
current ones (``history``: superseded readings too), with their ``status`` column.

Parquet keeps the host metadata in the file (``DataFrame.attrs``, which pandas restores on
reading); CSV gets it beside the file (``FILE.host.json``); JSON holds both in one document.
"""

from __future__ import annotations

import json
from pathlib import Path

from virtbench.host import read_host_json
from virtbench.results import load_runs

FORMATS = ("parquet", "csv", "json")


def export(run_id: str, fmt: str, out: Path | None = None, root: Path | None = None, *,
           history: bool = False) -> Path:
    """Write the run's rows and host metadata to ``out`` (default: ``RUN_ID.FORMAT`` here):
    the current rows, or (``history``) superseded readings too; ``status`` says which."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    from virtbench.paths import datasets_dir

    root = root or datasets_dir()
    df = load_runs(run_id, root=root, history=history)
    host = read_host_json(root / run_id)
    out = Path(out) if out else Path(f"{run_id}.{fmt}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("parquet needs pyarrow: run `make setup` (or pip install "
                             "pyarrow), or choose --format csv or json") from None
        df.attrs = {"run_id": run_id, "host": host}
        df.to_parquet(out, index=False)
    elif fmt == "csv":
        df.to_csv(out, index=False)
        out.with_name(out.name + ".host.json").write_text(json.dumps(host, indent=2))
    else:
        rows = json.loads(df.to_json(orient="records"))
        out.write_text(json.dumps({"run_id": run_id, "host": host, "rows": rows}, indent=1))
    return out

