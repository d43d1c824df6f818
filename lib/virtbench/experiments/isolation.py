"""Resource isolation (arXiv:2509.11242): a victim's slowdown while a co-located attacker of
the same platform exhausts one resource, without and with the platform's limits.

The victim is the ``cpu`` workload run to completion on the platform; its in-workload compute
time under attack is divided by its compute time alone, measured in the same cell. The
attacker is the ``hog`` workload (cpu, mem, io, fd, proc), started as long-running instances
with ``limits`` (None = the platform's defaults).
"""

from __future__ import annotations

import os
import statistics
from contextlib import ExitStack

from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Option, Params
from virtbench.metric import VALUES, Metric
from virtbench.platforms.base import (
    WORKDIR,
    NotReady,
    NotSupported,
    Platform,
    Workload,
    WorkloadUnsupported,
)
from virtbench.store.schema import Measurement
from virtbench.workloads import READY, as_number, parse_result_line

NAME = "isolation"
_MS = "ms"

METRICS = (
    Metric("victim_alone", NAME, _MS, "lower",
           "median compute time of 3 runs of the cpu victim with no attacker (timed "
           "inside the workload)"),
    Metric("slowdown", NAME, "x", "lower",
           "victim compute time with the co-located attacker(s) running, divided by "
           "victim_alone", ("attack", "limits")),
)


ATTACKS = ("cpu", "mem", "io", "fd", "proc")
QUICK_ATTACKS = ("cpu", "mem")  # with --quick; the others get a "not measured" row
#: Limits for each attacker instance; each platform applies those it can and says which.
LIMITS = {"memory_mib": 256, "cpus": 0.5, "pids": 64, "nofile": 1024}
#: Why a cell has no slowdown when an attacker ended before its ready line (NotReady).
STOPPED = ("the attacker was stopped before it was ready (a limit, or the platform's own "
           "size, ended it)")


def attacker_state(ready_line: str) -> dict[str, str]:
    """What the attacker took before it reported ready, and whether a limit stopped it."""
    if READY not in ready_line:
        return {}
    fields = parse_result_line(ready_line, marker=READY)
    return {f"attacker_{k}": v for k, v in fields.items() if k in ("taken", "limit_hit")}


def _error(exc: Exception) -> str:
    """An exception in a reason: its class and the start of its message. A NotReady is named
    by the class it extends, RuntimeError, as in the rows this experiment has stored."""
    name = RuntimeError.__name__ if isinstance(exc, NotReady) else type(exc).__name__
    return f"{name}: {str(exc)[:300]}"


def _victim_ms(plat: Platform, millions: int) -> float:
    out = plat.run(Workload("cpu"), [str(millions)], timeout=600)
    return as_number(out.result["elapsed_ns"]) / 1e6


def _attack_args(kind: str, params: Params) -> list[str]:
    o = params.options
    amount = {"cpu": 0, "mem": int(o.get("attack_mem_mib", 512 if params.quick else 2048)),
              "io": 256, "fd": 1_000_000, "proc": int(o.get("attack_procs", 2000))}[kind]
    return [kind, "600", str(amount), WORKDIR]


def measure_isolation(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Slowdown of the victim under each attack, without and with limits."""
    millions = int(params.options.get("victim_millions", 20))
    attackers = {"cpu": os.cpu_count() or 1}
    runs = 1 if params.quick else 3
    alone = statistics.median(_victim_ms(plat, millions) for _ in range(runs))
    out = [Measurement("victim_alone", alone, "ms",
                       f"median compute time of {runs} run(s) of the cpu victim with no "
                       "attacker (timed inside the workload)")]
    metric = "slowdown"
    for kind in ATTACKS:
        for limited in (False, True):
            cond = {"attack": kind, "limits": "on" if limited else "off"}
            if params.quick and kind not in QUICK_ATTACKS:
                out.append(Measurement.missing(
                    metric, "x", f"not measured with --quick (it runs the "
                    f"{' and '.join(QUICK_ATTACKS)} attacks only)", conditions=cond))
                continue
            limits = LIMITS if limited else None
            what = (f"victim compute time with {attackers.get(kind, 1)} '{kind}' attacker(s) "
                    f"{'under limits ' + str(LIMITS) if limited else 'without limits'}, "
                    "divided by the victim alone")
            try:
                with ExitStack() as stack:
                    infos = [stack.enter_context(
                        plat.instance(Workload("hog"), _attack_args(kind, params),
                                      limits=limits)).info
                        for _ in range(attackers.get(kind, 1))]
                    attacked = _victim_ms(plat, millions)
                tags = {"attack": kind, "limited": str(limited)}
                tags.update({k: str(v) for k, v in infos[0].items() if k != "ready_line"})
                tags.update(attacker_state(infos[0].get("ready_line", "")))
                out.append(Measurement(metric, attacked / alone, "x", what, tags=tags,
                                       conditions=cond))
            except NotSupported as exc:
                out.append(Measurement.missing(metric, "x", f"not supported: {exc}",
                                               conditions=cond))
            except WorkloadUnsupported as exc:
                out.append(Measurement.missing(
                    metric, "x", f"attack not expressible: {exc.why or 'unsupported'}",
                    conditions=cond))
            except NotReady as exc:
                out.append(Measurement.missing(metric, "x", f"{STOPPED}: {_error(exc)}",
                                               conditions=cond))
            except Exception as exc:
                out.append(Measurement.missing(
                    metric, "x", f"victim or attacker failed: {_error(exc)}", conditions=cond))
    return out


EXPERIMENT = Experiment(
    NAME, "victim slowdown under co-located resource-exhaustion attacks, with and "
    "without the platform's limits", measure_isolation,
    workloads=("cpu",), reps=6, quick_reps=1, warmup=0,
    options={"victim_millions": Option(int, 1, 100_000, "millions of victim iterations"),
             "attack_mem_mib": Option(int, 1, 1 << 20, "MiB the memory attacker takes"),
             "attack_procs": Option(int, 1, 1_000_000, "processes the fork attacker starts")},
    quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS,
    primary=(("victim_alone", {}),) + tuple(
        ("slowdown", {"attack": a, "limits": lim}) for a in VALUES["attack"]
        for lim in VALUES["limits"]))
