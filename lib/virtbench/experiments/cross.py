"""Cross-platform experiments on long-running instances: HTTP load, idle CPU, density.

They need only :meth:`Platform.instance`: a server reachable on a loopback port, or an idle
instance, with the host processes that make it up (for CPU and memory accounting).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from virtbench import catalog
from virtbench.accounting import MemoryReading, cpu_ns, free_port, mem_available_kib, read_memory
from virtbench.experiments.core import QUICK_SKIPS_TCG_PC, Experiment, Option, Params, register
from virtbench.experiments.userland import FULL_OS_OPTION, on_userlands
from virtbench.loadgen import run_wrk, wait_closed
from virtbench.platforms.base import Handle, NotSupported, Platform, Workload
from virtbench.process import (
    can_raise_hard_limits,
    nofile_granted,
    nofile_limit,
    read_proc_status,
)
from virtbench.results import Measurement
from virtbench.stats import fit_slope

IDLE_HOLD_MS = "3600000"  # idle instances hold until they are stopped


def wrk_settings(params: Params) -> dict:
    """wrk duration, threads and connections of the light load profile, scaled to a 2-core
    machine (options http_duration_s, http_threads, http_connections override them)."""
    o = params.options
    return {"duration_s": int(o.get("http_duration_s", 1 if params.quick else 2)),
            "threads": int(o.get("http_threads", 1)),
            "connections": int(o.get("http_connections", 10))}


#: The seed document's HTTP test: 10,000 connections for 5 minutes (on 4 cores).
SEED_CONNECTIONS = 10_000
SEED_DURATION_S = (3, 300)  # (--quick, full run); option http_seed_duration_s
SEED_BACKLOG = 65535  # net.core.somaxconn asked for where the instance has its own
SEED_NOFILE_MARGIN = 1024  # descriptors of wrk and the server besides the connections


@dataclass(frozen=True)
class LoadProfile:
    """One wrk load of the http experiment (condition ``load``) and the limits it needs."""

    name: str  # a value of the condition "load"
    duration_s: int
    threads: int
    connections: int
    nofile: int | None = None  # RLIMIT_NOFILE of wrk and the server (None: inherited)

    @property
    def wrk(self) -> dict:
        return {"duration_s": self.duration_s, "threads": self.threads,
                "connections": self.connections}


def load_profiles(params: Params) -> list[LoadProfile]:
    """The light profile, then the seed profile unless option http_seed_duration_s is 0."""
    light = LoadProfile("light", **wrk_settings(params))
    o = params.options
    duration = int(o.get("http_seed_duration_s", SEED_DURATION_S[0 if params.quick else 1]))
    if duration == 0:
        return [light]
    connections = int(o.get("http_seed_connections", SEED_CONNECTIONS))
    return [light, LoadProfile("seed", duration, os.cpu_count() or 1, connections,
                               nofile=connections + SEED_NOFILE_MARGIN)]


SEED_LEFT_OUT = "not measured: option http_seed_duration_s=0 leaves out the seed load profile"


def seed_missing(reason: str = SEED_LEFT_OUT) -> list[Measurement]:
    """The seed profile's rows when it was not measured, with the reason."""
    return [Measurement.missing(m.name, m.unit, reason, conditions=c)
            for m, c in catalog.primary("http") if c.get("load") == "seed"]


def measure_http(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Throughput and latency of the ``http`` workload under wrk, and the server's CPU share,
    under each load profile (a fresh instance each)."""
    light, *seed = load_profiles(params)
    rows = http_rows(plat, wl, light)
    if not seed:
        return rows + seed_missing()
    try:
        return rows + http_rows(plat, wl, seed[0])
    except NotSupported as exc:
        return rows + seed_missing(f"not supported: {exc}")
    except Exception as exc:  # the light rows stand; the seed rows say why they are missing
        return rows + seed_missing(f"failed: {traceback.format_exception_only(exc)[-1].strip()}")


def seed_limits(plat: Platform, profile: LoadProfile) -> dict:
    """The instance limits a profile needs: descriptors, and the listen backlog's cap where
    the instance has a network namespace of its own."""
    if profile.nofile is None:
        return {}
    limits: dict = {"nofile": profile.nofile}
    if plat.own_network_namespace:
        limits["somaxconn"] = SEED_BACKLOG
    return limits


def limit_tags(handle: Handle, profile: LoadProfile) -> dict[str, str]:
    """The descriptor limits and backlog cap in force, read back from /proc."""
    if profile.nofile is None:
        return {}
    tags = {"nofile_wrk": str(nofile_granted(profile.nofile)),
            "nofile_host_process": str(nofile_limit(handle.pids[0]))}
    if "docker_proxy_pid" in handle.info:
        tags["nofile_docker_proxy"] = str(nofile_limit(handle.info["docker_proxy_pid"]))
    if "somaxconn" not in handle.info:
        tags["somaxconn"] = f"{host_somaxconn()} (the host's)"
    return tags


def host_somaxconn() -> str:
    try:
        return Path("/proc/sys/net/core/somaxconn").read_text().strip()
    except OSError:
        return "unknown"


#: Descriptors a docker-proxy holds per proxied connection: its two sockets (the client's
#: and the container's side) and a pipe (two descriptors) for each direction it splices
#: (Docker 20.10's proxy held 18,009 at 3,000 connections under wrk, and at 5,000 with a
#: limit of 20,000 it logged "too many open files" and stopped proxying); and besides them.
PROXY_FDS_PER_CONNECTION, PROXY_FDS_BESIDES = 6, 16


def check_proxy_descriptors(handle: Handle, profile: LoadProfile) -> None:
    """NotSupported when the instance's docker-proxy cannot hold the profile's connections:
    it inherits dockerd's RLIMIT_NOFILE, and at its limit it stops proxying the port."""
    proxy = handle.info.get("docker_proxy_pid")
    limit = nofile_limit(proxy) if proxy and profile.nofile is not None else None
    need = PROXY_FDS_PER_CONNECTION * profile.connections + PROXY_FDS_BESIDES
    if limit is not None and limit < need:
        raise NotSupported(
            f"the docker-proxy of the published port holds {PROXY_FDS_PER_CONNECTION} "
            f"descriptors per connection (two sockets and a splice pipe each way): "
            f"{profile.connections} connections need about {need}, "
            f"its RLIMIT_NOFILE (dockerd's) is {limit}, and at that limit it stops accepting; "
            + ("this process cannot raise a hard limit (no CAP_SYS_RESOURCE)"
               if not can_raise_hard_limits() else "dockerd was started with that limit"))


def http_rows(plat: Platform, wl: Workload, profile: LoadProfile) -> list[Measurement]:
    """The rows of one load profile on a fresh instance: a warm-up, then the measured run."""
    cfg = profile.wrk
    port = free_port()
    with plat.instance(wl, port=port, limits=seed_limits(plat, profile) or None) as handle:
        check_proxy_descriptors(handle, profile)
        run_wrk(port, duration_s=WARM_UP_S, threads=cfg["threads"],
                connections=cfg["connections"], nofile=profile.nofile)
        # the warm-up's connections close before the measured run opens as many again
        left = wait_closed(port, DRAIN_TIMEOUT_S)
        before, t0 = cpu_ns(handle.pids), time.perf_counter_ns()
        report = run_wrk(port, **cfg, nofile=profile.nofile)
        used, window = cpu_ns(handle.pids) - before, time.perf_counter_ns() - t0
        tags = {k: str(v) for k, v in {**cfg, **handle.info, "load": profile.name}.items()}
        tags.update(limit_tags(handle, profile), warmup_connections_left=str(left))
    tags.update({f"errors_{k}": str(v) for k, v in report.socket_errors.items()},
                errors_non_2xx=str(report.non_2xx), requests=str(report.requests))
    setting = (f"load {profile.name}: wrk -t{cfg['threads']} -c{cfg['connections']} "
               f"-d{cfg['duration_s']:g}s on 127.0.0.1:{port} after a {WARM_UP_S:g} s warm-up; "
               "wrk shares the host's cores")
    if profile.nofile is not None:
        setting += (f"; RLIMIT_NOFILE {nofile_granted(profile.nofile)} for wrk and "
                    f"{profile.nofile} asked for the server"
                    f"{' (' + handle.info['limits'] + ')' if 'limits' in handle.info else ''}")
    cond = {"load": profile.name}
    return [
        Measurement("requests_per_s", report.ok_per_s, "req/s",
                    f"wrk's Requests/sec less its non-2xx/3xx responses; {setting}", tags=tags,
                    conditions=cond),
        *(Measurement(f"latency_p{p}", value, "ms", f"wrk's {p}th percentile; {setting}",
                      tags=tags, conditions=cond) if value is not None else
          Measurement.missing(f"latency_p{p}", "ms", f"no request completed: wrk had "
                              f"{report.errors} error(s) and no latency to report; {setting}",
                              tags=tags, conditions=cond)
          for p, value in ((50, report.p50_ms), (99, report.p99_ms))),
        Measurement("errors", report.errors, "count",
                    f"wrk's socket errors (connect, read, write, timeout) + non-2xx/3xx "
                    f"responses; {setting}", tags=tags, conditions=cond),
        Measurement("cpu_percent_load", 100 * used / window, "% of one core",
                    "on-CPU time of the instance's host processes (schedstat of "
                    f"{len(handle.pids)} process(es)) / wall time of the wrk run; {setting}",
                    tags=tags, conditions=cond),
    ]


SETTLE_S = 0.5  # after an instance is ready, before its idle reading: start-up work ends
WARM_UP_S = 1  # seconds of wrk load before the measured run (wrk takes whole seconds)
DRAIN_TIMEOUT_S = 30  # longest wait for the warm-up's connections to close
SAMPLE_S = 0.25  # interval of the memory samples taken during a wrk load


def _sample_during(handle: Handle, work) -> tuple[object, list[MemoryReading]]:
    """Run ``work()`` in a thread; read the instance's memory every SAMPLE_S until it ends."""
    result: dict = {}

    def target() -> None:
        try:
            result["value"] = work()
        except BaseException as exc:  # re-raised below, in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    samples = []
    while thread.is_alive():
        samples.append(read_memory(handle.pids, handle.cgroup_pid))
        thread.join(SAMPLE_S)
    samples.append(read_memory(handle.pids, handle.cgroup_pid))
    if "error" in result:
        raise result["error"]
    return result["value"], samples


def instance_memory_rows(idle: MemoryReading, loaded: list[MemoryReading], hwm: float,
                         pids: int, setting: str, tags: dict[str, str],
                         conditions: dict[str, str]) -> list[Measurement]:
    """The instance_* rows of one http instance: idle, and the peak under load."""
    who = f"{pids} host process(es) of the instance"
    out = []
    for state, rss, pss, rss_what, pss_what in (
            ("idle", idle.rss, idle.pss, "summed VmRSS", "summed PSS"),
            ("loaded", hwm, max(r.pss for r in loaded), "summed VmHWM (peak RSS) after the "
             f"load ({setting})", f"largest summed PSS of {len(loaded)} samples every "
             f"{SAMPLE_S:g} s during the load ({setting})")):
        cond = {**conditions, "state": state}
        when = (f"idle, {SETTLE_S:g} s after the server was ready, nobody calling"
                if state == "idle" else "peak under load")
        out.append(Measurement("instance_rss", rss, "MiB", f"{rss_what} of the {who}; {when}",
                               tags=tags, conditions=cond))
        out.append(Measurement("instance_pss", pss, "MiB", f"{pss_what} of the {who}; {when}",
                               tags=tags, conditions=cond))
    if idle.cgroup is not None:
        top = max(loaded, key=lambda r: r.cgroup or 0.0)
        for state, reading, when in (
                ("idle", idle, f"idle, {SETTLE_S:g} s after the server was ready"),
                ("loaded", top, f"the largest of {len(loaded)} samples every {SAMPLE_S:g} s "
                                f"during the load ({setting})")):
            cond = {"state": state}
            out.append(Measurement("instance_cgroup", reading.cgroup, "MiB",
                                   f"usage of the instance's cgroup (page cache included); "
                                   f"{when}", tags=tags, conditions=cond))
            out.append(Measurement("instance_footprint", reading.footprint, "MiB",
                                   "cgroup usage plus the summed VmRSS of the instance's host "
                                   f"processes outside it ({reading.outside_rss:.2f} MiB: shim, "
                                   f"docker-proxy); {when}", tags=tags, conditions=cond))
    return out


def measure_instance_memory(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Memory a running ``http`` server instance adds to the host: idle, and peak under wrk."""
    cfg = wrk_settings(params)
    port = free_port()
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(plat.instance(wl, port=port))
        except NotSupported as exc:
            reason = (f"not supported: the memory of a running server instance is read "
                      f"through Platform.instance: {exc}")
            return [Measurement.missing(m, "MiB", reason, conditions={"state": s})
                    for m in ("instance_rss", "instance_pss") for s in ("idle", "loaded")]
        time.sleep(SETTLE_S)  # let start-up work finish
        idle = read_memory(handle.pids, handle.cgroup_pid)
        report, loaded = _sample_during(handle, lambda: run_wrk(port, **cfg))
        hwm = read_memory(handle.pids, handle.cgroup_pid).hwm
    setting = (f"wrk -t{cfg['threads']} -c{cfg['connections']} -d{cfg['duration_s']:g}s, "
               f"{report.requests_per_s:.0f} req/s")
    tags = {k: str(v) for k, v in {**cfg, **handle.info}.items()}
    tags["pids"] = str(len(handle.pids))
    conditions = ({"guest_memory_mib": handle.info["guest_memory_mib"]}
                  if "guest_memory_mib" in handle.info else {})
    return instance_memory_rows(idle, loaded, hwm, len(handle.pids), setting, tags,
                                conditions)


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
    :func:`virtbench.dataset.row_bound`), plus ``memory_per_instance_bound`` and the tag
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
        plat, "density", [wl], full_os, quick=params.quick, names=DENSITY_USERLANDS,
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


register(Experiment(
    "http", "requests/s and latency of the http workload under wrk, and the server's CPU "
    "share, under the light and the seed load profile (condition load)",
    measure_http,
    workloads=("http",), reps=10, quick_reps=1, warmup=0,
    options={"http_duration_s": Option(int, 1, 3600, "seconds of load (load light)"),
             "http_threads": Option(int, 1, 1024, "wrk threads (load light)"),
             "http_connections": Option(int, 1, 100_000, "open connections (load light)"),
             "http_seed_duration_s": Option(int, 0, 3600, "seconds of load of the seed "
                                            "profile (10,000 connections, a wrk thread per "
                                            "core; default 300, 3 with --quick; 0: leave the "
                                            "seed profile out)"),
             "http_seed_connections": Option(int, 1, 100_000, "open connections of the seed "
                                             "profile (default 10,000, the seed's)")},
    quick_skips=QUICK_SKIPS_TCG_PC))
register(Experiment(
    "cpu_usage", "host CPU consumed by one idle instance over a fixed window",
    measure_idle_cpu,
    workloads=("http",), reps=10, quick_reps=1, warmup=0,
    options={"idle_window_s": Option(float, 0.1, 3600, "seconds of the idle window")},
    quick_skips=QUICK_SKIPS_TCG_PC))
register(Experiment(
    "density", "memory per idle instance (one fitted slope per repetition) and instances "
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
                                          "engine process (variants that can, PACKED_MAX)")}))
