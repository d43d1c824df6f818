"""Magnitude classes ("microseconds", "KB-MB", "near-native") as ranges of a measured unit,
checked like a claimed range: pure logic, hand-made rows, and the shipped reference run."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from virtbench import claims, magnitudes, published
from virtbench.dataset import Dataset


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


def test_every_class_states_its_unit_and_boundaries():
    assert magnitudes.class_range("milliseconds", "ms")[:2] == (1.0, 1000.0)
    low, high, said = magnitudes.class_range("KB-MB", "B")
    assert (low, high) == (1e3, 1e9) and "10^3 B" in said
    assert magnitudes.class_range("near-native", "%")[:2] == (90.0, 100.0)
    assert "cannot be compared with MiB" in magnitudes.class_range("seconds", "MiB")
    assert "no magnitude class" in magnitudes.class_range("fast", "ms")
    assert claims.MAGNITUDES["microseconds"] == (0.001, 1.0)  # the old name still answers


@pytest.mark.parametrize("value, unit, name", [
    (0.5, "ms", "microseconds"), (1.0, "ms", "milliseconds"), (999.9, "ms", "milliseconds"),
    (1500.0, "ms", "seconds"), (2e6, "B", "KB-MB"), (95.0, "%", "near-native"),
    (5e9, "B", ""), (0.0005, "ms", ""),
])
def test_class_of_a_measured_value(value, unit, name):
    assert magnitudes.class_of(value, unit) == name


def rows(metric: str, experiment: str, unit: str, values: list[float],
         variant: str = "wasmtime-cli/jit", workload: str = "noop") -> Dataset:
    frame = pd.DataFrame([dict(run_id="t", experiment=experiment, family="wasm",
                               variant=variant, workload=workload, metric=metric, unit=unit,
                               rep=i, value=v, conditions="", reason="", warmup=False, tags="",
                               description="", timestamp="x") for i, v in enumerate(values)])
    return Dataset(frame, {}, "t", n_boot=199)


def test_a_size_class_is_checked_against_the_exact_size(pub):
    ds = rows("artifact_size", "disk", "B", [2_500_000.0], workload="http")
    check = claims.check(ds, keys=["seed:wasm:size-magnitude"], pub=pub)
    line = check.iloc[0]
    assert line["verdict"] == "consistent" and line["tallied"]
    assert (line["claim_low"], line["claim_high"]) == (1e3, 1e9)
    big = claims.check(rows("artifact_size", "disk", "B", [5e9], workload="http"),
                       keys=["seed:wasm:size-magnitude"], pub=pub)
    assert big.iloc[0]["verdict"] == "higher than claimed"


def test_startup_classes_of_the_decision_tree(pub):
    fast = rows("startup_process", "startup", "ms", [5.0, 5.2, 5.1, 4.9, 5.3, 5.0, 5.1])
    check = claims.check(fast, keys=["seed:scenario:wasm-under-10ms",
                                     "seed:scenario:serverless-wasm",
                                     "seed:wasm:startup-magnitude"], pub=pub)
    by_key = check.groupby("key")["verdict"].first()
    assert by_key["seed:scenario:wasm-under-10ms"] == "consistent"
    assert by_key["seed:scenario:serverless-wasm"] == "consistent"
    assert by_key["seed:wasm:startup-magnitude"] == "higher than claimed"
    slow = rows("startup_process", "startup", "ms", [20.0, 21, 22, 23, 24, 25, 26])
    assert claims.check(slow, keys=["seed:scenario:wasm-under-10ms"], pub=pub).iloc[0][
        "verdict"] == "higher than claimed"


def test_reference_magnitude_rows_are_answered(pub):
    ds = Dataset.load("reference", n_boot=199)
    check = claims.check(ds, keys=["seed:wasm:", "seed:scenario:"], pub=pub)
    verdicts = claims.claim_verdicts(check)
    assert len(verdicts) >= 7  # L209, L210, L211, L624 and the decision tree's three rules
    assert not any(v.startswith("not measurable here") for v in verdicts["verdict"])
    size = check[check["key"] == "seed:wasm:size-magnitude"]
    measured = size[size["n"] > 0]
    assert len(measured) and all(math.isfinite(m) for m in measured["median"])
    for line in measured.itertuples():  # the verdict follows from the class and the size
        inside = 1e3 * 0.95 <= line.median <= 1e9 * 1.05
        assert (line.verdict == "consistent") == inside, line.variant
