"""Host-side accounting of instances: CPU time of a set of processes, host memory available."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from pathlib import Path


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
