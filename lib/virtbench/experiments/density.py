"""density: the memory per idle instance, and instances per 8 GiB.

Idle instances are started one after another until a count, a memory budget or a time
limit; the host's MemAvailable and the instances' summed PSS, RSS and cgroup usage are read
at checkpoints, and each repetition fits one slope (MiB per instance). Engines that hold
several instances in one process are also read packed (condition ``packing``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import replace

from virtbench.accounting import mem_available_kib, read_memory
from virtbench.experiments.base import Experiment, Option, Params
from virtbench.experiments.shared.serving import IDLE_HOLD_MS
from virtbench.experiments.shared.userland import FULL_OS_OPTION, on_userlands
from virtbench.metric import Metric
from virtbench.platforms.base import Handle, NotSupported, Platform, Workload
from virtbench.process import read_proc_status
from virtbench.stats import fit_slope
from virtbench.store.schema import Measurement

NAME = "density"
_MIB = "MiB"
_SLOPE = ("one repetition's least-squares slope (MiB per instance) of")
#: density rows of a VM guest other than the minimal one: its userland and guest size
_GUEST = ("userland", "guest_memory_mib")
_OVER = (" over the number of idle instances started one after another (readings at "
         "checkpoints, from 0 instances); the repetition is the sample, the readings "
         "within it are not; no value (reason: an upper bound) when the fit's 95% CI "
         "includes 0, the upper end of that CI in the tag upper_bound (a censored sample "
         "of the verdicts), and never a negative value")

METRICS = (
    Metric("memory_per_instance", NAME, _MIB, "lower",
           f"{_SLOPE} the host's MemAvailable drop{_OVER}", _GUEST),
    Metric("pss_per_instance", NAME, _MIB, "lower",
           f"{_SLOPE} the summed PSS of the instances' host processes{_OVER} (packing "
           "one_process: the PSS of one engine process over the number of idle "
           "instances it holds)", ("packing", *_GUEST)),
    Metric("rss_per_instance", NAME, _MIB, "lower",
           f"{_SLOPE} the summed VmRSS of the instances' host processes{_OVER}", _GUEST),
    Metric("cgroup_per_instance", NAME, _MIB, "lower",
           f"{_SLOPE} the summed usage of the instances' own cgroups (Docker: the "
           f"containers' cgroups){_OVER}", _GUEST),
    Metric("memory_per_instance_bound", NAME, _MIB, "lower",
           "when memory_per_instance is not distinguishable from zero (the 95% CI of "
           "its fit includes 0): the upper end of that CI, an upper bound of the memory "
           "per instance at the number of instances started (tag instances)", _GUEST),
    Metric("instances_per_8gib", NAME, "instances", "higher",
           "8192 MiB divided by memory_per_instance (only when that slope is above "
           "zero with 95% confidence; otherwise no value and 8192 MiB divided by its "
           "upper bound in the tag lower_bound)", _GUEST),
)


#: Most idle instances started per repetition, by family: (quick, full). Enough small
#: instances for their sum to rise above the host's MemAvailable noise; a VM is bounded by
#: the memory budget first.
DENSITY_MAX = {"native": (150, 200), "docker": (12, 16), "wasm": (15, 20), "vm": (2, 3)}
DENSITY_FLOOR_MIB = 1024  # never leave the host with less MemAvailable than this
SLOPES = (  # metric, what its readings sum
    ("memory_per_instance", "the host's MemAvailable drop since 0 instances"),
    ("pss_per_instance", "the summed PSS of the instances' host processes"),
    ("rss_per_instance", "the summed VmRSS of the instances' host processes"),
    ("cgroup_per_instance", "the summed usage of the instances' cgroups"),
)


def density_settings(plat: Platform, params: Params) -> dict[str, float]:
    """Count, memory budget and time limit of one density repetition (options override)."""
    o, q = params.options, params.quick
    return {"max_n": int(o.get("density_max", DENSITY_MAX.get(plat.family, (40, 150))[0 if q
                                                                                    else 1])),
            "budget_mib": float(o.get("density_budget_mib", 1024 if q else 4096)),
            "time_s": float(o.get("density_time_s", 60 if q else 600))}


def checkpoints(max_n: int, readings: int = 10) -> set[int]:
    """Counts at which the density experiment reads memory: 0, 1, 2 and about ``readings``
    evenly spaced counts up to ``max_n``."""
    step = max(1, max_n // readings)
    return {0, 1, 2, max_n, *range(step, max_n + 1, step)}


def slope_rows(counts: list[int], series: dict[str, list[float]], tags: dict[str, str],
               described: str) -> list[Measurement]:
    """One repetition's density rows from its readings (``series``: metric -> MiB per count).

    Each slope is this repetition's one sample. A slope whose 95% CI is above zero is a
    value; one whose CI includes zero is an upper bound: a row with no value, the bound in
    its reason and in the tag ``upper_bound`` (a censored sample of the verdicts, see
    :func:`virtbench.censored.row_bound`), plus ``memory_per_instance_bound`` and the tag
    ``lower_bound`` (8192 / bound) on ``instances_per_8gib`` for MemAvailable. One whose
    CI is below zero (memory came back while instances started: other activity on the
    host) is no figure. None of them is ever a negative value.
    """
    n = counts[-1]
    out: list[Measurement] = []
    per: float | None = None
    bound: float | None = None
    for metric, what in SLOPES:
        ys = series.get(metric)
        if ys is None:
            continue
        if len(counts) < 3:
            out.append(Measurement.missing(metric, "MiB", f"only {n} instance(s) started, "
                                           f"{len(counts)} reading(s): no slope", tags=tags))
            continue
        est = fit_slope(counts, ys)
        t = {**tags, "slope": f"{est.value:.4f}", "slope_ci_low": f"{est.low:.4f}",
             "slope_ci_high": f"{est.high:.4f}"}
        ci = f"slope {est.value:.3f}, 95% CI [{est.low:.3f}, {est.high:.3f}] MiB"
        if est.low > 0:
            out.append(Measurement(metric, est.value, "MiB",
                                   f"least-squares slope of {what} over {len(counts)} readings "
                                   f"at 0..{n} idle instances ({described}); fit {ci}",
                                   tags=t))
            if metric == "memory_per_instance":
                per = est.value
        elif est.high > 0:
            out.append(Measurement.missing(
                metric, "MiB", f"below {est.high:.2f} MiB per instance at {n} instances: "
                f"{what} does not rise above the host's noise ({ci} includes 0)",
                tags={**t, "upper_bound": f"{est.high:.4f}"}))
            if metric == "memory_per_instance":
                bound = est.high
                out.append(Measurement(
                    "memory_per_instance_bound", est.high, "MiB",
                    f"upper end of the 95% CI of the MemAvailable slope at {n} instances "
                    f"({ci} includes 0): an upper bound, not an estimate", tags=t))
        else:
            out.append(Measurement.missing(
                metric, "MiB", f"{what} fell while {n} instances started ({ci} below 0): "
                "memory was freed elsewhere on the host; no per-instance figure", tags=t))
    if per is not None:
        out.append(Measurement("instances_per_8gib", 8192 / per, "instances",
                               "8 GiB (8192 MiB) divided by memory_per_instance (host "
                               "MemAvailable drop per instance)", tags=tags))
    else:
        more = (f"; at most {bound:.2f} MiB per instance, so at least {8192 / bound:.0f} "
                f"instances per 8 GiB" if bound else "")
        out.append(Measurement.missing(
            "instances_per_8gib", "instances",
            f"memory_per_instance has no value at {n} instances{more}; see pss_per_instance",
            tags={**tags, "lower_bound": f"{8192 / bound:.1f}"} if bound else tags))
    return out


#: Most idle instances held in one engine process per repetition: (quick, full).
PACKED_MAX = (200, 1000)


def in_one_process(plat: Platform, wl: Workload, max_n: int) -> list[Measurement]:
    """The marginal PSS of one more idle instance in a running engine: a fresh host process
    holding n idle instances, for a few counts n up to ``max_n`` (only variants that can
    hold several; capped where the platform says it cannot hold more)."""
    if not plat.instances_per_process:
        return []
    cap = ""
    if plat.max_instances_per_process and plat.max_instances_per_process[0] < max_n:
        max_n, why = plat.max_instances_per_process
        cap = f"; capped at {max_n}: {why}"
    counts, pss = [], []
    try:
        for n in sorted(checkpoints(max_n, readings=2) - {0}):
            with plat.instance(wl, ["0", IDLE_HOLD_MS], count=n) as handle:
                time.sleep(0.3)
                pss.append(sum(read_proc_status(p).get("Pss", 0) for p in handle.pids) / 1024)
                counts.append(n)
    except Exception as exc:  # the packed fit is extra: its failure is a reason, not a crash
        failure = f"instance count {len(counts) + 1} in one process failed: {exc}"
    else:
        failure = ""
    cond = {"packing": "one_process"}
    if len(counts) < 3:
        return [Measurement.missing("pss_per_instance", "MiB", f"only {len(counts)} packed "
                                    f"reading(s); {failure}".rstrip("; "), conditions=cond)]
    fit = fit_slope(counts, pss)
    return [Measurement(
        "pss_per_instance", fit.value, "MiB",
        f"slope of the PSS of one host process holding n idle instances ({len(counts)} counts "
        f"up to {counts[-1]}) "
        "(mem 0, each its own store/instance in one engine; a fresh process per n), least "
        f"squares{cap}", conditions=cond,
        tags={"instances": str(counts[-1]), "slope_ci_low": f"{fit.low:.3f}",
              "slope_ci_high": f"{fit.high:.3f}", "pss_one_mib": f"{pss[0]:.2f}"})]


#: The userlands besides the minimal one whose density is measured: the full-OS guest.
DENSITY_USERLANDS = ("debian-systemd",)


def measure_density(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """The density of the variant's minimal instances (:func:`density_rows`) and, where it
    offers one, of its full-OS guest (rows with the conditions userland and
    guest_memory_mib; left to a full run by ``--quick``)."""
    def full_os(sibling: Platform) -> list[Measurement]:
        size = {"guest_memory_mib": str(sibling.guest_memory_mib)}
        return [replace(m, conditions={**m.conditions, **size})
                for m in density_rows(sibling, wl, params)]

    return density_rows(plat, wl, params) + on_userlands(
        plat, EXPERIMENT, [wl], full_os, quick=params.quick, names=DENSITY_USERLANDS,
        options=params.options)


def density_rows(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Start idle instances until a count, a memory budget or a time limit; fit MiB per instance.

    Memory is read at checkpoints (0 instances and about 10 counts up to the most): the
    host's MemAvailable, and the summed PSS and RSS of every live instance's host processes
    (plus the usage of their cgroups for containers).
    """
    cfg = density_settings(plat, params)
    max_n, budget, limit = int(cfg["max_n"]), cfg["budget_mib"], cfg["time_s"]
    marks = checkpoints(max_n)
    counts: list[int] = []
    series: dict[str, list[float]] = {m: [] for m, _ in SLOPES}
    handles: list[Handle] = []
    stopped = f"count {max_n}"
    t0 = time.monotonic()

    def read(n: int, start: int) -> float:
        time.sleep(0.1)  # let the last start's page-ins and frees settle
        available = mem_available_kib()
        readings = [read_memory(h.pids, h.cgroup_pid) for h in handles]
        counts.append(n)
        series["memory_per_instance"].append((start - available) / 1024)
        series["pss_per_instance"].append(sum(r.pss for r in readings))
        series["rss_per_instance"].append(sum(r.rss for r in readings))
        series["cgroup_per_instance"].append(sum(r.cgroup or 0.0 for r in readings))
        return available / 1024

    with ExitStack() as stack:
        start = mem_available_kib()
        read(0, start)
        for n in range(1, max_n + 1):
            try:
                handles.append(stack.enter_context(plat.instance(wl, ["0", IDLE_HOLD_MS])))
            except NotSupported:
                if n == 1:
                    raise
                stopped = f"instance {n} could not start"
                break
            except Exception as exc:  # the limit this experiment looks for
                if n == 1:
                    raise
                stopped = f"instance {n} failed: {exc}"
                break
            over_time = time.monotonic() - t0 >= limit
            if n in marks or over_time:
                available = read(n, start)
                if series["memory_per_instance"][-1] >= budget:
                    stopped = f"memory budget {budget:g} MiB"
                    break
                if available <= DENSITY_FLOOR_MIB:
                    stopped = f"host MemAvailable at {available:.0f} MiB"
                    break
            if over_time:
                stopped = f"time limit {limit:g} s"
                break
        if counts[-1] != len(handles):
            read(len(handles), start)
    if not any(h.cgroup_pid for h in handles):
        del series["cgroup_per_instance"]
    tags = {"instances": str(counts[-1]), "readings": str(len(counts)), "stopped_by": stopped,
            "density_max": str(max_n), "seconds": f"{time.monotonic() - t0:.1f}"}
    described = (f"mem 0, stopped by {stopped}; options density_max {max_n}, "
                 f"density_budget_mib {budget:g}, density_time_s {limit:g}")
    packed = int(params.options.get("density_packed_max", PACKED_MAX[0 if params.quick else 1]))
    return slope_rows(counts, series, tags, described) + in_one_process(plat, wl, packed)


EXPERIMENT = Experiment(
    NAME, "memory per idle instance (one fitted slope per repetition) and instances "
    "per 8 GiB",
    measure_density,
    workloads=("mem",), reps=10, quick_reps=1, warmup=0,
    options={"density_budget_mib": Option(float, 1, 1 << 20, "MiB of host memory to fill"),
             "full_os": FULL_OS_OPTION,
             "density_max": Option(int, 2, 10_000, "most instances to start (default by "
                                   "family, DENSITY_MAX)"),
             "density_time_s": Option(float, 1, 86_400, "seconds after which no more "
                                      "instances are started"),
             "density_packed_max": Option(int, 3, 100_000, "most instances held in one "
                                          "engine process (variants that can, PACKED_MAX)")},
    metrics=METRICS,
    primary=(("memory_per_instance", {}), ("pss_per_instance", {}),
             ("instances_per_8gib", {})))
