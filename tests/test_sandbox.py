"""docker/runsc (gVisor) and docker/crun: real containers on the suite's shared engine (issue 22).

Each test skips with the variant's own doctor reason when it cannot run here (e.g. crun on a
host with cgroup v1 + v2 hybrid, or a shared dockerd started without the runtime).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from virtbench import platforms
from virtbench.accounting import memory_group
from virtbench.cgroup import hybrid_v2_controllers
from virtbench.experiments.base import Params
from virtbench.experiments.redis import measure_redis, redis_workloads
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.sysbench import measure_sysbench, sysbench_workloads
from virtbench.platforms.base import Workload
from virtbench.platforms.docker.daemonsetup import RUNTIMES, runtime_config
from virtbench.platforms.docker.images import busybox_spec
from virtbench.process import program_name

# ---- pure logic ---------------------------------------------------------------------------


def test_runtime_config_registers_only_installed_runtimes(tmp_path: Path) -> None:
    fake = tmp_path / "runsc"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    conf = runtime_config(str(tmp_path))["runtimes"]
    assert set(conf) == {"runsc"}  # no crun on that path
    assert conf["runsc"] == {"path": str(fake), "runtimeArgs": list(RUNTIMES["runsc"][1])}
    assert "--platform=ptrace" in conf["runsc"]["runtimeArgs"]


def test_hybrid_cgroup_controllers_are_read_from_the_unified_mount(tmp_path: Path) -> None:
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    assert hybrid_v2_controllers(tmp_path) == ["hugetlb"]
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")  # pure v2: not hybrid
    assert hybrid_v2_controllers(tmp_path) == []


def test_runsc_is_a_sandboxed_container_and_crun_a_container() -> None:
    assert platforms.class_of("docker/runsc") == platforms.SANDBOXED_CONTAINER
    assert platforms.class_of("docker/crun") == platforms.class_of("docker/runc") == "container"
    assert platforms.family_of("docker/runsc") == "docker"  # every container experiment
    with pytest.raises(ValueError, match="docker/runsc"):
        platforms.class_of("docker/gvisor")


# ---- real containers ----------------------------------------------------------------------

def _open(variant: str):
    if os.geteuid() != 0:
        pytest.skip("the suite's private dockerd needs root")
    plat = platforms.create(variant)
    avail = plat.availability
    if not avail.available:
        plat.close()
        pytest.skip(f"{variant} not available: {avail.reason} (fix: {avail.fix})")
    return plat


def _proc_version(plat) -> str:
    out = plat.run_timed(plat.ensure_image(busybox_spec()), ["/bin/cat", "/proc/version"],
                         "none")
    assert out.status == 0, out.stderr
    return out.stdout


@pytest.mark.integration
def test_runsc_runs_workloads_on_gvisors_own_kernel_and_counts_its_processes() -> None:
    plat = _open("docker/runsc")
    try:
        assert "runtime runsc" in plat.availability.version
        assert "--platform=ptrace" in plat.availability.version
        out = plat.run(Workload("noop"))
        assert out.returncode == 0 and out.result["workload"] == "noop"
        # the container sees gVisor's kernel, not the host's
        assert os.uname().release not in _proc_version(plat)

        with plat.instance(Workload("mem"), ["0", "5000"]) as handle:
            names = {program_name(p) for p in handle.pids}
            assert {"runsc-sandbox", "runsc-gofer", "containerd-shim-runc-v2"} <= names
            group = memory_group(handle.cgroup_pid)
            outside = [p for p in handle.pids if memory_group(p) != group]
            assert [program_name(p) for p in outside] == ["containerd-shim-runc-v2"]

        idle = {m.metric: m.value for m in measure_mem(plat, 0)}
        loaded = {m.metric: m.value for m in measure_mem(plat, 16)}
        assert idle["total"] == pytest.approx(idle["cgroup_usage"] + idle["shim_rss"])
        assert loaded["cgroup_usage"] - idle["cgroup_usage"] >= 12  # the 16 MiB it touched

        quick = Params(quick=True, options={"sysbench_time": 1, "redis_requests": 1000})
        bench = {m.metric: m.value for m in measure_sysbench(plat, sysbench_workloads()[0],
                                                             quick)}
        assert bench["events_per_s"] > 0 and bench["memory_mib_per_s"] > 0
        redis = {(m.metric, m.conditions["pipeline"], m.conditions["command"]): m.value
                 for m in measure_redis(plat, redis_workloads()[0], quick)}
        assert redis["requests_per_s", "16", "GET"] > 0 and redis["latency_p50", "1", "SET"] > 0
    finally:
        plat.close()


@pytest.mark.integration
def test_crun_runs_a_container_on_the_hosts_kernel() -> None:
    plat = _open("docker/crun")
    try:
        assert "runtime crun" in plat.availability.version
        out = plat.run(Workload("noop"))
        assert out.returncode == 0 and out.result["workload"] == "noop"
        assert os.uname().release in _proc_version(plat)
    finally:
        plat.close()
