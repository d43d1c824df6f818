"""The like-for-like rules: what a claim requires of a measured line (a platform class, an
accelerator, the engine's own memory, a condition value or bound), the conditions a pick is
read with so that lines that do not meet them show as context, and why a line does not."""

from __future__ import annotations

import math
from typing import Any

from virtbench import catalog
from virtbench import conditions as conditions_mod
from virtbench.claims.model import Pick

# What a claim can require of a measured line besides row conditions (catalog.CONDITIONS):
REQUIREMENTS: dict[str, str] = {
    "platform": "the variant's platform class (virtbench.platforms.classes.PLATFORM_CLASSES)",
    "accel": "a VM's accelerator: hardware (KVM) | emulated (TCG); other platforms have none",
    "memory": "engine: a Wasm number counts the engine's own memory (its CLI process, or the "
              "marginal memory of one more instance inside one engine), never the Python or "
              "Node process that embeds it",
}
# What a condition value means, for the reason of a line that does not meet a requirement.
VALUE_MEANS: dict[tuple[str, str], str] = {
    ("cache", "warm"): "reads from the page cache",
    ("cache", "cold"): "reads from the disk",
    ("userland", "minimal"): "a kernel + busybox initramfs guest",
    ("userland", "debian"): "a Debian minbase root disk, no systemd",
    ("userland", "debian-systemd"): "a full-OS guest booting with systemd",
    ("load", "light"): "a light load (wrk, 1 thread, 10 connections, seconds)",
    ("load", "seed"): "the seed's load (10,000 connections, all cores, long)",
    ("kernel", "syscall"): "the system-call kernel",
}
# What a row without a condition key (and no default value) was measured under.
ABSENT_MEANS: dict[str, str] = {"packing": "one host process per instance"}


def parse_bound(text: str) -> tuple[str, float] | None:
    """A numeric requirement: ("==" | ">=" | "<=", number); None when not one."""
    op = text[:2] if text[:2] in (">=", "<=") else "=="
    number = text[2:] if op != "==" else text
    try:
        return op, float(number.strip())
    except ValueError:
        return None


def query_for(pick: Pick, req: dict[str, Any]) -> dict[str, Any]:
    """The conditions to read a pick with: its own, and every value of each enumerated
    condition the claim requires (so the rows that do not meet it are shown as context)."""
    query = dict(pick.conditions)
    names = pick.metric.split("+")
    for key in req:
        if key in catalog.VALUES and key not in query and all(
                key in catalog.get(pick.experiment, m).conditions for m in names):
            query[key] = list(catalog.VALUES[key])
    return query


def _said(key: str, value: str) -> str:
    means = VALUE_MEANS.get((key, value))
    return f"{key}={value}" + (f" ({means})" if means else "")


def _wants(key: str, want: Any) -> str:
    values = [want] if isinstance(want, str) else list(want)
    return " or ".join(_said(key, v) if key in catalog.VALUES else f"{key} {v}"
                       for v in values)


def unmet(req: dict[str, Any], variant: str, experiment: str, metric: str,
          conditions: dict[str, str]) -> str:
    """Why a measured line does not meet a claim's requirements ("" when it does)."""
    from virtbench.platforms import classes

    why = []
    for key, want in req.items():
        wants = [want] if isinstance(want, str) else list(want)
        if key in ("platform", "accel", "memory"):
            try:
                kind = classes.platform_class(variant)
                host = classes.engine_host(variant)
            except ValueError:
                why.append(f"{variant} is not a registered variant: its platform class is "
                           "unknown")
                continue
            if key == "platform" and kind not in wants:
                why.append(f"{variant} is {classes.PLATFORM_CLASSES[kind]}; the claim assumes "
                           + " or ".join(classes.PLATFORM_CLASSES[w] for w in wants))
            elif key == "accel" and kind.endswith("-vm"):
                accel = kind.split("-")[0]
                if accel not in wants:
                    why.append("emulation: TCG, the claim assumes hardware virtualization"
                               if accel == "emulated" else
                               f"{accel} virtualization, the claim assumes {' or '.join(wants)}")
            elif key == "memory" and host in ("python", "node") and _counts_host(
                    experiment, metric, conditions):
                runtime = "Python worker" if host == "python" else "Node process"
                why.append(f"{metric} counts the {runtime} that embeds the engine; the claim "
                           "speaks of the engine's own memory")
            continue
        value = conditions.get(key, conditions_mod.DEFAULTS.get(key))
        if value is None:
            said = f"{key} not given ({ABSENT_MEANS[key]})" if key in ABSENT_MEANS else \
                f"the row does not state {key}"
            why.append(f"{said}; the claim assumes {_wants(key, want)}")
        elif key in catalog.VALUES:
            if value not in wants:
                why.append(f"{_said(key, value)}; the claim assumes {_wants(key, want)}")
        else:
            op, bound = parse_bound(str(wants[0])) or ("==", math.nan)
            number = float(value) if value.replace(".", "", 1).isdigit() else math.nan
            ok = {"==": number == bound, ">=": number >= bound, "<=": number <= bound}[op]
            if not ok:
                why.append(f"{key}={value}; the claim assumes {key} {wants[0]}")
    return "; ".join(why)


def _counts_host(experiment: str, metric: str, conditions: dict[str, str]) -> bool:
    """Whether a memory number of an embedded Wasm engine includes its host process: every
    whole-process counter does; the slope over instances inside one process does not."""
    if experiment == "memory" and metric in ("rss_per_instance",):
        return False
    if experiment == "density" and conditions.get("packing") == "one_process":
        return False
    return experiment in ("memory", "density", "startup")
