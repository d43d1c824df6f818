"""Tables of the reports, through pandas ``Styler``: text left-aligned, numbers right-aligned
in human units, an estimate and its CI as one "median [low, high] unit" cell, each distinct
reason for a missing number stated once below the table, long tables folded.

The frames stay numeric; every conversion to text happens here, at display.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from virtbench.stats import (
    BYTE_UNITS,
    POLICY,
    TIME_UNITS,
    Policy,
    _fmt,
    human,
    order_statistic_ranks,
)

if TYPE_CHECKING:  # pandas' Styler imports jinja2: only the reports need it
    from pandas.io.formats.style import Styler

FOLD_ROWS = 15  # a table with more rows than this is folded under a one-line summary
# Columns that hold a value in the row's ``unit`` (ratios, p-values, counts do not).
VALUE_COLUMNS = frozenset({"value", "median", "ci_low", "ci_high", "median_a", "median_b",
                           "mean", "min", "max", "low", "high", "claim_low", "claim_high",
                           "hodges_lehmann", "p50", "p90", "p99", "std", "mad", "iqr"})
# Columns that hold a p-value: "< 0.001" or two significant digits.
P_COLUMNS = frozenset({"p", "p_holm", "p_value"})
# (members, shown as): numeric columns shown as one text cell
ESTIMATE = ("median", "ci_low", "ci_high")
RATIO = ("ratio", "ratio_low", "ratio_high")
TOLERANCE = ("tolerance_low", "tolerance_high")
ESTIMATE_LABEL = "median [95% CI]"
RATIO_LABEL = "ratio [95% CI]"
TOLERANCE_LABEL = "claim with tolerance"
# text columns whose cell stands in for an estimate that is missing (a reason, an exact size)
FALLBACK = ("text", "measured")
# a cell that says why a number is missing: the label stays, the reason becomes a footnote
REASON = re.compile(r"^(not measured|not measurable here|not available|not supported|"
                    r"not comparable|failed|preparation failed|inconclusive)(?:: )(.{24,})$",
                    re.DOTALL)
_UNIT_IN_NAME = re.compile(r"\(([^()]+)\)\s*$")


# -- numbers in human units ------------------------------------------------------------------

def _scale(value: float, unit: str) -> tuple[float, str]:
    """The factor and unit that :func:`virtbench.stats.human` would print ``value`` in."""
    if unit in BYTE_UNITS:
        raw = abs(value) * 1024 ** BYTE_UNITS.index(unit)
        i = 0
        while raw >= 1024 and i < len(BYTE_UNITS) - 1:
            raw, i = raw / 1024, i + 1
        return 1024.0 ** (BYTE_UNITS.index(unit) - i), BYTE_UNITS[i]
    if unit in TIME_UNITS:
        seconds = abs(value) * TIME_UNITS[unit]
        if seconds >= 1:
            return TIME_UNITS[unit], "s"
        if seconds >= 1e-3 or TIME_UNITS[unit] >= 1e-3:
            return TIME_UNITS[unit] / 1e-3, "ms"
        return 1.0, unit
    return 1.0, unit


def _decimals(value: float, width: float) -> int:
    """Enough decimals for five steps across the interval, else three significant digits."""
    if width > 0 and math.isfinite(width):
        return min(9, max(0, math.ceil(math.log10(5 / width))))
    if value == 0 or not math.isfinite(value):
        return 0
    return min(9, max(0, 2 - math.floor(math.log10(abs(value)))))


def _number(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def estimate_text(value: float, low: float, high: float, unit: str = "",
                  n: int | None = None) -> str:
    """A median and its CI in one human unit: ``"9.28 [9.20, 9.35] MiB"``; without a CI
    ``"9.28 MiB (n=1, no CI)"``; an interval that covers less than 95% (tiny n) says so, and
    one that is the whole range of the sample is called a range, not a CI. One infinite end
    (a censored sample's interval) shows as -\u221e or \u221e."""
    if value is None or not math.isfinite(float(value)):
        return ""
    ends = [float(x) for x in (low, high) if x is not None]
    if len(ends) == 2 and not any(math.isnan(x) for x in ends) and \
            sum(math.isinf(x) for x in ends) == 1:
        inner = [x if math.isfinite(x) else float(value) for x in ends]
        text = estimate_text(value, *inner, unit, n)
        shown = "-\u221e" if math.isinf(ends[0]) else "\u221e"
        head, _, rest = text.partition(" [")
        lo_text, _, tail = rest.partition(", ")
        hi_text, _, after = tail.partition("]")
        return (f"{head} [{shown if math.isinf(ends[0]) else lo_text}, "
                f"{shown if math.isinf(ends[1]) else hi_text}]{after}")
    ok = low is not None and high is not None and math.isfinite(float(low)) \
        and math.isfinite(float(high))
    biggest = max([abs(float(value))] + ([abs(float(low)), abs(float(high))] if ok else []))
    factor, shown = _scale(biggest, unit)
    v = float(value) * factor
    tail = f" {shown}" if shown else ""
    if not ok:
        count = f"n={int(n)}, " if n is not None and n == n else ""
        return f"{_fmt(v, 3)}{tail} ({count}no CI)"
    lo, hi = float(low) * factor, float(high) * factor
    d = _decimals(v, hi - lo)
    note = ""
    if n is not None and n == n and int(n) >= 2:
        rank_low, rank_high, coverage = order_statistic_ranks(int(n))
        if coverage < 0.95 - 1e-12:
            note = (f" (range, n = {int(n)}: not a 95% CI)"
                    if (rank_low, rank_high) == (1, int(n))
                    else f" ({coverage:.0%} CI, n = {int(n)})")
    return f"{_number(v, d)} [{_number(lo, d)}, {_number(hi, d)}]{tail}{note}"


def row_estimate(row) -> str:
    """:func:`estimate_text` of one line of a summary (its median, ci_low, ci_high, unit,
    n), or its ``text`` (the reason) when it has no median."""
    median = float(row.get("median", math.nan))
    if not math.isfinite(median):
        return str(row.get("text", "") or "")
    return estimate_text(median, row.get("ci_low", math.nan), row.get("ci_high", math.nan),
                         str(row.get("unit", "") or ""), row.get("n"))


def span_text(lines: pd.DataFrame, what: str, none: str, policy: Policy = POLICY) -> str:
    """"WHAT from A (variant) to B (variant)" over the summary lines the policy lets one
    conclude from (:meth:`Policy.conclusive`), by median; "WHAT inconclusive (n = k <
    min_n)" when lines were measured but none has enough samples; ``none`` when nothing was
    measured."""
    measured = lines[lines["n"].fillna(0) > 0]
    enough = policy.conclusive(measured).sort_values("median")
    if len(enough):
        low, high = enough.iloc[0], enough.iloc[-1]
        return (f"{what} from {row_estimate(low)} ({low['variant']}) to "
                f"{row_estimate(high)} ({high['variant']})")
    if len(measured):
        return f"{what} {policy.short_of(int(measured['n'].max()))}"
    return none


def ratio_text(ratio: float, low: float, high: float) -> str:
    """A ratio of medians and its CI: ``"1.32x [1.25, 1.40]"``."""
    if ratio is None or not math.isfinite(float(ratio)):
        return ""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return f"{_fmt(float(ratio), 3)}x (no CI)"
    d = _decimals(float(ratio), float(high) - float(low))
    return f"{float(ratio):.{d}f}x [{float(low):.{d}f}, {float(high):.{d}f}]"


def range_text(low: float, high: float, unit: str = "") -> str:
    """A closed range in one human unit: ``"[1.43, 1.58] s"``."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return ""
    factor, shown = _scale(max(abs(float(low)), abs(float(high))), unit)
    lo, hi = float(low) * factor, float(high) * factor
    d = _decimals(hi or lo, 0.0)
    return f"[{_number(lo, d)}, {_number(hi, d)}]" + (f" {shown}" if shown else "")


def between_text(low: float, high: float, unit: str = "") -> str:
    """From one value to another in human units, three significant digits, joined by an en
    dash as the claims are: one unit when both read well in it (``"9.28\u2013186 MiB"``),
    else each in its own (``"202 ms\u20133 s"``); one value when they are equal."""
    if not (math.isfinite(float(low)) and math.isfinite(float(high))):
        return ""
    factor, shown = _scale(max(abs(float(low)), abs(float(high))), unit)
    lo, hi = (_fmt(float(x) * factor, 3) for x in (low, high))
    if lo == hi:
        return human(float(high), unit)
    own = human(float(low), unit)
    if shown and not own.endswith(" " + shown):  # the low end reads better in its own unit
        return f"{own}\u2013{human(float(high), unit)}"
    return f"{lo}\u2013{hi} {shown}" if shown else f"{lo}\u2013{hi}"


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_)


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v == ""


def p_text(p: float) -> str:
    """A p-value in a table cell: "< 0.001" or two significant digits ("0.021"), the
    wording of :func:`virtbench.compare.format_p` without its "p"."""
    from virtbench.compare import format_p

    said = format_p(p)
    return said.removeprefix("p = ").removeprefix("p ")


def number_text(v, column: str, row_unit: str) -> str:
    """A numeric cell: in human units when the column holds a value in a known unit (its
    row's ``unit`` column or a unit in the column name, e.g. "size (B)"), else the number
    with at most six significant digits and no exponent (but for tiny p-values)."""
    if column in P_COLUMNS:
        return p_text(float(v))
    named = _UNIT_IN_NAME.search(column)
    unit = named.group(1) if named else (row_unit if column in VALUE_COLUMNS else "")
    if unit in BYTE_UNITS or unit in TIME_UNITS:
        text = human(v, unit)
        return text[: -len(unit) - 1] if named and text.endswith(" " + unit) else text
    if isinstance(v, int | np.integer):
        return f"{int(v)}"
    x = float(v)
    if not math.isfinite(x):
        return str(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if abs(x) < 1e-4:
        return f"{x:.3g}"  # a p-value: its order of magnitude
    return _fmt(x, 6)


# -- composing the shown frame ---------------------------------------------------------------

def _compose(frame: pd.DataFrame) -> pd.DataFrame:
    """Estimate, ratio and tolerance columns joined into one text cell each (at the place of
    their first member); a row without an estimate shows its fallback text (the reason)."""
    out = frame.reset_index(drop=True).copy()
    units = out["unit"].astype(str) if "unit" in out else pd.Series([""] * len(out))
    composed = False
    if all(c in out for c in ESTIMATE):
        fallback = next((c for c in FALLBACK if c in out), None)
        n = out["n"] if "n" in out else pd.Series([None] * len(out))
        cells = []
        for i in range(len(out)):
            alt = str(out.at[i, fallback]) if fallback and not _blank(out.at[i, fallback]) \
                else ""
            if alt.endswith("(exact)") or not math.isfinite(float(out.at[i, "median"])):
                cells.append(alt)
            else:
                bound = alt[:2] if alt.startswith(("\u2264 ", "\u2265 ")) else ""  # censored
                cells.append(bound + estimate_text(out.at[i, "median"], out.at[i, "ci_low"],
                                                   out.at[i, "ci_high"], units[i], n[i]))
        out = _replace(out, ESTIMATE + ((fallback,) if fallback else ()), ESTIMATE_LABEL,
                       cells)
        composed = True
    if all(c in out for c in RATIO):
        cells = [ratio_text(r, lo, hi) for r, lo, hi in
                 zip(out["ratio"], out["ratio_low"], out["ratio_high"], strict=True)]
        out = _replace(out, RATIO, RATIO_LABEL, cells)
    if all(c in out for c in TOLERANCE):
        cells = [range_text(lo, hi, u) for lo, hi, u in
                 zip(out["tolerance_low"], out["tolerance_high"], units, strict=True)]
        out = _replace(out, TOLERANCE, TOLERANCE_LABEL, cells)
        composed = True
    if composed and "unit" in out and not (set(out.columns) & VALUE_COLUMNS):
        out = out.drop(columns="unit")
    empty = [c for c in out.columns if len(out) and all(_blank(v) for v in out[c])]
    return out.drop(columns=empty)


def _replace(frame: pd.DataFrame, members: Sequence[str], label: str,
             cells: list[str]) -> pd.DataFrame:
    at = list(frame.columns).index(members[0])
    rest = frame.drop(columns=list(members))
    rest.insert(min(at, rest.shape[1]), label, cells)
    return rest


@dataclass
class Notes:
    """Distinct reasons, numbered in the order met (shared by the tables of one call)."""

    reasons: list[str] = field(default_factory=list)

    def mark(self, text: str) -> str:
        match = REASON.match(text)
        if not match:
            return text
        reason = match.group(2).strip()
        if reason not in self.reasons:
            self.reasons.append(reason)
        return f"{match.group(1)} [{self.reasons.index(reason) + 1}]"

    def html(self) -> str:
        if not self.reasons:
            return ""
        items = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return f'<ol class="vb-notes" style="font-size:80%">{items}</ol>'


def _cell_class(text: str) -> str:
    """Verdict cells coloured (classes of the report's stylesheet)."""
    if text.startswith(("not ", "failed", "preparation failed", "inconclusive")):
        return "vb-na"
    if text.startswith(("higher than claimed", "lower than claimed")):
        return "vb-bad"
    if text.startswith("consistent"):
        return "vb-ok"
    return ""


def _numeric_column(column: pd.Series) -> bool:
    filled = [v for v in column if not _blank(v)]
    return bool(filled) and all(_is_number(v) for v in filled)


_STYLES = [
    {"selector": "", "props": "border-collapse:collapse;font-size:85%;margin:.6rem 0"},
    {"selector": "th", "props": "text-align:left;vertical-align:bottom"},
    {"selector": "td", "props": "text-align:left;vertical-align:top;min-width:4em"},
    {"selector": "th.vb-num, td.vb-num",
     "props": "text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums"},
    {"selector": "td.vb-ok", "props": "color:#2e6b30;font-weight:bold"},
    {"selector": "td.vb-bad", "props": "color:#a94442;font-weight:bold"},
    {"selector": "td.vb-na", "props": "color:#8a6d3b"},
    {"selector": "caption", "props": "text-align:left;caption-side:top"},
]


def styled(frame: pd.DataFrame, caption: str = "", notes: Notes | None = None) -> Styler:
    """The frame as a ``Styler``: no index, estimates joined, reasons as footnote marks
    (collected in ``notes``), numbers right-aligned in human units, text left-aligned."""
    notes = notes if notes is not None else Notes()
    shown = _compose(frame)
    shown.columns = [str(c) for c in shown.columns]
    shown = shown.loc[:, ~pd.Index(shown.columns).duplicated()]
    numeric = {c: _numeric_column(shown[c]) for c in shown.columns}
    composite = {ESTIMATE_LABEL, RATIO_LABEL, TOLERANCE_LABEL}
    units = (shown["unit"].astype(str).tolist() if "unit" in shown
             else [""] * len(shown))
    text = pd.DataFrame("", index=shown.index, columns=shown.columns, dtype=object)
    classes = pd.DataFrame("", index=shown.index, columns=shown.columns, dtype=object)
    for c in shown.columns:
        for i, v in enumerate(shown[c]):
            if _blank(v):
                continue
            if _is_number(v):
                text.iat[i, shown.columns.get_loc(c)] = number_text(v, c, units[i])
                classes.iat[i, shown.columns.get_loc(c)] = "vb-num"
                continue
            if isinstance(v, bool | np.bool_):
                cell = "yes" if v else "no"
            else:
                cell = notes.mark(str(v))
            text.iat[i, shown.columns.get_loc(c)] = cell
            cls = _cell_class(cell)
            if c in composite and not cls and re.match(r"[-\d\[]", cell):
                cls = "vb-num"
            classes.iat[i, shown.columns.get_loc(c)] = cls
    styler = shown.style.hide(axis="index")
    for j, c in enumerate(shown.columns):
        for i in range(len(shown)):
            cell = html.escape(text.iat[i, j]).replace("\n", "<br>")
            styler = styler.format(lambda _v, _cell=cell: _cell, subset=([i], [c]))
    styler = styler.set_td_classes(classes)
    right = {c: [{"selector": "th", "props": "text-align:right"}]
             for c in shown.columns if numeric[c] or c in composite}
    styler = styler.set_table_styles(_STYLES).set_table_styles(right, overwrite=False)
    styler = styler.set_table_attributes('class="vb-table"')
    if caption:
        styler = styler.set_caption(caption)
    return styler


def to_html(frame: pd.DataFrame, caption: str = "", *, fold: int | None = FOLD_ROWS,
            summary: str = "") -> str:
    """The table's HTML in a box that scrolls sideways, its footnotes below it, folded under
    ``summary`` (default: the caption and the row count) when it has more than ``fold``
    rows."""
    notes = Notes()
    table = styled(frame, caption, notes).to_html()
    body = ('<div class="vb-scroll" style="overflow-x:auto;max-width:100%">'
            f"{table}</div>{notes.html()}")
    if fold is not None and len(frame) > fold:
        label = summary or f"{caption or 'Table'} ({len(frame)} rows)"
        return (f'<details class="vb-details"><summary>{html.escape(label)}</summary>'
                f"{body}</details>")
    return body
