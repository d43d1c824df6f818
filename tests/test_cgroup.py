"""Host limits through a cgroup and an rlimit, really applied to the hog attacker."""

from __future__ import annotations

import subprocess

import pytest

from virtbench.cgroup import Cgroup, cgroup_mode
from virtbench.experiments.isolation import attacker_state
from virtbench.workloads import build

pytestmark = pytest.mark.integration


def hog(group: Cgroup, *args: str) -> dict[str, str]:
    out = subprocess.run(group.wrap([str(build("hog", "static")), *args]), capture_output=True,
                         text=True, timeout=60)
    return attacker_state(out.stdout.splitlines()[0])


@pytest.fixture
def group():
    if cgroup_mode() is None:
        pytest.skip("no writable cgroup hierarchy on this machine")
    with Cgroup({"pids": 32, "nofile": 64, "cpus": 0.5}) as g:
        yield g
    assert not any(d.exists() for d in g.dirs), "cgroup left behind"


def test_pids_limit_stops_a_fork_attack(group, tmp_path):
    state = hog(group, "proc", "0.5", "500")
    assert state["attacker_limit_hit"] == "1"
    assert 0 < int(state["attacker_taken"]) < 32


def test_nofile_limit_stops_a_descriptor_attack(group, tmp_path):
    state = hog(group, "fd", "0.2", "100000", str(tmp_path))
    assert state["attacker_limit_hit"] == "1"
    assert int(state["attacker_taken"]) < 64


def test_unknown_limit_names_valid_ones():
    with pytest.raises(ValueError, match="valid: .*memory_mib"):
        Cgroup({"disk_iops": 5})
