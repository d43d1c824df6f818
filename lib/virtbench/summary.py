"""Summaries of stored rows: per variant, workload, metric and conditions, the median of the
repetitions with its confidence interval, read through :class:`virtbench.dataset.Dataset`
(one value per repetition, as every report reads them)."""

from __future__ import annotations

import math

import pandas as pd

from virtbench.conditions import parse_conditions, row_conditions_text
from virtbench.dataset import Dataset
from virtbench.results import decode_conditions
from virtbench.stats import median_ci, stability_warnings

KEYS = ["experiment", "family", "variant", "workload", "metric", "conditions", "unit"]
SUMMARY_COLUMNS = KEYS + ["n", "median", "ci_low", "ci_high", "coverage", "reason", "warnings"]


def metric_label(metric: str, conditions: str) -> str:
    """``metric`` with its conditions, e.g. ``startup [network=none]``."""
    found = decode_conditions(conditions)
    if not found:
        return metric
    return f"{metric} [{', '.join(f'{k}={v}' for k, v in found.items())}]"


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One line per (experiment, family, variant, workload, metric, conditions, unit): the
    median of the repetitions (:meth:`Dataset.measured`: warm-ups left out, the readings of
    one repetition reduced to their median) with its CI and the CI's real coverage. A cell
    with no measured value keeps ``n = 0`` and the reason it was not measured."""
    ds = Dataset(df)
    lines = []
    for key, group in ds.df.groupby(KEYS, sort=False):
        line = dict(zip(KEYS, key, strict=True))
        reps = ds.measured(line["variant"], line["metric"], line["experiment"],
                           line["workload"], parse_conditions(line["conditions"]), copy=False)
        mine = reps["conditions"] == row_conditions_text(line["conditions"])
        values = reps.loc[mine, "value"].to_numpy(dtype=float)
        if len(values) == 0:
            reasons = [r for r in group["reason"].unique() if r]
            line.update(n=0, median=math.nan, ci_low=math.nan, ci_high=math.nan,
                        coverage=math.nan, reason="; ".join(reasons) or "no sample",
                        warnings="")
        else:
            est = median_ci(values)
            line.update(n=est.n, median=est.value, ci_low=est.low, ci_high=est.high,
                        coverage=est.coverage if math.isfinite(est.coverage) else 0.95,
                        reason="", warnings="" if len(values) == 1 else
                        "; ".join(stability_warnings(values, line["unit"])))
        lines.append(line)
    return pd.DataFrame(lines, columns=SUMMARY_COLUMNS)


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
    header = ["variant", "workload", "metric", "n", "median", "CI", "unit"]
    rows = []
    for _, s in summary.iterrows():
        if s["n"] == 0:
            ci = f"not measured: {s['reason']}"
            rows.append([s["variant"], s["workload"], metric_label(s["metric"], s["conditions"]),
                         "0", "-", ci, s["unit"]])
        else:
            ci = (f"[{_fmt(s['ci_low'])}, {_fmt(s['ci_high'])}] ({s['coverage']:.0%})"
                  if math.isfinite(s["ci_low"]) else "(no CI at n = 1)")
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
        for k in ("median", "ci_low", "ci_high", "coverage"):
            v = float(s[k])
            rec[k] = None if math.isnan(v) else v
        if s["n"] == 0:
            rec["reason"] = s["reason"]
        records.append(rec)
    return records
