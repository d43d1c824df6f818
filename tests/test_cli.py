"""The command line: doctor, run (with resume after a kill), and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtbench import experiments, platforms
from virtbench.cli import main
from virtbench.results import load_runs

CLI = [sys.executable, "-m", "virtbench.cli"]


def test_unknown_experiment_lists_valid_names(capsys):
    assert main(["run", "startp", "--variant", "native"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'startp'" in err and "startup" in err


def test_unknown_variant_lists_valid_names(capsys):
    assert main(["run", "startup", "--variant", "wasmtme"]) == 2
    err = capsys.readouterr().err
    assert "no variant matches 'wasmtme'" in err and "native/static" in err


def test_unknown_family_is_refused(capsys):
    assert main(["run", "startup", "--family", "vms"]) == 2
    assert "unknown family 'vms'" in capsys.readouterr().err


@pytest.mark.parametrize("reps", ["0", "-3", "x"])
def test_bad_reps_are_refused(reps, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "startup", "--variant", "native", "--reps", reps])
    assert exc.value.code == 2
    assert "--reps" in capsys.readouterr().err


def test_missing_wasm_file_is_named(capsys, tmp_path):
    assert main(["run", "startup", "--wasm", str(tmp_path / "nope.wasm")]) == 2
    assert "nope.wasm" in capsys.readouterr().err


@pytest.mark.integration
def test_doctor_json_reports_every_variant():
    out = subprocess.run(CLI + ["doctor", "--json"], capture_output=True, text=True, timeout=600,
                         check=True)
    report = json.loads(out.stdout)
    assert report["host"]["cpu_count"] >= 1
    names = [p["variant"] for p in report["platforms"]]
    assert names == list(platforms.VARIANTS)
    for p in report["platforms"]:
        assert set(p) >= {"family", "variant", "available", "reason", "version"}
        assert p["family"] in platforms.FAMILIES
        assert isinstance(p["available"], bool)
        assert p["reason"], f"{p['variant']} gives no reason"
    native = next(p for p in report["platforms"] if p["variant"] == "native/static")
    assert native["available"] is True and "clang" in native["version"]


@pytest.mark.integration
def test_run_startup_native_json_summary(tmp_path):
    env = {**os.environ, "VIRTBENCH_DATASETS": str(tmp_path)}
    out = subprocess.run(CLI + ["run", "startup", "--variant", "native/static", "--reps", "5",
                                "--run-id", "t1", "--json"],
                         capture_output=True, text=True, timeout=300, env=env, check=True)
    summary = json.loads(out.stdout)
    fields = {"experiment", "family", "variant", "workload", "metric", "conditions", "unit",
              "n", "median", "ci_low", "ci_high"}
    assert {s["metric"] for s in summary} == {"startup", "peak_rss"}
    for s in summary:
        assert set(s) == fields
        assert s["n"] == 5 and s["ci_low"] <= s["median"] <= s["ci_high"]
    startup = next(s for s in summary if s["metric"] == "startup")
    assert startup["unit"] == "ms" and 0 < startup["median"] < 10_000
    assert "[" in out.stderr  # progress went to stderr
    assert (tmp_path / "t1" / "host.json").exists()


@pytest.mark.integration
def test_killed_run_resumes_without_losing_or_repeating_cells(tmp_path):
    env = {**os.environ, "VIRTBENCH_DATASETS": str(tmp_path)}
    args = CLI + ["run", "startup", "--variant", "native", "--reps", "40", "--run-id", "k"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    results = Path(tmp_path) / "k" / "results.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if results.exists() and results.read_text().count("\n") > 10:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    before = load_runs("k", root=tmp_path)
    n_cells = 2 * (experiments.get("startup").warmup + 40)  # 2 variants, warm-up + 40 reps
    assert 0 < len(before) < 2 * n_cells
    subprocess.run(args, env=env, capture_output=True, timeout=300, check=True)
    after = load_runs("k", root=tmp_path)
    cells = after.groupby(["variant", "rep", "metric"]).size()
    assert (cells == 1).all(), "a cell was measured twice"
    assert len(after) == 2 * n_cells  # 2 metrics per cell
    kept = before.merge(after, on=["variant", "rep", "metric", "timestamp", "value"])
    assert len(kept) == len(before), "rows measured before the kill were lost or rewritten"
