"""A user's own program in a guest: its static executable in the initramfs, its folders on
a disk of their own, its standard input, and the run timed between the guest init's
VB-START and VB-EXIT lines. Mixed into :class:`virtbench.platforms.vm.platform.Qemu`."""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from virtbench.platforms.base import (
    NotSupported,
    RunOutcome,
    Workload,
)
from virtbench.platforms.docker.images import is_static_executable
from virtbench.platforms.vm.common import (
    EXIT_TIMEOUT_S,
    GUEST_MEMORY_MIB,
    GUEST_WORKDIR,
    MIN_DISK_MIB,
    USER_INTERVAL,
    GuestFailed,
    guest_output,
    guest_peak,
)
from virtbench.platforms.vm.console import (
    parse_console,
)
from virtbench.platforms.vm.guestpeak import PEAK_LINE
from virtbench.platforms.vm.initramfs import DEVICE_MODULES, build_initramfs
from virtbench.platforms.vm.qemu import (
    Boot,
    make_disk,
)
from virtbench.spec import WorkloadSpec, stage_dirs


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


class UserBoot:
    """Users' programs booted in a guest (mixed into :class:`Qemu`)."""

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
