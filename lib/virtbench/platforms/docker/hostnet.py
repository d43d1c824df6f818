"""The host's network state around a private ``dockerd``: it changes iptables (filter and nat),
``ip_forward`` and adds ``docker0`` and veth pairs, so the state is saved to a file before it
starts and put back whenever it stops (also on the next run after a crash)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from virtbench.platforms.docker.daemonsetup import probe
from virtbench.platforms.docker.procfs import read_value

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
DOCKER0 = "/sys/class/net/docker0"


def save(network_file: Path, path: str) -> None:
    """Record iptables (filter and nat), ip_forward, docker0 and the veths in ``network_file``
    (the tools looked up on ``path``).

    An existing record (of a daemon that was never stopped cleanly) is kept: it holds the
    state from before that daemon.
    """
    if network_file.is_file():
        return
    save = shutil.which("iptables-save", path=path)
    restore = shutil.which("iptables-restore", path=path)
    iptables = shutil.which("iptables", path=path)
    if not (save and restore and iptables):
        return
    for table in ("filter", "nat"):  # present in the dump, so the restore resets them
        probe([iptables, "-t", table, "-S"])
    dump = subprocess.run([save], capture_output=True, text=True, timeout=30)
    if dump.returncode != 0:
        return
    state = {"iptables_restore": restore, "iptables": dump.stdout,
             "ip_forward": read_value(IP_FORWARD), "docker0": Path(DOCKER0).exists(),
             "veths": sorted(host_veths())}
    tmp = network_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, network_file)


def restore(network_file: Path) -> list[str]:
    """Put back the state :func:`save` recorded in ``network_file``; return what was done."""
    try:
        state = json.loads(network_file.read_text())
    except (OSError, ValueError):
        return []
    done = []
    proc = subprocess.run([state["iptables_restore"]], input=state["iptables"],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode == 0:
        done.append("iptables restored")
    if not state["docker0"]:
        left = leftover_veths(host_veths(), set(state.get("veths", ())))
        for name in left:  # deleting one end of a pair deletes its peer
            subprocess.run(["ip", "link", "delete", name], capture_output=True, timeout=30)
        if left:
            done.append(f"{len(left)} veth(s) deleted")
    if not state["docker0"] and Path(DOCKER0).exists():
        subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, timeout=30)
        done.append("docker0 deleted")
    if state["ip_forward"] and read_value(IP_FORWARD) != state["ip_forward"]:
        Path(IP_FORWARD).write_text(state["ip_forward"])
        done.append(f"ip_forward reset to {state['ip_forward']}")
    network_file.unlink(missing_ok=True)
    return done


def parse_veths(ip_output: str) -> dict[str, tuple[str, str]]:
    """``ip -o link show type veth`` as name -> (peer name or "ifN", master bridge or "")."""
    out = {}
    for line in ip_output.splitlines():
        parts = line.split(": ", 2)
        if len(parts) < 3:
            continue
        name, _, peer = parts[1].strip().partition("@")
        words = parts[2].split()
        master = words[words.index("master") + 1] if "master" in words[:-1] else ""
        out[name] = (peer, master)
    return out


def host_veths() -> dict[str, tuple[str, str]]:
    """The host's veth links (:func:`parse_veths`); empty when ``ip`` cannot say."""
    try:
        proc = subprocess.run(["ip", "-o", "link", "show", "type", "veth"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_veths(proc.stdout) if proc.returncode == 0 else {}


def leftover_veths(now: dict[str, tuple[str, str]], before: set[str]) -> list[str]:
    """The veths a private daemon that created docker0 left: new since it started, and on
    its bridge or with both ends still on the host (a pair made for a container the daemon
    died before starting); one name per pair."""
    left: list[str] = []
    for name, (peer, master) in sorted(now.items()):
        if name in before or peer in left:
            continue
        if master == "docker0" or peer in now:
            left.append(name)
    return left
