"""Leftovers of killed runs: find them by their marker and remove those whose owner is dead.

Everything the suite starts carries a marker naming its owner, the harness process:

- processes: ``VIRTBENCH_RUN=<pid>`` in their environment (:func:`virtbench.process.child_env`)
- cgroups: ``virtbench-<pid>-<id>`` (:class:`virtbench.cgroup.Cgroup`)
- temporary files: under ``<tmp>/vb-run-<pid>/``, the run's own temporary directory
  (:func:`begin` points :mod:`tempfile` there)
- QEMU processes: also by their command line (a kernel or initramfs from the suite's cache)
- Docker: containers labelled ``virtbench.pid`` (removed by the engine when acquired) and
  a private dockerd none of whose registered users is alive

:func:`begin`, called when a run starts, removes what dead owners left and says so on stderr.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from virtbench.cgroup import ROOT as CGROUP_ROOT
from virtbench.paths import cache_dir
from virtbench.process import RUN_ENV

RUN_DIR_PREFIX = "vb-run-"
_CGROUP_NAME = re.compile(r"^virtbench-(\d+)-[0-9a-f]+$")
_OLD_CGROUP = re.compile(r"^virtbench-[0-9a-f]{12}$")  # names without an owner (older runs)
OLD_CGROUP_AGE_S = 3600.0
_state: dict[str, str] = {}


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def owner_of(environ: bytes) -> int | None:
    """The owner pid in a process's ``/proc/<pid>/environ`` (NUL-separated), if marked."""
    key = RUN_ENV.encode() + b"="
    for entry in environ.split(b"\0"):
        if entry.startswith(key) and entry[len(key):].isdigit():
            return int(entry[len(key):])
    return None


def _processes() -> list[int]:
    """Live processes of dead owners: marked ones, and orphaned QEMUs of the suite."""
    me, found = os.getpid(), []
    vm_cache = str(cache_dir() / "vm")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            owner = owner_of((entry / "environ").read_bytes())
            if owner is None and (entry / "comm").read_text().startswith("qemu-system"):
                cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
                if vm_cache in cmd and (entry / "stat").read_text().rpartition(")")[2].split()[1] \
                        == "1":
                    owner = 0  # reparented to init: its harness is gone
        except OSError:
            continue
        if owner is not None and owner != me and not pid_alive(owner) and \
                pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _kill(pids: list[int]) -> list[str]:
    removed = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace").strip()
            os.kill(pid, signal.SIGKILL)
            removed.append(f"process {pid} ({cmd[:80]})")
        except (OSError, ProcessLookupError):
            pass
    return removed


def _cgroup_dirs() -> list[Path]:
    """``virtbench-*`` cgroups in every v1 hierarchy (a container's parent cgroup is made in
    all of them), or at the top of the unified one."""
    v1 = (CGROUP_ROOT / "memory").is_dir()
    parents = [p for p in CGROUP_ROOT.iterdir() if p.is_dir()] if v1 else [CGROUP_ROOT]
    return [d for p in parents for d in p.glob("virtbench-*") if d.is_dir()]


def _cgroups() -> list[str]:
    """Remove ``virtbench-*`` cgroups of dead owners (after killing what is inside)."""
    removed = []
    for d in _cgroup_dirs():
        match = _CGROUP_NAME.match(d.name)
        if match:
            if pid_alive(int(match.group(1))):
                continue
        elif not _OLD_CGROUP.match(d.name) or time.time() - d.stat().st_mtime < OLD_CGROUP_AGE_S:
            continue
        for _ in range(50):
            try:
                pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
            except OSError:
                break
            if not pids:
                break
            _kill(pids)
            time.sleep(0.02)
        try:
            d.rmdir()
            removed.append(f"cgroup {d}")
        except OSError:
            pass
    return removed


def _temp_dirs() -> list[str]:
    """Remove ``<tmp>/vb-run-<pid>`` directories of dead owners."""
    removed = []
    for d in Path(_system_tmp()).glob(f"{RUN_DIR_PREFIX}*"):
        pid = d.name.removeprefix(RUN_DIR_PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"temporary directory {d}")
    return removed


def _docker() -> list[str]:
    """Stop a private dockerd whose registered users are all dead (and restore the host);
    never one this process is registered on."""
    from virtbench.platforms.docker.engine import DockerEngine

    root = cache_dir() / "docker"
    if not (root / "dockerd.pid").is_file():
        return []
    engine = DockerEngine(root)
    try:
        pid = int(engine.pidfile.read_text().strip())
    except (OSError, ValueError):
        return []
    if (engine.users_dir / str(os.getpid())).exists():
        return []  # this process uses it (a run inside a session that holds the engine)
    if not pid_alive(pid) or engine.other_users():
        return []
    engine.stop_daemon()
    return [f"private dockerd {pid} (no live user)"]


def sweep() -> list[str]:
    """Remove every leftover of dead owners; return what was removed."""
    removed = _kill(_processes())
    if removed:
        time.sleep(0.1)  # let the kernel release what the killed processes held
    removed += _cgroups() + _temp_dirs() + _docker()
    return removed


def _system_tmp() -> str:
    return _state.get("tmp") or tempfile.gettempdir()


def begin() -> Path:
    """Sweep, report on stderr, and give this process its own temporary directory."""
    for item in sweep():
        print(f"virtbench: removed a leftover of an earlier run: {item}", file=sys.stderr)
    if "run_dir" not in _state:
        _state["tmp"] = tempfile.gettempdir()
        run_dir = Path(_state["tmp"]) / f"{RUN_DIR_PREFIX}{os.getpid()}"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        _state["run_dir"] = str(run_dir)
        tempfile.tempdir = str(run_dir)
        atexit.register(shutil.rmtree, run_dir, True)
    return Path(_state["run_dir"])
