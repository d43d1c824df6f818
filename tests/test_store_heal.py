"""The store heals: garbled rows of several kinds, a garbled or missing cell record, a
corrupt host.json and a full disk each cost what they damaged and nothing else; repair says
exactly what it dropped, the next run measures again what was lost, and nothing is left
behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from virtbench import catalog
from virtbench.cli import main
from virtbench.experiments.base import Experiment
from virtbench.platforms.base import Availability, Platform, Workload
from virtbench.results import (
    CELLS_FILE,
    DatasetError,
    Measurement,
    RunStore,
    load_runs,
    make_rows,
    repair,
    scan,
)
from virtbench.store.errors import WriteFailed
from virtbench.store.pairing import pair

ROWS = 3
REPS = 4


@pytest.fixture(autouse=True)
def metrics(monkeypatch):
    for i in range(ROWS):
        monkeypatch.setitem(catalog.CATALOG, ("startup", f"m{i}"),
                            catalog.Metric(f"m{i}", "startup", "ms", "lower", "a test"))


def cell(store: RunStore, rep: int, workload: str = "noop") -> None:
    ms = [Measurement(f"m{i}", float(rep * 10 + i), "ms", "a test value") for i in range(ROWS)]
    store.write_cell(make_rows(ms, run_id=store.run_id, experiment="startup",
                               family="native", variant="native/static", workload=workload,
                               rep=rep))


def made(root: Path, reps: int = REPS) -> RunStore:
    store = RunStore("r", root=root)
    for rep in range(reps):
        cell(store, rep)
    return store


def valid_rows(store: RunStore) -> list[dict]:
    return scan(store.path).rows


def lines(store: RunStore) -> list[str]:
    return store.path.read_text().splitlines(keepends=True)


def damage_line(store: RunStore, n: int, change) -> None:
    """Apply ``change`` to line ``n`` (1-based) of results.csv."""
    text = lines(store)
    text[n - 1] = change(text[n - 1])
    store.path.write_text("".join(text))


def one_error_line(err: str) -> bool:
    """stderr holds one error line and no traceback."""
    return "Traceback" not in err and len([x for x in err.splitlines() if "error" in x]) == 1


def leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir()
                  if p.name == "writer.lock" or p.name.endswith(".tmp"))


GARBLE = {
    "unmatched quote": lambda line: line.replace(",noop,", ',"noop,', 1),
    "wrong column count": lambda line: line.replace(",noop,", ",noop,extra,", 1),
    "not a number": lambda line: line.replace(",ms,1,", ",ms,one,", 1),
}


@pytest.mark.parametrize("kind", list(GARBLE))
def test_a_garbled_middle_row_costs_that_row_alone(tmp_path, kind):
    store = made(tmp_path)
    before = valid_rows(store)
    damage_line(store, 6, GARBLE[kind])  # rep 1's second row
    with pytest.raises(DatasetError, match=r"results.csv:6: .*virtbench repair r"):
        load_runs("r", root=tmp_path)
    report = repair("r", root=tmp_path)
    assert [line for line, _ in report.dropped] == [6]
    assert report.kept == REPS * ROWS - 1
    if kind == "unmatched quote":
        assert "unmatched quote" in report.dropped[0][1]
    assert any("lost 1 row(s)" in n and "rep 1" in n for n in report.notes)
    after = valid_rows(RunStore("r", root=tmp_path))
    key = ("rep", "metric", "value", "timestamp")
    assert {tuple(r[k] for k in key) for r in before} - {tuple(r[k] for k in key)
                                                         for r in after} == {
        tuple(before[4][k] for k in key)}  # only the garbled row is gone
    again = RunStore("r", root=tmp_path)
    assert not again.done("startup", "native/static", "noop", 1)  # measured again
    assert all(again.done("startup", "native/static", "noop", rep) for rep in (0, 2, 3))
    cell(again, 1)
    df = load_runs("r", root=tmp_path)
    assert df.groupby("rep").size().to_dict() == {rep: ROWS for rep in range(REPS)}
    assert len(load_runs("r", root=tmp_path, history=True)) == REPS * ROWS - 1 + ROWS
    assert repair("r", root=tmp_path).dropped == [] and leftovers(store.dir) == []


def test_a_torn_last_row_is_cut_and_its_cell_measured_again(tmp_path):
    store = made(tmp_path)
    with store.path.open("a") as fh:
        fh.write('r,startup,native,native/static,noop,m0,,ms,4,"4')
    report = repair("r", root=tmp_path)
    assert report.kept == REPS * ROWS and len(report.dropped) == 1
    assert "incomplete cell" in report.dropped[0][1]
    cell(RunStore("r", root=tmp_path), REPS)
    assert len(load_runs("r", root=tmp_path)) == (REPS + 1) * ROWS


def test_a_garbled_cells_line_is_derived_from_its_rows(tmp_path):
    store = made(tmp_path)
    cells = store.dir / CELLS_FILE
    records = cells.read_text().splitlines(keepends=True)
    records[1] = '{"experiment": "startup", "varia\n'
    cells.write_text("".join(records))
    with pytest.raises(DatasetError, match=r"cells.jsonl:2: not a cell record"):
        load_runs("r", root=tmp_path)
    report = repair("r", root=tmp_path)
    assert report.dropped == [] and report.kept == REPS * ROWS
    assert any("cells.jsonl:2" in n for n in report.notes)
    assert any("derived from its rows" in n and "rep 1" in n for n in report.notes)
    again = RunStore("r", root=tmp_path)
    assert all(again.done("startup", "native/static", "noop", rep) for rep in range(REPS))
    cell(again, REPS)  # no repetition is measured twice, none is lost
    df = load_runs("r", root=tmp_path)
    assert df.groupby("rep").size().to_dict() == {rep: ROWS for rep in range(REPS + 1)}
    assert [json.loads(x)["rep"] for x in cells.read_text().splitlines()] == list(
        range(REPS + 1))


def test_a_garbled_header_is_written_again(tmp_path):
    store = made(tmp_path)
    damage_line(store, 1, lambda line: line.replace("experiment,family", "exper\xffiment", 1))
    with pytest.raises(DatasetError, match="header"):
        load_runs("r", root=tmp_path)
    report = repair("r", root=tmp_path)
    assert [line for line, _ in report.dropped] == [1] and report.kept == REPS * ROWS
    assert len(load_runs("r", root=tmp_path)) == REPS * ROWS


def test_a_cells_file_garbled_throughout_is_derived_and_only_the_last_cell_redone(tmp_path):
    store = made(tmp_path)
    cells = store.dir / CELLS_FILE
    cells.write_text("".join("{garbled\n" for _ in range(REPS)))
    report = repair("r", root=tmp_path)
    assert report.kept == REPS * ROWS and report.dropped == []
    again = RunStore("r", root=tmp_path)
    assert [again.done("startup", "native/static", "noop", rep) for rep in range(REPS)] == [
        True] * (REPS - 1) + [False]  # the last one may have been cut short
    cell(again, REPS - 1)
    assert load_runs("r", root=tmp_path).groupby("rep").size().to_dict() == {
        rep: ROWS for rep in range(REPS)}


def test_a_cell_whose_rows_are_all_gone_is_measured_again(tmp_path):
    store = made(tmp_path)
    text = lines(store)
    del text[4:7]  # every row of rep 1
    store.path.write_text("".join(text))
    with pytest.raises(DatasetError, match="no row of cell startup native/static noop rep 1"):
        load_runs("r", root=tmp_path)
    report = repair("r", root=tmp_path)
    assert report.kept == (REPS - 1) * ROWS
    assert any("no valid row" in n and "rep 1" in n for n in report.notes)
    again = RunStore("r", root=tmp_path)
    assert not again.done("startup", "native/static", "noop", 1)
    cell(again, 1)
    assert load_runs("r", root=tmp_path).groupby("rep").size().to_dict() == {
        rep: ROWS for rep in range(REPS)}


def test_repair_dry_run_writes_nothing_and_repair_of_no_run_makes_no_folder(tmp_path, capsys):
    store = made(tmp_path / "datasets")
    damage_line(store, 3, GARBLE["unmatched quote"])
    before = store.path.read_bytes(), (store.dir / CELLS_FILE).read_bytes()
    assert main(["repair", "r", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would drop" in out and "results.csv:3" in out and "would keep 11 row(s)" in out
    assert (store.path.read_bytes(), (store.dir / CELLS_FILE).read_bytes()) == before
    assert main(["repair", "nope"]) == 2
    assert not (tmp_path / "datasets" / "nope").exists()
    with pytest.raises(DatasetError, match="no dataset"):
        repair("nope", root=tmp_path / "datasets")
    assert not (tmp_path / "datasets" / "nope").exists()


# ---- which record a row belongs to: its keys, not its place ----------------------------------

def row(workload: str, rep: int, t: str, metric: str = "m0") -> dict[str, str]:
    return {"experiment": "memory", "variant": "v/x", "workload": workload, "rep": str(rep),
            "host": "", "started": t, "timestamp": t, "metric": metric}


def record(workload: str, rep: int, rows: int) -> dict:
    return {"experiment": "memory", "variant": "v/x", "workload": workload, "rep": rep,
            "rows": rows}


def test_cells_with_the_same_times_and_cells_of_several_workloads_pair_by_keys():
    rows = [row("mem", 0, "t1"), row("mem", 0, "t1", "m1"),     # two cells written in one
            row("http", 0, "t1"), row("http", 0, "t1", "m1"),   # millisecond
            row("cpu", 1, "t2"), row("noop", 1, "t2"), row("mem", 1, "t2"),  # a disk cell
            row("mem", 2, "t3")]                                # an idle row for http
    records = [record("mem", 0, 2), record("http", 0, 2), record("noop", 1, 3),
               record("http", 2, 1)]
    assert pair(records, rows) == [0, 0, 1, 1, 2, 2, 2, 3]
    # the record of the second cell is lost: every other row keeps its own cell
    assert pair([records[0], *records[2:]], rows) == [0, 0, None, None, 1, 1, 1, 2]
    # a row of the first cell is lost
    assert pair(records, rows[1:]) == [0, 1, 1, 2, 2, 2, 3]


def test_a_lost_record_of_a_same_key_cell_does_not_shift_the_others(tmp_path):
    store = RunStore("r", root=tmp_path)
    for rep in range(3):
        for workload in ("mem", "http"):
            cell(store, rep, workload)
    cells = store.dir / CELLS_FILE
    records = cells.read_text().splitlines(keepends=True)
    del records[2]  # rep 1 mem: its rows stay
    cells.write_text("".join(records))
    report = repair("r", root=tmp_path)
    assert report.kept == 6 * ROWS and report.dropped == []
    found = scan(store.path)
    assert [(c["workload"], c["rep"]) for c in found.cells] == [
        (w, rep) for rep in range(3) for w in ("mem", "http")]


# ---- host.json ---------------------------------------------------------------------------

STATE = {"calls": 0}


class Steady(Platform):
    family = "native"
    variant = "fakeheal/steady"

    def check(self) -> Availability:
        return Availability(True, "always", version="1")


def measure(plat: Platform, wl: Workload, params) -> list[Measurement]:
    STATE["calls"] += 1
    return [Measurement("t", 1.0, "ms", "a value")]


FAKE = Experiment("fakeheal", "a fake", measure, reps=3, warmup=0,
                  metrics=(catalog.Metric("t", "fakeheal", "ms", "lower", "a test value"),),
                  primary=(("t", {}),))


@pytest.fixture
def fakes(install_fakes):
    install_fakes(FAKE, Steady)
    STATE["calls"] = 0


def run_fake(*args: str) -> int:
    return main(["run", "fakeheal", "--variant", "fakeheal", "--run-id", "h", "--no-progress",
                 *args])


def test_a_corrupt_host_json_is_rebuilt_by_repair_naming_what_was_lost(fakes, tmp_path,
                                                                       capsys):
    assert run_fake("--reps", "2") == 0
    run_dir = tmp_path / "datasets" / "h"
    host = run_dir / "host.json"
    damaged = host.read_text()[:-40]
    host.write_text(damaged)
    capsys.readouterr()
    assert run_fake("--reps", "3") == 3
    err = capsys.readouterr().err
    assert one_error_line(err)
    assert "virtbench repair h" in err and "host.json" in err
    assert main(["repair", "h"]) == 0
    out = capsys.readouterr().out
    assert "rebuilt" in out and "lost:" in out and "invocation" in out
    assert (run_dir / "host.json.damaged").read_text() == damaged
    data = json.loads(host.read_text())
    assert data["rebuilt"]["rows"]["rows"] == 2 and data["hostname"]
    assert run_fake("--reps", "3") == 0
    assert STATE["calls"] == 3  # the two stored repetitions kept, the third measured
    assert len(load_runs("h", root=tmp_path / "datasets")) == 3
    assert leftovers(run_dir) == []


def test_force_host_rebuilds_a_corrupt_host_json_and_goes_on(fakes, tmp_path, capsys):
    assert run_fake("--reps", "1") == 0
    host = tmp_path / "datasets" / "h" / "host.json"
    host.write_text("{")
    capsys.readouterr()
    assert run_fake("--reps", "2", "--force-host") == 0
    assert "warning: rebuilt" in capsys.readouterr().err
    assert len(json.loads(host.read_text())["invocations"]) == 1


# ---- a write that fails -------------------------------------------------------------------

def test_a_failed_append_is_cut_back_and_named_in_one_line(tmp_path, monkeypatch):
    store = made(tmp_path, 2)
    before = store.path.read_bytes(), (store.dir / CELLS_FILE).read_bytes()
    real_open = Path.open

    def full(self, mode="r", *args, **kw):
        fh = real_open(self, mode, *args, **kw)
        if self.name == CELLS_FILE and "a" in mode:
            def refuse(_text):
                raise OSError(28, "No space left on device")
            fh.write = refuse
        return fh

    with monkeypatch.context() as patched:
        patched.setattr(Path, "open", full)
        with pytest.raises(WriteFailed) as failed:
            cell(store, 2)
    message = str(failed.value)
    assert message.startswith(f"cannot write {store.dir / CELLS_FILE}: No space left")
    assert "MiB free of" in message and "rows written before are intact (6 row(s))" in message
    assert (store.path.read_bytes(), (store.dir / CELLS_FILE).read_bytes()) == before
    assert leftovers(store.dir) == []
    assert len(load_runs("r", root=tmp_path)) == 2 * ROWS


def test_a_corrupt_host_json_of_a_run_without_rows_is_rebuilt(tmp_path, capsys):
    run_dir = tmp_path / "datasets" / "e"
    run_dir.mkdir(parents=True)
    (run_dir / "host.json").write_text('{"hostname": ')
    assert main(["repair", "e"]) == 0
    assert "rebuilt" in capsys.readouterr().out
    assert json.loads((run_dir / "host.json").read_text())["rebuilt"]["rows"] == {}
    assert main(["repair", "e"]) == 2  # nothing left to repair: said so
    assert "nothing else to repair" in capsys.readouterr().err


def test_the_writer_lock_exists_only_while_held_and_a_second_taker_is_refused(tmp_path):
    from virtbench.store.lock import try_lock, unlock

    fd, holder = try_lock(tmp_path)
    assert fd is not None and holder == ""
    assert (tmp_path / "writer.lock").read_text().strip() == str(os.getpid())
    again, who = try_lock(tmp_path)  # another open file description: refused
    assert again is None and who == str(os.getpid())
    unlock(tmp_path, fd)
    assert not (tmp_path / "writer.lock").exists()
    fd, _ = try_lock(tmp_path)
    assert fd is not None
    unlock(tmp_path, fd)


def test_a_corrupt_campaign_host_json_is_rebuilt_as_its_index_and_the_campaign_goes_on(
        tmp_path, capsys, monkeypatch):
    from virtbench.campaign.client import _check_run
    from virtbench.dataset import host_line

    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path))
    store = RunStore("c", root=tmp_path)
    for host in ("alpha", "beta"):
        ms = [Measurement(f"m{i}", float(i), "ms", "a test value") for i in range(ROWS)]
        store.write_cell(make_rows(ms, run_id="c", experiment="startup", family="native",
                                   variant="native/static", workload="noop", rep=0, host=host))
    (store.dir / "hosts").mkdir()
    (store.dir / "hosts" / "alpha.json").write_text(json.dumps(
        {"hostname": "alpha-box", "cpu_model": "CPU A", "kernel": "6.1"}))
    (store.dir / "hosts" / "beta.json").write_text("{")  # damaged too: named by its rows
    (store.dir / "host.json").write_text('{"campaign": {"hosts": [')
    assert main(["repair", "c"]) == 0
    out = capsys.readouterr().out
    assert "index of a campaign on 2 host(s)" in out and "plan path" in out
    data = json.loads((store.dir / "host.json").read_text())
    assert data["campaign"]["hosts"] == ["alpha", "beta"]
    assert data["hosts"]["alpha"]["file"] == "hosts/alpha.json"
    assert data["hosts"]["alpha"]["hostname"] == "alpha-box" and "beta" not in data["hosts"]
    _check_run(store.dir)  # the campaign client takes the run up again
    assert host_line(data).startswith("1 hosts: alpha = alpha-box: CPU A")


def test_a_single_host_run_is_not_rebuilt_as_a_campaign(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path))
    store = made(tmp_path, 1)
    (store.dir / "host.json").write_text("[")
    assert main(["repair", "r"]) == 0
    assert "index of a campaign" not in capsys.readouterr().out
    assert "campaign" not in json.loads((store.dir / "host.json").read_text())
