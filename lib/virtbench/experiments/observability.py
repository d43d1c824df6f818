"""Observability: what the suite's own host-side probes can collect from each platform, what
an OpenTelemetry collector on the host receives from a traced program in the instance, and
on a VM's full-OS guest, what a tracer inside the guest sees.

Each probe is a real attempt, recorded as 1 (collected) or 0 (the probe ran and saw
nothing); a probe that cannot run on a variant is a row with no value and the reason.
"""

from __future__ import annotations

import shutil
import subprocess
from contextlib import nullcontext

from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Params
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.shared.userland import FULL_OS_OPTION, on_userlands
from virtbench.metric import Metric
from virtbench.otlp import Collector, children_of, traceparent
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
          ("probe_network_trace", "the instance's own TCP packets (its OTLP export to the "
                                  "collector) captured from the host: at a container's "
                                  "bridge or a guest's virtual NIC, not at a forwarder such "
                                  "as docker-proxy or QEMU's user network; on the loopback "
                                  "for a process"))),
    Metric("probe_otlp_spans", NAME, "collected (1/0)", "higher",
           "application tracing: the built-in trace workload, run in the instance, exported "
           "its span over OTLP/HTTP (JSON) to a collector the harness ran on the host (read "
           "against the OTLP schema); 1 when the span arrived, 0 when none did", exact=True),
    Metric("probe_trace_context", NAME, "collected (1/0)", "higher",
           "distributed tracing: the span that arrived continued the trace context the "
           "harness handed in (a W3C traceparent argument): the same trace id, the "
           "harness's span as its parent; 1 when it did, 0 when it did not or none arrived",
           exact=True),
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


OTLP_METRICS = ("probe_otlp_spans", "probe_trace_context", "probe_network_trace")


def probe_otlp(plat: Platform) -> list[Measurement]:
    """Application, distributed and network tracing from one traced run: a collector on the
    host (:mod:`virtbench.otlp`), the ``trace`` workload in the instance handed a W3C trace
    context, whether its span arrived and continued that trace, and whether the host saw the
    instance's own packets of that export (:meth:`Platform.capture_traffic`)."""
    bind, reach = plat.collector_route()
    with Collector(bind) as collector:
        header, trace_id, parent = traceparent()
        try:
            capturing = plat.capture_traffic(collector.port, reach)
            no_capture = ""
        except NotSupported as exc:
            capturing, no_capture = nullcontext(None), str(exc)
        with capturing as capture:
            outcome = plat.run(Workload("trace"), [reach, str(collector.port), header],
                               timeout=120)
        spans = list(collector.spans)
    mine = children_of(spans, trace_id, parent)
    tags = {"collector": f"{bind}:{collector.port}", "reached_at": reach,
            "spans": str(len(spans)), "status": outcome.result.get("status", ""),
            "protocol": "OTLP/HTTP JSON, POST /v1/traces"}
    where = f"the collector listened on {bind}, the instance reached it at {reach}"
    out = [
        Measurement("probe_otlp_spans", 1.0 if spans else 0.0, UNIT,
                    "spans the trace workload exported over OTLP/HTTP from inside the "
                    f"instance reached the harness's collector ({where}); 1 when one did",
                    tags=tags),
        Measurement("probe_trace_context", 1.0 if mine else 0.0, UNIT,
                    "the span continued the W3C trace context handed to the workload (its "
                    "trace id, and the harness's span as its parent); 1 when it did",
                    tags={**tags, "trace_id": trace_id, "parent_span_id": parent}),
    ]
    if capture is None:
        out.append(Measurement.missing("probe_network_trace", UNIT,
                                       f"not supported: {no_capture}"))
    else:
        out.append(Measurement(
            "probe_network_trace", 1.0 if capture.packets else 0.0, UNIT,
            f"the instance's own TCP packets of its OTLP export to {reach}:{collector.port}, "
            f"captured from the host at {capture.where}; 1 when any was seen",
            tags={"packets": str(len(capture.packets)), "from": ", ".join(capture.sources()),
                  "bytes": str(sum(p.payload for p in capture.packets))}))
    return out


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
        out += probe_otlp(plat)
    except NotSupported as exc:
        out += [Measurement.missing(m, UNIT, f"not supported: {exc}") for m in OTLP_METRICS]
    except Exception as exc:  # the traced run failed: these rows are measured again
        why = " ".join(str(exc).split())[:300]
        out += [Measurement.missing(m, UNIT, f"failed: the trace workload's run: {why}")
                for m in OTLP_METRICS]
    try:
        out.append(probe_syscalls(plat))
    except NotSupported as exc:
        out.append(Measurement.missing("probe_syscall_trace", UNIT, f"not supported: {exc}"))
    out += probe_syscalls_in_guest(plat, params)
    return out


EXPERIMENT = Experiment(
    NAME, "what host-side probes collect: logs, application timing, OTLP spans and "
    "their trace context, resource metrics, system calls", measure_observability,
    workloads=("noop",), reps=1, quick_reps=1, warmup=0,
    quick_skips=QUICK_SKIPS_TCG_PC, options={"full_os": FULL_OS_OPTION},
    metrics=METRICS,
    primary=tuple((m, {}) for m in ("probe_logs", "probe_app_trace", "probe_otlp_spans",
                                    "probe_trace_context", "probe_network_trace",
                                    "probe_resource_metrics", "probe_syscall_trace")))
