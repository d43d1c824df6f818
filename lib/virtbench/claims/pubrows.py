"""Published rows as claims: which rows a mapping selects, where a row comes from, and the
claimed interval with its unit (divided by another system's row, or read "up to")."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from virtbench import published
from virtbench.claims.model import ClaimMap


def same_text(a: str, b: str) -> bool:
    """Whether two texts are equal but for case and surrounding blanks."""
    return a.strip().casefold() == b.strip().casefold()


class PubColumns:
    """The published rows' columns as lists, read once for the many mappings that select
    from them (:func:`published_rows`)."""

    def __init__(self, pub: pd.DataFrame) -> None:
        self.pub = pub
        self.columns = {c: pub[c].tolist() for c in
                        ("source", "metric", "system", "condition", "stat")}
        self._tables: dict[str, np.ndarray] = {}

    def in_table(self, table: str) -> np.ndarray:
        """Which rows' ``table_or_figure`` contains ``table`` (case-insensitive)."""
        if table not in self._tables:
            self._tables[table] = self.pub["table_or_figure"].str.contains(
                table, case=False, regex=False).to_numpy(bool)
        return self._tables[table]


def published_rows(cm: ClaimMap, pub: pd.DataFrame,
                   columns: PubColumns | None = None) -> pd.DataFrame:
    """The published rows a mapping covers (``columns``: ``PubColumns(pub)``, when the
    caller selects for many mappings)."""
    columns = columns if columns is not None and columns.pub is pub else PubColumns(pub)
    col = columns.columns
    keep = columns.in_table(cm.table).copy()
    for i in np.flatnonzero(keep):  # the few rows of the table, compared as text
        stat = col["stat"][i]
        keep[i] = (col["source"][i] == cm.source
                   # a standard deviation belongs to its mean row; only an explicit stat
                   # selects it
                   and (stat == cm.stat if cm.stat is not None else stat != "sd")
                   and any(same_text(col["metric"][i], x) for x in cm.metrics)
                   and (not cm.systems or any(same_text(col["system"][i], x) for x in cm.systems))
                   and (cm.condition is None or same_text(col["condition"][i], cm.condition)))
    return pub[keep]


def _denominator(row: pd.Series, system: str, pub: pd.DataFrame) -> pd.Series | None:
    """The row of ``system`` with the same source, metric, workload, condition and stat."""
    same = pub[(pub["source"] == row["source"]) & (pub["metric"] == row["metric"])
               & (pub["workload"] == row["workload"]) & (pub["condition"] == row["condition"])
               & (pub["stat"] == row["stat"]) & (pub["system"] == system)]
    return same.iloc[0] if len(same) else None


def reference(row: pd.Series) -> str:
    """Where a published row comes from, short: "seed L31", "edera_2501.04580v1 Abstract"."""
    if row["source"] == "seed":
        note = str(row["note"])
        return note.split(";")[0].split(",")[0] if note.startswith("seed L") else "seed"
    return f"{row['source_id']}, {row['table_or_figure']}"


def claim_text(row: pd.Series) -> str:
    """What a published row claims, short: system, metric, a short condition, p50/p99."""
    parts = [str(row["system"]), str(row["metric"])]
    if row["condition"] and len(str(row["condition"])) <= 32:  # long ones are test setups
        parts.append(f"({row['condition']})")
    if row["stat"] in ("p50", "p99"):
        parts.append(str(row["stat"]))
    return " ".join(parts)


@dataclass
class PublishedClaim:
    """One published row made ready for checking: its interval in a unit, as text."""

    text: str
    low: float
    high: float
    unit: str
    category: str = ""
    precision: float = 0.0


def published_claim(cm: ClaimMap, row: pd.Series, pub: pd.DataFrame) -> PublishedClaim:
    """The claim of a published row as the mapping reads it (divided by the ``over``
    system's row, or "up to" from ``up_to_from``)."""
    if row["value_text"]:
        text = str(row["value_text"])
        return PublishedClaim(text, math.nan, math.nan, "", text)
    low, high = published.claim_interval(row)
    text = f"{published.format_value(row)} {row['unit']}".strip()
    unit = str(row["unit"])
    precision = float(row["precision"]) if low == high else 0.0
    if cm.over:
        den = _denominator(row, cm.over, pub)
        if den is None or not den["value"] or math.isnan(den["value"]):
            return PublishedClaim(f"{text} (no {cm.over} row to divide by)", math.nan, math.nan, "")
        low, high = low / den["value"], high / den["value"]
        text = f"{low:.3g} x {cm.over} ({published.format_value(row)} / " \
               f"{published.format_value(den)} {unit}, derived)"
        unit, precision = "x", 0.0
    if cm.up_to_from is not None:
        low = min(cm.up_to_from, high)
        text = f"up to {text}"
        precision = 0.0
    return PublishedClaim(text, low, high, unit, precision=precision)
