"""cpu_usage: the host CPU one idle instance consumes over a fixed window.

An http server nobody calls or, on a variant that cannot serve, an idle ``mem 0`` instance;
its host processes' on-CPU time read from schedstat.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from virtbench.accounting import cpu_ns, free_port
from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Option, Params
from virtbench.experiments.shared.serving import IDLE_HOLD_MS, SETTLE_S
from virtbench.metric import Metric
from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.store.schema import Measurement

NAME = "cpu_usage"

METRICS = (
    Metric("cpu_percent_idle", NAME, "% of one core", "lower",
           "on-CPU time of an idle instance's host processes over a fixed window "
           "starting 1 s after it was ready (schedstat)"),
)


def measure_idle_cpu(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Host CPU used by one idle instance over a fixed window: an http server nobody calls,
    or, on a variant that cannot serve http, an idle ``mem 0`` instance (its guest blocked
    in a sleep; the row's workload says ``mem``)."""
    window_s = float(params.options.get("idle_window_s", 1 if params.quick else 2))
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(plat.instance(wl, port=free_port()))
            what, workload = "the server was ready", None
        except NotSupported as exc:
            if wl.name != "http":
                raise
            handle = stack.enter_context(plat.instance(Workload("mem"), ["0", IDLE_HOLD_MS]))
            what = f"an idle `mem 0` instance (its guest asleep) was ready; {exc}"
            workload = "mem"
        time.sleep(SETTLE_S)  # let start-up work finish
        before, t0 = cpu_ns(handle.pids), time.perf_counter_ns()
        time.sleep(window_s)
        used, window = cpu_ns(handle.pids) - before, time.perf_counter_ns() - t0
    return [Measurement(
        "cpu_percent_idle", 100 * used / window, "% of one core",
        f"on-CPU time of the instance's host processes over a {window_s:g} s idle window "
        f"(starting {SETTLE_S:g} s after {what}), from /proc/<pid>/task/*/schedstat",
        workload=workload, tags={k: str(v) for k, v in handle.info.items()})]


EXPERIMENT = Experiment(
    NAME, "host CPU consumed by one idle instance over a fixed window",
    measure_idle_cpu,
    workloads=("http",), reps=10, quick_reps=1, warmup=0,
    options={"idle_window_s": Option(float, 0.1, 3600, "seconds of the idle window")},
    quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS, primary=(("cpu_percent_idle", {}),))
