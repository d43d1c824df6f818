"""The metric catalog: every emitted metric declared once, conditions as a structured column."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from virtbench import catalog, experiments, stats
from virtbench.cli import main
from virtbench.results import (
    COLUMNS,
    Measurement,
    RunStore,
    decode_conditions,
    load_runs,
    make_rows,
)
from virtbench.store import migrate

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [ROOT / "datasets" / "reference" / "results.csv",
           ROOT / "tests" / "data" / "fixture_run" / "results.csv"]


def rows_of(measurements: list[Measurement], experiment: str = "startup"):
    return make_rows(measurements, run_id="r", experiment=experiment, family="docker",
                     variant="docker/runc", workload="noop", rep=0)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.parent.name)
def test_every_row_of_the_shipped_datasets_is_declared(path):
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == list(COLUMNS)  # the shipped runs are in the store format
        rows = list(reader)
    assert rows
    for row in rows:
        catalog.validate(row["experiment"], row["metric"], row["unit"],
                         decode_conditions(row["conditions"]))
        assert row["conditions"] == "" or json.loads(row["conditions"])


def test_every_experiment_declares_its_metrics_and_primary_rows():
    for name, exp in experiments.EXPERIMENTS.items():
        assert catalog.metrics(name)
        assert exp.primary_metrics(), f"{name} has no primary metrics"
        for m, conditions in exp.primary_metrics():
            catalog.validate(name, m.name, m.unit, conditions)
    assert set(catalog.experiments()) == set(experiments.EXPERIMENTS)


def test_no_condition_is_a_suffix_of_a_metric_name():
    suffix = re.compile(r"_(none|bridge|host|idle|loaded|limited|pooling|cached|guest\d+)$")
    # idle is what cpu_usage measures (an instance nobody calls), not a condition
    assert [m.name for m in catalog.metrics() if suffix.search(m.name)] == ["cpu_percent_idle"]
    assert all(m.what and m.better in catalog.BETTER for m in catalog.metrics())
    exact = {m.name for m in catalog.metrics() if m.exact}
    assert "artifact_size" in exact and "snapshot_size" not in exact  # a RAM image varies
    # exact: a size, or a capability seen or not (a probe, an attempt, a run elsewhere)
    capabilities = ("collected (1/0)", "ran (1/0)", "attempts closed (of 4)")
    assert all(m.unit in ("B", *capabilities) for m in catalog.metrics() if m.exact)


def test_undeclared_metric_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match=r"'startup_cold_none'.*'startup'.*startup_warm"):
        rows_of([Measurement("startup_cold_none", 1.0, "ms")])
    with pytest.raises(ValueError, match="no metrics are declared for experiment 'nope'"):
        rows_of([Measurement("startup", 1.0, "ms")], experiment="nope")


def test_undeclared_condition_key_is_refused():
    with pytest.raises(ValueError, match="condition 'state' is not declared.*network"):
        rows_of([Measurement("startup", 1.0, "ms", conditions={"state": "idle"})])


def test_invalid_condition_value_is_refused():
    with pytest.raises(ValueError, match="network='brdige'.*bridge | none | host"):
        rows_of([Measurement("startup", 1.0, "ms", conditions={"network": "brdige"})])
    with pytest.raises(ValueError, match="guest_memory_mib"):
        rows_of([Measurement("rss", 1.0, "MiB", conditions={"guest_memory_mib": 128})],
                experiment="memory")


def test_unit_other_than_the_catalogs_is_refused():
    with pytest.raises(ValueError, match="in 'ms' in the catalog, not 's'"):
        rows_of([Measurement("startup", 1.0, "s")])


def test_conditions_round_trip_through_the_store(tmp_path):
    store = RunStore("c", root=tmp_path)
    store.write_cell(rows_of([
        Measurement("startup_warm", 2.0, "ms", conditions={"network": "none"}),
        Measurement("startup", 1.0, "ms"),
    ]))
    with store.path.open(newline="") as fh:
        header = next(csv.reader(fh))
    assert header.index("conditions") == header.index("metric") + 1
    df = load_runs("c", root=tmp_path)
    assert list(df["conditions"]) == ['{"network": "none"}', ""]
    assert decode_conditions(df["conditions"].iloc[0]) == {"network": "none"}


def test_keys_are_sorted_in_the_canonical_text():
    (row,) = rows_of([Measurement("rss", 1.0, "MiB",
                                  conditions={"state": "idle", "guest_memory_mib": "128"})],
                     experiment="memory")
    assert row.conditions == '{"guest_memory_mib": "128", "state": "idle"}'


def older_run(tmp_path: Path) -> Path:
    """A run written before the conditions column (the fixture's rows, old names)."""
    run = tmp_path / "old"
    run.mkdir()
    with SHIPPED[1].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    old = [c for c in COLUMNS if c != "conditions"]
    with (run / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=old, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            if row["metric"] == "startup_cold" and row["conditions"] == '{"network": "none"}':
                row["metric"] = "startup_cold_none"
            writer.writerow(row)
    return run / "results.csv"


def test_an_older_dataset_is_migrated_to_catalog_names_on_load(tmp_path):
    path = older_run(tmp_path)
    before = path.read_text()
    migrated = load_runs("old", root=tmp_path)
    cold = migrated[migrated["metric"] == "startup_cold"]
    assert '{"network": "none"}' in set(cold["conditions"])
    assert "startup_cold_none" not in set(migrated["metric"])
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["metric"] for r in rows] == list(migrated["metric"])  # rewritten on disk
    assert len(before.splitlines()) == len(path.read_text().splitlines())
    with RunStore("old", root=tmp_path).locked():  # and it can be written to now
        pass


@pytest.mark.parametrize(("experiment", "family", "old", "tags", "new", "conditions"), [
    ("startup", "docker", "startup_none", {"network": "none"}, "startup", {"network": "none"}),
    ("startup", "docker", "startup_load", {"network": "host"}, "startup_load",
     {"network": "host"}),
    ("startup", "wasm", "startup_warm_pooling", {}, "startup_warm", {"allocator": "pooling"}),
    ("startup", "wasm", "startup_process_cached", {}, "startup_process", {"code_cache": "on"}),
    ("startup", "wasm", "startup_process_aot", {}, "startup_process",
     {"module": "precompiled"}),
    ("startup", "native", "startup", {}, "startup", {}),
    ("memory", "vm", "pss_guest128_loaded", {"guest_memory_mib": "128"}, "pss",
     {"guest_memory_mib": "128", "state": "loaded"}),
    ("memory", "vm", "rss_idle", {"guest_memory_mib": "256"}, "rss",
     {"guest_memory_mib": "256", "state": "idle"}),
    ("memory", "docker", "rss_per_instance_idle", {}, "rss_per_instance", {"state": "idle"}),
    ("memory", "docker", "cgroup_anon_loaded", {"network": "bridge"}, "cgroup_anon",
     {"state": "loaded"}),
    ("isolation", "wasm", "slowdown_mem_limited", {}, "slowdown",
     {"attack": "mem", "limits": "on"}),
    ("isolation", "wasm", "slowdown_proc", {}, "slowdown", {"attack": "proc", "limits": "off"}),
    ("isolation", "wasm", "victim_alone", {}, "victim_alone", {}),
])
def test_older_names_map_to_the_catalog(experiment, family, old, tags, new, conditions):
    assert migrate.migrate_metric(experiment, family, old, tags) == (new, conditions)


def test_list_metrics_json(capsys):
    assert main(["list", "metrics", "--json"]) == 0
    found = {(m["experiment"], m["name"]): m for m in json.loads(capsys.readouterr().out)}
    assert "network" in found["startup", "startup_cold"]["conditions"]
    assert found["disk", "artifact_size"]["exact"] is True
    assert len(found) == len(catalog.CATALOG)


def test_list_metrics_plain_fits_and_filters(capsys):
    assert main(["list", "metrics", "--experiment", "isolation"]) == 0
    out = capsys.readouterr().out
    assert "slowdown" in out and "attack, limits" in out and "startup" not in out
    assert main(["list", "metrics"]) == 0
    assert max(len(line) for line in capsys.readouterr().out.splitlines()) <= 100
    assert main(["list", "metrics", "--experiment", "nope"]) == 2
    assert main(["list", "experiments"]) == 0
    out = capsys.readouterr().out
    assert "isolation" in out
    assert "reps 20 + 1 warm-up; quick 6 + 1 warm-up" in " ".join(out.split())  # startup
    assert "disk bytes on disk needed to run the workloads [measured once]" in " ".join(
        out.split())


def test_every_experiment_that_feeds_a_verdict_defaults_to_enough_repetitions():
    from virtbench import claims, experiments

    # a capability is shown by one observation, an exact reading by one sample (both exempt
    # under the policy)
    fed = {pick.experiment for claim in claims.load_map().claims for pick in claim.picks
           if pick.transform != "capability" and not all(
               catalog.get(pick.experiment, m).exact for m in pick.metric.split("+"))}
    assert {"startup", "memory", "cpu", "io", "http", "density"} <= fed
    # startup 20; the long isolation and speedtest1 cells the policy's minimum; others 10
    least = {"startup": 20, "isolation": stats.POLICY.min_n, "speedtest1": stats.POLICY.min_n}
    for name in fed:
        e = experiments.get(name)
        assert e.once or e.reps >= least.get(name, 10), name


def test_io_cache_and_fs_conditions_are_declared_for_the_right_metrics():
    for metric in ("seq_read", "rand_read"):
        for cache in ("warm", "cold"):
            catalog.validate("io", metric, "MB/s", {"cache": cache, "fs": "host"})
        with pytest.raises(ValueError, match="warm | cold"):
            catalog.validate("io", metric, "MB/s", {"cache": "lukewarm"})
    catalog.validate("io", "seq_write", "MB/s", {"fs": "memory"})
    with pytest.raises(ValueError, match="not declared for io/seq_write"):
        catalog.validate("io", "seq_write", "MB/s", {"cache": "cold"})
    with pytest.raises(ValueError, match="host | memory"):
        catalog.validate("io", "rand_write", "MB/s", {"fs": "tmpfs"})
    primary = [(m.name, c) for m, c in catalog.primary("io")]
    assert ("seq_read", {"cache": "cold"}) in primary
    assert ("rand_read", {"cache": "warm"}) in primary


def test_older_io_rows_of_an_in_memory_file_system_get_fs_memory():
    where = {"where": "wasmer-sdk sandbox /workspace (in-memory file system; no host directory "
                      "preopened)"}
    assert migrate.migrate_metric("io", "wasm", "seq_read", where) == ("seq_read",
                                                                        {"fs": "memory"})
    assert migrate.migrate_metric("io", "native", "seq_read", {}) == ("seq_read", {})
