"""The result store: rows on disk as they are measured, resume, loading, bad input."""

from __future__ import annotations

import pytest

from virtbench.results import (
    COLUMNS,
    DatasetError,
    Measurement,
    RunStore,
    check_run_id,
    load_runs,
    make_rows,
    measured,
)


def cell(store: RunStore, rep: int, value: float | None = 1.0, variant: str = "native/static",
         warmup: bool = False) -> None:
    ms = [Measurement("startup", value, "ms", "spawn to exit")] if value is not None else [
        Measurement.missing("startup", "ms", "not available: no engine")]
    store.write_cell(make_rows(ms, run_id=store.run_id, experiment="startup", family="native",
                               variant=variant, workload="noop", rep=rep, warmup=warmup))


def test_rows_are_on_disk_after_each_cell(tmp_path):
    store = RunStore("r1", root=tmp_path)
    cell(store, 0, 1.5)
    text = (tmp_path / "r1" / "results.csv").read_text().splitlines()
    assert text[0].split(",") == list(COLUMNS)
    assert len(text) == 2 and ",1.5," in text[1]


def test_same_run_id_resumes_completed_cells(tmp_path):
    store = RunStore("r1", root=tmp_path)
    cell(store, 0)
    cell(store, 1)
    again = RunStore("r1", root=tmp_path)
    assert again.done("startup", "native/static", "noop", 0)
    assert again.done("startup", "native/static", "noop", 1)
    assert not again.done("startup", "native/static", "noop", 2)
    assert not again.done("startup", "native/dynamic", "noop", 0)


def test_torn_last_line_is_ignored_and_cell_redone(tmp_path):
    store = RunStore("r1", root=tmp_path)
    cell(store, 0)
    with store.path.open("a") as fh:
        fh.write("r1,startup,native,native/static,noop,startup,ms,1,2.0")  # crash mid-line
    again = RunStore("r1", root=tmp_path)
    assert not again.done("startup", "native/static", "noop", 1)
    df = again.rows()
    assert list(df["rep"]) == [0]


def test_missing_measurement_is_a_row_with_reason_and_no_value(tmp_path):
    store = RunStore("r1", root=tmp_path)
    cell(store, 0, None)
    df = store.rows()
    assert df["value"].isna().all()
    assert df["reason"].iloc[0] == "not available: no engine"
    assert measured(df).empty


def test_load_many_runs_into_one_frame(tmp_path):
    for run_id in ("a", "b"):
        cell(RunStore(run_id, root=tmp_path), 0, 2.0)
    df = load_runs(["a", "b"], root=tmp_path)
    assert sorted(df["run_id"]) == ["a", "b"]
    assert load_runs(None, root=tmp_path).shape[0] == 2
    assert df["value"].dtype.kind == "f"


def test_warmup_rows_are_kept_but_not_measured(tmp_path):
    store = RunStore("r1", root=tmp_path)
    cell(store, 0, 9.0, warmup=True)
    cell(store, 1, 1.0)
    df = store.rows()
    assert len(df) == 2
    assert list(measured(df)["value"]) == [1.0]


def test_unknown_run_names_the_file_and_lists_runs(tmp_path):
    cell(RunStore("present", root=tmp_path), 0)
    with pytest.raises(DatasetError, match=r"absent.*results.csv.*present"):
        load_runs("absent", root=tmp_path)


def test_unreadable_dataset_names_the_file(tmp_path):
    path = tmp_path / "bad" / "results.csv"
    path.parent.mkdir()
    path.write_text("just,some,columns\n1,2,3\n")
    with pytest.raises(DatasetError, match="bad/results.csv"):
        load_runs("bad", root=tmp_path)


@pytest.mark.parametrize("run_id", ["", "../x", "a b", "-x", "x" * 101])
def test_bad_run_ids_are_refused(run_id):
    with pytest.raises(ValueError, match="invalid run id"):
        check_run_id(run_id)
