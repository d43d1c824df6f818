"""Memory of a container from its cgroup (v1 or v2), found through /proc; the peak of a
container run to completion from a parent cgroup of its own."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from virtbench.platforms.base import NotSupported

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
