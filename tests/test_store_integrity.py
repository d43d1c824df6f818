"""Nothing lost, nothing left behind: torn tails, incomplete cells, bad rows, repair, one
writer per run, host checks, declared options, retried failures and exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from virtbench import catalog, experiments, runner
from virtbench.cli import main
from virtbench.experiments.base import Experiment, Option, check_options
from virtbench.host import write_host_json
from virtbench.platforms.base import Availability, Platform, Workload
from virtbench.results import (
    CELLS_FILE,
    FORMAT_FILE,
    DatasetError,
    Measurement,
    RunRefused,
    RunStore,
    load_runs,
    make_rows,
    repair,
)

LIB = str(Path(__file__).resolve().parent.parent / "lib")
ROWS_PER_CELL = 3


@pytest.fixture(autouse=True)
def test_metrics(monkeypatch):
    """The store's tests write metrics m0, m1, ... of their own: declared for them."""
    for experiment in ("startup", "e"):
        for i in range(60):
            monkeypatch.setitem(catalog.CATALOG, (experiment, f"m{i}"),
                                catalog.Metric(f"m{i}", experiment, "ms", "lower", "a test"))
    monkeypatch.setitem(catalog.CATALOG, ("fakeexp", "t"), FAKE.metric("t"))


def cell(store: RunStore, rep: int, n: int = ROWS_PER_CELL, reason: str = "") -> None:
    ms = [Measurement.missing(f"m{i}", "ms", reason) if reason else
          Measurement(f"m{i}", float(rep * 10 + i), "ms", "a test value") for i in range(n)]
    store.write_cell(make_rows(ms, run_id=store.run_id, experiment="startup", family="native",
                               variant="native/static", workload="noop", rep=rep))


def partial_rows(store: RunStore, rep: int, n: int) -> str:
    """The CSV text of the first ``n`` rows of a cell, as a crash would leave them."""
    other = RunStore("scratch", root=store.dir.parent / "scratch-root")
    cell(other, rep)
    lines = other.path.read_text().splitlines(keepends=True)
    return "".join(lines[1:1 + n])


# ---- torn tails and incomplete cells ---------------------------------------------------------

def test_torn_tail_is_cut_back_before_appending(tmp_path):
    store = RunStore("r", root=tmp_path)
    cell(store, 0)
    with store.path.open("a") as fh:
        fh.write("r,startup,native,native/static,noop,m0,ms,1,2.0")  # crash mid-line
    cell(RunStore("r", root=tmp_path), 1)
    text = store.path.read_text()
    assert text.endswith("\n") and "2.0,startup" not in text
    assert text.count("\n") == 1 + 2 * ROWS_PER_CELL
    df = load_runs("r", root=tmp_path)
    assert sorted(set(df["rep"])) == [0, 1] and len(df) == 2 * ROWS_PER_CELL


def test_incomplete_cell_is_measured_again_and_not_double_counted(tmp_path):
    store = RunStore("r", root=tmp_path)
    cell(store, 0)
    with store.path.open("a", newline="") as fh:
        fh.write(partial_rows(store, 1, 2))  # two whole rows of three, then the crash
    again = RunStore("r", root=tmp_path)
    assert not again.done("startup", "native/static", "noop", 1)
    assert len(again.rows()) == ROWS_PER_CELL  # the partial cell is not loaded
    cell(again, 1)
    df = again.rows()
    assert df.groupby("rep").size().to_dict() == {0: ROWS_PER_CELL, 1: ROWS_PER_CELL}
    assert store.path.read_text().count("\n") == 1 + 2 * ROWS_PER_CELL  # cut, not kept
    cells = (store.dir / CELLS_FILE).read_text().splitlines()
    assert [json.loads(c)["rows"] for c in cells] == [ROWS_PER_CELL, ROWS_PER_CELL]


def test_torn_line_with_every_column_is_not_accepted(tmp_path):
    store = RunStore("r", root=tmp_path)
    cell(store, 0)
    with store.path.open("a") as fh:  # all 15 columns, the timestamp cut short
        fh.write("r,startup,native,native/static,noop,m0,,ms,1,2.0,,0,,a test value,2026-11-2")
    again = RunStore("r", root=tmp_path)
    assert not again.done("startup", "native/static", "noop", 1)
    assert list(again.rows()["rep"].unique()) == [0]


def test_torn_cell_record_leaves_the_cell_incomplete(tmp_path):
    store = RunStore("r", root=tmp_path)
    cell(store, 0)
    cell(store, 1)
    cells = store.dir / CELLS_FILE
    cells.write_text(cells.read_text()[:-9])  # the crash came while its end was written
    again = RunStore("r", root=tmp_path)
    assert not again.done("startup", "native/static", "noop", 1)
    assert list(again.rows()["rep"].unique()) == [0]
    cell(again, 1)
    assert again.rows().groupby("rep").size().to_dict() == {0: ROWS_PER_CELL, 1: ROWS_PER_CELL}
    assert len(cells.read_text().splitlines()) == 2


def test_format_1_run_without_cells_file_is_migrated_and_resumes(tmp_path):
    store = RunStore("r", root=tmp_path)
    cell(store, 0)
    cell(store, 1)
    (store.dir / CELLS_FILE).unlink()  # as written before cells.jsonl existed
    (store.dir / FORMAT_FILE).unlink()  # ... and before the store had a format version
    assert len(load_runs("r", root=tmp_path)) == 2 * ROWS_PER_CELL
    again = RunStore("r", root=tmp_path)
    assert again.done("startup", "native/static", "noop", 1)
    cell(again, 2)
    assert len(again.rows()) == 3 * ROWS_PER_CELL
    assert len((store.dir / CELLS_FILE).read_text().splitlines()) == 3


# ---- malformed rows and repair ---------------------------------------------------------------

@pytest.mark.parametrize(("column", "bad"), [
    ("rep", "x"), ("warmup", "7"), ("value", "abc"), ("timestamp", "yesterday")])
def test_malformed_row_names_file_line_and_column(tmp_path, column, bad):
    store = RunStore("r", root=tmp_path)
    cell(store, 0)
    cell(store, 1)
    lines = store.path.read_text().splitlines(keepends=True)
    header = lines[0].strip().split(",")
    fields = lines[4].rstrip("\r\n").split(",")
    fields[header.index(column)] = bad
    lines[4] = ",".join(fields) + "\r\n"
    store.path.write_text("".join(lines))
    with pytest.raises(DatasetError, match=rf"r/results.csv:5: column '{column}'.*repair"):
        load_runs("r", root=tmp_path)


def test_repair_keeps_every_good_row_and_reports_what_it_dropped(tmp_path, capsys):
    root = tmp_path / "datasets"  # the CLI's root (see conftest)
    store = RunStore("r", root=root)
    for rep in range(3):
        cell(store, rep)
    lines = store.path.read_text().splitlines(keepends=True)
    lines[5] = lines[5].replace(",ms,1,", ",ms,one,", 1)
    store.path.write_text("".join(lines) + "r,startup,native,native/st")
    with pytest.raises(DatasetError, match="results.csv:6: column 'rep'"):
        load_runs("r", root=root)
    assert main(["repair", "r"]) == 0
    out = capsys.readouterr().out
    assert "results.csv:6: column 'rep'" in out and "kept 8 row(s), dropped 2" in out
    df = load_runs("r", root=root)
    assert len(df) == 3 * ROWS_PER_CELL - 1
    cell(RunStore("r", root=root), 3)  # appending after a repair keeps everything consistent
    assert len(load_runs("r", root=root)) == 4 * ROWS_PER_CELL - 1
    assert repair("r", root=root).dropped == []


def test_repair_dry_run_reports_and_writes_nothing(tmp_path, capsys):
    other = tmp_path / "elsewhere"  # --datasets: another root than the CLI's default
    store = RunStore("r", root=other)
    for rep in range(2):
        cell(store, rep)
    lines = store.path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace(",ms,0,", ",ms,zero,", 1)
    before = "".join(lines)
    store.path.write_text(before)
    assert main(["repair", "r", "--datasets", str(other), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would drop" in out and "dry run: nothing written" in out
    assert store.path.read_text() == before


# ---- a real writer killed mid-write ----------------------------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from virtbench import catalog
    from virtbench.results import Measurement, Row, RunStore, make_rows

    for i in range(60):
        catalog.CATALOG[("e", f"m{i}")] = catalog.Metric(f"m{i}", "e", "ms", "lower", "a test")

    class SlowRow(Row):  # time passes between rows, so a kill often lands inside a cell
        def as_dict(self):
            time.sleep(0.0003)
            return super().as_dict()

    store = RunStore("k", root=Path(sys.argv[1]))
    with store.locked():
        for rep in range(int(sys.argv[2])):
            if store.done("e", "v/x", "w", rep):
                continue
            ms = [Measurement(f"m{i}", float(i), "ms", "padding " * 40) for i in range(60)]
            rows = make_rows(ms, run_id="k", experiment="e", family="native", variant="v/x",
                             workload="w", rep=rep)
            store.write_cell([SlowRow(**vars(r)) for r in rows])
""")


def test_sigkill_mid_write_then_resume_keeps_whole_cells_once(tmp_path):
    env = {**os.environ, "PYTHONPATH": LIB}
    argv = [sys.executable, "-c", WRITER, str(tmp_path), "200"]
    results = tmp_path / "k" / "results.csv"
    torn = 0
    for kill in range(6):
        proc = subprocess.Popen(argv, env=env)
        deadline = time.monotonic() + 60
        target = (kill + 1) * 70_000 + kill * 7919
        while time.monotonic() < deadline and proc.poll() is None:
            if results.exists() and results.stat().st_size > target:
                break
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        data = results.read_bytes()
        torn += not data.endswith(b"\n") or (data.count(b"\n") - 1) % 60 != 0
        df = load_runs("k", root=tmp_path)  # loads after every kill, torn or not
        assert (df.groupby("rep").size() == 60).all(), "a partial cell was loaded"
    assert torn, "no kill landed inside a cell; the test proved nothing"
    subprocess.run(argv, env=env, check=True, timeout=300)
    df = load_runs("k", root=tmp_path)
    assert sorted(df["rep"].unique()) == list(range(200))
    assert (df.groupby(["rep", "metric"]).size() == 1).all(), "a cell was counted twice"
    assert results.read_text().count("\n") == 1 + 200 * 60  # incomplete cells were cut off


# ---- one writer per run ----------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from virtbench.results import RunStore
    with RunStore("busy", root=Path(sys.argv[1])).locked():
        print("locked", flush=True)
        time.sleep(60)
""")


@pytest.fixture
def holder(tmp_path):
    """A second process holding the writer lock of run ``busy`` under the CLI's root."""
    root = tmp_path / "datasets"
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": LIB})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    proc.kill()
    proc.wait(timeout=30)


def test_second_writer_fails_at_once_naming_the_holder(holder, tmp_path, capsys):
    store = RunStore("busy", root=tmp_path / "datasets")
    t0 = time.monotonic()
    with pytest.raises(RunRefused, match=rf"PID {holder.pid}\b"):
        with store.locked():
            pass
    assert time.monotonic() - t0 < 2
    assert main(["run", "startup", "--variant", "native/static", "--run-id", "busy",
                 "--no-progress"]) == 3
    assert f"PID {holder.pid}" in capsys.readouterr().err


def test_lock_is_released_for_the_next_writer(tmp_path):
    store = RunStore("r", root=tmp_path)
    with store.locked():
        cell(store, 0)
    with RunStore("r", root=tmp_path).locked() as again:
        cell(again, 1)
    assert len(load_runs("r", root=tmp_path)) == 2 * ROWS_PER_CELL


# ---- host.json -------------------------------------------------------------------------------

def test_host_json_is_replaced_through_a_unique_temp_file(tmp_path):
    (tmp_path / "host.json.tmp").mkdir()  # a fixed temp name would collide with this
    write_host_json(tmp_path, {"n": 1})
    write_host_json(tmp_path, {"n": 2})
    data = json.loads((tmp_path / "host.json").read_text())
    assert [i["parameters"]["n"] for i in data["invocations"]] == [1, 2]
    assert data["invocations"][0]["host"]["hostname"] == data["hostname"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host.json", "host.json.tmp"]


# ---- fake platforms and experiments for the runner and the CLI -------------------------------

STATE = {"fail": 0, "calls": 0}


class Steady(Platform):
    family = "native"
    variant = "fakeok/steady"

    def check(self) -> Availability:
        return Availability(True, "always", version="1")


class Flaky(Steady):
    variant = "fakeflaky/flaky"


class Missing(Steady):
    family = "vm"
    variant = "fakemissing/absent"

    def check(self) -> Availability:
        return Availability(False, "no such engine", "install it")


def measure(plat: Platform, wl: Workload, params) -> list[Measurement]:
    STATE["calls"] += 1
    if isinstance(plat, Flaky) and STATE["fail"] > 0:
        STATE["fail"] -= 1
        raise RuntimeError("boom")
    return [Measurement("t", float(params.options.get("size", 1)), "ms", "a value")]


FAKE = Experiment("fakeexp", "a fake", measure, reps=2, warmup=0,
                  options={"size": Option(int, 1, 100, "a size"),
                           "secs": Option(float, 0.5, 10, "seconds")},
                  metrics=(catalog.Metric("t", "fakeexp", "ms", "lower", "a test value"),),
                  primary=(("t", {}),))


@pytest.fixture
def fakes(install_fakes):
    install_fakes(FAKE, Steady, Flaky, Missing)
    STATE.update(fail=0, calls=0)


def test_failed_cells_are_measured_again_on_the_next_run(fakes, tmp_path):
    STATE["fail"] = 1
    runner.run(FAKE, ["fakeflaky/flaky"], RunStore("f", root=tmp_path), progress=None)
    df = load_runs("f", root=tmp_path)
    assert df["reason"].str.startswith("failed: RuntimeError: boom").sum() == 1
    calls = STATE["calls"]
    runner.run(FAKE, ["fakeflaky/flaky"], RunStore("f", root=tmp_path), progress=None)
    assert STATE["calls"] == calls + 1  # only the failed cell, once
    df = load_runs("f", root=tmp_path)
    assert len(df) == 2 and df["value"].notna().all()  # the retry supersedes the failure
    assert "boom" in (tmp_path / "f" / "results.csv").read_text()  # history is kept


@pytest.mark.parametrize(("options", "message"), [
    ({"sise": "3"}, r"unknown option 'sise'.*valid: size \(int 1..100: a size\); secs"),
    ({"size": "abc"}, r"size='abc' is invalid.*int 1..100"),
    ({"size": "1.5"}, r"size='1.5' is invalid"),
    ({"size": "0"}, r"size='0' is invalid"),
    ({"secs": "nan"}, r"secs='nan' is invalid.*float 0.5..10"),
])
def test_bad_options_are_refused_listing_the_valid_ones(options, message):
    with pytest.raises(ValueError, match=message):
        check_options(FAKE, options)


def test_options_are_typed():
    assert check_options(FAKE, {"size": "7", "secs": "2.5"}) == {"size": 7, "secs": 2.5}


def test_every_option_the_experiments_read_is_declared():
    declared = {k for e in experiments.EXPERIMENTS.values() for k in e.options}
    src = "".join(p.read_text() for p in Path(experiments.__file__).parent.rglob("*.py"))
    import re

    read = set(re.findall(r"\bo(?:ptions)?\.get\(\"(\w+)\"", src))
    assert read and read <= declared


def test_cli_bad_option_fails_before_anything_runs(fakes, tmp_path, capsys):
    assert main(["run", "fakeexp", "--variant", "fakeok", "--option", "sise=3",
                 "--run-id", "o"]) == 2
    assert "valid: size" in capsys.readouterr().err
    assert STATE["calls"] == 0 and not (tmp_path / "datasets" / "o").exists()


# ---- exit codes ------------------------------------------------------------------------------

def run_cli(*args: str) -> int:
    return main(["run", "fakeexp", "--no-progress", "--run-id", "x", *args])


def test_exit_0_when_measured_or_not_available(fakes, capsys):
    assert run_cli("--variant", "fakeok", "--variant", "fakemissing") == 0


def test_exit_1_when_a_cell_failed_then_0_after_the_retry(fakes, capsys):
    STATE["fail"] = 1
    assert run_cli("--variant", "fakeflaky") == 1
    assert "1 cell(s) failed" in capsys.readouterr().err
    assert run_cli("--variant", "fakeflaky") == 0


def test_exit_2_for_an_empty_run_id(fakes, capsys):
    with pytest.raises(SystemExit) as exited:  # refused by the argument parser
        main(["run", "fakeexp", "--variant", "fakeok", "--run-id", ""])
    assert exited.value.code == 2
    assert "invalid run id ''" in capsys.readouterr().err
    assert STATE["calls"] == 0


def test_exit_3_on_another_host_unless_forced(fakes, tmp_path, capsys):
    assert run_cli("--variant", "fakeok") == 0
    host = tmp_path / "datasets" / "x" / "host.json"
    data = json.loads(host.read_text())
    host.write_text(json.dumps({**data, "hostname": "elsewhere"}))
    assert run_cli("--variant", "fakeok", "--reps", "3") == 3
    assert "hostname 'elsewhere'" in capsys.readouterr().err
    assert STATE["calls"] == 2
    assert run_cli("--variant", "fakeok", "--reps", "3", "--force-host") == 0
    assert STATE["calls"] == 3


def test_exit_3_for_the_reference_run_unless_forced(fakes, capsys):
    assert main(["run", "fakeexp", "--variant", "fakeok", "--run-id", "reference"]) == 3
    assert "read-only" in capsys.readouterr().err
    assert STATE["calls"] == 0
    assert main(["run", "fakeexp", "--variant", "fakeok", "--run-id", "reference",
                 "--force", "--no-progress"]) == 0


def test_run_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for code in ("0  every cell", "1  some cell failed", "2  usage error", "3  run refused"):
        assert code in out
