"""SQLite's speedtest1 on every platform, its database on the platform's own file path.

The database is ``{workdir}/speedtest1.db``: a host directory natively, the container's
overlay fs (``docker/runc``) or a bind mount (``docker/runc-host``), a WASI preopen (the
in-memory sandbox of wasmer-sdk, marked ``fs=memory``), the guest's ext4 virtio disk in a
VM. ``--verify`` makes speedtest1 hash every result value; each run's count and hash must
equal the static native build's, so every target did the same work on the same rows.
"""

from __future__ import annotations

from virtbench import platforms
from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Option, Params
from virtbench.metric import Metric
from virtbench.platforms.base import WORKDIR, NotSupported, Platform, Workload
from virtbench.platforms.native import BASELINE
from virtbench.store.schema import Measurement
from virtbench.workloads.speedtest1 import parse_speedtest1

NAME = "speedtest1"
_MS = "ms"

METRICS = (
    Metric("case_time", NAME, _MS, "lower",
           "one speedtest1 test case, timed by speedtest1 itself (its printed seconds, "
           "1 ms resolution), the database in the instance's work directory",
           ("case", "fs")),
    Metric("total_time", NAME, _MS, "lower",
           "speedtest1's TOTAL: the sum of its test cases as it timed them",
           ("fs",)),
    Metric("wall_time", NAME, _MS, "lower",
           "one speedtest1 run seen from the host: the platform's whole run interval "
           "(launch to exit)", ("fs",)),
)


#: --size of a run: about 0.5 s natively at the default (about 10 s under the Wasm JITs,
#: 30 s under Pulley), so that the repetitions of every variant add about a quarter of an
#: hour to a full campaign; quick runs stay well under a minute per cell under TCG
FULL_SIZE, QUICK_SIZE = 20, 5
TIMEOUT_S = 900.0
_REFERENCE: dict[int, tuple[int | None, str]] = {}


def speedtest1_args(size: int) -> list[str]:
    return ["--size", str(size), "--verify", f"{WORKDIR}/speedtest1.db"]


def reference_verification(size: int) -> tuple[int | None, str]:
    """(result count, hash) of the static native build at ``size`` (one run per process)."""
    if size not in _REFERENCE:
        with platforms.create(BASELINE) as ref:
            if not ref.availability.available:
                raise NotSupported(f"no reference run: {BASELINE} is not available "
                                   f"({ref.availability.reason})")
            got = parse_speedtest1(ref.run(Workload("speedtest1"), speedtest1_args(size),
                                           timeout=TIMEOUT_S).stdout)
            _REFERENCE[size] = (got.results, got.hash)
    return _REFERENCE[size]


def measure_speedtest1(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """One speedtest1 run: every test case's time, the total and the host's run time."""
    if plat.cpu_measured_by:
        raise NotSupported(f"same machine code as {plat.cpu_measured_by}; speedtest1 is "
                           "measured there")
    size = int(params.options.get("speedtest1_size", QUICK_SIZE if params.quick else FULL_SIZE))
    out = plat.run(wl, speedtest1_args(size), timeout=TIMEOUT_S)
    got = parse_speedtest1(out.stdout)
    if plat.variant == BASELINE:
        _REFERENCE.setdefault(size, (got.results, got.hash))
    want = reference_verification(size)
    if (got.results, got.hash) != want:
        raise RuntimeError(f"speedtest1 --size {size} verified {got.results} result values "
                           f"with hash {got.hash}, {BASELINE} {want[0]} with {want[1]}: "
                           "the run did not compute the same rows")
    fs = {"fs": "memory"} if plat.file_system == "memory" else {}
    where = ("in the runtime's in-memory file system (not a host directory): not comparable"
             if fs else "in the instance's work directory")
    tags = {"size": str(size), "sqlite": got.sqlite, "results": str(got.results),
            "hash": got.hash}
    ms = [Measurement("case_time", seconds * 1e3, "ms",
                      f"speedtest1 --size {size} --verify case {number} ({name}), timed by "
                      f"speedtest1 (1 ms resolution); database {where}",
                      tags={**tags, "case_name": name}, conditions={"case": number, **fs})
          for number, name, seconds in got.cases]
    ms.append(Measurement("total_time", got.total_s * 1e3, "ms",
                          f"speedtest1 --size {size} --verify TOTAL of {len(got.cases)} cases "
                          f"(SQLite {got.sqlite}); database {where}", tags=tags,
                          conditions=fs))
    ms.append(Measurement("wall_time", out.wall_ns / 1e6, "ms",
                          f"{out.interval}; speedtest1 --size {size} --verify", tags=tags,
                          conditions=fs))
    return ms


EXPERIMENT = Experiment(
    NAME, "SQLite's speedtest1 benchmark (per test case and total), the database on "
    "each platform's own file path; each run's verification hash checked against native",
    measure_speedtest1, workloads=("speedtest1",), reps=6, quick_reps=1, warmup=1,
    quick_warmup=0,
    options={"speedtest1_size": Option(int, 1, 10_000, f"speedtest1 --size (default "
                                       f"{FULL_SIZE}, quick {QUICK_SIZE})")},
    quick_skips=QUICK_SKIPS_TCG_PC,
    metrics=METRICS,
    primary=(("total_time", {}), ("wall_time", {})))
