"""Cross-platform experiments on long-running instances: HTTP load, idle CPU, density.

They need only :meth:`Platform.instance`: a server reachable on a loopback port, or an idle
instance, with the host processes that make it up (for CPU and memory accounting).
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from virtbench.accounting import cpu_ns, free_port, mem_available_kib
from virtbench.experiments.core import Experiment, Option, Params, register
from virtbench.loadgen import run_wrk
from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.process import read_proc_status
from virtbench.results import Measurement
from virtbench.stats import fit_slope

IDLE_HOLD_MS = "3600000"  # idle instances hold until they are stopped


def wrk_settings(params: Params) -> dict:
    """wrk duration, threads and connections, scaled to a 2-core machine by default.

    The seed's setting (10K connections for 5 minutes on 4 cores) is a parameter:
    ``--option http_connections=10000 --option http_duration_s=300``.
    """
    o = params.options
    return {"duration_s": float(o.get("http_duration_s", 3 if params.quick else 10)),
            "threads": int(o.get("http_threads", 1)),
            "connections": int(o.get("http_connections", 10))}


def measure_http(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Throughput and latency of the ``http`` workload under wrk, and the server's CPU share."""
    cfg = wrk_settings(params)
    port = free_port()
    with plat.instance(wl, port=port) as handle:
        run_wrk(port, duration_s=1, threads=cfg["threads"], connections=cfg["connections"])
        before, t0 = cpu_ns(handle.pids), time.perf_counter_ns()
        report = run_wrk(port, **cfg)
        used, window = cpu_ns(handle.pids) - before, time.perf_counter_ns() - t0
    setting = (f"wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration_s']:g}s on "
               f"127.0.0.1:{port} after a 1 s warm-up; wrk shares the host's cores")
    tags = {k: str(v) for k, v in {**cfg, **handle.info}.items()}
    out = [
        Measurement("requests_per_s", report.requests_per_s, "req/s",
                    f"wrk's Requests/sec; {setting}", tags=tags),
        Measurement("latency_p50", report.p50_ms, "ms", f"wrk's 50th percentile; {setting}",
                    tags=tags),
        Measurement("latency_p99", report.p99_ms, "ms", f"wrk's 99th percentile; {setting}",
                    tags=tags),
        Measurement("errors", report.errors, "count",
                    f"socket errors + non-2xx/3xx responses; {setting}", tags=tags),
        Measurement("cpu_percent_load", 100 * used / window, "% of one core",
                    "on-CPU time of the instance's host processes (schedstat of "
                    f"{len(handle.pids)} process(es)) / wall time of the wrk run", tags=tags),
    ]
    return out


def measure_idle_cpu(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Host CPU used by one idle instance over a fixed window: an http server nobody calls,
    or, on a variant that cannot serve http, an idle ``mem 0`` instance (its guest blocked
    in a sleep; the row's workload says ``mem``)."""
    window_s = float(params.options.get("idle_window_s", 3 if params.quick else 5))
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
        time.sleep(1.0)  # let start-up work finish
        before, t0 = cpu_ns(handle.pids), time.perf_counter_ns()
        time.sleep(window_s)
        used, window = cpu_ns(handle.pids) - before, time.perf_counter_ns() - t0
    return [Measurement(
        "cpu_percent_idle", 100 * used / window, "% of one core",
        f"on-CPU time of the instance's host processes over a {window_s:g} s idle window "
        f"(starting 1 s after {what}), from /proc/<pid>/task/*/schedstat",
        workload=workload, tags={k: str(v) for k, v in handle.info.items()})]


def measure_density(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Start idle instances until a memory budget or a count is reached; fit MiB per instance."""
    o = params.options
    budget_mib = float(o.get("density_budget_mib", 1024 if params.quick else 4096))
    max_n = int(o.get("density_max", 4 if params.quick else 12))
    counts, drops, pss = [0], [0.0], [0.0]
    failure = ""
    pids: list[int] = []
    with ExitStack() as stack:
        start = mem_available_kib()
        for n in range(1, max_n + 1):
            try:
                handle = stack.enter_context(plat.instance(wl, ["0", IDLE_HOLD_MS]))
            except Exception as exc:  # the limit this experiment looks for
                failure = f"instance {n} failed: {exc}"
                break
            pids += handle.pids
            time.sleep(0.3)
            counts.append(n)
            drops.append((start - mem_available_kib()) / 1024)
            pss.append(sum(read_proc_status(p).get("Pss", 0) for p in pids) / 1024)
            if drops[-1] >= budget_mib:
                break
    desc = ("slope of the host's MemAvailable drop over the number of idle instances "
            f"(mem 0, up to {max_n} instances or {budget_mib:g} MiB), least squares")
    if len(counts) < 3:
        return [Measurement.missing("memory_per_instance", "MiB",
                                    f"only {len(counts) - 1} instance(s) started; {failure}")]
    slope, pss_slope = fit_slope(counts, drops), fit_slope(counts, pss)
    tags = {"instances": str(counts[-1]), "slope_ci_low": f"{slope.low:.3f}",
            "slope_ci_high": f"{slope.high:.3f}", "stopped_by": failure or "count or budget"}
    out = [
        Measurement("memory_per_instance", slope.value, "MiB", desc, tags=tags),
        Measurement("pss_per_instance", pss_slope.value, "MiB",
                    "slope of the summed PSS of the instances' host processes over the number "
                    "of idle instances (memory outside them, e.g. a daemon or a guest's "
                    "kernel pages, is not in it)", tags=tags),
    ]
    out += in_one_process(plat, wl, max_n)
    if slope.low > 0:
        out.append(Measurement("instances_per_8gib", 8192 / slope.value, "instances",
                               "8 GiB (8192 MiB) divided by memory_per_instance (host "
                               "MemAvailable drop per instance)", tags=tags))
    else:
        out.append(Measurement.missing(
            "instances_per_8gib", "instances",
            f"memory per instance is not distinguishable from zero (slope 95% CI "
            f"[{slope.low:.2f}, {slope.high:.2f}] MiB): below the noise of the host's "
            "MemAvailable; see pss_per_instance", tags=tags))
    return out


def in_one_process(plat: Platform, wl: Workload, max_n: int) -> list[Measurement]:
    """The marginal PSS of one more idle instance in a running engine: a fresh host process
    holding n = 1..max_n idle instances each time (only variants that can hold several)."""
    if not plat.instances_per_process:
        return []
    counts, pss = [], []
    try:
        for n in range(1, max_n + 1):
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
        f"slope of the PSS of one host process holding n = 1..{counts[-1]} idle instances "
        "(mem 0, each its own store/instance in one engine; a fresh process per n), least "
        "squares", conditions=cond,
        tags={"instances": str(counts[-1]), "slope_ci_low": f"{fit.low:.3f}",
              "slope_ci_high": f"{fit.high:.3f}", "pss_one_mib": f"{pss[0]:.2f}"})]


register(Experiment(
    "http", "requests/s and latency of the http workload under wrk, and the server's CPU share",
    measure_http,
    workloads=("http",), reps=3, quick_reps=2, warmup=0,
    options={"http_duration_s": Option(float, 0.1, 3600, "seconds of load"),
             "http_threads": Option(int, 1, 1024, "wrk threads"),
             "http_connections": Option(int, 1, 100_000, "open connections")}))
register(Experiment(
    "cpu_usage", "host CPU consumed by one idle instance over a fixed window",
    measure_idle_cpu,
    workloads=("http",), reps=2, quick_reps=2, warmup=0,
    options={"idle_window_s": Option(float, 0.1, 3600, "seconds of the idle window")}))
register(Experiment(
    "density", "memory per idle instance (fitted slope) and instances per 8 GiB",
    measure_density,
    workloads=("mem",), reps=2, quick_reps=1, warmup=0,
    options={"density_budget_mib": Option(float, 1, 1 << 20, "MiB of host memory to fill"),
             "density_max": Option(int, 2, 10_000, "most instances to start")}))
