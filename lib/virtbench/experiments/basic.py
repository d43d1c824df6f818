"""The per-platform experiments: startup, memory, disk, cpu and io.

Each one measures one cell through the platform's primitives; what is timed is said in
every measurement's description.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass, replace

from virtbench import catalog, platforms
from virtbench.experiments.core import QUICK_SKIPS_TCG_PC, Experiment, Option, Params, register
from virtbench.experiments.cross import measure_instance_memory
from virtbench.experiments.memory import measure_mem
from virtbench.experiments.userland import FULL_OS_OPTION, on_userlands
from virtbench.platforms.base import (
    ARTIFACT_KINDS,
    TIMING_KINDS,
    WORKDIR,
    NotSupported,
    Platform,
    RunOutcome,
    Timing,
    Workload,
)
from virtbench.results import Measurement
from virtbench.workloads import as_number

QUICK_SKIPS_USERLANDS = ("not measured with --quick (startup and memory of the minimal "
                         "userland only; sizes on disk cover every userland)")


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


def timing_rows(t: Timing) -> list[Measurement]:
    """The rows of one timed interval (ms), with the peak RSS of the process that ran it and
    the size of the state it saved, where it has them."""
    metric = STARTUP_METRICS[t.kind]
    if t.ns is None:
        return [Measurement.missing(metric, "ms", t.reason, tags=dict(t.tags),
                                    conditions=dict(t.conditions))]
    out = [Measurement(metric, t.ns / 1e6, "ms", t.interval, tags=dict(t.tags),
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
        plat, "startup", [wl], lambda p: startup_rows(p, wl),
        skip=QUICK_SKIPS_USERLANDS if params.quick else "", options=params.options)


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

    return both_states(plat) + on_userlands(plat, "memory", [Workload("mem")], both_states,
                                            skip=QUICK_SKIPS_USERLANDS if params.quick else "",
                                            options=params.options)


RAN = "; the user's program run to completion"


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
        if peak.value is None:
            rows.append(Measurement.missing(peak.metric, "MiB", f"not supported: {peak.what}"))
        else:
            rows.append(Measurement(peak.metric, peak.value / (1 << 20), "MiB",
                                    f"{peak.what}{RAN}"))
    return rows


#: The metric of each kind of :class:`~virtbench.platforms.base.Artifact`.
DISK_METRICS = {"workload": "artifact_size", "compiled": "compiled_size",
                "engine": "engine_size", "image_content": "image_content_size",
                "image_archive": "image_archive_size", "kernel": "kernel_size",
                "initramfs": "initramfs_size", "disk_image": "disk_image_size",
                "disk_image_allocated": "disk_image_allocated"}
assert set(DISK_METRICS) == set(ARTIFACT_KINDS)


def disk_rows(plat: Platform, artifacts: Sequence | None = None) -> list[Measurement]:
    """One row per artifact (default: those the variant lists): its bytes, under its kind's
    metric."""
    return [Measurement(DISK_METRICS[a.kind], a.bytes, "B", a.what, workload=a.workload,
                        tags=dict(a.tags))
            for a in (plat.artifacts() if artifacts is None else artifacts)]


def measure_disk(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Bytes on disk of the variant's artifacts, minimal and on its other userlands; for a
    user's workload, its own image (Docker)."""
    if not wl.builtin:
        return disk_rows(plat, plat.user_artifacts(wl))
    return disk_rows(plat) + on_userlands(plat, "disk", [wl], disk_rows, quick=params.quick,
                                          options=params.options)


@dataclass(frozen=True)
class Kernel:
    """One kernel of the ``cpu`` workload: what it stresses and how its size is set."""

    name: str
    stresses: str
    option: str           # the experiment option that sets SIZE
    full: int             # SIZE by default (about 30-100 ms natively on the development host)
    quick: int            # SIZE with --quick (a few times less work)
    high: int             # the option's largest valid value
    unit: str             # what SIZE counts


#: The kernels in the order they run in each cell (see workloads/src/cpu.c).
KERNELS = (
    Kernel("hash", "integer ALU (latency-bound hash chain + sieve)", "cpu_millions", 20, 5,
           100_000, "millions of hash-chain iterations"),
    Kernel("nbody", "floating point (+ - * / sqrt)", "cpu_nbody_ksteps", 800, 200,
           1_000_000, "thousands of 5-body steps"),
    Kernel("chase", "memory latency (dependent loads over a large buffer)", "cpu_chase_ksteps",
           100, 25, 1_000_000, "thousands of dependent loads"),
    Kernel("sort", "branches (quicksort of pseudo-random values)", "cpu_sort_rounds", 10, 3,
           100_000, "rounds of sorting 65536 values"),
    Kernel("fib", "calls (naive recursive fib)", "cpu_fib_n", 36, 33, 50,
           "n of fib(n); the work grows ~1.618x per step"),
    Kernel("syscall", "system calls (1-byte pwrite to a file in the work directory)",
           "cpu_syscall_kcalls", 80, 20, 1_000_000, "thousands of pwrite calls"),
)
assert tuple(k.name for k in KERNELS) == catalog.VALUES["kernel"]
CHASE_MIB = 64
#: Options that make every kernel a few milliseconds natively (tests, smoke runs).
SMOKE_SIZES = {"cpu_millions": 2, "cpu_nbody_ksteps": 20, "cpu_chase_ksteps": 20,
               "cpu_chase_mib": 4, "cpu_sort_rounds": 2, "cpu_fib_n": 22,
               "cpu_syscall_kcalls": 2}


def cpu_iterations(params: Params) -> int:
    """Millions of iterations of the ``hash`` kernel: small in quick mode."""
    return kernel_size(KERNELS[0], params)


def kernel_size(kernel: Kernel, params: Params) -> int:
    """SIZE of ``kernel`` for this run: its option, else the full or quick default."""
    return int(params.options.get(kernel.option, kernel.quick if params.quick else kernel.full))


def kernel_args(kernel: Kernel, params: Params) -> list[str]:
    """The ``cpu`` workload's arguments for one kernel: ``KERNEL SIZE [ARG]``."""
    args = [kernel.name, str(kernel_size(kernel, params))]
    if kernel.name == "chase":
        args.append(str(int(params.options.get("cpu_chase_mib", CHASE_MIB))))
    elif kernel.name == "syscall":
        args.append(WORKDIR)
    return args


_NATIVE_CHECKSUMS: dict[tuple[str, ...], str] = {}
REFERENCE = "native/static"


def native_checksum(args: Sequence[str]) -> str:
    """The checksum the static native build prints for ``args`` (run once per process)."""
    key = tuple(args)
    if key not in _NATIVE_CHECKSUMS:
        with platforms.create(REFERENCE) as ref:
            if not ref.availability.available:
                raise NotSupported(f"no reference checksum: {REFERENCE} is not available "
                                   f"({ref.availability.reason})")
            _NATIVE_CHECKSUMS[key] = ref.run(Workload("cpu"), list(args)).result["checksum"]
    return _NATIVE_CHECKSUMS[key]


def measure_cpu(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Run time of every ``cpu`` kernel, one instance per kernel: inside the workload and from
    the host, each run's checksum checked against the static native build's."""
    if plat.cpu_measured_by and wl.builtin:
        raise NotSupported(f"same machine code as {plat.cpu_measured_by}; its cpu run time is "
                           "measured there")
    if not wl.builtin:  # a user's own program: its run time only
        out = plat.run(wl, [])
        return [Measurement("wall_time", out.wall_ns / 1e6, "ms", out.interval)]
    ms: list[Measurement] = []
    for kernel in KERNELS:
        ms += _measure_kernel(plat, wl, kernel, params)
    return ms


def _measure_kernel(plat: Platform, wl: Workload, kernel: Kernel,
                    params: Params) -> list[Measurement]:
    cond = {"kernel": kernel.name}
    args = kernel_args(kernel, params)
    size = args[1]
    try:
        out = plat.run(wl, args, timeout=CPU_TIMEOUT_S)
        got = out.result.get("checksum", "")
        if out.result.get("kernel", "hash") != kernel.name or not got:
            raise RuntimeError(f"the workload printed no {kernel.name} result (an older cpu "
                               "build?)")
        if plat.variant == REFERENCE:
            _NATIVE_CHECKSUMS.setdefault(tuple(args), got)
        want = native_checksum(args)
        if got != want:
            raise RuntimeError(f"checksum {got} of kernel {kernel.name} (size {size}) differs "
                               f"from {REFERENCE}'s {want}: the run did not do the same work")
    except Exception as exc:
        detail = traceback.format_exception_only(exc)[-1].strip()
        why = f"not supported: {exc}" if isinstance(exc, NotSupported) else f"failed: {detail}"
        return [Measurement.missing(m, "ms", why, conditions=cond)
                for m in ("wall_time", "compute_time")]
    tags = {"checksum": got, "size": size}
    if kernel.name == "hash":
        tags["iterations_millions"] = size
    if kernel.name == "chase":
        tags["buffer_mib"] = args[2]
    what = f"kernel {kernel.name} ({kernel.stresses}), size {size} ({kernel.unit})"
    return [
        Measurement("wall_time", out.wall_ns / 1e6, "ms", f"{out.interval}; {what}",
                    tags=tags, conditions=cond),
        Measurement("compute_time", as_number(out.result["elapsed_ns"]) / 1e6, "ms",
                    f"the kernel's own work, timed inside the workload with CLOCK_MONOTONIC "
                    f"(excludes start-up and exit); {what}", tags=tags, conditions=cond),
    ]


CPU_TIMEOUT_S = 600.0


IO_METRICS = (("seq_write", "seq_write_mbps"), ("seq_read", "seq_read_mbps"),
              ("rand_read", "rand_read_mbps"), ("rand_write", "rand_write_mbps"))
#: The reads measured a second time after the file's pages were dropped from the page cache.
IO_COLD = (("seq_read", "cold_seq_read_mbps"), ("rand_read", "cold_rand_read_mbps"))
#: Most of a file the page cache may still hold after the drop for its reads to count as cold.
MAX_RESIDENT_PCT = 5.0
MEMORY_FS = "in-memory filesystem, not a host directory"
IO_BLOCKS = ("{size} MiB file in 1 MiB (sequential) or 4 KiB (random) blocks, buffered, timed "
             "inside the workload")
IO_WARM = ("page cache (cache=warm): read right after the same process wrote it and fsync'ed "
           "it, so the data comes from the page cache")
IO_COLD_HOW = ("disk (cache=cold): the workload closed the file, reopened it read-only and "
               "dropped its pages with posix_fadvise(POSIX_FADV_DONTNEED) before each of the "
               "two cold read phases; {who}")
IO_DROPPED_BY = {
    "kernel": "the advice goes to the kernel the workload runs on (a container's is the "
              "host's, for overlay and bind-mounted files alike)",
    "wasi": "under WASI it is fd_advise, which the runtime passes to the host kernel's "
            "posix_fadvise on the preopened host file",
    "vm": "the guest kernel drops its own page cache, and QEMU opened the disk image with "
          "cache=none (O_DIRECT), so the host's page cache is not behind the guest's reads",
}


def io_rows(plat: Platform, result: dict[str, str], size: int) -> list[Measurement]:
    """The io rows of one ``fileio`` run: writes, warm reads, and cold reads or their reason."""
    where = result.get("where", "")
    tags = {"size_mib": str(size), **({"where": where} if where else {}),
            **({"disk_cache": result["disk_cache"]} if result.get("disk_cache") else {})}
    memory = plat.file_system == "memory"
    fs = {"fs": "memory"} if memory else {}
    blocks = IO_BLOCKS.format(size=size)
    out = []
    for metric, key in IO_METRICS:
        label = metric.replace("_", " ")
        if metric.endswith("write"):
            what = f"{label} of a {blocks}, followed by fsync"
            conditions = dict(fs)
        else:
            what = f"{label} of a {blocks}; data from the {IO_WARM}"
            conditions = {**fs, "cache": "warm"}
        if memory:
            what += f"; {MEMORY_FS} (the runtime's own, in memory): not comparable"
        out.append(Measurement(metric, as_number(result[key]), "MB/s", what, tags=tags,
                               conditions=conditions))
    cold = {**fs, "cache": "cold"}
    reason = ""
    disk_cache = result.get("disk_cache", "")
    resident = result.get("cold_resident_pct", "na")
    if memory:
        reason = f"{MEMORY_FS}: there is no page cache to drop and no disk to read"
    elif "cold_drop" not in result:
        reason = "the workload printed no cold read rates (an older fileio build)"
    elif result["cold_drop"] != "ok":
        reason = (f"posix_fadvise(POSIX_FADV_DONTNEED) failed with {result['cold_drop']}, so "
                  "the page cache could not be dropped")
    elif disk_cache and disk_cache != "none":
        reason = (f"the VM's disk image is opened with cache={disk_cache} (it lives on tmpfs "
                  "or where O_DIRECT is not supported), so cold guest reads could come from "
                  "the host's page cache")
    elif resident != "na" and as_number(resident) > MAX_RESIDENT_PCT:
        reason = (f"{resident}% of the file was still in the page cache after "
                  "POSIX_FADV_DONTNEED (mincore), so the reads were not cold")
    checked = (f"; mincore saw {resident}% of the file still resident after the drop"
               if resident != "na" else "; residency after the drop cannot be checked "
               "under WASI (no mincore)")
    who = IO_DROPPED_BY["vm" if disk_cache == "none" else "wasi" if resident == "na"
                        else "kernel"]
    for metric, key in IO_COLD:
        if reason:
            out.append(Measurement.missing(metric, "MB/s", reason, tags=tags, conditions=cold))
            continue
        label = metric.replace("_", " ")
        out.append(Measurement(metric, as_number(result[key]), "MB/s",
                               f"{label} of a {blocks}; data from the "
                               f"{IO_COLD_HOW.format(who=who)}{checked}",
                               tags=tags, conditions=cold))
    return out


def measure_io(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """File throughput of ``fileio`` in the instance's work directory: writes, and reads from
    the page cache (cache=warm) and after dropping it (cache=cold), all in one run."""
    size = int(params.options.get("io_mib", 8 if params.quick else 32))
    out = plat.run(wl, [WORKDIR, str(size)])
    if not out.result:
        raise NotSupported("the workload printed no VB-RESULT line")
    return io_rows(plat, out.result, size)


register(Experiment(
    "startup", "time from launch to exit of the no-op workload, and peak memory",
    measure_startup,
    workloads=("noop",), reps=20, quick_reps=6, warmup=1,
    options={"full_os": FULL_OS_OPTION}))
register(Experiment(
    "memory", "memory of one instance: the mem workload idle and holding a buffer; the http "
    "server idle and at its peak under wrk load",
    measure_memory,
    workloads=("mem", "http"), reps=10, quick_reps=1, warmup=0,
    options={"mem_mib": Option(int, 1, 65536, "MiB the loaded mem instance holds"),
             "http_duration_s": Option(int, 1, 3600, "seconds of wrk load (http)"),
             "http_threads": Option(int, 1, 1024, "wrk threads (http)"),
             "http_connections": Option(int, 1, 100_000, "open connections (http)"),
             "full_os": FULL_OS_OPTION}))
register(Experiment(
    "disk", "bytes on disk needed to run the workloads",
    measure_disk, workloads=("noop",), once=True, options={"full_os": FULL_OS_OPTION}))
register(Experiment(
    "cpu", "run time of deterministic compute kernels (integer, floating point, memory, "
    "branches, calls, system calls), each run's checksum checked against native",
    measure_cpu,
    workloads=("cpu",), reps=10, quick_reps=1, warmup=1, quick_warmup=0,
    options={**{k.option: Option(int, 1, k.high, f"{k.name} kernel: {k.unit} (default "
                                 f"{k.full}, quick {k.quick})") for k in KERNELS},
             "cpu_chase_mib": Option(int, 1, 1024, f"chase kernel: MiB of its buffer "
                                     f"(default {CHASE_MIB}; a VM guest has 256 MiB)")},
    quick_skips=QUICK_SKIPS_TCG_PC))
register(Experiment(
    "io", "sequential and random file throughput through each platform's file system path; "
    "reads from the page cache (cache=warm) and after dropping it (cache=cold)",
    measure_io,
    workloads=("fileio",), reps=10, quick_reps=1, warmup=1, quick_warmup=0,
    options={"io_mib": Option(int, 1, 65536, "MiB of the test file")},
    quick_skips=QUICK_SKIPS_TCG_PC))
