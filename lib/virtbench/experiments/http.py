"""http: requests per second and latency of the ``http`` workload under wrk, and the
server's CPU share.

Each load profile (condition ``load``) gets a fresh instance: the light profile (a few
connections) and the seed document's (10,000 connections, a wrk thread per core), with the
descriptor limits and listen backlog it needs.
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from virtbench.accounting import cpu_ns, free_port
from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Option, Params
from virtbench.experiments.shared.serving import wrk_settings
from virtbench.loadgen import run_wrk, wait_closed
from virtbench.metric import VALUES, Metric
from virtbench.platforms.base import Handle, NotSupported, Platform, Workload
from virtbench.process import can_raise_hard_limits, nofile_granted, nofile_limit
from virtbench.store.schema import Measurement

NAME = "http"
_MS = "ms"
_LOAD = ("load",)
_WRK = "under wrk on a loopback port"

METRICS = (
    Metric("requests_per_s", NAME, "req/s", "higher",
           f"wrk's Requests/sec of the http workload less its non-2xx/3xx responses "
           f"{_WRK}", _LOAD),
    Metric("latency_p50", NAME, _MS, "lower", f"wrk's 50th percentile latency {_WRK}",
           _LOAD),
    Metric("latency_p99", NAME, _MS, "lower", f"wrk's 99th percentile latency {_WRK}",
           _LOAD),
    Metric("errors", NAME, "count", "lower",
           f"wrk's socket errors (connect, read, write, timeout) + non-2xx/3xx responses "
           f"{_WRK}", _LOAD),
    Metric("cpu_percent_load", NAME, "% of one core", "",
           "on-CPU time of the instance's host processes / wall time of the wrk run "
           "(more CPU may buy more throughput: neither direction is better)", _LOAD),
)

WARM_UP_S = 1  # seconds of wrk load before the measured run (wrk takes whole seconds)
DRAIN_TIMEOUT_S = 30  # longest wait for the warm-up's connections to close


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
            for m, c in EXPERIMENT.primary_metrics() if c.get("load") == "seed"]


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


EXPERIMENT = Experiment(
    NAME, "requests/s and latency of the http workload under wrk, and the server's CPU "
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
    quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS,
    primary=tuple((m, {"load": load}) for load in VALUES["load"]
                  for m in ("requests_per_s", "latency_p50", "latency_p99")))
