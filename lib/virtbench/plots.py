"""One plot style for every report, and figure helpers that put units on the axes.

Every helper takes the tidy frames of :mod:`virtbench.claims` (samples, summaries, claims
checks, comparisons), returns the matplotlib Figure, and draws an explicit "not measured"
note instead of an empty axis when there is nothing to show.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from virtbench.stats import BYTE_UNITS as _BYTE_UNITS
from virtbench.stats import TIME_UNITS as _TIME_UNITS
from virtbench.stats import _fmt as _fixed
from virtbench.stats import human

FAMILY_COLORS = {"native": "#4d4d4d", "docker": "#1f77b4", "wasm": "#2ca02c", "vm": "#d62728"}
CLAIM_COLOR = "#bbbbbb"
LOG_SPAN = 30.0  # use a log axis when the data span more than this factor


def set_style() -> None:
    """The suite's one style: seaborn whitegrid, colorblind palette, readable sizes."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.autolayout": False,
                         "axes.titlesize": 12, "axes.labelsize": 11})


def label(quantity: str, unit: str) -> str:
    """An axis label with its unit: ``label("startup", "ms") -> "startup (ms)"``."""
    return f"{quantity} ({unit})" if unit else quantity


def family_color(family: str) -> str:
    return FAMILY_COLORS.get(family, "#9467bd")


def _want_log(values: Sequence[float], log: bool | None) -> bool:
    if log is not None:
        return log
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0])
    return v.size > 1 and v.max() / v.min() > LOG_SPAN


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _pad(ax: plt.Axes, values: np.ndarray, log: bool) -> None:
    """Set the x scale and limits so that every value, at the edges too, stays visible."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    if log:
        ax.set_xscale("log")
        ax.set_xlim(lo / 1.6, hi * 1.6)
    else:
        span = (hi - lo) or abs(hi) or 1.0
        ax.set_xlim(lo - 0.06 * span, hi + 0.06 * span)


def no_data(message: str, title: str = "") -> plt.Figure:
    """A small figure that says what is missing, instead of an empty plot."""
    fig, ax = plt.subplots(figsize=(8, 1.2))
    ax.axis("off")
    ax.text(0.0, 0.5, message, va="center", ha="left", fontsize=10, wrap=True)
    if title:
        ax.set_title(title, loc="left")
    return fig


def distribution(samples: pd.DataFrame, quantity: str, unit: str, title: str, *,
                 hue: str = "metric", log: bool | None = None) -> plt.Figure:
    """Every sample per variant (points) over a box of its quartiles; one row per variant."""
    if samples.empty:
        return no_data(f"not measured: no {quantity} samples in this dataset", title)
    order = list(dict.fromkeys(samples["variant"]))
    hues = list(dict.fromkeys(samples[hue])) if hue in samples else None
    height = 0.9 + 0.42 * len(order) * max(1, len(hues or [1]) ** 0.5)
    fig, ax = plt.subplots(figsize=(9, height))
    sns.boxplot(data=samples, x="value", y="variant", hue=hue if hues and len(hues) > 1
                else None, order=order, showfliers=False, ax=ax, fill=False,
                linewidth=0.8, legend=False)
    sns.stripplot(data=samples, x="value", y="variant", hue=hue if hues and len(hues) > 1
                  else None, order=order, dodge=bool(hues and len(hues) > 1), size=3.5,
                  alpha=0.7, ax=ax, legend=bool(hues and 1 < len(hues) <= 12))
    if _want_log(samples["value"], log):
        ax.set_xscale("log")
    ax.set_xlabel(label(quantity, unit))
    ax.set_ylabel("variant")
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def error_bars(center, low, high) -> np.ndarray:
    """Distances from ``center`` to the CI bounds, never negative (matplotlib refuses those;
    a bootstrap CI of a tiny sample can sit beside its point estimate)."""
    center, low, high = (np.asarray(a, dtype=float) for a in (center, low, high))
    return np.clip(np.vstack([center - low, high - center]), 0, None)


def estimates(summary: pd.DataFrame, quantity: str, unit: str, title: str, *,
              reference: float | None = None, log: bool | None = None,
              row: str = "variant") -> plt.Figure:
    """Median with its 95% CI per row (points with error bars); rows not measured are named."""
    measured = summary[summary["n"] > 0]
    missing = summary[summary["n"] == 0]
    if measured.empty:
        reasons = "; ".join(f"{r[row]}: {r['text']}" for _, r in missing.head(4).iterrows())
        return no_data(f"not measured: {reasons or 'no rows'}", title)
    labels = [f"{r[row]} · {r['metric']}" if summary["metric"].nunique() > 1 else str(r[row])
              for _, r in measured.iterrows()]
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.38 * len(measured)))
    y = np.arange(len(measured))
    med = measured["median"].to_numpy(float)
    lo = np.where(np.isfinite(measured["ci_low"]), measured["ci_low"], med)
    hi = np.where(np.isfinite(measured["ci_high"]), measured["ci_high"], med)
    colors = [family_color(f) for f in measured.get("family", pd.Series(["?"] * len(y)))]
    ax.errorbar(med, y, xerr=error_bars(med, lo, hi), fmt="none", ecolor="#555555", capsize=3)
    ax.scatter(med, y, c=colors, zorder=3, s=30)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    values = np.concatenate([lo, hi] + ([[reference]] if reference is not None else []))
    if reference is not None:
        ax.axvline(reference, color="#888888", linestyle="--", linewidth=1)
    _pad(ax, values, _want_log(values, log) and bool((values > 0).all()))
    ax.set_xlabel(label(quantity, unit) + " — median and 95% CI")
    ax.set_title(title, loc="left")
    if len(missing):
        names = ", ".join(missing[row].astype(str).unique()[:6])
        more = "" if missing[row].nunique() <= 6 else ", ..."
        fig.text(0.01, 0.0, f"not measured: {names}{more} (reasons in the table)",
                 fontsize=8, color="#666666", va="bottom")
    fig.tight_layout(rect=(0, 0.04 if len(missing) else 0, 1, 1))
    return fig


def claims_chart(check: pd.DataFrame, title: str, *, log: bool | None = None) -> plt.Figure:
    """Claimed interval (grey bar) beside the measured median and 95% CI, per claim and
    variant; one panel per unit. Lines without a measurement are left out (see the table)."""
    data = check[check["n"].fillna(0) > 0].dropna(subset=["median", "claim_low", "claim_high"])
    if data.empty:
        return no_data("not measured: none of these claims has a measurement in this dataset",
                       title)
    units = list(dict.fromkeys(data["unit"]))
    heights = [max(1, len(data[data["unit"] == u])) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(10, 1.0 + 0.42 * sum(heights)
                                                     + 0.6 * len(units)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, unit in zip(axes[:, 0], units, strict=True):
        part = data[data["unit"] == unit]
        y = np.arange(len(part))
        labels = [f"{_clip(str(r['claim']), 48)} · {r['variant']} (n={int(r['n'])})"
                  for _, r in part.iterrows()]
        low, high = part["claim_low"].to_numpy(float), part["claim_high"].to_numpy(float)
        width = np.where(high > low, high - low, 0)
        ax.barh(y, width, left=low, height=0.6, color=CLAIM_COLOR, label="claimed")
        point = high == low
        ax.scatter(low[point], y[point], marker="|", s=400, linewidths=2.5, color="#888888",
                   zorder=2)
        med = part["median"].to_numpy(float)
        lo = np.where(np.isfinite(part["ci_low"]), part["ci_low"], med)
        hi = np.where(np.isfinite(part["ci_high"]), part["ci_high"], med)
        counted = (part["tallied"].to_numpy(bool) if "tallied" in part
                   else np.ones(len(part), bool))
        for mask, face, text in ((counted, "#1f77b4", "measured median, 95% CI"),
                                 (~counted, "white", "not tallied (small n, not comparable)")):
            if mask.any():
                ax.errorbar(med[mask], y[mask], xerr=error_bars(med, lo, hi)[:, mask], fmt="o",
                            color="#1f77b4", ecolor="#1f77b4", markerfacecolor=face,
                            capsize=3, label=text, zorder=3)
        ax.set_yticks(y, labels, fontsize=8)
        ax.invert_yaxis()
        values = np.concatenate([low, high, lo, hi])
        _pad(ax, values, _want_log(values, log) and bool((values > 0).all()))
        ax.set_xlabel(label("value", unit))
        ax.legend(loc="lower right", fontsize=8)
    axes[0, 0].set_title(title, loc="left")
    fig.tight_layout()
    return fig


def ratios(compare: pd.DataFrame, quantity: str, title: str, *, reference: float = 1.0,
           log: bool | None = None) -> plt.Figure:
    """Ratio of medians to the baseline with its 95% CI, per variant (from Dataset.compare)."""
    if compare.empty:
        return no_data(f"not measured: no {quantity} ratios (baseline or variants missing)",
                       title)
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.38 * len(compare)))
    y = np.arange(len(compare))
    r = compare["ratio"].to_numpy(float)
    lo = np.where(np.isfinite(compare["ratio_low"].astype(float)), compare["ratio_low"], r)
    hi = np.where(np.isfinite(compare["ratio_high"].astype(float)), compare["ratio_high"], r)
    ax.errorbar(r, y, xerr=error_bars(r, lo, hi), fmt="o", capsize=3)
    ax.axvline(reference, color="#888888", linestyle="--", linewidth=1)
    ax.set_yticks(y, compare["variant"])
    ax.invert_yaxis()
    values = np.concatenate([lo, hi, [reference]])
    _pad(ax, values, _want_log(values, log) and bool((values > 0).all()))
    base = compare["baseline"].iloc[0]
    ax.set_xlabel(label(f"{quantity} / {base}", "x") + " — ratio of medians, 95% CI")
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def bars(frame: pd.DataFrame, x: str, y: str, quantity: str, unit: str, title: str, *,
         hue: str | None = None, log: bool | None = None) -> plt.Figure:
    """Plain bars of computed (not sampled) numbers, e.g. a cost table."""
    if frame.empty:
        return no_data(f"not measured: no {quantity}", title)
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.4 * frame[y].nunique() * (1 if hue is None
                                                                           else 1.5)))
    sns.barplot(data=frame, x=x, y=y, hue=hue, ax=ax, orient="h")
    if _want_log(frame[x], log):
        ax.set_xscale("log")
    ax.set_xlabel(label(quantity, unit))
    ax.set_ylabel("")
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def fmt(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits ("-" for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


# Columns that hold a value in the row's ``unit`` (ratios, p-values, counts do not).
VALUE_COLUMNS = frozenset({"value", "median", "ci_low", "ci_high", "median_a", "median_b",
                           "mean", "min", "max", "low", "high", "claim_low", "claim_high",
                           "hodges_lehmann", "p50", "p90", "p99", "std", "mad", "iqr"})
_UNIT_IN_NAME = re.compile(r"\(([^()]+)\)\s*$")


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(
        v, bool | np.bool_)


def _numeric_column(column: pd.Series) -> bool:
    """Whether every filled cell of the column is a number (an object column of counts and
    blanks too), so that its header is right-aligned like its cells."""
    filled = [v for v in column if not (v is None or v == "" or (isinstance(v, float)
                                                                 and math.isnan(v)))]
    return bool(filled) and all(_is_number(v) for v in filled)


def _cell_class(text: str) -> tuple[str, str]:
    """The CSS class and inline style (for notebooks shown without the report's CSS) of a
    text cell: verdicts coloured."""
    if text.startswith(("not measured", "not measurable", "not comparable")):
        return "vb-na", "color:#8a6d3b"
    if text.startswith(("higher than claimed", "lower than claimed")):
        return "vb-bad", "color:#a94442;font-weight:bold"
    if text.startswith("consistent"):
        return "vb-ok", "color:#3c763d;font-weight:bold"
    return "", ""


def _number_text(v, column: str, row_unit: str) -> str:
    """A numeric cell: in human units when the column holds a value in a known unit (its
    row's ``unit`` column or a unit in the column name, e.g. "size (B)"), else the number
    as the notebook rounded it (up to 6 significant digits, no exponent but for p-values)."""
    named = _UNIT_IN_NAME.search(column)
    unit = named.group(1) if named else (row_unit if column in VALUE_COLUMNS else "")
    if unit in _BYTE_UNITS or unit in _TIME_UNITS:
        text = human(v, unit)
        return text[: -len(unit) - 1] if named and text.endswith(" " + unit) else text
    if isinstance(v, int | np.integer):
        return str(int(v))
    x = float(v)
    if not math.isfinite(x):
        return str(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    if abs(x) < 1e-4:
        return f"{x:.3g}"  # a p-value: its order of magnitude
    return _fixed(x, 6)  # the digits the notebook kept (it rounds), never an exponent


def html_table(frame: pd.DataFrame, caption: str = "") -> str:
    """The frame as an HTML table in a box that scrolls sideways on a narrow screen: no
    index, text left-aligned (newlines kept, long text wrapped), numbers right-aligned in
    human units (sizes in B/KiB/MiB/GiB, times in ms or s when the row's ``unit`` column or
    the column name says so), verdict cells coloured."""
    columns = [str(c) for c in frame.columns]
    numeric = [_numeric_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    right = ' class="vb-num" style="text-align:right"'
    head = "".join(f"<th{right if num else ''}>{html.escape(c)}</th>"
                   for c, num in zip(columns, numeric, strict=True))
    units = (frame["unit"].astype(str).tolist() if "unit" in frame.columns
             else [""] * len(frame))
    rows = []
    for (_, r), row_unit in zip(frame.iterrows(), units, strict=True):
        cells = []
        for v, column in zip(r, columns, strict=True):
            if v is None or (isinstance(v, float) and math.isnan(v)):
                cells.append("<td></td>")
            elif _is_number(v):
                cells.append('<td class="vb-num" style="text-align:right">'
                             f"{html.escape(_number_text(v, column, row_unit))}</td>")
            else:
                text = str(v)
                cls, style = _cell_class(text)
                attrs = (f' class="{cls}" style="{style}"' if cls else "")
                cells.append(f"<td{attrs}>{html.escape(text).replace(chr(10), '<br>')}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return ('<div class="vb-scroll" style="overflow-x:auto;max-width:100%">'
            '<table class="vb-table" style="font-size:85%;text-align:left">'
            f"{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def details_html(summary_text: str, content: pd.DataFrame | str, caption: str = "") -> str:
    """A collapsed block: ``<details><summary>summary_text</summary>`` and the table (a frame,
    rendered by :func:`html_table`) or the HTML given."""
    body = html_table(content, caption) if isinstance(content, pd.DataFrame) else str(content)
    return (f"<details class=\"vb-details\"><summary>{html.escape(summary_text)}</summary>"
            f"{body}</details>")


def show(frame: pd.DataFrame, caption: str = "") -> None:
    """Display a table in a notebook (HTML; verdicts coloured)."""
    from IPython.display import HTML, display

    display(HTML(html_table(frame, caption)))


def details(summary_text: str, frame_or_html: pd.DataFrame | str, caption: str = "") -> None:
    """Display a long table (or any HTML) collapsed under a one-line summary that opens it."""
    from IPython.display import HTML, display

    display(HTML(details_html(summary_text, frame_or_html, caption)))


# verdict family -> cell colour of the verdict matrix
VERDICT_COLORS = {
    "consistent": "#b7e1b0", "higher than claimed": "#f4b183", "lower than claimed": "#9ecae1",
    "mixed": "#d9c2e9", "more than claimed": "#b7e1b0", "not confirmed here": "#f4b183",
    "inconclusive": "#e6e6e6", "not comparable": "#f2f2f2", "not measured": "#fafafa",
    "not measurable here": "#ffffff", "no claim": "#ffffff",
}


def verdict_matrix(cells: pd.DataFrame, title: str) -> plt.Figure:
    """Aspects (rows) x systems (columns), each cell coloured by its claim-level verdict, with
    the claim and what was measured written in it. ``cells`` has columns aspect, system,
    verdict (a verdict family), claimed and measured (short texts)."""
    aspects = list(dict.fromkeys(cells["aspect"]))
    systems = list(dict.fromkeys(cells["system"]))
    fig, ax = plt.subplots(figsize=(2.6 * len(systems) + 1.6, 0.95 * len(aspects) + 1.2))
    for i, aspect in enumerate(aspects):
        for j, system in enumerate(systems):
            row = cells[(cells["aspect"] == aspect) & (cells["system"] == system)]
            verdict = str(row["verdict"].iloc[0]) if len(row) else "no claim"
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=VERDICT_COLORS.get(
                verdict, "#ffffff"), edgecolor="#999999", linewidth=0.8))
            text = verdict if not len(row) else (
                f"{_clip(str(row['claimed'].iloc[0]), 26)}\n"
                f"{_clip(str(row['measured'].iloc[0]), 26)}\n{verdict}")
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7.5)
    ax.set_xlim(0, len(systems))
    ax.set_ylim(len(aspects), 0)
    ax.set_xticks(np.arange(len(systems)) + 0.5, systems)
    ax.set_yticks(np.arange(len(aspects)) + 0.5, aspects)
    ax.xaxis.tick_top()
    ax.grid(False)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, loc="left", pad=28)
    fig.tight_layout()
    return fig


def verdict_bars(verdicts: pd.DataFrame, title: str) -> plt.Figure:
    """How many published claims get each verdict, per platform family: one stacked bar per
    family, coloured like :func:`verdict_matrix` (from ``claims.claim_verdicts``)."""
    shown = verdicts[verdicts["family"] != ""]
    if shown.empty:
        return no_data("no claim of this report names a platform that runs here", title)
    order = [v for v in VERDICT_COLORS if v in set(shown["verdict"])]
    order += [v for v in dict.fromkeys(shown["verdict"]) if v not in order]
    counts = shown.groupby(["family", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=order, fill_value=0)
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(counts) + 1.6))
    left = np.zeros(len(counts))
    for verdict in order:
        width = counts[verdict].to_numpy(float)
        ax.barh(counts.index, width, left=left, label=verdict, edgecolor="#999999",
                color=VERDICT_COLORS.get(verdict, "#cccccc"))
        for y, (x0, w) in enumerate(zip(left, width, strict=True)):
            if w:
                ax.text(x0 + w / 2, y, f"{int(w)}", ha="center", va="center", fontsize=8)
        left += width
    ax.invert_yaxis()
    ax.set_xlabel("published claims (one verdict per claim and family)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25 - 0.05 * len(counts)),
              ncol=4, fontsize=8, frameon=False)
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig
