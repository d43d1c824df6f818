"""Published claims mapped to measured selections, and the claims-check tables built from them.

Everything that ties a published figure (a row of ``papers/*.csv``) to the suite's own
measurements lives in one data table, :data:`CLAIMS`, so that metric names can be adjusted
in one place while the platforms evolve. Each entry selects published rows (by table,
metric, system, condition) and says which measured rows answer them (:class:`Pick`: metric,
experiment, workload, how to transform), or why nothing here can (``not_measurable``).

:func:`check` turns the table into a claims-check frame: claim, source, claimed value in the
measured unit (with the conversion said), measured median with its 95% CI, and a verdict
from :func:`virtbench.stats.check_claim`. Nothing measured is never guessed: a missing cell
reads "not measured: <reason>", the reason taken from the dataset's rows when present.

:class:`Dataset` is the notebooks' read access to one run: samples, reasons, summaries and
comparisons with a baseline.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from virtbench import published, stats
from virtbench.paths import datasets_dir
from virtbench.results import load_runs

BASELINE = "native/static"
NOT_IN_DATASET = "not in this dataset"
MIB_PER_8GIB = 8 * 1024
DETERMINISTIC_UNITS = ("B",)  # sizes: one sample is exact, there is no sampling error


# --- the mapping table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pick:
    """One way to measure a claim; a claim lists several, the first with data wins.

    ``metric`` may be a sum ``"a+b"`` (summed per repetition). ``transform`` says how the
    samples become the claim's quantity (see :data:`TRANSFORMS`); transforms against a
    baseline use ``baseline_metric`` (default: the same metric) of the baseline variant.
    ``variants`` narrows the variants this pick applies to (patterns, see :func:`matches`).
    ``workload`` None takes every workload (one checked row each).
    """

    metric: str
    transform: str = "value"
    experiment: str | None = None
    workload: str | None = None
    baseline_metric: str | None = None
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClaimMap:
    """Published rows (selected by table, metric, system, condition) and how to check them."""

    key: str
    notebooks: tuple[str, ...]
    source: str
    table: str                           # substring of table_or_figure
    metrics: tuple[str, ...]             # published metric names (exact, case-insensitive)
    systems: tuple[str, ...] = ()        # published systems covered (empty: all)
    condition: str | None = None         # exact published condition (None: any)
    stat: str | None = None              # exact published stat (None: any)
    picks: tuple[Pick, ...] = ()
    variants: tuple[str, ...] = ()       # override of SYSTEMS[system] ("!x" excludes x)
    baseline: tuple[str, ...] = (BASELINE,)  # first present is used
    over: str | None = None              # claim = row / the row of this system (same metric)
    up_to_from: float | None = None      # "up to X" claims: the interval [up_to_from, X]
    not_measurable: str = ""             # why no measurement here can answer it
    comparable: str = ""                 # "" or why the comparison is only context
    note: str = ""


# Published system name -> the variants (patterns) that stand for it here.
SYSTEMS: dict[str, tuple[str, ...]] = {
    "Bare metal": (BASELINE,),
    "Native": (BASELINE,),
    "VM": ("vm",),
    "VM (Ubuntu)": ("vm",),
    "VM (t3.medium)": ("vm",),
    "Docker": ("docker/*",),
    "Docker (containers)": ("docker/*",),
    "Docker (Alpine)": ("docker/*",),
    "Docker NAT": ("docker/*",),
    "Wasm": ("wasm",),
    "Wasm (WasmEdge)": ("wasm",),
    "Wasm AoT-compiled": ("*/aot",),
    "Wasm interpreted": ("*/pulley",),
    "KVM": ("qemu-kvm/*",),
    "KVM-tuned": ("qemu-kvm/*",),
    "KVM-untuned": ("qemu-kvm/*",),
}
# Published systems that no variant of the suite can stand for, and why.
NOT_HERE: dict[str, str] = {
    "Edera": "Edera is not one of the suite's platforms: it runs containers on its own "
             "Xen-based hypervisor, which must boot the host and cannot be started by a "
             "benchmark",
}

_RATING = "a 1-5 star rating with no stated scale or method; no measurement maps to it"
_SETTING = ("a test setting of the seed, not a result; this run's own settings are in its "
            "host.json and row tags")
_COST = ("a price, cost or staffing figure: recomputed line by line and rebuilt from "
         "measured memory per instance in 06_cost")
_TCG = ("not comparable: the VM here is QEMU with TCG (software emulation, no hardware "
        "virtualization on this host); the published figure is for hardware-assisted KVM")
_HTTP_SETUP = ("context only: the seed used 4 cores, 8 GB, 10K connections for 5 minutes "
               "(no tool named); ours is wrk on the same 2-core host, loopback only")
_FELTER_ONLY = "no workload of the suite measures this (the suite has no {what})"

_STARTUP = "startup"
# The first startup metric a variant has: a VM's boot, a container started from a present
# image, a Wasm module's in-process cold (or AOT) start, a whole Wasm CLI process.
STARTUP_PICKS = tuple(Pick(m, experiment=_STARTUP) for m in (
    "boot_full", "startup", "startup_existing", "startup_cold", "startup_aot", "startup_process"))
# A cold start: the image or module not yet loaded (a VM's boot is always cold).
COLD_PICKS = tuple(Pick(m, experiment=_STARTUP) for m in (
    "startup_cold", "boot_full", "startup_aot", "startup_process", "startup"))
# Memory of one whole idle instance: the density slope, else the container cgroup + shim
# total, else the main process's RSS (QEMU, the runtime, the workload).
_IDLE_TOTAL = (Pick("memory_per_instance", experiment="density"),
               Pick("total_idle", experiment="memory"),
               Pick("cgroup_usage_idle+shim_rss_idle", experiment="memory"),
               Pick("rss_idle", experiment="memory"))

CLAIMS: tuple[ClaimMap, ...] = (
    # ---- seed: overview timeline ---------------------------------------------------------
    ClaimMap("seed:timeline:era", ("00_overview",), "seed", "timeline diagram",
             ("era of emergence (timeline label)",),
             not_measurable="a decade label of a timeline, not a measurable quantity"),
    ClaimMap("seed:timeline:startup-magnitude", ("00_overview", "01_startup"), "seed",
             "timeline diagram", ("startup time order of magnitude",),
             picks=STARTUP_PICKS,
             note="the class is read as a range: microseconds = 0.001-1 ms, "
                  "milliseconds = 1-1000 ms, seconds = 1-60 s"),
    # ---- seed: core feature comparison table ---------------------------------------------
    ClaimMap("seed:core:ratings", ("00_overview",), "seed", "Core feature comparison",
             ("isolation level (stars)", "portability (stars)", "ecosystem maturity (stars)",
              "security (stars)", "I/O performance (stars)"), not_measurable=_RATING),
    ClaimMap("seed:core:startup", ("00_overview",), "seed", "Core feature comparison",
             ("startup time",), picks=STARTUP_PICKS),
    ClaimMap("seed:core:memory", ("00_overview", "02_memory_density"), "seed",
             "Core feature comparison", ("memory footprint",), picks=_IDLE_TOTAL,
             note="the whole instance when idle: container cgroup + its shim for Docker, "
                  "the QEMU process for a VM, the runtime process for Wasm"),
    ClaimMap("seed:core:disk", ("00_overview",), "seed", "Core feature comparison",
             ("disk footprint",), systems=("VM", "Docker", "Edera"),
             picks=(Pick("artifact_size", experiment="disk", workload="http"),
                    Pick("artifact_size", experiment="disk"))),
    ClaimMap("seed:core:disk-aot", ("00_overview",), "seed", "Core feature comparison",
             ("disk footprint",), systems=("Wasm",), variants=("*/aot",),
             picks=(Pick("artifact_size", experiment="disk", workload="http"),
                    Pick("artifact_size", experiment="disk"))),
    ClaimMap("seed:core:cpu", ("00_overview", "04_resources"), "seed",
             "Core feature comparison", ("CPU performance (% of native)",),
             picks=(Pick("compute_time", "pct_of_baseline_time", "cpu"),
                    Pick("wall_time", "pct_of_baseline_time", "cpu")),
             note="100 x native time / variant time of the same cpu kernel"),
    *(ClaimMap(f"seed:core:io-overhead:{m}",
               ("00_overview", "04_resources") if m in ("seq_read", "rand_read")
               else ("04_resources",), "seed",
               "Core feature comparison", ("I/O overhead factor (annotation)",),
               picks=(Pick(m, "inverse_ratio", "io"),),
               note="overhead factor = native throughput / variant throughput")
      for m in ("seq_read", "seq_write", "rand_read", "rand_write")),
    # ---- seed: startup chart -------------------------------------------------------------
    ClaimMap("seed:chart:vm-full", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("VM",), condition="full boot", variants=("*/pc",),
             picks=(Pick("boot_full", experiment=_STARTUP), Pick("startup", experiment=_STARTUP)),
             note="full boot = the pc machine: firmware, compressed kernel, default devices"),
    ClaimMap("seed:chart:vm-fast", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("VM",), condition="fast boot",
             variants=("*/microvm",),
             picks=(Pick("boot_fast", experiment=_STARTUP), Pick("startup", experiment=_STARTUP)),
             note="fast boot = the microvm machine: qboot, virtio-mmio, uncompressed kernel"),
    ClaimMap("seed:chart:vm-resume", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("VM",), condition="pause/resume",
             picks=(Pick("pause_resume", experiment=_STARTUP),
                    Pick("resume", experiment=_STARTUP))),
    ClaimMap("seed:chart:vm-restore", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("VM",), condition="pause/resume",
             picks=(Pick("snapshot_restore", experiment=_STARTUP),
                    Pick("restore", experiment=_STARTUP)),
             comparable="partly: a restore from a saved snapshot in a new QEMU process, the "
                        "seed's bar says pause/resume"),
    ClaimMap("seed:chart:docker-cold", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("Docker",), condition="cold start",
             picks=(Pick("startup_cold", experiment=_STARTUP),)),
    ClaimMap("seed:chart:docker-warm", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("Docker",), condition="warm start",
             picks=(Pick("startup_warm", experiment=_STARTUP),)),
    ClaimMap("seed:chart:docker-existing", ("01_startup",), "seed",
             "Startup time comparison (bar", ("startup time",), systems=("Docker",),
             condition="image already present",
             picks=(Pick("startup_existing", experiment=_STARTUP),
                    Pick("startup", experiment=_STARTUP))),
    ClaimMap("seed:chart:wasm-cold", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("Wasm",), condition="cold start",
             variants=("wasm", "!*/aot"),
             picks=(Pick("startup_cold", experiment=_STARTUP),
                    Pick("startup_process", experiment=_STARTUP),
                    Pick("startup", experiment=_STARTUP))),
    ClaimMap("seed:chart:wasm-warm", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("Wasm",), condition="warm start",
             picks=(Pick("startup_warm", experiment=_STARTUP),
                    Pick("startup_process_cached", experiment=_STARTUP))),
    ClaimMap("seed:chart:wasm-aot", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time",), systems=("Wasm",), condition="AOT-compiled",
             picks=(Pick("startup_aot", experiment=_STARTUP),
                    Pick("startup_process", experiment=_STARTUP, variants=("*/aot",)),
                    Pick("startup", experiment=_STARTUP, variants=("*/aot",)))),
    ClaimMap("seed:chart:summary", ("01_startup",), "seed", "Startup time comparison (bar",
             ("startup time (summary comparison bar)",),
             picks=(Pick("boot_full", experiment=_STARTUP),
                    Pick("startup_cold", experiment=_STARTUP),
                    Pick("startup_process", experiment=_STARTUP),
                    Pick("startup", experiment=_STARTUP))),
    ClaimMap("seed:chart:hard-coded", ("01_startup",), "seed", "benchmark code",
             ("hard-coded sleep in 'vm_startup' benchmark",
              "hard-coded sleep in 'docker_startup' benchmark"),
             not_measurable="not a measurement: the seed's benchmark code sleeps this long "
                            "(simulated); 01_startup compares it with the chart value"),
    # ---- seed: memory ----------------------------------------------------------------------
    ClaimMap("seed:mem:idle", ("02_memory_density",), "seed", "Memory footprint comparison",
             ("idle memory",),
             picks=(Pick("rss_idle", experiment="memory"),
                    Pick("cgroup_usage_idle", experiment="memory")),
             note="RSS of the instance's main process (QEMU, runtime, workload) when idle"),
    ClaimMap("seed:mem:peak", ("02_memory_density",), "seed", "Memory footprint comparison",
             ("peak memory",),
             picks=(Pick("peak_rss_loaded", experiment="memory"),
                    Pick("cgroup_peak_loaded", experiment="memory"),
                    Pick("rss_loaded", experiment="memory"),
                    Pick("cgroup_usage_loaded", experiment="memory")),
             comparable="partly: 'loaded' is the instance holding the memory experiment's "
                        "buffer (mem_mib tag), not a peak under HTTP load"),
    ClaimMap("seed:mem:total", ("02_memory_density",), "seed", "Memory footprint comparison",
             ("total memory footprint",), picks=_IDLE_TOTAL),
    ClaimMap("seed:mem:per-instance", ("02_memory_density",), "seed",
             "memory efficiency chart", ("memory per instance",), picks=_IDLE_TOTAL),
    ClaimMap("seed:mem:density", ("02_memory_density", "06_cost"), "seed", "density on an 8 GB",
             ("instances per 8 GB machine",),
             picks=(Pick("instances_per_8gib", experiment="density"),
                    *(Pick(p.metric, "per_8gib", p.experiment) for p in _IDLE_TOTAL)),
             note="8 GiB (8192 MiB) divided by the measured memory per instance; the seed "
                  "divides 8000 MB"),
    # ---- seed: HTTP ------------------------------------------------------------------------
    ClaimMap("seed:http:settings", ("03_http",), "seed", "Throughput and latency (HTTP table)",
             ("test condition: CPU cores", "test condition: RAM",
              "test condition: concurrent connections", "test condition: duration"),
             not_measurable=_SETTING),
    ClaimMap("seed:http:rps", ("03_http",), "seed", "Throughput and latency (HTTP table)",
             ("HTTP throughput",), picks=(Pick("requests_per_s", experiment="http"),),
             comparable=_HTTP_SETUP),
    ClaimMap("seed:http:p50", ("03_http",), "seed", "Throughput and latency (HTTP table)",
             ("HTTP latency",), stat="p50", picks=(Pick("latency_p50", experiment="http"),),
             comparable=_HTTP_SETUP),
    ClaimMap("seed:http:p99", ("03_http",), "seed", "Throughput and latency (HTTP table)",
             ("HTTP latency",), stat="p99", picks=(Pick("latency_p99", experiment="http"),),
             comparable=_HTTP_SETUP),
    ClaimMap("seed:http:loss", ("03_http",), "seed", "performance loss vs bare metal",
             ("throughput change vs bare metal",),
             picks=(Pick("requests_per_s", "pct_change", "http"),),
             note="100 x (variant / native - 1) of requests per second"),
    # ---- seed: resources -------------------------------------------------------------------
    ClaimMap("seed:cpu-usage:idle", ("04_resources",), "seed", "(CPU usage)", ("CPU usage",),
             condition="idle", picks=(Pick("cpu_percent_idle", experiment="cpu_usage"),)),
    ClaimMap("seed:cpu-usage:load", ("04_resources",), "seed", "(CPU usage)", ("CPU usage",),
             condition="high load", picks=(Pick("cpu_percent_load", experiment="http"),)),
    *(ClaimMap(f"seed:disk-io:{m}", ("04_resources",), "seed", "(disk I/O)",
               ("disk I/O throughput (% of native)",), condition=cond,
               picks=(Pick(m, "pct_of_baseline", "io"),),
               note="100 x variant throughput / native throughput of the fileio workload")
      for cond, ms in (("sequential read/write", ("seq_read", "seq_write")),
                       ("random I/O", ("rand_read", "rand_write"))) for m in ms),
    # ---- seed: observability -------------------------------------------------------------
    ClaimMap("seed:obs:app", ("05_observability",), "seed", "Tracing capability",
             ("application tracing capability",),
             picks=(Pick("probe_app_trace", "capability"),
                    Pick("compute_time", "capability", "cpu")),
             note="evidence: the workload's own timing (VB-RESULT elapsed_ns) reached the "
                  "harness through the platform"),
    ClaimMap("seed:obs:syscall", ("05_observability",), "seed", "Tracing capability",
             ("system-call tracing capability",),
             picks=(Pick("probe_syscall_trace", "capability"),),
             note="evidence: a host-side system-call trace of the instance's processes"),
    ClaimMap("seed:obs:network", ("05_observability",), "seed", "Tracing capability",
             ("network tracing capability",),
             picks=(Pick("probe_network_trace", "capability"),),
             note="evidence: a host-side trace of the instance's network traffic"),
    ClaimMap("seed:obs:resources", ("05_observability",), "seed", "Tracing capability",
             ("resource monitoring capability",),
             picks=(Pick("probe_resource_metrics", "capability"),
                    Pick("cgroup_usage_idle", "capability", "memory"),
                    Pick("rss_idle", "capability", "memory")),
             note="evidence: the memory experiment read the instance's memory counters"),
    ClaimMap("seed:obs:logs", ("05_observability",), "seed", "Tracing capability",
             ("log collection capability",),
             picks=(Pick("probe_logs", "capability"),
                    Pick("compute_time", "capability", "cpu"),
                    Pick("seq_read", "capability", "io")),
             note="evidence: the workload's stdout line (VB-RESULT) was collected from the "
                  "instance"),
    ClaimMap("seed:obs:distributed", ("05_observability",), "seed", "Tracing capability",
             ("distributed tracing capability",),
             not_measurable="distributed tracing is context propagation inside the "
                            "application (e.g. OTLP SDK), the same on every platform; no "
                            "host-side probe can check it"),
    ClaimMap("seed:obs:otlp", ("05_observability",), "seed", "OTLP integration",
             ("OTLP integration complexity (stars)",), not_measurable=_RATING),
    # ---- seed: scenario selection, hybrid, cost, summary -----------------------------------
    ClaimMap("seed:scenario", ("01_startup",), "seed", "Decision tree",
             ("startup-latency threshold for choosing Wasm",
              "serverless: response class leading to Wasm",
              "serverless: acceptable cold-start class for Docker"),
             not_measurable="a decision rule, not a claim about a platform; 01_startup lists "
                            "which variants start within 10 ms"),
    ClaimMap("seed:hybrid", ("00_overview",), "seed", "Docker + Wasm hybrid",
             ("minimum Docker Desktop version for Docker+Wasm",),
             not_measurable="a product version requirement (Docker Desktop is not used here)"),
    ClaimMap("seed:cost", ("06_cost",), "seed", "Cost analysis >",
             ("scenario size", "instances", "services per instance", "unit price",
              "monthly cost", "containers per instance", "hours per month used in cost formula",
              "requests per month", "average execution time", "monthly cost (comparison bar)",
              "monthly cost change (savings)", "system administrator effort",
              "patch management", "monitoring maintenance", "total staffing",
              "DevOps engineer effort", "image updates", "module updates"),
             not_measurable=_COST),
    ClaimMap("seed:trend", ("00_overview",), "seed", "Trend outlook",
             ("maturity", "maturity/share projection"),
             not_measurable="an opinion or forecast of maturity, not a measurable quantity"),
    # ---- Edera -----------------------------------------------------------------------------
    ClaimMap("edera:docker-startup", ("07_edera",), "edera", "Abstract",
             ("container startup time",), systems=("Docker",),
             picks=(Pick("startup", experiment=_STARTUP),
                    Pick("startup_cold", experiment=_STARTUP)),
             comparable="partly: the abstract does not say which interval, image or host; "
                        "ours is described in each row's description"),
    ClaimMap("edera:edera", ("07_edera",), "edera", "Abstract",
             ("container startup time", "startup time increase vs Docker",
              "CPU speed slowdown vs Docker", "system call performance speedup vs Docker",
              "memory performance speedup vs Docker"), systems=("Edera",)),
    # ---- Lumos -----------------------------------------------------------------------------
    ClaimMap("lumos:image-size", ("08_lumos",), "lumos", "Abstract",
             ("image size reduction factor (container image / Wasm image)",),
             baseline=("docker/runc",), up_to_from=1.0,
             picks=(Pick("artifact_size", "inverse_ratio", "disk"),),
             note="Docker image size / AoT artifact size, per workload"),
    ClaimMap("lumos:cold-start", ("08_lumos",), "lumos", "Abstract",
             ("cold-start latency reduction",), baseline=("docker/runc",), up_to_from=0.0,
             picks=(Pick("startup_aot", "pct_reduction", _STARTUP, baseline_metric="startup_cold"),
                    Pick("startup_process", "pct_reduction", _STARTUP,
                         baseline_metric="startup_cold"),
                    Pick("startup", "pct_reduction", _STARTUP, baseline_metric="startup_cold"),
                    Pick("startup", "pct_reduction", _STARTUP)),
             note="100 x (1 - AoT Wasm startup / Docker cold startup)"),
    ClaimMap("lumos:warm-latency", ("08_lumos",), "lumos", "Abstract",
             ("warm latency ratio (interpreted Wasm / reference)",),
             baseline=("docker/runc", BASELINE), up_to_from=1.0,
             picks=(Pick("compute_time", "ratio", "cpu"), Pick("wall_time", "ratio", "cpu")),
             comparable="partly: Lumos times serverless function requests; ours is the cpu "
                        "kernel run by the Pulley interpreter against the container"),
    ClaimMap("lumos:io-serialization", ("08_lumos",), "lumos", "Abstract",
             ("I/O-serialization overhead factor",),
             baseline=("docker/runc", BASELINE), up_to_from=1.0,
             picks=(Pick("seq_read", "inverse_ratio", "io"),),
             comparable="no: Lumos means serializing function data across the Wasm boundary; "
                        "ours is file throughput through WASI, shown for context"),
    # ---- Felter et al. (artifact spreadsheets) --------------------------------------------
    ClaimMap("felter:sd", ("10_felter",), "felter", "artifact", (
        "Linpack throughput", "STREAM Copy bandwidth", "STREAM Scale bandwidth",
        "STREAM Add bandwidth", "STREAM Triad bandwidth", "RandomAccess updates rate",
        "sequential read throughput", "sequential write throughput"), stat="sd",
        not_measurable="the spread of the mean row above it, not a claim of its own"),
    *(ClaimMap(f"felter:{name}:{sys_key}", ("10_felter",), "felter", "artifact", (metric,),
               systems=systems, stat=stat, over="Native", picks=(pick,),
               variants=variants, comparable=comparable,
               note=f"ratio to native; {note}")
      for name, metric, stat, pick, note in (
          ("linpack", "Linpack throughput", "mean", Pick("compute_time", "inverse_ratio", "cpu"),
           "ours: native time / variant time of the single-threaded integer cpu kernel; "
           "Linpack is multi-threaded floating point"),
          ("seq-read", "sequential read throughput", "mean", Pick("seq_read", "ratio", "io"),
           "ours: buffered file reads in 1 MiB blocks; fio used libaio on a block device"),
          ("seq-write", "sequential write throughput", "mean", Pick("seq_write", "ratio", "io"),
           "ours: buffered writes + fsync in 1 MiB blocks"),
          ("rand-read", "random read IOPS", "point", Pick("rand_read", "ratio", "io"),
           "ours: 4 KiB random reads (MB/s, a fixed multiple of IOPS)"),
          ("rand-write", "random write IOPS", "point", Pick("rand_write", "ratio", "io"),
           "ours: 4 KiB random writes (MB/s, a fixed multiple of IOPS)"),
          ("tcp-rr", "TCP_RR round-trip latency", "derived",
           Pick("latency_p50", "ratio", "http"),
           "ours: HTTP keep-alive median latency under wrk, netperf TCP_RR is one "
           "transaction at a time"))
      for sys_key, systems, variants, comparable in (
          ("docker", ("Docker", "Docker NAT"), (), ""),
          ("kvm", ("KVM", "KVM-tuned", "KVM-untuned"), (), ""),
          ("kvm-vs-tcg", ("KVM", "KVM-tuned", "KVM-untuned"), ("qemu-tcg/*",), _TCG))
      if not (name == "tcp-rr" and sys_key == "docker")),  # the artifact has no Docker TCP_RR
    ClaimMap("felter:unmatched", ("10_felter",), "felter", "artifact", (
        "STREAM Copy bandwidth", "STREAM Scale bandwidth", "STREAM Add bandwidth",
        "STREAM Triad bandwidth", "RandomAccess updates rate", "random mixed read/write IOPS",
        "TCP_RR transaction rate", "UDP_RR round-trip latency", "UDP_RR transaction rate",
        "TCP bulk throughput"), stat=None,
        not_measurable=_FELTER_ONLY.format(what="memory-bandwidth, random-access, mixed I/O, "
                                                "UDP or bulk-transfer workload")),
    ClaimMap("felter:native", ("10_felter",), "felter", "artifact", (
        "Linpack throughput", "sequential read throughput", "sequential write throughput",
        "random read IOPS", "random write IOPS", "TCP_RR round-trip latency"),
        systems=("Native",), not_measurable="the native baseline of the ratios (1 by "
                                            "definition)"),
)


# --- units -------------------------------------------------------------------------------------

# (published unit, measured unit) -> (factor that turns the published number into the
# measured unit, what the conversion assumes)
CONVERSIONS: dict[tuple[str, str], tuple[float, str]] = {
    ("s", "ms"): (1000.0, "s x 1000 = ms"),
    ("ms", "ms"): (1.0, ""),
    ("us", "ms"): (1e-3, "us / 1000 = ms"),
    ("MB", "MiB"): (1e6 / 2**20, "MB read as 10^6 B: 1 MB = 0.954 MiB"),
    ("GB", "MiB"): (1e9 / 2**20, "GB read as 10^9 B: 1 GB = 953.7 MiB"),
    ("MB", "B"): (1e6, "MB read as 10^6 B"),
    ("GB", "B"): (1e9, "GB read as 10^9 B"),
    ("%", "%"): (1.0, ""),
    ("% of native", "%"): (1.0, ""),
    ("%", "% of one core"): (1.0, "the seed's % read as % of one core (it does not say of "
                                  "what: one core or the whole 4-core host)"),
    ("requests/s", "requests/s"): (1.0, ""),
    ("requests/s", "req/s"): (1.0, ""),
    ("x", "x"): (1.0, ""),
    ("instances", "instances"): (1.0, ""),
}
# Published order-of-magnitude classes, read as ranges in ms.
MAGNITUDES: dict[str, tuple[float, float]] = {
    "microseconds": (0.001, 1.0),
    "milliseconds": (1.0, 1000.0),
    "seconds": (1000.0, 60_000.0),
}
# transform -> (unit of the result, None = the metric's own unit; needs a baseline)
TRANSFORMS: dict[str, tuple[str | None, bool]] = {
    "value": (None, False),
    "per_8gib": ("instances", False),
    "capability": ("", False),
    "ratio": ("x", True),
    "inverse_ratio": ("x", True),
    "pct_of_baseline": ("%", True),
    "pct_of_baseline_time": ("%", True),
    "pct_change": ("%", True),
    "pct_reduction": ("%", True),
}


def _apply(transform: str, v: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """The transformed samples (``b`` the paired baseline values or the baseline median)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "ratio": lambda: v / b,
            "inverse_ratio": lambda: b / v,
            "pct_of_baseline": lambda: 100 * v / b,
            "pct_of_baseline_time": lambda: 100 * b / v,
            "pct_change": lambda: 100 * (v / b - 1),
            "pct_reduction": lambda: 100 * (1 - v / b),
        }[transform]()


# --- dataset access ----------------------------------------------------------------------------


def matches(pattern: str, variant: str, family: str) -> bool:
    """A variant pattern: a family name ("vm"), an exact name, or a glob ("*/aot")."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(variant, pattern)
    return pattern in (family, variant)


def selected(patterns: Sequence[str], variant: str, family: str) -> bool:
    """Whether patterns select a variant: any plain pattern matches (or there is none) and
    no pattern prefixed with "!" does."""
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    return ((not include or any(matches(p, variant, family) for p in include))
            and not any(matches(p, variant, family) for p in exclude))


def _variant_order() -> list[str]:
    from virtbench.platforms import VARIANTS

    return list(VARIANTS)


@dataclass
class Dataset:
    """The rows of one run (or several), its host facts, and helpers to read them."""

    df: pd.DataFrame
    host: dict = field(default_factory=dict)
    run_id: str = ""
    n_boot: int = 9999

    @classmethod
    def load(cls, run_id: str | Sequence[str] = "reference", datasets: str | Path | None = None,
             variants: Sequence[str] = (), n_boot: int = 9999) -> Dataset:
        """Load ``datasets/<run_id>`` (``datasets`` "" or None: the default root)."""
        root = Path(datasets) if datasets else datasets_dir()
        df = load_runs(run_id, root=root)
        ids = [run_id] if isinstance(run_id, str) else list(run_id)
        host: dict = {}
        for rid in ids:
            path = root / rid / "host.json"
            if path.exists():
                host = json.loads(path.read_text())
                break
        ds = cls(df, host, ", ".join(ids), n_boot)
        if variants:
            keep = [v for v in ds.variants() if selected(variants, v, ds.family(v))]
            ds.df = df[df["variant"].isin(keep)].reset_index(drop=True)
        return ds

    # -- what is there
    def variants(self, patterns: Sequence[str] = ()) -> list[str]:
        """Variants in the data (in registry order), optionally only those matching patterns."""
        present = list(dict.fromkeys(self.df["variant"]))
        order = {v: i for i, v in enumerate(_variant_order())}
        present.sort(key=lambda v: (order.get(v, len(order)), v))
        if not patterns:
            return present
        return [v for v in present if selected(patterns, v, self.family(v))]

    def family(self, variant: str) -> str:
        fam = self.df.loc[self.df["variant"] == variant, "family"]
        return str(fam.iloc[0]) if len(fam) else variant.split("/")[0]

    def rows(self, variant: str | None = None, metric: str | None = None,
             experiment: str | None = None, workload: str | None = None) -> pd.DataFrame:
        """All rows (measured or with a reason) matching the given fields."""
        frame = self.df
        if variant is not None:  # most look-ups name a variant: use a per-variant index
            frame = self._by_variant().get(variant, frame.iloc[0:0])
        for column, value in (("metric", metric), ("experiment", experiment),
                              ("workload", workload)):
            if value is not None:
                frame = frame[frame[column] == value]
        return frame

    def _by_variant(self) -> dict[str, pd.DataFrame]:
        if getattr(self, "_indexed", None) is not self.df:  # built once per frame
            self._index = {str(v): g for v, g in self.df.groupby("variant", sort=False)}
            self._indexed = self.df
        return self._index

    def measured(self, variant: str, metric: str, experiment: str | None = None,
                 workload: str | None = None) -> pd.DataFrame:
        """Measured non-warm-up rows; ``metric`` "a+b" sums a and b per repetition."""
        keys = ["run_id", "workload", "rep"]
        frames = []
        for part in metric.split("+"):
            r = self.rows(variant, part, experiment, workload)
            frames.append(r[r["value"].notna() & ~r["warmup"]][keys + ["value", "unit"]])
        joined = frames[0].reset_index(drop=True)
        for other in frames[1:]:
            joined = joined.merge(other, on=keys, how="inner", suffixes=("", "_b"))
            if (joined["unit"] != joined["unit_b"]).any():
                raise ValueError(f"cannot sum {metric}: units differ")
            joined["value"] = joined["value"] + joined["value_b"]
            joined = joined[keys + ["value", "unit"]]
        return joined

    def sample(self, variant: str, metric: str, experiment: str | None = None,
               workload: str | None = None) -> np.ndarray:
        return self.measured(variant, metric, experiment, workload)["value"].to_numpy(float)

    def unit(self, metric: str) -> str:
        first = metric.split("+")[0]
        units = self.df.loc[self.df["metric"] == first, "unit"]
        return str(units.iloc[0]) if len(units) else ""

    def row_reason(self, variant: str, metric: str, experiment: str | None = None) -> str:
        """The reason stored with the rows of ``metric`` (or, when the variant measured
        nothing in ``experiment``, with its rows there: an unavailable or failed variant);
        "" when the dataset gives none."""
        for part in metric.split("+"):
            found = _join_reasons(self.rows(variant, part, experiment)["reason"])
            if found:
                return found
        if experiment is not None:
            rows = self.rows(variant, None, experiment)
            if len(rows) and rows["value"].notna().sum() == 0:
                return _join_reasons(rows["reason"])
        return ""

    def reason(self, variant: str, metric: str, experiment: str | None = None) -> str:
        """Why ``metric`` has no value for ``variant``: the rows' reason, else what is absent."""
        return self.row_reason(variant, metric, experiment) or self.absent(
            variant, [metric], [experiment] if experiment else [])

    def absent(self, variant: str, metrics: Sequence[str], experiments: Sequence[str]) -> str:
        """The "not in this dataset" reason, naming what is missing."""
        if not len(self.rows(variant)):
            return f"{NOT_IN_DATASET} (no rows for {variant})"
        exps = [e for e in dict.fromkeys(experiments) if e]
        if exps and not any(len(self.rows(variant, None, e)) for e in exps):
            return f"{NOT_IN_DATASET} (no {' / '.join(exps)} rows for {variant})"
        return f"{NOT_IN_DATASET} ({variant} has no {' / '.join(dict.fromkeys(metrics))} rows)"

    def first_measured(self, variant: str, picks: Sequence[Pick]) -> tuple[str, np.ndarray]:
        """The first pick (metric) with samples for ``variant``, and its samples."""
        for pick in picks:
            if pick.variants and not selected(pick.variants, variant, self.family(variant)):
                continue
            sample = self.sample(variant, pick.metric, pick.experiment, pick.workload)
            if sample.size:
                return pick.metric, sample
        return "", np.array([])

    def description(self, metric: str, variant: str | None = None) -> str:
        d = self.rows(variant, metric)["description"]
        d = [x for x in d.unique() if x]
        return d[0] if d else ""

    # -- summaries
    def estimate(self, values: np.ndarray) -> stats.Estimate:
        return stats.median_ci(values, n_resamples=self.n_boot)

    def summary(self, metrics: Sequence[str], variants: Sequence[str] = (),
                experiment: str | None = None, workload: str | None = None,
                complete: bool = True) -> pd.DataFrame:
        """Median and 95% CI per (variant, metric, workload), or the reason it is missing.

        ``complete``: every requested variant and metric appears, measured or not; else
        only the metrics a variant has rows for (a variant with none of them gets one line
        with the reason). ``text`` holds "median [low, high] unit" or "not measured: reason".
        """
        lines = []
        chosen = self.variants(variants) if variants else self.variants()
        for variant in chosen if metrics else []:
            wanted = list(metrics)
            if not complete:
                has = set(self.rows(variant, None, experiment)["metric"])
                wanted = [m for m in metrics if set(m.split("+")) <= has]
                if not wanted:
                    lines.append(dict(variant=variant, family=self.family(variant),
                                      metric=" / ".join(metrics[:3]) + (" ..." if len(metrics)
                                                                         > 3 else ""),
                                      workload=workload or "", unit="", n=0, median=math.nan,
                                      ci_low=math.nan, ci_high=math.nan, warnings="",
                                      text="not measured: " + (
                                          self.row_reason(variant, metrics[0], experiment)
                                          or self.absent(variant, metrics,
                                                         [experiment] if experiment else []))))
                    continue
            for metric in wanted:
                data = self.measured(variant, metric, experiment, workload)
                unit = self.unit(metric)
                if data.empty:
                    lines.append(dict(variant=variant, family=self.family(variant),
                                      metric=metric, workload=workload or "", unit=unit, n=0,
                                      median=math.nan, ci_low=math.nan, ci_high=math.nan,
                                      text="not measured: "
                                           + self.reason(variant, metric, experiment),
                                      warnings=""))
                    continue
                for wl, group in data.groupby("workload", sort=False):
                    values = group["value"].to_numpy(float)
                    est = self.estimate(values)
                    lines.append(dict(variant=variant, family=self.family(variant),
                                      metric=metric, workload=wl, unit=unit, n=est.n,
                                      median=est.value, ci_low=est.low, ci_high=est.high,
                                      text=f"{est} {unit}",
                                      warnings="; ".join(stats.stability_warnings(values, unit))))
        return pd.DataFrame(lines, columns=["variant", "family", "metric", "workload", "unit",
                                            "n", "median", "ci_low", "ci_high", "text",
                                            "warnings"])

    def samples(self, metrics: Sequence[str], variants: Sequence[str] = (),
                experiment: str | None = None) -> pd.DataFrame:
        """Long frame of measured samples (variant, family, metric, workload, rep, value)."""
        frames = []
        for variant in self.variants(variants) if variants else self.variants():
            for metric in metrics:
                data = self.measured(variant, metric, experiment)
                if data.empty:
                    continue
                frames.append(data.assign(variant=variant, family=self.family(variant),
                                          metric=metric))
        if not frames:
            return pd.DataFrame(columns=["variant", "family", "metric", "workload", "rep",
                                         "value", "unit"])
        return pd.concat(frames, ignore_index=True)

    def compare(self, metric: str, experiment: str | None = None, baseline: str = BASELINE,
                variants: Sequence[str] = (), workload: str | None = None) -> pd.DataFrame:
        """Every variant against ``baseline``: ratio of medians with CI, Mann-Whitney U
        (two-sided, Holm-corrected over the variants), Cliff's delta, Hodges-Lehmann shift.

        Variants with fewer than 2 samples get the ratio only. An empty frame when the
        baseline has no samples.
        """
        base = self.sample(baseline, metric, experiment, workload)
        columns = ["variant", "metric", "baseline", "n", "ratio", "ratio_low", "ratio_high",
                   "p", "p_holm", "significant", "cliffs_delta", "hodges_lehmann", "unit"]
        if base.size == 0 or np.median(base) == 0:
            return pd.DataFrame(columns=columns)
        groups: dict[str, np.ndarray] = {}
        lines = []
        for variant in self.variants(variants) if variants else self.variants():
            if variant == baseline:
                continue
            values = self.sample(variant, metric, experiment, workload)
            if values.size == 0:
                continue
            est = stats.ratio_ci(values, base, n_resamples=self.n_boot)
            lines.append(dict(variant=variant, metric=metric, baseline=baseline, n=values.size,
                              ratio=est.value, ratio_low=est.low, ratio_high=est.high,
                              unit=self.unit(metric)))
            if values.size >= 2 and base.size >= 2:
                groups[variant] = values
        table = pd.DataFrame(lines, columns=[c for c in columns if c in
                                             ("variant", "metric", "baseline", "n", "ratio",
                                              "ratio_low", "ratio_high", "unit")])
        if groups:
            tests = stats.mann_whitney_holm({**groups, baseline: base}, reference=baseline)
            tests = tests.rename(columns={"group": "variant"})[
                ["variant", "p", "p_holm", "significant", "cliffs_delta", "hodges_lehmann"]]
            table = table.merge(tests, on="variant", how="left")
        return table.reindex(columns=columns)

    def host_line(self) -> str:
        """One line naming the host the data come from."""
        return host_line(self.host)


def host_line(host: dict) -> str:
    """One line naming a host from its host.json facts."""
    if not host:
        return "unknown (no host.json)"
    mem = host.get("memory_bytes")
    mem_text = f", {mem / 2**30:.1f} GiB" if mem else ""
    flags = ",".join(host.get("cpu_virtualization_flags") or []) or "none"
    return (f"{host.get('hostname', '?')}: {host.get('cpu_model', '?')}, "
            f"{host.get('cpu_count', '?')} CPUs{mem_text}, kernel {host.get('kernel', '?')}, "
            f"{host.get('distro', '?')}, CPU virtualization flags: {flags}")


def _join_reasons(reasons: Iterable[str], keep: int = 2) -> str:
    """Distinct non-empty reasons, the first ``keep`` in full, then how many more."""
    found = [r for r in dict.fromkeys(reasons) if r]
    text = "; ".join(found[:keep])
    return text + (f" (+{len(found) - keep} other reasons)" if len(found) > keep else "")


# --- claims check ------------------------------------------------------------------------------


def _ieq(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def published_rows(cm: ClaimMap, pub: pd.DataFrame) -> pd.DataFrame:
    """The published rows a mapping covers."""
    mask = (pub["source"] == cm.source) & pub["table_or_figure"].str.contains(
        cm.table, case=False, regex=False)
    mask &= pub["metric"].apply(lambda m: any(_ieq(m, x) for x in cm.metrics))
    if cm.systems:
        mask &= pub["system"].apply(lambda s: any(_ieq(s, x) for x in cm.systems))
    if cm.condition is not None:
        mask &= pub["condition"].apply(lambda c: _ieq(c, cm.condition))
    if cm.stat is not None:
        mask &= pub["stat"] == cm.stat
    else:  # a standard deviation belongs to its mean row; only an explicit stat selects it
        mask &= pub["stat"] != "sd"
    return pub[mask]


def _denominator(row: pd.Series, system: str, pub: pd.DataFrame) -> pd.Series | None:
    same = pub[(pub["source"] == row["source"]) & (pub["metric"] == row["metric"])
               & (pub["workload"] == row["workload"]) & (pub["condition"] == row["condition"])
               & (pub["stat"] == row["stat"]) & (pub["system"] == system)]
    return same.iloc[0] if len(same) else None


def reference(row: pd.Series) -> str:
    """Where a published row comes from, short: "seed L31", "edera_2501.04580v1 Abstract"."""
    if row["source"] == "seed":
        note = str(row["note"])
        return note.split(";")[0].split(",")[0] if note.startswith("seed L") else "seed"
    return f"{row['source_id']}, {row['table_or_figure']}"


def claim_text(row: pd.Series) -> str:
    parts = [str(row["system"]), str(row["metric"])]
    if row["condition"] and len(str(row["condition"])) <= 32:  # long ones are test setups
        parts.append(f"({row['condition']})")
    if row["stat"] in ("p50", "p99"):
        parts.append(str(row["stat"]))
    return " ".join(parts)


@dataclass
class _Claim:
    """One published row made ready for checking: its interval in a unit, as text."""

    text: str
    low: float
    high: float
    unit: str
    category: str = ""


def _published_claim(cm: ClaimMap, row: pd.Series, pub: pd.DataFrame) -> _Claim:
    if row["value_text"]:
        return _Claim(str(row["value_text"]), math.nan, math.nan, "", str(row["value_text"]))
    low, high = published.claim_interval(row)
    text = f"{published.format_value(row)} {row['unit']}".strip()
    unit = str(row["unit"])
    if cm.over:
        den = _denominator(row, cm.over, pub)
        if den is None or not den["value"] or math.isnan(den["value"]):
            return _Claim(f"{text} (no {cm.over} row to divide by)", math.nan, math.nan, "")
        low, high = low / den["value"], high / den["value"]
        text = f"{low:.3g} x {cm.over} ({published.format_value(row)} / " \
               f"{published.format_value(den)} {unit}, derived)"
        unit = "x"
    if cm.up_to_from is not None:
        low = min(cm.up_to_from, high)
        text = f"up to {text}"
    return _Claim(text, low, high, unit)


def _convert(claim: _Claim, unit: str) -> tuple[float, float, str] | str:
    """The claim's interval in ``unit`` and the conversion said, or why it cannot be."""
    if claim.category:
        if claim.category in MAGNITUDES and unit == "ms":
            low, high = MAGNITUDES[claim.category]
            return low, high, f"'{claim.category}' read as {low:g}-{high:g} ms"
        return f"a category ({claim.category!r}) cannot be compared with {unit or 'no unit'}"
    key = (claim.unit, unit)
    if key not in CONVERSIONS:
        return f"no conversion from {claim.unit!r} to {unit!r}"
    factor, said = CONVERSIONS[key]
    return claim.low * factor, claim.high * factor, said


def _capability_verdict(claim: str, observed: bool) -> str:
    if claim == "full":
        return "consistent" if observed else "not confirmed here"
    if claim == "limited":
        return "more than claimed (collected here)" if observed else "consistent"
    return "inconclusive"


CHECK_COLUMNS = [
    "key", "source", "line", "reference", "table", "system", "claim", "claimed", "claim_low",
    "claim_high", "unit", "conversion", "variant", "workload", "metric", "method", "n",
    "median", "ci_low", "ci_high", "measured", "verdict", "comparable", "note",
]


def _measure_pick(ds: Dataset, cm: ClaimMap, pick: Pick, variant: str
                  ) -> list[dict] | str | None:
    """Checked items for one variant with this pick; a reason string when the baseline is
    missing; None when the variant has no data for it (the next pick is tried)."""
    data = ds.measured(variant, pick.metric, pick.experiment, pick.workload)
    if data.empty:
        return None
    unit_out, needs_base = TRANSFORMS[pick.transform]
    unit = unit_out if unit_out is not None else str(data["unit"].iloc[0])
    out = []
    baseline = next((b for b in cm.baseline if len(ds.rows(b))), cm.baseline[0])
    base_metric = pick.baseline_metric or pick.metric
    for wl, group in data.groupby("workload", sort=False):
        method = ""
        values = group["value"].to_numpy(float)
        exact = str(group["unit"].iloc[0]) in DETERMINISTIC_UNITS
        if pick.transform == "per_8gib":
            if np.median(values) <= 0:
                return (f"{pick.metric} has a median of {np.median(values):.3g} MiB (<= 0: "
                        "smaller than the noise of the counter), so instances per 8 GiB are "
                        "undefined")
            values = MIB_PER_8GIB / values
            method = "8192 MiB / memory per instance"
        elif needs_base:
            base = ds.measured(baseline, base_metric, pick.experiment, wl)
            if base.empty:
                why = ds.reason(baseline, base_metric, pick.experiment)
                return f"baseline {baseline} has no {base_metric}: {why}"
            paired = group.merge(base, on=["run_id", "rep"], suffixes=("", "_b"))
            if len(paired) >= 2:
                values = _apply(pick.transform, paired["value"].to_numpy(float),
                                paired["value_b"].to_numpy(float))
                method = f"per repetition against {baseline} (pairs matched by rep)"
            else:
                values = _apply(pick.transform, values, float(np.median(base["value"])))
                method = (f"against the median of {baseline} {base_metric} "
                          "(its spread not included)")
            exact = exact and str(base["unit"].iloc[0]) in DETERMINISTIC_UNITS
        out.append(dict(workload=wl, values=values, unit=unit, method=method, exact=exact,
                        metric=pick.metric if not needs_base else
                        f"{pick.metric} vs {baseline}"))
    return out


def _check_variant(ds: Dataset, cm: ClaimMap, claim: _Claim, variant: str) -> list[dict]:
    picks = [p for p in cm.picks if not p.variants
             or selected(p.variants, variant, ds.family(variant))]
    first_reason = ""
    for pick in picks:
        got = _measure_pick(ds, cm, pick, variant)
        if got is None:
            continue
        if isinstance(got, str):
            first_reason = first_reason or got
            continue
        lines = []
        for item in got:
            values = item["values"][np.isfinite(item["values"])]
            line = dict(variant=variant, workload=item["workload"], metric=item["metric"],
                        method=item["method"], unit=item["unit"])
            if pick.transform == "capability":
                observed = bool(values.size and np.median(values) > 0)
                evidence = f"{pick.metric} collected (n={values.size})" if observed else \
                    f"{pick.metric} not collected"
                line.update(n=int(values.size), measured=evidence, unit="",
                            verdict=_capability_verdict(claim.category, observed))
                lines.append(line)
                continue
            conv = _convert(claim, item["unit"])
            est_values = np.repeat(values, 2) if item["exact"] and values.size == 1 else values
            if values.size == 0:
                line.update(n=0, measured="", verdict="not measured: no finite value")
                lines.append(line)
                continue
            if isinstance(conv, str):
                est = stats.median_ci(est_values, n_resamples=ds.n_boot)
                line.update(n=int(values.size), median=est.value, ci_low=est.low,
                            ci_high=est.high, measured=f"{est} {item['unit']}",
                            verdict=f"not comparable: {conv}")
                lines.append(line)
                continue
            low, high, said = conv
            verdict = stats.check_claim(est_values, low, high)
            est = verdict.estimate
            shown = f"{est} {item['unit']}"
            if item["exact"] and values.size == 1:
                shown = f"{est.value:.6g} {item['unit']} (exact)"
            line.update(n=int(values.size), median=est.value, ci_low=est.low,
                        ci_high=est.high, measured=shown, verdict=verdict.verdict,
                        claim_low=low, claim_high=high, conversion=said)
            lines.append(line)
        return lines
    reason = first_reason or next(
        (r for p in picks if (r := ds.row_reason(variant, p.metric, p.experiment))), "")
    if not reason:
        reason = (ds.absent(variant, [p.metric for p in picks],
                            [p.experiment for p in picks if p.experiment])
                  if picks else "no measurement applies to this variant")
    return [dict(variant=variant, metric=" | ".join(p.metric for p in picks), n=0,
                 measured="", verdict=f"not measured: {reason}")]


def check(ds: Dataset, notebook: str | None = None, keys: Iterable[str] | None = None,
          source: str | None = None, pub: pd.DataFrame | None = None) -> pd.DataFrame:
    """The claims-check table: one line per (published row, variant, workload).

    Select mappings by notebook, key prefixes or source. Lines of unmeasurable claims say
    why; lines of claims with no data say "not measured: <reason>".
    """
    pub = published.load() if pub is None else pub
    key_list = list(keys) if keys is not None else None
    lines: list[dict] = []
    for cm in CLAIMS:
        if notebook is not None and notebook not in cm.notebooks:
            continue
        if key_list is not None and not any(cm.key.startswith(k) for k in key_list):
            continue
        if source is not None and cm.source != source:
            continue
        for _, row in published_rows(cm, pub).iterrows():
            lines.extend(_check_row(ds, cm, row, pub))
    frame = pd.DataFrame(lines)
    return frame.reindex(columns=CHECK_COLUMNS)


def _check_row(ds: Dataset, cm: ClaimMap, row: pd.Series, pub: pd.DataFrame) -> list[dict]:
    claim = _published_claim(cm, row, pub)
    head = dict(key=cm.key, source=cm.source, line=int(row["line"]), reference=reference(row),
                table=row["table_or_figure"], system=row["system"], claim=claim_text(row),
                claimed=claim.text, unit=claim.unit, comparable=cm.comparable or "yes",
                note=cm.note, claim_low=claim.low, claim_high=claim.high)
    if cm.not_measurable or (row["system"] in NOT_HERE and not cm.variants):
        reason = cm.not_measurable or NOT_HERE[row["system"]]
        return [{**head, "variant": "", "verdict": f"not measurable here: {reason}", "n": 0}]
    patterns = cm.variants or SYSTEMS.get(row["system"], ())
    if not patterns:
        return [{**head, "variant": "", "n": 0,
                 "verdict": f"not measured: no variant stands for {row['system']!r}"}]
    variants = ds.variants(patterns)
    if not variants:
        return [{**head, "variant": " | ".join(patterns), "n": 0,
                 "verdict": f"not measured: {NOT_IN_DATASET} (no variant matching "
                            f"{', '.join(patterns)})"}]
    out = []
    for variant in variants:
        for line in _check_variant(ds, cm, claim, variant):
            out.append({**head, **line})
    return out


def coverage(pub: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every published row with the mapping keys that cover it ("" when none does)."""
    pub = published.load() if pub is None else pub
    keys: dict[int, list[str]] = {i: [] for i in pub.index}
    for cm in CLAIMS:
        for i in published_rows(cm, pub).index:
            keys[i].append(cm.key)
    out = pub[["source", "line", "table_or_figure", "metric", "system", "condition",
               "stat"]].copy()
    out["keys"] = [", ".join(keys[i]) for i in pub.index]
    return out


# --- presentation ------------------------------------------------------------------------------

VERDICT_ORDER = ("consistent", "higher than claimed", "lower than claimed", "inconclusive",
                 "not comparable", "not measured", "not measurable here")


def verdict_class(verdict: str) -> str:
    """The verdict's family (the text before any ':' or detail)."""
    for v in VERDICT_ORDER:
        if str(verdict).startswith(v):
            return v
    return str(verdict).split(":")[0]


def tally(check_table: pd.DataFrame) -> dict[str, int]:
    """How many checked lines fall in each verdict family."""
    counts: dict[str, int] = {}
    for v in check_table["verdict"].fillna(""):
        c = verdict_class(v)
        counts[c] = counts.get(c, 0) + 1
    return counts


def headline(check_table: pd.DataFrame, lead: str = "") -> str:
    """One line: the lead text and the verdict tally of a claims-check table."""
    counts = tally(check_table)
    parts = [f"{counts[v]} {v}" for v in VERDICT_ORDER if counts.get(v)]
    tally_text = ", ".join(parts) if parts else "no claims"
    return f"{lead}{'; ' if lead else ''}claims: {tally_text}"


def display_table(check_table: pd.DataFrame) -> pd.DataFrame:
    """The reader-facing columns of a claims-check table."""
    cols = ["claim", "reference", "claimed", "conversion", "variant", "workload", "measured",
            "verdict", "comparable"]
    out = check_table.reindex(columns=cols).astype(object).fillna("")
    out = out.rename(columns={"reference": "source", "claimed": "claimed (as published)",
                              "measured": "measured median [95% CI]"})
    if (out["workload"] == "").all():
        out = out.drop(columns="workload")
    return out.reset_index(drop=True)
