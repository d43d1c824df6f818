"""Host-side accounting of instances: CPU time of a set of processes, host memory available."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from virtbench.cgroup import cgroup_memory, parse_proc_cgroup


def cpu_ns(pids: Iterable[int]) -> int:
    """On-CPU nanoseconds of every thread of ``pids`` (``/proc/<pid>/task/*/schedstat``).

    Processes or threads that have exited are skipped; their time is not counted.
    """
    total = 0
    for pid in pids:
        for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            try:
                total += int(stat.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
    return total


def meminfo() -> dict[str, int]:
    """/proc/meminfo as ``{field: KiB}``."""
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if rest.split():
            out[key] = int(rest.split()[0])
    return out


def mem_available_kib() -> int:
    """The host's ``MemAvailable`` (KiB)."""
    return meminfo()["MemAvailable"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class MemoryReading:
    """Memory of one instance's host processes at one moment, in MiB.

    ``rss``/``hwm``/``pss``: summed VmRSS, VmHWM and PSS of the processes; ``cgroup``: the
    usage of the instance's own cgroup (None without one); ``outside_rss``: summed VmRSS of
    the processes outside that cgroup (a container's shim and docker-proxy; processes
    in the same memory cgroup, such as gVisor's Gofer, count through its usage).
    """

    rss: float
    hwm: float
    pss: float
    cgroup: float | None = None
    outside_rss: float = 0.0

    @property
    def footprint(self) -> float | None:
        """The cgroup's usage plus the RSS of the processes outside it (None without one)."""
        return None if self.cgroup is None else self.cgroup + self.outside_rss


def read_memory(pids: Iterable[int], cgroup_pid: int | None = None) -> MemoryReading:
    """Sum the memory counters of ``pids``; read the cgroup of ``cgroup_pid`` if given.

    Processes that have exited count 0. The cgroup is the memory cgroup of ``cgroup_pid``
    (cgroup v1 or v2): its usage covers every process in it, page cache included.
    """
    from virtbench.process import read_proc_status

    pids = list(dict.fromkeys(pids))
    statuses = {p: read_proc_status(p) for p in pids}
    rss = sum(s.get("VmRSS", 0) for s in statuses.values()) / 1024
    hwm = sum(s.get("VmHWM", 0) for s in statuses.values()) / 1024
    pss = sum(s.get("Pss", 0) for s in statuses.values()) / 1024
    if cgroup_pid is None:
        return MemoryReading(rss, hwm, pss)
    usage = cgroup_memory(cgroup_pid).usage / (1 << 20)
    group = memory_group(cgroup_pid)
    outside = sum(s.get("VmRSS", 0) for p, s in statuses.items()
                  if p != cgroup_pid and memory_group(p) != group) / 1024
    return MemoryReading(rss, hwm, pss, usage, outside)


def memory_group(pid: int) -> str | None:
    """The memory cgroup of ``pid`` (v1 ``memory`` or the v2 path; None if it is gone):
    processes that share it are counted by its usage, not as outside it."""
    try:
        groups = parse_proc_cgroup(Path(f"/proc/{pid}/cgroup").read_text())
    except OSError:
        return None
    return groups.get("memory", groups.get(""))
