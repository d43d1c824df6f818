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
    assert line["p_holm"] < 0.05 and line["outcome"] == "slower"
    assert line["verdict"].startswith("1.30x slower [")
    assert line["verdict"].endswith("p < 0.001")
    same = compare.compare(a, c).set_index("metric")
    assert same.loc["startup", "outcome"] == "not significant"
    assert same.loc["startup", "verdict"] == f"not significant (p = {same.loc['startup', 'p']:.2g})"
    assert same.loc["peak_rss", "verdict"] == "no difference (identical samples)"
    faster = compare.compare(b, a).set_index("metric").loc["startup", "verdict"]
    assert faster.startswith("1.30x faster [")


def test_compare_says_not_testable_when_n_cannot_reach_alpha(tmp_path):
    write_run(tmp_path, "a", [10.0, 10.1, 10.2], [1.0, 1.1, 1.2])
    write_run(tmp_path, "b", [30.0, 31.0, 32.0], [2.0, 2.1, 2.2])
    table = compare.compare(Dataset.load("a", tmp_path), Dataset.load("b", tmp_path))
    line = table.set_index("metric").loc["startup"]
    assert line["outcome"] == "not testable" and np.isnan(line["p"])
    assert line["verdict"].startswith("not testable: 3 vs 3 samples cannot reach p < 0.05")
    assert line["ratio"] == pytest.approx(31.0 / 10.1)  # the effect is still stated
    text = compare.format_table(table, "a", "b")
    assert "B/A 3.07 [" in text and text.splitlines()[-1] == "a -> b: 2 cells: 2 not testable"


def test_compare_text_says_when_n_gives_no_ci(tmp_path):
    write_run(tmp_path, "a", [10.0], [1.0])
    write_run(tmp_path, "b", [12.0], [1.0])
    table = compare.compare(Dataset.load("a", tmp_path), Dataset.load("b", tmp_path))
    text = compare.format_table(table, "a", "b")
    assert "nan" not in text
    assert "B/A 1.2 (no CI at n = 1)" in text


@pytest.mark.parametrize(("n_a", "n_b", "p"), [(3, 3, 0.1), (4, 4, 2 / 70), (0, 5, 1.0),
                                                (1, 1, 1.0)])
def test_smallest_p_of_the_u_test(n_a, n_b, p):
    assert compare.smallest_p(n_a, n_b) == pytest.approx(p)


@pytest.mark.parametrize(("p", "text"), [(0.00042, "p < 0.001"), (0.0031, "p = 0.0031"),
                                         (0.2149, "p = 0.21"), (1.0, "p = 1"),
                                         (float("nan"), "p not computed")])
def test_format_p(p, text):
    assert compare.format_p(p) == text


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
