"""Summaries of stored rows: medians with CIs, reasons kept, ratios to the native baseline."""

from __future__ import annotations

import pandas as pd
import pytest

from virtbench.results import Measurement, RunStore, make_rows
from virtbench.summary import format_summary, summarize, summary_records


def store_with(tmp_path, samples: dict[str, list[float | None]], metric="latency_p50",
               unit="ms") -> pd.DataFrame:
    store = RunStore("s", root=tmp_path)
    for variant, values in samples.items():
        for rep, v in enumerate(values):
            m = Measurement(metric, v, unit) if v is not None else \
                Measurement.missing(metric, unit, "not available: engine absent")
            store.write_cell(make_rows([m], run_id="s", experiment="http", family="x",
                                       variant=variant, workload="w", rep=rep))
    return store.rows()


def test_summary_has_median_ci_and_reason(tmp_path):
    df = store_with(tmp_path, {"native/static": [1, 2, 3, 4, 5], "vm/x": [None]})
    s = summarize(df).set_index("variant")
    assert s.loc["native/static", "median"] == 3 and s.loc["native/static", "n"] == 5
    assert s.loc["native/static", "ci_low"] <= 3 <= s.loc["native/static", "ci_high"]
    assert s.loc["vm/x", "n"] == 0 and "engine absent" in s.loc["vm/x", "reason"]
    text = format_summary(summarize(df))
    assert "not measured: not available: engine absent" in text
    records = summary_records(summarize(df))
    assert records[1]["median"] is None and records[1]["reason"]
    assert "reason" not in records[0]


def test_conditions_are_summarized_apart(tmp_path):
    store = RunStore("c", root=tmp_path)
    for rep in range(3):
        ms = [Measurement("startup", 10.0 + rep, "ms", conditions={"network": "bridge"}),
              Measurement("startup", 20.0 + rep, "ms", conditions={"network": "none"})]
        store.write_cell(make_rows(ms, run_id="c", experiment="startup", family="docker",
                                   variant="docker/runc", workload="noop", rep=rep))
    s = summarize(store.rows())
    assert sorted(s["median"]) == [11.0, 21.0]
    assert "startup [network=none]" in format_summary(s)
    assert {tuple(r["conditions"].items()) for r in summary_records(s)} == {
        (("network", "bridge"),), (("network", "none"),)}


def test_a_repetition_with_several_readings_counts_once(tmp_path):
    store = RunStore("r", root=tmp_path)
    for rep in range(4):
        readings = [Measurement("startup", 10.0 * (rep + 1) + i, "ms") for i in range(3)]
        store.write_cell(make_rows(readings, run_id="r", experiment="startup", family="x",
                                   variant="x/y", workload="noop", rep=rep))
    (line,) = summary_records(summarize(store.rows()))
    assert line["n"] == 4  # four repetitions, not twelve readings
    assert line["median"] == pytest.approx(26.0)  # median of 11, 21, 31, 41


def test_the_interval_says_its_real_coverage(tmp_path):
    df = store_with(tmp_path, {"native/static": [1, 2, 3]})
    (line,) = summary_records(summarize(df))
    assert line["coverage"] == pytest.approx(0.75)  # three samples: [min, max] covers 75 %
    assert "(75%)" in format_summary(summarize(df)) and "95% CI" not in format_summary(
        summarize(df))
