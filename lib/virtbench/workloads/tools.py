"""Debian's benchmark tools that published claims name: sysbench and Redis.

The programs are the host's (``apt-get install sysbench redis-server redis-tools``): a
platform runs the very same executable (a container image gets it with the shared
libraries ``ldd`` names). This module finds them and parses what they print; it imports
nothing above it.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

#: program -> Debian package
PACKAGES = {"sysbench": "sysbench", "redis-server": "redis-server",
            "redis-benchmark": "redis-tools"}


class ToolMissing(Exception):
    """A tool is not installed; the message names its Debian package."""


def tool(name: str) -> Path:
    """The installed program ``name`` (one of :data:`PACKAGES`); ToolMissing if absent."""
    if name not in PACKAGES:
        raise ValueError(f"unknown tool {name!r}; valid: {', '.join(PACKAGES)}")
    found = shutil.which(name, path="/usr/bin:/usr/sbin:/bin:/sbin")
    if found is None:
        raise ToolMissing(f"{name} not found: apt-get install {PACKAGES[name]}")
    return Path(found)


@dataclass(frozen=True)
class SysbenchResult:
    """What one ``sysbench cpu|memory run`` printed."""

    version: str
    test: str                      # "cpu" | "memory"
    threads: int
    total_time_s: float
    events: int
    events_per_s: float | None     # cpu: "events per second"
    mib_per_s: float | None        # memory: "MiB transferred (X MiB/sec)"
    latency_avg_ms: float
    latency_p95_ms: float


def _number(pattern: str, text: str, what: str) -> str:
    m = re.search(pattern, text, re.MULTILINE)
    if m is None:
        raise ValueError(f"sysbench output has no {what} (pattern {pattern!r}): "
                         f"{text[-300:]!r}")
    return m.group(1)


def parse_sysbench(text: str) -> SysbenchResult:
    """Parse the report of ``sysbench 1.0 cpu run`` or ``sysbench 1.0 memory run``."""
    version = _number(r"^sysbench (\S+)", text, "version line")
    test = "memory" if "Running memory speed test" in text else "cpu"
    eps = mibs = None
    if test == "cpu":
        eps = float(_number(r"events per second:\s+([\d.]+)", text, "events per second"))
    else:
        mibs = float(_number(r"MiB transferred \(([\d.]+) MiB/sec\)", text, "MiB/sec"))
    return SysbenchResult(
        version=version, test=test,
        threads=int(_number(r"Number of threads:\s+(\d+)", text, "thread count")),
        total_time_s=float(_number(r"total time:\s+([\d.]+)s", text, "total time")),
        events=int(_number(r"total number of events:\s+(\d+)", text, "event count")),
        events_per_s=eps, mib_per_s=mibs,
        latency_avg_ms=float(_number(r"^\s+avg:\s+([\d.]+)", text, "average latency")),
        latency_p95_ms=float(_number(r"95th percentile:\s+([\d.]+)", text, "95th percentile")))


@dataclass(frozen=True)
class RedisTest:
    """One test line of ``redis-benchmark --csv`` (Redis 7)."""

    test: str
    rps: float
    avg_ms: float
    p50_ms: float
    p99_ms: float


def parse_redis_benchmark(text: str) -> dict[str, RedisTest]:
    """``redis-benchmark --csv`` output as {test: RedisTest}, e.g. {"SET": ..., "GET": ...}."""
    rows = list(csv.DictReader(io.StringIO(text.strip())))
    need = {"test", "rps", "avg_latency_ms", "p50_latency_ms", "p99_latency_ms"}
    if not rows or not need <= set(rows[0]):
        raise ValueError(f"not redis-benchmark --csv output (Redis 7 columns {sorted(need)}): "
                         f"{text[:300]!r}")
    return {r["test"]: RedisTest(r["test"], float(r["rps"]), float(r["avg_latency_ms"]),
                                 float(r["p50_latency_ms"]), float(r["p99_latency_ms"]))
            for r in rows}


def parse_strace_summary(text: str) -> dict[str, int]:
    """``strace -c`` (strace 6) summary as {syscall: calls}; the ``total`` line left out.

    Rows sit between the two dashed rules; the name is the last column and the call count
    the fourth (``% time, seconds, usecs/call, calls, [errors,] syscall``).
    """
    lines = text.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("------")]
    if len(rules) < 2 or "syscall" not in lines[rules[0] - 1]:
        raise ValueError(f"not an strace -c summary (no header and dashed rules): {text[:200]!r}")
    out: dict[str, int] = {}
    for line in lines[rules[0] + 1:rules[1]]:
        fields = line.split()
        if len(fields) >= 5 and fields[3].isdigit():
            out[fields[-1]] = out.get(fields[-1], 0) + int(fields[3])
    return out
