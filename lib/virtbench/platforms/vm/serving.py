"""Long-running guests: a server in the guest reached through a forwarded loopback port, its
host process, the guest kernel's own memory account, and a tracer run inside the guest.
Mixed into :class:`virtbench.platforms.vm.platform.Qemu`."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from virtbench.platforms.base import (
    GuestMeminfo,
    Handle,
    NotSupported,
    Workload,
    substitute_workdir,
)
from virtbench.platforms.vm.common import (
    GUEST_WORKDIR,
    GUEST_WORKLOADS,
    HTTP_TIMEOUT_S,
    MEMINFO_TIMEOUT_S,
    GuestFailed,
)
from virtbench.platforms.vm.console import (
    guest_meminfo,
    strace_counts,
)
from virtbench.platforms.vm.fullos import (
    FULLOS_WORKLOADS,
    STRACE_END,
)
from virtbench.platforms.vm.init import MEMINFO_LINE
from virtbench.platforms.vm.qemu import (
    Boot,
    wait_http,
)
from virtbench.platforms.vm.serial import ConsoleLog
from virtbench.process import ProcessTimeout


class Serving:
    """Long-running guests (mixed into :class:`Qemu`)."""

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
