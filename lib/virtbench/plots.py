"""One plot style for every report, and figure helpers that put units on the axes.

Every helper takes the tidy frames of :mod:`virtbench.claims` (samples, summaries, claims
checks, comparisons), returns the matplotlib Figure, and draws an explicit "not measured"
note instead of an empty axis when there is nothing to show.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import (
    FuncFormatter,
    LogLocator,
    MaxNLocator,
    MultipleLocator,
    NullLocator,
)

from virtbench import tables
from virtbench.stats import human  # noqa: F401  (re-exported for the notebooks)

FAMILY_COLORS = {"native": "#4d4d4d", "docker": "#1f77b4", "wasm": "#2ca02c", "vm": "#d62728"}
# a report's column (virtbench.platforms.class_of): the family's colour, and its own for the
# sandboxed container
CLASS_COLORS = {"process": FAMILY_COLORS["native"], "container": FAMILY_COLORS["docker"],
                "sandboxed container": "#9467bd", "wasm": FAMILY_COLORS["wasm"],
                "vm": FAMILY_COLORS["vm"]}
CLAIM_COLOR = "#bbbbbb"
LOG_SPAN = 30.0  # use a log axis when the data span more than this factor
# the width of a report's column at 1280 px (60 rem less its padding): a figure this wide
# or narrower is shown at its own size there, not scaled down
PAGE_WIDTH_PX = 928
CELL_PT = 8.5  # text in a grid's cells: 8.5 pt at 100 dpi = 11.8 px on the page


def set_style() -> None:
    """The suite's one style: seaborn whitegrid, colorblind palette, readable sizes; in a
    notebook, every figure shown carries its alt text (:func:`alt_text`)."""
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 100, "figure.autolayout": False,
                         "axes.titlesize": 12, "axes.labelsize": 11})
    _register_alt_text()


def alt_text(fig: plt.Figure) -> str:
    """What a figure shows, in words, from its own texts: the suptitle, each axes' title and
    axis labels, and the note of a :func:`no_data` figure (its axes are off)."""
    parts: list[str] = [fig.get_suptitle() if hasattr(fig, "get_suptitle") else ""]  # 3.8+
    for ax in fig.axes:
        parts += [ax.get_title(loc) for loc in ("left", "center", "right")]
        if ax.axison:
            parts += [ax.get_xlabel(), ax.get_ylabel()]
        else:
            parts += [t.get_text() for t in ax.texts]
    parts += [t.get_text() for t in fig.texts]
    said = [" ".join(p.split()) for p in dict.fromkeys(parts) if p and p.strip()]
    return ". ".join(said) or "a figure without a title"


_ALT = "_virtbench_alt"


def _register_alt_text() -> None:
    """Make the notebook's PNG formatter for matplotlib figures return the figure's alt text
    as the output's metadata (``{"alt": ...}``: nbconvert writes it as the <img> alt)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    png = shell.display_formatter.formatters["image/png"]
    if plt.Figure not in png.type_printers and not plt.get_fignums():
        # the inline backend registers its printer when first loaded (by the first figure
        # otherwise): load it now, while there is no figure that switching would close
        import matplotlib

        plt.switch_backend(matplotlib.get_backend())
    try:
        draw = png.lookup_by_type(plt.Figure)
    except KeyError:
        return  # figures are not shown as PNG here
    if getattr(draw, _ALT, False):
        return

    def with_alt(fig: plt.Figure):
        data = draw(fig)
        return (data, {"alt": alt_text(fig)}) if data else data

    setattr(with_alt, _ALT, True)
    png.for_type(plt.Figure, with_alt)


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


def human_axis(ax: plt.Axes, quantity: str, unit: str, suffix: str = "") -> None:
    """Label the x axis: sizes (B..GiB) and times (ms, s) get tick labels in human units
    ("256 KiB", "1 s"; a log axis of sizes ticks at powers of two) and a label without the
    unit; other units stay in the label, "startup (ms)"."""
    if unit not in tables.BYTE_UNITS and unit not in tables.TIME_UNITS:
        ax.set_xlabel(label(quantity, unit) + suffix)
        return
    if unit in tables.BYTE_UNITS and ax.get_xscale() == "log":
        ax.xaxis.set_major_locator(LogLocator(base=2, numticks=8))
        ax.xaxis.set_minor_locator(NullLocator())
    elif unit in tables.BYTE_UNITS:  # steps of a power of two: 0, 2, 4, 6, 8 GiB
        lo, hi = ax.get_xlim()
        if hi > lo:
            ax.xaxis.set_major_locator(MultipleLocator(2.0 ** round(math.log2((hi - lo) / 5))))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: human(v, unit)))
    ax.set_xlabel(quantity + suffix)


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
    human_axis(ax, quantity, unit)
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
    ax.set_ylim(len(y) - 0.5, -0.5)  # top to bottom, half a row of margin
    values = np.concatenate([lo, hi] + ([[reference]] if reference is not None else []))
    if reference is not None:
        ax.axvline(reference, color="#888888", linestyle="--", linewidth=1)
    _pad(ax, values, _want_log(values, log) and bool((values > 0).all()))
    human_axis(ax, quantity, unit, " — median and 95% CI")
    ax.set_title(title, loc="left")
    if len(missing):
        names = ", ".join(missing[row].astype(str).unique()[:6])
        more = "" if missing[row].nunique() <= 6 else ", ..."
        fig.text(0.01, 0.0, f"not measured: {names}{more} (reasons in the table)",
                 fontsize=8, color="#666666", va="bottom")
    fig.tight_layout(rect=(0, 0.04 if len(missing) else 0, 1, 1))
    return fig


def not_measured_because(check: pd.DataFrame, most: int = 3) -> str:
    """Why a claims check has nothing to chart, from its rows: "not measured, because "
    and its distinct reasons (the ``most`` commonest), or that no claim is mapped here."""
    if check.empty:
        return ("not measured, because no published claim with a number is mapped to this "
                "report")
    unmeasured = check[check["n"].fillna(0) == 0]
    reasons = [str(r) for r in unmeasured.get("reason", pd.Series(dtype=str)).fillna("")
               if str(r).strip()]
    if not reasons:
        return ("not measured, because none of these claims has a measured line with a "
                "claimed number in its unit (the claims check says why, line by line)")
    common = pd.Series(reasons).value_counts()
    said = "; ".join(_clip(r, 140) for r in common.index[:most])
    more = f" (and {len(common) - most} other reasons)" if len(common) > most else ""
    return f"not measured, because {said}{more}"


def claims_chart(check: pd.DataFrame, title: str, *, log: bool | None = None) -> plt.Figure:
    """Per published claim and platform family: the claimed value or range (grey bar; a
    tick for a single value) beside the measured medians with their 95% CIs, one point per
    variant coloured by its family (hollow: the line is not tallied). One panel per unit,
    on a log axis where the values span more than :data:`LOG_SPAN`. Fed by
    :func:`virtbench.claims.check`; lines without a measurement or without a claimed
    number in the measured unit are left out (the claims table has them)."""
    data = check[(check["n"].fillna(0) > 0) & (check["family"].fillna("") != "")]
    data = data.dropna(subset=["median", "claim_low", "claim_high"])
    if data.empty:
        return no_data(not_measured_because(check), title)
    data = data.assign(row=[f"{c}|{f}" for c, f in zip(data["claim_id"], data["family"],
                                                        strict=True)])
    units = list(dict.fromkeys(data["unit"]))
    heights = [data.loc[data["unit"] == u, "row"].nunique() for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(10, 0.9 + 0.5 * sum(heights)
                                                     + 0.9 * len(units)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, unit in zip(axes[:, 0], units, strict=True):
        part = data[data["unit"] == unit]
        rows = list(dict.fromkeys(part["row"]))
        first = part.drop_duplicates("row").set_index("row").loc[rows]
        y = np.arange(len(rows))
        low = first["claim_low"].to_numpy(float)
        high = first["claim_high"].to_numpy(float)
        ax.barh(y, np.where(high > low, high - low, 0), left=low, height=0.7,
                color=CLAIM_COLOR, label="claimed (value or range)")
        point = high == low
        ax.scatter(low[point], y[point], marker="|", s=500, linewidths=3, color="#888888",
                   zorder=2)
        values = [low, high]
        for k, row in enumerate(rows):
            lines = part[part["row"] == row]
            offsets = (np.linspace(-0.25, 0.25, len(lines)) if len(lines) > 1
                       else np.zeros(1))
            med = lines["median"].to_numpy(float)
            lo = np.where(np.isfinite(lines["ci_low"].astype(float)), lines["ci_low"], med)
            hi = np.where(np.isfinite(lines["ci_high"].astype(float)), lines["ci_high"], med)
            counted = lines["tallied"].to_numpy(bool) if "tallied" in lines \
                else np.ones(len(lines), bool)
            color = family_color(str(lines["family"].iloc[0]))
            for mask, face in ((counted, color), (~counted, "white")):
                if mask.any():
                    ax.errorbar(med[mask], k + offsets[mask],
                                xerr=error_bars(med, lo, hi)[:, mask], fmt="o", ms=5,
                                color=color, ecolor=color, markerfacecolor=face,
                                capsize=2, zorder=3)
            values += [lo, hi]
        count = part.groupby("row")["variant"].nunique()
        labels = [f"{_clip(str(r['claim']), 44)} · {r['family']} ({count[row]} var.)"
                  for row, r in first.iterrows()]
        ax.set_yticks(y, labels, fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        v = np.concatenate(values)
        _pad(ax, v, _want_log(v, log) and bool((v[np.isfinite(v)] > 0).all()))
        human_axis(ax, "claimed vs measured", unit, " — median and 95% CI per variant")
    handles = [plt.Rectangle((0, 0), 1, 1, color=CLAIM_COLOR)]
    names = ["claimed"]
    for fam in dict.fromkeys(data["family"]):
        handles.append(plt.Line2D([], [], marker="o", ls="", color=family_color(fam)))
        names.append(fam)
    handles.append(plt.Line2D([], [], marker="o", ls="", color="#555555",
                              markerfacecolor="white"))
    names.append("not tallied")
    axes[0, 0].legend(handles, names, loc="lower left", bbox_to_anchor=(0, 1.0),
                      ncol=len(names), fontsize=8, frameon=False)
    axes[0, 0].set_title(title, loc="left", pad=22)
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
    ax.set_ylim(len(y) - 0.5, -0.5)
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
    human_axis(ax, quantity, unit)
    ax.set_ylabel("")
    ax.set_title(title, loc="left")
    fig.tight_layout()
    return fig


def fmt(value: float, digits: int = 3) -> str:
    """A number with ``digits`` significant digits ("-" for NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def html_table(frame: pd.DataFrame, caption: str = "") -> str:
    """The frame as an HTML table (:func:`virtbench.tables.to_html`, never folded)."""
    return tables.to_html(frame, caption, fold=None)


def details_html(summary_text: str, content: pd.DataFrame | str, caption: str = "") -> str:
    """A collapsed block: ``<details><summary>summary_text</summary>`` and the table (a frame)
    or the HTML given."""
    if isinstance(content, pd.DataFrame):
        return tables.to_html(content, caption, fold=0, summary=summary_text)
    return (f"<details class=\"vb-details\"><summary>{html.escape(summary_text)}</summary>"
            f"{content}</details>")


def _flush_figures() -> None:
    """Show the figures drawn so far before what follows (the inline backend would show
    them at the end of the cell, after a table displayed later in it)."""
    import matplotlib

    if "inline" in matplotlib.get_backend() and plt.get_fignums():
        plt.show()


def show(frame: pd.DataFrame, caption: str = "") -> None:
    """Display a table in a notebook: human units, reasons as footnotes, and folded under
    its caption when longer than :data:`virtbench.tables.FOLD_ROWS` rows."""
    from IPython.display import HTML, display

    _flush_figures()
    display(HTML(tables.to_html(frame, caption)))


def details(summary_text: str, frame_or_html: pd.DataFrame | str, caption: str = "") -> None:
    """Display a table (or any HTML) collapsed under a one-line summary that opens it."""
    from IPython.display import HTML, display

    _flush_figures()
    display(HTML(details_html(summary_text, frame_or_html, caption)))


# verdict family -> cell colour of the verdict matrix
VERDICT_COLORS = {
    "consistent": "#b7e1b0", "higher than claimed": "#f4b183", "lower than claimed": "#9ecae1",
    "mixed": "#d9c2e9", "more than claimed": "#b7e1b0", "not confirmed here": "#f4b183",
    "depends on the reading": "#e8d9f0", "several code versions": "#e6e6e6",
    "inconclusive": "#e6e6e6", "not comparable": "#f2f2f2", "not measured": "#fafafa",
    "not measurable here": "#ffffff", "no claim": "#ffffff",
}


def verdict_matrix(cells: pd.DataFrame, title: str) -> plt.Figure:
    """Aspects (rows) x systems (columns), each cell coloured by its claim-level verdict, with
    the claim and what was measured written in it. ``cells`` has columns aspect, system,
    verdict (a verdict family), claimed and measured (short texts)."""
    aspects = list(dict.fromkeys(cells["aspect"]))
    systems = list(dict.fromkeys(cells["system"]))
    width = min(PAGE_WIDTH_PX / plt.rcParams["figure.dpi"], 2.6 * len(systems) + 1.6)
    fig, ax = plt.subplots(figsize=(width, 1.05 * len(aspects) + 1.2))
    for i, aspect in enumerate(aspects):
        for j, system in enumerate(systems):
            row = cells[(cells["aspect"] == aspect) & (cells["system"] == system)]
            verdict = str(row["verdict"].iloc[0]) if len(row) else "no claim"
            ax.add_patch(plt.Rectangle((j, i), 1, 1, facecolor=VERDICT_COLORS.get(
                verdict, "#ffffff"), edgecolor="#999999", linewidth=0.8))
            text = verdict if not len(row) else "\n".join(
                _clip(line, 24) for field in ("claimed", "measured")
                for line in str(row[field].iloc[0]).split("\n")) + f"\n{verdict}"
            ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=CELL_PT)
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


def relative_costs(costs: pd.DataFrame, title: str, baseline: str) -> plt.Figure:
    """Per aspect (rows), each variant's cost relative to ``baseline`` with its 95% CI, one
    point per variant coloured by its class (:data:`CLASS_COLORS`), on a log axis with the
    baseline at 1; below the axis, one line per variant with aspects not measured: how many,
    and the first reason. Fed by :func:`virtbench.sandboxes.relative_costs`."""
    measured = costs[costs["n"] > 0]
    if measured.empty:
        reasons = costs["text"].value_counts()
        said = "not measured, because " + ("; ".join(
            _clip(str(r).removeprefix("not measured: "), 150) for r in reasons.index[:2])
            or f"no variant was compared with {baseline}")
        return no_data(said, title)
    aspects = list(dict.fromkeys(measured["aspect"]))
    variants = list(dict.fromkeys(measured["variant"]))
    notes = [_clip(f"{variant}: not measured in {len(own)} of "
                   f"{(costs['variant'] == variant).sum()} aspects, e.g. because "
                   + str(own["text"].iloc[0]).removeprefix("not measured: "), 150)
             for variant, own in costs[costs["n"] == 0].groupby("variant", sort=False)]
    height = 1.4 + 0.42 * len(aspects) + 0.16 * len(notes)
    fig, ax = plt.subplots(figsize=(9, height))
    offsets = np.linspace(-0.22, 0.22, len(variants)) if len(variants) > 1 else [0.0]
    values = [1.0]
    for offset, variant in zip(offsets, variants, strict=True):
        own = measured[measured["variant"] == variant]
        y = np.array([aspects.index(a) for a in own["aspect"]], float) + offset
        r = own["ratio"].to_numpy(float)
        lo = np.where(np.isfinite(own["ratio_low"].astype(float)), own["ratio_low"], r)
        hi = np.where(np.isfinite(own["ratio_high"].astype(float)), own["ratio_high"], r)
        color = CLASS_COLORS.get(str(own["class"].iloc[0]), "#8c564b")
        ax.errorbar(r, y, xerr=error_bars(r, lo, hi), fmt="o", ms=5, capsize=2,
                    color=color, label=f"{variant} ({own['class'].iloc[0]})")
        values += [*lo, *hi]
    ax.axvline(1.0, color="#888888", linestyle="--", linewidth=1)
    ax.set_yticks(np.arange(len(aspects)), aspects)
    ax.set_ylim(len(aspects) - 0.5, -0.5)
    v = np.asarray(values, float)
    _pad(ax, v, bool((v[np.isfinite(v)] > 0).all()))
    ax.set_xlabel(f"cost relative to {baseline} (time, memory or 1 / throughput; "
                  "> 1: costs more) — ratio of medians, 95% CI")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=min(3, len(variants)),
              fontsize=8, frameon=False)
    ax.set_title(title, loc="left", pad=22)
    for i, note in enumerate(notes):
        fig.text(0.01, (0.05 + 0.16 * (len(notes) - 1 - i)) / height, note, fontsize=8,
                 color="#666666", va="bottom")
    fig.tight_layout(rect=(0, (0.08 + 0.16 * len(notes)) / height if notes else 0, 1, 1))
    return fig


def verdict_bars(verdicts: pd.DataFrame, title: str) -> plt.Figure:
    """How many published claims get each verdict, per platform family: one stacked bar per
    family, coloured like :func:`verdict_matrix` (from ``claims.claim_verdicts``)."""
    shown = verdicts[verdicts["family"] != ""]
    if shown.empty:
        return no_data("not measured, because no claim of this report names a platform that "
                       "runs here", title)
    order = [v for v in VERDICT_COLORS if v in set(shown["verdict"])]
    order += [v for v in dict.fromkeys(shown["verdict"]) if v not in order]
    counts = shown.groupby(["family", "verdict"]).size().unstack(fill_value=0)
    counts = counts.reindex(columns=order, fill_value=0)
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(counts) + 1.5
                                    + 0.25 * math.ceil(len(order) / 4)))
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
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    rows = math.ceil(len(order) / 4)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, fontsize=8, frameon=False)
    ax.set_title(title, loc="left", pad=8 + 15 * rows)
    fig.tight_layout()
    return fig
