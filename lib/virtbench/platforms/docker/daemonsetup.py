"""What a private ``dockerd`` needs from the host, and why one failed: where the daemons are,
the memory cgroup, a working iptables, the extra OCI runtimes to register, and the fix that
goes with a start-up failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

SYSTEM_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")  # searched after PATH for the daemons
#: OCI runtimes registered with a private dockerd besides runc: name -> (executable, its
#: arguments, Debian package). gVisor runs on its ptrace platform: its kvm platform needs a
#: usable /dev/kvm (on this host's nested KVM, ``runsc --platform=kvm do`` hangs at boot).
#: Its network is ``host`` (the Sentry's sockets are host sockets in the container's network
#: namespace): Debian's runsc 20221219 refuses its own netstack ("cannot run with network
#: enabled in root network namespace") on kernels that show net.core.rmem_default in every
#: network namespace, the file it takes as the mark of the root one.
RUNTIMES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "runsc": ("runsc", ("--platform=ptrace", "--network=host"), "runsc"),
    "crun": ("crun", (), "crun"),
}


class EngineError(RuntimeError):
    """The engine cannot be used; ``reason`` says exactly why and ``fix`` what to do."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


def search_path() -> str:
    """``$PATH`` followed by the system directories where Debian puts the daemons."""
    return os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRS])


def dockerd_failure(log_text: str) -> str:
    """Why a dockerd could not start, from its log.

    dockerd ends a failed start with a plain ``failed to start daemon: ...`` line (which may
    wrap onto a continuation line); otherwise the last ``level=fatal`` or ``level=error``
    message is the best account; failing that, the last line.
    """
    lines = [line.rstrip() for line in log_text.splitlines() if line.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("failed to start daemon"):
            rest = [x.strip() for x in lines[i + 1:] if not x.startswith("time=")]
            return " ".join([lines[i], *rest])
    for level in ("fatal", "error"):
        for line in reversed(lines):
            if f"level={level}" in line:
                msg = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
                return msg.group(1).replace('\\"', '"') if msg else line
    return lines[-1] if lines else "(empty log)"


def explain_failure(reason: str) -> str:
    """The fix that goes with a dockerd start-up failure message."""
    low = reason.lower()
    if "iptables" in low or "nat chain" in low:
        return ("iptables does not work for dockerd; on Debian 12 try "
                "`update-alternatives --set iptables /usr/sbin/iptables-legacy`, or load the "
                "nf_tables/ip_tables modules")
    if "cgroup" in low:
        return "mount the cgroup hierarchies (memory controller) before starting dockerd"
    if "graphdriver" in low or "overlay" in low or "storage-driver" in low:
        return ("the data-root's file system must support overlayfs (ext4/xfs); "
                "check `modprobe overlay`")
    if "pid file" in low or "is still running" in low:
        return "another dockerd uses the same data-root; stop it first"
    if "containerd" in low:
        return "apt-get install containerd"
    return "see the daemon log for details"


def cgroup_memory_status() -> tuple[bool, str]:
    """Whether the memory cgroup controller is mounted (v1 or v2), and which."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        ok = "memory" in v2.read_text().split()
        return ok, "cgroup v2 (unified)" + ("" if ok else ": no memory controller enabled")
    if Path("/sys/fs/cgroup/memory/memory.usage_in_bytes").exists():
        return True, "cgroup v1 (memory controller at /sys/fs/cgroup/memory)"
    return False, "no memory cgroup controller mounted under /sys/fs/cgroup"


def probe(argv: list[str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-300:]


def choose_iptables(bin_dir: Path) -> tuple[Path | None, str]:
    """Which iptables dockerd can use: the default one (None) or a legacy override directory.

    Returns (directory to put first on dockerd's PATH or None, description). Raises
    EngineError when neither the default nor the legacy iptables can list the nat table.
    """
    search = search_path()
    default = shutil.which("iptables", path=search)
    if default is None:
        raise EngineError("iptables not found (dockerd needs it for the default bridge)",
                          "apt-get install iptables")
    ok, why = probe([default, "-t", "nat", "-L", "-n"])
    if ok:
        return None, f"iptables ({Path(os.path.realpath(default)).name})"
    legacy = shutil.which("iptables-legacy", path=search)
    if legacy:
        ok_legacy, why_legacy = probe([legacy, "-t", "nat", "-L", "-n"])
        if ok_legacy:
            bin_dir.mkdir(parents=True, exist_ok=True)
            for tool in ("iptables", "iptables-save", "iptables-restore"):
                target = shutil.which(tool.replace("iptables", "iptables-legacy"), path=search)
                link = bin_dir / tool
                if target and not link.is_symlink():
                    link.symlink_to(target)
            return bin_dir, f"iptables-legacy (the default iptables failed: {why})"
        why = f"{why}; iptables-legacy: {why_legacy}"
    raise EngineError(f"iptables cannot list the nat table: {why}", explain_failure("iptables"))


def runtime_config(path: str) -> dict:
    """``daemon.json`` content registering the :data:`RUNTIMES` found on ``path``."""
    runtimes = {}
    for name, (exe, args, _) in RUNTIMES.items():
        found = shutil.which(exe, path=path)
        if found:
            runtimes[name] = {"path": found, **({"runtimeArgs": list(args)} if args else {})}
    return {"runtimes": runtimes}
