"""What a metric declaration is: :class:`Metric`, and the condition keys a row can carry.

The vocabulary every experiment declares its metrics in (beside its measuring code, see
:mod:`virtbench.experiments`); :mod:`virtbench.catalog` collects the declarations and checks
rows against them. A leaf: it imports nothing from virtbench.

A condition ("network none", "guest of 128 MiB") is a structured part of a row, never a
suffix of the metric name.
"""

from __future__ import annotations

from dataclasses import dataclass

BETTER = ("lower", "higher", "")

#: Condition keys: what each means and its valid values.
CONDITIONS: dict[str, str] = {
    "network": "Docker network mode of the container: bridge | none | host",
    "allocator": "Wasm instance allocator: pooling (no condition: the default on-demand "
                 "allocator)",
    "code_cache": "wasmtime CLI compiled-module cache, primed by an earlier run: on (no "
                  "condition: the cache is off, -C cache=n)",
    "module": "what the runtime starts from: precompiled (compiled code from a primed cache; "
              "no condition: the .wasm module)",
    "state": "the instance's state when its memory was read. The mem workload: idle (mem 0) | "
             "loaded (holding and having touched the buffer of option mem_mib). The http "
             "workload (instance_* metrics): idle (serving, nobody calling, 1 s after ready) "
             "| loaded (the peak while wrk loads it: VmHWM or the largest of the samples "
             "taken during the load)",
    "guest_memory_mib": "memory of the VM guest in MiB (a decimal integer: 128 | 256 | 512 "
                        "| 1024)",
    "attack": "the co-located attacker's resource: cpu | mem | io | fd | proc",
    "limits": "whether the attacker ran under the platform's limits (isolation.LIMITS): "
              "off | on",
    "kernel": "the cpu workload's kernel: hash (integer hash chain + sieve) | nbody "
              "(floating point) | chase (memory-bound pointer chasing) | sort (branch-heavy "
              "quicksort) | fib (call-heavy recursion) | syscall (1-byte pwrite calls); no "
              "condition: hash, the only kernel of older datasets",
    "cache": "where the read data came from: warm (the page cache: the file was just "
             "written and fsync'ed by the same process) | cold (the file's pages were dropped "
             "with posix_fadvise(POSIX_FADV_DONTNEED) before the read, so it reaches the "
             "disk; no condition: warm)",
    "fs": "the file system of the work directory: host (a directory of the host's, or the "
          "VM guest's, kernel file system) | memory (the runtime's own in-memory file "
          "system, not a host directory: not comparable; no condition: host)",
    "case": "speedtest1's test case, by its number (e.g. 100: INSERTs into a table with no "
            "index; the row's tag case_name says what it does)",
    "packing": "how idle instances share host processes: one_process (all in one engine "
               "process; no condition: one host process, container or VM per instance)",
    "warm_up": "a process start without warm-up: none (the first run of a freshly started "
               "launch helper; no condition: the median of runs back to back in one helper "
               "after untimed warm-up runs, as hyperfine times it)",
    "time_bound": "how a Wasm run's time is bounded, where it differs from the variant's "
                  "own guard rail: epoch (inside the engine: epoch interruption checks "
                  "compiled into the module's code, wasmtime -W timeout) | none (no time "
                  "bound at all: node-wasi's _start called without its node:vm timeout); no "
                  "condition: the variant's guard rail (wasmtime: a watchdog outside the "
                  "engine ends the process or worker; node: the vm timeout)",
    "memory_limit": "the Wasm engine's linear-memory limit: off (the engine's default, no "
                    "limit below wasm32's 4 GiB; no condition: the suite's limit, "
                    "-W max-memory-size / Store.set_limits)",
    "pipeline": "redis-benchmark -P: requests sent per pipeline by each client: 1 (one "
                "request per round trip) | 16",
    "command": "the Redis command redis-benchmark sent: SET | GET",
    "userland": "the instance's root file system: debian (Debian bookworm minbase from "
                "debootstrap: a Docker image made with docker import, a VM booted from an "
                "ext4 root disk) | debian-systemd (VM only, the full-OS guest: the same "
                "Debian plus systemd-sysv, udev and strace, booted with systemd as PID 1 to "
                "multi-user.target, the workload run by a systemd service) | minimal (no "
                "condition: a FROM scratch image of the static workload; a kernel + busybox "
                "initramfs)",
    "load": "the wrk load profile of the http experiment: light (10 connections, 1 wrk "
            "thread, 2 s; no condition: light) | seed (the seed document's test: 10,000 "
            "connections, one wrk thread per host core, option http_seed_duration_s (300 s "
            "in a full run), RLIMIT_NOFILE raised for wrk and the server, net.core.somaxconn "
            "raised where the instance has its own network namespace; the row's tags say the "
            "connections, threads, duration, descriptor limits and backlog cap used)",
}

#: Valid values of the enumerated condition keys (a key not listed takes any non-empty
#: string that passes its check in :data:`VALUE_CHECKS`).
VALUES: dict[str, tuple[str, ...]] = {
    "network": ("bridge", "none", "host"),
    "allocator": ("pooling",),
    "code_cache": ("on",),
    "module": ("precompiled",),
    "state": ("idle", "loaded"),
    "attack": ("cpu", "mem", "io", "fd", "proc"),
    "limits": ("off", "on"),
    "kernel": ("hash", "nbody", "chase", "sort", "fib", "syscall"),
    "cache": ("warm", "cold"),
    "fs": ("host", "memory"),
    "packing": ("one_process",),
    "userland": ("minimal", "debian", "debian-systemd"),
    "warm_up": ("none",),
    "time_bound": ("epoch", "none"),
    "memory_limit": ("off",),
    "load": ("light", "seed"),
    "pipeline": ("1", "16"),
    "command": ("SET", "GET"),
}
#: Checks of the condition keys whose values are not enumerated in :data:`VALUES`.
VALUE_CHECKS = {"guest_memory_mib": str.isdigit, "case": str.isdigit}


@dataclass(frozen=True)
class Metric:
    """One declared metric of one experiment."""

    name: str
    experiment: str
    unit: str
    better: str  # "lower" | "higher" | "" (neither)
    what: str
    conditions: tuple[str, ...] = ()
    exact: bool = False  # deterministic (a size in bytes): one sample is the value

    def __post_init__(self) -> None:
        if self.better not in BETTER:
            raise ValueError(f"{self.experiment}/{self.name}: better must be one of {BETTER}")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown:
            raise ValueError(f"{self.experiment}/{self.name}: undeclared condition keys "
                             f"{unknown}")
