"""cgroups, the one module every platform and experiment uses for them (cgroup v1 as found
here, or the unified v2 hierarchy):

- limits for host processes (:class:`Cgroup`), where a platform has no limits of its own for
  a resource: a bare process, the host process of a Wasm runtime, a QEMU process. A process
  is placed in the group before it execs (through a tiny shell wrapper), so everything it
  forks is inside from the start;
- reading a process's memory from its cgroup (:func:`cgroup_memory`), found through /proc,
  and the peak of a container run to completion from a parent cgroup of its own
  (:func:`group_peak`).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from virtbench.platforms.base import NotSupported

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


# ---- parsers of what the kernel and tools print (unit-tested over captured output) -------

def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as {controller: path}; the v2 (unified) entry is under ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            out[name] = path
    return out


def parse_mountinfo_cgroups(text: str) -> dict[str, Path]:
    """Cgroup mount points from ``/proc/self/mountinfo``: v1 controllers by name, v2 as ``""``."""
    out: dict[str, Path] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, rfields = left.split(), right.split()
        if len(fields) < 5 or len(rfields) < 3:
            continue
        mount, fstype, options = Path(fields[4]), rfields[0], rfields[2].split(",")
        if fstype == "cgroup2":
            out.setdefault("", mount)
        elif fstype == "cgroup":
            for opt in options:
                if opt not in ("rw", "ro") and "=" not in opt:
                    out.setdefault(opt, mount)
    return out


def parse_flat_keyed(text: str) -> dict[str, int]:
    """A cgroup ``key value`` file (``memory.stat``) as {key: int}."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def hybrid_v2_controllers(root: Path = Path("/sys/fs/cgroup")) -> list[str]:
    """Controllers on the v2 hierarchy of a hybrid setup (v1 controllers under ``root``,
    cgroup2 at ``root/unified``); [] on a pure v1 or pure v2 host. crun 1.8 refuses to
    create a container when this is not empty ("cgroups in hybrid mode not supported")."""
    if (root / "cgroup.controllers").exists():
        return []
    try:
        return (root / "unified" / "cgroup.controllers").read_text().split()
    except OSError:
        return []


# ---- cgroup memory of a container ---------------------------------------------------------

@dataclass(frozen=True)
class CgroupMemory:
    """Memory counters of one cgroup, in bytes."""

    version: int
    path: Path
    usage: int
    peak: int | None
    anon: int
    file: int

    @property
    def usage_name(self) -> str:
        return "memory.usage_in_bytes" if self.version == 1 else "memory.current"

    @property
    def peak_name(self) -> str:
        return "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"

    @property
    def anon_name(self) -> str:
        return "memory.stat rss" if self.version == 1 else "memory.stat anon"

    @property
    def file_name(self) -> str:
        return "memory.stat cache" if self.version == 1 else "memory.stat file"


def cgroup_memory(pid: int, proc: Path = Path("/proc")) -> CgroupMemory:
    """The memory cgroup counters of process ``pid`` (cgroup v1 or v2, any cgroup driver)."""
    try:
        groups = parse_proc_cgroup((proc / str(pid) / "cgroup").read_text())
        mounts = parse_mountinfo_cgroups((proc / "self" / "mountinfo").read_text())
    except OSError as exc:
        raise NotSupported(f"cannot read the cgroup of pid {pid}: {exc}") from exc
    if "memory" in groups and "memory" in mounts:
        path = mounts["memory"] / groups["memory"].lstrip("/")
        stat = parse_flat_keyed((path / "memory.stat").read_text())
        peak = path / "memory.max_usage_in_bytes"
        return CgroupMemory(1, path, int((path / "memory.usage_in_bytes").read_text()),
                            int(peak.read_text()) if peak.exists() else None,
                            stat.get("rss", 0), stat.get("cache", 0))
    if "" in groups and "" in mounts:
        path = mounts[""] / groups[""].lstrip("/")
        if (path / "memory.current").exists():
            stat = parse_flat_keyed((path / "memory.stat").read_text())
            peak = path / "memory.peak"
            return CgroupMemory(2, path, int((path / "memory.current").read_text()),
                                int(peak.read_text()) if peak.exists() else None,
                                stat.get("anon", 0), stat.get("file", 0))
    raise NotSupported(f"no memory cgroup found for pid {pid} (cgroups {groups}, "
                       f"mounts {sorted(mounts)})")


# ---- the peak of one container run, from a parent cgroup of its own ----------------------

def peak_group_name() -> str:
    """A fresh parent cgroup name for one container (``virtbench-<pid>-<id>``: the sweep
    removes those of dead runs)."""
    return f"virtbench-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def group_peak(name: str, proc: Path = Path("/proc")) -> tuple[int, str]:
    """The peak memory (bytes) of the top-level cgroup ``name`` and the counter read:
    ``memory.max_usage_in_bytes`` (v1) or ``memory.peak`` (v2). A child cgroup's charges
    count in its parent's, and the parent keeps its peak after the child is removed."""
    mounts = parse_mountinfo_cgroups((proc / "self" / "mountinfo").read_text())
    if "memory" in mounts:
        path = mounts["memory"] / name / "memory.max_usage_in_bytes"
    elif "" in mounts:
        path = mounts[""] / name / "memory.peak"
    else:
        raise NotSupported(f"no memory cgroup hierarchy is mounted (mounts {sorted(mounts)})")
    try:
        return int(path.read_text()), path.name
    except (OSError, ValueError) as exc:
        raise NotSupported(f"cannot read {path}: {exc}") from None


def remove_group(name: str, root: Path = Path("/sys/fs/cgroup")) -> None:
    """Remove the empty cgroup ``name`` (and empty children) from every hierarchy."""
    for top in [root / name, *root.glob(f"*/{name}")]:
        if not top.is_dir():
            continue
        for d in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                d.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError:
            pass
