"""The platform seam: one class per way of running a workload.

A platform variant says whether it is usable here (and why not), prepares its artifacts and
offers primitives: run a program to completion (:meth:`Platform.run`), start a long-running
instance with its host processes, cgroup and port (:meth:`Platform.instance`), the shared
daemons behind every instance (:meth:`Platform.shared_processes`), the artifacts it keeps on
disk (:meth:`Platform.artifacts`) and its timed start sequences (:meth:`Platform.timed_starts`).
The experiments measure through these primitives: what a number means, its metric name and
its unit are theirs. A primitive that a variant cannot provide raises :class:`NotSupported`
with the reason; experiments record that reason as a row with no value. An instance that
ends before its workload is ready raises :class:`NotReady` (:class:`WorkloadUnsupported`
when the workload said it cannot do what it was asked here).
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from virtbench.spec import WorkloadSpec

FAMILIES = ("native", "docker", "wasm", "vm")
WORKDIR = "{workdir}"  # placeholder in workload args: a writable directory inside the instance
#: placeholders in a server's args: the address and port it listens on inside the instance
#: (``instance(..., port=n)`` of a user's server; the host reaches it at 127.0.0.1:n)
BIND, PORT = "{bind}", "{port}"


class NotSupported(Exception):
    """This variant cannot make this measurement; the message says why."""


class NotReady(RuntimeError):
    """An instance ended before its workload printed its ready line (``VB-READY``); the
    message says how it ended, with the end of its output."""


class WorkloadUnsupported(NotReady):
    """An instance ended before it was ready because its workload cannot do what it was
    asked on this platform (its result line says ``unsupported=1``, e.g. a fork attack under
    WASI); ``why`` is the workload's reason in words ("" when it gave none)."""

    def __init__(self, message: str, why: str = "") -> None:
        super().__init__(message)
        self.why = why


@dataclass(frozen=True)
class Availability:
    """Whether a variant can run here, why not, how to fix it, and what version runs it."""

    available: bool
    reason: str = ""
    fix: str = ""
    version: str = ""
    #: the check itself broke (its probe died, timed out): worth checking again later
    retry: bool = False


@dataclass(frozen=True)
class Workload:
    """What to run: a built-in workload by name, or a user's own command and/or module.

    ``command`` is a native argv (the user's program); ``wasm`` a ``.wasm`` file; ``spec``
    the rest of how to run it (arguments, stdin, environment, directories, accepted exit
    codes, success pattern, time limit; see :mod:`virtbench.spec`). Built-in workloads
    leave all three empty and are built by :mod:`virtbench.workloads`.
    """

    name: str
    command: tuple[str, ...] = ()
    wasm: Path | None = None
    spec: WorkloadSpec | None = None

    @classmethod
    def of(cls, spec: WorkloadSpec) -> Workload:
        """The workload that runs ``spec``."""
        return cls(spec.name, spec.command, spec.wasm, spec)

    @property
    def builtin(self) -> bool:
        return not self.command and self.wasm is None

    @property
    def prints_result(self) -> bool:
        """Whether it prints the suite's ``VB-RESULT`` line (the suite's own C workloads)."""
        from virtbench.workloads import WORKLOADS

        return self.builtin and self.name in WORKLOADS

    @property
    def user(self) -> WorkloadSpec | None:
        """How to run a user's workload (a bare ``--command``/``--wasm`` gets the defaults);
        None for a built-in workload."""
        if self.builtin:
            return None
        return self.spec or WorkloadSpec(self.name, self.command, self.wasm)


#: The peaks of memory a platform can read after a run: a container's cgroup, its containerd
#: shim, the host process that ran it, a Wasm instance's linear memory, the program's peak
#: RSS inside a guest.
PEAK_KINDS = ("cgroup", "shim", "process_rss", "linear_memory", "guest_rss")


@dataclass(frozen=True)
class Peak:
    """A peak of memory one run reached, in bytes: ``kind`` names the counter in the
    platform's own terms (:data:`PEAK_KINDS`), ``what`` says exactly which one was read;
    with no ``value``, why it could not be. The memory experiment names the metric."""

    kind: str
    value: int | None
    what: str

    def __post_init__(self) -> None:
        if self.kind not in PEAK_KINDS:
            raise ValueError(f"unknown peak kind {self.kind!r}; valid: {', '.join(PEAK_KINDS)}")


@dataclass(frozen=True)
class RunOutcome:
    """One instance run to completion.

    ``wall_ns`` covers ``interval`` (each platform says from which event to which);
    ``result`` holds the workload's ``VB-RESULT`` key=value pairs as it printed them (empty
    for user workloads that print none); ``peak_rss_kib`` is the peak RSS of ``rss_of``
    (None if unknown); ``peaks`` the other peaks the platform read for this run (a
    container's cgroup, a Wasm instance's linear memory), or why not. The platform's own
    facts about the run: ``where`` the workload's work directory lived, in words ("" when
    the platform does not say), and ``disk_cache`` the host's cache mode of the disk image
    under it (a VM's, ``none`` being O_DIRECT; "" when there was no disk image).
    """

    wall_ns: int
    interval: str
    returncode: int
    stdout: str
    result: dict[str, str] = field(default_factory=dict)
    peak_rss_kib: int | None = None
    rss_of: str = ""
    peaks: tuple[Peak, ...] = ()
    where: str = ""
    disk_cache: str = ""


@dataclass(frozen=True)
class GuestMeminfo:
    """A guest kernel's own accounting of its memory: MemTotal and MemAvailable (KiB) of the
    guest's ``/proc/meminfo``, read inside the guest while an instance was ready."""

    total_kib: int
    available_kib: int

    def __post_init__(self) -> None:
        if not 0 <= self.available_kib <= self.total_kib:
            raise ValueError(f"MemAvailable {self.available_kib} KiB is not between 0 and "
                             f"MemTotal {self.total_kib} KiB")

    @property
    def used_kib(self) -> int:
        """MemTotal - MemAvailable: what the guest kernel cannot hand out without swapping."""
        return self.total_kib - self.available_kib


@dataclass
class Handle:
    """A running instance started by :meth:`Platform.instance`.

    ``pids`` are the host processes that make up the instance (for CPU and memory
    accounting: the workload process, or the QEMU process, or the container's processes and
    its shim); ``port`` is the loopback port of a server instance; ``info`` free-form facts
    (container id, network path, engine version, limits applied) that go into row tags, and
    ``info["ready_line"]``: the workload's ``VB-READY ...`` line when the platform can see it.
    ``cgroup_pid``: a process in the instance's own memory cgroup (a container's init), whose
    cgroup counters are the platform's accounting of the instance; None when it has none.
    ``who``: the host processes in words, for the descriptions of rows read from them (e.g.
    "the QEMU process (TCG, guest of 256 MiB)"). ``guest_meminfo``: the guest kernel's own
    MemTotal and MemAvailable, read just after the workload's ready line (a VM running
    ``mem``); None when the instance has no guest kernel of its own.
    """

    pids: list[int]
    port: int | None = None
    ready_ns: int | None = None
    info: dict[str, str] = field(default_factory=dict)
    cgroup_pid: int | None = None
    who: str = "the instance's host processes"
    guest_meminfo: GuestMeminfo | None = None


#: What a :class:`Timing` can time (the startup experiment names one metric for each).
TIMING_KINDS = ("launch", "to_exit", "guest_init", "cold", "warm", "warm_engine", "warm_setup",
                "aot", "process", "create",
                "start", "load", "remove", "pause_resume", "qmp_stop", "qmp_cont",
                "snapshot_save", "snapshot_load", "snapshot_restore", "systemd_finished")


@dataclass(frozen=True)
class Timing:
    """One interval of a start sequence, timed by :meth:`Platform.timed_starts`.

    ``kind`` is one of :data:`TIMING_KINDS`: ``launch`` is the variant's own launch (to exit,
    or to the guest's first line for a VM); ``to_exit`` a guest's launch to QEMU's exit;
    ``guest_init`` the guest kernel's own uptime when init started; ``cold``, ``warm`` and
    ``aot`` an engine started with nothing compiled, with the module compiled, or from
    precompiled code (``warm_engine`` and ``warm_setup``: a warm start's engine part and the
    suite's per-instance set-up, which together make ``warm``); ``process`` a whole engine
    process; ``create``, ``start``, ``load`` and ``remove`` one engine call;
    ``systemd_finished`` a full-OS guest's own startup-finished point (guest clock); the rest
    a VM's pause/resume and snapshot steps. ``ns`` is its length (None when it cannot be
    timed here: ``reason`` says why), ``interval`` from which event to which and under what;
    ``conditions`` and ``tags`` go into its row. ``samples_ns``: a steady-state series of the
    same interval timed back to back (``ns`` None); the experiment reads its median.
    ``peak_rss_kib``: the peak RSS (wait4) of ``rss_of``, the process that ran this start;
    ``state_bytes``: the size of ``state_of``, the state this step saved.
    """

    kind: str
    ns: int | None
    interval: str
    conditions: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    peak_rss_kib: int | None = None
    rss_of: str = ""
    state_bytes: int | None = None
    state_of: str = ""
    samples_ns: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in TIMING_KINDS:
            raise ValueError(f"unknown timing kind {self.kind!r}; valid: "
                             f"{', '.join(TIMING_KINDS)}")


#: What an :class:`Artifact` can be (the disk experiment names one metric for each).
ARTIFACT_KINDS = ("workload", "compiled", "engine", "image_content", "image_archive", "kernel",
                  "initramfs", "disk_image", "disk_image_allocated")


@dataclass(frozen=True)
class Artifact:
    """Bytes on disk that a variant needs, listed by :meth:`Platform.artifacts`.

    ``kind`` is one of :data:`ARTIFACT_KINDS`: ``workload`` is everything one workload needs
    to run (an executable, a module, an image as the engine reports it, a kernel with its
    initramfs or root disk); the others are parts or by-products (the serialized compiled
    module, the engine, the files put into an image, its saved archive, the kernel, an
    initramfs, a disk image's apparent and allocated size). ``what`` says what was sized;
    ``workload`` is None for an artifact every workload shares.
    """

    kind: str
    bytes: int
    what: str
    workload: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ARTIFACT_KINDS:
            raise ValueError(f"unknown artifact kind {self.kind!r}; valid: "
                             f"{', '.join(ARTIFACT_KINDS)}")


@dataclass(frozen=True)
class Portable:
    """A variant's artifact of one workload as a user carries it to another host, unchanged:
    a ``program`` (an executable), an ``image`` (a ``docker save`` archive and the command
    inside it), a ``module`` (a .wasm file), a ``precompiled`` module (a wasmtime .cwasm) or
    a ``guest`` (a kernel and its initramfs)."""

    kind: str
    path: Path
    argv: tuple[str, ...] = ()
    initrd: Path | None = None
    what: str = ""


class Platform(ABC):
    """Base of every platform variant."""

    family: ClassVar[str]
    variant: ClassVar[str]
    summary: ClassVar[str] = ""
    #: The variant that runs the very same machine code (e.g. a JIT and its AOT form): the
    #: cpu experiment measures the code there once instead of repeating identical runs.
    cpu_measured_by: ClassVar[str] = ""
    #: Where the workload's work directory lives: "host" (a directory of the host's or the
    #: guest's kernel file system, with its page cache) or "memory" (the runtime's own
    #: in-memory file system: no disk and no page cache behind it).
    file_system: ClassVar[str] = "host"
    #: ``instance(..., count=n)`` holds n instances in one host process (one engine), for
    #: the marginal memory of one more instance in a running engine.
    instances_per_process: ClassVar[bool] = False
    #: the most instances one host process holds here, and why (None: no known limit)
    max_instances_per_process: ClassVar[tuple[int, str] | None] = None
    #: An instance runs inside a runtime engine's host process (Wasm): that process's peak
    #: holds the engine's own work (compiling the module), and one more instance in a
    #: running engine costs less than the first.
    engine_process: ClassVar[bool] = False
    #: MiB of the guest an instance boots by default (a VM; ``instance(limits=
    #: {"memory_mib": n})`` boots another size); None when instances have no guest of their own.
    guest_memory_mib: ClassVar[int | None] = None
    #: Root file systems besides the minimal one that this variant can run the built-in
    #: workloads on (see :meth:`with_userland`); their rows carry the condition ``userland``.
    userlands: ClassVar[tuple[str, ...]] = ()
    #: The network namespace of an instance is its own (a container on a bridge, a VM
    #: guest), so ``instance(limits={"somaxconn": n})`` can raise its listen backlog cap
    #: without touching the host's.
    own_network_namespace: ClassVar[bool] = False
    #: The root file system of this object's instances: "minimal" (the static workload
    #: alone, or a busybox initramfs) or one of :attr:`userlands`.
    userland: str = "minimal"

    @functools.cached_property
    def availability(self) -> Availability:
        """Checked once per object; subclasses implement :meth:`check`."""
        try:
            return self.check()
        except Exception as exc:  # a broken probe is a reason, not a crash
            return Availability(False, f"availability check failed: {exc}", retry=True)

    def recheck(self) -> Availability:
        """Check again (after a check that broke): forget the cached availability."""
        self.recheck_later()
        return self.availability

    def recheck_later(self) -> None:
        """Forget the cached availability: the next use checks again."""
        self.__dict__.pop("availability", None)

    def health(self) -> str:
        """"" while what this variant's instances rely on besides their own processes (a
        daemon) is running, else what is wrong, in one line (asked after a cell failed)."""
        return ""

    @abstractmethod
    def check(self) -> Availability:
        """Decide whether this variant is usable here (cheap unless it must really try)."""

    def prepare(self, workloads: Sequence[Workload]) -> None:
        """Build or fetch what the workloads need (artifacts, images, kernels). Cached."""

    def run(self, workload: Workload, args: Sequence[str] = (), *,
            timeout: float = 300.0) -> RunOutcome:
        """Launch one instance of ``workload`` with ``args`` and wait until it exits."""
        raise NotSupported(f"{self.variant} cannot run workloads to completion")

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """The intervals of this variant's own start sequences of ``workload`` (usually
        ``noop``), each timed once: e.g. a container's create, start and removal, a cold
        and a warm engine, a guest's boot phases. Empty (the default) when the variant has
        no start sequence of its own: the startup experiment then times a run to completion
        (:meth:`run`)."""
        return []

    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0) -> AbstractContextManager[Handle]:
        """Start one long-running instance; yield its :class:`Handle` once it is ready; stop it.

        For the ``http`` workload, ``port`` is the loopback port on the host that must reach
        the server (127.0.0.1 only); readiness means the server answers. ``limits`` are
        platform limits for isolation experiments (e.g. ``{"memory_mib": 256, "cpus": 1}``);
        ``nofile`` (RLIMIT_NOFILE of the server) and, where :attr:`own_network_namespace`,
        ``somaxconn`` (the instance's listen backlog cap) serve heavy http loads.
        """
        raise NotSupported(f"long-running instances are not implemented for {self.variant}")

    def collector_route(self) -> tuple[str, str]:
        """Where a collector the harness runs (an OTLP receiver) listens on the host, and the
        address at which this variant's instances reach it: (host address, instance address),
        for the built-in ``trace`` workload's ``ADDR``. NotSupported where an instance cannot
        connect out (say why)."""
        raise NotSupported(f"{self.variant} gives its instances no route to the host")

    def capture_traffic(self, port: int, address: str) -> AbstractContextManager[Any]:
        """While the block lasts, capture the TCP packets this variant's instances send to
        ``address``:``port`` (the collector, :meth:`collector_route`), seen from the host at
        the instance's own network interface where it has one (a container's bridge, a
        guest's virtual NIC), else where the host sees the workload's own connection; yields a
        :class:`virtbench.netcapture.Capture` whose packets are filled when the block ends.
        NotSupported where the host cannot see them."""
        raise NotSupported(f"{self.variant} has no place where the host sees its packets")

    def trace_syscalls_inside(self, workload: Workload, args: Sequence[str],
                              seconds: float) -> dict[str, int]:
        """The system calls of a running instance of ``workload``, counted by a tracer run
        inside the instance (``strace -f -c`` attached to its process for ``seconds``):
        {name: calls}. NotSupported where the instance has no tracer of its own inside."""
        raise NotSupported(f"{self.variant} has no tracer inside its instances; host tracers "
                           "see its processes directly")

    def portable_artifact(self, workload: Workload) -> Portable:
        """What a user of this variant carries to another host to run ``workload`` there,
        unchanged (built or fetched if needed)."""
        raise NotSupported(f"{self.variant} names no artifact to carry to another host")

    def precompiled_artifact(self, workload: Workload) -> Portable | None:
        """The compiled form this variant deploys instead of its portable artifact (an
        ahead-of-time variant's precompiled module), to be carried unchanged like it; None
        when the variant deploys its portable artifact itself."""
        return None

    def supplied_kernel(self) -> str | None:
        """The release of the kernel this variant boots for its instances when the harness
        hands it one (a VM's guest kernel); None where instances run on a kernel nobody
        hands them (the host's, or a sandbox's own)."""
        return None

    def shared_processes(self) -> dict[str, int]:
        """Host processes every instance of this variant relies on besides its own, by name
        (Docker: ``dockerd``, ``containerd``); empty when there are none."""
        return {}

    def artifacts(self) -> list[Artifact]:
        """What this variant keeps on disk to run the workloads (built or fetched if needed)."""
        raise NotSupported(f"{self.variant} lists no artifacts")

    def user_artifacts(self, workload: Workload) -> list[Artifact]:
        """Bytes on disk of a user's workload (a user's own Docker image)."""
        raise NotSupported("sizes on disk of a user's workload are measured for a user's own "
                           f"Docker image (spec key image) only, not on {self.variant}")

    def with_userland(self, name: str) -> Platform:
        """A new object of this variant whose instances run on the ``name`` userland (close
        it after use); NotSupported for a userland the variant does not offer."""
        raise NotSupported(f"{self.variant} runs its workloads on the minimal userland only; "
                           f"userlands it offers: {', '.join(self.userlands) or 'none'}")

    def describe_userland(self) -> str:
        """What this object's instances run on, for the descriptions of its rows ("" for the
        minimal userland)."""
        return ""

    def close(self) -> None:
        """Stop anything this object started (daemons, caches of instances)."""

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.variant}>"


def substitute_workdir(args: Sequence[str], workdir: str) -> list[str]:
    """Replace the ``{workdir}`` placeholder in workload arguments."""
    return [a.replace(WORKDIR, workdir) for a in args]


def substitute_server(args: Sequence[str], bind: str, port: int) -> list[str]:
    """Replace the ``{bind}`` and ``{port}`` placeholders in a server's arguments."""
    return [a.replace(BIND, bind).replace(PORT, str(port)) for a in args]


def which(name: str) -> str | None:
    """Path of an executable on PATH or beside the running Python (venv bin), else None."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / name
    if beside.exists() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)
