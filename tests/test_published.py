"""Tests for virtbench.published: the shipped CSVs load, validation errors point at the cell."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from virtbench import published
from virtbench.published import COLUMNS, PublishedDataError

HEADER = ",".join(COLUMNS)
GOOD_POINT = "x,Table 1,Sec,startup time,Docker,,,381,,,ms,point,lower_is_better,note"
GOOD_RANGE = "x,Table 1,Sec,memory,Docker,,,,50,500,MB,range,lower_is_better,note"
GOOD_CATEGORY = "x,Table 2,Sec,tracing,Wasm,,,limited,,,,categorical,none,note"

EXPECTED_ROWS = {"seed": 187, "edera": 10, "lumos": 4, "felter": 103, "isolation": 0,
                 "edera-blog": 6, "unikernels": 12}


@pytest.fixture(scope="module")
def everything() -> pd.DataFrame:
    return published.load()


def write(tmp_path: Path, *lines: str, name: str = "edera_2501.04580.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one(df: pd.DataFrame, **where: str) -> pd.Series:
    mask = pd.Series(True, index=df.index)
    for column, text in where.items():
        mask &= df[column] == text
    rows = df[mask]
    assert len(rows) == 1, f"{where} matched {len(rows)} rows"
    return rows.iloc[0]


# --- shipped files ----------------------------------------------------------------------


@pytest.mark.parametrize("source", sorted(EXPECTED_ROWS))
def test_each_shipped_source_loads(source: str) -> None:
    df = published.load(source)
    assert len(df) == EXPECTED_ROWS[source]
    assert list(df.columns[: len(COLUMNS)]) == list(COLUMNS)
    assert {"value_text", "source", "line"} <= set(df.columns)
    assert (df["source"] == source).all()


def test_load_all_combines_sources(everything: pd.DataFrame) -> None:
    assert len(everything) == sum(EXPECTED_ROWS.values())
    assert everything.groupby("source").size().to_dict() == {
        k: v for k, v in EXPECTED_ROWS.items() if v
    }
    assert set(everything["direction"]) == set(published.DIRECTIONS)
    assert everything["value"].dtype == float
    # Header is line 1, so data starts on line 2 and lines are unique per source.
    assert everything["line"].min() == 2
    assert not everything.duplicated(["source", "line"]).any()


def test_known_edera_values(everything: pd.DataFrame) -> None:
    edera = everything[everything["source"] == "edera"]
    docker_v2 = one(
        edera, source_id="edera_2501.04580v2", metric="container startup time", system="Docker"
    )
    assert docker_v2["value"] == 381
    assert docker_v2["unit"] == "ms"
    assert docker_v2["line"] == 3
    derived = one(
        edera, source_id="edera_2501.04580v1", metric="container startup time", system="Edera"
    )
    assert derived["stat"] == "derived_sum"
    assert derived["value"] == pytest.approx(177.4 + 648)


def test_known_seed_values(everything: pd.DataFrame) -> None:
    seed = everything[everything["source"] == "seed"]
    cold = one(seed, metric="startup time", system="Docker", condition="cold start")
    assert (cold["value"], cold["unit"], cold["stat"]) == (1.5, "s", "point")
    assert cold["line"] == 49
    sleep = one(seed, stat="hard_coded", system="Docker")
    assert (sleep["value"], sleep["unit"]) == (1500, "ms")
    edera = one(seed, metric="startup time", system="Edera")
    assert edera["value"] == 1648
    density = one(seed, metric="instances per 8 GB machine", system="Wasm")
    assert density["value"] == 800


def test_categorical_rows_keep_their_text(everything: pd.DataFrame) -> None:
    seed = everything[everything["source"] == "seed"]
    cats = seed[seed["stat"] == "categorical"]
    assert len(cats) == 41  # 27; 10 "best" rows (quick decision table, L626); 4 magnitude classes
    assert cats["value"].isna().all()
    assert (cats["value_text"] != "").all()
    assert one(seed, metric="era of emergence (timeline label)", system="VM")["value_text"] == (
        "2000s"
    )
    syscall = one(seed, metric="system-call tracing capability", system="Wasm")
    assert syscall["value_text"] == "limited"
    assert syscall["unit"] == ""
    # Numeric rows have no text and always a unit.
    numeric = everything[everything["stat"] != "categorical"]
    assert (numeric["value_text"] == "").all()
    assert (numeric["unit"] != "").all()


def test_ranges_give_intervals(everything: pd.DataFrame) -> None:
    seed = everything[everything["source"] == "seed"]
    docker = one(seed, metric="startup time", system="Docker", stat="range")
    assert math.isnan(docker["value"])
    assert published.claim_interval(docker) == (100.0, 1000.0)
    edera = everything[everything["source"] == "edera"]
    memory = one(edera, stat="range")
    assert published.claim_interval(memory) == (0.0, 7.0)
    assert published.claim_interval(one(edera, stat="percent", source_id="edera_2501.04580v1")) == (
        0.9,
        0.9,
    )


def test_claim_interval_on_plain_mappings() -> None:
    assert published.claim_interval({"value": 3.0, "value_low": None, "value_high": None}) == (3, 3)
    assert published.claim_interval({"value": "", "value_low": "1", "value_high": "2"}) == (1, 2)
    with pytest.raises(ValueError):
        published.claim_interval({"value": math.nan, "value_low": math.nan, "value_high": math.nan})


def test_claims_filter(everything: pd.DataFrame) -> None:
    rows = published.claims(metric="STARTUP TIME", system="docker", df=everything)
    assert len(rows) > 0
    assert rows["metric"].str.lower().str.contains("startup time").all()
    assert rows["system"].str.lower().str.contains("docker").all()
    assert 381 in set(rows["value"])

    only_edera = published.claims(metric="startup", source="edera", df=everything)
    assert set(only_edera["source"]) == {"edera"}
    assert len(only_edera) == 6

    loaded = published.claims(metric="startup", source="edera")
    assert len(loaded) == 6
    assert published.claims(metric="no such metric", df=everything).empty


def test_every_shipped_interval_is_ordered(everything: pd.DataFrame) -> None:
    for _, row in everything[everything["stat"] != "categorical"].iterrows():
        low, high = published.claim_interval(row)
        assert low <= high


# --- validation -------------------------------------------------------------------------


def test_valid_tmp_file_loads(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_POINT, GOOD_RANGE, GOOD_CATEGORY)
    df = published.load("edera", papers=tmp_path)
    assert list(df["line"]) == [2, 3, 4]
    assert list(df["value_text"]) == ["", "", "limited"]


def test_header_only_file_loads_empty(tmp_path: Path) -> None:
    write(tmp_path, HEADER)
    df = published.load("edera", papers=tmp_path)
    assert df.empty
    assert list(df.columns) == list(published.FRAME_COLUMNS)


def check_error(excinfo: pytest.ExceptionInfo[PublishedDataError], line: int, column: str) -> str:
    message = str(excinfo.value)
    assert "edera_2501.04580.csv" in message
    assert f":{line}:" in message
    assert column in message
    assert excinfo.value.line == line
    assert excinfo.value.column == column
    return message


def test_bad_number(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_POINT, GOOD_POINT.replace(",381,", ",3x81,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    message = check_error(excinfo, 3, "value")
    assert "'3x81'" in message and "number" in message


def test_bad_bound_number(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_RANGE.replace(",500,", ",lots,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 2, "value_high")


def test_bad_direction(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_POINT, GOOD_RANGE, GOOD_POINT.replace("lower_is_better", "lower"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    message = check_error(excinfo, 4, "direction")
    for valid in published.DIRECTIONS:
        assert valid in message


def test_bad_header(tmp_path: Path) -> None:
    write(tmp_path, HEADER.replace("value_high", "value_hi"), GOOD_POINT)
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    message = check_error(excinfo, 1, "value_high")
    assert "'value_hi'" in message
    assert HEADER.replace(",", ", ") in message


def test_extra_header_column(tmp_path: Path) -> None:
    write(tmp_path, HEADER + ",extra", GOOD_POINT + ",x")
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 1, "extra")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "edera_2501.04580.csv").write_text("", encoding="utf-8")
    with pytest.raises(PublishedDataError, match="file is empty"):
        published.load("edera", papers=tmp_path)


def test_low_above_high(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_RANGE, GOOD_RANGE.replace(",50,500,", ",500,50,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    assert "value_low <= value_high" in check_error(excinfo, 3, "value_low")


def test_missing_value(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_POINT.replace(",381,", ",,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    assert "value_low and value_high" in check_error(excinfo, 2, "value")


def test_half_a_range(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_RANGE.replace(",500,", ",,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 2, "value_high")


def test_value_and_range_together(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_RANGE.replace(",,50,", ",7,50,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 2, "value")


@pytest.mark.parametrize("column", ["source_id", "metric", "system", "unit", "note"])
def test_required_field_empty(tmp_path: Path, column: str) -> None:
    fields = GOOD_POINT.split(",")
    fields[COLUMNS.index(column)] = ""
    write(tmp_path, HEADER, GOOD_POINT, ",".join(fields))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 3, column)


def test_categorical_row_needs_text(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_CATEGORY.replace(",limited,", ",,"))
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 2, "value")


def test_wrong_field_count(tmp_path: Path) -> None:
    write(tmp_path, HEADER, GOOD_POINT.rsplit(",", 1)[0])
    with pytest.raises(PublishedDataError, match=r"edera_2501\.04580\.csv:2: row has 13 fields"):
        published.load("edera", papers=tmp_path)


def test_line_numbers_follow_multiline_fields(tmp_path: Path) -> None:
    multiline = GOOD_POINT.replace(",note", ',"a note\nover two lines"')
    bad = GOOD_POINT.replace("lower_is_better", "up")
    write(tmp_path, HEADER, multiline, GOOD_RANGE, bad)
    with pytest.raises(PublishedDataError) as excinfo:
        published.load("edera", papers=tmp_path)
    check_error(excinfo, 5, "direction")

    write(tmp_path, HEADER, multiline, GOOD_RANGE)
    df = published.load("edera", papers=tmp_path)
    assert list(df["line"]) == [2, 4]
    assert df["note"].iloc[0] == "a note\nover two lines"


def test_unknown_source_lists_valid_names() -> None:
    with pytest.raises(ValueError) as excinfo:
        published.load("nope")
    assert not isinstance(excinfo.value, PublishedDataError)
    for name in published.SOURCES:
        assert name in str(excinfo.value)
    with pytest.raises(ValueError, match="valid sources"):
        published.claims(source="nope", df=pd.DataFrame(columns=list(published.FRAME_COLUMNS)))


def test_papers_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, HEADER, GOOD_POINT)
    monkeypatch.setenv("VIRTBENCH_PAPERS", str(tmp_path))
    assert list(published.load("edera")["value"]) == [381.0]


# --- formatting and command line --------------------------------------------------------


def test_format_table(everything: pd.DataFrame) -> None:
    text = published.format_table(published.claims("startup time", "docker", df=everything))
    lines = text.splitlines()
    assert lines[0].split() == ["source", "metric", "system", "condition", "value", "unit", "stat"]
    assert any("381" in line and "edera" in line for line in lines)
    assert any("100–1000" in line for line in lines)
    assert any("milliseconds" in line for line in lines)
    assert published.format_table(everything.iloc[0:0]) == "no matching published claims"


def test_format_value() -> None:
    assert published.format_value({"value": 381.0, "value_text": ""}) == "381"
    assert published.format_value({"value": 0.005, "value_low": None, "value_high": None}) == (
        "0.005"
    )
    row = {"value": math.nan, "value_low": 0.5, "value_high": 5.0, "value_text": ""}
    assert published.format_value(row) == "0.5–5"


def test_main_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert published.main(["edera", "--metric", "startup", "--system", "docker"]) == 0
    out = capsys.readouterr().out
    assert "381" in out and "177.4" in out
    assert "(2 claims)" in out


def test_main_all_sources(capsys: pytest.CaptureFixture[str]) -> None:
    assert published.main([]) == 0
    assert f"({sum(EXPECTED_ROWS.values())} claims)" in capsys.readouterr().out


def test_main_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert published.main(["lumos", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 4
    assert {r["value"] for r in records} == {30, 16, 55, 10}
    assert all(r["value_low"] is None for r in records)


def test_main_bad_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert published.main(["nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "nope" in captured.err
    for name in published.SOURCES:
        assert name in captured.err


def test_main_reports_bad_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, HEADER, GOOD_POINT.replace(",381,", ",abc,"))
    monkeypatch.setenv("VIRTBENCH_PAPERS", str(tmp_path))
    assert published.main(["edera"]) == 1
    assert "edera_2501.04580.csv:2" in capsys.readouterr().err
