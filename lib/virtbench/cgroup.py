"""cgroup limits for host processes (cgroup v1 as found here, or the unified v2 hierarchy).

Used where a platform has no limits of its own for a resource: a bare process, the host
process of a Wasm runtime, a QEMU process. A process is placed in the group before it
execs (through a tiny shell wrapper), so everything it forks is inside from the start.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpu", "memory", "pids")
KNOWN_LIMITS = ("memory_mib", "cpus", "pids", "nofile")  # nofile: RLIMIT_NOFILE, not a cgroup


def cgroup_mode() -> str | None:
    """'v1' (per-controller hierarchies), 'v2' (unified), or None when unusable."""
    if all((ROOT / c / "cgroup.procs").exists() for c in V1_CONTROLLERS):
        return "v1" if os.access(ROOT / "memory", os.W_OK) else None
    if (ROOT / "cgroup.controllers").exists():
        return "v2" if os.access(ROOT, os.W_OK) else None
    return None


class Cgroup:
    """A fresh cgroup with ``limits`` (memory_mib, cpus, pids; nofile as an rlimit).

    Removed on close, after killing whatever is still inside.
    """

    def __init__(self, limits: dict) -> None:
        unknown = set(limits) - set(KNOWN_LIMITS)
        if unknown:
            raise ValueError(f"unknown cgroup limits {sorted(unknown)}; valid: {KNOWN_LIMITS}")
        self.mode = cgroup_mode()
        if self.mode is None:
            raise PermissionError("no writable cgroup hierarchy (needs root and cgroupfs)")
        self.name = f"virtbench-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # owner pid: see sweep
        self.limits = dict(limits)
        self.dirs: list[Path] = []
        try:
            self._create()
        except OSError:
            self.close()
            raise

    def _create(self) -> None:
        if self.mode == "v1":
            dirs = [ROOT / c / self.name for c in V1_CONTROLLERS]
            for d in dirs:
                d.mkdir()
                self.dirs.append(d)
            cpu, mem, pids = dirs
            if "memory_mib" in self.limits:
                (mem / "memory.limit_in_bytes").write_text(str(int(self.limits["memory_mib"])
                                                               << 20))
            if "cpus" in self.limits:
                (cpu / "cpu.cfs_period_us").write_text("100000")
                (cpu / "cpu.cfs_quota_us").write_text(str(int(100000 * self.limits["cpus"])))
            if "pids" in self.limits:
                (pids / "pids.max").write_text(str(int(self.limits["pids"])))
            return
        d = ROOT / self.name
        d.mkdir()
        self.dirs.append(d)
        if "memory_mib" in self.limits:
            (d / "memory.max").write_text(str(int(self.limits["memory_mib"]) << 20))
        if "cpus" in self.limits:
            (d / "cpu.max").write_text(f"{int(100000 * self.limits['cpus'])} 100000")
        if "pids" in self.limits:
            (d / "pids.max").write_text(str(int(self.limits["pids"])))

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside this group (joined by the wrapper before exec)."""
        procs = " ".join(str(d / "cgroup.procs") for d in self.dirs)
        ulimit = f"ulimit -n {int(self.limits['nofile'])} || exit 98; " \
            if "nofile" in self.limits else ""
        script = f'{ulimit}for f in {procs}; do echo $$ > "$f" || exit 97; done; exec "$@"'
        return ["/bin/sh", "-c", script, "vb-cgroup", *argv]

    def describe(self) -> str:
        return f"cgroup {self.mode} {self.name}: " + ", ".join(
            f"{k}={v}" for k, v in sorted(self.limits.items()))

    def close(self) -> None:
        """Kill what is left in the group, then remove it."""
        for d in self.dirs:
            procs = d / "cgroup.procs"
            for _ in range(50):
                try:
                    pids = [int(p) for p in procs.read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                time.sleep(0.02)
            try:
                d.rmdir()
            except OSError:
                shutil.rmtree(d, ignore_errors=True)

    def __enter__(self) -> Cgroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
