"""cpu: the run time of deterministic compute kernels, from the host and inside the workload.

Each kernel of the ``cpu`` workload (integer, floating point, memory, branches, calls,
system calls) runs in an instance of its own; its checksum is checked against the static
native build's, so every platform did the same work.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from virtbench import platforms
from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Option, Params
from virtbench.metric import VALUES, Metric
from virtbench.platforms.base import WORKDIR, NotSupported, Platform, Workload
from virtbench.platforms.native import BASELINE
from virtbench.store.schema import Measurement
from virtbench.workloads import as_number

NAME = "cpu"
_MS = "ms"

METRICS = (
    Metric("wall_time", NAME, _MS, "lower",
           "run time of one cpu kernel seen from the host: the platform's whole run "
           "interval (launch to exit)", ("kernel",)),
    Metric("compute_time", NAME, _MS, "lower",
           "one cpu kernel's own work, timed inside the workload with CLOCK_MONOTONIC "
           "(excludes start-up and exit)", ("kernel",)),
)


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
assert tuple(k.name for k in KERNELS) == VALUES["kernel"]
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


def native_checksum(args: Sequence[str]) -> str:
    """The checksum the static native build prints for ``args`` (run once per process)."""
    key = tuple(args)
    if key not in _NATIVE_CHECKSUMS:
        with platforms.create(BASELINE) as ref:
            if not ref.availability.available:
                raise NotSupported(f"no reference checksum: {BASELINE} is not available "
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
        if plat.variant == BASELINE:
            _NATIVE_CHECKSUMS.setdefault(tuple(args), got)
        want = native_checksum(args)
        if got != want:
            raise RuntimeError(f"checksum {got} of kernel {kernel.name} (size {size}) differs "
                               f"from {BASELINE}'s {want}: the run did not do the same work")
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


EXPERIMENT = Experiment(
    NAME, "run time of deterministic compute kernels (integer, floating point, memory, "
    "branches, calls, system calls), each run's checksum checked against native",
    measure_cpu,
    workloads=("cpu",), reps=10, quick_reps=1, warmup=1, quick_warmup=0,
    options={**{k.option: Option(int, 1, k.high, f"{k.name} kernel: {k.unit} (default "
                                 f"{k.full}, quick {k.quick})") for k in KERNELS},
             "cpu_chase_mib": Option(int, 1, 1024, f"chase kernel: MiB of its buffer "
                                     f"(default {CHASE_MIB}; a VM guest has 256 MiB)")},
    quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS, primary=tuple((m, {"kernel": k}) for k in VALUES["kernel"]
                                   for m in ("wall_time", "compute_time")))
