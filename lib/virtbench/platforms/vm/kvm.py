"""Whether KVM really works here: decided by a real test boot, never by ``/dev/kvm`` alone.

The probe boots the ``noop`` guest on ``-M microvm -accel kvm -cpu host`` (uncompressed
kernel, so a working KVM finishes in about a second) and counts KVM as usable only if the
guest's init reports the workload's exit within the time limit. A watchdog polls QMP and
ends the probe early when QEMU stops the VM on an internal error (a KVM emulation failure,
as nested paravirtualized KVM gives stock kernels). The decision and its evidence (host
facts, command, elapsed time, QEMU's run state, console findings and tail) are cached per
QEMU version, guest kernel and host kernel in ``<cache>/vm/kvm-probe-<key>.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.vm.console import parse_console
from virtbench.platforms.vm.initramfs import build_initramfs
from virtbench.platforms.vm.kernel import Kernel
from virtbench.platforms.vm.qemu import Boot, Machine, qemu_argv, qemu_version
from virtbench.platforms.vm.qmp import Qmp, QmpError
from virtbench.platforms.vm.serial import ConsoleLog
from virtbench.process import ProcessTimeout, kill_group, start_instance

PROBE_TIMEOUT_S = 25.0
PROBE_CPU = "host"
KVM_DEVICE = Path("/dev/kvm")
_STOPPED_STATES = {"internal-error", "guest-panicked", "shutdown", "io-error"}


@dataclass(frozen=True)
class KvmDecision:
    """The outcome of the probe and everything it rests on."""

    usable: bool
    summary: str                       # one line: the decision and its main evidence
    facts: dict = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    elapsed_ms: float | None = None    # spawn to the end of the test boot (or the stop)
    run_state: str = ""                # QEMU's run state seen by the watchdog
    console_tail: str = ""
    probed_at: str = ""
    key: str = ""
    cpu: str = PROBE_CPU
    cached: bool = False

    @property
    def evidence(self) -> str:
        """Human-readable evidence for ``virtbench doctor``."""
        f = self.facts
        host = (f"/dev/kvm {'present' if f.get('dev_kvm') else 'absent'}"
                f"{'' if f.get('dev_kvm_openable', True) else ' (not openable)'}, "
                f"kvm modules: {', '.join(f.get('kvm_modules') or ['none'])}, "
                f"CPU virtualization flags: {', '.join(f.get('cpu_flags') or ['none'])}")
        when = f"probed {self.probed_at}{' (cached)' if self.cached else ''}"
        return f"{self.summary} [{host}; {when}]"


def host_facts() -> dict:
    """What the host says about KVM before any test boot."""
    facts: dict = {"dev_kvm": KVM_DEVICE.exists(), "host_kernel": platform.release()}
    if facts["dev_kvm"]:
        try:
            fd = os.open(KVM_DEVICE, os.O_RDWR)
            os.close(fd)
            facts["dev_kvm_openable"] = True
        except OSError as exc:
            facts["dev_kvm_openable"] = False
            facts["dev_kvm_error"] = str(exc)
    facts["kvm_modules"] = sorted(m for m in ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm")
                                  if Path("/sys/module", m).exists())
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    facts["cpu_flags"] = sorted(flags & {"vmx", "svm", "hypervisor"})
    return facts


def _key(kernel: Kernel, qemu: str | None, facts: dict) -> str:
    text = json.dumps([qemu, kernel.label, facts.get("host_kernel"), facts.get("kvm_modules"),
                       facts.get("dev_kvm"), PROBE_CPU], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _record_path(key: str) -> Path:
    return cache_dir() / "vm" / f"kvm-probe-{key}.json"


def kvm_decision(kernel: Kernel, *, force: bool = False, timeout: float = PROBE_TIMEOUT_S,
                 cached_only: bool = False) -> KvmDecision | None:
    """The cached decision for this QEMU, guest kernel and host; probe if there is none.

    With ``cached_only`` nothing is booted and None means "not probed yet".
    """
    facts = host_facts()
    key = _key(kernel, qemu_version(), facts)
    path = _record_path(key)
    if not force and path.is_file():
        try:
            data = json.loads(path.read_text())
            return KvmDecision(**{**data, "cached": True})
        except (ValueError, TypeError):
            pass
    if cached_only:
        return None
    decision = probe(kernel, facts, key, timeout)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(decision), indent=1))
    tmp.replace(path)
    return decision


def probe(kernel: Kernel, facts: dict, key: str = "",
          timeout: float = PROBE_TIMEOUT_S) -> KvmDecision:
    """Boot the noop guest with KVM once and decide from what happens."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if not facts.get("dev_kvm"):
        return KvmDecision(False, "KVM not usable: /dev/kvm does not exist (no test boot)",
                           facts, probed_at=now, key=key)
    if not facts.get("dev_kvm_openable", False):
        return KvmDecision(False, f"KVM not usable: /dev/kvm cannot be opened "
                                  f"({facts.get('dev_kvm_error')}; no test boot)",
                           facts, probed_at=now, key=key)
    machine = Machine("microvm", "kvm", PROBE_CPU)
    initrd = build_initramfs("noop", kernel, machine.bus)
    with tempfile.TemporaryDirectory(prefix="vb-kvmprobe-") as tmp:
        sock = Path(tmp) / "qmp.sock"
        argv = qemu_argv(machine, machine.kernel_image(kernel), initrd,
                         Boot("noop", qmp=sock))
        state: dict[str, str] = {}
        with start_instance(argv) as inst:
            log = ConsoleLog(inst)
            done = threading.Event()
            watchdog = threading.Thread(target=_watch, args=(inst.pid, sock, state, done),
                                        daemon=True)
            watchdog.start()
            outcome = "finished"
            try:
                log.wait_for("VB-EXIT", timeout=timeout)
            except ProcessTimeout:
                outcome = "timeout"
            except RuntimeError:
                outcome = "stopped" if state.get("stopped") else "exited"
            finally:
                done.set()
            elapsed_ms = (time.perf_counter_ns() - inst.started_ns) / 1e6
            watchdog.join(2)
            inst.stop()
            log.close()
            text = log.text
    console = parse_console(text)
    run_state = state.get("status", "")
    usable = outcome == "finished" and console.ok
    if usable:
        summary = (f"KVM usable: a test boot (-accel kvm -cpu {PROBE_CPU}, microvm) ran the "
                   f"noop guest to its exit in {elapsed_ms:.0f} ms")
    else:
        why = {
            "timeout": f"no guest exit within {timeout:g} s",
            "stopped": f"QEMU stopped the VM (run state {run_state})",
            "exited": f"QEMU exited with {inst.proc.returncode}",
            "finished": "the guest's workload failed",
        }[outcome]
        detail = console.problem()
        summary = (f"KVM not usable: test boot (-accel kvm -cpu {PROBE_CPU}, microvm) failed "
                   f"after {elapsed_ms:.0f} ms: {why}" + (f"; {detail}" if detail else ""))
    tail = "\n".join(text.replace("\r", "").splitlines()[-40:])[-4000:]
    return KvmDecision(usable, summary, facts, argv, round(elapsed_ms, 1), run_state, tail,
                       now, key, PROBE_CPU)


def _watch(pid: int, sock: Path, state: dict, done: threading.Event) -> None:
    """Poll QEMU's run state; kill QEMU when the VM is stopped for good."""
    try:
        with Qmp(sock, timeout=5).connect(wait=10) as qmp:
            while not done.wait(0.25):
                status = qmp.status()
                state["status"] = status
                if status in _STOPPED_STATES:
                    state["stopped"] = "1"
                    kill_group(pid)
                    return
    except (QmpError, OSError) as exc:
        state.setdefault("qmp_error", str(exc))
