"""The host-syscall surface: which distinct host system calls an instance's own processes
make while it serves HTTP, counted by ``strace -f -c`` attached from the host.

It is the measured side of the "security" ratings: what a workload reaches of the host
kernel. The traced processes are the instance's own (for a container, those in its memory
cgroup: runc's workload, or gVisor's Sentry and Gofer), not the containerd shim or the
docker-proxy. Processes already being traced cannot be attached: under gVisor's ptrace
platform those are the stubs whose system calls the Sentry intercepts (the few the host
executes for them are made at the Sentry's request); each row's tag ``untraced`` counts them.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from virtbench.accounting import free_port, memory_group
from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Params
from virtbench.loadgen import http_ok
from virtbench.metric import Metric
from virtbench.platforms.base import Handle, NotSupported, Platform, Workload
from virtbench.process import interrupt, status_value
from virtbench.store.schema import Measurement
from virtbench.workloads.tools import parse_strace_summary

NAME = "syscalls"

METRICS = (
    Metric("host_syscalls_distinct", NAME, "syscalls", "lower",
           "distinct host system calls the instance's own processes made while serving "
           "sequential HTTP requests (strace -f -c from the host)"),
    Metric("host_syscalls_total", NAME, "calls", "",
           "host system calls in all the instance's own processes made while serving "
           "sequential HTTP requests (strace -f -c from the host; the tracing slows them)"),
)


REQUESTS, QUICK_REQUESTS = 200, 50
ATTACH_S = 1.0


def tracer_pid(pid: int) -> int:
    """``TracerPid`` of ``pid`` (0: not traced, or gone)."""
    return status_value(pid, "TracerPid") or 0


def own_processes(handle: Handle) -> list[int]:
    """The instance's own processes: those in its memory cgroup (all of them without one)."""
    if handle.cgroup_pid is None:
        return list(handle.pids)
    group = memory_group(handle.cgroup_pid)
    return [p for p in handle.pids if memory_group(p) == group]


def measure_syscalls(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    strace = shutil.which("strace")
    if strace is None:
        raise NotSupported("strace not found: apt-get install strace")
    requests = QUICK_REQUESTS if params.quick else REQUESTS
    port = free_port()
    with plat.instance(Workload("http"), port=port) as handle, \
            tempfile.TemporaryDirectory(prefix="vb-strace-") as tmp:
        own = own_processes(handle)
        traced = [p for p in own if tracer_pid(p) == 0]
        if not traced:
            raise NotSupported(f"every process of the instance ({own}) is already traced")
        out = Path(tmp) / "summary.txt"
        argv = [strace, "-f", "-c", "-o", str(out)]
        for pid in traced:
            argv += ["-p", str(pid)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            time.sleep(ATTACH_S)
            answered = sum(http_ok(port, timeout=5.0) for _ in range(requests))
        finally:
            interrupt(proc, timeout=30)
        counts = parse_strace_summary(out.read_text())
    who = handle.who
    tags = {"traced_pids": str(len(traced)), "untraced": str(len(own) - len(traced)),
            "requests": str(requests), "answered": str(answered),
            "syscalls": " ".join(sorted(counts))}
    what = (f"strace -f -c attached to the instance's own processes ({len(traced)} of "
            f"{who}; {len(own) - len(traced)} already traced) while it answered {requests} "
            "sequential GET / over loopback")
    return [Measurement("host_syscalls_distinct", len(counts), "syscalls",
                        f"distinct host system calls: {what}", tags=tags),
            Measurement("host_syscalls_total", sum(counts.values()), "calls",
                        f"host system calls in all: {what}", tags=tags)]


EXPERIMENT = Experiment(
    NAME, "the host-syscall surface: distinct host system calls of an instance's own "
    "processes while it serves HTTP (strace -f -c from the host)", measure_syscalls,
    workloads=("http",), reps=3, quick_reps=1, warmup=0, quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS,
    primary=(("host_syscalls_distinct", {}),))
