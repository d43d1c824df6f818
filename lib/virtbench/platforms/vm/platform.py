"""Virtual machines: QEMU with KVM (only when a real test boot proves it works) or TCG.

Variants carry the accelerator and the machine type in their names:

- ``qemu-kvm/pc``, ``qemu-tcg/pc``: the full boot (pc machine, SeaBIOS, default devices, the
  compressed kernel as Debian ships it)
- ``qemu-kvm/microvm``, ``qemu-tcg/microvm``: the fast boot (microvm machine, the
  uncompressed ELF kernel entered through PVH)

TCG is software emulation: every guest instruction is translated by QEMU. Its numbers are
TCG numbers, not hardware-virtualized VM numbers, and every description says so.

The guest is Debian's kernel plus an initramfs of busybox, one static workload and an init
that runs it and reports over the serial console (see :mod:`virtbench.platforms.vm`); on the debian
userland (:meth:`Qemu.with_userland`) it boots a read-only ext4 root disk of Debian's minbase
instead (see :mod:`virtbench.platforms.vm.rootdisk`). Every QEMU runs under
:func:`virtbench.process.start_instance` (ended on exit, error or Ctrl-C) with a time limit
on each wait; a guest that hangs is reported with its console tail.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from virtbench.distro import build_rootfs
from virtbench.distro import status as distro_status
from virtbench.netcapture import Capture, read_pcap
from virtbench.platforms.base import (
    WORKDIR,
    Availability,
    NotSupported,
    Platform,
    Portable,
    RunOutcome,
    Workload,
    substitute_workdir,
    which,
)
from virtbench.platforms.vm.common import (
    EXIT_TIMEOUT_S,
    FULLOS_BOOT_TIMEOUT_S,
    FULLOS_MEMORY_MIB,
    GUEST_COLLECTOR,
    GUEST_MEMORY_MIB,
    GUEST_WORKDIR,
    GUEST_WORKLOADS,
    MIN_DISK_MIB,
    RUN_INTERVAL,
    USER_INTERVAL,
    GuestFailed,
    guest_output,
)
from virtbench.platforms.vm.console import (
    parse_console,
)
from virtbench.platforms.vm.diskuse import DiskUse
from virtbench.platforms.vm.fullos import (
    build_fullos_disk,
    build_fullos_initramfs,
)
from virtbench.platforms.vm.initramfs import BUSYBOX, DEVICE_MODULES, build_initramfs
from virtbench.platforms.vm.kernel import Kernel, cached_kernel, fetch_kernel
from virtbench.platforms.vm.kvm import kvm_decision
from virtbench.platforms.vm.qemu import (
    QEMU,
    Boot,
    Machine,
    accelerators,
    direct_io_works,
    make_disk,
    qemu_argv,
    qemu_version,
)
from virtbench.platforms.vm.rootdisk import build_root_disk, build_root_initramfs
from virtbench.platforms.vm.serial import ConsoleLog
from virtbench.platforms.vm.serving import Serving
from virtbench.platforms.vm.starts import StartSequences
from virtbench.platforms.vm.userboot import UserBoot
from virtbench.process import Instance, ProcessTimeout, start_instance


class Qemu(UserBoot, StartSequences, Serving, DiskUse, Platform):
    """One QEMU variant: a machine type and an accelerator."""

    family = "vm"
    machine_type: ClassVar[str]
    accel: ClassVar[str]
    cpu: ClassVar[str | None] = None
    boot_timeout: float = 60.0
    userlands = ("debian", "debian-systemd")
    guest_memory_mib = GUEST_MEMORY_MIB
    own_network_namespace = True  # the guest kernel's own (user networking)

    def __init__(self) -> None:
        self._kernel: Kernel | None = None
        self._root: Path | None = None

    def with_userland(self, name: str) -> Qemu:
        """The same variant booting the ``name`` userland from a read-only root disk."""
        if name not in self.userlands:
            return super().with_userland(name)  # type: ignore[return-value]
        sibling = type(self)()
        sibling._kernel = self._kernel
        sibling.userland = name
        if name == "debian-systemd":
            sibling.guest_memory_mib = FULLOS_MEMORY_MIB
            sibling.boot_timeout = FULLOS_BOOT_TIMEOUT_S
        return sibling

    @property
    def full_os(self) -> bool:
        """Whether the guest boots a full OS (systemd as PID 1) to a service."""
        return self.userland == "debian-systemd"

    def root_disk(self) -> Path:
        """The userland's ext4 root disk (built on first use)."""
        if self._root is None:
            self._root = (build_fullos_disk() if self.full_os
                          else build_root_disk(build_rootfs()))
        return self._root

    def root_initramfs(self) -> Path:
        """The initramfs that mounts the root disk (and, full OS, starts systemd)."""
        if self.full_os:
            return build_fullos_initramfs(self.kernel(), self.machine.bus)
        return build_root_initramfs(self.kernel(), self.machine.bus)

    @property
    def guest_kind(self) -> str:
        """What the guest boots into, for descriptions."""
        if self.full_os:
            return ("guest userland: full OS, Debian bookworm minbase + systemd-sysv, udev and "
                    "strace, booted with systemd as PID 1 (switch_root from a busybox "
                    "initramfs) to multi-user.target; the workload runs in the systemd "
                    "service vb-workload.service (a long-running instance counts as ready "
                    "once systemd reported its startup finished); root disk: virtio ext4, "
                    "writable, writes discarded (QEMU snapshot=on)")
        if self.userland == "debian":
            return ("guest userland: Debian bookworm minbase on a read-only virtio ext4 root "
                    "disk, mounted by a busybox initramfs (virtio and ext4 modules) that "
                    "switch_roots to an init run by Debian's dash")
        return "guest userland: a busybox initramfs with the static workload"

    def describe_userland(self) -> str:
        return self.guest_kind if self.userland != "minimal" else ""

    # -- set-up ---------------------------------------------------------------------------

    @property
    def machine(self) -> Machine:
        return Machine(self.machine_type, self.accel, self.cpu)

    def kernel(self) -> Kernel:
        if self._kernel is None:
            self._kernel = fetch_kernel()
        return self._kernel

    def supplied_kernel(self) -> str | None:
        return self.kernel().release

    def portable_artifact(self, workload: Workload) -> Portable:
        if not workload.builtin:
            raise NotSupported("the artifact carried to another host is measured for the "
                               "built-in workloads")
        kernel = self.kernel()
        return Portable("guest", self.machine.kernel_image(kernel),
                        initrd=build_initramfs(workload.name, kernel, self.machine.bus),
                        what=f"the guest kernel {kernel.release} and its initramfs")

    def _basics(self) -> Availability | None:
        """Unavailable for a missing tool; None when QEMU, busybox and a kernel source exist."""
        if which(QEMU) is None:
            return Availability(False, f"{QEMU} not found",
                                "apt-get install qemu-system-x86 (or run `make setup`)")
        if self.accel not in accelerators():
            return Availability(False, f"this QEMU has no {self.accel} accelerator",
                                "install Debian's qemu-system-x86")
        if not BUSYBOX.is_file():
            return Availability(False, f"{BUSYBOX} not found (the guest's userland)",
                                "apt-get install busybox-static (or run `make setup`)")
        if cached_kernel() is None and which("apt-get") is None:
            return Availability(False, "no guest kernel cached and no apt-get to fetch Debian's "
                                       "linux-image-amd64", "run on Debian with apt-get")
        return None

    def _version(self, kernel: Kernel | None) -> str:
        guest = kernel.label if kernel else "not fetched yet"
        return (f"QEMU {qemu_version()}, accelerator {self.accel.upper()}, "
                f"-M {self.machine_type}, guest kernel {guest}")

    def prepare(self, workloads: Sequence[Workload]) -> None:
        kernel = self.kernel()
        if self.userland != "minimal":
            self.root_initramfs()
            self.root_disk()
            return
        names = {w.name for w in workloads if w.builtin} | {"noop", "http"}
        for name in sorted(names):
            build_initramfs(name, kernel, self.machine.bus)

    _dump: Path | None = None  # where the next trace run writes its guest NIC's frames

    @contextmanager
    def capture_traffic(self, port: int, address: str) -> Iterator[Capture]:
        """The guest's own frames at its virtual NIC (QEMU's filter-dump of the user network
        device), not QEMU's forwarded connection on the host."""
        capture = Capture("the guest's virtual NIC (QEMU filter-dump): the guest's own "
                          "packets", port)
        with tempfile.TemporaryDirectory(prefix="vb-vm-dump-") as tmp:
            self._dump = Path(tmp) / "guest.pcap"
            try:
                yield capture
            finally:
                dump, self._dump = self._dump, None
            if dump.exists():
                capture.packets = [p for p in read_pcap(dump.read_bytes())
                                   if p.dport == port and p.dst == address]

    def collector_route(self) -> tuple[str, str]:
        """A collector on the host's loopback, reached from the guest at an address of QEMU's
        user network that forwards to it (guestfwd); the guest reaches nothing else."""
        if self.userland != "minimal":
            raise NotSupported(f"{self.variant} on the {self.userland} userland boots without "
                               "a network")
        return "127.0.0.1", GUEST_COLLECTOR

    # -- launching ------------------------------------------------------------------------

    def _argv(self, boot: Boot, initrd: Path | None = None) -> list[str]:
        kernel = self.kernel()
        if self.userland != "minimal":
            if boot.disk is not None or boot.hostfwd_port is not None or boot.incoming \
                    or boot.guestfwd is not None:
                why = ("its guest has no network modules" if self.full_os
                       else "minbase has no ip")
                raise NotSupported(f"{self.variant} on the {self.userland} userland boots "
                                   f"without a work disk, network or saved state ({why})")
            boot = replace(boot, root=self.root_disk(), root_snapshot=self.full_os)
            return qemu_argv(self.machine, self.machine.kernel_image(kernel),
                             self.root_initramfs(), boot)
        if boot.trace_s:
            raise NotSupported("in-guest tracing needs the full-OS guest (strace in it)")
        initrd = initrd or build_initramfs(boot.workload, kernel, self.machine.bus)
        return qemu_argv(self.machine, self.machine.kernel_image(kernel), initrd, boot)

    @contextmanager
    def _launch(self, boot: Boot,
                initrd: Path | None = None) -> Iterator[tuple[Instance, ConsoleLog]]:
        """Start QEMU for ``boot``; yield it with its console log; always end it."""
        with start_instance(self._argv(boot, initrd), nofile=boot.nofile) as inst:
            log = ConsoleLog(inst)
            yield inst, log

    def _fail(self, what: str, log: ConsoleLog, exc: Exception | None = None) -> GuestFailed:
        problem = parse_console(log.text).problem() or (str(exc).split(";")[0] if exc else "")
        return GuestFailed(f"{self.variant} ({self.accel.upper()}): {what}: {problem}; "
                           f"console tail: {log.tail()!r}")

    def _wait(self, log: ConsoleLog, marker: str, timeout: float, what: str) -> int:
        """``log.wait_for`` that turns a hang or an early exit into a reported GuestFailed."""
        try:
            return log.wait_for(marker, timeout=timeout)
        except ProcessTimeout as exc:
            raise self._fail(f"guest hung: no {marker} within {timeout:g} s ({what})", log,
                             exc) from exc
        except RuntimeError as exc:
            raise self._fail(f"QEMU exited before {marker} ({what})", log, exc) from exc

    @staticmethod
    def _reap(inst: Instance, timeout: float) -> tuple[int, int | None, int]:
        """Wait for QEMU to exit: (exit code, peak RSS KiB from wait4 or None, exit time ns)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, usage = os.wait4(inst.pid, os.WNOHANG)
            except ChildProcessError:  # already reaped by the Popen object
                return inst.proc.returncode or 0, None, time.perf_counter_ns()
            if pid:
                now = time.perf_counter_ns()
                inst.proc.returncode = os.waitstatus_to_exitcode(status)
                return inst.proc.returncode, int(usage.ru_maxrss), now
            if time.monotonic() > deadline:
                raise ProcessTimeout(f"QEMU did not exit within {timeout:g} s after the guest "
                                     "finished")
            time.sleep(0.0005)

    # -- run to completion ----------------------------------------------------------------

    def run(self, workload: Workload, args: Sequence[str] = (), *,
            timeout: float = 300.0) -> RunOutcome:
        """Boot a guest that runs ``workload`` once and powers off.

        ``wall_ns`` is timed on the host from the VB-START to the VB-RESULT serial line (see
        RUN_INTERVAL). A ``{workdir}`` argument is /work: a fresh ext4 disk image for a
        workload whose guest has the block-device modules (fileio), else the guest's tmpfs.
        """
        if workload.user is not None:
            return self._run_user(workload)
        if workload.name not in GUEST_WORKLOADS:
            raise NotSupported(f"{self.variant} runs the built-in workloads only (the guest "
                               "is an initramfs with their static builds)")
        with tempfile.TemporaryDirectory(prefix="vb-vm-") as tmp:
            disk, cache = None, "writeback"
            if any(WORKDIR in a for a in args) and "virtio_blk" in DEVICE_MODULES.get(
                    workload.name, ()):
                disk = make_disk(Path(tmp) / "work.img", _disk_mib(args))
                # cache=none: the host's page cache is bypassed (O_DIRECT), so the guest's
                # own page cache is the only one between its reads and the disk.
                cache = "none" if direct_io_works(disk) else "writeback"
            boot = Boot(workload.name, tuple(substitute_workdir(args, GUEST_WORKDIR)),
                        self.guest_memory_mib, disk=disk, disk_cache=cache,
                        guestfwd=_collector_forward(workload, args),
                        dump=self._dump if workload.name == "trace" else None)
            with self._launch(boot) as (inst, log):
                self._wait(log, "VB-BOOTED", min(timeout, self.boot_timeout), "boot")
                start = self._wait(log, "VB-START", 60, "guest set-up")
                end = self._wait(log, "VB-RESULT" if workload.prints_result else "VB-EXIT",
                                 timeout, f"workload {workload.name}")
                self._wait(log, "VB-EXIT", EXIT_TIMEOUT_S, "workload exit")
                code, peak, _ = self._reap(inst, EXIT_TIMEOUT_S)
                log.close()
                text = log.text
        console = parse_console(text)
        if console.exit_code != 0:
            raise GuestFailed(f"{self.variant}: workload {workload.name} failed in the guest: "
                              f"{console.problem()}; console tail: {log.tail()!r}")
        interval = RUN_INTERVAL if workload.prints_result else USER_INTERVAL
        return RunOutcome(end - start, f"{interval} ({self.accel.upper()})", code,
                          guest_output(text) if not workload.prints_result else text,
                          dict(console.result), peak,
                          rss_of=f"the QEMU process ({self.accel.upper()} guest of "
                                 f"{self.guest_memory_mib} MiB)",
                          disk_cache=cache if disk is not None else "")

    # -- startup --------------------------------------------------------------------------

    # -- long-running instances -----------------------------------------------------------

    # -- disk -----------------------------------------------------------------------------

def _disk_mib(args: Sequence[str]) -> int:
    """Disk size for a fileio run: twice the file size plus room for ext4, at least 128 MiB."""
    size = 64
    if len(args) > 1 and args[1].isdigit():
        size = int(args[1])
    return max(MIN_DISK_MIB, 2 * size + 64)


class Tcg(Qemu):
    """QEMU with the TCG accelerator: the guest CPU is emulated in software."""

    accel = "tcg"

    def check(self) -> Availability:
        missing = self._basics()
        kernel = cached_kernel()
        if missing is not None:
            return Availability(missing.available, missing.reason, missing.fix,
                                self._version(kernel))
        reason = (f"QEMU with TCG: software emulation of the guest CPU (no hardware "
                  f"virtualization), {self.machine.boot_kind}")
        decision = kvm_decision(kernel, cached_only=True) if kernel else None
        reason += ("; KVM decision: " + decision.evidence if decision is not None
                   else "; KVM not probed yet (see the qemu-kvm variants)")
        reason += f"; {distro_status()}"
        return Availability(True, reason, version=self._version(kernel))


class Kvm(Qemu):
    """QEMU with KVM, available only if a real test boot with KVM succeeded here."""

    accel = "kvm"
    cpu = "host"
    boot_timeout = 60.0

    def check(self) -> Availability:
        missing = self._basics()
        if missing is not None:
            return Availability(missing.available, missing.reason, missing.fix,
                                self._version(cached_kernel()))
        kernel = self.kernel()
        decision = kvm_decision(kernel)
        fix = ("" if decision.usable else
               "a host with hardware virtualization (vmx/svm) and kvm_intel or kvm_amd; "
               "the qemu-tcg variants run here instead")
        return Availability(decision.usable, decision.evidence, fix, self._version(kernel))


def _collector_forward(workload: Workload, args: Sequence[str]) -> tuple[str, int] | None:
    """The guestfwd of the built-in ``trace`` workload (ADDR PORT TRACEPARENT): its
    collector's address in the guest and port; None for every other workload."""
    if not workload.builtin or workload.name != "trace" or len(args) < 2:
        return None
    if args[0] != GUEST_COLLECTOR or not str(args[1]).isdigit():
        raise NotSupported(f"the guest reaches a collector at {GUEST_COLLECTOR} only "
                           f"(collector_route), not {args[0]}:{args[1]}")
    return GUEST_COLLECTOR, int(args[1])
