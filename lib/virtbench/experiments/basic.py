"""The per-platform experiments: startup, memory, disk, cpu and io.

Each one measures one cell through the platform's primitives; what is timed is said in
every measurement's description.
"""

from __future__ import annotations

from dataclasses import replace

from virtbench.experiments.core import Experiment, Option, Params, register
from virtbench.platforms.base import WORKDIR, NotSupported, Platform, Workload
from virtbench.results import Measurement
from virtbench.workloads import as_number


def measure_startup(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    return plat.startup(wl)


def measure_memory(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Idle and loaded memory of one instance; the loaded size is a parameter."""
    loaded = int(params.options.get("mem_mib", 16 if params.quick else 64))
    out = []
    for mib, state in ((0, "idle"), (loaded, "loaded")):
        for m in plat.memory(mib):
            out.append(replace(m, tags={**m.tags, "mem_mib": str(mib)},
                               conditions={**m.conditions, "state": state}))
    return out


def measure_disk(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    return plat.disk()


def cpu_iterations(params: Params) -> int:
    """Millions of iterations of the ``cpu`` kernel: small in quick mode."""
    return int(params.options.get("cpu_millions", 20 if params.quick else 200))


def measure_cpu(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Run time of the ``cpu`` kernel: inside the workload and from the host, plus checksum."""
    if plat.cpu_measured_by and wl.builtin:
        raise NotSupported(f"same machine code as {plat.cpu_measured_by}; its cpu run time is "
                           "measured there")
    n = cpu_iterations(params)
    out = plat.run(wl, [str(n)] if wl.builtin else [])
    ms = [Measurement("wall_time", out.wall_ns / 1e6, "ms", out.interval)]
    if wl.builtin:
        tags = {"checksum": out.result["checksum"], "iterations_millions": str(n)}
        ms = [Measurement(m.metric, m.value, m.unit, m.description, tags=tags) for m in ms]
        ms.append(Measurement("compute_time", as_number(out.result["elapsed_ns"]) / 1e6, "ms",
                              "the kernel's own loop, timed inside the workload with "
                              "CLOCK_MONOTONIC (excludes start-up and exit)", tags=tags))
    return ms


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
    size = int(params.options.get("io_mib", 16 if params.quick else 64))
    out = plat.run(wl, [WORKDIR, str(size)])
    if not out.result:
        raise NotSupported("the workload printed no VB-RESULT line")
    return io_rows(plat, out.result, size)


register(Experiment(
    "startup", "time from launch to exit of the no-op workload, and peak memory",
    measure_startup,
    workloads=("noop",), reps=8, quick_reps=5, warmup=1))
register(Experiment(
    "memory", "memory of one instance, idle and holding a loaded buffer",
    measure_memory,
    workloads=("mem",), reps=3, quick_reps=2, warmup=0,
    options={"mem_mib": Option(int, 1, 65536, "MiB the loaded instance holds")}))
register(Experiment(
    "disk", "bytes on disk needed to run the workloads",
    measure_disk, workloads=("noop",), once=True))
register(Experiment(
    "cpu", "run time of a deterministic compute kernel (checksum checked against native)",
    measure_cpu,
    workloads=("cpu",), reps=5, quick_reps=3, warmup=1,
    options={"cpu_millions": Option(int, 1, 100_000, "millions of kernel iterations")}))
register(Experiment(
    "io", "sequential and random file throughput through each platform's file system path; "
    "reads from the page cache (cache=warm) and after dropping it (cache=cold)",
    measure_io,
    workloads=("fileio",), reps=3, quick_reps=2, warmup=1,
    options={"io_mib": Option(int, 1, 65536, "MiB of the test file")}))
