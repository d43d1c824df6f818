"""Redis as the server: Debian's ``redis-server`` in every platform that can serve the host,
loaded by ``redis-benchmark`` on the host over loopback, with and without pipelining.

The server is the host's own executable (a container's image holds it with its shared
libraries), started with ``--save "" --appendonly no`` (no persistence: the figures are of
the network path and the server, not the disk) and ``--protected-mode no`` (a container's
connections come from its bridge's gateway, not loopback; the port is published on
127.0.0.1 only). Each cell runs a fixed number of SET and GET requests from 50 clients,
once one request per round trip and once 16 per pipeline.
"""

from __future__ import annotations

import socket
import subprocess
import time

from virtbench.accounting import free_port
from virtbench.experiments.base import Experiment, Option, Params
from virtbench.metric import Metric
from virtbench.platforms.base import BIND, PORT, NotSupported, Platform, Workload
from virtbench.store.schema import Measurement
from virtbench.workloads.tools import ToolMissing, parse_redis_benchmark, tool

NAME = "redis"
_MS = "ms"

METRICS = (
    Metric("requests_per_s", NAME, "req/s", "higher",
           "redis-benchmark's requests per second (50 clients, a fixed request count) "
           "against the platform's redis-server over loopback", ("pipeline", "command")),
    Metric("latency_p50", NAME, _MS, "lower",
           "redis-benchmark's 50th percentile latency of one request",
           ("pipeline", "command")),
    Metric("latency_p99", NAME, _MS, "lower",
           "redis-benchmark's 99th percentile latency of one request",
           ("pipeline", "command")),
)


CLIENTS = 50
PIPELINES = (1, 16)
COMMANDS = ("SET", "GET")
FULL_REQUESTS, QUICK_REQUESTS = 200_000, 20_000
SERVER_ARGS = ("--port", PORT, "--bind", BIND, "--save", "", "--appendonly", "no",
               "--protected-mode", "no")
READY_TIMEOUT_S = 60.0


def redis_workloads() -> list[Workload]:
    """The host's redis-server as the experiment's one workload."""
    try:
        path = tool("redis-server")
    except ToolMissing:
        path = "/usr/bin/redis-server"
    return [Workload("redis-server", command=(str(path),))]


def wait_pong(port: int, timeout: float) -> int:
    """PING 127.0.0.1:``port`` until ``+PONG``; perf_counter_ns of that answer.

    A published container port accepts connections (docker-proxy) before the server in the
    container does, so only a PONG counts as ready.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return time.perf_counter_ns()
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"no +PONG from 127.0.0.1:{port} within {timeout:g} s")


def benchmark_argv(port: int, requests: int, pipeline: int) -> list[str]:
    return [str(tool("redis-benchmark")), "-h", "127.0.0.1", "-p", str(port), "-c",
            str(CLIENTS), "-n", str(requests), "-P", str(pipeline), "-t",
            ",".join(c.lower() for c in COMMANDS), "--csv"]


def measure_redis(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    try:
        tool("redis-server"), tool("redis-benchmark")
    except ToolMissing as exc:
        raise NotSupported(str(exc)) from exc
    requests = int(params.options.get("redis_requests", QUICK_REQUESTS if params.quick
                                      else FULL_REQUESTS))
    port = free_port()
    ms: list[Measurement] = []
    with plat.instance(wl, list(SERVER_ARGS), port=port) as handle:
        wait_pong(port, READY_TIMEOUT_S)
        path = handle.info.get("path", "loopback")
        for pipeline in PIPELINES:
            n = requests * pipeline
            argv = benchmark_argv(port, n, pipeline)
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                raise RuntimeError(f"redis-benchmark exited {done.returncode}: "
                                   f"{(done.stderr or done.stdout)[-300:]}")
            tests = parse_redis_benchmark(done.stdout)
            what = (f"redis-benchmark -c {CLIENTS} -n {n} -P {pipeline} on the host against "
                    f"the platform's redis-server ({path})")
            for command in COMMANDS:
                got = tests[command]
                cond = {"pipeline": str(pipeline), "command": command}
                tags = {"requests": str(n), "clients": str(CLIENTS), "port": str(port)}
                ms += [Measurement("requests_per_s", got.rps, "req/s", f"{what}: its {command} "
                                   "requests per second", tags=tags, conditions=cond),
                       Measurement("latency_p50", got.p50_ms, "ms", f"{what}: its {command} "
                                   "50th percentile latency", tags=tags, conditions=cond),
                       Measurement("latency_p99", got.p99_ms, "ms", f"{what}: its {command} "
                                   "99th percentile latency", tags=tags, conditions=cond)]
    return ms


EXPERIMENT = Experiment(
    NAME, "Redis (Debian's redis-server) as the server in every platform that can serve "
    "the host, loaded by redis-benchmark over loopback: SET and GET, pipelined and not",
    measure_redis, workloads=("redis-server",), reps=10, quick_reps=2, warmup=1,
    quick_warmup=0, tools=redis_workloads,
    options={"redis_requests": Option(int, 1000, 10_000_000, f"requests per command without "
                                      f"pipelining, x16 with it (default {FULL_REQUESTS}, "
                                      f"quick {QUICK_REQUESTS})")},
    metrics=METRICS,
    primary=tuple(("requests_per_s", {"pipeline": p, "command": c})
                  for p in ("1", "16") for c in ("SET", "GET")))
