"""Summaries of stored rows: medians with CIs, reasons kept, ratios to the native baseline."""

from __future__ import annotations

import pandas as pd
import pytest

from virtbench.results import Measurement, RunStore, make_rows
from virtbench.summary import format_summary, ratios_to_baseline, summarize, summary_records


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


def test_ratio_to_native_with_ci(tmp_path):
    df = store_with(tmp_path, {"native/static": [10, 11, 9, 10, 10],
                               "other": [20, 22, 18, 20, 20]})
    r = ratios_to_baseline(df).set_index("variant")
    assert r.loc["other", "ratio"] == pytest.approx(2.0)
    assert r.loc["other", "ci_low"] <= 2.0 <= r.loc["other", "ci_high"]
    assert r.loc["native/static", "ratio"] == pytest.approx(1.0)


def test_zero_baseline_gives_no_ratio(tmp_path):
    df = store_with(tmp_path, {"native/static": [0, 0, 0], "other": [1, 0, 2]}, metric="errors",
                    unit="count")
    assert ratios_to_baseline(df).empty


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
    for rep in range(3):
        store.write_cell(make_rows([Measurement("startup", 1.0 + rep, "ms")], run_id="c",
                                   experiment="startup", family="native",
                                   variant="native/static", workload="noop", rep=rep))
    ratios = ratios_to_baseline(store.rows()).set_index("conditions")["ratio"]
    assert ratios['{"network": "bridge"}'] == pytest.approx(5.5)
    assert ratios['{"network": "none"}'] == pytest.approx(10.5)
