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
    """A dataset from (variant, family, experiment, metric, unit, rep, value, reason[,
    conditions]) tuples."""
    lines = []
    for spec in specs:
        variant, family, experiment, metric, unit, rep, value, reason = spec[:8]
        conditions = json.dumps(spec[8], sort_keys=True) if len(spec) > 8 else ""
        lines.append(dict(run_id="t", experiment=experiment, family=family, variant=variant,
                          workload="noop", metric=metric, conditions=conditions, unit=unit,
                          rep=rep, value=math.nan if value is None else float(value),
                          reason=reason, warmup=False, tags="", description="",
                          timestamp="x"))
    return claims.Dataset(pd.DataFrame(lines), {}, "t", n_boot=499)


def reps(variant: str, family: str, experiment: str, metric: str, unit: str,
         values: list[float], conditions: dict | None = None) -> list[tuple]:
    """One row per repetition."""
    return [(variant, family, experiment, metric, unit, r, v, "", conditions or {})
            for r, v in enumerate(values)]


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


def test_every_pick_names_a_catalog_metric_and_its_conditions():
    from virtbench import catalog

    for cm in claims.CLAIMS:
        for pick in cm.picks:
            for name in pick.metric.split("+"):
                metric = catalog.get(pick.experiment, name)  # raises for an unknown one
                assert set(pick.conditions) <= set(metric.conditions), (cm.key, name)


# --- the map file is validated -----------------------------------------------------------------


def _map_with(tmp_path: Path, claim: str) -> Path:
    path = tmp_path / "claims.toml"
    path.write_text('[systems]\n"Docker" = ["docker/*"]\n\n[[claim]]\n' + claim)
    return path


GOOD_CLAIM = (
    'key = "t:startup"\nnotebooks = ["01_startup"]\nsource = "seed"\n'
    'table = "Core feature comparison"\nmetrics = ["startup time"]\nsystems = ["Docker"]\n')


def test_a_small_valid_map_loads(tmp_path, pub):
    path = _map_with(tmp_path, GOOD_CLAIM + 'picks = [{ metric = "startup", '
                                            'experiment = "startup" }]\n')
    cmf = claims.load_map(path, pub)
    assert [cm.key for cm in cmf.claims] == ["t:startup"]


@pytest.mark.parametrize("tail, needle, line", [
    ('picks = [{ metric = "boot_full", experiment = "startup" }]\n', "boot_full", 11),
    ('picks = [{ metric = "startup", experiment = "startup", conditions = {colour = "red"} }]\n',
     "no condition 'colour'", 11),
    ('picks = [{ metric = "startup", experiment = "nosuch" }]\n', "nosuch", 11),
    ('picks = [{ metric = "startup", experiment = "startup", transform = "cube" }]\n',
     "unknown transform", 11),
    ('picks = [{ metric = "startup", experiment = "startup", variants = ["vmm"] }]\n',
     "no variant matches 'vmm'", 11),
    ('picks = [{ metric = "startup", experiment = "startup" }]\nflavour = 1\n',
     "unknown field 'flavour'", 12),
])
def test_map_errors_name_file_line_and_what_is_wrong(tmp_path, pub, tail, needle, line):
    path = _map_with(tmp_path, GOOD_CLAIM + tail)
    with pytest.raises(claims.ClaimMapError, match=needle) as info:
        claims.load_map(path, pub)
    assert str(info.value).startswith(f"{path}:{line}:")


def test_map_error_for_a_published_row_that_does_not_exist(tmp_path, pub):
    path = _map_with(tmp_path, GOOD_CLAIM.replace("startup time", "teleport time")
                     + 'picks = [{ metric = "startup", experiment = "startup" }]\n')
    with pytest.raises(claims.ClaimMapError, match="no published seed row has metric"):
        claims.load_map(path, pub)


def test_shipped_map_loads_with_zero_unknown_metrics(pub):
    cmf = claims.load_map(pub=pub)
    assert len(cmf.claims) > 50


def test_measurable_rows_name_a_system_with_variants(pub):
    for cm in claims.CLAIMS:
        if cm.not_measurable or cm.variants:
            continue
        for system in claims.published_rows(cm, pub)["system"]:
            if cm.kind == "cost":  # a host of the cost model, or "A vs B" of two of them
                names = [cm.spec.get("aliases", {}).get(s, s) for s in system.split(" vs ")]
                assert all(n in cm.spec["hosts"] or n in cm.spec.get("not_rebuilt", {})
                           for n in names), (cm.key, system)
                continue
            assert system in claims.SYSTEMS or system in claims.NOT_HERE, (cm.key, system)


def test_standard_deviation_rows_are_not_claims(pub):
    sd = pub[pub["stat"] == "sd"]
    cov = claims.coverage(pub).loc[sd.index]
    assert (cov["keys"] == "felter:sd").all()


# --- units -------------------------------------------------------------------------------------


def test_seed_seconds_become_ms_and_megabytes_have_two_readings():
    claim = claims._Claim("1.5 s", 1.5, 1.5, "s", precision=0.05)
    assert claims._readings(claim, "ms") == [(1500.0, 1500.0, 50.0, "s x 1000 = ms")]
    (low, _, _, said), (low2, _, _, said2) = claims._readings(
        claims._Claim("60 MB", 60, 60, "MB"), "MiB")
    assert low == pytest.approx(60e6 / 2**20) and "10^6" in said
    assert low2 == 60 and "2^20" in said2
    assert isinstance(claims._readings(claims._Claim("x", 1, 1, "GFLOPS"), "ms"), str)


def test_magnitude_labels_are_ranges_in_ms():
    ds = rows(*(("wasmtime-cli/jit", "wasm", "startup", "startup_process", "ms", r, v, "")
                for r, v in enumerate([20.0, 21.0, 22.0, 23.0, 24.0, 25.0])))
    cm = next(c for c in claims.CLAIMS if c.key == "seed:timeline:startup-magnitude:wasm")
    line = claims._check_variant(ds, cm, claims._Claim("microseconds", math.nan, math.nan, "",
                                                       "microseconds"), "wasmtime-cli/jit",
                                 claims.stats.POLICY)[0]
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
    native = [100.0, 110.0, 90.0, 100.0, 105.0, 95.0]
    docker = [80.0, 88.0, 72.0, 80.0, 84.0, 76.0]  # 80% of native each time
    ds = rows(*(("native/static", "native", "io", "seq_write", "MB/s", r, v, "")
                for r, v in enumerate(native)),
              *(("docker/runc", "docker", "io", "seq_write", "MB/s", r, v, "")
                for r, v in enumerate(docker)))
    check = claims.check(ds, keys=["seed:disk-io:seq_write"], pub=pub)
    line = only(check, variant="docker/runc").iloc[0]
    assert line["median"] == pytest.approx(80.0)
    assert "pairs matched by rep" in line["method"]
    # six identical ratios: the interval [80, 80], below the seed's 90-95 %
    assert (line["ci_low"], line["ci_high"]) == pytest.approx((80.0, 80.0))
    assert line["verdict"] == "lower than claimed"
    docker[0] = 83.3  # 83.3 %: now there is spread
    ds = rows(*(("native/static", "native", "io", "seq_write", "MB/s", r, v, "")
                for r, v in enumerate(native)),
              *(("docker/runc", "docker", "io", "seq_write", "MB/s", r, v, "")
                for r, v in enumerate(docker)))
    line = only(claims.check(ds, keys=["seed:disk-io:seq_write"], pub=pub),
                variant="docker/runc").iloc[0]
    assert line["verdict"] == "lower than claimed"  # the seed claims 90-95% of native
    assert line["unit"] == "%" and line["tallied"]


def test_sum_of_two_metrics_is_taken_per_repetition():
    idle, loaded = {"state": "idle"}, {"state": "loaded"}
    ds = rows(("docker/runc", "docker", "memory", "cgroup_usage", "MiB", 0, 1.0, "", idle),
              ("docker/runc", "docker", "memory", "shim_rss", "MiB", 0, 13.0, "", idle),
              ("docker/runc", "docker", "memory", "cgroup_usage", "MiB", 1, 2.0, "", idle),
              ("docker/runc", "docker", "memory", "shim_rss", "MiB", 1, 13.5, "", idle),
              ("docker/runc", "docker", "memory", "cgroup_usage", "MiB", 0, 70.0, "", loaded))
    got = ds.sample("docker/runc", "cgroup_usage+shim_rss", "memory", conditions=idle)
    assert sorted(got) == [14.0, 15.5]
    with pytest.raises(ValueError, match="several conditions"):
        ds.sample("docker/runc", "cgroup_usage", "memory")


def test_non_positive_memory_per_instance_gives_no_density(pub):
    idle = {"state": "idle"}
    ds = rows(("native/static", "native", "density", "memory_per_instance", "MiB", 0, -7.0, ""),
              ("native/static", "native", "memory", "rss", "MiB", 0, 0.5, "", idle),
              ("native/static", "native", "memory", "rss", "MiB", 1, 0.5, "", idle))
    cm = next(c for c in claims.CLAIMS if c.key == "seed:mem:density")
    line = claims._check_variant(ds, cm, claims._Claim("5", 5, 5, "instances"),
                                 "native/static", claims.stats.POLICY)[0]
    assert line["metric"] == "rss"  # the negative slope is skipped, not turned into a count
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
    cold = {"cache": "cold"}  # Felter's fio read the disk
    ds = rows(*(("native/static", "native", "io", "seq_read", "MB/s", r, 1000.0, "", cold)
                for r in range(6)),
              *(("docker/runc", "docker", "io", "seq_read", "MB/s", r, 990.0 + r, "", cold)
                for r in range(6)))
    check = claims.check(ds, keys=["felter:seq-read:docker"], pub=pub)
    line = check.iloc[0]
    assert line["claim_low"] == pytest.approx(806.673 / 806.935)
    assert line["median"] == pytest.approx(0.9925)
    assert line["unit"] == "x" and line["verdict"] == "consistent" and line["tallied"]


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


def test_one_pattern_syntax_for_the_command_line_and_the_notebooks():
    from virtbench import platforms

    wasm = platforms.select(variants=["wasm"])  # a family, as a notebook writes it
    assert wasm and all(platforms.family_of(v) == "wasm" for v in wasm)
    assert platforms.select(variants=["wasm", "!*/aot"]) == [
        v for v in wasm if not v.endswith("/aot")]
    assert platforms.select(variants=["qemu-tcg"]) == ["qemu-tcg/pc", "qemu-tcg/microvm"]
    with pytest.raises(ValueError, match="a pattern is a family"):
        platforms.select(variants=["wsam"])


# --- the verdict policy on hand-made data ------------------------------------------------------


def test_policy_small_n_is_inconclusive_and_not_tallied(pub):
    ds = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", [5000.0, 5100.0, 5200.0],
                    {"network": "bridge"}))
    line = claims.check(ds, keys=["seed:core:startup"], pub=pub).query(
        "variant == 'docker/runc'").iloc[0]
    assert line["verdict"] == "inconclusive (n = 3 < 6)"
    assert not line["tallied"] and line["n"] == 3
    assert line["reason"] == "inconclusive (n = 3 < 6)"


def test_policy_tolerance_is_in_the_table_and_decides(pub):
    # the seed: Docker startup 100-1000 ms; 1040 ms is inside the 5 % margin, 1100 is not
    near = rows(*reps("docker/runc", "docker", "startup", "startup", "ms",
                      [1030.0, 1035.0, 1040.0, 1040.0, 1045.0, 1050.0]))
    line = claims.check(near, keys=["seed:core:startup"], pub=pub).query(
        "variant == 'docker/runc'").iloc[0]
    assert (line["tolerance_low"], line["tolerance_high"]) == pytest.approx((95.0, 1050.0))
    assert line["verdict"] == "consistent" and line["tallied"]
    far = rows(*reps("docker/runc", "docker", "startup", "startup", "ms",
                     [1090.0, 1095.0, 1100.0, 1100.0, 1105.0, 1110.0]))
    line = claims.check(far, keys=["seed:core:startup"], pub=pub,
                        policy=claims.stats.Policy(margin=0.05)).query(
        "variant == 'docker/runc'").iloc[0]
    assert line["verdict"] == "higher than claimed"


def test_policy_ambiguous_unit_is_not_comparable_unless_every_reading_agrees(pub):
    # the seed (a hardware VM): VM idle CPU 0.5-1.0 %: of one core, or of its 4-core host
    # (2-4 % of a core)?
    between = rows(*reps("qemu-kvm/pc", "vm", "cpu_usage", "cpu_percent_idle",
                         "% of one core", [1.4, 1.5, 1.5, 1.6, 1.6, 1.7]))
    line = claims.check(between, keys=["seed:cpu-usage:idle"], pub=pub).query(
        "variant == 'qemu-kvm/pc'").iloc[0]
    assert line["verdict"].startswith("not comparable: the unit has several readings")
    assert not line["tallied"]
    above = rows(*reps("qemu-kvm/pc", "vm", "cpu_usage", "cpu_percent_idle",
                       "% of one core", [9.0, 9.5, 10.0, 10.0, 10.5, 11.0]))
    line = claims.check(above, keys=["seed:cpu-usage:idle"], pub=pub).query(
        "variant == 'qemu-kvm/pc'").iloc[0]
    assert line["verdict"] == "higher than claimed" and line["tallied"]
    assert "of one core" in line["conversion"] and "4-core" in line["conversion"]


def test_policy_not_comparable_lines_are_shown_never_tallied(pub):
    # the seed's HTTP table is context only (another host, other settings)
    ds = rows(*reps("docker/runc", "docker", "http", "requests_per_s", "req/s",
                    [50e3, 51e3, 52e3, 53e3, 54e3, 55e3]))
    check = claims.check(ds, keys=["seed:http:rps"], pub=pub)
    line = check.query("variant == 'docker/runc'").iloc[0]
    assert claims.verdict_class(line["verdict"]) in claims.DECIDED
    assert not line["tallied"] and line["reason"].startswith("context: load=light")
    verdicts = claims.claim_verdicts(check)
    assert not verdicts["tallied"].any()


def test_policy_baseline_against_itself_is_not_tallied(pub):
    native = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    ds = rows(*reps("native/static", "native", "http", "requests_per_s", "req/s", native,
                    {"load": "seed"}))
    check = claims.check(ds, keys=["seed:http:loss"], pub=pub)
    self_lines = check[check["variant"] == "native/static"]
    assert len(self_lines) and not self_lines["tallied"].any()
    assert (self_lines["reason"] == "the baseline compared with itself").all()


def test_policy_correlated_readings_count_once_per_repetition(pub):
    # three repetitions of ten readings each: n is 3, not 30
    lines = [("docker/runc", "docker", "startup", "startup", "ms", rep, 200.0 + rep + i / 10, "")
             for rep in range(3) for i in range(10)]
    ds = rows(*lines)
    assert ds.sample("docker/runc", "startup", "startup").size == 3
    line = claims.check(ds, keys=["seed:core:startup"], pub=pub).query(
        "variant == 'docker/runc'").iloc[0]
    assert line["n"] == 3 and line["verdict"] == "inconclusive (n = 3 < 6)"


def test_claim_level_verdict_per_family_agree_or_mixed(pub):
    fast = [200.0, 201.0, 202.0, 203.0, 204.0, 205.0]
    slow = [3000.0, 3001.0, 3002.0, 3003.0, 3004.0, 3005.0]
    agree = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", fast),
                 *reps("docker/runc-host", "docker", "startup", "startup", "ms", fast))
    verdicts = claims.claim_verdicts(claims.check(agree, keys=["seed:core:startup"], pub=pub))
    docker = verdicts[verdicts["family"] == "docker"].iloc[0]
    assert docker["verdict"] == "consistent" and docker["tallied"]
    mixed = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", fast),
                 *reps("docker/runc-host", "docker", "startup", "startup", "ms", slow))
    verdicts = claims.claim_verdicts(claims.check(mixed, keys=["seed:core:startup"], pub=pub))
    docker = verdicts[verdicts["family"] == "docker"].iloc[0]
    assert docker["verdict"] == "mixed"
    assert "docker/runc: consistent" in docker["detail"]
    assert "docker/runc-host: higher than claimed" in docker["detail"]


# --- the real fixture --------------------------------------------------------------------------


def test_fixture_check_gives_every_seed_row_a_verdict(fixture_ds, pub):
    check = claims.check(fixture_ds, pub=pub)
    assert check["verdict"].notna().all() and (check["verdict"] != "").all()
    known = set(claims.VERDICT_ORDER) | {"more than claimed (collected here)",
                                         "not confirmed here"}
    assert set(check["verdict"].map(claims.verdict_class)) <= known | {"more than claimed"}
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
                                                                 "MB/s", "(exact)")), \
            line["measured"]


def test_fixture_summary_names_missing_variants(fixture_ds):
    s = fixture_ds.summary(["rss"], experiment="memory", complete=False,
                           conditions={"state": "idle"})
    missing = s[s["n"] == 0]
    assert len(missing) and missing["text"].str.startswith("not measured: ").all()
    measured = s[s["n"] > 0]
    # the fixture's memory rows: native, and a TCG guest at three guest sizes
    assert set(measured["variant"]) == {"native/static", "native/dynamic", "qemu-tcg/microvm"}


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


def test_headline_counts_claims_per_family_not_lines(pub):
    fast = [200.0, 201.0, 202.0, 203.0, 204.0, 205.0]
    ds = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", fast),
              *reps("docker/runc-host", "docker", "startup", "startup", "ms", fast))
    check = claims.check(ds, keys=["seed:core:startup"], pub=pub)
    assert (check["verdict"] == "consistent").sum() == 2  # two lines ...
    text = claims.headline(check, "lead")
    assert text.startswith("lead; claims: 1 of ")  # ... one claim-family verdict
    assert "(1 consistent)" in text


def test_fixture_tallied_lines_meet_the_policy(fixture_ds, pub):
    check = claims.check(fixture_ds, pub=pub)
    tallied = check[check["tallied"]]
    exempt = tallied["measured"].str.contains("exact|collected", regex=True)
    assert (tallied.loc[~exempt, "n"] >= claims.stats.POLICY.min_n).all()
    assert (tallied["comparable"] == "yes").all()
    assert not (tallied["variant"] == claims.BASELINE).any() or tallied.loc[
        tallied["variant"] == claims.BASELINE, "metric"].str.contains(" vs ").sum() == 0


def test_summary_of_an_empty_dataset_is_empty_not_an_error():
    ds = claims.Dataset(pd.DataFrame(columns=list(COLUMNS)))
    assert ds.summary(["startup"]).empty
    assert ds.summary([], complete=False).empty
    assert np.isnan(ds.sample("native/static", "startup")).all()


def test_io_rows_on_an_in_memory_file_system_are_excluded_from_verdicts(pub):
    native = reps("native/static", "native", "io", "seq_read", "MB/s", [1000.0 + r
                                                                         for r in range(6)],
                  {"cache": "warm"})
    wasm = reps("wasmtime-cli/jit", "wasm", "io", "seq_read", "MB/s", [900.0] * 6,
                {"cache": "warm"})
    wasmer = reps("wasmer/cranelift", "wasm", "io", "seq_read", "MB/s", [5000.0] * 6,
                  {"cache": "warm", "fs": "memory"})
    cold = reps("native/static", "native", "io", "seq_read", "MB/s", [100.0] * 6,
                {"cache": "cold"})
    check = claims.check(rows(*native, *wasm, *wasmer, *cold),
                         keys=["seed:disk-io:seq_read"], pub=pub)
    line = only(check, variant="wasmer/cranelift").iloc[0]
    assert line["verdict"].startswith("not comparable")
    assert "in-memory filesystem, not a host directory" in line["reason"]
    assert not line["tallied"]
    # the wasmtime line is judged against the warm native rows only (cold is opt-in)
    judged = only(check, variant="wasmtime-cli/jit").iloc[0]
    assert judged["n"] == 6 and judged["median"] == pytest.approx(100 * 900 / 1002.5, rel=1e-3)


def test_io_rows_without_cache_or_fs_conditions_are_warm_on_a_host_directory():
    from virtbench.conditions import wanted

    assert wanted({}, {"fs": "host", "cache": "warm"})
    assert not wanted({"cache": "cold"}, {"fs": "host"})
    assert wanted({"cache": "cold"}, {"fs": "host", "cache": "cold"})
    assert not wanted({"fs": "memory", "cache": "warm"}, {"fs": "host"})
    assert not wanted({"fs": "memory"}, None)


def test_aspect_verdicts_combine_a_family_and_feed_the_matrix(pub):
    import matplotlib

    matplotlib.use("Agg")
    from virtbench import plots

    fast = [200.0, 201.0, 202.0, 203.0, 204.0, 205.0]
    slow = [3000.0, 3001.0, 3002.0, 3003.0, 3004.0, 3005.0]
    ds = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", fast),
              *reps("docker/runc-host", "docker", "startup", "startup", "ms", slow),
              *reps("wasmtime-cli/jit", "wasm", "startup", "startup_process", "ms", fast[:3]))
    check = claims.check(ds, keys=["seed:core:startup"], pub=pub)
    cells = claims.aspect_verdicts(check, {"startup": lambda c: c["key"] == "seed:core:startup"},
                                   ["Docker", "Wasm"]).set_index("system")
    assert cells.loc["Docker", "verdict"] == "mixed"
    assert cells.loc["Docker", "measured"] == "here 202 ms\u20133 s"  # human units, 3 digits
    assert cells.loc["Wasm", "verdict"] == "inconclusive"
    fig = plots.verdict_matrix(cells.reset_index(), "t")
    assert len(fig.axes[0].patches) == 2


def test_verdict_bars_count_claims_per_family(pub):
    import matplotlib

    matplotlib.use("Agg")
    from virtbench import plots

    fast = [200.0, 201.0, 202.0, 203.0, 204.0, 205.0]
    ds = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", fast),
              *reps("wasmtime-cli/jit", "wasm", "startup", "startup_process", "ms", fast[:3]))
    verdicts = claims.claim_verdicts(claims.check(ds, keys=["seed:core:startup"], pub=pub))
    fig = plots.verdict_bars(verdicts, "t")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["docker", "wasm"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["consistent", "inconclusive"]


def test_description_follows_the_conditions():
    idle, loaded = {"state": "idle"}, {"state": "loaded"}
    lines = [("native/static", "native", "memory", "rss", "MiB", 0, 1.0, "", idle),
             ("native/static", "native", "memory", "rss", "MiB", 0, 65.0, "", loaded)]
    ds = rows(*lines)
    ds.df["description"] = ["rss, idle", "rss, holding 64 MiB"]
    assert ds.description("rss", "native/static", "state=loaded") == "rss, holding 64 MiB"
    assert ds.description("rss", "native/static", "state=idle") == "rss, idle"
    assert ds.description("rss", "docker/runc", "state=idle") == ""  # no rows: no description


def _density(variant: str, family: str, exact: list[float], bounds: list[float],
             legacy: bool = False) -> list[dict]:
    """density rows of one variant: slopes with a value, and slopes whose CI includes 0 kept
    as their upper bound (tag upper_bound; ``legacy``: only the fit's CI in the tags, as
    runs before the tag wrote them), with the instances per 8 GiB beside them."""
    out = []
    for rep, v in enumerate(exact + bounds):
        bounded = rep >= len(exact)
        tags = {"slope_ci_low": "-0.5" if bounded else f"{v / 2}", "slope_ci_high": f"{v}"}
        if bounded and not legacy:
            tags["upper_bound"] = f"{v}"
        base = dict(run_id="t", experiment="density", family=family, variant=variant,
                    workload="mem", conditions="", rep=rep, warmup=False, description="",
                    timestamp="x")
        out.append(dict(base, metric="memory_per_instance", unit="MiB",
                        value=math.nan if bounded else v,
                        reason=f"below {v} MiB per instance" if bounded else "",
                        tags=json.dumps(tags)))
        if bounded:
            out.append(dict(base, metric="memory_per_instance_bound", unit="MiB", value=v,
                            reason="", tags=json.dumps(tags)))
        per8 = {"lower_bound": f"{8192 / v:.1f}"} if bounded and not legacy else {}
        out.append(dict(base, metric="instances_per_8gib", unit="instances",
                        value=math.nan if bounded else 8192 / v,
                        reason="at least" if bounded else "", tags=json.dumps(per8)))
    return out


@pytest.mark.parametrize("legacy", [False, True])
def test_censored_density_slopes_are_kept_as_upper_bounds(pub, legacy):
    exact, bounds = [1.85, 4.93, 3.91, 4.37], [3.15, 0.99, 0.92]  # docker/runc's reference
    ds = claims.Dataset(pd.DataFrame(_density("docker/runc", "docker", exact, bounds, legacy)),
                        {}, "t", n_boot=499)
    # the summaries read values only; the verdicts read the bounds too
    assert ds.sample("docker/runc", "memory_per_instance", "density").size == 4
    data = ds.measured("docker/runc", "memory_per_instance", "density", censored=True)
    assert len(data) == 7 and data["censored"].sum() == 3
    assert set(data.loc[data["censored"], "bound"]) == {"upper"}
    check = claims.check(ds, keys=["seed:mem:per-instance", "seed:mem:density"], pub=pub)
    per = only(check, key="seed:mem:per-instance", variant="docker/runc").iloc[0]
    assert per["n"] == 7 and per["ci_high"] == pytest.approx(4.93)
    assert per["ci_low"] == -math.inf  # three bounds: rank 1 of 7 may lie anywhere below
    assert per["verdict"] == "lower than claimed" and per["tallied"]  # the seed: 60 MB
    assert per["measured"].startswith("\u2264")
    dens = only(check, key="seed:mem:density", variant="docker/runc").iloc[0]
    assert dens["n"] == 7 and dens["ci_high"] == math.inf  # at least 8192 / bound instances
    assert dens["verdict"] == "higher than claimed"  # the seed: 133 per 8 GB
    few = claims.Dataset(pd.DataFrame(_density("docker/runc", "docker", exact, [], legacy)),
                         {}, "t", n_boot=499)
    line = only(claims.check(few, keys=["seed:mem:per-instance"], pub=pub),
                variant="docker/runc").iloc[0]
    assert line["verdict"] == "inconclusive (n = 4 < 6)"
