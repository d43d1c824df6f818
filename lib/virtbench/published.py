"""Published figures and seed claims: load, validate and query the CSVs in ``papers/``.

Every file has the same 14 columns (see ``COLUMNS``). A row holds either a single number in
``value`` or a range in ``value_low``/``value_high``. Rows with ``stat=categorical`` hold a
string instead (kept in ``value_text``). ``papers/README.md`` describes the sources.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from virtbench.paths import papers_dir

COLUMNS: tuple[str, ...] = (
    "source_id",
    "table_or_figure",
    "section",
    "metric",
    "system",
    "workload",
    "condition",
    "value",
    "value_low",
    "value_high",
    "unit",
    "stat",
    "direction",
    "note",
)

SOURCES: dict[str, str] = {
    "seed": "seed_claims",
    "edera": "edera_2501.04580",
    "lumos": "lumos_2510.05118",
    "isolation": "wasm_isolation_2509.11242",
    "felter": "felter_2015",
    "edera-blog": "edera_blog_eks",
    "unikernels": "unikernels_edge_2403.00515",
}

DIRECTIONS: tuple[str, ...] = ("lower_is_better", "higher_is_better", "none")
CATEGORICAL = "categorical"
NUMERIC_COLUMNS: tuple[str, ...] = ("value", "value_low", "value_high")
# Columns that may never be empty; `unit` is required too, except on categorical rows.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "source_id",
    "table_or_figure",
    "section",
    "metric",
    "system",
    "stat",
    "direction",
    "note",
)
# Columns of the frame returned by `load`.
FRAME_COLUMNS: tuple[str, ...] = (*COLUMNS, "value_text", "precision", "source", "line")


class PublishedDataError(ValueError):
    """A malformed published-data file; the message gives file, line, column and what is valid."""

    def __init__(self, path: Path, line: int | None, column: str | None, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.column = column
        where = f"{self.path}" if line is None else f"{self.path}:{line}"
        if column is not None:
            where += f": column {column!r}"
        super().__init__(f"{where}: {problem}")


def _valid_sources() -> str:
    return ", ".join(SOURCES)


def source_path(source: str, papers: Path | None = None) -> Path:
    """The CSV file of a source given by its short name (see ``SOURCES``)."""
    if source not in SOURCES:
        raise ValueError(f"unknown published source {source!r}; valid sources: {_valid_sources()}")
    return Path(papers if papers is not None else papers_dir()) / f"{SOURCES[source]}.csv"


def _parse_number(path: Path, line: int, column: str, text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise PublishedDataError(
            path,
            line,
            column,
            f"{text!r} is not a number; expected a finite decimal like 381 or 2.14",
        )
    return number


def _check_header(path: Path, header: list[str] | None) -> None:
    expected = ", ".join(COLUMNS)
    if header is None:
        raise PublishedDataError(path, 1, None, f"file is empty; the header must be: {expected}")
    for index, name in enumerate(COLUMNS):
        found = header[index] if index < len(header) else None
        if found != name:
            got = "missing" if found is None else f"{found!r}"
            raise PublishedDataError(
                path,
                1,
                name,
                f"header field {index + 1} is {got}, expected {name!r}; "
                f"the header must be exactly: {expected}",
            )
    if len(header) > len(COLUMNS):
        raise PublishedDataError(
            path,
            1,
            header[len(COLUMNS)],
            f"unexpected extra header field; the header must be exactly: {expected}",
        )


def _parse_row(path: Path, line: int, fields: list[str]) -> dict[str, Any]:
    """Validate one data row and return it as a record of the loaded frame."""
    if len(fields) != len(COLUMNS):
        raise PublishedDataError(
            path, line, None, f"row has {len(fields)} fields, expected {len(COLUMNS)}"
        )
    row = dict(zip(COLUMNS, fields, strict=True))
    categorical = row["stat"] == CATEGORICAL

    required = REQUIRED_COLUMNS if categorical else (*REQUIRED_COLUMNS, "unit")
    for column in required:
        if not row[column].strip():
            rule = "" if column != "unit" else " (only stat=categorical rows may leave it empty)"
            raise PublishedDataError(path, line, column, f"must not be empty{rule}")
    if row["direction"] not in DIRECTIONS:
        raise PublishedDataError(
            path,
            line,
            "direction",
            f"{row['direction']!r} is not valid; expected one of: {', '.join(DIRECTIONS)}",
        )

    record: dict[str, Any] = dict(row)
    record["value_text"] = ""
    record["precision"] = stated_precision(row["value"])
    if categorical:
        if not row["value"].strip():
            raise PublishedDataError(path, line, "value", "categorical rows need a text value")
        for column in ("value_low", "value_high"):
            if row[column]:
                raise PublishedDataError(
                    path, line, column, "must be empty on categorical rows (the text is in value)"
                )
        record.update(value=math.nan, value_low=math.nan, value_high=math.nan, precision=0.0)
        record["value_text"] = row["value"]
        return record

    numbers = {
        column: _parse_number(path, line, column, row[column]) if row[column] else math.nan
        for column in NUMERIC_COLUMNS
    }
    record.update(numbers)
    has_value = bool(row["value"])
    has_low, has_high = bool(row["value_low"]), bool(row["value_high"])
    if has_value and (has_low or has_high):
        raise PublishedDataError(
            path, line, "value", "give either value or value_low and value_high (a range), not both"
        )
    if not has_value:
        if not has_low and not has_high:
            raise PublishedDataError(
                path,
                line,
                "value",
                "is empty; give a number in value, or both value_low and value_high for a range",
            )
        missing = "value_low" if not has_low else "value_high" if not has_high else None
        if missing:
            raise PublishedDataError(
                path, line, missing, "is empty; a range needs both value_low and value_high"
            )
        if numbers["value_low"] > numbers["value_high"]:
            raise PublishedDataError(
                path,
                line,
                "value_low",
                f"{row['value_low']} is greater than value_high {row['value_high']}; "
                "a range needs value_low <= value_high",
            )
    return record


def stated_precision(text: str) -> float:
    """Half a unit of the last digit a number was written with: "1.5" -> 0.05, "30" -> 0.5
    (0 for an empty or non-numeric text)."""
    text = text.strip().lower()
    if not text or not any(c.isdigit() for c in text):
        return 0.0
    mantissa, _, exponent = text.partition("e")
    decimals = len(mantissa.partition(".")[2])
    try:
        return 0.5 * 10.0 ** (int(exponent or 0) - decimals)
    except ValueError:
        return 0.0


def read_file(path: Path, source: str = "") -> list[dict[str, Any]]:
    """Validate one CSV file and return its rows as records (with ``source`` and ``line``)."""
    path = Path(path)
    records: list[dict[str, Any]] = []
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise PublishedDataError(path, None, None, f"cannot read: {error.strerror}") from None
    with handle:
        reader = csv.reader(handle, strict=True)
        try:
            _check_header(path, next(reader, None))
            end = reader.line_num
            for fields in reader:
                # A record starts on the line after the previous one ended (quoted fields
                # may span several lines).
                line, end = end + 1, reader.line_num
                if not fields:  # a blank line
                    continue
                record = _parse_row(path, line, fields)
                record.update(source=source, line=line)
                records.append(record)
        except csv.Error as error:
            raise PublishedDataError(path, reader.line_num, None, f"CSV syntax: {error}") from None
        except UnicodeDecodeError as error:
            problem = f"not UTF-8 text ({error.reason}); is it a CSV file?"
            raise PublishedDataError(path, reader.line_num + 1, None, problem) from None
    return records


def _frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(FRAME_COLUMNS))
    for column in (*NUMERIC_COLUMNS, "precision"):
        frame[column] = frame[column].astype(float)
    frame["line"] = frame["line"].astype(int)
    return frame


def load(source: str | None = None, papers: Path | None = None) -> pd.DataFrame:
    """Load and validate one source (short name, see ``SOURCES``) or, with None, all of them.

    Returns the 14 ``COLUMNS`` (``value``/``value_low``/``value_high`` as floats, NaN when
    empty; other columns as strings, "" when empty) plus ``value_text`` (the text of
    categorical rows), ``source`` (short name) and ``line`` (1-based line in the file).
    """
    names = list(SOURCES) if source is None else [source]
    records: list[dict[str, Any]] = []
    for name in names:
        records.extend(read_file(source_path(name, papers), name))
    return _frame(records)


def claims(
    metric: str | None = None,
    system: str | None = None,
    source: str | None = None,
    df: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Rows whose metric and system contain the given text (case-insensitive)."""
    if df is None:
        df = load(source)
    elif source is not None:
        source_path(source)  # raises for an unknown name
        df = df[df["source"] == source]
    mask = pd.Series(True, index=df.index)
    for column, text in (("metric", metric), ("system", system)):
        if text:
            mask &= df[column].astype(str).str.contains(text, case=False, regex=False)
    return df[mask].reset_index(drop=True)


def _number(value: Any) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    return float(value)


def claim_interval(row: Mapping[str, Any] | pd.Series) -> tuple[float, float]:
    """(low, high) of a claim: (v, v) for a single value, (low, high) for a range."""
    value = _number(row["value"])
    if not math.isnan(value):
        return value, value
    low, high = _number(row["value_low"]), _number(row["value_high"])
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"claim has no numeric value or range: {row.get('metric', '')!r}")
    return low, high


def _format_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def format_value(row: Mapping[str, Any] | pd.Series) -> str:
    """The value of a claim as text: the number, ``low–high`` for a range, or the category."""
    text = row.get("value_text", "")
    if isinstance(text, str) and text:
        return text
    try:
        low, high = claim_interval(row)
    except ValueError:
        return ""
    if low == high and not math.isnan(_number(row["value"])):
        return _format_number(low)
    return f"{_format_number(low)}–{_format_number(high)}"


# (column, header, maximum width) of the terminal table.
_TABLE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("source", "source", 9),
    ("metric", "metric", 44),
    ("system", "system", 26),
    ("condition", "condition", 26),
    ("value", "value", 16),
    ("unit", "unit", 14),
    ("stat", "stat", 12),
)


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(df: pd.DataFrame) -> str:
    """A compact plain-text table of claims for the terminal."""
    if df.empty:
        return "no matching published claims"
    rows = []
    for _, row in df.iterrows():
        cells = []
        for column, _header, width in _TABLE_COLUMNS:
            raw = format_value(row) if column == "value" else str(row.get(column, ""))
            cells.append(_clip(raw, width))
        rows.append(cells)
    headers = [header for _, header, _ in _TABLE_COLUMNS]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    value_index = [column for column, _, _ in _TABLE_COLUMNS].index("value")

    def render(cells: list[str]) -> str:
        padded = [
            cell.rjust(width) if i == value_index else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    lines = [render(headers), render(["-" * w for w in widths])]
    lines += [render(cells) for cells in rows]
    lines.append(f"({len(rows)} claims)")
    return "\n".join(lines)


def to_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts for JSON, with None for missing numbers."""
    return [
        {key: None if isinstance(v, float) and math.isnan(v) else v for key, v in record.items()}
        for record in df.to_dict(orient="records")
    ]


def main(argv: list[str] | None = None) -> int:
    """``virtbench published [SOURCE] [--metric M] [--system S] [--json]``."""
    parser = argparse.ArgumentParser(
        prog="virtbench published",
        description="Show published figures and seed claims from the papers folder.",
    )
    parser.add_argument("source", nargs="?", help=f"one source ({_valid_sources()}); default: all")
    parser.add_argument("--metric", help="only metrics containing this text (case-insensitive)")
    parser.add_argument("--system", help="only systems containing this text (case-insensitive)")
    parser.add_argument("--json", action="store_true", help="print JSON records instead")
    args = parser.parse_args(argv)

    if args.source is not None and args.source not in SOURCES:
        print(
            f"virtbench published: error: unknown source {args.source!r}; "
            f"valid sources: {_valid_sources()}",
            file=sys.stderr,
        )
        return 2
    try:
        selected = claims(args.metric, args.system, source=args.source)
    except PublishedDataError as error:
        print(f"virtbench published: error: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(to_records(selected), ensure_ascii=False, indent=2))
    else:
        print(format_table(selected))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
