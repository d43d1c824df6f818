"""Measuring a pick: the rows that answer it for one variant, grouped by workload and
conditions, paired with the baseline's and transformed (or a geometric mean over kernels)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from virtbench import catalog, stats
from virtbench.claims.lookups import memo_of
from virtbench.claims.model import ClaimMap, Pick
from virtbench.claims.transforms import (
    DECREASING,
    FLIPPED,
    GEOMEAN_TRANSFORMS,
    MIB_PER_8GIB,
    TRANSFORMS,
    apply,
)
from virtbench.claims.versions import row_versions
from virtbench.conditions import DEFAULTS, paired_conditions
from virtbench.dataset import Dataset


def _cond_dict(text: str) -> dict[str, str]:
    pairs = (part.partition("=") for part in text.split(", ") if part)
    return {k: v for k, _, v in pairs}


def _base_conditions(query: dict[str, Any], cond_text: str) -> dict[str, Any]:
    """The baseline's conditions for a group: the query with each multi-valued key fixed to
    the group's value (the same kernel, the same cache state), and the PAIRED keys."""
    have = _cond_dict(cond_text)
    out = dict(query)
    for key, value in query.items():
        if not isinstance(value, str):
            fixed = have.get(key, DEFAULTS.get(key))
            if fixed is not None:
                out[key] = fixed
    out.update(paired_conditions(cond_text))
    return out


def _measured(ds: Dataset, variant: str, metric: str, experiment: str | None,
              workload: str | None, conditions: dict[str, Any] | None) -> pd.DataFrame:
    """:meth:`Dataset.measured`, remembered for the check (claims share their picks)."""
    key = ("measured", variant, metric, experiment, workload, repr(sorted(
        (conditions or {}).items())))
    memo = memo_of(ds)
    if key not in memo:
        memo[key] = ds.measured(variant, metric, experiment, workload, conditions,
                                censored=True, copy=False)  # read, never changed
    return memo[key]


def _grouped(data: pd.DataFrame, keys: list[str]) -> list[tuple[tuple, pd.DataFrame]]:
    """``data.groupby(keys, sort=False)``: (key, rows) in order of first appearance, rows
    with a missing key left out; without building a grouper for a frame of a few rows."""
    at: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(*(data[k].tolist() for k in keys), strict=True)):
        if not any(pd.isna(k) for k in key):
            at.setdefault(key, []).append(i)
    if len(at) == 1 and len(next(iter(at.values()))) == len(data):
        return [(next(iter(at)), data)]  # one group: all of it
    return [(key, data.iloc[positions]) for key, positions in at.items()]


def _paired(group: pd.DataFrame, base: pd.DataFrame) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """The values of ``group`` and ``base`` paired by run and repetition, and the group's
    censored flags of those pairs: what ``group.merge(base, on=["run_id", "rep"])`` pairs,
    read directly when each (run, rep) occurs once on each side."""
    left = list(zip(group["run_id"].tolist(), group["rep"].tolist(), strict=True))
    right = list(zip(base["run_id"].tolist(), base["rep"].tolist(), strict=True))
    where = {key: i for i, key in enumerate(right)}
    if len(where) < len(right) or len(set(left)) < len(left):
        paired = group.merge(base, on=["run_id", "rep"], suffixes=("", "_b"))
        return (paired["value"].to_numpy(float), paired["value_b"].to_numpy(float),
                paired["censored"].to_numpy(bool))
    mine = [i for i, key in enumerate(left) if key in where]
    theirs = [where[left[i]] for i in mine]
    return (group["value"].to_numpy(float)[mine], base["value"].to_numpy(float)[theirs],
            group["censored"].to_numpy(bool)[mine])


def measure_pick(ds: Dataset, cm: ClaimMap, pick: Pick, variant: str,
                  query: dict[str, Any] | None = None) -> list[dict] | str | None:
    """Checked items for one variant with this pick; a reason string when the baseline is
    missing; None when the variant has no data for it (the next pick is tried)."""
    query = dict(pick.conditions) if query is None else query
    memo = memo_of(ds)
    if ("baseline", cm.baseline) not in memo:  # the first baseline the run has
        memo[("baseline", cm.baseline)] = next((b for b in cm.baseline if len(ds.rows(b))),
                                               cm.baseline[0])
    baseline = memo[("baseline", cm.baseline)]
    if pick.transform in GEOMEAN_TRANSFORMS:
        return _measure_geomean(ds, pick, variant, baseline, query)
    data = _measured(ds, variant, pick.metric, pick.experiment, pick.workload, query)
    if data.empty:
        return None
    unit_out, needs_base = TRANSFORMS[pick.transform]
    unit = unit_out if unit_out is not None else str(data["unit"].iloc[0])
    exact_metric = all(catalog.get(pick.experiment, m).exact for m in pick.metric.split("+"))
    out = []
    base_metric = pick.baseline_metric or pick.metric
    for (wl, cond), group in _grouped(data, ["workload", "conditions"]):
        method = ""
        values = group["value"].to_numpy(float)
        censored = group["censored"].to_numpy(bool)  # values that are only bounds
        bound = next((b for b in group["bound"] if b), "")
        exact = exact_metric
        self_compare = needs_base and variant == baseline
        codes, commits = row_versions(ds, variant, pick.metric, pick.experiment, wl, [cond])
        if pick.transform == "per_8gib":
            if np.median(values) <= 0:
                return (f"{pick.metric} has a median of {np.median(values):.3g} MiB (<= 0: "
                        "smaller than the noise of the counter), so instances per 8 GiB are "
                        "undefined")
            values = MIB_PER_8GIB / values
            bound = FLIPPED.get(bound, bound)
            method = "8192 MiB / memory per instance"
        elif needs_base:
            # the same work on the baseline: its kernel (a PAIRED key) is the group's
            base = _measured(ds, baseline, base_metric, pick.experiment, wl,
                             _base_conditions(query, cond))
            if base.empty:
                why = ds.reason(baseline, base_metric, pick.experiment)
                return f"baseline {baseline} has no {base_metric}: {why}"
            more, more_commits = row_versions(ds, baseline, base_metric, pick.experiment, wl,
                                           set(base["conditions"]))
            codes, commits = codes | more, commits | more_commits
            mine, theirs, paired_censored = _paired(group, base)
            if mine.size >= 2:
                values = apply(pick.transform, mine, theirs)
                censored = paired_censored
                method = f"per repetition against {baseline} (pairs matched by rep)"
            else:
                values = apply(pick.transform, values, float(np.median(base["value"])))
                method = (f"against the median of {baseline} {base_metric} "
                          "(its spread not included)")
            exact = exact and all(catalog.get(pick.experiment, m).exact
                                  for m in base_metric.split("+"))
            if pick.transform in DECREASING:
                bound = FLIPPED.get(bound, bound)
        out.append(dict(workload=wl, conditions=cond, cond=_cond_dict(cond), values=values,
                        unit=unit, method=method, exact=exact, self_compare=self_compare,
                        codes=codes, commits=commits, censored=censored, bound=bound,
                        metric=pick.metric if not needs_base else
                        f"{pick.metric} vs {baseline}"))
    return out


def _measure_geomean(ds: Dataset, pick: Pick, variant: str, baseline: str,
                     query: dict[str, Any]) -> list[dict] | str | None:
    """One item: the geometric mean over the pick's kernels of the ratio of medians to the
    baseline, with its bootstrap CI; a reason when a kernel is missing on either side."""
    kernels = list(query["kernel"])
    others = {k: v for k, v in query.items() if k != "kernel"}
    base_metric = pick.baseline_metric or pick.metric
    pairs, missing, workloads = [], [], []
    codes: set[str] = set()
    commits: set[str] = set()
    for kernel in kernels:
        asked = {**others, "kernel": kernel}
        v = _measured(ds, variant, pick.metric, pick.experiment, pick.workload, asked)
        b = _measured(ds, baseline, base_metric, pick.experiment, pick.workload, asked)
        if v.empty or b.empty:
            missing.append(f"{kernel} on {variant if v.empty else baseline}")
            continue
        workloads += list(v["workload"])
        for who, metric, frame in ((variant, pick.metric, v), (baseline, base_metric, b)):
            more, more_commits = row_versions(ds, who, metric, pick.experiment, pick.workload,
                                           set(frame["conditions"]))
            codes, commits = codes | more, commits | more_commits
        a, c = v["value"].to_numpy(float), b["value"].to_numpy(float)
        pairs.append((c, a) if pick.transform == "geomean_pct_of_baseline_time" else (a, c))
    if len(missing) == len(kernels) and all(" on " + variant in m for m in missing):
        return None
    if missing:
        return (f"no samples of kernel {', '.join(missing)}: a geometric mean needs every "
                f"kernel ({', '.join(kernels)})")
    est = stats.geomean_ratio_ci(pairs, confidence=stats.POLICY.confidence,
                                 n_resamples=ds.n_boot)
    unit = TRANSFORMS[pick.transform][0] or ""
    if pick.transform == "geomean_pct_of_baseline_time":
        est = stats.Estimate(100 * est.value, 100 * est.low, 100 * est.high, est.n)
    said = ("100 x " + baseline + " time / variant time" if unit == "%"
            else "variant / " + baseline)
    return [dict(workload=workloads[0] if workloads else "",
                 conditions=f"kernel=geomean({'|'.join(kernels)})", cond={}, estimate=est,
                 unit=unit, exact=False, self_compare=variant == baseline, codes=codes,
                 commits=commits, metric=f"{pick.metric} vs {baseline}",
                 method=f"geometric mean over the kernels of the ratio of medians ({said}), "
                        "bootstrap CI")]
