"""Which platform classes meet a start-time, memory and isolation budget on a run.

The seed's decision tree asks for a start under 10 ms, a memory budget, an isolation need.
Here each question is answered from a run: a class (process, container, sandboxed container,
Wasm, VM; :data:`virtbench.platforms.classes.PLATFORM_CLASSES`) is the pooled repetitions of
its variants (:func:`virtbench.rankings.family_estimate`), and a budget is met when the whole
95% CI of the median is within it, missed when the whole CI is beyond it, and undecided when
the CI spans it. The isolation level is what the class is built to give (declared by its
definition, not measured); the isolation experiment's slowdowns are its measured side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from virtbench import claims, stats
from virtbench.dataset import Dataset
from virtbench.platforms import VARIANTS
from virtbench.platforms.classes import PLATFORM_CLASSES, platform_class
from virtbench.rankings import Family, family_estimate

#: Isolation levels, weakest first, and what each means.
LEVELS: dict[str, str] = {
    "process": "its own host process (and, for Wasm, the engine's memory sandbox)",
    "namespace": "its own kernel namespaces and cgroup on the host's kernel",
    "kernel": "a kernel of its own between the workload and the host kernel",
    "hardware": "hardware virtualization",
}
#: The level each class is built to give (its definition in PLATFORM_CLASSES).
CLASS_LEVEL: dict[str, str] = {
    "process": "process", "wasm": "process", "container": "namespace",
    "wasm-in-container": "namespace", "sandboxed-container": "kernel",
    "emulated-vm": "kernel", "hardware-vm": "hardware",
}
#: (metric, experiment) picks per budget, the first with rows answering for a variant.
START_PICKS = (("startup", "startup"), ("startup_cold", "startup"), ("startup_aot", "startup"),
               ("startup_process", "startup"))
MEMORY_PICKS = (("memory_per_instance", "density"),)
START_MEANS = ("cold start of the no-op workload: spawn to exit for a process or an engine, "
               "container start to exit, QEMU spawn to the guest's service up")
MEMORY_MEANS = ("host memory per idle http instance: the density slope of host MemAvailable "
                "(the engine's own memory for Wasm)")


@dataclass(frozen=True)
class _Pick:
    metric: str
    experiment: str
    workload: str | None = None
    variants: tuple[str, ...] = ()
    conditions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Budget:
    """The thresholds asked for (None: not asked)."""

    max_start_ms: float | None = None
    max_mem_mib: float | None = None
    isolation: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_start_ms", "max_mem_mib"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float)
                                          and math.isfinite(value) and value > 0):
                raise ValueError(f"{name.replace('_', '-')} must be a positive number, "
                                 f"got {value!r}")
        if self.isolation is not None and self.isolation not in LEVELS:
            raise ValueError(f"unknown isolation level {self.isolation!r}; valid: "
                             f"{', '.join(LEVELS)} (weakest first)")
        if self.max_start_ms is None and self.max_mem_mib is None and self.isolation is None:
            raise ValueError("give at least one budget: --max-start-ms, --max-mem-mib or "
                             "--isolation")


def meets(family: Family, limit: float) -> str:
    """"meets", "misses" or "undecided" for a budget on a measured class; the class's own
    reason when it was not measured or has too few repetitions."""
    if not family.ranked or family.estimate is None:
        reason = family.reason or "no rows"
        if reason.startswith("inconclusive"):
            return reason
        return "not measured here: " + reason.removeprefix("not measured: ")[:160]
    est = family.estimate
    if est.high <= limit:
        return "meets"
    if est.low > limit:
        return "misses"
    return "undecided (the CI spans the budget)"


def _class_variants(ds: Dataset, kind: str) -> list[str]:
    return [v for v in ds.variants() if v in VARIANTS and platform_class(v) == kind]


def recommend(ds: Dataset, budget: Budget, policy: stats.Policy = stats.POLICY
              ) -> list[dict[str, Any]]:
    """One record per platform class: each budget's measured median, CI, n and outcome, and
    the class's overall answer ("meets", "misses", "undecided", "not measured here")."""
    out = []
    for kind, what in PLATFORM_CLASSES.items():
        variants = _class_variants(ds, kind)
        record: dict[str, Any] = dict(platform_class=kind, what=what,
                                      variants=", ".join(variants))
        outcomes = []
        for name, limit, picks, req in (
                ("start", budget.max_start_ms, START_PICKS, {}),
                ("memory", budget.max_mem_mib, MEMORY_PICKS, {"memory": "engine"})):
            if limit is None:
                continue
            if not variants:
                record[name] = dict(outcome="not measured here: no variant of this class in "
                                    f"run {ds.run_id}")
                outcomes.append("not measured here")
                continue
            fam = family_estimate(ds, kind, variants, [_Pick(m, e) for m, e in picks], req,
                                  policy, claims.unmet)
            outcome = meets(fam, limit)
            est = fam.estimate
            each = {v: meets(family_estimate(ds, v, [v], [_Pick(m, e) for m, e in picks], req,
                                             policy, claims.unmet), limit)
                    for v in fam.variants}
            record[name] = dict(outcome=outcome, limit=limit, unit=fam.unit,
                                variants=", ".join(fam.variants),
                                median=est.value if est else None,
                                ci_low=est.low if est else None,
                                ci_high=est.high if est else None, n=est.n if est else 0,
                                estimate=str(est) if est else "",
                                by_variant={v: o.split(" (")[0].split(":")[0]
                                            for v, o in each.items()})
            outcomes.append(outcome if outcome in ("meets", "misses") else
                            "undecided" if outcome.startswith("undecided") else
                            "not measured here")
        if budget.isolation is not None:
            level = CLASS_LEVEL[kind]
            ok = list(LEVELS).index(level) >= list(LEVELS).index(budget.isolation)
            record["isolation"] = dict(outcome="meets" if ok else "misses", level=level,
                                       means=LEVELS[level])
            outcomes.append("meets" if ok else "misses")
        record["answer"] = ("misses" if "misses" in outcomes else
                            "not measured here" if "not measured here" in outcomes else
                            "undecided" if "undecided" in outcomes else "meets")
        out.append(record)
    return out


def _said(part: Mapping[str, Any]) -> str:
    if part.get("median") is None:
        return part["outcome"]
    groups: dict[str, list[str]] = {}
    for variant, outcome in part["by_variant"].items():
        groups.setdefault(outcome, []).append(variant)
    each = "; ".join(f"{o}: {', '.join(vs)}" for o, vs in groups.items())
    return f"{part['estimate']} {part['unit']}: {part['outcome']} (each variant: {each})"


def text(records: list[dict[str, Any]], budget: Budget, run_id: str) -> str:
    """The answer as lines a person reads."""
    asked = [f"start <= {budget.max_start_ms:g} ms" if budget.max_start_ms else "",
             f"memory <= {budget.max_mem_mib:g} MiB per instance" if budget.max_mem_mib
             else "", f"isolation >= {budget.isolation}" if budget.isolation else ""]
    lines = [f"run {run_id}; asked: {', '.join(a for a in asked if a)}"]
    for r in records:
        split = any(o == "misses" for name in ("start", "memory") if name in r
                    for o in r[name].get("by_variant", {}).values())
        lines.append(f"{r['platform_class']}: {r['answer'].upper()}"
                     + (" (the class's median; not every variant)" if split
                        and r["answer"] == "meets" else ""))
        for name in ("start", "memory"):
            if name in r:
                lines.append(f"  {name}: {_said(r[name])}")
        if "isolation" in r:
            iso = r["isolation"]
            lines.append(f"  isolation: {iso['level']} ({iso['means']}; declared by the "
                         f"class, not measured): {iso['outcome']}")
    lines.append(f"start = {START_MEANS}; memory = {MEMORY_MEANS}; a budget is met when the "
                 "whole 95% CI of the median is within it")
    return "\n".join(lines)
