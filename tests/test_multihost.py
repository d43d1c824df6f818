"""A run of several hosts in the loaders, summaries, compare and the reports: RUN@HOST, a
host column, host-to-host comparisons, per-host reports. The data are the checked-in
fixture's startup rows stored once per host through the store (a campaign's layout)."""

from __future__ import annotations

from pathlib import Path

import pytest
from reportbuild import HOSTS, two_hosts

from virtbench import compare
from virtbench.cli import main
from virtbench.dataset import Dataset
from virtbench.results import DatasetError, load_runs

DATA = Path(__file__).parent / "data"


def test_rows_carry_their_host_and_a_single_host_run_its_hostname(tmp_path):
    run = two_hosts(tmp_path)
    df = load_runs(run, root=tmp_path)
    assert df.groupby("host").size().to_dict() == {
        h: len(df) // 2 for h in HOSTS}
    single = load_runs("fixture_run", root=DATA)
    assert set(single["host"]) == {"vm"}  # the fixture's host.json hostname


def test_run_at_host_loads_one_host_with_its_facts(tmp_path):
    run = two_hosts(tmp_path)
    both = Dataset.load(run, tmp_path, n_boot=199)
    assert both.host_names() == list(HOSTS) and set(both.hosts) == set(HOSTS)
    assert both.host_line().startswith("2 hosts: kvm-box = big:")
    one = Dataset.load(f"{run}@laptop", tmp_path, n_boot=199)
    assert one.host_names() == ["laptop"] and one.host["hostname"] == "small"
    assert one.host_line().startswith("small:")
    with pytest.raises(DatasetError, match="no host 'nope'; its hosts: kvm-box, laptop"):
        Dataset.load(f"{run}@nope", tmp_path)


def test_summaries_have_a_host_column_and_a_sample_never_mixes_hosts(tmp_path):
    ds = Dataset.load(two_hosts(tmp_path), tmp_path, n_boot=199)
    table = ds.summary(["startup"], variants=["native/static"], experiment="startup")
    assert list(table["host"]) == list(HOSTS)
    small, big = table["median"]
    assert big == pytest.approx(2 * small)
    with pytest.raises(ValueError, match="several hosts"):
        ds.sample("native/static", "startup", "startup")
    assert ds.for_host("kvm-box").sample("native/static", "startup", "startup").size


def test_compare_sets_hosts_side_by_side(tmp_path, capsys, monkeypatch):
    run = two_hosts(tmp_path)
    ds = Dataset.load(run, tmp_path, n_boot=199)
    with pytest.raises(ValueError, match="compare one host with another"):
        compare.compare(ds, ds)
    table = compare.between_hosts(ds, n_boot=199)
    line = table[(table["variant"] == "native/static") & (table["metric"] == "startup")].iloc[0]
    assert (line["host_a"], line["host_b"]) == ("kvm-box", "laptop")
    assert line["ratio"] == pytest.approx(2.0)
    assert line["n_a"] == line["n_b"] >= 3
    if compare.smallest_p(line["n_a"], line["n_b"]) < 0.05:  # enough reps for a test
        assert 0 < line["p_holm"] <= 1 and line["outcome"] in ("slower", "not significant")
    else:
        assert line["outcome"] == "not testable" and "cannot reach p < 0.05" in line["verdict"]
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path))
    assert main(["compare", f"{run}@kvm-box", f"{run}@laptop", "--metric", "startup"]) == 0
    assert "native/static noop startup" in capsys.readouterr().out


def test_reports_of_a_campaign_per_host_and_side_by_side(campaign_reports):
    """01_startup on a run of two hosts (built in the background: conftest.py)."""
    results, out = campaign_reports
    run = "camp"
    assert [r.status for r in results] == ["ok"] * 3, [r.error for r in results]
    assert results[0].headline.startswith("Hosts: 2 host(s) (kvm-box, laptop)")
    page = (out / "hosts.html").read_text()
    assert "kvm-box" in page and "laptop" in page and "Traceback" not in page
    for host in HOSTS:
        assert (out / host / "01_startup.html").exists()
        assert f'href="{host}/index.html"' in page
    assert (out / "data" / run / "hosts" / "laptop.json").exists()
