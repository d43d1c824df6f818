"""One published figure found by what it is (its source, metric and system; where needed its
table, section, condition or paper version), for the notebooks' arithmetic on the published
rows (``papers/*.csv``, :mod:`virtbench.published`)."""

from __future__ import annotations

import pandas as pd

#: seconds per unit of a published duration
SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}


def find(pub: pd.DataFrame, source: str, metric: str | None = None,
         system: str | None = None, *, condition: str | None = None, table: str | None = None,
         section: str | None = None, version: str | None = None) -> pd.Series:
    """The first published row of ``source`` with this metric, system, condition and section
    (each exact, when given), in a table or figure whose name contains ``table``, of the
    paper ``version`` (its ``source_id`` ends with it, e.g. "v2"). KeyError naming the
    figure when there is none."""
    rows = pub[pub["source"] == source]
    for column, wanted in (("metric", metric), ("system", system),
                           ("condition", condition), ("section", section)):
        if wanted is not None:
            rows = rows[rows[column] == wanted]
    if table is not None:
        rows = rows[rows["table_or_figure"].str.contains(table, regex=False)]
    if version is not None:
        rows = rows[rows["source_id"].str.endswith(version)]
    if rows.empty:
        asked = ", ".join(f"{k}={v!r}" for k, v in (
            ("metric", metric), ("system", system), ("condition", condition),
            ("table", table), ("section", section), ("version", version)) if v is not None)
        raise KeyError(f"no published {source} row with {asked or 'any value'}")
    return rows.iloc[0]


def value(pub: pd.DataFrame, source: str, metric: str | None = None,
          system: str | None = None, **where: str) -> float:
    """The value of :func:`find` (the same arguments)."""
    return float(find(pub, source, metric, system, **where)["value"])


def seconds(row: pd.Series) -> float:
    """A published duration in seconds; ValueError for a unit that is not a time."""
    unit = str(row["unit"])
    if unit not in SECONDS:
        raise ValueError(f"published {row['metric']!r} is in {unit!r}, not a time; valid: "
                         f"{', '.join(SECONDS)}")
    return float(row["value"]) * SECONDS[unit]
