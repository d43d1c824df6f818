"""The seed's cost table rebuilt from measured memory per instance, one claim line per figure.

The seed packs service instances on hosts by memory (its 8 GB density figures give its
"5 services per VM" and "50 containers per host"). Rebuilt here at the seed's own instance
sizes, prices, hours and service count (inputs, shown, never judged): services per host =
floor(host memory / memory per instance), hosts = ceil(services / services per host),
monthly cost = hosts x price x hours, savings = 100 x (cost A / cost B - 1). The memory per
instance is the family's pooled density slope (:func:`virtbench.rankings.family_estimate`)
with its CI; every step is monotone, so the CI's ends map to the figure's ends (the savings'
interval is the conservative one of its two costs' intervals).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from virtbench import rankings, stats
from virtbench.dataset import Dataset

KIND = "cost"
#: published metric -> the derived figure it is
FIGURES = {
    "services per instance": "per_host",
    "containers per instance": "per_host",
    "instances": "hosts",
    "monthly cost": "cost",
    "monthly cost (comparison bar)": "cost",
    "monthly cost change (savings)": "savings",
}
#: published rows that are the model's inputs, found by metric and system "all" or host
SERVICES, HOURS, PRICE = "scenario size", "hours per month used in cost formula", "unit price"


@dataclass(frozen=True)
class Interval:
    """A derived figure with the interval carried from the memory's CI."""

    value: float
    low: float
    high: float
    n: int

    def estimate(self) -> stats.Estimate:
        return stats.Estimate(self.value, self.low, self.high, self.n)

    def __str__(self) -> str:
        def show(x: float) -> str:
            return "inf" if math.isinf(x) else f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
        return f"{show(self.value)} [{show(self.low)}, {show(self.high)}] (n={self.n})"


def per_host(memory_mib: Interval, host_mib: float) -> Interval:
    """Service instances one host holds: floor(host memory / memory per instance)."""
    def f(m: float) -> float:
        if math.isnan(m):
            return math.nan
        return math.inf if m <= 0 else float(math.floor(host_mib / m))
    return Interval(f(memory_mib.value), f(memory_mib.high), f(memory_mib.low), memory_mib.n)


def hosts(per: Interval, services: float) -> Interval:
    """Hosts for ``services`` instances: ceil(services / instances per host)."""
    def f(p: float) -> float:
        if math.isnan(p):
            return math.nan
        return math.inf if p < 1 else float(max(1, math.ceil(services / p)))
    return Interval(f(per.value), f(per.high), f(per.low), per.n)


def monthly_cost(count: Interval, price_per_hour: float, hours: float) -> Interval:
    """Hosts x price per hour x hours per month."""
    k = price_per_hour * hours
    return Interval(count.value * k, count.low * k, count.high * k, count.n)


def savings(cost: Interval, base: Interval) -> Interval:
    """100 x (cost / base - 1), the interval from the two intervals' ends."""
    def f(a: float, b: float) -> float:
        return 100 * (a / b - 1) if b and math.isfinite(b) else math.nan
    return Interval(f(cost.value, base.value), f(cost.low, base.high),
                    f(cost.high, base.low), min(cost.n, base.n))


def _input(pub: pd.DataFrame, row: pd.Series, metric: str, system: str) -> float:
    same = pub[(pub["source"] == row["source"]) & (pub["metric"] == metric)
               & (pub["system"] == system) & (pub["table_or_figure"] == row["table_or_figure"])]
    if same.empty or math.isnan(float(same["value"].iloc[0])):
        raise ValueError(f"the cost model needs the published {metric!r} of {system!r}")
    return float(same["value"].iloc[0])


def check_row(ds: Dataset, row: pd.Series, pub: pd.DataFrame, spec: Mapping[str, Any],
              readings: Sequence[Any], req: Mapping[str, Any], systems: Mapping[str, Any],
              policy: stats.Policy, unmet: Callable[..., str]) -> list[dict]:
    """The check line of one published cost figure (see the module docstring)."""
    figure = FIGURES.get(str(row["metric"]))
    system = str(row["system"])
    hosts_spec: Mapping[str, Any] = spec["hosts"]
    alias: Mapping[str, str] = spec.get("aliases", {})
    if figure is None:
        return [dict(variant="", n=0, verdict=f"not measured: {row['metric']!r} is not a "
                     "figure of the rebuilt cost model")]
    names = [alias.get(s.strip(), s.strip()) for s in system.split(" vs ")]
    missing = [n for n in names if n not in hosts_spec]
    if missing:
        why = spec.get("not_rebuilt", {}).get(missing[0], "")
        return [dict(variant="", n=0, verdict=f"not measurable here: {why}" if why else
                     f"not measured: no host of the cost model stands for {missing[0]!r}")]
    services = _input(pub, row, SERVICES, "all")
    hours = _input(pub, row, HOURS, "all")
    parts = []
    for name in names:
        host = hosts_spec[name]
        need = {**req, **host.get("requires", {})}
        fam = rankings.family_estimate(ds, name, systems.get(name, ()), readings[0].picks,
                                       need, policy, unmet)
        parts.append((name, host, fam))
    mine = parts[0][2]
    line = dict(reading="", variant=" | ".join(mine.variants), family=mine.family,
                metric=" | ".join(p.metric for p in readings[0].picks), n=0,
                conditions="", code=", ".join(sorted(mine.codes)))
    unranked = [(n, f) for n, _, f in parts if not f.ranked]
    if unranked:
        name, fam = unranked[0]
        return [{**line, "verdict": fam.reason if name == names[0] else
                 f"{fam.reason.split(':')[0]}: the {name} side: {fam.reason}"}]
    derived, said = [], []
    for name, host, fam in parts:
        est = fam.estimate
        memory = Interval(est.value, est.low, est.high, est.n)  # type: ignore[union-attr]
        host_mib = float(host["memory_gib"]) * 1024
        per = per_host(memory, host_mib)
        price = _input(pub, row, PRICE, name)
        value = {"per_host": per, "hosts": hosts(per, services),
                 "cost": monthly_cost(hosts(per, services), price, hours)}
        derived.append(value)
        said.append(f"{name}: {est} MiB per instance (n={est.n}) -> {per.value:g} per "  # type: ignore[union-attr]
                    f"{host['memory_gib']:g} GiB host, {value['hosts'].value:g} hosts for "
                    f"{services:g} services, ${value['cost'].value:,.0f}/month at "
                    f"${price}/h x {hours:g} h")
    result = (savings(derived[0]["cost"], derived[1]["cost"]) if figure == "savings"
              else derived[0][figure])
    unit = {"per_host": "instances", "hosts": "hosts", "cost": "USD/month",
            "savings": "%"}[figure]
    claim_low, claim_high = float(row["value"]), float(row["value"])
    precision = float(row["precision"]) if row["stat"] != "approx" else 0.0
    verdict = stats.judge(result.estimate(), claim_low, claim_high, precision=precision,
                          exact=False, policy=policy)
    return [{**line, "n": result.n, "median": result.value, "ci_low": result.low,
             "ci_high": result.high, "unit": unit, "claim_low": claim_low,
             "claim_high": claim_high, "tolerance_low": verdict.tolerance_low,
             "tolerance_high": verdict.tolerance_high, "verdict": verdict.verdict,
             "measured": f"{result} {unit}",
             "method": "; ".join(said) + ("; savings = 100 x (cost / base cost - 1), the "
                                          "interval from the costs' ends" if figure ==
                                          "savings" else "")}]


def validate(spec: Mapping[str, Any], systems: Mapping[str, Any]) -> str:
    """Why a cost claim's ``spec`` is not usable ("" when it is)."""
    hosts_spec = spec.get("hosts")
    if not isinstance(hosts_spec, dict) or not hosts_spec:
        return "a cost claim needs spec.hosts: host system -> { memory_gib = N }"
    for name, host in hosts_spec.items():
        if name not in systems:
            return f"spec.hosts: system {name!r} is not in [systems]"
        if not isinstance(host, dict) or not isinstance(host.get("memory_gib"), int | float) \
                or host["memory_gib"] <= 0:
            return f"spec.hosts.{name!r} needs memory_gib, a positive number"
        extra = set(host) - {"memory_gib", "requires"}
        if extra:
            return f"spec.hosts.{name!r}: unknown field {sorted(extra)[0]!r}; valid: " \
                   "memory_gib, requires"
    extra = set(spec) - {"hosts", "aliases", "not_rebuilt"}
    if extra:
        return f"unknown spec field {sorted(extra)[0]!r} of a cost claim; valid: hosts, " \
               "aliases, not_rebuilt"
    return ""
