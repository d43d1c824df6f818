"""Observability: what the suite's own host-side probes can collect from each platform, and
on a VM's full-OS guest, what a tracer inside the guest sees.

Each probe is a real attempt, recorded as 1 (collected) or 0 (the probe ran and saw
nothing); a probe that cannot run on a variant is a row with no value and the reason.
"""

from __future__ import annotations

import shutil
import subprocess

from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Params
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.shared.userland import FULL_OS_OPTION, on_userlands
from virtbench.metric import Metric
from virtbench.platforms.base import WORKDIR, NotSupported, Platform, Workload
from virtbench.process import child_env, die_with_parent
from virtbench.store.schema import Measurement

NAME = "observability"
_USERLAND = ("userland",)
_PROBE = "1 if the host-side probe collected it, 0 if it ran and saw nothing"

METRICS = (
    *(Metric(name, NAME, "collected (1/0)", "higher", f"{what}: {_PROBE}",
             exact=True)
      for name, what in (
          ("probe_logs", "the workload's stdout line (VB-RESULT) reached the harness"),
          ("probe_app_trace", "the workload's own timing (elapsed_ns) reached the "
                              "harness"),
          ("probe_resource_metrics", "memory counters of a running instance read from "
                                     "the host"),
          ("probe_network_trace", "a traced connection attributed to the workload"))),
    Metric("probe_syscall_trace", NAME, "collected (1/0)", "higher",
           "strace from the host saw the workload's fsync on its own file; VM, "
           "userland=debian-systemd: strace -f -c run inside the guest on the process "
           f"of the workload's systemd service counted its fsync calls: {_PROBE}",
           _USERLAND, exact=True),
)


GUEST_SIDE = ("guest_used",)  # memory rows read inside the instance, not by a host probe

UNIT = "collected (1/0)"
TRACE_SECONDS = 1.5


def strace_fsyncs(pids: list[int], seconds: float = TRACE_SECONDS) -> str:
    """``strace -f -y -e trace=fsync`` of running ``pids`` for ``seconds``; its output."""
    if shutil.which("strace") is None:
        raise NotSupported("strace is not installed (Debian package strace; run `make setup`)")
    argv = ["timeout", "-s", "INT", f"{seconds:g}", "strace", "-f", "-y", "-e", "trace=fsync"]
    for pid in pids:
        argv += ["-p", str(pid)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                          env=child_env(), preexec_fn=die_with_parent())
    return proc.stderr


def probe_syscalls(plat: Platform) -> Measurement:
    """Can a host tracer see the workload's own system calls on its own file?"""
    desc = ("strace -f -y -e trace=fsync attached from the host for "
            f"{TRACE_SECONDS:g} s to the instance's host processes while the guest loops "
            "write+fsync on vb-hog.dat; 1 when an fsync on that file is seen")
    with plat.instance(Workload("hog"), ["io", "600", "4", WORKDIR]) as handle:
        trace = strace_fsyncs(handle.pids)
    seen = sum("vb-hog.dat" in line for line in trace.splitlines())
    return Measurement("probe_syscall_trace", 1.0 if seen else 0.0, UNIT, desc,
                       tags={"fsyncs_seen": str(seen)})


#: The userland whose guest has a tracer inside (the full-OS guest: strace in its root disk).
TRACED_USERLAND = "debian-systemd"
GUEST_TRACE_SECONDS = 3.0
#: Why the full-OS guest is traced with strace only: bpftrace and perf are not in its root disk.
NO_EBPF = ("bpftrace and perf were not tried: neither is in the full-OS guest's root disk "
           "(bpftrace pulls in LLVM and clang; perf must match the guest kernel's version); "
           "whether the guest kernel would run them is not measured")


def guest_trace_row(counts: dict[str, int], seconds: float) -> Measurement:
    """The in-guest probe's row from the system calls strace counted inside the guest."""
    fsyncs = counts.get("fsync", 0)
    return Measurement(
        "probe_syscall_trace", 1.0 if fsyncs else 0.0, UNIT,
        f"traced inside the guest: strace -f -c attached (strace -p) for {seconds:g} s, "
        "inside the full-OS guest, to the process of the workload its systemd service "
        "vb-workload.service started (hog io: write + fsync on vb-hog.dat in a loop), its "
        "summary printed on the serial console; 1 when it counted fsync calls",
        tags={"traced": "inside the guest", "tracer": "strace -f -c",
              "fsync_calls": str(fsyncs), "syscalls_seen": str(len(counts)),
              "ebpf": NO_EBPF},
        conditions={"userland": TRACED_USERLAND})


def probe_syscalls_in_guest(plat: Platform, params: Params) -> list[Measurement]:
    """The system-call probe run inside the variant's full-OS guest, where it offers one;
    its row has the condition userland and says the tracing happened inside the guest."""
    def traced(guest: Platform) -> list[Measurement]:
        counts = guest.trace_syscalls_inside(Workload("hog"), ["io", "600", "4", WORKDIR],
                                             GUEST_TRACE_SECONDS)
        return [guest_trace_row(counts, GUEST_TRACE_SECONDS)]

    return on_userlands(plat, EXPERIMENT, [Workload("hog")], traced,
                        quick=params.quick, names=(TRACED_USERLAND,), options=params.options)


def measure_observability(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    out: list[Measurement] = []
    try:
        noop = plat.run(Workload("noop"))
        out.append(Measurement("probe_logs", 1.0 if noop.result else 0.0, UNIT,
                               "the workload's stdout line (VB-RESULT) reached the harness"))
    except NotSupported as exc:
        out.append(Measurement.missing("probe_logs", UNIT, f"not supported: {exc}"))
    try:
        cpu = plat.run(Workload("cpu"), ["1"])
        out.append(Measurement("probe_app_trace", 1.0 if "elapsed_ns" in cpu.result else 0.0,
                               UNIT, "the workload's own timing (elapsed_ns) reached the "
                               "harness"))
    except NotSupported as exc:
        out.append(Measurement.missing("probe_app_trace", UNIT, f"not supported: {exc}"))
    try:
        # host-side counters only: guest_used is the guest kernel's own accounting
        mem = [m for m in measure_mem(plat, 0)
               if m.value is not None and m.metric not in GUEST_SIDE]
        out.append(Measurement("probe_resource_metrics", 1.0 if mem else 0.0, UNIT,
                               "memory counters of a running instance read from the host: "
                               + ", ".join(dict.fromkeys(m.metric for m in mem))))
    except NotSupported as exc:
        out.append(Measurement.missing("probe_resource_metrics", UNIT, f"not supported: {exc}"))
    try:
        out.append(probe_syscalls(plat))
    except NotSupported as exc:
        out.append(Measurement.missing("probe_syscall_trace", UNIT, f"not supported: {exc}"))
    out += probe_syscalls_in_guest(plat, params)
    out.append(Measurement.missing(
        "probe_network_trace", UNIT,
        "no probe yet: attributing a traced connection to the workload (not to a forwarder "
        "such as docker-proxy or QEMU's user network) needs per-platform knowledge"))
    return out


EXPERIMENT = Experiment(
    NAME, "what host-side probes collect: logs, application timing, resource "
    "metrics, system calls", measure_observability,
    workloads=("noop",), reps=1, quick_reps=1, warmup=0,
    quick_skips=QUICK_SKIPS_TCG_PC, options={"full_os": FULL_OS_OPTION},
    metrics=METRICS,
    primary=tuple((m, {}) for m in ("probe_logs", "probe_app_trace",
                                    "probe_resource_metrics", "probe_syscall_trace")))
