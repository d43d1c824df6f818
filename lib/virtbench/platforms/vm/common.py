"""What the VM platform and its parts share: the guest's sizes and time limits, the
intervals its runs are timed over, its failure, and reading a workload's output and peak
from the serial console."""

from __future__ import annotations

from virtbench.platforms.base import Peak
from virtbench.platforms.vm.guestpeak import PEAK_LINE, busybox_maxrss_scale, guest_peak_kib
from virtbench.workloads import WORKLOADS

#: the suite's workloads a guest can run (its own C workloads and speedtest1)
GUEST_WORKLOADS = (*WORKLOADS, "speedtest1")

GUEST_MEMORY_MIB = 256
#: MiB of the full-OS guest (userland debian-systemd) by default: the size the seed's
#: "VM (Ubuntu) idle 512 MB" speaks of.
FULLOS_MEMORY_MIB = 512
FULLOS_BOOT_TIMEOUT_S = 300.0   # systemd to its service under TCG on a busy host
GUEST_WORKDIR = "/work"
#: The address in QEMU's user network (10.0.2.0/24) at which a guest reaches a collector the
#: harness runs on the host's loopback (a guestfwd rule: the same port on 127.0.0.1).
GUEST_COLLECTOR = "10.0.2.100"
MIN_DISK_MIB = 128
EXIT_TIMEOUT_S = 30.0       # from the workload's result to QEMU's exit
HTTP_TIMEOUT_S = 60.0
SNAPSHOT_TIMEOUT_S = 120.0
MEMINFO_TIMEOUT_S = 30.0    # from the workload's VB-READY to init's VB-MEMINFO line

USER_INTERVAL = ("from the host reading the guest init's VB-START line on the serial console "
                 "(printed just before it starts the workload, under busybox time) to the host "
                 "reading its VB-EXIT line (printed when the workload exited); excludes boot "
                 "and power-off")
RUN_INTERVAL = ("from the host reading the guest init's VB-START line on the serial console "
                "(printed just before it starts the workload) to the host reading the "
                "workload's VB-RESULT line; excludes boot and power-off")


class GuestFailed(RuntimeError):
    """A guest hung, crashed or its workload failed; the message has the console evidence."""


def guest_output(text: str) -> str:
    """What the workload printed: the console between VB-START and VB-EXIT (kernel
    messages that came in between included)."""
    start = text.find("VB-START")
    start = text.find("\n", start) + 1 if start >= 0 else 0
    end = text.find("VB-EXIT", start)
    out = text[start:end if end >= 0 else len(text)].replace("\r\n", "\n")
    return "".join(line for line in out.splitlines(keepends=True)
                   if not line.startswith(f"{PEAK_LINE} "))


def guest_peak(console: str) -> Peak:
    """The program's peak RSS inside the guest, from the console's VB-PEAK line."""
    reported = guest_peak_kib(console.replace("\r\n", "\n"))
    if reported is None:
        return Peak("guest_rss", None, "the guest printed no VB-PEAK line")
    try:
        scale = busybox_maxrss_scale()
    except Exception as exc:  # the unit cannot be measured: no number rather than a guess
        return Peak("guest_rss", None, f"busybox time's unit is unknown: {exc}")
    unit = (f"divided by {scale}, the factor by which this busybox reports it too large "
            "(measured on the host)" if scale != 1 else "in KiB")
    return Peak("guest_rss", reported // scale * 1024,
                f"peak RSS of the program inside the guest: the guest kernel's wait4 "
                f"ru_maxrss as busybox time %M printed it, {unit}")
