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

import math
import os
import shlex
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from virtbench.accounting import free_port
from virtbench.distro import build_rootfs
from virtbench.distro import status as distro_status
from virtbench.netcapture import Capture, read_pcap
from virtbench.platforms.base import (
    WORKDIR,
    Artifact,
    Availability,
    GuestMeminfo,
    Handle,
    NotSupported,
    Peak,
    Platform,
    Portable,
    RunOutcome,
    Timing,
    Workload,
    substitute_workdir,
    which,
)
from virtbench.platforms.docker.images import is_static_executable
from virtbench.platforms.vm.console import (
    guest_meminfo,
    parse_console,
    strace_counts,
    systemd_finished,
)
from virtbench.platforms.vm.fullos import (
    FULLOS_WORKLOADS,
    STRACE_END,
    SYSTEMD_LINE,
    build_fullos_disk,
    build_fullos_initramfs,
    build_fullos_rootfs,
)
from virtbench.platforms.vm.guestpeak import PEAK_LINE, busybox_maxrss_scale, guest_peak_kib
from virtbench.platforms.vm.init import MEMINFO_LINE
from virtbench.platforms.vm.initramfs import BUSYBOX, DEVICE_MODULES, build_initramfs
from virtbench.platforms.vm.kernel import Kernel, cached_kernel, fetch_kernel
from virtbench.platforms.vm.kvm import kvm_decision
from virtbench.platforms.vm.qemu import (
    QEMU,
    UNCAPPED_BANDWIDTH,
    Boot,
    Machine,
    accelerators,
    direct_io_works,
    make_disk,
    qemu_argv,
    qemu_version,
    wait_http,
)
from virtbench.platforms.vm.qmp import Qmp
from virtbench.platforms.vm.rootdisk import build_root_disk, build_root_initramfs
from virtbench.platforms.vm.serial import ConsoleLog
from virtbench.process import Instance, ProcessTimeout, start_instance
from virtbench.spec import WorkloadSpec, stage_dirs
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


class Qemu(Platform):
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
        result = dict(console.result)
        if disk is not None:
            result["disk_cache"] = cache
        interval = RUN_INTERVAL if workload.prints_result else USER_INTERVAL
        return RunOutcome(end - start, f"{interval} ({self.accel.upper()})", code,
                          guest_output(text) if not workload.prints_result else text,
                          result, peak,
                          rss_of=f"the QEMU process ({self.accel.upper()} guest of "
                                 f"{self.guest_memory_mib} MiB)")

    @contextmanager
    def _user_boot(self, workload: Workload) -> Iterator[tuple[Boot, Path]]:
        """The boot of a user's static program: its initramfs (the program, an /etc/vb-run
        script with its arguments, environment and stdin) and a virtio disk holding fresh
        copies of its directories, bind-mounted at their guest paths."""
        user = workload.user
        exe = user.program if user is not None else None
        if exe is None:
            raise NotSupported(f"{self.variant} runs a native static program; "
                               + (user.not_on_host() if user is not None else
                                  f"{workload.name!r} has no native command"))
        if not is_static_executable(exe):
            raise NotSupported(f"{exe} is not a static executable; the guest is an initramfs "
                               "of busybox and the program, without a C library")
        files = {"etc/vb-run": user_script(user).encode()}
        if user.stdin is not None:
            files["etc/vb-stdin"] = user.stdin.read_bytes()
        with tempfile.TemporaryDirectory(prefix="vb-vm-user-") as tmp:
            disk = None
            if user.dirs:
                content = Path(tmp) / "disk"
                content.mkdir()
                stage_dirs(user, content)
                used = sum(p.stat().st_size for p in content.rglob("*") if p.is_file())
                disk = make_disk(Path(tmp) / "dirs.img",
                                 max(MIN_DISK_MIB, 2 * (used >> 20) + 64), content)
            initrd = build_initramfs(workload.name, self.kernel(), self.machine.bus,
                                     binary=exe, files=files,
                                     devices=DEVICE_MODULES["fileio"] if disk else ())
            yield Boot(workload.name, (), GUEST_MEMORY_MIB, disk=disk), initrd

    def _run_user(self, workload: Workload) -> RunOutcome:
        user = workload.user
        with self._user_boot(workload) as (boot, initrd):
            with self._launch(boot, initrd) as (inst, log):
                self._wait(log, "VB-BOOTED", self.boot_timeout, "boot")
                start = self._wait(log, "VB-START", 60, "guest set-up")
                end = self._wait(log, "VB-EXIT", user.time_limit_s, f"workload {user.name}")
                code, peak, _ = self._reap(inst, EXIT_TIMEOUT_S)
                log.close()
                text = log.text
        console = parse_console(text)
        if console.errors:
            raise GuestFailed(f"{self.variant}: {console.problem()}; console tail: "
                              f"{log.tail()!r}")
        user.check_outcome(console.exit_code, guest_output(text), workload.name)
        return RunOutcome(end - start, f"{USER_INTERVAL} ({self.accel.upper()})", code,
                          guest_output(text), {}, peak,
                          rss_of=f"the QEMU process ({self.accel.upper()} guest of "
                                 f"{GUEST_MEMORY_MIB} MiB)", peaks=(guest_peak(text),))

    # -- startup --------------------------------------------------------------------------

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """Boot phases, pause/resume and snapshot save and restore (host clock, except the
        guest's own uptime at init)."""
        tag = self.accel.upper()
        kind = f"{self.machine.boot_kind}; accelerator {tag}; {self.guest_kind}"
        user = workload.user
        with ExitStack() as stack:
            boot, initrd = Boot(workload.name, memory_mib=self.guest_memory_mib), None
            if user is not None:
                boot, initrd = stack.enter_context(self._user_boot(workload))
            inst, log = stack.enter_context(self._launch(boot, initrd))
            booted = self._wait(log, "VB-BOOTED", self.boot_timeout, "boot")
            self._wait(log, "VB-EXIT", user.time_limit_s if user else 60,
                       f"workload {workload.name}")
            if self.full_os:
                self._wait(log, SYSTEMD_LINE, self.boot_timeout, "systemd's startup finished")
            _, peak, exited = self._reap(inst, EXIT_TIMEOUT_S)
            log.close()
            console = parse_console(log.text)
            if user is not None:
                user.check_outcome(console.exit_code, guest_output(log.text), workload.name)
            elif console.exit_code != 0:
                raise self._fail(f"workload {workload.name} failed", log)
            if self.full_os and console.pid1 != "systemd":
                raise self._fail(f"PID 1 of the full-OS guest is {console.pid1!r}, not "
                                 "systemd", log)
        first = ("the first line of the script that systemd's vb-workload.service runs "
                 "(VB-BOOTED, just before it starts the workload): systemd as PID 1 brought "
                 "the guest up to that service" if self.full_os else
                 "the first line from the guest's init (VB-BOOTED)")
        starter = "the service's script" if self.full_os else "init"
        finished = (", systemd reported its startup finished (VB-SYSTEMD) and the guest "
                    "powered off through sysrq (no orderly shutdown)" if self.full_os else
                    " and powered off")
        out = [
            Timing("launch", booted - inst.started_ns,
                   f"{kind}: from spawning QEMU (perf_counter_ns before Popen) to the host "
                   f"reading {first} on the serial console",
                   tags={"pid1": console.pid1} if console.pid1 else {}),
            Timing("to_exit", exited - inst.started_ns,
                   f"{kind}: from spawning QEMU to wait4 returning after the guest ran "
                   f"{workload.name}{finished}", peak_rss_kib=peak,
                   rss_of=f"the QEMU process, {tag} guest of {self.guest_memory_mib} MiB; "
                          f"{self.guest_kind}"),
        ]
        if console.boot_uptime_s is not None:
            out.append(Timing("guest_init", round(console.boot_uptime_s * 1e9),
                              f"{kind}: the guest kernel's own /proc/uptime when {starter} "
                              "started (guest clock; excludes firmware and, for a compressed "
                              "kernel, decompression)"))
        if self.full_os:
            out.append(self._systemd_timing(log.text, kind))
        # pause/resume and snapshots are of the suite's http guest, on the minimal userland
        if user is not None or self.userland != "minimal":
            return out
        return out + self.pause_and_snapshot()

    @staticmethod
    def _systemd_timing(text: str, kind: str) -> Timing:
        """systemd's own "Startup finished" point, from the console's VB-SYSTEMD line."""
        try:
            found = systemd_finished(text)
        except ValueError as exc:
            return Timing("systemd_finished", None, "", reason=f"failed: {exc}")
        if found is None:
            return Timing("systemd_finished", None, "",
                          reason="the guest printed no VB-SYSTEMD line")
        return Timing("systemd_finished", found.finish_us * 1000,
                      f"{kind}: systemd's own startup-finished point (what systemd-analyze "
                      "time reports as its total): the manager's FinishTimestampMonotonic, "
                      "the guest's CLOCK_MONOTONIC when the boot's jobs were done (from the "
                      "guest kernel's start; guest clock; includes the busybox initramfs, "
                      "excludes firmware and, for a compressed kernel, decompression), read "
                      "with systemctl show after systemctl is-system-running --wait",
                      tags={"systemd_state": found.state,
                            "userspace_start_us": str(found.userspace_us)})

    def pause_and_snapshot(self) -> list[Timing]:
        """Pause/resume over QMP and a snapshot save + restore of a guest serving HTTP."""
        tag = self.accel.upper()
        where = f"{self.variant} ({tag}) guest serving HTTP through user networking"
        with tempfile.TemporaryDirectory(prefix="vb-vm-snap-") as tmp:
            snap = Path(tmp) / "state.bin"
            with self._serve(Path(tmp), free_port(), GUEST_MEMORY_MIB) as (log, boot, _):
                with Qmp(boot.qmp).connect() as qmp:
                    t0 = time.perf_counter_ns()
                    qmp.execute("stop")
                    t1 = time.perf_counter_ns()
                    if qmp.status() != "paused":
                        raise self._fail("QMP stop did not pause the VM", log)
                    t2 = time.perf_counter_ns()
                    qmp.execute("cont")
                    t3 = time.perf_counter_ns()
                    answered = wait_http(log, boot.hostfwd_port, HTTP_TIMEOUT_S)
                    save_ns = _save_snapshot(qmp, snap)
            snap_bytes = snap.stat().st_size
            restore = Boot("http", boot.args, boot.memory_mib,
                           hostfwd_port=free_port(), qmp=Path(tmp) / "restore.sock",
                           incoming=snap)
            with self._launch(restore) as (inst2, log2):
                with Qmp(restore.qmp).connect(wait=SNAPSHOT_TIMEOUT_S) as qmp2:
                    loaded = _wait_status(qmp2, ("paused", "running"), SNAPSHOT_TIMEOUT_S)
                    qmp2.execute("cont")
                    back = wait_http(log2, restore.hostfwd_port, HTTP_TIMEOUT_S)
        return [
            Timing("qmp_stop", t1 - t0, f"QMP 'stop' round trip on a {where}"),
            Timing("qmp_cont", t3 - t2, f"QMP 'cont' round trip on the paused {where}"),
            Timing("pause_resume", answered - t2,
                   f"{where}, paused with QMP 'stop' (run state checked): from sending QMP "
                   "'cont' to the first HTTP 200 answered by the guest"),
            Timing("snapshot_save", save_ns,
                   f"{where}: from sending QMP 'stop' to query-migrate reporting 'completed' "
                   "for 'migrate exec:cat > FILE' with max-bandwidth "
                   f"{UNCAPPED_BANDWIDTH >> 30} GiB/s (cap lifted)", state_bytes=snap_bytes,
                   state_of=f"the saved device and RAM state of a {GUEST_MEMORY_MIB} MiB guest "
                            f"({tag})"),
            Timing("snapshot_load", loaded - inst2.started_ns,
                   f"{self.variant} ({tag}): from spawning a new QEMU with -incoming "
                   "'exec:cat FILE' to QMP query-status reporting the state loaded"),
            Timing("snapshot_restore", back - inst2.started_ns,
                   f"{self.variant} ({tag}): from spawning a new QEMU with -incoming "
                   "'exec:cat FILE' to the first HTTP 200 from the restored guest (includes "
                   "loading the state and QMP 'cont')"),
        ]

    # -- long-running instances -----------------------------------------------------------

    @contextmanager
    def _serve(self, tmp: Path, port: int, memory_mib: int, cpus: int = 1,
               extra: Sequence[str] = (), nofile: int | None = None,
               somaxconn: int | None = None) -> Iterator[tuple[ConsoleLog, Boot, int]]:
        """A guest running the http workload, forwarded from 127.0.0.1:port, answering
        (``nofile``: its RLIMIT_NOFILE and QEMU's; ``somaxconn``: the guest's backlog cap).

        Yields its console log, its boot description and when its first HTTP 200 came.
        """
        boot = Boot("http", ("--port", "80", "--bind", "0.0.0.0", *extra), memory_mib, cpus,
                    hostfwd_port=port, qmp=tmp / "qmp.sock", nofile=nofile,
                    somaxconn=somaxconn)
        with self._launch(boot) as (_, log):
            self._wait(log, "VB-BOOTED", self.boot_timeout, "boot")
            self._wait(log, "VB-READY", HTTP_TIMEOUT_S, "http server start")
            try:
                ready = wait_http(log, port, HTTP_TIMEOUT_S)
            except (TimeoutError, RuntimeError) as exc:
                raise self._fail("the guest's HTTP server did not answer", log, exc) from exc
            yield log, boot, ready

    @contextmanager
    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0) -> Iterator[Handle]:
        """A guest running ``workload``; for ``http`` QEMU forwards 127.0.0.1:port -> :80.

        Ready means, for ``http``, the first HTTP 200 through the forward; for ``mem`` its
        VB-READY line (on the full-OS guest held back until systemd's startup finished), and
        the handle's ``guest_meminfo`` is the guest's own MemTotal and
        MemAvailable, which init reads right after that line (the workload's output passes
        through init's shell for it); otherwise the guest's VB-START line. ``limits`` may set
        ``memory_mib`` (guest RAM) and ``cpus`` (vCPUs, at least one); ``pids`` and
        ``nofile`` need no host limit: the guest's processes and descriptors live in the
        guest kernel, inside the VM's memory and vCPUs (for http, ``nofile`` is the
        server's ulimit in the guest and QEMU's RLIMIT_NOFILE, ``somaxconn`` the guest's).
        """
        if not workload.builtin or workload.name not in GUEST_WORKLOADS:
            raise NotSupported(f"{self.variant} runs the built-in workloads only")
        limits = dict(limits or {})
        memory = int(limits.pop("memory_mib", self.guest_memory_mib))
        cpus = max(1, math.ceil(float(limits.pop("cpus", 1))))
        nofile, somaxconn = limits.get("nofile"), limits.pop("somaxconn", None)
        contained = [k for k in ("pids", "nofile") if limits.pop(k, None) is not None]
        if limits:
            raise NotSupported(f"{self.variant} supports the limits memory_mib, cpus, pids, "
                               f"nofile and somaxconn, not {', '.join(limits)}")
        info = {"accelerator": self.accel, "machine": self.machine_type,
                "guest_memory_mib": str(memory), "vcpus": str(cpus)}
        if contained:
            info["limits"] = (f"guest of {memory} MiB with {cpus} vCPU(s); "
                              f"{', '.join(contained)} contained by the guest kernel")
        with tempfile.TemporaryDirectory(prefix="vb-vm-inst-") as tmp:
            if workload.name == "http":
                if port is None:
                    raise ValueError("the http workload needs a port")
                with self._serve(Path(tmp), port, memory, cpus, args,
                                 nofile=None if nofile is None else int(nofile),
                                 somaxconn=None if somaxconn is None else int(somaxconn)
                                 ) as (log, boot, ready):
                    info.update(network="QEMU user networking (slirp), hostfwd "
                                        f"tcp:127.0.0.1:{port} -> guest :80",
                                qmp_socket=str(boot.qmp))
                    if nofile is not None:
                        info["limits"] = (f"{info.get('limits', '')}; RLIMIT_NOFILE {nofile} "
                                          "in the guest (ulimit -n) and for QEMU (slirp holds "
                                          "a host socket per connection)").lstrip("; ")
                    if somaxconn is not None:
                        info["somaxconn"] = f"{int(somaxconn)} (the guest's)"
                    yield Handle(pids=[log.inst.pid], port=port, ready_ns=ready, info=info,
                                 who=self._who(memory))
                return
            mem = workload.name == "mem"
            boot = Boot(workload.name, tuple(substitute_workdir(args, GUEST_WORKDIR)), memory,
                        cpus, qmp=Path(tmp) / "qmp.sock", meminfo=mem)
            with self._launch(boot) as (inst, log):
                self._wait(log, "VB-BOOTED", self.boot_timeout if self.full_os
                           else min(timeout, self.boot_timeout), "boot")
                # the full OS holds a mem workload's ready line until systemd's startup
                # finished: that is part of its boot
                ready = self._wait(log, "VB-READY" if mem else "VB-START",
                                   max(timeout, self.boot_timeout) if self.full_os else timeout,
                                   f"{workload.name} start")
                yield Handle(pids=[inst.pid], port=None, ready_ns=ready,
                             info={**info, "qmp_socket": str(boot.qmp)}, who=self._who(memory),
                             guest_meminfo=self._meminfo(log) if mem else None)

    def trace_syscalls_inside(self, workload: Workload, args: Sequence[str],
                              seconds: float) -> dict[str, int]:
        """On the full-OS guest: its service starts ``workload`` in the background and runs
        ``strace -f -c -p PID`` on it inside the guest for ``seconds``; the summary it prints
        on the console, as {system call: calls}."""
        if not self.full_os:
            raise NotSupported(f"{self.variant} traces inside the guest on the full-OS guest "
                               "(userland debian-systemd) only: strace is in its root disk")
        if not workload.builtin or workload.name not in FULLOS_WORKLOADS:
            raise NotSupported(f"the full-OS guest holds the workloads "
                               f"{', '.join(FULLOS_WORKLOADS)}, not {workload.name}")
        boot = Boot(workload.name, tuple(substitute_workdir(args, GUEST_WORKDIR)),
                    self.guest_memory_mib, trace_s=seconds)
        with self._launch(boot) as (_, log):
            self._wait(log, "VB-BOOTED", self.boot_timeout, "boot")
            self._wait(log, STRACE_END, seconds + HTTP_TIMEOUT_S, "strace inside the guest")
            text = log.text
        counts = strace_counts(text)
        if not counts:
            raise self._fail("strace printed no summary table inside the guest", log)
        return counts

    def _meminfo(self, log: ConsoleLog) -> GuestMeminfo:
        """The guest's MemTotal and MemAvailable from init's VB-MEMINFO line (printed just
        after the workload's VB-READY line, while the workload holds its memory)."""
        try:
            line = log.wait_line(MEMINFO_LINE, MEMINFO_TIMEOUT_S)
        except (ProcessTimeout, RuntimeError) as exc:
            raise self._fail(f"no {MEMINFO_LINE} line after VB-READY", log, exc) from exc
        try:
            found = guest_meminfo(line)
        except ValueError as exc:
            found, why = None, str(exc)
        else:
            why = "no key=value pairs"
        if found is None:
            raise GuestFailed(f"{self.variant}: init's line {line!r} is unreadable: {why}")
        return found

    def _who(self, memory_mib: int) -> str:
        """An instance's host process in words."""
        return (f"the QEMU process ({self.accel.upper()}, guest of {memory_mib} MiB; "
                f"{self.guest_kind})")

    # -- disk -----------------------------------------------------------------------------

    def artifacts(self) -> list[Artifact]:
        """The kernel, each workload's initramfs, the I/O disk image, and what each workload
        boots from (debian userland: the kernel, the initramfs that mounts the root disk, and
        the root disk)."""
        kernel = self.kernel()
        image = self.machine.kernel_image(kernel)
        kernel_bytes = image.stat().st_size
        what = ("compressed bzImage" if self.machine_type == "pc"
                else "uncompressed ELF vmlinux")
        out = [Artifact("kernel", kernel_bytes, f"the {what} this variant boots ({kernel.label})")]
        if self.userland != "minimal":
            return out + self._root_disk_artifacts(kernel_bytes, what)
        with tempfile.TemporaryDirectory(prefix="vb-vm-disk-") as tmp:
            img = make_disk(Path(tmp) / "work.img", MIN_DISK_MIB)
            apparent, allocated = img.stat().st_size, img.stat().st_blocks * 512
        for name in ("noop", "cpu", "http", "fileio"):
            initrd = build_initramfs(name, kernel, self.machine.bus).stat().st_size
            total = kernel_bytes + initrd + (allocated if name == "fileio" else 0)
            extra = (f" + the allocated blocks of the empty {MIN_DISK_MIB} MiB ext4 disk image"
                     if name == "fileio" else "")
            out += [
                Artifact("initramfs", initrd,
                         f"gzip cpio: init, busybox-static, the static {name} workload"
                         + (" and its kernel modules" if name in ("http", "fileio") else ""),
                         workload=name),
                Artifact("workload", total, f"the {what} + the {name} initramfs{extra}",
                         workload=name),
            ]
        return out + [
            Artifact("disk_image", apparent, "apparent size of the raw ext4 image attached for "
                     "I/O", workload="fileio"),
            Artifact("disk_image_allocated", allocated, "blocks allocated (st_blocks) by the "
                     "sparse raw ext4 image after mke2fs", workload="fileio"),
        ]

    def _root_disk_artifacts(self, kernel_bytes: int, what: str) -> list[Artifact]:
        """A root-disk userland's boot: its initramfs, its root disk, their sum per
        workload."""
        initrd = self.root_initramfs().stat().st_size
        root = self.root_disk()
        apparent, allocated = root.stat().st_size, root.stat().st_blocks * 512
        label = (build_fullos_rootfs() if self.full_os else build_rootfs()).label
        disk = (f"the raw ext4 root disk (mkfs.ext4 -d) of {label} with the static workloads "
                "under /vb/wl" + (" and the systemd unit that runs them" if self.full_os
                                  else ""))
        target = "systemd (/sbin/init)" if self.full_os else "it"
        out = [
            Artifact("initramfs", initrd, "gzip cpio: busybox-static, the virtio and ext4 "
                     f"modules and an init that mounts the root disk and switch_roots to "
                     f"{target}", workload="noop"),
            Artifact("disk_image", apparent, f"apparent size of {disk}", workload="noop"),
            Artifact("disk_image_allocated", allocated, f"blocks allocated (st_blocks) by {disk}",
                     workload="noop"),
        ]
        return out + [Artifact("workload", kernel_bytes + initrd + allocated,
                               f"the {what} + the root-disk initramfs + the allocated blocks of "
                               f"{disk} (one disk holds every workload, {name} among them)",
                               workload=name) for name in ("noop", "cpu", "http")]


def user_script(user: WorkloadSpec) -> str:
    """``/etc/vb-run`` of a user's workload: bind its directories (on the disk init mounted
    at /work) to their guest paths, set its environment, run it with its stdin."""
    q = shlex.quote
    lines = []
    for i, d in enumerate(user.dirs):
        lines.append(f"mkdir -p {q(d.guest)} && mount -o bind {GUEST_WORKDIR}/dir{i} "
                     f"{q(d.guest)} || echo 'VB-ERROR bind {d.guest}'")
    lines += [f"export {k}={q(v)}" for k, v in user.env]
    run = " ".join(q(a) for a in [f"/wl/{user.name}", *user.command[1:], *user.args])
    lines.append(f"time -o /etc/vb-peak -f %M {run}"
                 + (" < /etc/vb-stdin" if user.stdin is not None else " < /dev/null"))
    lines += ["rc=$?", f'echo "{PEAK_LINE} maxrss_kib=$(tail -n 1 /etc/vb-peak)"', "exit $rc"]
    return "\n".join(lines) + "\n"


def guest_output(text: str) -> str:
    """What the workload printed: the console between VB-START and VB-EXIT (kernel
    messages that came in between included)."""
    start = text.find("VB-START")
    start = text.find("\n", start) + 1 if start >= 0 else 0
    end = text.find("VB-EXIT", start)
    out = text[start:end if end >= 0 else len(text)].replace("\r\n", "\n")
    return "".join(line for line in out.splitlines(keepends=True)
                   if not line.startswith(f"{PEAK_LINE} "))


def _disk_mib(args: Sequence[str]) -> int:
    """Disk size for a fileio run: twice the file size plus room for ext4, at least 128 MiB."""
    size = 64
    if len(args) > 1 and args[1].isdigit():
        size = int(args[1])
    return max(MIN_DISK_MIB, 2 * size + 64)


def _save_snapshot(qmp: Qmp, path: Path) -> int:
    """Stop the VM and migrate its state into ``path``; return ns from stop to completed."""
    qmp.execute("migrate-set-parameters", {"max-bandwidth": UNCAPPED_BANDWIDTH})
    t0 = time.perf_counter_ns()
    qmp.execute("stop")
    qmp.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(path))}"})
    deadline = time.monotonic() + SNAPSHOT_TIMEOUT_S
    while True:
        info = qmp.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            return time.perf_counter_ns() - t0
        if status in ("failed", "cancelled"):
            raise GuestFailed(f"snapshot save {status}: {info.get('error-desc', '')}")
        if time.monotonic() > deadline:
            raise GuestFailed(f"snapshot save not completed within {SNAPSHOT_TIMEOUT_S:g} s "
                              f"(status {status})")
        time.sleep(0.001)


def _wait_status(qmp: Qmp, wanted: Sequence[str], timeout: float) -> int:
    """Poll query-status until the run state is one of ``wanted``; return perf_counter_ns."""
    deadline = time.monotonic() + timeout
    while True:
        status = qmp.status()
        if status in wanted:
            return time.perf_counter_ns()
        if time.monotonic() > deadline:
            raise GuestFailed(f"incoming migration: run state still {status!r} after "
                              f"{timeout:g} s")
        time.sleep(0.001)


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


def guest_peak(console: str) -> Peak:
    """The program's peak RSS inside the guest, from the console's VB-PEAK line."""
    reported = guest_peak_kib(console.replace("\r\n", "\n"))
    if reported is None:
        return Peak("guest_peak_rss", None, "the guest printed no VB-PEAK line")
    try:
        scale = busybox_maxrss_scale()
    except Exception as exc:  # the unit cannot be measured: no number rather than a guess
        return Peak("guest_peak_rss", None, f"busybox time's unit is unknown: {exc}")
    unit = (f"divided by {scale}, the factor by which this busybox reports it too large "
            "(measured on the host)" if scale != 1 else "in KiB")
    return Peak("guest_peak_rss", reported // scale * 1024,
                f"peak RSS of the program inside the guest: the guest kernel's wait4 "
                f"ru_maxrss as busybox time %M printed it, {unit}")


def _collector_forward(workload: Workload, args: Sequence[str]) -> tuple[str, int] | None:
    """The guestfwd of the built-in ``trace`` workload (ADDR PORT TRACEPARENT): its
    collector's address in the guest and port; None for every other workload."""
    if not workload.builtin or workload.name != "trace" or len(args) < 2:
        return None
    if args[0] != GUEST_COLLECTOR or not str(args[1]).isdigit():
        raise NotSupported(f"the guest reaches a collector at {GUEST_COLLECTOR} only "
                           f"(collector_route), not {args[0]}:{args[1]}")
    return GUEST_COLLECTOR, int(args[1])
