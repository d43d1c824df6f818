"""The claims check kept on disk: read back for the same inputs, computed again otherwise."""

from __future__ import annotations

import pandas as pd

from virtbench import checkcache


def test_the_same_inputs_are_computed_once_and_a_change_computes_again(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "results.csv"
    data.write_text("a\n1\n")
    calls = []

    def compute() -> pd.DataFrame:
        calls.append(1)
        return pd.DataFrame({"verdict": [f"v{len(calls)}"]})

    first = checkcache.cached(compute, [data], {"min_n": 6})
    again = checkcache.cached(compute, [data], {"min_n": 6})
    assert len(calls) == 1 and again.equals(first)
    checkcache.cached(compute, [data], {"min_n": 7})  # another policy
    data.write_text("a\n2\n")  # another dataset
    changed = checkcache.cached(compute, [data], {"min_n": 6})
    assert len(calls) == 3 and changed["verdict"].iloc[0] == "v3"


def test_an_unreadable_entry_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_CACHE", str(tmp_path / "cache"))
    key = checkcache.key_of([], {})
    (tmp_path / "cache" / "claims").mkdir(parents=True)
    (tmp_path / "cache" / "claims" / f"{key}.pkl").write_bytes(b"not a pickle")
    table = checkcache.cached(lambda: pd.DataFrame({"x": [1]}), [], {})
    assert list(table["x"]) == [1]
