"""Parse what a guest printed on its serial console (plus QEMU's own messages on stderr).

The guest's init prints ``VB-BOOTED``, ``VB-START``, the workload's ``VB-RESULT``, then
``VB-EXIT rc=N``, and when asked ``VB-MEMINFO`` after the workload's ``VB-READY`` (see
:mod:`virtbench.platforms.vm.init`); around them are kernel messages,
``\\r\\n`` line ends, and on failure a kernel panic or QEMU's KVM error dump.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from virtbench.platforms.base import GuestMeminfo
from virtbench.platforms.vm.fullos import STRACE_BEGIN, STRACE_END, SYSTEMD_LINE
from virtbench.platforms.vm.init import MEMINFO_LINE
from virtbench.workloads import parse_result_line

_PANIC = re.compile(r"Kernel panic - not syncing:.*")
_OOM = re.compile(r"Out of memory: Killed process \d+ \(\S+\)")
_KVM_ERROR = re.compile(r"KVM internal error\..*")
_QEMU_ERROR = re.compile(r"qemu-system-\w+: .*")


@dataclass(frozen=True)
class Console:
    """The facts a console transcript holds."""

    booted: bool = False
    boot_uptime_s: float | None = None      # the guest's /proc/uptime when init started
    pid1: str | None = None                 # /proc/1/comm, when the guest printed it
    started: str | None = None              # workload named by VB-START
    result: dict[str, str] = field(default_factory=dict)  # VB-RESULT pairs
    exit_code: int | None = None            # VB-EXIT rc
    errors: list[str] = field(default_factory=list)       # VB-ERROR lines
    panic: str | None = None                # the kernel's panic line
    oom: str | None = None                  # the guest kernel's "Out of memory: Killed" line
    kvm_error: str | None = None            # QEMU's "KVM internal error" summary
    qemu_errors: list[str] = field(default_factory=list)  # "qemu-system-x86_64: ..." lines
    powered_off: bool = False

    @property
    def ok(self) -> bool:
        """Booted, ran the workload, and it exited 0."""
        return self.booted and self.exit_code == 0

    def problem(self) -> str:
        """One line saying what went wrong (empty if nothing did)."""
        if self.kvm_error:
            return self.kvm_error
        if self.panic:
            return self.panic
        if self.qemu_errors:
            return "; ".join(self.qemu_errors[:3])
        if self.errors:
            return "; ".join(self.errors[:3])
        if self.oom and self.exit_code not in (None, 0):
            return f"the guest's OOM killer ended the workload (exit {self.exit_code}): {self.oom}"
        if not self.booted:
            return "the guest never printed VB-BOOTED"
        if self.exit_code is None:
            return "the workload did not finish (no VB-EXIT line)"
        if self.exit_code != 0:
            return f"the workload exited {self.exit_code}"
        return ""


def _pairs(text: str, marker: str) -> dict[str, str] | None:
    try:
        return parse_result_line(text, marker)
    except ValueError:
        return None


def parse_console(text: str | bytes) -> Console:
    """Everything :class:`Console` describes, from a serial console transcript."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    booted = _pairs(text, "VB-BOOTED")
    started = _pairs(text, "VB-START")
    exited = _pairs(text, "VB-EXIT")
    lines = [line.strip() for line in re.split(r"[\r\n]+", text)]
    errors = [line[line.index("VB-ERROR"):] for line in lines if "VB-ERROR" in line]
    panic = _PANIC.search(text)
    oom = _OOM.search(text)
    kvm = _KVM_ERROR.search(text)
    kvm_error = None
    if kvm:
        detail = [w for w in ("emulation failure", "Suberror") if w in text]
        rip = re.search(r"RIP=([0-9a-f]+)", text)
        code = re.search(r"Code=.*<([0-9a-f]{2})> ((?:[0-9a-f]{2} ){0,5})", text)
        kvm_error = kvm.group(0).strip()
        if "emulation failure" in detail:
            kvm_error += " emulation failure"
        if rip:
            kvm_error += f" at RIP {rip.group(1)}"
        if code:
            kvm_error += f" (instruction bytes {code.group(1)} {code.group(2).strip()})"
    uptime = None
    if booted and "uptime" in booted:
        try:
            uptime = float(booted["uptime"])
        except ValueError:
            uptime = None
    exit_code = None
    if exited is not None:
        try:
            exit_code = int(exited.get("rc", ""))
        except ValueError:
            exit_code = None
    return Console(
        booted=booted is not None,
        boot_uptime_s=uptime,
        pid1=booted.get("pid1") if booted is not None else None,
        started=started.get("workload") if started is not None else None,
        result=_pairs(text, "VB-RESULT") or {},
        exit_code=exit_code,
        errors=errors,
        panic=panic.group(0).strip() if panic else None,
        oom=oom.group(0) if oom else None,
        kvm_error=kvm_error,
        qemu_errors=[m.group(0).strip() for m in _QEMU_ERROR.finditer(text)],
        powered_off="reboot: Power down" in text,
    )


def guest_meminfo(text: str | bytes) -> GuestMeminfo | None:
    """MemTotal and MemAvailable from the console's last ``VB-MEMINFO total_kib=T
    available_kib=A`` line; None without one, ValueError if its numbers are missing or bad."""
    found = _counts(text, MEMINFO_LINE, ("total_kib", "available_kib"), "KiB counts",
                    "the guest's /proc/meminfo")
    return None if found is None else GuestMeminfo(*found[1])


def _counts(text: str | bytes, marker: str, keys: tuple[str, str], what: str, source: str
            ) -> tuple[dict[str, str], tuple[int, int]] | None:
    """The key=value pairs of the console's last ``marker`` line and its two counts ``keys``
    as integers; None without such a line, ValueError naming a missing or bad count."""
    pairs = _pairs(text if isinstance(text, str) else bytes(text).decode(errors="replace"),
                   marker)
    if pairs is None:
        return None
    values = [pairs.get(key, "") for key in keys]
    if not all(v.isdigit() for v in values):
        raise ValueError(f"{marker} line without two {what}: {keys[0]}={values[0]!r} "
                         f"{keys[1]}={values[1]!r} (expected decimal integers from {source})")
    return pairs, (int(values[0]), int(values[1]))


@dataclass(frozen=True)
class SystemdStartup:
    """The full-OS guest's ``VB-SYSTEMD`` line: systemd's state and its startup timestamps
    (guest CLOCK_MONOTONIC, microseconds since the kernel started)."""

    state: str          # systemctl is-system-running: running | degraded | ...
    finish_us: int      # FinishTimestampMonotonic: startup finished
    userspace_us: int   # UserspaceTimestampMonotonic: systemd (PID 1) started


def systemd_finished(text: str | bytes) -> SystemdStartup | None:
    """The console's ``VB-SYSTEMD state=S finish_us=F userspace_us=U`` line; None without
    one, ValueError if systemd had not finished (F is 0) or a number is missing."""
    found = _counts(text, SYSTEMD_LINE, ("finish_us", "userspace_us"), "microsecond counts",
                    "systemctl show")
    if found is None:
        return None
    pairs, (finish, userspace) = found
    if finish == 0:
        raise ValueError(f"systemd had not finished starting up (state "
                         f"{pairs.get('state', '')!r}, FinishTimestampMonotonic 0)")
    return SystemdStartup(pairs.get("state", ""), finish, userspace)


_STRACE_ROW = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s+(\d+)\s+(\d+)"
                         r"\s+(?:(\d+)\s+)?([a-z_][a-z0-9_]*)\s*$")


def strace_counts(text: str | bytes) -> dict[str, int] | None:
    """{system call: calls} from the ``strace -c`` table the full-OS guest printed between
    ``VB-STRACE-BEGIN`` and ``VB-STRACE-END``; None when the console has no such section
    (the ``total`` line is left out)."""
    if not isinstance(text, str):
        text = bytes(text).decode(errors="replace")
    begin = text.find(STRACE_BEGIN)
    end = text.find(STRACE_END, begin)
    if begin < 0 or end < 0:
        return None
    counts: dict[str, int] = {}
    for line in text[begin:end].replace("\r", "").splitlines():
        found = _STRACE_ROW.match(line)
        if found and found.group(6) != "total":
            counts[found.group(6)] = int(found.group(4))
    return counts
