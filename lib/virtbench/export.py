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
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {out}: there is no folder {out.parent}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ValueError("parquet needs pyarrow: run `make setup` (or pip install "
                             "pyarrow), or choose --format csv or json") from None
    written = [out] + ([out.with_name(out.name + ".host.json")] if fmt == "csv" else [])
    try:
        _write(df, host, run_id, fmt, written)
    except OSError as exc:  # a full disk, a read-only folder: nothing half-written is left
        for path in written:
            path.unlink(missing_ok=True)
        raise ValueError(f"cannot write {out}: {exc.strerror or exc}") from None
    return out


def _write(df, host: dict, run_id: str, fmt: str, paths: list[Path]) -> None:
    if fmt == "parquet":
        df.attrs = {"run_id": run_id, "host": host}
        df.to_parquet(paths[0], index=False)
    elif fmt == "csv":
        df.to_csv(paths[0], index=False)
        paths[1].write_text(json.dumps(host, indent=2))
    else:
        rows = json.loads(df.to_json(orient="records"))
        paths[0].write_text(json.dumps({"run_id": run_id, "host": host, "rows": rows},
                                       indent=1))
