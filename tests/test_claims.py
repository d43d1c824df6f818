"""The claim -> measurement table and the claims-check logic (pure logic, no platform runs).

The synthetic frames below are fakes for unit tests of the selection and verdict rules;
``tests/data/fixture_run`` holds real rows measured on the development machine.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from virtbench import claims, published
from virtbench.results import COLUMNS

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


@pytest.fixture(scope="module")
def fixture_ds() -> claims.Dataset:
    return claims.Dataset.load("fixture_run", DATA, n_boot=499)


def rows(*specs: tuple) -> claims.Dataset:
    """A dataset from (variant, family, experiment, metric, unit, rep, value, reason) tuples."""
    lines = []
    for variant, family, experiment, metric, unit, rep, value, reason in specs:
        lines.append(dict(run_id="t", experiment=experiment, family=family, variant=variant,
                          workload="noop", metric=metric, unit=unit, rep=rep,
                          value=math.nan if value is None else float(value), reason=reason,
                          warmup=False, tags="", description="", timestamp="x"))
    return claims.Dataset(pd.DataFrame(lines, columns=list(COLUMNS)), {}, "t", n_boot=499)


def only(check: pd.DataFrame, **eq) -> pd.DataFrame:
    mask = pd.Series(True, index=check.index)
    for k, v in eq.items():
        mask &= check[k] == v
    return check[mask]


# --- the table ---------------------------------------------------------------------------------


def test_every_published_row_is_covered_by_a_mapping(pub):
    cov = claims.coverage(pub)
    missing = cov[cov["keys"] == ""]
    assert missing.empty, missing[["source", "line", "metric", "system"]].to_string()


def test_every_mapping_selects_published_rows(pub):
    for cm in claims.CLAIMS:
        assert len(claims.published_rows(cm, pub)), f"{cm.key} selects no published row"


def test_every_seed_row_is_shown_in_a_notebook(pub):
    by_key = {cm.key: cm for cm in claims.CLAIMS}
    cov = claims.coverage(pub)
    for _, row in cov[cov["source"] == "seed"].iterrows():
        notebooks = {nb for k in row["keys"].split(", ") for nb in by_key[k].notebooks}
        assert notebooks, f"seed line {row['line']} ({row['metric']}) is in no notebook"


def test_keys_are_unique_and_picks_use_known_transforms():
    keys = [cm.key for cm in claims.CLAIMS]
    assert len(keys) == len(set(keys))
    for cm in claims.CLAIMS:
        assert cm.picks or cm.not_measurable or set(cm.systems) <= set(claims.NOT_HERE), cm.key
        for pick in cm.picks:
            assert pick.transform in claims.TRANSFORMS, (cm.key, pick.transform)


def test_measurable_rows_name_a_system_with_variants(pub):
    for cm in claims.CLAIMS:
        if cm.not_measurable or cm.variants:
            continue
        for system in claims.published_rows(cm, pub)["system"]:
            assert system in claims.SYSTEMS or system in claims.NOT_HERE, (cm.key, system)


def test_standard_deviation_rows_are_not_claims(pub):
    sd = pub[pub["stat"] == "sd"]
    cov = claims.coverage(pub).loc[sd.index]
    assert (cov["keys"] == "felter:sd").all()


# --- units -------------------------------------------------------------------------------------


def test_seed_seconds_become_ms_and_megabytes_become_mebibytes():
    claim = claims._Claim("1.5 s", 1.5, 1.5, "s")
    assert claims._convert(claim, "ms")[:2] == (1500.0, 1500.0)
    low, high, said = claims._convert(claims._Claim("60 MB", 60, 60, "MB"), "MiB")
    assert low == pytest.approx(60e6 / 2**20) and "10^6" in said
    assert isinstance(claims._convert(claims._Claim("x", 1, 1, "GFLOPS"), "ms"), str)


def test_magnitude_labels_are_ranges_in_ms():
    ds = rows(*(("wasmtime-cli/jit", "wasm", "startup", "startup_process", "ms", r, v, "")
                for r, v in enumerate([20.0, 21.0, 22.0, 23.0])))
    cm = next(c for c in claims.CLAIMS if c.key == "seed:timeline:startup-magnitude")
    line = claims._check_variant(ds, cm, claims._Claim("microseconds", math.nan, math.nan, "",
                                                       "microseconds"), "wasmtime-cli/jit")[0]
    assert (line["claim_low"], line["claim_high"]) == (0.001, 1.0)
    assert line["verdict"] == "higher than claimed"
    assert line["metric"] == "startup_process"


# --- selection and verdicts --------------------------------------------------------------------


def test_missing_variant_takes_the_reason_stored_with_its_rows(pub):
    ds = rows(("native/static", "native", "startup", "startup", "ms", 0, 1.0, ""),
              ("docker/runc", "docker", "startup", "startup", "ms", 0, None,
               "not available: dockerd is not installed"))
    check = claims.check(ds, keys=["seed:core:startup"], pub=pub)
    docker = only(check, system="Docker")
    assert list(docker["verdict"]) == ["not measured: not available: dockerd is not installed"]


def test_absent_family_says_not_in_this_dataset(pub):
    ds = rows(("native/static", "native", "startup", "startup", "ms", 0, 1.0, ""))
    check = claims.check(ds, keys=["seed:core:startup"], pub=pub)
    vm = only(check, system="VM")
    assert vm["verdict"].iloc[0].startswith("not measured: not in this dataset")
    edera = only(check, system="Edera")
    assert edera["verdict"].iloc[0].startswith("not measurable here: Edera")


def test_ratio_to_native_pairs_samples_by_repetition(pub):
    native = [100.0, 110.0, 90.0, 100.0]
    docker = [125.0, 137.5, 112.5, 125.0]  # 80% of native each time
    ds = rows(*(("native/static", "native", "cpu", "compute_time", "ms", r, v, "")
                for r, v in enumerate(native)),
              *(("docker/runc", "docker", "cpu", "compute_time", "ms", r, v, "")
                for r, v in enumerate(docker)))
    check = claims.check(ds, keys=["seed:core:cpu"], pub=pub)
    line = only(check, variant="docker/runc").iloc[0]
    assert line["median"] == pytest.approx(80.0)
    assert "pairs matched by rep" in line["method"]
    assert line["verdict"] == "lower than claimed"  # the seed claims 99-100% of native
    assert line["unit"] == "%"


def test_sum_of_two_metrics_is_taken_per_repetition():
    ds = rows(("docker/runc", "docker", "memory", "cgroup_usage_idle", "MiB", 0, 1.0, ""),
              ("docker/runc", "docker", "memory", "shim_rss_idle", "MiB", 0, 13.0, ""),
              ("docker/runc", "docker", "memory", "cgroup_usage_idle", "MiB", 1, 2.0, ""),
              ("docker/runc", "docker", "memory", "shim_rss_idle", "MiB", 1, 13.5, ""))
    got = ds.sample("docker/runc", "cgroup_usage_idle+shim_rss_idle", "memory")
    assert sorted(got) == [14.0, 15.5]


def test_non_positive_memory_per_instance_gives_no_density(pub):
    ds = rows(("native/static", "native", "density", "memory_per_instance", "MiB", 0, -7.0, ""),
              ("native/static", "native", "memory", "rss_idle", "MiB", 0, 0.5, ""),
              ("native/static", "native", "memory", "rss_idle", "MiB", 1, 0.5, ""))
    cm = next(c for c in claims.CLAIMS if c.key == "seed:mem:density")
    line = claims._check_variant(ds, cm, claims._Claim("5", 5, 5, "instances"),
                                 "native/static")[0]
    assert line["metric"] == "rss_idle"  # the negative slope is skipped, not turned into a count
    assert line["median"] == pytest.approx(8192 / 0.5)


def test_a_single_size_is_exact_not_inconclusive(pub):
    ds = rows(("wasmtime-cli/aot", "wasm", "disk", "artifact_size", "B", 0, 120_000, ""))
    check = claims.check(ds, keys=["seed:core:disk-aot"], pub=pub)
    line = check.iloc[0]
    assert line["verdict"] == "lower than claimed"  # 0.12 MB < 0.5-5 MB
    assert "exact" in line["measured"]


def test_up_to_claims_become_an_interval_from_the_stated_floor(pub):
    ds = rows(("docker/runc", "docker", "disk", "artifact_size", "B", 0, 800_000, ""),
              ("wasmtime-cli/aot", "wasm", "disk", "artifact_size", "B", 0, 40_000, ""))
    check = claims.check(ds, keys=["lumos:image-size"], pub=pub)
    line = check.iloc[0]
    assert (line["claim_low"], line["claim_high"]) == (1.0, 30.0)
    assert line["median"] == pytest.approx(20.0)
    assert line["verdict"] == "consistent"


def test_felter_claims_are_published_ratios_to_native(pub):
    ds = rows(*(("native/static", "native", "io", "seq_read", "MB/s", r, 1000.0, "")
                for r in range(3)),
              *(("docker/runc", "docker", "io", "seq_read", "MB/s", r, 990.0 + r, "")
                for r in range(3)))
    check = claims.check(ds, keys=["felter:seq-read:docker"], pub=pub)
    line = check.iloc[0]
    assert line["claim_low"] == pytest.approx(806.673 / 806.935)
    assert line["median"] == pytest.approx(0.991)
    assert line["unit"] == "x"


def test_capability_claims_compare_full_and_limited_with_evidence(pub):
    ds = rows(("wasmtime-cli/jit", "wasm", "cpu", "compute_time", "ms", 0, 10.0, ""))
    check = claims.check(ds, keys=["seed:obs:logs"], pub=pub)
    wasm = only(check, system="Wasm").iloc[0]
    assert wasm["verdict"] == "more than claimed (collected here)"  # the seed says limited
    assert "collected" in wasm["measured"]


def test_variant_patterns_family_glob_and_exclusion():
    assert claims.selected(["wasm", "!*/aot"], "wasmtime-cli/jit", "wasm")
    assert not claims.selected(["wasm", "!*/aot"], "wasmtime-cli/aot", "wasm")
    assert claims.selected(["docker/*"], "docker/runc", "docker")
    assert not claims.selected(["docker/*"], "docker+wasm/wasmtime-cli", "docker")


# --- the real fixture --------------------------------------------------------------------------


def test_fixture_check_gives_every_seed_row_a_verdict(fixture_ds, pub):
    check = claims.check(fixture_ds, pub=pub)
    assert check["verdict"].notna().all() and (check["verdict"] != "").all()
    known = set(claims.VERDICT_ORDER) | {"more than claimed (collected here)",
                                         "not confirmed here"}
    assert set(check["verdict"].map(claims.verdict_class)) <= known
    for source in ("seed", "edera", "lumos", "felter"):
        lines = set(pub.loc[pub["source"] == source, "line"])
        assert lines <= set(check.loc[check["source"] == source, "line"]), source


def test_fixture_measured_lines_carry_median_ci_and_unit(fixture_ds, pub):
    check = claims.check(fixture_ds, pub=pub)
    measured = check[(check["n"].fillna(0) > 0) & check["median"].notna()]
    assert len(measured) > 0
    for _, line in measured.iterrows():
        assert line["unit"] != "" and line["measured"].endswith(("ms", "MiB", "B", "%", "x",
                                                                 "instances", "req/s",
                                                                 "(exact)")), line["measured"]


def test_fixture_summary_names_missing_variants(fixture_ds):
    s = fixture_ds.summary(["rss_idle"], experiment="memory", complete=False)
    missing = s[s["n"] == 0]
    assert len(missing) and missing["text"].str.startswith("not measured: ").all()
    measured = s[s["n"] > 0]
    assert (measured["variant"].str.startswith("native/")).all()


def test_fixture_host_line_and_tags(fixture_ds):
    assert "CPUs" in fixture_ds.host_line()
    cpu = fixture_ds.rows(experiment="cpu", metric="compute_time")
    sums = {json.loads(t)["checksum"] for t in cpu["tags"] if t}
    assert len(sums) == 1  # every platform did the same work


def test_compare_gives_ratio_ci_and_holm_corrected_tests(fixture_ds):
    table = fixture_ds.compare("compute_time", "cpu")
    assert {"ratio", "ratio_low", "ratio_high", "p_holm", "cliffs_delta"} <= set(table.columns)
    pulley = table[table["variant"] == "wasmtime-embedded/pulley"].iloc[0]
    assert pulley["ratio"] > 1 and pulley["ratio_low"] <= pulley["ratio"] <= pulley["ratio_high"]
    assert (table["p_holm"].dropna() >= table["p"].dropna()).all()


def test_headline_counts_verdict_families():
    table = pd.DataFrame({"verdict": ["consistent", "not measured: x", "not measured: y",
                                      "higher than claimed"]})
    text = claims.headline(table, "lead")
    assert text == "lead; claims: 1 consistent, 1 higher than claimed, 2 not measured"


def test_summary_of_an_empty_dataset_is_empty_not_an_error():
    ds = claims.Dataset(pd.DataFrame(columns=list(COLUMNS)))
    assert ds.summary(["startup"]).empty
    assert ds.summary([], complete=False).empty
    assert np.isnan(ds.sample("native/static", "startup")).all()
