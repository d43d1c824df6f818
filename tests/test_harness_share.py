"""Issue 25, the harness is not the measurement: the launch helper's warm-up, the warm Wasm
start's phases, guard rails outside the engine, hyperfine's export and ``virtbench selfcheck``."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pytest

from virtbench import catalog, hyperfine, selfcheck
from virtbench.cli import main
from virtbench.conditions import wanted
from virtbench.experiments.startup import reading_ns, timing_rows
from virtbench.platforms.base import Workload
from virtbench.platforms.native.platform import TIMED_RUNS
from virtbench.platforms.native.variants import NativeStatic
from virtbench.platforms.wasm import variants
from virtbench.platforms.wasm.common import (
    GuardRailError,
    Limits,
    call_worker,
    parse_worker_line,
    python_worker,
)
from virtbench.platforms.wasm.inprocess import InProcess
from virtbench.process import spawn_and_time
from virtbench.workloads import build, toolchain_status, wasi_sysroot

DATA = Path(__file__).parent / "data"
needs_static = pytest.mark.skipif(not toolchain_status()["static"][0],
                                  reason="no static toolchain")
needs_wasm = pytest.mark.skipif(not toolchain_status()["wasm"][0],
                                reason="the wasm32-wasi toolchain is missing")


# -- hyperfine's JSON export (captured: hyperfine 1.15 -N --warmup 20 --runs 200 noop) ------

def test_parse_hyperfine_json_over_real_export():
    [result] = hyperfine.parse_hyperfine_json((DATA / "hyperfine-noop.json").read_text())
    exported = json.loads((DATA / "hyperfine-noop.json").read_text())["results"][0]
    assert len(result.times_s) == 200 and result.command.endswith("/noop")
    assert math.isclose(result.median_s, exported["median"])
    assert set(result.exit_codes) == {0}


def test_parse_hyperfine_json_errors():
    with pytest.raises(ValueError, match="not JSON"):
        hyperfine.parse_hyperfine_json("Benchmark 1: noop")
    with pytest.raises(ValueError, match="no 'results'"):
        hyperfine.parse_hyperfine_json('{"results": []}')
    with pytest.raises(ValueError, match="no 'times'"):
        hyperfine.parse_hyperfine_json('{"results": [{"command": "x", "mean": 1.0}]}')
    with pytest.raises(ValueError, match="exited with status 3"):
        hyperfine.parse_hyperfine_json(
            '{"results": [{"command": "x", "times": [0.1, 0.2], "exit_codes": [0, 3]}]}')


# -- the launch helper: warm-up and back-to-back runs -------------------------------------

@needs_static
def test_launch_helper_warms_up_then_times_each_run():
    noop = build("noop", "static")
    done = spawn_and_time([noop], warmup=3, runs=5).check()
    assert len(done.samples_ns) == 5 and all(ns > 0 for ns in done.samples_ns)
    assert done.wall_ns == done.samples_ns[0]
    # the warm-up runs' output is discarded: one result line per timed run
    assert done.stdout.count("VB-RESULT workload=noop") == 5
    single = spawn_and_time([noop])
    assert single.samples_ns == () and single.stdout.count("VB-RESULT") == 1
    failing = spawn_and_time(["/bin/false"], runs=3)  # the series stops at a failing run
    assert failing.returncode == 1 and len(failing.samples_ns) == 1
    with pytest.raises(ValueError, match="runs >= 1"):
        spawn_and_time([noop], runs=0)


@needs_static
def test_native_start_rows_steady_state_and_fresh_helper():
    rows = [m for t in NativeStatic().timed_starts(Workload("noop")) for m in timing_rows(t)]
    starts = {json.dumps(m.conditions): m for m in rows if m.metric == "startup"}
    assert set(starts) == {"{}", '{"warm_up": "none"}'}
    steady = starts["{}"]
    assert steady.value > 0 and steady.tags["runs"] == str(TIMED_RUNS)
    assert "back to back" in steady.description and "fork()" in steady.description
    for m in rows:
        catalog.validate("startup", m.metric, m.unit, m.conditions)
    # a user's program is run once, to completion (no warm-up runs of a program with effects)
    assert NativeStatic().timed_starts(Workload("mine", command=("/bin/true",))) == []


# -- new metrics and conditions ---------------------------------------------------------------

def test_new_conditions_are_declared_and_opt_in():
    for metric, conditions in (("startup", {"warm_up": "none"}),
                               ("startup_process", {"time_bound": "epoch"}),
                               ("startup_process", {"memory_limit": "off"}),
                               ("startup_warm_engine", {"allocator": "pooling"}),
                               ("startup_warm_setup", {"memory_limit": "off"}),
                               ("startup_warm", {"time_bound": "none"})):
        catalog.validate("startup", metric, "ms", conditions)
        # rows measured under them never enter a sample that does not ask for them
        assert not wanted(conditions, {})
        assert wanted(conditions, conditions)
    with pytest.raises(ValueError, match="time_bound='fuel'"):
        catalog.validate("startup", "startup_process", "ms", {"time_bound": "fuel"})


class _Split(InProcess):
    variant = "test/split"
    process = "test worker"
    engine_part = "instantiate + _start"
    setup_part = "WASI set-up"

    def check(self):  # never called: warm_timings is pure
        raise NotImplementedError


class _Whole(_Split):
    no_split = "one call does both"


def test_warm_timings_split_and_whole():
    series = {"setup": [1000, 2000, 3000], "engine": [10000, 20000, 40000]}
    warm, engine, setup = _Split().warm_timings(series, "", {"allocator": "pooling"})
    # the series, per instance; the experiment reads the median (of the per-instance sums)
    assert (warm.kind, warm.samples_ns, reading_ns(warm)) == ("warm", (11000, 22000, 43000),
                                                              22000)
    assert (reading_ns(engine), reading_ns(setup)) == (20000, 2000)
    assert engine.kind == "warm_engine" and setup.kind == "warm_setup"
    assert all(t.conditions == {"allocator": "pooling"} for t in (warm, engine, setup))
    warm, engine, setup = _Whole().warm_timings({"total": [5, 7, 9]}, "", {})
    assert reading_ns(warm) == 7 and reading_ns(engine) is None and reading_ns(setup) is None
    assert engine.reason == "one call does both"
    rows = [m for t in (warm, engine, setup) for m in timing_rows(t)]
    assert [m.metric for m in rows] == ["startup_warm", "startup_warm_engine",
                                        "startup_warm_setup"]


# -- guard rails outside the engine ---------------------------------------------------------

@pytest.fixture(scope="module")
def spin_wasm(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spin") / "spin.wasm"
    subprocess.run(["clang", "--target=wasm32-wasi", f"--sysroot={wasi_sysroot()}", "-O2",
                    "-o", out, DATA / "wasm" / "spin.c"], check=True, timeout=120,
                   capture_output=True)
    return out


def test_watchdog_answer_parses():
    stopped = parse_worker_line((DATA / "wasm" / "worker-wasmtime-watchdog.out").read_text())
    assert stopped["interrupted"] and stopped["trap"].startswith("watchdog:")


@needs_wasm
def test_watchdog_ends_a_looping_module_in_the_embedded_worker(spin_wasm, tmp_path):
    with variants.Cranelift() as plat:
        if not plat.availability.available:
            pytest.skip(plat.availability.reason)
        # the watchdog ends the worker before it can remove its files: a scratch of the
        # test's own, as the platform gives the worker one of its own
        spec = plat.spec("run", spin_wasm, [], Limits(64, 0.5), scratch=str(tmp_path))
        answer, done = call_worker(python_worker("worker.py", spec), plat.variant, 60)
        assert answer["interrupted"] and "time limit of 0.5 s" in answer["trap"]
        assert done.returncode == 124  # the worker was ended by its watchdog
        with pytest.raises(GuardRailError, match="time limit of 0.5 s.*watchdog"):
            plat.run(Workload("spin", wasm=spin_wasm), timeout=0.5)


@needs_wasm
def test_cli_is_killed_at_the_limit_and_runs_without_epoch_checks(spin_wasm):
    with variants.Jit() as plat:
        if not plat.availability.available:
            pytest.skip(plat.availability.reason)
        argv = plat.run_argv(Limits(64, 2.0))
        assert not any(a.startswith("timeout=") for a in argv)
        assert f"max-memory-size={64 << 20}" in argv
        assert "timeout=2000ms" in plat.run_argv(Limits(64, 2.0), epoch=True)
        assert not any("max-memory-size" in a
                       for a in plat.run_argv(Limits(64, 2.0), memory_limit=False))
        with pytest.raises(GuardRailError, match="time limit of 0.5 s.*killed"):
            plat.run(Workload("spin", wasm=spin_wasm), timeout=0.5)


# -- selfcheck ------------------------------------------------------------------------------

def test_selfcheck_ratios_per_round():
    check = selfcheck.check_names(["wasm_cpu"])[0]
    rounds = [{"suite": 110.0, "bare": 100.0, "suite_epoch": 132.0},
              {"suite": 120.0, "bare": 100.0, "suite_epoch": 120.0},
              {"suite": 105.0, "bare": 100.0}]
    section = selfcheck.summarize(check, rounds)
    ratio = section["ratios"]["suite / bare"]
    assert ratio["per_round"] == [1.1, 1.2, 1.05] and ratio["value"] == 1.1
    assert ratio["low"] <= ratio["value"] <= ratio["high"]
    assert section["ratios"]["with -W timeout / suite"]["n"] == 2  # a missing side is left out
    assert section["ratios"]["without memory limit / suite"]["n"] == 0
    with pytest.raises(ValueError, match="unknown selfcheck 'nope'; valid: native_start"):
        selfcheck.check_names(["nope"])


@pytest.mark.integration
@needs_wasm
def test_selfcheck_runs_and_writes_host_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path))
    code = main(["selfcheck", "--quick", "--rounds", "2", "--run-id", "sc", "--no-progress",
                 "--check", "native_start", "--check", "warm_wasm", "--check", "wasm_cpu"])
    assert code == 0
    section = json.loads((tmp_path / "sc" / "host.json").read_text())["selfcheck"]
    assert section["rounds"] == 2 and set(section["checks"]) == {"native_start", "warm_wasm",
                                                                  "wasm_cpu"}
    for name, check in section["checks"].items():
        if check["reason"]:  # a tool missing here (hyperfine): said, and no ratios
            assert all(r["n"] == 0 for r in check["ratios"].values()), name
            continue
        for label, ratio in check["ratios"].items():
            assert ratio["n"] == 2 and ratio["value"] > 0, (name, label)
            assert ratio["low"] <= ratio["value"] <= ratio["high"], (name, label)
    printed = capsys.readouterr().out
    assert "warm_wasm: suite / plain loop = " in printed
