"""Memory of one instance of the ``mem`` workload, read from the host.

The instance is started through :meth:`Platform.instance` (``mem MIB HOLD_MS``: it touches a
buffer of MIB MiB, prints its ready line and sleeps); once it is ready, the counters are
read through the platform's primitives: the instance's own cgroup when it has one (a
container), else its host processes (the workload process, the engine's process, QEMU); the
host processes outside that cgroup (a container's shim); the platform's shared daemons. A VM
is read at several guest sizes, and also by its guest kernel's own accounting (the guest's
MemTotal - MemAvailable); an engine that runs its instances inside its own host process
(Wasm) also gives that process's peak and the marginal memory of one more instance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from virtbench.accounting import memory_group, read_memory
from virtbench.cgroup import CgroupMemory, cgroup_memory
from virtbench.experiments.shared.serving import IDLE_HOLD_MS
from virtbench.platforms.base import Handle, Platform, Workload
from virtbench.process import program_name, read_proc_status
from virtbench.stats import fit_slope
from virtbench.store.schema import Measurement

SETTLE_S = 0.05  # after the ready line, before the reading
#: The guest sizes (MiB) a VM's memory is read at, on its minimal userland (on the others,
#: its default guest size only, except where :data:`USERLAND_GUEST_SIZES` names sizes).
GUEST_SIZES = (128, 256, 512)
#: The guest sizes of the full-OS guest: those the claims about a full VM name (512 MiB)
#: and one above.
USERLAND_GUEST_SIZES = {"minimal": GUEST_SIZES, "debian-systemd": (512, 1024)}
#: Concurrent instances (one host process each) for the marginal memory of one more.
MARGINAL_INSTANCES = 6
#: Instances held by one engine process (a fresh process per count), for the same.
PACKED_COUNTS = (1, 2, 4, 6)
MIB = 1 << 20


def mem_state(mib: int) -> str:
    """The instance's state in words, for descriptions."""
    return "idle" if mib == 0 else f"holding {mib} MiB"


@contextmanager
def mem_instance(plat: Platform, mib: int, **kwargs) -> Iterator[Handle]:
    """``plat``'s instance of ``mem mib``, holding, ready and settled; stopped on exit."""
    with plat.instance(Workload("mem"), [str(mib), IDLE_HOLD_MS], **kwargs) as handle:
        time.sleep(SETTLE_S)
        yield handle


def measure_mem(plat: Platform, mib: int) -> list[Measurement]:
    """Memory of one ``mem mib`` instance (0 = idle): at each guest size for a VM; with the
    marginal memory of one more instance for an engine (Wasm)."""
    if plat.guest_memory_mib is not None:
        sizes = USERLAND_GUEST_SIZES.get(plat.userland, (plat.guest_memory_mib,))
        return [m for size in sizes for m in sized_guest(plat, mib, size)]
    if plat.engine_process:
        return engine_instances(plat, mib)
    return one_instance(plat, mib)


def sized_guest(plat: Platform, mib: int, size: int) -> list[Measurement]:
    """One instance in a guest of ``size`` MiB; a guest that fails is a reason, and the
    other sizes are still read."""
    cond = {"guest_memory_mib": str(size)}
    try:
        rows = one_instance(plat, mib, limits={"memory_mib": size})
    except Exception as exc:
        return [Measurement.missing(m, "MiB", str(exc), tags=cond, conditions=cond)
                for m in ("rss", "pss", "guest_used")]
    return [Measurement(m.metric, m.value, m.unit, m.description, tags={**cond, **m.tags},
                        conditions={**cond, **m.conditions}) for m in rows]


def one_instance(plat: Platform, mib: int, **kwargs) -> list[Measurement]:
    """The counters of one ready instance, and of the platform's shared daemons."""
    with mem_instance(plat, mib, **kwargs) as handle:
        if handle.cgroup_pid is None:
            return process_rows(handle, mib, peak=plat.engine_process) + \
                guest_rows(handle, mib) + daemon_rows(plat, mib, {})
        cg = cgroup_memory(handle.cgroup_pid)
        tags = {"cgroup": f"v{cg.version}",
                **({"network": handle.info["network"]} if "network" in handle.info else {})}
        return cgroup_rows(handle, cg, mib, tags) + daemon_rows(plat, mib, tags)


def process_rows(handle: Handle, mib: int, *, peak: bool = False) -> list[Measurement]:
    """rss and pss (and, for an engine's process, peak_rss) summed over the host processes."""
    statuses = [read_proc_status(p) for p in handle.pids]
    if not statuses or any("VmRSS" not in s for s in statuses):
        raise RuntimeError(f"/proc/<pid>/status of {handle.who} could not be read (pids "
                           f"{handle.pids})")
    where = f"{handle.who}, {mem_state(mib)}"
    out = [Measurement("rss", _kib_sum(statuses, "VmRSS"), "MiB", f"VmRSS of {where}")]
    if all("Pss" in s for s in statuses):
        out.append(Measurement("pss", _kib_sum(statuses, "Pss"), "MiB",
                               f"PSS (smaps_rollup) of {where}"))
    if peak and all("VmHWM" in s for s in statuses):
        out.append(Measurement("peak_rss", _kib_sum(statuses, "VmHWM"), "MiB",
                               f"VmHWM (peak RSS) of {where}"))
    return out


def guest_rows(handle: Handle, mib: int) -> list[Measurement]:
    """guest_used: MemTotal - MemAvailable as the guest kernel counts it (none without a
    guest kernel of its own)."""
    info = handle.guest_meminfo
    if info is None:
        return []
    return [Measurement(
        "guest_used", info.used_kib / 1024, "MiB",
        f"MemTotal - MemAvailable of the guest's own /proc/meminfo ({info.total_kib} - "
        f"{info.available_kib} KiB), read by the guest's init just after the workload's "
        f"VB-READY line, {mem_state(mib)}: the guest kernel's accounting, not the host's. It "
        "holds the guest's processes (the workload, init and the shell that read it), files "
        "in RAM that cannot be dropped (tmpfs, the initramfs), the guest kernel's "
        "unreclaimable memory (slab, page tables, stacks) and its reserves (watermarks); "
        "page cache and reclaimable slab count as available (less a low-watermark share "
        "the kernel keeps back), so they are mostly not in it, and MemTotal already leaves "
        "out what the kernel reserved at boot (its image, the page map); the guest run by "
        f"{handle.who}",
        tags={"guest_mem_total_kib": str(info.total_kib),
              "guest_mem_available_kib": str(info.available_kib)})]


def cgroup_rows(handle: Handle, cg: CgroupMemory, mib: int,
                tags: dict[str, str]) -> list[Measurement]:
    """The container's cgroup counters ``cg``, the containerd shim outside the cgroup, and
    their total."""
    state = mem_state(mib)
    ms = [
        Measurement("cgroup_usage", cg.usage / MIB, "MiB",
                    f"{cg.usage_name} of the container's cgroup ({cg.path.name[:12]}), "
                    f"{state}; includes page cache and kernel memory charged to it", tags=tags),
        Measurement("cgroup_anon", cg.anon / MIB, "MiB",
                    f"{cg.anon_name} (anonymous memory) of the container's cgroup, {state}",
                    tags=tags),
        Measurement("cgroup_file", cg.file / MIB, "MiB",
                    f"{cg.file_name} (page cache) of the container's cgroup, {state}; file "
                    "pages are charged to the cgroup that first read them, so image files "
                    "already cached (read during build or load) are not in it", tags=tags),
    ]
    if cg.peak is not None:
        ms.append(Measurement("cgroup_peak", cg.peak / MIB, "MiB",
                              f"{cg.peak_name} of the container's cgroup: the peak since the "
                              f"container started, read while {state}", tags=tags))
    group = memory_group(handle.cgroup_pid)  # gVisor's Sentry, stubs and Gofer share it
    outside = [p for p in handle.pids if p != handle.cgroup_pid and memory_group(p) != group]
    shim = outside[0] if len(outside) == 1 else None
    name = program_name(shim) if shim else ""
    status = read_proc_status(shim) if shim else {}
    if "containerd-shim" not in name or "VmRSS" not in status:
        return ms + [Measurement.missing(
            "shim_rss", "MiB", f"the container's host processes outside its cgroup (pids "
            f"{outside}, {name!r}) are not one containerd shim")]
    shim_rss = status["VmRSS"] / 1024
    ms.append(Measurement("shim_rss", shim_rss, "MiB",
                          f"VmRSS of the container's {name} process (outside the cgroup, one "
                          f"per container), {state}", tags=tags))
    if "Pss" in status:
        ms.append(Measurement("shim_pss", status["Pss"] / 1024, "MiB",
                              f"PSS of the container's {name} (shared pages split among the "
                              f"shims), {state}", tags=tags))
    held = len(handle.pids) - len(outside)  # gVisor: its Sentry, stubs and Gofer
    inside = "" if held <= 1 else f" (holding {held} of the container's host processes)"
    ms.append(Measurement("total", cg.usage / MIB + shim_rss, "MiB",
                          f"per-container footprint: {cg.usage_name} of the cgroup{inside} "
                          f"plus the VmRSS of its {name}; the shared daemons (dockerd, "
                          f"containerd) are not included, {state}", tags=tags))
    return ms


def daemon_rows(plat: Platform, mib: int, tags: dict[str, str]) -> list[Measurement]:
    """VmRSS of each of the platform's shared daemons while one instance runs."""
    out = []
    for name, pid in plat.shared_processes().items():
        kib = read_proc_status(pid).get("VmRSS")
        if kib is not None:
            out.append(Measurement(f"{name}_rss", kib / 1024, "MiB",
                                   f"VmRSS of {name} (shared by all instances), read while "
                                   f"one instance is {mem_state(mib)}", tags=tags))
    return out


def engine_instances(plat: Platform, mib: int) -> list[Measurement]:
    """One instance in an engine's host process, and the marginal memory of one more: the
    VmRSS of one process holding n instances (a fresh process per n, n in PACKED_COUNTS)
    where the engine holds several, else the summed PSS of n = 1..MARGINAL_INSTANCES
    concurrent instances (one host process each). The first reading gives the one-instance
    rows."""
    first: list[Measurement] = []
    series: list[float] = []
    if plat.instances_per_process:
        for count in PACKED_COUNTS:
            with mem_instance(plat, mib, count=count) as handle:
                first = first or process_rows(handle, mib, peak=True)
                series.append(read_memory(handle.pids).rss)
        return first + daemon_rows(plat, mib, {}) + slope_row(
            "rss_per_instance", list(PACKED_COUNTS), series,
            f"VmRSS of {handle.who} holding n instances (a fresh process per n)", mib)
    counts = list(range(1, MARGINAL_INSTANCES + 1))
    with ExitStack() as stack:
        handles: list[Handle] = []
        for _ in counts:
            handles.append(stack.enter_context(mem_instance(plat, mib)))
            first = first or process_rows(handles[0], mib, peak=True)
            series.append(read_memory(p for h in handles for p in h.pids).pss)
        first += daemon_rows(plat, mib, {})
    return first + slope_row("pss_per_instance", counts, series,
                             "the summed PSS of n concurrent instances (each in its own host "
                             f"process: {handles[0].who})", mib)


def slope_row(metric: str, counts: list[int], series: list[float], what: str,
              mib: int) -> list[Measurement]:
    """The least-squares slope of ``series`` (MiB at ``counts`` instances), CI in the tags."""
    if len(series) < 3:
        return [Measurement.missing(metric, "MiB", f"only {len(series)} instance readings")]
    est = fit_slope(counts, series)
    return [Measurement(
        metric, est.value, "MiB",
        f"least-squares slope of {what} against the number n of live instances "
        f"(n = {', '.join(map(str, counts))}), each {mem_state(mib)}; 95% CI in the tags "
        "ci_low/ci_high",
        tags={"ci_low": repr(est.low), "ci_high": repr(est.high),
              "instances": str(counts[-1])})]


def _kib_sum(statuses: list[dict], key: str) -> float:
    """The sum of one /proc status field (KiB) over processes, in MiB."""
    return sum(s.get(key, 0) for s in statuses) / 1024
