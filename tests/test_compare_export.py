"""`virtbench compare` and `virtbench export` on hand-made runs written through the store."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from virtbench import compare
from virtbench.cli import main
from virtbench.dataset import Dataset
from virtbench.results import Measurement, RunStore, load_runs, make_rows


def write_run(root, run_id: str, startup: list[float], rss: list[float]) -> None:
    store = RunStore(run_id, root=root)
    with store.locked():
        for rep, (s, r) in enumerate(zip(startup, rss, strict=True)):
            ms = [Measurement("startup", s, "ms", "fork to wait4"),
                  Measurement("peak_rss", r, "MiB", "ru_maxrss")]
            store.write_cell(make_rows(ms, run_id=run_id, experiment="startup",
                                       family="native", variant="native/static",
                                       workload="noop", rep=rep))


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(3)
    base = 10 + rng.normal(0, 0.2, 10)
    write_run(tmp_path, "a", list(base), [1.0] * 10)
    write_run(tmp_path, "b", list(base * 1.3), [1.0] * 10)
    write_run(tmp_path, "c", list(base[::-1]), [1.0] * 10)
    return tmp_path


def test_compare_finds_a_slowdown_and_no_difference(runs):
    a, b, c = (Dataset.load(r, runs) for r in "abc")
    slower = compare.compare(a, b)
    line = slower[slower["metric"] == "startup"].iloc[0]
    assert line["ratio"] == pytest.approx(1.3, rel=0.02)
    assert line["ratio_low"] <= line["ratio"] <= line["ratio_high"]
    assert line["p_holm"] < 0.05 and line["verdict"].endswith("slower")
    assert line["verdict"].startswith("1.30x [")
    same = compare.compare(a, c)
    assert same.set_index("metric").loc["startup", "verdict"] == "no significant difference"
    assert same.set_index("metric").loc["peak_rss", "verdict"] == (
        "no difference (identical samples)")
    faster = compare.compare(b, a).set_index("metric").loc["startup", "verdict"]
    assert faster.endswith("faster") and faster.startswith("1.30x")


def test_compare_command_json_and_filters(runs, capsys):
    assert main(["compare", "a", "b", "--datasets", str(runs), "--json",
                 "--metric", "startup"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["metric"] for c in doc["cells"]] == ["startup"]
    assert main(["compare", "a", "b", "--datasets", str(runs)]) == 0
    assert "slower" in capsys.readouterr().out
    assert main(["compare", "a", "zz", "--datasets", str(runs)]) == 2
    assert "no dataset" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["parquet", "csv", "json"])
def test_export_reads_back_identically(runs, tmp_path, fmt):
    (runs / "a" / "host.json").write_text(json.dumps({"hostname": "h1"}))
    out = tmp_path / f"a.{fmt}"
    assert main(["export", "a", "--format", fmt, "--out", str(out),
                 "--datasets", str(runs)]) == 0
    rows = load_runs("a", root=runs)
    if fmt == "parquet":
        back = pd.read_parquet(out)
        pd.testing.assert_frame_equal(back, rows)
        assert back.attrs["host"] == {"hostname": "h1"} and back.attrs["run_id"] == "a"
    elif fmt == "csv":
        back = pd.read_csv(out, keep_default_na=False, dtype=str)
        assert len(back) == len(rows) and list(back.columns) == list(rows.columns)
        assert json.loads((tmp_path / "a.csv.host.json").read_text()) == {"hostname": "h1"}
    else:
        doc = json.loads(out.read_text())
        assert doc["host"] == {"hostname": "h1"} and len(doc["rows"]) == len(rows)


def test_version_and_python_m(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("virtbench ")
    out = subprocess.run([sys.executable, "-m", "virtbench", "--version"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("virtbench ")


def test_list_variants_and_runs(runs, capsys):
    assert main(["list", "variants"]) == 0
    assert "qemu-tcg/microvm" in capsys.readouterr().out
    assert main(["list", "runs", "--datasets", str(runs), "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert names == ["a", "b", "c"]
