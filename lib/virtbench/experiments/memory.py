"""memory: the memory of one instance, read from the host.

The ``mem`` workload idle and holding a buffer (:mod:`.shared.mem_instance`: its host
processes or cgroup, a VM at several guest sizes and by its guest kernel's own accounting,
an engine's marginal memory of one more instance); the ``http`` server idle and at its peak
under wrk load; a user's program run to completion, its peaks.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import replace

from virtbench.accounting import MemoryReading, free_port, read_memory
from virtbench.experiments.base import Experiment, Option, Params
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.shared.serving import SETTLE_S, wrk_settings
from virtbench.experiments.shared.userland import (
    FULL_OS_OPTION,
    QUICK_SKIPS_USERLANDS,
    on_userlands,
)
from virtbench.loadgen import run_wrk
from virtbench.metric import Metric
from virtbench.platforms.base import Handle, NotSupported, Platform, RunOutcome, Workload
from virtbench.store.schema import Measurement

NAME = "memory"
_MIB = "MiB"
_HELD = "of one instance of the mem workload"
_STATE = ("state",)
_STATE_USERLAND = ("state", "userland")
_ADDS = "memory one running http server instance adds to the host"

METRICS = (
    Metric("rss", NAME, _MIB, "lower",
           f"VmRSS {_HELD}: of the workload process, the engine's process or QEMU",
           ("state", "guest_memory_mib", "userland")),
    Metric("pss", NAME, _MIB, "lower",
           f"PSS (smaps_rollup) {_HELD}: of the workload process, the engine's process "
           "or QEMU", ("state", "guest_memory_mib", "userland")),
    Metric("guest_used", NAME, _MIB, "lower",
           f"VM: MemTotal - MemAvailable of the guest's own /proc/meminfo {_HELD}, read "
           "inside the guest just after the workload's ready line: the guest kernel's "
           "accounting, not the host's (its processes, tmpfs and initramfs files, its "
           "unreclaimable kernel memory and reserves; page cache and reclaimable slab "
           "count as available, so they are mostly not in it)",
           ("state", "guest_memory_mib", "userland")),
    Metric("peak_rss", NAME, _MIB, "lower",
           f"VmHWM (peak RSS) of the Wasm engine's process {_HELD}; a user's program run "
           "to completion: the peak RSS (wait4 ru_maxrss) of the host process that ran "
           "it (the program, the engine's process or QEMU)", _STATE),
    Metric("rss_per_instance", NAME, _MIB, "lower",
           "Wasm: least-squares slope of the engine process's VmRSS over the number of "
           "live instances in it", _STATE),
    Metric("pss_per_instance", NAME, _MIB, "lower",
           "Wasm, one instance per process (CLI, Node): least-squares slope of the "
           "summed PSS of concurrent engine processes over their number", _STATE),
    Metric("cgroup_usage", NAME, _MIB, "lower",
           "Docker: memory.current (v2) or memory.usage_in_bytes (v1) of the "
           "container's cgroup, page cache and kernel memory included", _STATE_USERLAND),
    Metric("cgroup_anon", NAME, _MIB, "lower",
           "Docker: anonymous memory (memory.stat anon / rss) of the container's cgroup",
           _STATE_USERLAND),
    Metric("cgroup_file", NAME, _MIB, "lower",
           "Docker: page cache (memory.stat file / cache) charged to the container's "
           "cgroup", _STATE_USERLAND),
    Metric("cgroup_peak", NAME, _MIB, "lower",
           "Docker: peak memory of the container's cgroup since it started; a user's "
           "program run to completion: the peak (memory.max_usage_in_bytes or "
           "memory.peak) of a parent cgroup that held only its container, read after it "
           "exited", _STATE_USERLAND),
    Metric("shim_peak", NAME, _MIB, "lower",
           "Docker, a user's program run to completion: VmHWM of the container's "
           "containerd shim (outside its cgroup), read after the container exited"),
    Metric("guest_peak_rss", NAME, _MIB, "lower",
           "VM, a user's program run to completion: its peak RSS inside the guest "
           "(busybox time %M, the guest kernel's wait4 ru_maxrss)"),
    Metric("wasm_memory", NAME, _MIB, "lower",
           "Wasm, a user's program run to completion: size of the instance's exported "
           "linear memory after _start returned (64 KiB pages; it never shrinks, so it "
           "is its peak): the program's own heap and data, without the runtime"),
    Metric("shim_rss", NAME, _MIB, "lower",
           "Docker: VmRSS of the container's containerd shim (outside its cgroup)",
           _STATE_USERLAND),
    Metric("shim_pss", NAME, _MIB, "lower",
           "Docker: PSS of the container's containerd shim", _STATE_USERLAND),
    Metric("total", NAME, _MIB, "lower",
           "Docker: per-container footprint, cgroup_usage + shim_rss (the shared "
           "daemons are not included)", _STATE_USERLAND),
    Metric("dockerd_rss", NAME, _MIB, "lower",
           "Docker: VmRSS of dockerd (shared by all containers)", _STATE_USERLAND),
    Metric("containerd_rss", NAME, _MIB, "lower",
           "Docker: VmRSS of containerd (shared by all containers)", _STATE_USERLAND),
    # the running service (http workload): one counter family for every platform
    Metric("instance_rss", NAME, _MIB, "lower",
           f"{_ADDS}: the summed VmRSS of its host processes (the server process; the "
           "container's init, its containerd shim and docker-proxy; the engine's "
           "process; QEMU). loaded: the summed VmHWM after the wrk load",
           ("state", "guest_memory_mib")),
    Metric("instance_pss", NAME, _MIB, "lower",
           f"{_ADDS}: the summed PSS (smaps_rollup) of its host processes, shared pages "
           "split among their users. loaded: the largest sum sampled every 0.25 s "
           "during the wrk load", ("state", "guest_memory_mib")),
    Metric("instance_cgroup", NAME, _MIB, "lower",
           f"{_ADDS}, by the platform's own accounting: Docker, the usage of the "
           "container's cgroup (memory.current or memory.usage_in_bytes, page cache "
           "included). loaded: the largest usage sampled during the wrk load", _STATE),
    Metric("instance_footprint", NAME, _MIB, "lower",
           f"{_ADDS}: Docker, instance_cgroup plus the VmRSS of the instance's host "
           "processes outside the cgroup (containerd shim, docker-proxy); the shared "
           "daemons are not included. loaded: taken at the sample of largest cgroup "
           "usage", _STATE),
)


def measure_memory(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Idle and loaded memory of one instance.

    ``mem``: the instance holding nothing, then a buffer of option ``mem_mib``. ``http``: the
    memory a running server adds to the host, idle and at its peak under wrk load. A user's
    program: run to completion, its peaks (:func:`user_peaks`).
    """
    if wl.builtin and wl.name == "http":
        return measure_instance_memory(plat, wl, params)
    if not wl.builtin:
        return user_peaks(plat.run(wl, []))
    loaded = int(params.options.get("mem_mib", 16 if params.quick else 64))

    def both_states(p: Platform) -> list[Measurement]:
        out = []
        for mib, state in ((0, "idle"), (loaded, "loaded")):
            for m in measure_mem(p, mib):
                out.append(replace(m, tags={**m.tags, "mem_mib": str(mib)},
                                   conditions={**m.conditions, "state": state}))
        return out

    return both_states(plat) + on_userlands(plat, EXPERIMENT, [Workload("mem")], both_states,
                                            skip=QUICK_SKIPS_USERLANDS if params.quick else "",
                                            options=params.options)


RAN = "; the user's program run to completion"
#: The metric of each peak a platform reads (:data:`virtbench.platforms.base.PEAK_KINDS`).
PEAK_METRICS = {"cgroup": "cgroup_peak", "shim": "shim_peak", "process_rss": "peak_rss",
                "linear_memory": "wasm_memory", "guest_rss": "guest_peak_rss"}


def user_peaks(out: RunOutcome) -> list[Measurement]:
    """The peaks of memory of a user's program run to completion: the peak RSS of the host
    process that ran it (``rss_of``) and the others its platform read, one row each (no
    value: the reason)."""
    rows = []
    if out.peak_rss_kib is not None:
        rows.append(Measurement("peak_rss", out.peak_rss_kib / 1024, "MiB",
                                f"peak RSS (wait4 ru_maxrss) of {out.rss_of}: all that "
                                f"process held, a runtime's or QEMU's own memory included"
                                f"{RAN}"))
    for peak in out.peaks:
        metric = PEAK_METRICS[peak.kind]
        if peak.value is None:
            rows.append(Measurement.missing(metric, "MiB", f"not supported: {peak.what}"))
        else:
            rows.append(Measurement(metric, peak.value / (1 << 20), "MiB", f"{peak.what}{RAN}"))
    return rows


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


EXPERIMENT = Experiment(
    NAME, "memory of one instance: the mem workload idle and holding a buffer; the http "
    "server idle and at its peak under wrk load",
    measure_memory,
    workloads=("mem", "http"), reps=10, quick_reps=1, warmup=0,
    options={"mem_mib": Option(int, 1, 65536, "MiB the loaded mem instance holds"),
             "http_duration_s": Option(int, 1, 3600, "seconds of wrk load (http)"),
             "http_threads": Option(int, 1, 1024, "wrk threads (http)"),
             "http_connections": Option(int, 1, 100_000, "open connections (http)"),
             "full_os": FULL_OS_OPTION},
    metrics=METRICS,
    primary=(("rss", {"state": "idle"}), ("rss", {"state": "loaded"}),
             ("instance_rss", {"state": "idle"}), ("instance_rss", {"state": "loaded"})))
