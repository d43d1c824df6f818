"""The versioned store: format version, migration of older runs (once), commit and code on
every row, superseded readings marked in the file and hidden from every reader."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from virtbench.dataset import Dataset
from virtbench.export import export
from virtbench.paths import PACKAGE_DIR
from virtbench.results import (
    CELLS_FILE,
    COLUMNS,
    FORMAT_FILE,
    FORMAT_VERSION,
    Measurement,
    RunStore,
    load_runs,
    make_rows,
)
from virtbench.store import provenance
from virtbench.store.writer import RunStore as StoreWriter

ROOT = Path(__file__).resolve().parents[1]
OLD_HEADER = ("run_id,experiment,family,variant,workload,metric,conditions,unit,rep,value,"
              "reason,warmup,tags,description,timestamp")


def cell(store: RunStore, rep: int, value: float | None, variant: str = "native/static"
         ) -> None:
    ms = ([Measurement("startup", value, "ms", "spawn to exit")] if value is not None else
          [Measurement.missing("startup", "ms", "failed: the test said so")])
    store.write_cell(make_rows(ms, run_id=store.run_id, experiment="startup", family="native",
                               variant=variant, workload="noop", rep=rep))


def csv_rows(store: RunStore) -> list[dict[str, str]]:
    with store.path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# ---- a new run -------------------------------------------------------------------------------

def test_a_new_run_writes_the_format_version_and_the_full_header(tmp_path):
    store = RunStore("n", root=tmp_path)
    cell(store, 0, 1.0)
    assert json.loads((store.dir / FORMAT_FILE).read_text()) == {"store_format": FORMAT_VERSION}
    assert store.path.read_text().splitlines()[0].split(",") == list(COLUMNS)


def test_new_rows_carry_the_measuring_commit_and_code(tmp_path):
    store = RunStore("n", root=tmp_path)
    cell(store, 0, 1.0)
    (row,) = csv_rows(store)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", row["commit"])
    assert row["commit"].removesuffix("+dirty") == head
    assert re.fullmatch(r"[0-9a-f]{12}", row["code"])
    assert row["code"] == provenance.measuring_code() and row["status"] == "current"
    ds = Dataset.load("n", tmp_path)  # the analysis sees them too
    assert list(ds.df["commit"]) == [row["commit"]] and list(ds.df["code"]) == [row["code"]]
    sample = ds.measured("native/static", "startup")
    assert list(sample["code"]) == [row["code"]] and list(sample["commit"]) == [row["commit"]]


def test_the_code_fingerprint_follows_measuring_sources_only(tmp_path):
    pkg = tmp_path / "virtbench"
    (pkg / "platforms").mkdir(parents=True)
    (pkg / "platforms" / "native.py").write_text("A = 1\n")
    (pkg / "claims").mkdir()
    (pkg / "claims" / "lines.py").write_text("B = 1\n")
    (pkg / "rankings.py").write_text("R = 1\n")
    (pkg / "store").mkdir()
    (pkg / "store" / "writer.py").write_text("C = 1\n")
    before = provenance.fingerprint(pkg)
    (pkg / "claims" / "lines.py").write_text("B = 2\n")  # analysis only
    (pkg / "claims" / "verdicts.py").write_text("V = 1\n")
    (pkg / "rankings.py").write_text("R = 2\n")
    (pkg / "store" / "writer.py").write_text("C = 2\n")
    assert provenance.fingerprint(pkg) == before
    (pkg / "platforms" / "native.py").write_text("A = 2\n")  # measuring code
    assert provenance.fingerprint(pkg) != before


def test_every_analysis_only_name_is_a_part_of_the_package():
    """A module renamed or turned into a package must not leave a stale name behind (its
    sources would then count as measuring code)."""
    stale = [name for name in provenance.ANALYSIS_ONLY if not (PACKAGE_DIR / name).exists()]
    assert not stale, f"not in {PACKAGE_DIR}: {', '.join(sorted(stale))}"


# ---- superseded readings ---------------------------------------------------------------------

def test_a_remeasured_cell_is_marked_superseded_in_the_file_and_hidden(tmp_path):
    store = RunStore("s", root=tmp_path)
    cell(store, 0, 1.0)
    cell(store, 1, 2.0)
    cell(store, 0, 5.0)  # measured again (--remeasure)
    rows = csv_rows(store)
    assert [(r["rep"], r["value"], r["status"]) for r in rows] == [
        ("0", "1.0", "superseded"), ("1", "2.0", "current"), ("0", "5.0", "current")]
    df = load_runs("s", root=tmp_path)
    assert sorted(df["value"]) == [2.0, 5.0] and set(df["status"]) == {"current"}
    assert len(load_runs("s", root=tmp_path, history=True)) == 3
    ds = Dataset.load("s", tmp_path)
    assert sorted(ds.measured("native/static", "startup")["value"]) == [2.0, 5.0]
    assert len(Dataset.load("s", tmp_path, history=True).df) == 3
    out = export("s", "csv", tmp_path / "s.csv", root=tmp_path)
    exported = pd.read_csv(out)
    assert sorted(exported["value"]) == [2.0, 5.0] and set(exported["status"]) == {"current"}
    everything = pd.read_csv(export("s", "csv", tmp_path / "all.csv", root=tmp_path,
                                    history=True))
    assert sorted(everything["status"]) == ["current", "current", "superseded"]
    plain = pd.read_csv(store.path)  # a reader of the CSV who keeps the current rows
    assert sorted(plain[plain["status"] == "current"]["value"]) == [2.0, 5.0]


def test_a_retried_failure_supersedes_the_failed_attempt(tmp_path):
    store = RunStore("f", root=tmp_path)
    cell(store, 0, None)
    assert not RunStore("f", root=tmp_path).done("startup", "native/static", "noop", 0)
    cell(RunStore("f", root=tmp_path), 0, 3.0)
    assert [r["status"] for r in csv_rows(store)] == ["superseded", "current"]
    assert list(load_runs("f", root=tmp_path)["value"]) == [3.0]


def test_a_crash_between_append_and_marking_resolves_the_same_way(tmp_path, monkeypatch):
    store = RunStore("c", root=tmp_path)
    cell(store, 0, 1.0)
    calls = []
    monkeypatch.setattr(StoreWriter, "_mark", lambda self, found: calls.append(found))
    cell(store, 0, 4.0)  # the new rows are on disk; the process dies before the rewrite
    monkeypatch.undo()
    assert calls, "the rewrite was due"
    assert [r["status"] for r in csv_rows(store)] == ["current", "current"]  # not marked yet
    assert list(load_runs("c", root=tmp_path)["value"]) == [4.0]  # the cells decide
    assert list(Dataset.load("c", tmp_path).df["value"]) == [4.0]
    with RunStore("c", root=tmp_path).locked():  # the next writer marks them
        pass
    assert [r["status"] for r in csv_rows(store)] == ["superseded", "current"]
    assert list(load_runs("c", root=tmp_path)["value"]) == [4.0]


# ---- older runs ------------------------------------------------------------------------------

def old_run(root: Path, cells: bool = True) -> Path:
    """A run as version 1 wrote it: no store.json, 15 columns, rep 0 measured twice."""
    run = root / "old"
    run.mkdir(parents=True)
    lines = [OLD_HEADER,
             "old,startup,native,native/static,noop,startup,,ms,0,1.5,,0,,spawn to exit,"
             "2026-12-01T02:41:00.100+00:00",
             "old,startup,native,native/static,noop,startup,,ms,1,1.7,,0,,spawn to exit,"
             "2026-12-01T02:41:01.100+00:00",
             "old,startup,native,native/static,noop,startup,,ms,0,1.9,,0,,spawn to exit,"
             "2026-12-01T05:30:00.500+00:00"]
    (run / "results.csv").write_text("\r\n".join(lines) + "\r\n")
    if cells:
        (run / CELLS_FILE).write_text("".join(
            json.dumps({"experiment": "startup", "variant": "native/static",
                        "workload": "noop", "rep": rep, "rows": 1}) + "\n" for rep in (0, 1, 0)))
    invocation = {"parameters": {"experiment": "startup"}}
    (run / "host.json").write_text(json.dumps({"hostname": "h", "invocations": [
        {**invocation, "git_commit": "a" * 40, "started_at": "2026-12-01T02:40:57+00:00",
         "finished_at": "2026-12-01T02:47:05+00:00"},
        {**invocation, "git_commit": "b" * 40 + "-dirty",
         "started_at": "2026-12-01T05:29:17+00:00", "finished_at": "2026-12-01T05:33:35+00:00"},
    ]}))
    return run


def test_an_older_run_is_migrated_once_on_load(tmp_path):
    run = old_run(tmp_path)
    df = load_runs("old", root=tmp_path)
    assert list(df["value"]) == [1.7, 1.9]
    assert json.loads((run / FORMAT_FILE).read_text()) == {"store_format": FORMAT_VERSION}
    with (run / "results.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == list(COLUMNS)
    assert [(r["value"], r["status"], r["commit"], r["code"]) for r in rows] == [
        ("1.5", "superseded", "a" * 40, "commit:" + "a" * 12),
        ("1.7", "current", "a" * 40, "commit:" + "a" * 12),
        ("1.9", "current", "b" * 40 + "+dirty", "commit:" + "b" * 12 + "+dirty")]
    before = {p.name: p.stat().st_ino for p in run.iterdir()}
    text = (run / "results.csv").read_bytes()
    again = load_runs("old", root=tmp_path)  # the second load reads, it does not rewrite
    assert {p.name: p.stat().st_ino for p in run.iterdir()} == before
    assert (run / "results.csv").read_bytes() == text
    assert again.equals(df)


def test_an_older_run_without_cells_is_migrated_and_written_to(tmp_path):
    run = old_run(tmp_path, cells=False)
    (run / "results.csv").write_bytes((run / "results.csv").read_bytes() + b"old,startup,nat")
    store = RunStore("old", root=tmp_path)
    assert store.done("startup", "native/static", "noop", 1)
    cell(store, 2, 2.5)
    df = load_runs("old", root=tmp_path)
    assert list(df["value"]) == [1.7, 1.9, 2.5]  # the torn line is gone, rep 0 measured twice
    assert len((run / CELLS_FILE).read_text().splitlines()) == 4


def test_an_older_run_with_a_garbled_row_pairs_the_others_by_their_keys(tmp_path):
    from virtbench.results import repair

    run = old_run(tmp_path)
    text = (run / "results.csv").read_text().replace(",1,1.7,", ",1,one,")
    (run / "results.csv").write_text(text)
    with pytest.raises(ValueError, match=r"results.csv:3: column 'value'.*virtbench repair"):
        load_runs("old", root=tmp_path)
    report = repair("old", root=tmp_path)
    assert report.kept == 2
    assert report.dropped == [(3, "column 'value': 'one' is not a number (or empty)")]
    assert any("startup native/static noop rep 1" in n and "measured again" in n
               for n in report.notes)
    store = RunStore("old", root=tmp_path)
    assert store.done("startup", "native/static", "noop", 0)
    assert not store.done("startup", "native/static", "noop", 1)
    assert list(load_runs("old", root=tmp_path)["value"]) == [1.9]


def test_an_older_run_with_a_garbled_cell_record_keeps_every_row_with_its_cell(tmp_path):
    run = old_run(tmp_path)
    records = (run / CELLS_FILE).read_text().splitlines(keepends=True)
    records[1] = '{"experiment": "startup", "vari\n'
    (run / CELLS_FILE).write_text("".join(records))
    from virtbench.results import repair

    report = repair("old", root=tmp_path)
    assert report.kept == 3 and report.dropped == []
    assert any("derived from its rows" in n for n in report.notes)
    cells = [json.loads(x) for x in (run / CELLS_FILE).read_text().splitlines()]
    assert [(c["rep"], c["rows"]) for c in cells] == [(0, 1), (1, 1), (0, 1)]
    assert list(load_runs("old", root=tmp_path)["value"]) == [1.7, 1.9]


def test_a_newer_format_is_refused_with_what_to_do(tmp_path):
    store = RunStore("v", root=tmp_path)
    cell(store, 0, 1.0)
    (store.dir / FORMAT_FILE).write_text('{"store_format": 99}')
    with pytest.raises(ValueError, match="store format 99.*update virtbench"):
        load_runs("v", root=tmp_path)
