"""The seed's cost table rebuilt from measured memory per instance, one claim line per figure.

The seed packs service instances on hosts by memory (its 8 GB density figures give its
"5 services per VM" and "50 containers per host"). Rebuilt here at the seed's own instance
sizes, prices, hours and service count (inputs, shown, never judged): services per host =
floor(host memory / memory per instance), hosts = ceil(services / services per host),
monthly cost = hosts x price x hours, savings = 100 x (cost A / cost B - 1). The memory per
instance is the family's pooled density slope (:func:`virtbench.rankings.family_estimate`)
with its CI; every step is monotone, so the CI's ends map to the figure's ends (the savings'
interval is the conservative one of its two costs' intervals).

For the cost report: the seed's own cost lines recomputed from their inputs
(:func:`seed_arithmetic`), and a monthly cost rebuilt per variant from its measured memory
at prices and host sizes given as parameters (:func:`rebuilt_costs`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from virtbench import pubvalues, rankings, stats
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


# -- the seed's cost lines, recomputed from their own inputs

COST_SECTION = "Cost analysis"  # the seed's section of the cost figures
ARITHMETIC_COLUMNS = ["claim", "source", "formula", "claimed", "recomputed", "verdict"]


def seed_figure(pub: pd.DataFrame, metric: str, system: str) -> tuple[float, int]:
    """One figure of the seed's cost analysis and its line in the seed; KeyError naming it
    when there is none."""
    row = pubvalues.find(pub, "seed", metric, system, section=COST_SECTION)
    return float(row["value"]), int(row["line"])


def arithmetic_verdict(recomputed: float, claimed: float, tolerance: float = 0.005) -> str:
    """A published figure against the same figure recomputed from its inputs: consistent
    when within ``tolerance`` (relative), equal once both are rounded, or the published
    figure is the recomputed one rounded down; else how far off it is."""
    diff = (recomputed - claimed) / claimed if claimed else math.nan
    ok = (abs(diff) <= tolerance or round(recomputed) == round(claimed)
          or math.floor(recomputed) == claimed)
    return "consistent (arithmetic)" if ok else f"arithmetic off by {100 * diff:+.1f}%"


def staffing_verdict(recomputed: float, claimed: float, tolerance: float = 0.05) -> str:
    """A published staffing total (person-months) against the recomputed one: consistent
    within ``tolerance`` person-months (the seed rounds to one decimal); else the gap."""
    if abs(recomputed - claimed) <= tolerance + 1e-9:
        return "consistent (arithmetic, ~)"
    return f"off by {recomputed - claimed:+.2f} person-months"


def _line(claim: str, formula: str, recomputed: float, claimed: float, ref: int,
          tolerance: float = 0.005) -> dict:
    return dict(claim=claim, source=f"seed L{ref}", formula=formula, claimed=claimed,
                recomputed=round(recomputed, 2),
                verdict=arithmetic_verdict(recomputed, claimed, tolerance))


def seed_arithmetic(pub: pd.DataFrame, hours_per_person_month: float = 160.0
                    ) -> pd.DataFrame:
    """The seed's cost lines, each recomputed from the seed's own inputs: instances needed,
    monthly costs, savings, and staffing totals (extra hours over ``hours_per_person_month``).
    One line each: claim, source, formula, claimed, recomputed, verdict."""
    def v(metric: str, system: str) -> tuple[float, int]:
        return seed_figure(pub, metric, system)

    vm, ecs = "VM (t3.medium)", "Docker on ECS (t3.large)"
    scen, _ = v("scenario size", "all")
    hours, _ = v("hours per month used in cost formula", "all")
    vms, l_vms = v("instances", vm)
    per_vm, _ = v("services per instance", vm)
    p_vm, _ = v("unit price", vm)
    c_vm, l_cvm = v("monthly cost", vm)
    ecs_hosts, l_hosts = v("instances", ecs)
    per_ecs_host, _ = v("containers per instance", ecs)
    p_host, _ = v("unit price", ecs)
    c_host, l_chost = v("monthly cost", ecs)
    c_wasm, _ = v("monthly cost", "Wasm on Lambda")
    lines = [
        _line("VMs needed", f"{scen:g} / {per_vm:g}", scen / per_vm, vms, l_vms),
        _line("VM monthly cost", f"{vms:g} x {p_vm} x {hours:g}", vms * p_vm * hours, c_vm,
              l_cvm),
        _line("ECS hosts needed", f"{scen:g} / {per_ecs_host:g}", scen / per_ecs_host,
              ecs_hosts, l_hosts),
        _line("ECS monthly cost", f"{ecs_hosts:g} x {p_host} x {hours:g}",
              ecs_hosts * p_host * hours, c_host, l_chost)]
    for system, a, b in (("Docker vs VM", c_host, c_vm), ("Wasm vs Docker", c_wasm, c_host),
                         ("Wasm vs VM", c_wasm, c_vm)):
        claimed, ref = v("monthly cost change (savings)", system)
        lines.append(_line(f"saving {system}", f"100 x ({a:g} / {b:g} - 1)",
                           100 * (a / b - 1), claimed, ref, tolerance=0.02))
    for system, extra_metrics, base_metric in (
            ("VM", ("patch management", "monitoring maintenance"), "system administrator effort"),
            ("Docker", ("image updates", "monitoring maintenance"), "DevOps engineer effort"),
            ("Wasm", ("module updates", "monitoring maintenance"), "DevOps engineer effort")):
        base, _ = v(base_metric, system)
        extra = sum(v(m, system)[0] for m in extra_metrics)
        total, ref = v("total staffing", system)
        recomputed = base + extra / hours_per_person_month
        lines.append(dict(claim=f"{system} total staffing", source=f"seed L{ref}",
                          formula=f"{base:g} + {extra:g} h / {hours_per_person_month:g}",
                          claimed=total, recomputed=round(recomputed, 3),
                          verdict=staffing_verdict(recomputed, total)))
    return pd.DataFrame(lines, columns=ARITHMETIC_COLUMNS)


# -- a monthly cost rebuilt per variant from its measured memory

IDLE = {"state": "idle", "guest_memory_mib": "256"}  # a VM at its default guest size
#: the counters a variant's memory per instance is read from, in order: (metric, experiment,
#: workload, conditions); the first whose median is above 0 is used
MEMORY_COUNTERS: tuple[tuple[str, str, str | None, dict[str, str] | None], ...] = (
    ("memory_per_instance", "density", None, None),
    ("instance_footprint", "memory", "http", IDLE),
    ("instance_rss", "memory", "http", IDLE),
    ("total", "memory", None, IDLE),
    ("cgroup_usage+shim_rss", "memory", None, IDLE),
    ("rss", "memory", "mem", IDLE),
)
REBUILT_COLUMNS = ["variant", "counter", "n", "median", "ci_low", "ci_high", "unit", "text",
                   "per_host", "monthly_usd", "low_usd", "high_usd"]


def memory_sample(ds: Dataset, variant: str
                  ) -> tuple[str, dict[str, str] | None, np.ndarray]:
    """The first of :data:`MEMORY_COUNTERS` whose samples of ``variant`` have a median above
    0: its metric, conditions and samples in MiB; when none has, the last counter's (empty,
    or with a median of at most 0)."""
    metric, cond, sample = "", None, np.array([])
    for metric, experiment, workload, cond in MEMORY_COUNTERS:
        sample = ds.sample(variant, metric, experiment, workload=workload, conditions=cond)
        if sample.size and np.median(sample) > 0:
            break
    return metric, cond, sample


def usable_mib(host_memory_gib: float, memory_reserve: float) -> float:
    """The memory of one host left for service instances, in MiB: ``memory_reserve`` (a
    fraction) is kept for the OS and agents."""
    return host_memory_gib * 1024 * (1 - memory_reserve)


def instances_per_host(memory_mib: float, host_mib: float) -> int:
    """Instances of ``memory_mib`` one host of ``host_mib`` holds, at least one (an instance
    larger than a host gets a host of its own)."""
    return max(1, math.floor(host_mib / memory_mib))


def packed_monthly_cost(memory_mib: float, host_mib: float, services: int,
                        price_per_hour: float, hours: float) -> float:
    """USD per month for ``services`` instances packed on hosts by memory: ceil(services /
    :func:`instances_per_host`) hosts x price x hours; NaN for a memory that is not a
    positive number."""
    if not np.isfinite(memory_mib) or memory_mib <= 0:
        return math.nan
    hosts_needed = math.ceil(services / instances_per_host(memory_mib, host_mib))
    return hosts_needed * price_per_hour * hours


def rebuilt_costs(ds: Dataset, *, services: int, host_memory_gib: float,
                  memory_reserve: float, price_per_hour: float, hours: float
                  ) -> pd.DataFrame:
    """Per variant: its memory per instance (:func:`memory_sample`, median [95% CI]), the
    instances one host holds and the monthly cost of ``services`` instances
    (:func:`packed_monthly_cost`) with the bounds the memory's CI gives; "not measured" with
    the reason when no counter has a sample, or when its median is not above 0."""
    host_mib = usable_mib(host_memory_gib, memory_reserve)

    def monthly(mib: float) -> float:
        return packed_monthly_cost(mib, host_mib, services, price_per_hour, hours)

    lines = []
    for variant in ds.variants():
        metric, cond, sample = memory_sample(ds, variant)
        if not sample.size:
            lines.append(dict(variant=variant, n=0, text="not measured: " + ds.reason(
                variant, "memory_per_instance", "density")))
            continue
        est = ds.estimate(sample)
        if est.value <= 0:
            lines.append(dict(variant=variant, counter=metric, n=est.n,
                              text="not measured: the median is <= 0 (below the noise of "
                                   "the counter)"))
            continue
        lines.append(dict(variant=variant, counter=f"{metric}{', idle' if cond else ''}",
                          n=est.n, median=est.value, ci_low=est.low, ci_high=est.high,
                          unit="MiB", per_host=instances_per_host(est.value, host_mib),
                          monthly_usd=monthly(est.value), low_usd=monthly(est.low),
                          high_usd=monthly(est.high)))
    return pd.DataFrame(lines, columns=REBUILT_COLUMNS)
