"""The metric catalog: every metric an experiment can emit, declared once.

A metric is keyed by (experiment, name) and says its unit, what it is (the interval timed,
from which event to which, or the memory counter read), whether lower or higher is better,
whether it is exact (a deterministic size) and the condition keys it can be measured under.
A condition ("network none", "guest of 128 MiB") is a structured part of the row, never a
suffix of the metric name. :func:`validate` is called for every row written, so an
undeclared metric, condition key or unit is an error.

Each row's ``description`` still says exactly what that variant's number covers; ``what``
here is the shared meaning across variants.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

BETTER = ("lower", "higher", "")

#: Condition keys: what each means and its valid values.
CONDITIONS: dict[str, str] = {
    "network": "Docker network mode of the container: bridge | none | host",
    "allocator": "Wasm instance allocator: pooling (no condition: the default on-demand "
                 "allocator)",
    "code_cache": "wasmtime CLI compiled-module cache, primed by an earlier run: on (no "
                  "condition: the cache is off, -C cache=n)",
    "module": "what the runtime starts from: precompiled (compiled code from a primed cache; "
              "no condition: the .wasm module)",
    "state": "the instance's state when its memory was read. The mem workload: idle (mem 0) | "
             "loaded (holding and having touched the buffer of option mem_mib). The http "
             "workload (instance_* metrics): idle (serving, nobody calling, 1 s after ready) "
             "| loaded (the peak while wrk loads it: VmHWM or the largest of the samples "
             "taken during the load)",
    "guest_memory_mib": "memory of the VM guest in MiB (a decimal integer: 128 | 256 | 512)",
    "attack": "the co-located attacker's resource: cpu | mem | io | fd | proc",
    "limits": "whether the attacker ran under the platform's limits (isolation.LIMITS): "
              "off | on",
    "kernel": "the cpu workload's kernel: hash (integer hash chain + sieve) | nbody "
              "(floating point) | chase (memory-bound pointer chasing) | sort (branch-heavy "
              "quicksort) | fib (call-heavy recursion) | syscall (1-byte pwrite calls); no "
              "condition: hash, the only kernel of older datasets",
    "cache": "where the read data came from: warm (the page cache: the file was just "
             "written and fsync'ed by the same process) | cold (the file's pages were dropped "
             "with posix_fadvise(POSIX_FADV_DONTNEED) before the read, so it reaches the "
             "disk; no condition: warm)",
    "fs": "the file system of the work directory: host (a directory of the host's, or the "
          "VM guest's, kernel file system) | memory (the runtime's own in-memory file "
          "system, not a host directory: not comparable; no condition: host)",
    "case": "speedtest1's test case, by its number (e.g. 100: INSERTs into a table with no "
            "index; the row's tag case_name says what it does)",
    "packing": "how idle instances share host processes: one_process (all in one engine "
               "process; no condition: one host process, container or VM per instance)",
    "userland": "the instance's root file system: debian (Debian bookworm minbase from "
                "debootstrap: a Docker image made with docker import, a VM booted from an "
                "ext4 root disk) | debian-systemd (a full-OS VM guest: Debian bookworm with "
                "systemd-sysv, booting through systemd to a service; guest sizes 512 and "
                "1024 MiB) | minimal (no condition: a FROM scratch image of the static "
                "workload; a kernel + busybox initramfs)",
    "load": "the HTTP load profile: light (no condition: wrk with one thread and 10 "
            "connections for a few seconds) | seed (the seed's test: 10,000 connections, "
            "all cores, raised file-descriptor limits, a long duration)",
}

#: Valid values of the enumerated condition keys (a key not listed takes any non-empty
#: string that passes its check in :data:`_VALUE_CHECKS`).
VALUES: dict[str, tuple[str, ...]] = {
    "network": ("bridge", "none", "host"),
    "allocator": ("pooling",),
    "code_cache": ("on",),
    "module": ("precompiled",),
    "state": ("idle", "loaded"),
    "attack": ("cpu", "mem", "io", "fd", "proc"),
    "limits": ("off", "on"),
    "kernel": ("hash", "nbody", "chase", "sort", "fib", "syscall"),
    "cache": ("warm", "cold"),
    "fs": ("host", "memory"),
    "packing": ("one_process",),
    "userland": ("minimal", "debian", "debian-systemd"),
    "load": ("light", "seed"),
}
_VALUE_CHECKS = {"guest_memory_mib": str.isdigit, "case": str.isdigit}


@dataclass(frozen=True)
class Metric:
    """One declared metric of one experiment."""

    name: str
    experiment: str
    unit: str
    better: str  # "lower" | "higher" | "" (neither)
    what: str
    conditions: tuple[str, ...] = ()
    exact: bool = False  # deterministic (a size in bytes): one sample is the value

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise ValueError(f"{self.experiment}/{self.name}: better must be one of {BETTER}")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"{self.experiment}/{self.name}: undeclared condition keys "
                             f"{unknown}")


_MS, _MIB, _B = "ms", "MiB", "B"
_NOOP = "of the no-op workload"
_STATE = ("state",)
_USERLAND = ("userland",)
_STATE_USERLAND = ("state", "userland")
_NET_USERLAND = ("network", "userland")
_LOAD = ("load",)
_ADDS = "memory one running http server instance adds to the host"


def _startup() -> list[Metric]:
    e = "startup"
    return [
        Metric("startup", e, _MS, "lower",
               f"launch to exit {_NOOP} (native: fork to wait4; Docker, image present: "
               "create_container to wait returning), or to the first line of the guest's "
               "init (VM: QEMU spawn to VB-BOOTED)", _NET_USERLAND),
        Metric("startup_to_exit", e, _MS, "lower",
               "VM: from spawning QEMU to wait4 returning after the guest ran the no-op "
               "workload and powered off", _USERLAND),
        Metric("guest_uptime_at_init", e, _MS, "lower",
               "VM: the guest kernel's own /proc/uptime when init started (guest clock)",
               _USERLAND),
        Metric("peak_rss", e, _MIB, "lower",
               "peak RSS (wait4 ru_maxrss) of the process that ran the no-op workload (the "
               "workload, the engine's process, or QEMU)", _USERLAND),
        Metric("startup_cold", e, _MS, "lower",
               f"cold start {_NOOP}: Docker, image absent: from load_image of the saved "
               "tarball to wait returning; Wasm in a fresh worker: from reading the .wasm "
               "to _start returning (read + compile + instantiate + run)", _NET_USERLAND),
        Metric("startup_warm", e, _MS, "lower",
               f"warm start {_NOOP}: Docker: restart of a stopped container, start to wait "
               "returning; Wasm: median instantiate + run of an already compiled module in "
               "one process", ("network", "allocator", "userland")),
        Metric("startup_aot", e, _MS, "lower",
               f"Wasm start {_NOOP} from compiled code in a fresh worker: from loading the "
               "precompiled code (or a primed cache) to _start returning"),
        Metric("startup_process", e, _MS, "lower",
               "Wasm: from spawn of a fresh engine process (CLI or worker) running the "
               "no-op module to its exit (wait4)", ("allocator", "code_cache", "module")),
        Metric("startup_create", e, _MS, "lower",
               "Docker: APIClient.create_container, from the call to its return",
               _NET_USERLAND),
        Metric("startup_start", e, _MS, "lower",
               "Docker: APIClient.start of the created container, from the call to its "
               "return", _NET_USERLAND),
        Metric("startup_load", e, _MS, "lower",
               "Docker: APIClient.load_image of the saved image tarball, from the call to "
               "the end of the engine's response", _NET_USERLAND),
        Metric("startup_remove", e, _MS, "lower",
               "Docker: APIClient.remove_container of the exited container, from the call "
               "to its return (teardown, not part of startup)", _NET_USERLAND),
        Metric("pause_resume", e, _MS, "lower",
               "VM serving HTTP, paused with QMP stop: from sending QMP cont to the first "
               "HTTP 200 answered by the guest"),
        Metric("qmp_stop", e, _MS, "lower", "VM: round trip of the QMP 'stop' command"),
        Metric("qmp_cont", e, _MS, "lower",
               "VM: round trip of the QMP 'cont' command on the paused guest"),
        Metric("snapshot_save", e, _MS, "lower",
               "VM serving HTTP: from sending QMP stop to query-migrate reporting completed "
               "for a migration to a file"),
        Metric("snapshot_size", e, _B, "lower",
               "VM: bytes of the saved device and RAM state file"),
        Metric("snapshot_load", e, _MS, "lower",
               "VM: from spawning a new QEMU with -incoming from the state file to QMP "
               "query-status reporting the state loaded"),
        Metric("snapshot_restore", e, _MS, "lower",
               "VM: from spawning a new QEMU with -incoming from the state file to the "
               "first HTTP 200 of the restored guest"),
    ]


def _memory() -> list[Metric]:
    e = "memory"
    held = "of one instance of the mem workload"
    return [
        Metric("rss", e, _MIB, "lower",
               f"VmRSS {held}: of the workload process, the engine's process or QEMU",
               ("state", "guest_memory_mib", "userland")),
        Metric("pss", e, _MIB, "lower",
               f"PSS (smaps_rollup) {held}: of the workload process, the engine's process "
               "or QEMU", ("state", "guest_memory_mib", "userland")),
        Metric("guest_used", e, _MIB, "lower",
               f"VM: MemTotal - MemAvailable of the guest's own /proc/meminfo {held}, read "
               "inside the guest just after the workload's ready line: the guest kernel's "
               "accounting, not the host's (its processes, tmpfs and initramfs files, its "
               "unreclaimable kernel memory and reserves; page cache and reclaimable slab "
               "count as available, so they are mostly not in it)",
               ("state", "guest_memory_mib", "userland")),
        Metric("peak_rss", e, _MIB, "lower",
               f"VmHWM (peak RSS) of the Wasm engine's process {held}; a user's program run "
               "to completion: the peak RSS (wait4 ru_maxrss) of the host process that ran "
               "it (the program, the engine's process or QEMU)", _STATE),
        Metric("rss_per_instance", e, _MIB, "lower",
               "Wasm: least-squares slope of the engine process's VmRSS over the number of "
               "live instances in it", _STATE),
        Metric("pss_per_instance", e, _MIB, "lower",
               "Wasm, one instance per process (CLI, Node): least-squares slope of the "
               "summed PSS of concurrent engine processes over their number", _STATE),
        Metric("cgroup_usage", e, _MIB, "lower",
               "Docker: memory.current (v2) or memory.usage_in_bytes (v1) of the "
               "container's cgroup, page cache and kernel memory included", _STATE_USERLAND),
        Metric("cgroup_anon", e, _MIB, "lower",
               "Docker: anonymous memory (memory.stat anon / rss) of the container's cgroup",
               _STATE_USERLAND),
        Metric("cgroup_file", e, _MIB, "lower",
               "Docker: page cache (memory.stat file / cache) charged to the container's "
               "cgroup", _STATE_USERLAND),
        Metric("cgroup_peak", e, _MIB, "lower",
               "Docker: peak memory of the container's cgroup since it started; a user's "
               "program run to completion: the peak (memory.max_usage_in_bytes or "
               "memory.peak) of a parent cgroup that held only its container, read after it "
               "exited", _STATE_USERLAND),
        Metric("shim_peak", e, _MIB, "lower",
               "Docker, a user's program run to completion: VmHWM of the container's "
               "containerd shim (outside its cgroup), read after the container exited"),
        Metric("guest_peak_rss", e, _MIB, "lower",
               "VM, a user's program run to completion: its peak RSS inside the guest "
               "(busybox time %M, the guest kernel's wait4 ru_maxrss)"),
        Metric("wasm_memory", e, _MIB, "lower",
               "Wasm, a user's program run to completion: size of the instance's exported "
               "linear memory after _start returned (64 KiB pages; it never shrinks, so it "
               "is its peak): the program's own heap and data, without the runtime"),
        Metric("shim_rss", e, _MIB, "lower",
               "Docker: VmRSS of the container's containerd shim (outside its cgroup)",
               _STATE_USERLAND),
        Metric("shim_pss", e, _MIB, "lower",
               "Docker: PSS of the container's containerd shim", _STATE_USERLAND),
        Metric("total", e, _MIB, "lower",
               "Docker: per-container footprint, cgroup_usage + shim_rss (the shared "
               "daemons are not included)", _STATE_USERLAND),
        Metric("dockerd_rss", e, _MIB, "lower",
               "Docker: VmRSS of dockerd (shared by all containers)", _STATE_USERLAND),
        Metric("containerd_rss", e, _MIB, "lower",
               "Docker: VmRSS of containerd (shared by all containers)", _STATE_USERLAND),
        # the running service (http workload): one counter family for every platform
        Metric("instance_rss", e, _MIB, "lower",
               f"{_ADDS}: the summed VmRSS of its host processes (the server process; the "
               "container's init, its containerd shim and docker-proxy; the engine's "
               "process; QEMU). loaded: the summed VmHWM after the wrk load",
               ("state", "guest_memory_mib")),
        Metric("instance_pss", e, _MIB, "lower",
               f"{_ADDS}: the summed PSS (smaps_rollup) of its host processes, shared pages "
               "split among their users. loaded: the largest sum sampled every 0.25 s "
               "during the wrk load", ("state", "guest_memory_mib")),
        Metric("instance_cgroup", e, _MIB, "lower",
               f"{_ADDS}, by the platform's own accounting: Docker, the usage of the "
               "container's cgroup (memory.current or memory.usage_in_bytes, page cache "
               "included). loaded: the largest usage sampled during the wrk load", _STATE),
        Metric("instance_footprint", e, _MIB, "lower",
               f"{_ADDS}: Docker, instance_cgroup plus the VmRSS of the instance's host "
               "processes outside the cgroup (containerd shim, docker-proxy); the shared "
               "daemons are not included. loaded: taken at the sample of largest cgroup "
               "usage", _STATE),
    ]


_SLOPE = ("one repetition's least-squares slope (MiB per instance) of")
_OVER = (" over the number of idle instances started one after another (readings at "
         "checkpoints, from 0 instances); the repetition is the sample, the readings "
         "within it are not; no value (reason: an upper bound) when the fit's 95% CI "
         "includes 0, and never a negative value")


def _others() -> list[Metric]:
    size = "bytes on disk of"
    io = ("throughput of a file in the instance's work directory, 1 MiB (sequential) or "
          "4 KiB (random) blocks, buffered, writes followed by fsync; timed inside the "
          "workload")
    reads = ("; one run reads the file twice: from the page cache right after writing it "
             "(cache=warm), then after closing it and dropping its pages with "
             "posix_fadvise(POSIX_FADV_DONTNEED) (cache=cold: from the disk; WASI passes the "
             "advice to the host kernel, a VM guest drops its own cache and QEMU opens the "
             "disk image with O_DIRECT)")
    wrk = "under wrk on a loopback port"
    probe = "1 if the host-side probe collected it, 0 if it ran and saw nothing"
    return [
        Metric("artifact_size", "disk", _B, "lower",
               f"{size} what one workload needs to run on the variant (executable, module, "
               "image, or kernel + initramfs or root disk)", _USERLAND, exact=True),
        Metric("compiled_size", "disk", _B, "lower",
               f"{size} the serialized compiled module (wasmtime Module.serialize)",
               exact=True),
        Metric("engine_size", "disk", _B, "lower",
               f"{size} the Wasm engine (CLI executable or installed package)", exact=True),
        Metric("image_content_size", "disk", _B, "lower",
               f"{size} the files put into the Docker image", _USERLAND, exact=True),
        Metric("image_archive_size", "disk", _B, "lower",
               f"{size} the Docker image saved as a tarball (docker save)", _USERLAND,
               exact=True),
        Metric("kernel_size", "disk", _B, "lower",
               f"{size} the kernel image the VM boots", _USERLAND, exact=True),
        Metric("initramfs_size", "disk", _B, "lower",
               f"{size} one workload's gzip cpio initramfs (userland=debian: the one that "
               "mounts the root disk)", _USERLAND, exact=True),
        Metric("disk_image_size", "disk", _B, "",
               "apparent size of a raw ext4 image attached to the VM: the empty work disk "
               "for I/O (userland=debian: the root disk)", _USERLAND, exact=True),
        Metric("disk_image_allocated", "disk", _B, "lower",
               "blocks allocated (st_blocks) by the sparse raw ext4 image after mke2fs (the "
               "empty work disk; userland=debian: the root disk)", _USERLAND, exact=True),
        Metric("wall_time", "cpu", _MS, "lower",
               "run time of one cpu kernel seen from the host: the platform's whole run "
               "interval (launch to exit)", ("kernel",)),
        Metric("compute_time", "cpu", _MS, "lower",
               "one cpu kernel's own work, timed inside the workload with CLOCK_MONOTONIC "
               "(excludes start-up and exit)", ("kernel",)),
        *(Metric(name, "io", "MB/s", "higher",
                 f"{label} {io}" + ("" if name.endswith("write") else reads),
                 ("fs",) if name.endswith("write") else ("cache", "fs"))
          for name, label in (("seq_write", "sequential write"),
                              ("seq_read", "sequential read"),
                              ("rand_read", "random read"), ("rand_write", "random write"))),
        Metric("case_time", "speedtest1", _MS, "lower",
               "one speedtest1 test case, timed by speedtest1 itself (its printed seconds, "
               "1 ms resolution), the database in the instance's work directory",
               ("case", "fs")),
        Metric("total_time", "speedtest1", _MS, "lower",
               "speedtest1's TOTAL: the sum of its test cases as it timed them",
               ("fs",)),
        Metric("wall_time", "speedtest1", _MS, "lower",
               "one speedtest1 run seen from the host: the platform's whole run interval "
               "(launch to exit)", ("fs",)),
        Metric("requests_per_s", "http", "req/s", "higher",
               f"wrk's Requests/sec of the http workload {wrk}", _LOAD),
        Metric("latency_p50", "http", _MS, "lower", f"wrk's 50th percentile latency {wrk}", _LOAD),
        Metric("latency_p99", "http", _MS, "lower", f"wrk's 99th percentile latency {wrk}", _LOAD),
        Metric("errors", "http", "count", "lower",
               f"socket errors + non-2xx/3xx responses {wrk}", _LOAD),
        Metric("cpu_percent_load", "http", "% of one core", "",
               "on-CPU time of the instance's host processes / wall time of the wrk run "
               "(more CPU may buy more throughput: neither direction is better)", _LOAD),
        Metric("cpu_percent_idle", "cpu_usage", "% of one core", "lower",
               "on-CPU time of an idle instance's host processes over a fixed window "
               "starting 1 s after it was ready (schedstat)"),
        Metric("memory_per_instance", "density", _MIB, "lower",
               f"{_SLOPE} the host's MemAvailable drop{_OVER}"),
        Metric("pss_per_instance", "density", _MIB, "lower",
               f"{_SLOPE} the summed PSS of the instances' host processes{_OVER} (packing "
               "one_process: the PSS of one engine process over the number of idle "
               "instances it holds)", ("packing",)),
        Metric("rss_per_instance", "density", _MIB, "lower",
               f"{_SLOPE} the summed VmRSS of the instances' host processes{_OVER}"),
        Metric("cgroup_per_instance", "density", _MIB, "lower",
               f"{_SLOPE} the summed usage of the instances' own cgroups (Docker: the "
               f"containers' cgroups){_OVER}"),
        Metric("memory_per_instance_bound", "density", _MIB, "lower",
               "when memory_per_instance is not distinguishable from zero (the 95% CI of "
               "its fit includes 0): the upper end of that CI, an upper bound of the memory "
               "per instance at the number of instances started (tag instances)"),
        Metric("instances_per_8gib", "density", "instances", "higher",
               "8192 MiB divided by memory_per_instance (only when that slope is above "
               "zero with 95% confidence)"),
        Metric("victim_alone", "isolation", _MS, "lower",
               "median compute time of 3 runs of the cpu victim with no attacker (timed "
               "inside the workload)"),
        Metric("slowdown", "isolation", "x", "lower",
               "victim compute time with the co-located attacker(s) running, divided by "
               "victim_alone", ("attack", "limits")),
        *(Metric(name, "observability", "collected (1/0)", "higher", f"{what}: {probe}",
                 exact=True)
          for name, what in (
              ("probe_logs", "the workload's stdout line (VB-RESULT) reached the harness"),
              ("probe_app_trace", "the workload's own timing (elapsed_ns) reached the "
                                  "harness"),
              ("probe_resource_metrics", "memory counters of a running instance read from "
                                         "the host"),
              ("probe_syscall_trace", "strace from the host saw the workload's fsync on its "
                                      "own file"),
              ("probe_network_trace", "a traced connection attributed to the workload"))),
    ]


CATALOG: dict[tuple[str, str], Metric] = {
    (m.experiment, m.name): m for m in _startup() + _memory() + _others()}

#: The rows written for an experiment when nothing was measured: (metric, conditions).
PRIMARY: dict[str, tuple[tuple[str, Mapping[str, str]], ...]] = {
    "startup": (("startup", {}), ("peak_rss", {})),
    "memory": (("rss", {"state": "idle"}), ("rss", {"state": "loaded"}),
               ("instance_rss", {"state": "idle"}), ("instance_rss", {"state": "loaded"})),
    "disk": (("artifact_size", {}),),
    "cpu": tuple((m, {"kernel": k}) for k in VALUES["kernel"]
                 for m in ("wall_time", "compute_time")),
    "io": (("seq_write", {}), ("seq_read", {"cache": "warm"}), ("rand_read", {"cache": "warm"}),
           ("rand_write", {}), ("seq_read", {"cache": "cold"}), ("rand_read", {"cache": "cold"})),
    "http": (("requests_per_s", {}), ("latency_p50", {}), ("latency_p99", {})),
    "speedtest1": (("total_time", {}), ("wall_time", {})),
    "cpu_usage": (("cpu_percent_idle", {}),),
    "density": (("memory_per_instance", {}), ("pss_per_instance", {}),
                ("instances_per_8gib", {})),
    "isolation": (("victim_alone", {}),) + tuple(
        ("slowdown", {"attack": a, "limits": lim}) for a in VALUES["attack"]
        for lim in VALUES["limits"]),
    "observability": tuple((m, {}) for m in ("probe_logs", "probe_app_trace",
                                             "probe_resource_metrics", "probe_syscall_trace")),
}


def experiments() -> list[str]:
    """The experiments that declare metrics, in declaration order."""
    return list(dict.fromkeys(e for e, _ in CATALOG))


def metrics(experiment: str | None = None) -> list[Metric]:
    """Every declared metric, or those of ``experiment`` (ValueError if it has none)."""
    if experiment is None:
        return list(CATALOG.values())
    found = [m for (e, _), m in CATALOG.items() if e == experiment]
    if not found:
        raise ValueError(f"no metrics are declared for experiment {experiment!r}; "
                         f"experiments: {', '.join(experiments())}")
    return found


def get(experiment: str, name: str) -> Metric:
    """The metric ``name`` of ``experiment``; the error lists that experiment's metrics."""
    found = CATALOG.get((experiment, name))
    if found is None:
        valid = ", ".join(m.name for m in metrics(experiment))
        raise ValueError(f"metric {name!r} is not declared for experiment {experiment!r} "
                         f"in the catalog (virtbench.catalog); declared: {valid}")
    return found


def validate(experiment: str, name: str, unit: str, conditions: Mapping[str, str]) -> Metric:
    """Check one row against the catalog: declared metric, same unit, declared conditions."""
    m = get(experiment, name)
    if unit != m.unit:
        raise ValueError(f"{experiment}/{name} is in {m.unit!r} in the catalog, not {unit!r}")
    for key, value in conditions.items():
        if key not in m.conditions:
            allowed = ", ".join(m.conditions) or "none"
            raise ValueError(f"condition {key!r} is not declared for {experiment}/{name}; "
                             f"its condition keys: {allowed}")
        valid = VALUES.get(key)
        check = _VALUE_CHECKS.get(key, bool)
        if not isinstance(value, str) or (valid and value not in valid) or not check(value):
            expected = " | ".join(valid) if valid else CONDITIONS[key]
            raise ValueError(f"condition {key}={value!r} of {experiment}/{name} is not valid; "
                             f"expected a string: {expected}")
    return m


def primary(experiment: str) -> list[tuple[Metric, dict[str, str]]]:
    """The (metric, conditions) rows written when ``experiment`` measured nothing."""
    out = []
    for name, conditions in PRIMARY.get(experiment, ()):
        m = get(experiment, name)
        validate(experiment, name, m.unit, conditions)
        out.append((m, dict(conditions)))
    return out


# -- migration of datasets written before the catalog (metric-name suffixes) -------------

_STARTUP_RENAMES = {
    "startup_warm_pooling": ("startup_warm", {"allocator": "pooling"}),
    "startup_process_pooling": ("startup_process", {"allocator": "pooling"}),
    "startup_process_cached": ("startup_process", {"code_cache": "on"}),
    "startup_process_aot": ("startup_process", {"module": "precompiled"}),
}
_MEMORY_NAME = re.compile(r"(?P<base>.+?)(?:_guest(?P<guest>\d+))?_(?P<state>idle|loaded)")
_SLOWDOWN_NAME = re.compile(r"slowdown_(?P<attack>[a-z]+?)(?P<limited>_limited)?")


#: What an io row's ``where`` tag says when the work directory was the runtime's own
#: in-memory file system (wasmer-sdk sandboxes), in datasets written before the fs condition.
MEMORY_FS_WHERE = "in-memory file system"


def implied_conditions(experiment: str, tags: Mapping[str, str]) -> dict[str, str]:
    """Conditions that an older row's tags state but its conditions column does not: io
    rows measured on an in-memory file system (``where`` tag) get fs=memory."""
    if experiment == "io" and MEMORY_FS_WHERE in str(tags.get("where", "")):
        return {"fs": "memory"}
    return {}


def migrate_metric(experiment: str, family: str, metric: str,
                   tags: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The catalog name and conditions of a metric as older datasets named it."""
    conditions: dict[str, str] = {}
    if experiment == "startup":
        if metric in _STARTUP_RENAMES:
            metric, extra = _STARTUP_RENAMES[metric]
            conditions.update(extra)
        elif metric.endswith("_none") and (experiment, metric[:-5]) in CATALOG:
            metric, conditions["network"] = metric[:-5], "none"
        declared = CATALOG.get((experiment, metric))
        if (family == "docker" and "network" in tags and "network" not in conditions
                and declared is not None and "network" in declared.conditions):
            conditions["network"] = tags["network"]
    elif experiment == "memory" and (found := _MEMORY_NAME.fullmatch(metric)):
        metric, conditions["state"] = found["base"], found["state"]
        guest = found["guest"] or (tags.get("guest_memory_mib") if family == "vm" else None)
        if guest and metric in ("rss", "pss"):
            conditions["guest_memory_mib"] = guest
    elif experiment == "isolation" and (found := _SLOWDOWN_NAME.fullmatch(metric)):
        metric = "slowdown"
        conditions = {"attack": found["attack"], "limits": "on" if found["limited"] else "off"}
    conditions.update(implied_conditions(experiment, tags))
    return metric, conditions


def migrate_row(row: MutableMapping[str, str]) -> bool:
    """Give one older row (a dict of its fields) its catalog metric and conditions, in place.

    A row whose ``conditions`` are already set is left as it is. True if the metric changed.
    """
    if row.get("conditions"):
        return False
    tags = row.get("tags")
    metric, conditions = migrate_metric(row["experiment"], row["family"], row["metric"],
                                        json.loads(tags) if isinstance(tags, str) and tags
                                        else {})
    changed = metric != row["metric"]
    row["metric"] = metric
    row["conditions"] = json.dumps(conditions, sort_keys=True) if conditions else ""
    return changed


def migrate_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of an older results frame with catalog metric names and a conditions column."""
    from virtbench.results import COLUMNS

    records = df.assign(conditions=df["conditions"].fillna("") if "conditions" in df
                        else "").to_dict("records")
    for record in records:
        migrate_row(record)
    out = pd.DataFrame(records, index=df.index)
    return out[[c for c in COLUMNS if c in out] + [c for c in out if c not in COLUMNS]]


def migrate_file(path: Path) -> int:
    """Rewrite an older ``results.csv`` in place with catalog names and conditions.

    Every other field is kept as it was. Returns the number of rows whose metric changed.
    """
    from virtbench.results import COLUMNS

    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    changed = sum(migrate_row(row) for row in rows)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)
    return changed
