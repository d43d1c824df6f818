"""The per-platform experiments: startup, memory, disk, cpu and io.

Each one measures one cell through the platform's primitives; what is timed is said in
every measurement's description.
"""

from __future__ import annotations

from dataclasses import replace

from virtbench.experiments.core import Experiment, Option, Params, register
from virtbench.experiments.cross import measure_instance_memory
from virtbench.platforms.base import WORKDIR, NotSupported, Platform, Workload
from virtbench.results import Measurement
from virtbench.workloads import as_number


def measure_startup(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    return plat.startup(wl)


def measure_memory(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Idle and loaded memory of one instance.

    ``mem``: the instance holding nothing, then a buffer of option ``mem_mib``. ``http``: the
    memory a running server adds to the host, idle and at its peak under wrk load.
    """
    if wl.builtin and wl.name == "http":
        return measure_instance_memory(plat, wl, params)
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


def measure_io(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Sequential and random file throughput of ``fileio`` in the instance's work directory."""
    size = int(params.options.get("io_mib", 16 if params.quick else 64))
    out = plat.run(wl, [WORKDIR, str(size)])
    if not out.result:
        raise NotSupported("the workload printed no VB-RESULT line")
    where = out.result.get("where", "")
    return [
        Measurement(metric, as_number(out.result[key]), "MB/s",
                    f"{metric.replace('_', ' ')} of a {size} MiB file in 1 MiB (sequential) or "
                    "4 KiB (random) blocks, buffered, writes followed by fsync; timed inside "
                    "the workload", tags={"size_mib": str(size), **({"where": where} if where
                                                                     else {})})
        for metric, key in IO_METRICS
    ]


register(Experiment(
    "startup", "time from launch to exit of the no-op workload, and peak memory",
    measure_startup,
    workloads=("noop",), reps=8, quick_reps=5, warmup=1))
register(Experiment(
    "memory", "memory of one instance: the mem workload idle and holding a buffer; the http "
    "server idle and at its peak under wrk load",
    measure_memory,
    workloads=("mem", "http"), reps=3, quick_reps=2, warmup=0,
    options={"mem_mib": Option(int, 1, 65536, "MiB the loaded mem instance holds"),
             "http_duration_s": Option(float, 0.1, 3600, "seconds of wrk load (http)"),
             "http_threads": Option(int, 1, 1024, "wrk threads (http)"),
             "http_connections": Option(int, 1, 100_000, "open connections (http)")}))
register(Experiment(
    "disk", "bytes on disk needed to run the workloads",
    measure_disk, workloads=("noop",), once=True))
register(Experiment(
    "cpu", "run time of a deterministic compute kernel (checksum checked against native)",
    measure_cpu,
    workloads=("cpu",), reps=5, quick_reps=3, warmup=1,
    options={"cpu_millions": Option(int, 1, 100_000, "millions of kernel iterations")}))
register(Experiment(
    "io", "sequential and random file throughput through each platform's file system path",
    measure_io,
    workloads=("fileio",), reps=3, quick_reps=2, warmup=1,
    options={"io_mib": Option(int, 1, 65536, "MiB of the test file")}))
