"""The timed start sequences of a guest: QEMU spawn to the guest's own markers (boot phases,
systemd's own account on the full-OS guest), and pause/resume and snapshot save/restore over
QMP. Mixed into :class:`virtbench.platforms.vm.platform.Qemu`."""

from __future__ import annotations

import shlex
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from virtbench.accounting import free_port
from virtbench.platforms.base import (
    Timing,
    Workload,
)
from virtbench.platforms.vm.common import (
    EXIT_TIMEOUT_S,
    GUEST_MEMORY_MIB,
    HTTP_TIMEOUT_S,
    SNAPSHOT_TIMEOUT_S,
    GuestFailed,
    guest_output,
)
from virtbench.platforms.vm.console import (
    parse_console,
    systemd_finished,
)
from virtbench.platforms.vm.fullos import (
    SYSTEMD_LINE,
)
from virtbench.platforms.vm.qemu import (
    UNCAPPED_BANDWIDTH,
    Boot,
    wait_http,
)
from virtbench.platforms.vm.qmp import Qmp


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


class StartSequences:
    """Timed starts of a guest (mixed into :class:`Qemu`)."""

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
