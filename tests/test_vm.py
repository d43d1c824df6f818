"""Tests for the VM family: guest building blocks (pure logic, captured real output) and real
QEMU boots (integration)."""

from __future__ import annotations

import io
import json
import lzma
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from virtbench.experiments.shared.mem_instance import measure_mem, sized_guest
from virtbench.experiments.startup import startup_rows
from virtbench.platforms.base import GuestMeminfo
from virtbench.platforms.vm.console import (
    guest_meminfo,
    parse_console,
    strace_counts,
    systemd_finished,
)
from virtbench.platforms.vm.init import INIT_SCRIPT, READY_MEMINFO
from virtbench.platforms.vm.initramfs import CpioWriter, modules_needed
from virtbench.platforms.vm.kernel import KernelError, extract_vmlinux, versioned_dependency
from virtbench.platforms.vm.kvm import KvmDecision
from virtbench.platforms.vm.modules import module_info, module_order
from virtbench.platforms.vm.qemu import Boot, Machine, host_tsc_khz, kernel_cmdline, qemu_argv
from virtbench.platforms.vm.qmp import Qmp, QmpError
from virtbench.platforms.vm.serial import ConsoleLog
from virtbench.process import ProcessTimeout, start_instance

DATA = Path(__file__).parent / "data" / "vm"
HAVE_QEMU = shutil.which("qemu-system-x86_64") is not None and Path("/bin/busybox").is_file()
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-x86_64 or busybox-static "
                                                      "not installed")


def read(name: str) -> bytes:
    return (DATA / name).read_bytes()


# --------------------------------------------------------------------------------------------
# serial console parser, on captured real output
# --------------------------------------------------------------------------------------------

def test_console_tcg_cpu_run():
    c = parse_console(read("console_tcg_microvm_cpu.txt"))
    assert c.booted and c.ok and c.powered_off
    assert c.boot_uptime_s is not None and c.boot_uptime_s > 0
    assert c.started == "cpu"
    assert c.result["workload"] == "cpu"
    assert c.result["checksum"] == "0xfe5425e8be24fc55"
    assert int(c.result["elapsed_ns"]) > 0
    assert c.exit_code == 0 and c.problem() == ""


def test_console_pc_noop_run():
    c = parse_console(read("console_tcg_pc_noop.txt").decode())
    assert c.ok and c.result == {"workload": "noop"} and c.panic is None


def test_console_oom_killed_workload():
    c = parse_console(read("console_tcg_microvm_mem_oom.txt"))
    assert c.booted and not c.ok
    assert c.exit_code == 137 and c.result == {}
    assert c.oom == "Out of memory: Killed process 88 (mem)"
    assert "OOM killer" in c.problem() and "137" in c.problem()


def test_console_kvm_emulation_failure():
    c = parse_console(read("console_kvm_pvm_internal_error.txt"))
    assert not c.booted
    assert c.kvm_error is not None
    assert "emulation failure" in c.kvm_error
    assert "ffffffff8132ae50" in c.kvm_error
    assert "f0 48 0f c7 4d 20" in c.kvm_error  # lock cmpxchg16b
    assert c.problem() == c.kvm_error


def test_console_stalled_boot():
    c = parse_console(read("console_tcg_microvm_tsc_stall.txt"))
    assert not c.booted and c.exit_code is None
    assert "never printed VB-BOOTED" in c.problem()


def test_guest_meminfo_read_from_the_line_after_the_ready_line():
    text = read("console_tcg_microvm_mem_meminfo.txt").decode()
    assert text.index("VB-READY") < text.index("VB-MEMINFO")
    info = guest_meminfo(text)
    assert info is not None and 0 < info.available_kib < info.total_kib <= 256 * 1024
    assert info.used_kib == info.total_kib - info.available_kib
    assert guest_meminfo(read("console_tcg_microvm_cpu.txt")) is None  # not asked for
    assert guest_meminfo("x\r\nVB-MEMINFO total_kib=200 available_kib=150\r\n") == \
        GuestMeminfo(200, 150)


@pytest.mark.parametrize("line, wrong", [
    ("VB-MEMINFO total_kib= available_kib=150", "total_kib=''"),
    ("VB-MEMINFO total_kib=200", "available_kib=''"),
    ("VB-MEMINFO total_kib=200 available_kib=-1", "available_kib='-1'"),
    ("VB-MEMINFO total_kib=200 available_kib=300", "not between 0 and MemTotal 200"),
])
def test_a_bad_meminfo_line_is_an_error_naming_the_value(line, wrong):
    with pytest.raises(ValueError, match=re.escape(wrong)):
        guest_meminfo(line)


@pytest.mark.parametrize("shell", ["/bin/busybox sh", "dash"])
def test_init_prints_meminfo_after_the_ready_line_and_keeps_the_exit_code(shell):
    if shutil.which(shell.split()[0]) is None:
        pytest.skip(f"{shell} not installed")
    workload = "printf '%s\\n' 'a\\tb' 'VB-READY workload=mem mib=0' 'VB-RESULT x=1'; exit 3"
    script = READY_MEMINFO + (  # as init runs the workload
        f'{{ ({workload}); echo "VB-RC $?"; }} | ready_meminfo; echo "rc=$?"\n')
    out = subprocess.run([*shell.split(), "-c", script], capture_output=True, text=True,
                         timeout=10, check=True).stdout.splitlines()
    assert out[:2] == ["a\\tb", "VB-READY workload=mem mib=0"]  # lines passed on unchanged
    assert out[2].startswith("VB-MEMINFO ") and guest_meminfo(out[2]).total_kib > 0
    assert out[3:] == ["VB-RESULT x=1", "rc=3"]


def test_full_os_console_says_systemd_is_pid_1_and_when_its_startup_finished():
    text = read("console_tcg_microvm_fullos_noop.txt")
    c = parse_console(text)
    assert c.ok and c.pid1 == "systemd" and c.result == {"workload": "noop"}
    assert c.boot_uptime_s is not None and c.boot_uptime_s > 0
    found = systemd_finished(text)
    assert found is not None and found.state == "running"
    assert 0 < found.userspace_us < found.finish_us
    assert parse_console(read("console_tcg_microvm_cpu.txt")).pid1 is None  # minimal guest
    assert systemd_finished(read("console_tcg_microvm_cpu.txt")) is None


def test_full_os_console_reads_the_guest_memory_of_a_booted_system():
    text = read("console_tcg_microvm_fullos_mem_meminfo.txt").decode()
    assert text.index("VB-BOOTED") < text.index("VB-READY") < text.index("VB-MEMINFO")
    info = guest_meminfo(text)
    assert info is not None and 256 * 1024 < info.total_kib <= 512 * 1024  # a 512 MiB guest
    assert 0 < info.used_kib < info.total_kib
    assert parse_console(text).ok and systemd_finished(text) is not None


def test_strace_summary_printed_inside_the_full_os_guest():
    text = read("console_tcg_microvm_fullos_strace.txt")
    counts = strace_counts(text)
    assert counts == {"fsync": 24, "write": 24, "lseek": 6}  # the hog's io loop; no "total"
    assert strace_counts(read("console_tcg_microvm_fullos_noop.txt")) is None  # not traced
    begun = text.decode().split("VB-STRACE-BEGIN")[0]
    assert strace_counts(begun + "VB-STRACE-BEGIN pid=1\r\nVB-STRACE-END\r\n") == {}


@pytest.mark.parametrize("line, wrong", [
    ("VB-SYSTEMD state=starting finish_us=0 userspace_us=5", "had not finished"),
    ("VB-SYSTEMD state=running finish_us= userspace_us=5", "finish_us=''"),
])
def test_a_bad_systemd_line_is_an_error_naming_what_is_wrong(line, wrong):
    with pytest.raises(ValueError, match=re.escape(wrong)):
        systemd_finished(line)


def test_console_tolerates_chunked_lines():
    text = read("console_tcg_microvm_cpu.txt").decode()
    # the same bytes with a NUL and an ANSI reset inserted, as consoles sometimes add
    noisy = text.replace("VB-EXIT", "\x00\x1b[0mVB-EXIT")
    assert parse_console(noisy).exit_code == 0


# --------------------------------------------------------------------------------------------
# kernel modules, kernel package, initramfs
# --------------------------------------------------------------------------------------------

def _fake_ko(modinfo: bytes) -> bytes:
    """A minimal little-endian ELF64 file with a .modinfo section (and the string table)."""
    shstr = b"\0.modinfo\0.shstrtab\0"
    body = modinfo + shstr
    shoff = 64 + len(body)
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x28, shoff)
    struct.pack_into("<HHH", header, 0x3A, 64, 3, 2)

    def section(name: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQ", name, 1, 0, 0, offset, size) + bytes(24)

    sections = bytes(64) + section(1, 64, len(modinfo)) + section(10, 64 + len(modinfo),
                                                                   len(shstr))
    return bytes(header) + body + sections


def test_module_info_reads_modinfo():
    ko = _fake_ko(b"license=GPL\0depends=virtio_ring,virtio,net_failover\0"
                  b"softdep=pre: crypto-crc32c\0name=virtio_net\0")
    info = module_info(ko)
    assert info.name == "virtio_net"
    assert info.depends == ["virtio_ring", "virtio", "net_failover"]
    assert info.softdep == "pre: crypto-crc32c"
    assert module_info(_fake_ko(b"depends=\0name=crc16\0")).depends == []


def test_module_order_matches_working_insmod_order():
    deps = json.loads(read("modules.json"))
    order = module_order(("virtio_mmio", "virtio_pci", "virtio_net"), deps)
    # the order that works by hand (virtio before virtio_ring fails with Unknown symbol)
    assert order == ["virtio_ring", "virtio", "virtio_mmio", "virtio_pci_modern_dev",
                     "virtio_pci_legacy_dev", "virtio_pci", "failover", "net_failover",
                     "virtio_net"]
    blk = module_order(("virtio_mmio", "virtio_blk", "crc32c_generic", "ext4"), deps)
    for mod, needs in deps.items():
        if mod in blk:
            assert all(blk.index(d) < blk.index(mod) for d in needs)
    with pytest.raises(ValueError, match="unknown module"):
        module_order(("nope",), deps)
    with pytest.raises(ValueError, match="cycle"):
        module_order(("a",), {"a": ["b"], "b": ["a"]})


def test_modules_needed_per_workload_and_bus():
    assert modules_needed("noop", "mmio") == ()
    assert modules_needed("http", "mmio") == ("virtio_mmio", "virtio_net")
    assert modules_needed("fileio", "pci")[0] == "virtio_pci"
    assert "ext4" in modules_needed("fileio", "pci")
    with pytest.raises(ValueError):
        modules_needed("noop", "usb")


def test_versioned_dependency():
    assert versioned_dependency("linux-image-6.1.0-56-amd64 (= 6.1.192-2)") == \
        ("linux-image-6.1.0-56-amd64", "6.1.192-2")
    assert versioned_dependency("linux-image-6.1.0-9-amd64")[0] == "linux-image-6.1.0-9-amd64"
    with pytest.raises(KernelError):
        versioned_dependency("kmod, linux-base")


def test_extract_vmlinux_finds_the_xz_payload():
    elf = b"\x7fELF" + bytes(1000)
    bzimage = b"MZ setup code" + bytes(300) + lzma.compress(elf, format=lzma.FORMAT_XZ) + b"pad"
    assert extract_vmlinux(bzimage) == elf
    with pytest.raises(KernelError):
        extract_vmlinux(b"no xz here")


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio not installed")
def test_cpio_writer_is_read_by_cpio(tmp_path):
    w = CpioWriter()
    w.directory("bin")
    w.directory("dev")
    w.char_device("dev/console", 5, 1)
    w.file("init", b"#!/bin/sh\necho hi\n", 0o755)
    w.file("bin/busybox", b"\x7fELF" + bytes(4097), 0o755)
    w.symlink("bin/sh", "busybox")
    archive = w.finish()
    assert len(archive) % 4 == 0
    listing = subprocess.run(["cpio", "-itv", "--quiet"], input=archive, capture_output=True,
                             timeout=30, check=True).stdout.decode()
    names = [line.split()[-1] if "->" not in line else line.split()[-3]
             for line in listing.splitlines()]
    assert names == ["bin", "dev", "dev/console", "init", "bin/busybox", "bin/sh"]
    assert "bin/sh -> busybox" in listing
    assert listing.splitlines()[2].startswith("crw-------")
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "--no-absolute-filenames"], input=archive,
                   cwd=out, capture_output=True, timeout=30, check=True)
    assert (out / "init").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert os.access(out / "init", os.X_OK)
    assert (out / "bin" / "busybox").stat().st_size == 4101


def test_init_script_prints_the_markers_in_order():
    order = [INIT_SCRIPT.index(m) for m in ("VB-BOOTED", "VB-START", "VB-EXIT", "poweroff")]
    assert order == sorted(order)
    assert INIT_SCRIPT.startswith("#!/bin/sh\n")


# --------------------------------------------------------------------------------------------
# command lines
# --------------------------------------------------------------------------------------------

def test_kernel_cmdline():
    line = kernel_cmdline(Boot("fileio", ("/work", "16"), disk=Path("/tmp/d.img")), "kvm")
    assert "vb.wl=fileio" in line and "vb.args=/work,16" in line and "vb.disk=1" in line
    assert "tsc=reliable" not in line and "vb.net" not in line
    tcg = kernel_cmdline(Boot("http", ("--port", "80"), hostfwd_port=8080), "tcg")
    assert "tsc=reliable" in tcg and "vb.net=1" in tcg and "vb.meminfo" not in tcg
    assert "vb.meminfo=1" in kernel_cmdline(Boot("mem", ("0", "1000"), meminfo=True))
    with pytest.raises(ValueError):
        kernel_cmdline(Boot("cpu", ("a b",)))
    with pytest.raises(ValueError):
        kernel_cmdline(Boot("cpu", ("a,b",)))


def test_host_tsc_khz_is_plausible_or_none():
    khz = host_tsc_khz()
    assert khz is None or 100_000 < khz < 10_000_000


def test_qemu_argv_devices_per_machine(tmp_path):
    k, i = tmp_path / "vmlinux", tmp_path / "initrd"
    boot = Boot("http", hostfwd_port=18080, qmp=tmp_path / "q.sock", disk=tmp_path / "d.img",
                incoming=tmp_path / "snap shot.bin")
    micro = qemu_argv(Machine("microvm", "tcg"), k, i, boot)
    assert micro[micro.index("-M") + 1] == "microvm" and "-nodefaults" in micro
    assert "virtio-net-device,netdev=n0" in micro
    assert any(a.startswith("virtio-blk-device") for a in micro)
    net = micro[micro.index("-netdev") + 1]
    assert "hostfwd=tcp:127.0.0.1:18080-:80" in net and "restrict=on" in net
    assert micro[micro.index("-incoming") + 1] == f"exec:cat '{tmp_path}/snap shot.bin'"
    pc = qemu_argv(Machine("pc", "kvm", "host"), k, i, Boot("noop"))
    assert pc[pc.index("-accel") + 1] == "kvm" and pc[pc.index("-cpu") + 1] == "host"
    assert "-nodefaults" not in pc and pc[pc.index("-net") + 1] == "none"
    with pytest.raises(ValueError):
        Machine("q35", "tcg")


def test_the_io_disk_bypasses_the_host_page_cache_where_o_direct_works(tmp_path):
    from virtbench.platforms.vm.qemu import direct_io_works

    k, i, img = tmp_path / "vmlinux", tmp_path / "initrd", tmp_path / "d.img"
    img.write_bytes(b"\0" * 4096)
    argv = qemu_argv(Machine("microvm", "tcg"), k, i, Boot("fileio", disk=img,
                                                             disk_cache="none"))
    assert argv[argv.index("-drive") + 1].endswith("cache=none")
    assert "cache=writeback" in qemu_argv(Machine("microvm", "tcg"), k, i,
                                          Boot("fileio", disk=img))[argv.index("-drive") + 1]
    assert not direct_io_works(tmp_path / "missing.img")
    shm = Path("/dev/shm")
    if shm.is_dir():  # tmpfs keeps files in memory: QEMU keeps cache=writeback there
        on_tmpfs = shm / f"vb-test-{os.getpid()}.img"
        on_tmpfs.write_bytes(b"\0" * 4096)
        try:
            assert not direct_io_works(on_tmpfs)
        finally:
            on_tmpfs.unlink()


# --------------------------------------------------------------------------------------------
# ConsoleLog (a real child process writing in pieces) and the QMP client (replayed session)
# --------------------------------------------------------------------------------------------

def test_console_log_joins_chunks_and_keeps_everything():
    script = ("printf 'boot\\r\\nVB-BO'; sleep 0.2; printf 'OTED uptime=1.0\\r\\nVB-RESULT x=1"
              "\\r\\nVB-EXIT rc=0\\r\\n'; sleep 0.2; printf 'tail\\n'")
    with start_instance(["sh", "-c", script]) as inst:
        log = ConsoleLog(inst)
        booted = log.wait_for("VB-BOOTED", 5)
        result = log.wait_for("VB-RESULT", 5)
        exited = log.wait_for("VB-EXIT", 5)
        assert inst.started_ns < booted <= result <= exited
        with pytest.raises(RuntimeError, match="before 'never'"):
            log.wait_for("never", 5)
        log.close()
    c = parse_console(log.text)
    assert c.booted and c.boot_uptime_s == 1.0 and c.result == {"x": "1"} and c.exit_code == 0
    assert log.text.endswith("tail\n")


def test_console_log_times_out():
    with start_instance(["sleep", "5"]) as inst:
        log = ConsoleLog(inst)
        with pytest.raises(ProcessTimeout):
            log.wait_for("VB-BOOTED", 0.2)


def _replay_server(path: Path, lines: list[dict]) -> threading.Thread:
    """A unix socket server that plays QEMU's side of a recorded QMP session."""
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(path))
    srv.listen(1)

    def serve() -> None:
        conn, _ = srv.accept()
        f = conn.makefile("rwb")
        for entry in lines:
            if entry["dir"] == "recv":
                f.write(entry["line"].encode() + b"\r\n")
                f.flush()
            else:
                assert json.loads(f.readline()) == json.loads(entry["line"])
        conn.close()
        srv.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t


def test_qmp_client_on_a_recorded_session(tmp_path):
    lines = [json.loads(x) for x in read("qmp_session.jsonl").decode().splitlines()]
    sock = tmp_path / "q.sock"
    server = _replay_server(sock, lines)
    with Qmp(sock, timeout=5).connect(wait=5) as qmp:
        assert qmp.execute("stop") == {}
        assert qmp.status() == "paused"
        assert qmp.execute("cont") == {}
        with pytest.raises(QmpError, match="CommandNotFound"):
            qmp.execute("no-such-command")
    assert [e["event"] for e in qmp.events] == ["STOP", "RESUME"]
    server.join(5)


def test_kvm_decision_evidence_text():
    d = KvmDecision(False, "KVM not usable: test boot failed",
                    {"dev_kvm": True, "kvm_modules": ["kvm", "kvm_pvm"],
                     "cpu_flags": ["hypervisor"]}, probed_at="2026-01-01T00:00:00+00:00")
    assert "kvm_pvm" in d.evidence and "/dev/kvm present" in d.evidence
    assert "probed 2026-01-01" in d.evidence


# --------------------------------------------------------------------------------------------
# integration: real QEMU guests (TCG here), the real KVM probe and doctor
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tcg_microvm():
    from virtbench.platforms import create

    plat = create("qemu-tcg/microvm")
    assert plat.availability.available, plat.availability.reason
    plat.prepare([])
    yield plat
    plat.close()


def _qemu_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "qemu-system-x86_64"], capture_output=True, text=True)
    return {int(p) for p in out.stdout.split()}


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.integration
@needs_qemu
def test_noop_guest_reports_its_result_line(tcg_microvm):
    from virtbench.platforms.base import Workload

    out = tcg_microvm.run(Workload("noop"))
    assert out.result == {"workload": "noop"}
    assert out.returncode == 0 and out.wall_ns > 0
    assert "VB-BOOTED" in out.stdout and "VB-EXIT workload=noop rc=0" in out.stdout
    assert out.peak_rss_kib and out.peak_rss_kib > 1024
    assert "VB-START" in out.interval and "TCG" in out.interval


@pytest.mark.integration
@needs_qemu
def test_cpu_in_guest_matches_native_checksum(tcg_microvm):
    from virtbench.platforms.base import Workload
    from virtbench.workloads import build, parse_result_line

    out = tcg_microvm.run(Workload("cpu"), ["2"])
    native = parse_result_line(subprocess.run([build("cpu", "static"), "2"], capture_output=True,
                                              text=True, timeout=60, check=True).stdout)
    assert out.result["checksum"] == native["checksum"]
    assert out.result["primes"] == native["primes"] == "78498"
    assert int(out.result["elapsed_ns"]) > 0


@pytest.mark.integration
@needs_qemu
def test_every_cpu_kernel_in_the_guest_matches_native(tcg_microvm):
    """One guest per kernel, small sizes; the syscall kernel writes to the guest's tmpfs."""
    from virtbench.catalog import VALUES
    from virtbench.experiments.base import Params
    from virtbench.experiments.cpu import SMOKE_SIZES, measure_cpu
    from virtbench.platforms.base import Workload

    ms = measure_cpu(tcg_microvm, Workload("cpu"), Params(options=SMOKE_SIZES))
    assert [m.reason for m in ms if m.value is None] == []  # every checksum equals native's
    assert {m.conditions["kernel"] for m in ms} == set(VALUES["kernel"])
    assert all("TCG" in m.description for m in ms if m.metric == "wall_time")


@pytest.mark.integration
@needs_qemu
def test_fileio_on_a_virtio_disk(tcg_microvm):
    from virtbench.experiments.io import io_rows
    from virtbench.platforms.base import WORKDIR, Workload
    from virtbench.workloads import as_number, build, parse_result_line

    out = tcg_microvm.run(Workload("fileio"), [WORKDIR, "4"])
    for key in ("seq_write_mbps", "seq_read_mbps", "rand_read_mbps", "rand_write_mbps",
                "cold_seq_read_mbps", "cold_rand_read_mbps"):
        assert as_number(out.result[key]) > 0
    # the guest dropped its own page cache (checked with mincore in the guest) and QEMU
    # opened the image with O_DIRECT (the tmp dir is not a tmpfs here)
    assert out.result["cold_drop"] == "ok" and float(out.result["cold_resident_pct"]) <= 5
    assert out.disk_cache == "none" and "disk_cache" not in out.result
    cold = [m for m in io_rows(tcg_microvm, out, 4) if m.conditions.get("cache") == "cold"]
    assert len(cold) == 2 and all(m.value > 0 for m in cold)
    native = parse_result_line(subprocess.run(
        [build("fileio", "static"), "/tmp", "4"], capture_output=True, text=True, timeout=60,
        check=True).stdout)
    assert out.result["checksum"] == native["checksum"]


@pytest.mark.integration
@needs_qemu
def test_startup_pause_resume_and_snapshot(tcg_microvm):
    from virtbench.platforms.base import Workload

    before = _qemu_pids()
    ms = {m.metric: m for m in startup_rows(tcg_microvm, Workload("noop"))}
    for metric in ("startup", "startup_to_exit", "peak_rss", "qmp_stop", "qmp_cont",
                   "pause_resume", "snapshot_save", "snapshot_size", "snapshot_load",
                   "snapshot_restore"):
        assert ms[metric].value is not None and ms[metric].value > 0, metric
        assert ms[metric].description
    assert ms["startup"].value < ms["startup_to_exit"].value
    assert ms["snapshot_load"].value < ms["snapshot_restore"].value
    assert ms["snapshot_size"].unit == "B" and ms["snapshot_size"].value > 1 << 20
    assert "TCG" in ms["startup"].description
    assert not (_qemu_pids() - before), "a QEMU process was left running"


@pytest.mark.integration
@needs_qemu
def test_http_instance_answers_and_is_cleaned_up_on_interrupt(tcg_microvm):
    import http.client

    from virtbench.accounting import free_port
    from virtbench.platforms.base import Workload

    port = free_port()
    pid = None
    with pytest.raises(KeyboardInterrupt):
        with tcg_microvm.instance(Workload("http"), port=port) as handle:
            pid = handle.pids[0]
            assert handle.port == port and handle.ready_ns
            assert "127.0.0.1" in handle.info["network"]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == b"Hello, world\n"
            conn.close()
            raise KeyboardInterrupt  # as Ctrl-C would
    assert pid is not None and _gone(pid)


@pytest.mark.integration
@needs_qemu
def test_memory_rows_for_each_guest_size(tcg_microvm):
    ms = {(m.metric, m.conditions["guest_memory_mib"]): m for m in measure_mem(tcg_microvm, 0)}
    for key in (("rss", "256"), ("rss", "128"), ("rss", "512"), ("pss", "256")):
        assert ms[key].value is not None and ms[key].value > 1, ms[key].reason
        assert "QEMU" in ms[key].description and "TCG" in ms[key].description
    assert ms["rss", "256"].tags["guest_memory_mib"] == "256"
    for size in (128, 256, 512):  # the guest kernel's own accounting, at each size
        assert 0 < ms["guest_used", str(size)].value < size, ms["guest_used", str(size)].reason


@pytest.mark.integration
@needs_qemu
def test_guest_used_grows_by_the_buffer_the_workload_holds(tcg_microvm):
    def used(mib: int):
        rows = {m.metric: m for m in sized_guest(tcg_microvm, mib, 256)}
        assert rows["guest_used"].value is not None, rows["guest_used"].reason
        return rows["guest_used"]

    idle, loaded = used(0), used(64)
    assert 0 < idle.value < loaded.value < 256
    assert loaded.value - idle.value >= 48  # the 64 MiB buffer, with slack
    assert idle.conditions == {"guest_memory_mib": "256"}
    assert int(loaded.tags["guest_mem_total_kib"]) <= 256 * 1024
    assert "not the host's" in loaded.description and "TCG" in loaded.description


@pytest.mark.integration
@needs_qemu
def test_a_hung_guest_is_reported_and_ended():
    from virtbench.platforms.base import Workload
    from virtbench.platforms.vm.common import GuestFailed
    from virtbench.platforms.vm.variants import TcgMicrovm

    class Impatient(TcgMicrovm):
        boot_timeout = 0.05

    before = _qemu_pids()
    with pytest.raises(GuestFailed, match="guest hung: no VB-BOOTED"):
        Impatient().run(Workload("noop"))
    assert not (_qemu_pids() - before)


@pytest.mark.integration
@needs_qemu
def test_full_boot_on_pc():
    from virtbench.platforms import create
    from virtbench.platforms.base import Workload

    plat = create("qemu-tcg/pc")
    out = plat.run(Workload("noop"))
    assert out.result == {"workload": "noop"}
    assert "-M pc" in plat.availability.version


@pytest.mark.integration
@needs_qemu
def test_kvm_probe_really_boots_and_doctor_shows_the_decision():
    from virtbench import cli
    from virtbench.platforms.vm.kernel import fetch_kernel
    from virtbench.platforms.vm.kvm import kvm_decision

    decision = kvm_decision(fetch_kernel(), force=True)
    assert not decision.cached
    assert decision.summary.startswith(("KVM usable", "KVM not usable"))
    assert decision.probed_at and decision.facts
    if decision.facts.get("dev_kvm") and decision.facts.get("dev_kvm_openable"):
        # a real test boot happened: the command, its duration and what it printed
        assert decision.argv[decision.argv.index("-accel") + 1] == "kvm"
        assert decision.elapsed_ms is not None and decision.elapsed_ms > 0
        assert decision.usable or decision.console_tail or decision.run_state
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["doctor", "--family", "vm", "--verbose"]) == 0
    text = out.getvalue()
    assert "qemu-kvm/microvm" in text and "qemu-tcg/microvm" in text
    assert decision.summary.split(":")[0] in text
    assert "probed" in text
    print(text, file=sys.stderr)
