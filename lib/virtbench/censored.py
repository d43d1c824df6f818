"""Censored readings: a row without a value that still bounds the quantity (a density slope
below the noise is at most its CI's upper end), read from the row's tags."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

#: Tags that make a row without a value a censored reading: its value is at most
#: (``upper_bound``) or at least (``lower_bound``) the tag's number.
BOUND_TAGS: dict[str, str] = {"upper_bound": "upper", "lower_bound": "lower"}
#: Density slopes written before those tags: no value and a fit whose 95% CI includes 0.
SLOPE_METRICS = ("memory_per_instance", "pss_per_instance", "rss_per_instance",
                 "cgroup_per_instance")


def row_bound(experiment: str, metric: str, value: float, tags: object) -> tuple[float, str]:
    """The bound a row without a value carries and its kind ("upper" or "lower"); (nan, "")
    for a measured row or one with no bound.

    The tags ``upper_bound`` / ``lower_bound`` say it; a density slope of an older run with
    no value whose fit's CI includes 0 (``slope_ci_low`` <= 0 < ``slope_ci_high``) is bounded
    by ``slope_ci_high``, as those runs' reasons say ("below X MiB per instance").
    """
    if not math.isnan(value) or not isinstance(tags, str) or not tags:
        return math.nan, ""
    found = json.loads(tags)
    for key, kind in BOUND_TAGS.items():
        if key in found:
            return float(found[key]), kind
    if experiment == "density" and metric in SLOPE_METRICS and "slope_ci_high" in found:
        low, high = float(found["slope_ci_low"]), float(found["slope_ci_high"])
        if low <= 0 < high:
            return high, "upper"
    return math.nan, ""


def row_bounds(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Every row's :func:`row_bound` (bounds, kinds). Older density runs have no bound on
    ``instances_per_8gib``: a repetition whose ``memory_per_instance`` is an upper bound b
    gets the lower bound 8192 / b there, as its reason says ("at least N instances")."""
    bound = np.full(len(df), math.nan)
    kind = np.full(len(df), "", dtype=object)
    if not len(df) or not {"experiment", "metric", "tags"} <= set(df.columns):
        return bound, kind
    todo = np.flatnonzero(df["value"].isna().to_numpy() & (df["tags"].fillna("") != ""))
    for i in todo:
        r = df.iloc[i]
        bound[i], kind[i] = row_bound(r["experiment"], r["metric"], math.nan, r["tags"])
    per = df["metric"].to_numpy() == "memory_per_instance"
    per_8gib = (df["metric"].to_numpy() == "instances_per_8gib") & np.isnan(bound) & \
        df["value"].isna().to_numpy()
    if per_8gib.any():
        keys = ["run_id", "variant", "workload", "rep"]
        source = df.loc[per & (kind == "upper"), keys].assign(b=bound[per & (kind == "upper")])
        found = df.loc[per_8gib, keys].merge(source, on=keys, how="left")["b"].to_numpy()
        bound[per_8gib] = 8192 / found
        kind[per_8gib] = np.where(np.isnan(found), "", "lower")
    return bound, kind
