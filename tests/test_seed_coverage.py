"""Every numbered table row of the seed document is a row of papers/seed_claims.csv.

The seed's Markdown tables (``| a | b |``) and its box-drawn result table (``│ a │ b │``)
are its tables; each data row's line number must be cited ("seed L<n>") by a CSV row.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from virtbench import published

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed"
SEED_DIRS = [SEED, Path("/work/shared/seed")]


def seed_text() -> list[str]:
    for folder in SEED_DIRS:
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if files:
            return files[0].read_text(encoding="utf-8").splitlines()
    pytest.skip("the seed document is not on this machine")


def table_rows(lines: list[str]) -> list[int]:
    """1-based line numbers of the data rows of the seed's tables (no header, no rule)."""
    rows = []
    for i, line in enumerate(lines, 1):
        text = line.strip()
        if text.startswith("|") and not re.fullmatch(r"[|\-\s:]+", text):
            following = lines[i].strip() if i < len(lines) else ""
            if re.fullmatch(r"\|[\-\s:|]+", following):  # the header above the rule
                continue
            rows.append(i)
        elif text.startswith("\u2502") and re.search(r"\d+(\.\d+)?\s*(K|ms|%|MB|GB|s)\b",
                                                      text):  # a result row, not a diagram
            rows.append(i)
    return rows


def cited(pub: pd.DataFrame) -> set[int]:
    """Every seed line a CSV note cites: "L63", "L32-L38" (a range), "L862/L867"."""
    out: set[int] = set()
    for note in pub.loc[pub["source"] == "seed", "note"]:
        for a, b in re.findall(r"L(\d+)(?:-L(\d+))?", str(note)):
            out |= set(range(int(a), int(b or a) + 1))
    return out


def test_every_table_row_of_the_seed_is_in_the_csv():
    lines = seed_text()
    rows = table_rows(lines)
    assert len(rows) >= 30  # the core table, memory, tracing, quick decision, HTTP results
    missing = sorted(set(rows) - cited(published.load()))
    assert not missing, "seed table rows not in seed_claims.csv: " + "; ".join(
        f"L{n}: {lines[n - 1].strip()[:60]}" for n in missing)


def test_added_rows_quote_the_seed_line_exactly():
    lines = seed_text()
    seed = published.load()
    seed = seed[seed["source"] == "seed"]
    quoted = 0
    for note in seed["note"]:
        found = re.match(r"seed L(\d+) '([^']+)'", str(note))
        if found and not found.group(2).isascii():
            line = lines[int(found.group(1)) - 1]
            assert found.group(2) in line or found.group(2).replace(" ", "") in \
                line.replace(" ", ""), note
            quoted += 1
    assert quoted >= 15
