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
              "n", "median", "ci_low", "ci_high", "coverage"}
    assert {s["metric"] for s in summary} == {"startup", "peak_rss"}
    for s in summary:
        assert set(s) == fields
        assert s["n"] == 5 and s["ci_low"] <= s["median"] <= s["ci_high"]
        assert 0.9 < s["coverage"] < 1  # five samples: [x(1), x(5)], 94 %
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
    after = after.assign(conditions=after["conditions"].fillna(""))
    before = before.assign(conditions=before["conditions"].fillna(""))
    cells = after.groupby(["variant", "rep", "metric", "conditions"]).size()
    assert (cells == 1).all(), "a cell was measured twice"
    # 3 rows per cell: startup (steady state), startup with warm_up=none, peak_rss
    assert len(after) == 3 * n_cells
    kept = before.merge(after, on=["variant", "rep", "metric", "conditions", "timestamp",
                                   "value"])
    assert len(kept) == len(before), "rows measured before the kill were lost or rewritten"


def test_empty_run_id_is_refused(capsys):
    with pytest.raises(SystemExit) as exited:  # refused by the argument parser
        main(["run", "startup", "--variant", "native", "--run-id", ""])
    assert exited.value.code == 2
    assert "invalid run id ''" in capsys.readouterr().err


def test_unknown_option_is_refused_with_the_valid_ones(capsys):
    assert main(["run", "cpu", "--variant", "native", "--option", "cpu_milions=5"]) == 2
    err = capsys.readouterr().err
    assert "unknown option 'cpu_milions'" in err and "cpu_millions (int 1..100000" in err


def test_bad_option_value_is_refused(capsys):
    assert main(["run", "io", "--variant", "native", "--option", "io_mib=lots"]) == 2
    assert "io_mib='lots' is invalid: expected io_mib (int" in capsys.readouterr().err


def test_garbage_row_names_file_line_and_column(tmp_path, capsys):
    run = tmp_path / "datasets" / "g"
    run.mkdir(parents=True)
    header = "run_id,experiment,family,variant,workload,metric,unit,rep,value,reason,warmup," \
             "tags,description,timestamp\n"
    good = "g,startup,native,native/static,noop,startup,ms,0,1.5,,0,,x,2026-11-28T05:43:07+00:00\n"
    (run / "results.csv").write_text(header + good + good.replace(",1.5,", ",fast,"))
    assert main(["run", "startup", "--variant", "native/static", "--run-id", "g"]) == 2
    err = capsys.readouterr().err
    assert "g/results.csv:3: column 'value': 'fast' is not a number" in err
    assert "virtbench repair g" in err


def test_reference_dataset_is_read_only(capsys):
    assert main(["run", "startup", "--variant", "native/static", "--run-id", "reference"]) == 3
    assert "read-only" in capsys.readouterr().err


@pytest.mark.parametrize("content", [None, b"\x7fELF\x02\x01\x01\x00\xff\xfe" * 20])
def test_published_with_a_missing_or_binary_file_is_one_clear_line(tmp_path, monkeypatch,
                                                                   capsys, content):
    papers = Path(__file__).resolve().parent.parent / "papers"
    for csv_file in papers.glob("*.csv"):
        (tmp_path / csv_file.name).write_bytes(csv_file.read_bytes())
    broken = tmp_path / "felter_2015.csv"
    broken.unlink()
    if content is not None:
        broken.write_bytes(content)
    monkeypatch.setenv("VIRTBENCH_PAPERS", str(tmp_path))
    assert main(["published"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert str(broken) in err


@pytest.mark.integration
def test_second_run_on_the_same_id_exits_3_naming_the_first(tmp_path):
    env = {**os.environ, "VIRTBENCH_DATASETS": str(tmp_path)}
    args = CLI + ["run", "startup", "--variant", "native/static", "--reps", "200",
                  "--run-id", "c"]
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lock = tmp_path / "c" / "writer.lock"
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 3, second.stderr
        assert f"PID {first.pid}" in second.stderr
        assert second.stdout == "" and "[1/" not in second.stderr  # refused before measuring
        assert first.poll() is None
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    df = load_runs("c", root=tmp_path)
    assert (df.groupby(["rep", "metric", "conditions"]).size() == 1).all()


