"""Dataset.measured through the per-repetition index gives the frame that reading the rows
one request at a time gives: same rows, order, values and dtypes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from virtbench import claims
from virtbench.conditions import parse_conditions
from virtbench.dataset import Dataset

DATA = Path(__file__).parent / "data"


def _row_by_row(ds: Dataset) -> Dataset:
    """The same rows, with the index switched off (every request reads the rows)."""
    slow = Dataset(ds.df, ds.host, ds.run_id, ds.n_boot, ds.hosts, ds.files)
    slow._rep_indexes, slow._rep_indexed = {True: None, False: None}, slow.df
    return slow


def _assert_same(fast: Dataset, slow: Dataset, request: tuple) -> None:
    got = fast._measure(*request)
    want = slow._measure(*request)
    pd.testing.assert_frame_equal(got, want, check_exact=True, obj=repr(request))


def _requests(ds: Dataset) -> list[tuple]:
    """For every (variant, metric, experiment) of the run: no conditions (censored or not),
    its first workload under its first measured condition set, a condition nothing meets;
    and requests for a variant, metric and experiment the run does not have."""
    out = []
    df = ds.df
    for (variant, metric, experiment), rows in df.groupby(["variant", "metric", "experiment"]):
        first = next((dict(parse_conditions(c)) for c in rows["conditions"] if c), None)
        out += [(variant, metric, experiment, None, None, False),
                (variant, metric, experiment, None, None, True),
                (variant, metric, experiment, rows["workload"].iloc[0], first, False),
                (variant, metric, experiment, None, {"kernel": "no-such-kernel"}, True)]
    variant, metric, experiment = df.iloc[0][["variant", "metric", "experiment"]]
    for censored in (False, True):
        out += [("no/such", metric, experiment, None, None, censored),
                (variant, "no_such_metric", experiment, None, None, censored),
                (variant, metric, "no_such_experiment", None, None, censored),
                (variant, metric, experiment, "no_such_workload", None, censored)]
    return out


def test_fixture_run_every_request_is_the_same():
    ds = Dataset.load("fixture_run", DATA)
    slow = _row_by_row(ds)
    requests = _requests(ds)
    assert len(requests) > 100
    for request in requests:
        _assert_same(ds, slow, request)


def test_a_sum_of_two_metrics_is_the_same():
    ds = Dataset.load("fixture_run", DATA)
    for censored in (False, True):
        request = ("native/static", "rss+pss", "memory", None, None, censored)
        _assert_same(ds, _row_by_row(ds), request)
        assert len(ds._measure(*request)) >= 2


@pytest.mark.slow
def test_every_request_of_the_reference_claims_check_is_the_same(monkeypatch):
    """The requests a claims check of the shipped reference makes (recorded while it runs)."""
    ds = Dataset.load("reference")
    asked: list[tuple] = []
    measure = Dataset._measure

    def record(self, *request):
        asked.append(request)
        return measure(self, *request)

    monkeypatch.setattr(Dataset, "_measure", record)
    claims.check(ds)
    monkeypatch.setattr(Dataset, "_measure", measure)
    assert len(asked) > 100
    slow = _row_by_row(ds)
    for request in {repr(r): r for r in asked}.values():
        _assert_same(ds, slow, request)
