"""sysbench 1.0 cpu and memory runs, the tool Edera's published runc/gVisor/Kata figures
were made with, run by every platform that can run the host's own program.

The program is Debian's ``/usr/bin/sysbench`` itself: natively, and in a container whose
image holds it with the shared libraries ``ldd`` names (the same bytes everywhere). One
cell runs ``sysbench cpu`` and then ``sysbench memory``, one thread each, for a fixed time;
the figures are sysbench's own (events per second, MiB per second).
"""

from __future__ import annotations

from virtbench.experiments.base import Experiment, Option, Params
from virtbench.metric import Metric
from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.store.schema import Measurement
from virtbench.workloads.tools import ToolMissing, parse_sysbench, tool

NAME = "sysbench"
_MS = "ms"

METRICS = (
    Metric("events_per_s", NAME, "events/s", "higher",
           "sysbench cpu (one thread, fixed time, primes up to 10000): its own events "
           "per second"),
    Metric("memory_mib_per_s", NAME, "MiB/s", "higher",
           "sysbench memory (one thread, fixed time, 1 KiB blocks, writes, global "
           "scope): its own MiB transferred per second"),
    *(Metric(f"{test}_latency_avg", NAME, _MS, "lower",
             f"sysbench {test}: its own average latency of one event")
      for test in ("cpu", "memory")),
    *(Metric(f"{test}_wall_time", NAME, _MS, "lower",
             f"one sysbench {test} run seen from the host: the platform's whole run "
             "interval (launch to exit)") for test in ("cpu", "memory")),
)


FULL_TIME_S, QUICK_TIME_S = 10, 2


def sysbench_workloads() -> list[Workload]:
    """The host's sysbench as the experiment's one workload (named even when missing, so
    that its rows say why)."""
    try:
        path = tool("sysbench")
    except ToolMissing:
        path = "/usr/bin/sysbench"
    return [Workload("sysbench", command=(str(path),))]


def sysbench_args(test: str, seconds: int) -> list[str]:
    """One-thread ``sysbench TEST run`` for ``seconds``; the memory test is bounded by time
    (its total size, 1 TiB, is never reached), its other options sysbench 1.0's defaults
    (1 KiB blocks, writes, global scope); the cpu test's primes limit its default, 10000."""
    extra = ["--memory-total-size=1T"] if test == "memory" else []
    return [test, "--threads=1", f"--time={seconds}", *extra, "run"]


def measure_sysbench(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    try:
        tool("sysbench")
    except ToolMissing as exc:
        raise NotSupported(str(exc)) from exc
    seconds = int(params.options.get("sysbench_time", QUICK_TIME_S if params.quick
                                     else FULL_TIME_S))
    ms = []
    for test, metric, unit in (("cpu", "events_per_s", "events/s"),
                               ("memory", "memory_mib_per_s", "MiB/s")):
        args = sysbench_args(test, seconds)
        out = plat.run(wl, args, timeout=seconds * 10 + 120)
        if out.returncode != 0:
            raise RuntimeError(f"sysbench {test} exited {out.returncode}: {out.stdout[-300:]}")
        got = parse_sysbench(out.stdout)
        value = got.events_per_s if test == "cpu" else got.mib_per_s
        tags = {"sysbench": got.version, "threads": str(got.threads),
                "events": str(got.events), "seconds": str(seconds)}
        ms += [Measurement(metric, value, unit, f"sysbench {got.version} "
                           f"`{' '.join(args)}`: its own {unit} figure", tags=tags),
               Measurement(f"{test}_latency_avg", got.latency_avg_ms, "ms",
                           f"sysbench {got.version} {test}: average latency of one event",
                           tags=tags),
               Measurement(f"{test}_wall_time", out.wall_ns / 1e6, "ms",
                           f"{out.interval}; sysbench {' '.join(args)}", tags=tags)]
    return ms


EXPERIMENT = Experiment(
    NAME, "sysbench 1.0 cpu and memory (one thread, fixed time): the host's own "
    "program in every platform that can run it", measure_sysbench, workloads=("sysbench",),
    reps=10, quick_reps=2, warmup=1, quick_warmup=0, tools=sysbench_workloads,
    options={"sysbench_time": Option(int, 1, 600, f"seconds of each sysbench run (default "
                                     f"{FULL_TIME_S}, quick {QUICK_TIME_S})")},
    metrics=METRICS,
    primary=(("events_per_s", {}), ("memory_mib_per_s", {})))
