"""QEMU command lines for the suite's guests, and the helpers that wait on a running guest.

Two machine types:

- ``pc``: the full boot. i440FX machine with QEMU's default devices (SeaBIOS firmware, VGA,
  IDE, floppy, PIT, RTC; the default NIC is left out) and the compressed ``vmlinuz`` as
  Debian ships it, which the guest decompresses itself. Devices hang off PCI.
- ``microvm``: the fast boot. QEMU's minimal machine (qboot firmware, no PCI) booting the
  uncompressed ELF ``vmlinux`` through its PVH entry. Devices are virtio-mmio.

Serial goes to QEMU's stdio (``-serial stdio``); the guest powers off when its workload ends
and ``-no-reboot`` turns a guest reboot or panic into a QEMU exit.

Guest clock under TCG: the emulated TSC ticks at the host TSC's rate, but the guest kernel
calibrates it against the emulated PIT, which fails on a busy host (the vCPU thread is not
scheduled evenly), and microvm has no HPET or ACPI PM timer to fall back on: the kernel then
stalls in early boot. The clocksource watchdog likewise drops the TSC for jiffies when
the host is busy. So TCG guests get ``tsc_early_khz=<host TSC kHz> tsc=reliable
no_timer_check`` on their command line, which keeps the guest's CLOCK_MONOTONIC on the TSC,
i.e. on host real time.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from virtbench import loadgen
from virtbench.platforms.vm.kernel import Kernel
from virtbench.platforms.vm.serial import ConsoleLog
from virtbench.process import run_tool

QEMU = "qemu-system-x86_64"
MACHINES = ("pc", "microvm")
ACCELERATORS = ("tcg", "kvm")
#: migrate-set-parameters max-bandwidth when saving a snapshot: 16 GiB/s, i.e. no cap in
#: practice (QEMU's default cap is 128 MiB/s, which alone makes a 64 MiB save take 0.5 s).
UNCAPPED_BANDWIDTH = 16 << 30


@dataclass(frozen=True)
class Machine:
    """A variant's fixed choices: machine type, accelerator and CPU model."""

    machine: str
    accel: str
    cpu: str | None = None

    def __post_init__(self) -> None:
        if self.machine not in MACHINES:
            raise ValueError(f"unknown machine {self.machine!r}; valid: {', '.join(MACHINES)}")
        if self.accel not in ACCELERATORS:
            raise ValueError(f"unknown accelerator {self.accel!r}")

    @property
    def bus(self) -> str:
        """How devices attach: ``pci`` on pc, ``mmio`` on microvm."""
        return "pci" if self.machine == "pc" else "mmio"

    def kernel_image(self, kernel: Kernel) -> Path:
        """The compressed bzImage for the full boot, the ELF vmlinux for the fast boot."""
        return kernel.vmlinuz if self.machine == "pc" else kernel.vmlinux

    @property
    def boot_kind(self) -> str:
        if self.machine == "pc":
            return ("full boot: pc machine, SeaBIOS, QEMU's default devices, the compressed "
                    "bzImage as shipped")
        return "fast boot: microvm machine, qboot, virtio-mmio, the uncompressed ELF vmlinux (PVH)"


@dataclass(frozen=True)
class Boot:
    """What one QEMU run boots: the workload and its arguments, memory and devices."""

    workload: str
    args: tuple[str, ...] = ()
    memory_mib: int = 256
    cpus: int = 1
    disk: Path | None = None          # raw ext4 image, attached as virtio-blk, mounted at /work
    disk_cache: str = "writeback"     # QEMU's cache mode of the disk: writeback | none (O_DIRECT)
    hostfwd_port: int | None = None   # user networking; 127.0.0.1:PORT on the host -> guest :80
    # user networking; the guest's connections to ADDR:PORT go to 127.0.0.1:PORT on the host
    # (a collector the harness runs), and nowhere else (restrict=on)
    guestfwd: tuple[str, int] | None = None
    dump: Path | None = None          # pcap of the guest NIC's frames (QEMU filter-dump)
    qmp: Path | None = None           # QMP unix socket path
    incoming: Path | None = None      # restore from this migration stream file
    root: Path | None = None          # raw ext4 root disk, attached read-only as the first disk
    root_snapshot: bool = False       # attach it writable instead, writes to a discarded overlay
    meminfo: bool = False             # init prints VB-MEMINFO after the workload's VB-READY
    nofile: int | None = None         # the workload's RLIMIT_NOFILE in the guest (and QEMU's)
    somaxconn: int | None = None      # the guest's net.core.somaxconn
    trace_s: float = 0.0              # full-OS guest: strace -f -c the workload for this long


def host_tsc_khz() -> int | None:
    """The host TSC's frequency in kHz, when the host states it (else None).

    ``cpu MHz`` in /proc/cpuinfo is the TSC rate when the TSC is invariant (``constant_tsc``)
    and no cpufreq driver reports a changing clock; otherwise it is not trusted.
    """
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = re.search(r"^flags\s*:(.*)$", info, re.M)
    mhz = re.search(r"^cpu MHz\s*:\s*([0-9.]+)", info, re.M)
    if not flags or not mhz or "constant_tsc" not in flags.group(1).split():
        return None
    if Path("/sys/devices/system/cpu/cpu0/cpufreq").exists() and \
            "tsc_known_freq" not in flags.group(1).split():
        return None
    return round(float(mhz.group(1)) * 1000)


def kernel_cmdline(boot: Boot, accel: str = "tcg") -> str:
    """The kernel command line: serial console, quiet, TCG clock settings, ``vb.*`` for init."""
    for arg in boot.args:
        if not arg or any(c.isspace() or c in ',"' for c in arg):
            raise ValueError(f"guest workload arguments cannot be empty or contain spaces, "
                             f"commas or quotes: {arg!r}")
    parts = ["console=ttyS0", "quiet", "panic=-1"]
    if accel == "tcg":
        khz = host_tsc_khz()
        parts += ([f"tsc_early_khz={khz}"] if khz else []) + ["tsc=reliable", "no_timer_check"]
    parts.append(f"vb.wl={boot.workload}")
    if boot.args:
        parts.append("vb.args=" + ",".join(boot.args))
    if boot.disk is not None:
        parts.append("vb.disk=1")
    if boot.hostfwd_port is not None or boot.guestfwd is not None:
        parts.append("vb.net=1")
    if boot.meminfo:
        parts.append("vb.meminfo=1")
    if boot.nofile is not None:
        parts.append(f"vb.nofile={int(boot.nofile)}")
    if boot.somaxconn is not None:
        parts.append(f"vb.somaxconn={int(boot.somaxconn)}")
    if boot.trace_s:
        parts.append(f"vb.trace={boot.trace_s:g}")
    return " ".join(parts)


def qemu_argv(machine: Machine, kernel: Path, initrd: Path, boot: Boot) -> list[str]:
    """The full QEMU command for ``boot`` on ``machine``."""
    argv = [QEMU, "-M", machine.machine, "-accel", machine.accel]
    if machine.cpu:
        argv += ["-cpu", machine.cpu]
    argv += ["-m", str(boot.memory_mib), "-smp", str(boot.cpus), "-no-user-config",
             "-display", "none", "-serial", "stdio", "-monitor", "none", "-no-reboot"]
    if machine.machine == "pc":
        argv += ["-parallel", "none", "-net", "none"]
    else:
        argv += ["-nodefaults"]
    pci = machine.bus == "pci"
    blk = "virtio-blk-pci" if pci else "virtio-blk-device"
    if boot.root is not None:
        mode = "snapshot=on" if boot.root_snapshot else "readonly=on"
        argv += ["-drive", f"file={boot.root},format=raw,if=none,id=r0,{mode}",
                 "-device", f"{blk},drive=r0"]
    if boot.disk is not None:
        argv += ["-drive", f"file={boot.disk},format=raw,if=none,id=d0,cache={boot.disk_cache}",
                 "-device", f"{'virtio-blk-pci' if pci else 'virtio-blk-device'},drive=d0"]
    if boot.hostfwd_port is not None or boot.guestfwd is not None:
        forwards = []
        if boot.hostfwd_port is not None:
            forwards.append(f"hostfwd=tcp:127.0.0.1:{boot.hostfwd_port}-:80")
        if boot.guestfwd is not None:
            address, port = boot.guestfwd
            forwards.append(f"guestfwd=tcp:{address}:{port}-tcp:127.0.0.1:{port}")
        argv += ["-netdev", "user,id=n0,restrict=on," + ",".join(forwards),
                 "-device", "virtio-net-pci,netdev=n0,romfile=" if pci
                 else "virtio-net-device,netdev=n0"]
        if boot.dump is not None:
            argv += ["-object", f"filter-dump,id=vbdump,netdev=n0,file={boot.dump}"]
    if boot.qmp is not None:
        argv += ["-qmp", f"unix:{boot.qmp},server=on,wait=off"]
    if boot.incoming is not None:
        argv += ["-incoming", f"exec:cat {shlex.quote(str(boot.incoming))}"]
    argv += ["-kernel", str(kernel), "-initrd", str(initrd), "-append",
             kernel_cmdline(boot, machine.accel)]
    return argv


def qemu_version() -> str | None:
    """``QEMU emulator version 7.2.22 (Debian ...)`` -> ``7.2.22 (Debian ...)``; None if absent."""
    try:
        out = run_tool([QEMU, "--version"], timeout=10).splitlines()[0]
    except (OSError, RuntimeError, subprocess.TimeoutExpired, IndexError):
        return None
    return out.removeprefix("QEMU emulator version ").strip()


def accelerators() -> list[str]:
    """The accelerators this QEMU binary was built with (``-accel help``)."""
    out = run_tool([QEMU, "-accel", "help"], timeout=10)
    return [line.strip() for line in out.splitlines()[1:] if line.strip()]


def make_disk(path: Path, size_mib: int, content: Path | None = None) -> Path:
    """A sparse raw image of ``size_mib`` MiB holding an ext4 file system, empty or holding
    a copy of the directory ``content`` (``mke2fs -d``)."""
    with open(path, "wb") as f:
        f.truncate(size_mib << 20)
    # Inode tables and the journal are written now, so no lazy init runs inside the guest.
    run_tool(["mke2fs", "-q", "-F", "-t", "ext4", "-E", "lazy_itable_init=0,lazy_journal_init=0",
              "-L", "vbwork", *(["-d", str(content)] if content else []), str(path)],
             timeout=300)
    return path


def fs_type(path: Path) -> str:
    """The type of the file system holding ``path`` (longest mount point in /proc/mounts)."""
    path = Path(os.path.realpath(path))
    best, kind = "", ""
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (path == Path(point) or Path(point) in path.parents) and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def direct_io_works(path: Path) -> bool:
    """Whether QEMU can open ``path`` with cache=none so that reads reach a disk: O_DIRECT
    works and the file system is not memory (tmpfs and ramfs hold files in the page cache)."""
    if fs_type(path) in ("tmpfs", "ramfs"):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        return False
    os.close(fd)
    return True


def wait_http(log: ConsoleLog, port: int, timeout: float) -> int:
    """Poll ``GET /`` until the guest answers 200; return perf_counter_ns of that answer.

    Raises TimeoutError (with the console tail) if no answer comes in time and RuntimeError if
    QEMU exits first.
    """
    return loadgen.wait_http(port, timeout, alive=lambda: log.inst.proc.poll() is None,
                             context=lambda: f"console tail: {log.tail()!r}")
