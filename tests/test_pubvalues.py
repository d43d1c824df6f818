"""One published figure found by what it is, and a published duration in seconds (the
shipped papers/*.csv)."""

from __future__ import annotations

import pandas as pd
import pytest

from virtbench import published, pubvalues


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


def test_a_figure_by_source_metric_system_and_paper_version(pub):
    docker = {v: pubvalues.value(pub, "edera", "container startup time", "Docker", version=v)
              for v in ("v1", "v2")}
    assert docker == {"v1": 177.4, "v2": 381.0}
    row = pubvalues.find(pub, "edera", "startup time increase vs Docker", "Edera",
                         version="v1")
    assert (row["value"], row["unit"], row["line"]) == (648.0, "ms", 10)


def test_a_figure_by_table_and_condition_and_its_seconds(pub):
    bar = pubvalues.find(pub, "seed", system="Docker", condition="cold start",
                         table="bar chart")
    assert (bar["value"], bar["unit"], bar["line"]) == (1.5, "s", 49)
    sleep = pubvalues.find(pub, "seed", "hard-coded sleep in 'docker_startup' benchmark")
    assert (sleep["value"], sleep["unit"]) == (1500.0, "ms")
    assert pubvalues.seconds(bar) == pubvalues.seconds(sleep) == 1.5
    wasm = pubvalues.find(pub, "seed", system="Wasm", condition="cold start", table="bar chart")
    assert pubvalues.seconds(wasm) == pytest.approx(0.01)


def test_a_missing_figure_or_a_unit_that_is_no_time_is_named(pub):
    with pytest.raises(KeyError, match="no published edera row with metric='teleport time', "
                                       "version='v3'"):
        pubvalues.find(pub, "edera", "teleport time", version="v3")
    price = pubvalues.find(pub, "seed", "unit price", "VM (t3.medium)")
    with pytest.raises(ValueError, match="'unit price' is in .*, not a time"):
        pubvalues.seconds(price)
