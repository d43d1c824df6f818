"""A sandboxed container beside plain containers and the bare process, aspect by aspect.

Each :class:`Aspect` names one measured quantity (a metric of an experiment under fixed
conditions, or the geometric mean over the cpu kernels). :func:`relative_costs` sets every
variant against a baseline (``docker/runc``) as a *cost*: the ratio of medians for a
quantity where lower is better (time, memory, system calls), the inverse ratio where higher
is better (throughput), so above 1 always means "costs more than the baseline". A variant or
baseline without samples gets "not measured: ..." with the reason from the data (a table
states each reason once below it; a sentence or a figure reads "not measured, because").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from virtbench import catalog, stats
from virtbench.dataset import Dataset
from virtbench.platforms import SANDBOXED_CONTAINER, VARIANTS, class_of
from virtbench.platforms.native import BASELINE as NATIVE

BASELINE = "docker/runc"
#: The variants a sandbox report compares: the bare process, the plain OCI runtimes and
#: every variant of the sandboxed-container class (registry order).
COMPARED = (NATIVE, "docker/runc", "docker/crun",
            *(v for v in VARIANTS if class_of(v) == SANDBOXED_CONTAINER))
NOT_MEASURED = "not measured: "
BECAUSE = "not measured, because "
CPU_KERNELS = ("hash", "nbody", "chase", "sort", "fib")  # CPU-bound: not the syscall one


@dataclass(frozen=True)
class Aspect:
    """One quantity compared across variants; ``kernels``: the geometric mean of the
    per-kernel ratios over these cpu kernels (``conditions`` then hold the rest)."""

    name: str
    experiment: str
    metric: str
    conditions: dict[str, str] = field(default_factory=dict)
    kernels: tuple[str, ...] = ()

    @property
    def higher_is_better(self) -> bool:
        return catalog.get(self.experiment, self.metric).better == "higher"


ASPECTS: tuple[Aspect, ...] = (
    Aspect("startup (image present)", "startup", "startup", {"network": "bridge"}),
    Aspect("cold startup (image loaded)", "startup", "startup_cold", {"network": "bridge"}),
    Aspect("memory of an idle http server", "memory", "instance_pss", {"state": "idle"}),
    Aspect("CPU kernels (geometric mean)", "cpu", "compute_time", kernels=CPU_KERNELS),
    Aspect("system-call kernel", "cpu", "compute_time", {"kernel": "syscall"}),
    Aspect("sysbench cpu", "sysbench", "events_per_s"),
    Aspect("sysbench memory", "sysbench", "memory_mib_per_s"),
    Aspect("redis GET", "redis", "requests_per_s", {"pipeline": "1", "command": "GET"}),
    Aspect("redis GET, pipeline 16", "redis", "requests_per_s",
           {"pipeline": "16", "command": "GET"}),
    Aspect("http requests/s (light load)", "http", "requests_per_s", {"load": "light"}),
    Aspect("sequential read", "io", "seq_read", {"cache": "warm"}),
    Aspect("sequential write", "io", "seq_write"),
    Aspect("host system calls (distinct)", "syscalls", "host_syscalls_distinct"),
)

COLUMNS = ["aspect", "variant", "class", "n", "ratio", "ratio_low", "ratio_high", "text"]


def _values(ds: Dataset, variant: str, aspect: Aspect,
            kernel: str | None = None) -> pd.Series:
    """The first condition set's per-repetition values (empty: none)."""
    conditions = dict(aspect.conditions)
    if kernel is not None:
        conditions["kernel"] = kernel
    data = ds.measured(variant, aspect.metric, aspect.experiment, None, conditions)
    if data.empty:
        return data["value"]
    first = data[data["conditions"] == data["conditions"].iloc[0]]
    return first["value"]


def _reason(ds: Dataset, variant: str, aspect: Aspect, kernel: str | None = None) -> str:
    if kernel is not None:
        return ds.kernel_reason(variant, aspect.metric, kernel, aspect.experiment)
    return ds.reason(variant, aspect.metric, aspect.experiment)


def cost(ds: Dataset, variant: str, aspect: Aspect,
         baseline: str = BASELINE) -> tuple[stats.Estimate | None, str]:
    """``variant``'s cost relative to ``baseline`` in one aspect (see the module), or None
    and why it is not measured."""
    pairs = []
    for kernel in aspect.kernels or (None,):
        a, b = _values(ds, variant, aspect, kernel), _values(ds, baseline, aspect, kernel)
        for who, values in ((variant, a), (baseline, b)):
            if values.empty:
                what = f" (kernel {kernel})" if kernel else ""
                side = "" if who == variant else f"the baseline {baseline}{what}: "
                return None, NOT_MEASURED + side + _reason(ds, who, aspect, kernel)
        a, b = a.to_numpy(float), b.to_numpy(float)
        pairs.append((b, a) if aspect.higher_is_better else (a, b))
    if aspect.kernels:
        return stats.geomean_ratio_ci(pairs, n_resamples=ds.n_boot), ""
    return stats.ratio_ci(*pairs[0], n_resamples=ds.n_boot), ""


def relative_costs(ds: Dataset, aspects: Sequence[Aspect] = ASPECTS,
                   variants: Sequence[str] = COMPARED,
                   baseline: str = BASELINE) -> pd.DataFrame:
    """One line per (aspect, variant other than the baseline): the cost ratio with its
    bootstrap CI and ``n`` (the smaller sample), or ``text`` saying why it is missing."""
    lines = []
    for aspect in aspects:
        for variant in variants:
            if variant == baseline:
                continue
            est, why = cost(ds, variant, aspect, baseline)
            line = dict(aspect=aspect.name, variant=variant, n=0, ratio=math.nan,
                        ratio_low=math.nan, ratio_high=math.nan, text=why,
                        **{"class": class_of(variant)})
            if est is not None:
                line.update(n=est.n, ratio=est.value, ratio_low=est.low, ratio_high=est.high,
                            text=f"{est} x")
            lines.append(line)
    return pd.DataFrame(lines, columns=COLUMNS)


def summary(ds: Dataset, metrics: Sequence[str], experiment: str,
            variants: Sequence[str] = COMPARED,
            conditions: dict[str, str] | None = None) -> pd.DataFrame:
    """:meth:`Dataset.summary` of ``variants`` (their measured metrics, per condition set),
    with one line saying why for each variant the run holds no rows of at all; ``label``
    joins the metric and its conditions for a figure's rows."""
    present = [v for v in variants if v in ds.variants()]
    frame = ds.summary(list(metrics), present, experiment, complete=False,
                       conditions=conditions) if present else None
    missing = [dict(variant=v, family=VARIANTS[v][0], metric=" / ".join(metrics),
                    workload="", conditions="", unit="", n=0, median=math.nan,
                    ci_low=math.nan, ci_high=math.nan, warnings="",
                    text="not measured: " + ds.absent(v, list(metrics), [experiment]))
               for v in variants if v not in present]
    parts = [f for f in (frame, pd.DataFrame(missing)) if f is not None and len(f)]
    out = pd.concat(parts, ignore_index=True) if parts else ds.summary([], [], experiment)
    order = {v: i for i, v in enumerate(variants)}
    out = out.sort_values("variant", key=lambda c: c.map(order), kind="stable")
    out = out.reset_index(drop=True)
    out["label"] = [f"{m} ({c})" if c else str(m)
                    for m, c in zip(out["metric"], out["conditions"], strict=True)]
    return out


def by_class(check_table: pd.DataFrame) -> pd.DataFrame:
    """The claims check with the lines of a sandboxed variant (measured or not) in a column
    of their own: ``family`` "sandboxed container" instead of the engine's family, so that
    per-family verdicts and charts set gVisor beside container, Wasm and VM."""
    out = check_table.copy()
    sandboxed = [v in VARIANTS and class_of(v) == SANDBOXED_CONTAINER
                 for v in out["variant"]]
    out.loc[sandboxed, "family"] = SANDBOXED_CONTAINER
    return out


def beside_limit(costs: pd.DataFrame, aspects: Sequence[str], limit_pct: float,
                 policy: stats.Policy = stats.POLICY) -> pd.DataFrame:
    """The cost lines of ``aspects`` as a deviation from the baseline in percent (100 x
    (cost - 1), with its CI) and where that CI lies against +-``limit_pct``: "inside",
    "outside" or "straddles" (context for a stated criterion, never a verdict); a line with
    too few samples says so, one not measured gives its reason."""
    near = costs[costs["aspect"].isin(list(aspects))].copy()
    near["deviation_pct"] = 100 * (near["ratio"] - 1)
    near["deviation_low_pct"] = 100 * (near["ratio_low"] - 1)
    near["deviation_high_pct"] = 100 * (near["ratio_high"] - 1)
    where = []
    for n, low, high, text in zip(near["n"], near["deviation_low_pct"],
                                  near["deviation_high_pct"], near["text"], strict=True):
        if n == 0:
            where.append(str(text))
        elif policy.short_of(int(n)):
            where.append(policy.short_of(int(n)))
        elif -limit_pct <= low and high <= limit_pct:
            where.append("inside")
        elif low > limit_pct or high < -limit_pct:
            where.append("outside")
        else:
            where.append("straddles")
    near[f"beside +-{limit_pct:g} %"] = where
    return near.drop(columns=["ratio", "ratio_low", "ratio_high", "text"]).reset_index(
        drop=True)


def headline_lead(costs: pd.DataFrame, policy: stats.Policy = stats.POLICY,
                  baseline: str = BASELINE) -> str:
    """One clause per sandboxed variant: its largest and smallest cost against ``baseline``
    among the aspects the policy lets one quote, else how far it was measured and why not."""
    parts = []
    sandboxed = [v for v in dict.fromkeys(costs["variant"])
                 if class_of(v) == SANDBOXED_CONTAINER]
    for variant in sandboxed:
        own = costs[costs["variant"] == variant]
        measured = own[own["n"] > 0]
        enough = policy.conclusive(measured).sort_values("ratio")
        if len(enough) >= 2:
            hi, lo = enough.iloc[-1], enough.iloc[0]
            parts.append(f"{variant} costs {_ratio(hi)} {baseline}'s {hi['aspect']} and "
                         f"{_ratio(lo)} its {lo['aspect']}")
        elif len(enough):
            parts.append(f"{variant} costs {_ratio(enough.iloc[0])} {baseline}'s "
                         f"{enough.iloc[0]['aspect']}")
        elif len(measured):
            n = int(measured["n"].max())
            parts.append(f"{variant} vs {baseline} measured in {len(measured)} of {len(own)} "
                         f"aspects, {policy.short_of(n)}")
        else:
            why = str(own["text"].iloc[0]) if len(own) else NOT_MEASURED + "no aspect"
            parts.append(f"{variant} {because(why)}")
    return "Sandboxes: " + ("; ".join(parts) if parts else "no sandboxed variant compared")


def because(text: str) -> str:
    """A table's "not measured: REASON" as a sentence: "not measured, because REASON"."""
    return BECAUSE + text.removeprefix(NOT_MEASURED) if text.startswith(NOT_MEASURED) \
        else text


def _ratio(line: pd.Series) -> str:
    return f"{line['ratio']:.2g}x [{line['ratio_low']:.2g}, {line['ratio_high']:.2g}]"
