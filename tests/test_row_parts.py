"""The parsed parts of a run's rows as the notebooks read them: tags, one condition (with the
value a row without it was measured under), the lines of one condition labelled with the
others. Hand-made frames, and the checked-in fixture run."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from virtbench import conditions
from virtbench.dataset import Dataset

DATA = Path(__file__).parent / "data"


def test_a_tag_per_row_as_text_empty_where_there_is_none():
    rows = pd.DataFrame({"tags": ['{"checksum": "ab12", "connections": 64}', "", math.nan]},
                        index=[7, 8, 9])
    checksum = Dataset.tag(rows, "checksum")
    assert list(checksum) == ["ab12", "", ""] and list(checksum.index) == [7, 8, 9]
    assert list(Dataset.tag(rows, "connections")) == ["64", "", ""]
    assert list(Dataset.tag(rows, "colour")) == ["", "", ""]


def test_a_condition_from_stored_rows_and_from_summary_lines_with_its_default():
    frame = pd.DataFrame({"conditions": ['{"kernel": "nbody", "state": "idle"}', "",
                                         "kernel=sort, state=loaded", "state=idle"]})
    # a row without a kernel ran the hash kernel (conditions.DEFAULTS)
    assert list(Dataset.condition(frame, "kernel")) == ["nbody", "hash", "sort", "hash"]
    assert list(Dataset.condition(frame, "state")) == ["idle", "", "loaded", "idle"]


def test_lines_under_one_condition_carry_the_others_in_their_label():
    summary = pd.DataFrame({
        "metric": ["rss", "rss", "pss", "rss"],
        "conditions": ["guest_memory_mib=256, state=idle", "state=loaded", "state=idle", ""],
        "median": [1.0, 2.0, 3.0, 4.0]})
    idle = Dataset.under(summary, "state", "idle")
    assert list(idle["metric"]) == ["rss (guest_memory_mib=256)", "pss"]
    assert list(idle["median"]) == [1.0, 3.0]
    assert list(Dataset.under(summary, "state", "loaded")["metric"]) == ["rss"]
    assert Dataset.under(summary, "state", "busy").empty


def test_conditions_text_helpers():
    assert conditions.conditions_of('{"b": "2", "a": "1"}') == {"a": "1", "b": "2"}
    assert conditions.conditions_of("a=1, b=x=y") == {"a": "1", "b": "x=y"}
    assert conditions.conditions_of("") == conditions.conditions_of(math.nan) == {}
    assert conditions.condition_value("cache=cold", "cache") == "cold"
    assert conditions.condition_value("", "cache") == "warm"  # conditions.DEFAULTS
    assert conditions.condition_value("", "attack") == ""
    assert conditions.without_condition('{"state": "idle", "kernel": "fib"}', "state") == \
        "kernel=fib"
    assert conditions.with_conditions("startup", "network=none") == "startup (network=none)"
    assert conditions.with_conditions("startup", "") == "startup"


def test_the_fixture_cpu_rows_did_the_same_work_by_their_checksum_tags():
    ds = Dataset.load("fixture_run", DATA, n_boot=99)
    cpu = ds.rows(experiment="cpu", metric="compute_time")
    cpu = cpu[cpu["value"].notna()]
    sums = Dataset.tag(cpu, "checksum")
    assert len(cpu) == 20
    assert set(sums) == {"0x545dbc71613aeba0"}  # every platform did the same work
    # the fixture predates the other kernels: its rows carry no kernel and ran the hash chain
    assert set(cpu["conditions"]) == {""} and set(Dataset.condition(cpu, "kernel")) == {"hash"}
