"""What the Docker engine code reads and does through ``/proc`` and cgroups: live processes,
their command lines and parents, mount points, and stopping a process or a cgroup's."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from virtbench.process import status_value

STOP_TIMEOUT_S = 30.0


def mount_points(mountinfo: str) -> list[str]:
    """The mount points listed in ``/proc/self/mountinfo`` (octal escapes decoded)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                 fields[4]))
    return points


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def find_processes(name: str) -> list[int]:
    """Pids of processes whose command name (``/proc/<pid>/comm``) is ``name``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == name[:15]:
            pids.append(int(entry.name))
    return sorted(pids)


def parent_pid(pid: int) -> int | None:
    """The parent of ``pid`` (None when it is gone)."""
    return status_value(pid, "PPid")


def read_value(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def kill_cgroup(group: Path) -> None:
    """Kill every process of a cgroup (v2 ``cgroup.kill``, else each pid in it)."""
    try:
        if (group / "cgroup.kill").exists():
            (group / "cgroup.kill").write_text("1")
            return
        pids = (group / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass


def terminate(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM ``pid`` and reap it; SIGKILL its process group if it has not ended in
    ``timeout`` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return
        except ChildProcessError:
            if not pid_alive(pid):
                return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
