"""Summaries of stored rows: per variant, workload, metric and conditions, the median with its
95% CI."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from virtbench.platforms.native import BASELINE
from virtbench.results import decode_conditions
from virtbench.stats import median_ci, ratio_ci, stability_warnings

KEYS = ["experiment", "family", "variant", "workload", "metric", "conditions", "unit"]
SUMMARY_COLUMNS = KEYS + ["n", "median", "ci_low", "ci_high", "reason", "warnings"]


def metric_label(metric: str, conditions: str) -> str:
    """``metric`` with its conditions, e.g. ``startup [network=none]``."""
    found = decode_conditions(conditions)
    if not found:
        return metric
    return f"{metric} [{', '.join(f'{k}={v}' for k, v in found.items())}]"


def _with_conditions(df: pd.DataFrame) -> pd.DataFrame:
    return df if "conditions" in df else df.assign(conditions="")


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One line per (experiment, family, variant, workload, metric, conditions, unit).

    Warm-up samples are left out. A cell with no measured value keeps ``n = 0`` and the
    reason it was not measured.
    """
    df = _with_conditions(df)
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
    """Median of each variant divided by the baseline's, per experiment/workload/metric and
    conditions, with CI. The baseline's samples are those under the same conditions, else
    those under none (a bare process has no network)."""
    data = _with_conditions(df[df["value"].notna() & ~df["warmup"]])
    lines = []
    for (exp, wl, metric, unit), group in data.groupby(["experiment", "workload", "metric",
                                                        "unit"]):
        bases = group[group["variant"] == baseline]
        for (family, variant, cond), sub in group.groupby(["family", "variant", "conditions"],
                                                          sort=False):
            same = bases[bases["conditions"] == cond]
            base = (same if len(same) else bases[bases["conditions"] == ""])["value"].to_numpy(
                dtype=float)
            if len(base) == 0 or float(np.median(base)) == 0:
                continue  # no baseline, or a zero baseline (e.g. an error count): no ratio
            est = ratio_ci(sub["value"].to_numpy(dtype=float), base)
            lines.append(dict(experiment=exp, family=family, variant=variant, workload=wl,
                              metric=metric, conditions=cond, unit=unit, baseline=baseline,
                              ratio=est.value,
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
            rows.append([s["variant"], s["workload"], metric_label(s["metric"], s["conditions"]),
                         "0", "-", ci, s["unit"]])
        else:
            ci = f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}]"
            rows.append([s["variant"], s["workload"], metric_label(s["metric"], s["conditions"]),
                         str(s["n"]), _fmt(s["median"]), ci, s["unit"]])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    widths = [min(w, 70) for w in widths]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(str(c)[:70].ljust(w) for c, w in zip(r, widths, strict=True))
              for r in rows]
    warned = summary[summary["warnings"].astype(str) != ""]
    for _, s in warned.iterrows():
        lines.append(f"warning: {s['variant']} {metric_label(s['metric'], s['conditions'])}: "
                     f"{s['warnings']}")
    return "\n".join(lines)


def summary_records(summary: pd.DataFrame) -> list[dict]:
    """The summary as JSON-ready records (``reason`` only where not measured)."""
    records = []
    for _, s in summary.iterrows():
        rec = {k: s[k] for k in KEYS}
        rec["conditions"] = decode_conditions(s["conditions"])
        rec["n"] = int(s["n"])
        for k in ("median", "ci_low", "ci_high"):
            v = float(s[k])
            rec[k] = None if math.isnan(v) else v
        if s["n"] == 0:
            rec["reason"] = s["reason"]
        records.append(rec)
    return records
