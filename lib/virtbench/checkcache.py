"""A computed claims check kept on disk, keyed by everything it depends on.

The check of a whole run reads every claim against thousands of rows and takes seconds; the
same run, map, published figures, policy and library give the same table, so it is computed
once and read back (``<cache>/claims/<key>.pkl``). Any change of an input file or of a
library source makes a new key; nothing stale is ever shown.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from virtbench.paths import PACKAGE_DIR, cache_dir


def key_of(inputs: Iterable[Path], params: dict) -> str:
    """sha256 over the input files' contents, the parameters and the library's sources."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    sources = sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)
    for path in [*sorted(Path(p) for p in inputs), *sources]:
        digest.update(str(path).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"(absent)")
    return digest.hexdigest()


def cached(compute: Callable[[], pd.DataFrame], inputs: Iterable[Path], params: dict
           ) -> pd.DataFrame:
    """``compute()``, or the table it gave before for the same inputs and parameters."""
    folder = cache_dir() / "claims"
    path = folder / f"{key_of(inputs, params)}.pkl"
    if path.is_file():
        try:
            return pickle.loads(path.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            path.unlink(missing_ok=True)  # unreadable: compute it again
    table = compute()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(table, fh)
    os.replace(tmp, path)
    return table
