"""The memory, disk and startup experiments measure through a platform's primitives alone.

A fake platform offers only the primitives (instances with host processes or a cgroup,
shared processes, artifacts, timed starts, a run to completion) over canned /proc and cgroup
readings: pure logic, no process runs. The real platforms are measured through the same
functions in test_native.py, test_docker.py, test_wasm.py and test_vm.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from virtbench import process
from virtbench.cgroup import CgroupMemory
from virtbench.experiments.base import Params
from virtbench.experiments.disk import disk_rows, measure_disk
from virtbench.experiments.memory import measure_memory
from virtbench.experiments.shared import mem_instance
from virtbench.experiments.startup import measure_startup, startup_rows
from virtbench.platforms.base import (
    Artifact,
    Availability,
    GuestMeminfo,
    Handle,
    Platform,
    RunOutcome,
    Timing,
    Workload,
)

KIB = 1024
#: canned /proc/<pid>/status of the fake's processes (KiB): pid -> fields
STATUS = {
    10: {"VmRSS": 2 * KIB, "VmHWM": 3 * KIB, "Pss": KIB},  # the instance's process
    11: {"VmRSS": 12 * KIB, "Pss": 6 * KIB},  # outside the cgroup: its shim
    20: {"VmRSS": 40 * KIB},  # a shared daemon
}


class Fake(Platform):
    """Offers the primitives only; its processes' readings are canned (``STATUS``)."""

    family = "native"
    variant = "fake/primitives"
    pid = 10  # the host process of each instance

    def __init__(self, *, cgroup: bool = False, guest_fails: int | None = None) -> None:
        self.cgroup = cgroup
        self.guest_fails = guest_fails
        self.started: list[tuple[list[str], dict]] = []

    def check(self) -> Availability:
        return Availability(True)

    @contextmanager
    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0, count: int = 1) -> Iterator[Handle]:
        assert workload.name == "mem"
        self.started.append((list(args), {"limits": limits, "count": count}))
        size = (limits or {}).get("memory_mib")
        if size is not None and size == self.guest_fails:
            raise RuntimeError(f"guest of {size} MiB hung")
        pid = 100 + count if self.instances_per_process else self.pid
        info = {"network": "bridge"} if self.cgroup else {}
        yield Handle([10, 11] if self.cgroup else [pid], info=info,
                     cgroup_pid=10 if self.cgroup else None, who="the fake's process",
                     guest_meminfo=self.meminfo(int(args[0]), size))

    def meminfo(self, mib: int, size: int | None) -> GuestMeminfo | None:
        """The guest kernel's own accounting (None: no guest kernel)."""
        return None

    def shared_processes(self) -> dict[str, int]:
        return {"faked": 20}

    def artifacts(self) -> list[Artifact]:
        return [Artifact("workload", 1000, "the noop executable", workload="noop"),
                Artifact("engine", 5000, "the engine")]

    def run(self, workload: Workload, args: Sequence[str] = (), *,
            timeout: float = 300.0) -> RunOutcome:
        return RunOutcome(2_500_000, "fork to wait4", 0, "", peak_rss_kib=2048,
                          rss_of="the workload process")




class Cli(Fake):
    """A fake engine that runs one instance per host process."""

    variant = "fake/cli"
    family = "wasm"
    engine_process = True

    @property
    def pid(self) -> int:
        return 30 + len(self.started)  # each instance its own process: 8 MiB PSS each


class Engine(Fake):
    """A fake engine that holds several instances in one process."""

    variant = "fake/engine"
    family = "wasm"
    engine_process = True
    instances_per_process = True


class Guest(Fake):
    """A fake whose instances boot a guest of a given size."""

    variant = "fake/guest"
    family = "vm"
    guest_memory_mib = 256

    def meminfo(self, mib: int, size: int | None) -> GuestMeminfo:
        """A guest of ``size`` MiB less 8 MiB the kernel reserved; 20 MiB used plus mib."""
        total = ((size or self.guest_memory_mib) - 8) * KIB
        return GuestMeminfo(total, total - (20 + mib) * KIB)


@pytest.fixture(autouse=True)
def canned_readings(monkeypatch):
    def status(pid: int) -> dict:
        if 30 < pid < 40:
            return {"VmRSS": 20 * KIB, "VmHWM": 25 * KIB, "Pss": 8 * KIB}
        if pid >= 100:  # an engine's process holding pid - 100 instances: 16 MiB each
            return {"VmRSS": (30 + 16 * (pid - 100)) * KIB, "VmHWM": 90 * KIB,
                    "Pss": 28 * KIB}
        return STATUS[pid]

    monkeypatch.setattr(mem_instance, "read_proc_status", status)
    monkeypatch.setattr(process, "read_proc_status", status)  # accounting.read_memory's
    monkeypatch.setattr(mem_instance, "cgroup_memory", lambda pid: CgroupMemory(
        2, Path("/sys/fs/cgroup/system.slice/docker-0123456789abcdef.scope"), 5 << 20, 6 << 20,
        3 << 20, 1 << 20))
    monkeypatch.setattr(mem_instance, "program_name", lambda pid: "containerd-shim-runc-v2")
    monkeypatch.setattr(mem_instance, "SETTLE_S", 0.0)


def _by(rows) -> dict:
    return {(m.metric, m.conditions.get("state", ""), m.conditions.get("guest_memory_mib", "")):
            m for m in rows}


def test_memory_of_a_process_instance_comes_from_its_host_processes():
    plat = Fake()
    rows = _by(measure_memory(plat, Workload("mem"), Params(quick=True)))
    assert plat.started[0][0] == ["0", mem_instance.IDLE_HOLD_MS]  # idle first, then loaded
    assert plat.started[1][0][0] == "16"
    assert set(rows) == {(m, s, "") for m in ("rss", "pss", "faked_rss")
                         for s in ("idle", "loaded")}
    assert rows["rss", "idle", ""].value == 2 and rows["pss", "idle", ""].value == 1
    assert rows["faked_rss", "idle", ""].value == 40
    assert rows["rss", "loaded", ""].tags == {"mem_mib": "16"}
    assert rows["rss", "loaded", ""].description == \
        "VmRSS of the fake's process, holding 16 MiB"
    assert all(m.unit == "MiB" for m in rows.values())


def test_memory_of_a_container_comes_from_its_cgroup_and_the_shim_outside_it():
    rows = {m.metric: m for m in mem_instance.measure_mem(Fake(cgroup=True), 0)}
    assert set(rows) == {"cgroup_usage", "cgroup_anon", "cgroup_file", "cgroup_peak",
                         "shim_rss", "shim_pss", "total", "faked_rss"}
    assert rows["cgroup_usage"].value == 5 and rows["cgroup_peak"].value == 6
    assert rows["shim_rss"].value == 12
    assert rows["total"].value == pytest.approx(5 + 12)
    assert all(m.tags == {"cgroup": "v2", "network": "bridge"} for m in rows.values())
    assert "memory.current of the container's cgroup (docker-01234" in \
        rows["cgroup_usage"].description


def test_a_guest_is_read_at_each_size_and_a_failed_size_is_a_reason():
    plat = Guest(guest_fails=512)
    rows = _by(mem_instance.measure_mem(plat, 0))
    assert [kw["limits"] for _, kw in plat.started] == [{"memory_mib": n}
                                                        for n in (128, 256, 512)]
    assert rows["rss", "", "128"].value == 2
    assert rows["rss", "", "256"].tags == {"guest_memory_mib": "256"}
    failed = rows["rss", "", "512"]
    assert failed.value is None and "guest of 512 MiB hung" in failed.reason
    assert failed.reason == rows["guest_used", "", "512"].reason
    plat.userland = "debian"  # other userlands: the default guest size only
    assert {k[2] for k in _by(mem_instance.measure_mem(plat, 0))} == {"256"}


def test_a_guest_also_gives_its_kernels_own_accounting_and_other_families_do_not():
    rows = _by(measure_memory(Guest(), Workload("mem"), Params(quick=True)))
    idle, loaded = rows["guest_used", "idle", "128"], rows["guest_used", "loaded", "128"]
    assert (idle.value, loaded.value) == (20, 36)  # MemTotal - MemAvailable, MiB
    assert loaded.tags == {"guest_memory_mib": "128", "guest_mem_total_kib": str(120 * KIB),
                           "guest_mem_available_kib": str(84 * KIB), "mem_mib": "16"}
    assert "the guest kernel's accounting, not the host's" in idle.description
    assert {k[2] for k in rows if k[0] == "guest_used"} == {"128", "256", "512"}
    assert not [k for k in _by(measure_memory(Fake(), Workload("mem"), Params(quick=True)))
                if k[0] == "guest_used"]


def test_an_engine_gives_its_peak_and_the_marginal_memory_of_one_more_instance():
    rows = {m.metric: m for m in mem_instance.measure_mem(Engine(), 0)}
    assert {"rss", "pss", "peak_rss", "rss_per_instance"} <= set(rows)
    slope = rows["rss_per_instance"]
    assert slope.value == pytest.approx(16.0)
    assert slope.tags["instances"] == str(mem_instance.PACKED_COUNTS[-1])
    assert float(slope.tags["ci_low"]) <= 16.0 <= float(slope.tags["ci_high"])
    assert rows["rss"].value == 30 + 16 and rows["peak_rss"].value == 90  # one instance


def test_an_engine_of_one_instance_per_process_gives_the_summed_pss_of_concurrent_ones():
    plat = Cli()
    rows = {m.metric: m for m in mem_instance.measure_mem(plat, 16)}
    assert len(plat.started) == mem_instance.MARGINAL_INSTANCES  # all live at once
    assert rows["pss_per_instance"].value == pytest.approx(8.0)
    assert (rows["rss"].value, rows["pss"].value, rows["peak_rss"].value) == (20, 8, 25)
    assert rows["faked_rss"].value == 40
    assert "(each in its own host process: the fake's process)" in \
        rows["pss_per_instance"].description


def test_disk_rows_name_a_metric_for_each_kind_of_artifact():
    rows = disk_rows(Fake())
    assert [(m.metric, m.value, m.unit, m.workload) for m in rows] == [
        ("artifact_size", 1000, "B", "noop"), ("engine_size", 5000, "B", None)]
    assert measure_disk(Fake(), Workload("noop"), Params()) == rows  # no other userland
    with pytest.raises(ValueError, match="unknown artifact kind 'image'; valid: workload"):
        Artifact("image", 1, "an image")


def test_startup_without_a_start_sequence_times_a_run_to_completion():
    rows = {m.metric: m for m in measure_startup(Fake(), Workload("noop"), Params())}
    assert rows["startup"].value == 2.5 and rows["startup"].unit == "ms"
    assert rows["startup"].description == "fork to wait4"
    assert rows["peak_rss"].value == 2 and rows["peak_rss"].unit == "MiB"
    assert rows["peak_rss"].description == "peak RSS (wait4 ru_maxrss) of the workload process"


def test_timed_starts_become_rows_with_their_conditions_peak_and_saved_state():
    class Sequenced(Fake):
        def timed_starts(self, workload: Workload) -> list[Timing]:
            return [
                Timing("cold", 7_000_000, "load to exit", conditions={"network": "none"},
                       tags={"network": "none"}),
                Timing("process", 9_000_000, "spawn to exit", peak_rss_kib=4096,
                       rss_of="the engine process"),
                Timing("warm", None, "", reason="not supported: no stdin on a restart"),
                Timing("snapshot_save", 3_000_000, "stop to completed", state_bytes=1 << 20,
                       state_of="the saved state"),
            ]

    rows = startup_rows(Sequenced(), Workload("noop"))
    assert [(m.metric, m.value, m.unit) for m in rows] == [
        ("startup_cold", 7.0, "ms"), ("startup_process", 9.0, "ms"), ("peak_rss", 4.0, "MiB"),
        ("startup_warm", None, "ms"), ("snapshot_save", 3.0, "ms"),
        ("snapshot_size", 1 << 20, "B")]
    assert rows[0].conditions == {"network": "none"} and rows[0].tags == {"network": "none"}
    assert rows[3].reason == "not supported: no stdin on a restart"
    assert rows[5].description == "size of the saved state"
    with pytest.raises(ValueError, match="unknown timing kind 'boot'"):
        Timing("boot", 1, "")
