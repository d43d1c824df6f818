"""io: sequential and random file throughput through each platform's file system path.

The ``fileio`` workload writes a file in the instance's work directory and reads it back,
from the page cache (cache=warm) and after dropping the file's pages (cache=cold), all in
one run; a runtime's own in-memory file system is marked fs=memory (not comparable).
"""

from __future__ import annotations

from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Option, Params
from virtbench.metric import Metric
from virtbench.platforms.base import WORKDIR, NotSupported, Platform, RunOutcome, Workload
from virtbench.store.schema import Measurement
from virtbench.workloads import as_number

NAME = "io"
_IO = ("throughput of a file in the instance's work directory, 1 MiB (sequential) or "
       "4 KiB (random) blocks, buffered, writes followed by fsync; timed inside the "
       "workload")
_READS = ("; one run reads the file twice: from the page cache right after writing it "
          "(cache=warm), then after closing it and dropping its pages with "
          "posix_fadvise(POSIX_FADV_DONTNEED) (cache=cold: from the disk; WASI passes the "
          "advice to the host kernel, a VM guest drops its own cache and QEMU opens the "
          "disk image with O_DIRECT)")

METRICS = (
    *(Metric(name, NAME, "MB/s", "higher",
             f"{label} {_IO}" + ("" if name.endswith("write") else _READS),
             ("fs",) if name.endswith("write") else ("cache", "fs"))
      for name, label in (("seq_write", "sequential write"),
                          ("seq_read", "sequential read"),
                          ("rand_read", "random read"), ("rand_write", "random write"))),
)


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


def io_rows(plat: Platform, out: RunOutcome, size: int) -> list[Measurement]:
    """The io rows of one ``fileio`` run: writes, warm reads, and cold reads or their reason;
    where its work directory lived and the disk's cache mode, as the platform says, in the
    tags."""
    result, disk_cache = out.result, out.disk_cache
    tags = {"size_mib": str(size), **({"where": out.where} if out.where else {}),
            **({"disk_cache": disk_cache} if disk_cache else {})}
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
    return io_rows(plat, out, size)


EXPERIMENT = Experiment(
    NAME, "sequential and random file throughput through each platform's file system path; "
    "reads from the page cache (cache=warm) and after dropping it (cache=cold)",
    measure_io,
    workloads=("fileio",), reps=10, quick_reps=1, warmup=1, quick_warmup=0,
    options={"io_mib": Option(int, 1, 65536, "MiB of the test file")},
    quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS,
    primary=(("seq_write", {}), ("seq_read", {"cache": "warm"}), ("rand_read", {"cache": "warm"}),
             ("rand_write", {}), ("seq_read", {"cache": "cold"}), ("rand_read", {"cache": "cold"})))
