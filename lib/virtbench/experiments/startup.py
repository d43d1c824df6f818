"""startup: time from launch to exit of the no-op workload, and the peak memory of the
process that ran it.

Each variant's timed start sequences (:meth:`~virtbench.platforms.base.Platform.timed_starts`:
a container's create, start and load, a Wasm engine's cold and warm starts, a VM's boot,
pause and snapshot), or else one run to completion; on the minimal userland and on the
others the variant offers (condition ``userland``).
"""

from __future__ import annotations

import statistics

from virtbench.experiments.base import Experiment, Params
from virtbench.experiments.shared.userland import (
    FULL_OS_OPTION,
    QUICK_SKIPS_USERLANDS,
    on_userlands,
)
from virtbench.metric import Metric
from virtbench.platforms.base import TIMING_KINDS, Platform, Timing, Workload
from virtbench.store.schema import Measurement

NAME = "startup"
_MS, _MIB, _B = "ms", "MiB", "B"
_NOOP = "of the no-op workload"
_USERLAND = ("userland",)
_NET_USERLAND = ("network", "userland")

METRICS = (
    Metric("startup", NAME, _MS, "lower",
           f"launch to exit {_NOOP} (native: fork to wait4 returning the exit status, "
           "the median of runs back to back in one launch helper after untimed warm-up "
           "runs, or with warm_up=none the first run of a fresh helper; Docker, image present: "
           "create_container to wait returning), or to the first line of the guest's "
           "init (VM: QEMU spawn to VB-BOOTED); VM, userland=debian-systemd: from "
           "spawning QEMU to the host reading the readiness marker of the service that "
           "systemd (PID 1) started on its way to multi-user.target (VB-BOOTED, the first "
           "line of vb-workload.service's script, printed just before it starts the "
           "workload)", _NET_USERLAND + ("warm_up",)),
    Metric("startup_to_exit", NAME, _MS, "lower",
           "VM: from spawning QEMU to wait4 returning after the guest ran the no-op "
           "workload and powered off", _USERLAND),
    Metric("guest_uptime_at_init", NAME, _MS, "lower",
           "VM: the guest kernel's own /proc/uptime when init started (guest clock; "
           "userland=debian-systemd: when the systemd service's script started)",
           _USERLAND),
    Metric("systemd_startup_finished", NAME, _MS, "lower",
           "VM, userland=debian-systemd: systemd's own startup-finished point, the total "
           "systemd-analyze time reports: the manager's FinishTimestampMonotonic, the "
           "guest's CLOCK_MONOTONIC from the kernel's start to the boot's last job done "
           "(guest clock; excludes firmware and kernel decompression)", _USERLAND),
    Metric("peak_rss", NAME, _MIB, "lower",
           "peak RSS (wait4 ru_maxrss) of the process that ran the no-op workload (the "
           "workload, the engine's process, or QEMU)", _USERLAND),
    Metric("startup_cold", NAME, _MS, "lower",
           f"cold start {_NOOP}: Docker, image absent: from load_image of the saved "
           "tarball to wait returning; Wasm in a fresh worker: from reading the .wasm "
           "to _start returning (read + compile + instantiate + run)", _NET_USERLAND),
    Metric("startup_warm", NAME, _MS, "lower",
           f"warm start {_NOOP}: Docker: restart of a stopped container, start to wait "
           "returning; Wasm: median instantiate + run of an already compiled module in "
           "one process, the suite's WASI set-up included (startup_warm_setup + "
           "startup_warm_engine)",
           ("network", "allocator", "userland", "memory_limit", "time_bound")),
    Metric("startup_warm_engine", NAME, _MS, "lower",
           f"warm Wasm start {_NOOP}, the engine's part: median of the engine's "
           "instantiate + run of _start (wasmtime: Linker.instantiate + _start) of an "
           "already compiled module, in the steady state of one process",
           ("allocator", "memory_limit", "time_bound")),
    Metric("startup_warm_setup", NAME, _MS, "lower",
           f"warm Wasm start {_NOOP}, the suite's part: median of the per-instance set-up "
           "before instantiation (wasmtime: new Store, its limits, the WASI config with "
           "the output files, preopened directories and arguments)",
           ("allocator", "memory_limit", "time_bound")),
    Metric("startup_aot", NAME, _MS, "lower",
           f"Wasm start {_NOOP} from compiled code in a fresh worker: from loading the "
           "precompiled code (or a primed cache) to _start returning"),
    Metric("startup_process", NAME, _MS, "lower",
           "Wasm: from spawn of a fresh engine process (CLI or worker) running the "
           "no-op module to its exit (wait4)",
           ("allocator", "code_cache", "module", "time_bound", "memory_limit")),
    Metric("startup_create", NAME, _MS, "lower",
           "Docker: APIClient.create_container, from the call to its return",
           _NET_USERLAND),
    Metric("startup_start", NAME, _MS, "lower",
           "Docker: APIClient.start of the created container, from the call to its "
           "return", _NET_USERLAND),
    Metric("startup_load", NAME, _MS, "lower",
           "Docker: APIClient.load_image of the saved image tarball, from the call to "
           "the end of the engine's response", _NET_USERLAND),
    Metric("startup_remove", NAME, _MS, "lower",
           "Docker: APIClient.remove_container of the exited container, from the call "
           "to its return (teardown, not part of startup)", _NET_USERLAND),
    Metric("pause_resume", NAME, _MS, "lower",
           "VM serving HTTP, paused with QMP stop: from sending QMP cont to the first "
           "HTTP 200 answered by the guest"),
    Metric("qmp_stop", NAME, _MS, "lower", "VM: round trip of the QMP 'stop' command"),
    Metric("qmp_cont", NAME, _MS, "lower",
           "VM: round trip of the QMP 'cont' command on the paused guest"),
    Metric("snapshot_save", NAME, _MS, "lower",
           "VM serving HTTP: from sending QMP stop to query-migrate reporting completed "
           "for a migration to a file"),
    Metric("snapshot_size", NAME, _B, "lower",
           "VM: bytes of the saved device and RAM state file"),
    Metric("snapshot_load", NAME, _MS, "lower",
           "VM: from spawning a new QEMU with -incoming from the state file to QMP "
           "query-status reporting the state loaded"),
    Metric("snapshot_restore", NAME, _MS, "lower",
           "VM: from spawning a new QEMU with -incoming from the state file to the "
           "first HTTP 200 of the restored guest"),
)


#: The metric of each kind of :class:`~virtbench.platforms.base.Timing`.
STARTUP_METRICS = {"launch": "startup", "to_exit": "startup_to_exit",
                   "guest_init": "guest_uptime_at_init", "cold": "startup_cold",
                   "warm": "startup_warm", "warm_engine": "startup_warm_engine",
                   "warm_setup": "startup_warm_setup", "aot": "startup_aot",
                   "process": "startup_process",
                   "create": "startup_create", "start": "startup_start",
                   "load": "startup_load", "remove": "startup_remove",
                   "pause_resume": "pause_resume", "qmp_stop": "qmp_stop",
                   "qmp_cont": "qmp_cont", "snapshot_save": "snapshot_save",
                   "snapshot_load": "snapshot_load", "snapshot_restore": "snapshot_restore",
                   "systemd_finished": "systemd_startup_finished"}
assert set(STARTUP_METRICS) == set(TIMING_KINDS)


def run_to_exit(plat: Platform, wl: Workload) -> Timing:
    """One run of ``wl`` to completion (:meth:`Platform.run`), as a launch timing."""
    out = plat.run(wl)
    return Timing("launch", out.wall_ns, out.interval, peak_rss_kib=out.peak_rss_kib,
                  rss_of=out.rss_of)


def reading_ns(t: Timing) -> int | None:
    """The reading of one timed interval: its length, or the median of its steady-state
    series (``samples_ns``); None when it was not timed."""
    if t.ns is not None or not t.samples_ns:
        return t.ns
    return round(statistics.median(t.samples_ns))


def timing_rows(t: Timing) -> list[Measurement]:
    """The rows of one timed interval (ms), with the peak RSS of the process that ran it and
    the size of the state it saved, where it has them."""
    metric = STARTUP_METRICS[t.kind]
    ns = reading_ns(t)
    if ns is None:
        return [Measurement.missing(metric, "ms", t.reason, tags=dict(t.tags),
                                    conditions=dict(t.conditions))]
    out = [Measurement(metric, ns / 1e6, "ms", t.interval, tags=dict(t.tags),
                       conditions=dict(t.conditions))]
    if t.peak_rss_kib is not None:
        out.append(Measurement("peak_rss", t.peak_rss_kib / 1024, "MiB",
                               f"peak RSS (wait4 ru_maxrss) of {t.rss_of}"))
    if t.state_bytes is not None:
        out.append(Measurement("snapshot_size", t.state_bytes, "B", f"size of {t.state_of}"))
    return out


def startup_rows(plat: Platform, wl: Workload) -> list[Measurement]:
    """The variant's timed start sequences of ``wl``, or else one run to completion."""
    return [m for t in plat.timed_starts(wl) or [run_to_exit(plat, wl)]
            for m in timing_rows(t)]


def measure_startup(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """The variant's startup measurements, on its minimal userland and on the others it
    offers (condition ``userland``)."""
    return startup_rows(plat, wl) + on_userlands(
        plat, EXPERIMENT, [wl], lambda p: startup_rows(p, wl),
        skip=QUICK_SKIPS_USERLANDS if params.quick else "", options=params.options)


EXPERIMENT = Experiment(
    NAME, "time from launch to exit of the no-op workload, and peak memory",
    measure_startup,
    workloads=("noop",), reps=20, quick_reps=6, warmup=1,
    options={"full_os": FULL_OS_OPTION},
    metrics=METRICS, primary=(("startup", {}), ("peak_rss", {})))
