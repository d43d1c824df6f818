"""The WebAssembly family: parsers over captured output, guard rails, and every variant run for
real (checksums against native, startup, memory, disk, io, http, errors)."""

from __future__ import annotations

import http.client
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from virtbench import platforms, runner
from virtbench.accounting import free_port
from virtbench.catalog import VALUES
from virtbench.experiments import get
from virtbench.experiments.base import Params
from virtbench.experiments.cpu import SMOKE_SIZES, measure_cpu
from virtbench.experiments.disk import disk_rows
from virtbench.experiments.io import MEMORY_FS, io_rows
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.startup import startup_rows
from virtbench.platforms.base import NotSupported, Workload
from virtbench.platforms.wasm import cli, node, variants, wasmer
from virtbench.platforms.wasm.cli import parse_cli_error
from virtbench.platforms.wasm.common import (
    GuardRailError,
    Limits,
    WasmModuleError,
    check_module,
    module_for,
    parse_worker_line,
)
from virtbench.platforms.wasm.engines import parse_wasmtime_version
from virtbench.results import RunStore
from virtbench.workloads import build, parse_result_line, toolchain_status, wasi_sysroot

DATA = Path(__file__).parent / "data" / "wasm"
CLASSES = [variants.Cranelift, variants.Winch, variants.Pulley, variants.EmbeddedAot,
           variants.Jit, variants.CliAot, cli.Tcplisten36, node.NodeWasi, wasmer.Wasmer]
IDS = [c.variant for c in CLASSES]
CPU_MILLIONS = "2"
IO_MIB = "2"

# --------------------------------------------------------------------------------------------
# parsers, over captured real output
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "cause"), [
    ("wasmtime49-interrupt.stderr", "failed to run main module `/tmp/spin.wasm`: "
                                    "wasm trap: interrupt"),
    ("wasmtime36-interrupt.stderr", "failed to run main module `/tmp/spin.wasm`: "
                                    "wasm trap: interrupt"),
    ("wasmtime49-memory-limit.stderr", "mem: cannot allocate 64 MiB"),
    ("wasmtime49-missing.stderr", 'failed to open wasm module "/tmp/missing.wasm": '
                                  "No such file or directory (os error 2)"),
    ("wasmtime49-corrupt.stderr", "failed to parse WebAssembly module: "
                                  "unexpected end-of-file (at offset 0xa)"),
    ("wasmtime49-precompiled-mismatch.stderr",
     "failed deserialization for: /tmp/noop.cwasm: Module was compiled without epoch "
     "interruption but it is enabled for the host"),
])
def test_parse_cli_error_finds_the_root_cause(name, cause):
    assert parse_cli_error((DATA / name).read_text()) == cause


def test_parse_cli_error_of_empty_stderr():
    assert parse_cli_error("") == "(no output on stderr)"


@pytest.mark.parametrize(("name", "version"), [("wasmtime49-version.txt", "49.0.3"),
                                               ("wasmtime36-version.txt", "36.0.9")])
def test_parse_wasmtime_version(name, version):
    assert parse_wasmtime_version((DATA / name).read_text()) == version


def test_parse_wasmtime_version_rejects_other_text():
    with pytest.raises(ValueError, match="not a wasmtime version"):
        parse_wasmtime_version("node v20.20.2")


def test_parse_worker_line_over_real_outputs():
    noop = parse_worker_line((DATA / "worker-wasmtime-noop.out").read_text())
    assert noop["exit_code"] == 0 and noop["compile_ns"] > 0
    assert parse_result_line(noop["stdout"]) == {"workload": "noop"}
    node_noop = parse_worker_line((DATA / "worker-node-noop.out").read_text())
    assert node_noop["version"].startswith("v") and node_noop["run_ns"] > 0
    stopped = parse_worker_line((DATA / "worker-wasmtime-interrupt.out").read_text())
    assert stopped["interrupted"] and stopped["trap"] == "wasm trap: interrupt"
    timeout = parse_worker_line((DATA / "worker-wasmer-timeout.out").read_text())
    assert timeout["interrupted"] and "timeout" in timeout["trap"]
    corrupt = parse_worker_line((DATA / "worker-wasmtime-corrupt.out").read_text())
    assert corrupt["kind"] == "module" and "/tmp/corrupt.wasm" in corrupt["error"]


def test_parse_worker_line_errors():
    with pytest.raises(ValueError, match="no VB-WORKER line"):
        parse_worker_line("something else\n")
    with pytest.raises(ValueError, match="malformed"):
        parse_worker_line("VB-WORKER {not json\n")
    assert parse_worker_line("noise\nVB-WORKER {\"a\": 1}\nVB-WORKER {\"a\": 2}\n") == {"a": 2}


# --------------------------------------------------------------------------------------------
# module checks, limits, memory fit (pure logic)
# --------------------------------------------------------------------------------------------


def test_missing_module_names_the_file(tmp_path):
    path = tmp_path / "absent.wasm"
    with pytest.raises(WasmModuleError, match=str(path)):
        check_module(path)


def test_malformed_module_names_the_file(tmp_path):
    text = tmp_path / "text.wasm"
    text.write_text("(module)\n")
    with pytest.raises(WasmModuleError, match="text.wasm is not a WebAssembly module"):
        check_module(text)
    component = tmp_path / "component.wasm"
    component.write_bytes(b"\0asm\x0d\x00\x01\x00")
    with pytest.raises(WasmModuleError, match="component.wasm is not a WebAssembly core"):
        check_module(component)


def test_user_workload_without_module_is_not_supported():
    with pytest.raises(NotSupported, match="no .wasm module"):
        module_for(Workload("mine", command=("/bin/true",)))


def test_limits_merge():
    limits = Limits(memory_mib=64, time_s=10).merged({"memory_mib": 32}, time_s=5)
    assert limits == Limits(32, 5.0) and limits.memory_bytes == 32 << 20
    assert Limits().merged({"cpus": 1, "pids": 8, "nofile": 64}) == Limits()  # host limits
    with pytest.raises(NotSupported, match="disk_iops"):
        Limits().merged({"disk_iops": 1})


def test_the_variants_run_here_are_the_registered_wasm_variants():
    """Both ways: every variant this file runs is registered, and every registered Wasm
    variant is run here (a new one without tests fails this)."""
    registered = {v for v, (fam, _) in platforms.VARIANTS.items() if fam == "wasm"}
    assert set(IDS) == registered, (set(IDS) ^ registered)


# --------------------------------------------------------------------------------------------
# every variant, really run
# --------------------------------------------------------------------------------------------

needs_wasm = pytest.mark.skipif(not toolchain_status()["wasm"][0],
                                reason="the wasm32-wasi toolchain is missing")


@pytest.fixture(scope="module", params=CLASSES, ids=IDS)
def plat(request):
    with request.param() as p:
        if not p.availability.available:
            pytest.skip(f"{p.variant}: {p.availability.reason}")
        yield p


@pytest.fixture(scope="module")
def native_cpu() -> dict:
    done = subprocess.run([build("cpu", "static"), CPU_MILLIONS], capture_output=True,
                          text=True, timeout=60, check=True)
    return parse_result_line(done.stdout)


@pytest.fixture(scope="module")
def native_fileio(tmp_path_factory) -> dict:
    where = tmp_path_factory.mktemp("native-io")
    done = subprocess.run([build("fileio", "static"), str(where), IO_MIB], capture_output=True,
                          text=True, timeout=60, check=True)
    return parse_result_line(done.stdout)


@pytest.fixture(scope="module")
def spin_wasm(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spin") / "spin.wasm"
    subprocess.run(["clang", "--target=wasm32-wasi", f"--sysroot={wasi_sysroot()}", "-O2",
                    "-o", out, DATA / "spin.c"], check=True, timeout=120, capture_output=True)
    return out


@pytest.mark.integration
@needs_wasm
def test_cpu_checksum_equals_native(plat, native_cpu):
    out = plat.run(Workload("cpu"), [CPU_MILLIONS], timeout=120)
    assert out.result["checksum"] == native_cpu["checksum"]
    assert out.result["primes"] == native_cpu["primes"]
    assert out.wall_ns > 0 and out.interval and out.peak_rss_kib > 0


@pytest.mark.integration
@needs_wasm
def test_duplicate_machine_code_is_not_measured_twice(plat):
    if not plat.cpu_measured_by:
        pytest.skip("this variant's cpu time is its own")
    with pytest.raises(NotSupported, match=f"same machine code as {plat.cpu_measured_by}"):
        measure_cpu(plat, Workload("cpu"), Params(options={"cpu_millions": CPU_MILLIONS}))
    assert platforms.VARIANTS[plat.cpu_measured_by][0] == "wasm"


@pytest.mark.integration
@needs_wasm
def test_user_module_runs_through_the_variant(plat, native_cpu, tmp_path):
    user = tmp_path / "mine.wasm"
    shutil.copyfile(build("cpu", "wasm"), user)
    out = plat.run(Workload("mine", wasm=user), [CPU_MILLIONS], timeout=120)
    assert out.result == {}  # a user's module need not print VB-RESULT
    assert parse_result_line(out.stdout)["checksum"] == native_cpu["checksum"]


@pytest.mark.integration
@needs_wasm
def test_startup_metrics(plat):
    # keyed by the metric and its condition values, e.g. "startup_process|pooling"
    ms = {"|".join([m.metric, *m.conditions.values()]): m
          for m in startup_rows(plat, Workload("noop"))}
    assert {"startup_process", "peak_rss"} <= set(ms)
    warm = {f"{m}{c}" for m in ("startup_warm", "startup_warm_engine", "startup_warm_setup")
            for c in ("", "|pooling", "|off", "|none")}
    assert set(ms) <= {"startup_process", "peak_rss", "startup_cold", "startup_aot",
                       "startup_process|pooling", "startup_process|on", "startup_process|off",
                       "startup_process|epoch", "startup_process|precompiled"} | warm
    for m in ms.values():
        # a warm start's parts are absent (with the reason) where the engine does both in one
        # call (wasmer-sdk)
        if m.value is None:
            assert m.metric.startswith("startup_warm_") and m.reason
        else:
            assert m.value > 0 and m.description
        assert m.unit == ("MiB" if m.metric == "peak_rss" else "ms")
    if "startup_cold" in ms:
        assert ms["startup_warm"].value < ms["startup_cold"].value < ms["startup_process"].value
    if "startup_warm" in ms:  # with its two parts (or the reason they are not timed apart)
        assert {"startup_warm_engine", "startup_warm_setup"} <= set(ms)
    if "startup_aot" in ms and "startup_process|precompiled" not in ms:
        assert ms["startup_aot"].value < ms["startup_process"].value


@pytest.mark.integration
@needs_wasm
def test_memory_loaded_exceeds_idle(plat):
    idle = {m.metric: m for m in measure_mem(plat, 0)}
    loaded = {m.metric: m for m in measure_mem(plat, 16)}
    # 16 MiB touched; the engine's own resident pages vary by a MiB or two between processes
    assert loaded["rss"].value - idle["rss"].value >= 12
    per = "pss_per_instance" if "pss_per_instance" in idle else "rss_per_instance"
    assert loaded[per].value >= 15 and loaded[per].value > idle[per].value
    low, high = float(loaded[per].tags["ci_low"]), float(loaded[per].tags["ci_high"])
    assert low <= loaded[per].value <= high


@pytest.mark.integration
@needs_wasm
def test_disk_sizes(plat):
    ms = disk_rows(plat)
    sizes = {(m.metric, m.workload): m for m in ms}
    for name in ("noop", "cpu", "http"):
        art = sizes[("artifact_size", name)]
        assert art.value > 0 and art.unit == "B" and int(art.tags["native_static_b"]) > 0
    assert any(m.metric == "engine_size" and m.value > 1e6 for m in ms)


@pytest.mark.integration
@needs_wasm
def test_fileio_through_wasi(plat, native_fileio):
    out = plat.run(Workload("fileio"), ["{workdir}", IO_MIB], timeout=120)
    for key in ("seq_write_mbps", "seq_read_mbps", "rand_read_mbps", "rand_write_mbps"):
        assert float(out.result[key]) > 0
    assert out.result["checksum"] == native_fileio["checksum"]
    # the same run gives warm reads and, after fd_advise(DONTNEED), cold ones
    assert out.result["cold_drop"] == "ok" and out.result["cold_resident_pct"] == "na"
    rows = {(m.metric, m.conditions.get("cache", "")): m for m in
            io_rows(plat, out, int(IO_MIB))}
    assert set(rows) == {("seq_write", ""), ("rand_write", ""), ("seq_read", "warm"),
                         ("rand_read", "warm"), ("seq_read", "cold"), ("rand_read", "cold")}
    if plat.file_system == "memory":  # wasmer-sdk: an in-memory sandbox file system
        assert all(m.conditions["fs"] == "memory" for m in rows.values())
        assert all(rows[k, "cold"].value is None and MEMORY_FS in rows[k, "cold"].reason
                   for k in ("seq_read", "rand_read"))
    else:
        assert all(m.value > 0 and "fs" not in m.conditions for m in rows.values())
        assert "fd_advise" in rows["seq_read", "cold"].description


@pytest.mark.integration
@needs_wasm
def test_runaway_module_is_stopped(plat, spin_wasm):
    with pytest.raises(GuardRailError, match="spin.wasm|time limit|killed"):
        plat.run(Workload("spin", wasm=spin_wasm), timeout=0.5)


@pytest.mark.integration
@needs_wasm
def test_memory_limit_stops_allocation(plat):
    saved = plat.limits
    plat.limits = Limits(memory_mib=32, time_s=60)
    try:
        with pytest.raises(RuntimeError, match="memory limit 32 MiB.*cannot allocate 128 MiB"):
            plat.run(Workload("mem"), ["128"], timeout=60)
    finally:
        plat.limits = saved


@pytest.mark.integration
@needs_wasm
def test_missing_and_malformed_modules_name_the_file(plat, tmp_path):
    missing = tmp_path / "gone.wasm"
    with pytest.raises(WasmModuleError, match="gone.wasm does not exist"):
        plat.run(Workload("gone", wasm=missing))
    corrupt = tmp_path / "corrupt.wasm"
    corrupt.write_bytes(b"\0asm\x01\x00\x00\x00garbage-here")  # a valid header, a broken body
    with pytest.raises(WasmModuleError, match=str(corrupt)):
        plat.run(Workload("corrupt", wasm=corrupt))


@pytest.mark.integration
@needs_wasm
def test_http_is_served_by_the_old_cli_only(plat):
    if not isinstance(plat, cli.WasmtimeCli):
        pytest.skip("http instances are served by the wasmtime CLI variants")
    port = free_port()
    if not plat.serves_http():
        with pytest.raises(NotSupported, match="tcplisten"):
            with plat.instance(Workload("http"), port=port):
                pass
        return
    with plat.instance(Workload("http"), port=port) as handle:
        assert handle.pids and handle.port == port and handle.ready_ns
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        for _ in range(3):  # keep-alive
            conn.request("GET", "/")
            reply = conn.getresponse()
            assert reply.status == 200 and reply.read() == b"Hello, world\n"
        conn.close()


@pytest.mark.integration
@needs_wasm
def test_runner_writes_rows_for_every_wasm_variant(tmp_path):
    """`virtbench run cpu --family wasm`, small: rows with values or reasons, checksums."""
    variants = ["native/static", *platforms.select(families=["wasm"])]
    store = RunStore("test-wasm-cpu", root=tmp_path)
    runner.run(get("cpu"), variants, store, reps=2, quick=True,
               options=SMOKE_SIZES, progress=None)
    df = store.rows()
    measured = df[df["value"].notna() & ~df["warmup"]]
    assert set(df["variant"]) == set(variants)
    kernels = [json.loads(c)["kernel"] for c in measured["conditions"]]
    checksums = {(k, json.loads(t)["checksum"]) for k, t in zip(kernels, measured["tags"],
                                                                  strict=True)}
    # every variant's checksum of a kernel equals native's (else the cell failed)
    assert len(checksums) == len(VALUES["kernel"]) == len(set(kernels))
    for variant in variants:
        rows = df[df["variant"] == variant]
        if rows["value"].notna().any():
            walls = measured[(measured["variant"] == variant)
                             & (measured["metric"] == "wall_time")]
            assert len(walls) == 2 * len(VALUES["kernel"]), rows["reason"].unique()
        else:
            assert all(rows["reason"].str.len() > 0)
    assert not measured["value"].map(math.isnan).any()

