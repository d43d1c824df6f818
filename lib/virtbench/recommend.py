"""Which platform classes meet a start-time, memory and isolation budget on a run.

The seed's decision tree asks for a start under 10 ms, a memory budget, an isolation need.
Here each question is answered from a run, variant by variant: a budget is met when the
whole 95% CI of the variant's own median is within it, missed when the whole CI is beyond
it, undecided when the CI spans it, and inconclusive when the variant has fewer repetitions
than a verdict needs. A class (process, container, sandboxed container, Wasm, VM;
:data:`virtbench.platforms.classes.PLATFORM_CLASSES`) meets the budget when at least one of
its variants meets every part of it, and misses it when every measured variant misses a
part; variants are never pooled into one sample. The isolation level is what the class is
built to give (declared by its definition, not measured); the isolation experiment's
slowdowns are its measured side.
"""

from __future__ import annotations

import math
import re
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


def _short(outcome: str) -> str:
    """"meets", "misses", "undecided", "inconclusive" or "not measured here"."""
    for word in ("meets", "misses", "undecided", "inconclusive"):
        if outcome.startswith(word):
            return word
    return "not measured here"


def _budget_part(ds: Dataset, variant: str, limit: float, picks: tuple[tuple[str, str], ...],
                 req: Mapping[str, str], policy: stats.Policy) -> dict[str, Any]:
    """One variant's own median, CI, n and outcome against one budget."""
    fam = family_estimate(ds, variant, [variant], [_Pick(m, e) for m, e in picks], req,
                          policy, claims.unmet)
    est = fam.estimate if fam.ranked else None
    return dict(outcome=meets(fam, limit), limit=limit, unit=fam.unit,
                median=est.value if est else None, ci_low=est.low if est else None,
                ci_high=est.high if est else None, n=est.n if est else 0,
                estimate=str(est) if est else "")


def _combine(outcomes: list[str]) -> str:
    """A variant's answer from its parts: it misses when one part misses, meets when all
    meet; otherwise the weakest of undecided, inconclusive, not measured here."""
    short = [_short(o) for o in outcomes]
    for word in ("misses", "not measured here", "inconclusive", "undecided"):
        if word in short:
            return word
    return "meets"


def recommend(ds: Dataset, budget: Budget, policy: stats.Policy = stats.POLICY
              ) -> list[dict[str, Any]]:
    """One record per platform class: each variant's medians, CIs, n and outcomes per
    budget, the variants that meet every part, and the class's answer ("meets", "misses",
    "undecided", "inconclusive", "not measured here")."""
    out = []
    for kind, what in PLATFORM_CLASSES.items():
        variants = _class_variants(ds, kind)
        record: dict[str, Any] = dict(platform_class=kind, what=what,
                                      variants=", ".join(variants), by_variant={})
        iso_ok = None
        if budget.isolation is not None:
            level = CLASS_LEVEL[kind]
            iso_ok = list(LEVELS).index(level) >= list(LEVELS).index(budget.isolation)
            record["isolation"] = dict(outcome="meets" if iso_ok else "misses", level=level,
                                       means=LEVELS[level])
        for variant in variants:
            parts: dict[str, Any] = {}
            for name, limit, picks, req in (
                    ("start", budget.max_start_ms, START_PICKS, {}),
                    ("memory", budget.max_mem_mib, MEMORY_PICKS, {"memory": "engine"})):
                if limit is not None:
                    parts[name] = _budget_part(ds, variant, limit, picks, req, policy)
            outcomes = [p["outcome"] for p in parts.values()]
            if iso_ok is not None:
                outcomes.append("meets" if iso_ok else "misses")
            parts["answer"] = _combine(outcomes)
            record["by_variant"][variant] = parts
        answers = [p["answer"] for p in record["by_variant"].values()]
        record["meeting"] = [v for v, p in record["by_variant"].items()
                             if p["answer"] == "meets"]
        if iso_ok is False:
            record["answer"] = "misses"
        elif not variants:
            record["answer"] = "not measured here"
            record["reason"] = f"no variant of this class in run {ds.run_id}"
        elif record["meeting"]:
            record["answer"] = "meets"
        elif answers and all(a == "misses" for a in answers):
            record["answer"] = "misses"
        else:
            record["answer"] = next(w for w in ("undecided", "inconclusive",
                                                "not measured here", "misses")
                                    if w in answers)
        out.append(record)
    return out


def _part_line(name: str, record: Mapping[str, Any]) -> str:
    """One budget's line: the variants grouped by outcome, each with its estimate; those
    without one grouped by their reason, said once."""
    groups: dict[str, list[str]] = {}
    for variant, parts in record["by_variant"].items():
        part = parts[name]
        if part["estimate"]:
            key, said = _short(part["outcome"]), f"{variant} {part['estimate']} {part['unit']}"
        else:
            why = part["outcome"].removeprefix("not measured here: ")
            why = why.replace(f"{variant}: ", "").replace(variant, "the variant")
            why = re.sub(r"^inconclusive \((n = \d+ < \d+).*$", r"\1", why)
            key, said = f"{_short(part['outcome'])} ({why[:160]})", variant
        groups.setdefault(key, []).append(said)
    return f"  {name}: " + "; ".join(f"{o}: {', '.join(vs)}" for o, vs in groups.items())


def text(records: list[dict[str, Any]], budget: Budget, run_id: str) -> str:
    """The answer as lines a person reads."""
    asked = [f"start <= {budget.max_start_ms:g} ms" if budget.max_start_ms else "",
             f"memory <= {budget.max_mem_mib:g} MiB per instance" if budget.max_mem_mib
             else "", f"isolation >= {budget.isolation}" if budget.isolation else ""]
    lines = [f"run {run_id}; asked: {', '.join(a for a in asked if a)}"]
    for r in records:
        head = f"{r['platform_class']}: {r['answer'].upper()}"
        if r["meeting"]:
            head += f" with {', '.join(r['meeting'])}"
        if r.get("reason"):
            head += f" ({r['reason'][:200]})"
        lines.append(head)
        for name in ("start", "memory"):
            if r["by_variant"] and name in next(iter(r["by_variant"].values())):
                lines.append(_part_line(name, r))
        if "isolation" in r:
            iso = r["isolation"]
            lines.append(f"  isolation: {iso['level']} ({iso['means']}; declared by the "
                         f"class, not measured): {iso['outcome']}")
    lines.append(f"start = {START_MEANS}; memory = {MEMORY_MEANS}; a variant meets a budget "
                 "when the whole 95% CI of its own median is within it, with n >= the "
                 "policy's minimum; a class meets it when one of its variants meets every part")
    return "\n".join(lines)
