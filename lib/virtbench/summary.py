"""Summaries of stored rows: per variant, workload and metric, the median with its 95% CI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from virtbench.stats import median_ci, ratio_ci, stability_warnings

KEYS = ["experiment", "family", "variant", "workload", "metric", "unit"]
SUMMARY_COLUMNS = KEYS + ["n", "median", "ci_low", "ci_high", "reason", "warnings"]
BASELINE = "native/static"


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One line per (experiment, family, variant, workload, metric, unit).

    Warm-up samples are left out. A cell with no measured value keeps ``n = 0`` and the
    reason it was not measured.
    """
    lines = []
    for key, group in df.groupby(KEYS, sort=False):
        values = group.loc[~group["warmup"], "value"].dropna().to_numpy(dtype=float)
        line = dict(zip(KEYS, key, strict=True))
        if len(values) == 0:
            reasons = [r for r in group["reason"].unique() if r]
            line.update(n=0, median=math.nan, ci_low=math.nan, ci_high=math.nan,
                        reason="; ".join(reasons) or "no sample", warnings="")
        else:
            est = median_ci(values)
            line.update(n=est.n, median=est.value, ci_low=est.low, ci_high=est.high, reason="",
                        warnings="" if len(values) == 1 else
                        "; ".join(stability_warnings(values, line["unit"])))
        lines.append(line)
    return pd.DataFrame(lines, columns=SUMMARY_COLUMNS)


def ratios_to_baseline(df: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Median of each variant divided by the baseline's, per experiment/workload/metric, with CI."""
    data = df[df["value"].notna() & ~df["warmup"]]
    lines = []
    for (exp, wl, metric, unit), group in data.groupby(["experiment", "workload", "metric",
                                                        "unit"]):
        base = group.loc[group["variant"] == baseline, "value"].to_numpy(dtype=float)
        if len(base) == 0 or float(np.median(base)) == 0:
            continue  # no baseline, or a zero baseline (e.g. an error count): no ratio
        for (family, variant), sub in group.groupby(["family", "variant"], sort=False):
            est = ratio_ci(sub["value"].to_numpy(dtype=float), base)
            lines.append(dict(experiment=exp, family=family, variant=variant, workload=wl,
                              metric=metric, unit=unit, baseline=baseline, ratio=est.value,
                              ci_low=est.low, ci_high=est.high, n=est.n))
    return pd.DataFrame(lines)


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.4g}"


def format_summary(summary: pd.DataFrame) -> str:
    """A plain-text table for the terminal."""
    if summary.empty:
        return "no rows"
    header = ["variant", "workload", "metric", "n", "median", "95% CI", "unit"]
    rows = []
    for _, s in summary.iterrows():
        if s["n"] == 0:
            ci = f"not measured: {s['reason']}"
            rows.append([s["variant"], s["workload"], s["metric"], "0", "-", ci, s["unit"]])
        else:
            ci = f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]"
            rows.append([s["variant"], s["workload"], s["metric"], str(s["n"]),
                         _fmt(s["median"]), ci, s["unit"]])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    widths = [min(w, 70) for w in widths]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c)[:70].ljust(w) for c, w in zip(r, widths, strict=True))
              for r in rows]
    warned = summary[summary["warnings"].astype(str) != ""]
    for _, s in warned.iterrows():
        lines.append(f"warning: {s['variant']} {s['metric']}: {s['warnings']}")
    return "\n".join(lines)


def summary_records(summary: pd.DataFrame) -> list[dict]:
    """The summary as JSON-ready records (``reason`` only where not measured)."""
    records = []
    for _, s in summary.iterrows():
        rec = {k: s[k] for k in KEYS}
        rec["n"] = int(s["n"])
        for k in ("median", "ci_low", "ci_high"):
            v = float(s[k])
            rec[k] = None if math.isnan(v) else v
        if s["n"] == 0:
            rec["reason"] = s["reason"]
        records.append(rec)
    return records
