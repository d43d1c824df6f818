"""Ranking claims: a published order of technologies against the measured order.

Pure logic on hand-made estimates, a small claim map over hand-made rows (fakes, nothing
measured), and the shipped map on the shipped reference run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from virtbench import claims, published, rankings, stats
from virtbench.dataset import Dataset

SPREAD = [0.97, 1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0]  # 8 repetitions around 1
HEADER = """
[systems]
"VM" = ["vm"]
"Docker" = ["docker/*"]
"Wasm" = ["wasm"]

[not_here]
"Edera" = "Edera is not one of the suite's platforms"
"""
IO_STARS = """
[[claim]]
key = "t:io"
kind = "ranking"
notebooks = ["00_overview"]
source = "seed"
table = "Core feature comparison"
metrics = ["I/O performance (stars)"]
spec = { among = ["VM", "Docker", "Wasm"] }
requires = { accel = "hardware" }

[[claim.reading]]
name = "sequential read from the disk"
means = "reads after the page cache was dropped"
picks = [{ metric = "seq_read", experiment = "io", conditions = { cache = "cold" } }]
"""


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


def load(tmp_path: Path, pub: pd.DataFrame, text: str) -> claims.ClaimMapFile:
    path = tmp_path / "claims.toml"
    path.write_text(HEADER + text)
    return claims.load_map(path, pub)


def io_rows(**medians: tuple[float, int]) -> Dataset:
    """seq_read (cache=cold) rows: variant -> (median MB/s, repetitions)."""
    families = {"docker/runc": "docker", "docker/runc-host": "docker",
                "wasmtime-cli/jit": "wasm", "qemu-kvm/pc": "vm", "qemu-tcg/pc": "vm",
                "wasmtime-cli/aot": "wasm"}
    lines = []
    for variant, (median, reps) in medians.items():
        variant = variant.replace("__", "/").replace("_", "-")
        for rep in range(reps):
            lines.append(dict(run_id="t", experiment="io", family=families[variant],
                              variant=variant, workload="fileio", metric="seq_read",
                              unit="MB/s", rep=rep, value=median * SPREAD[rep % 8],
                              conditions=json.dumps({"cache": "cold"}), reason="",
                              warmup=False, tags="", description="", timestamp="x"))
    return Dataset(pd.DataFrame(lines), {}, "t", n_boot=199)


def row_verdict(check: pd.DataFrame, system: str) -> str:
    return str(check.loc[check["system"] == system, "verdict"].iloc[0])


# --- pure logic ---------------------------------------------------------------------------------


def est(value: float, low: float, high: float, n: int = 8) -> stats.Estimate:
    return stats.Estimate(value, low, high, n)


def test_overlapping_intervals_are_a_tie_and_direction_decides_who_is_first():
    a, b, c = est(10, 9, 11), est(20, 19, 21), est(10.5, 10.2, 19.5)
    assert rankings.measured_relation(a, b, "lower") == 1
    assert rankings.measured_relation(a, b, "higher") == -1
    assert rankings.measured_relation(b, a, "higher") == 1
    assert rankings.measured_relation(a, c, "lower") == 0
    assert rankings.measured_relation(a, est(5, math.nan, math.nan, 1), "lower") == 0
    with pytest.raises(ValueError, match="better"):
        rankings.measured_relation(a, b, "")


def test_claimed_relations_from_stars_and_best_at():
    stars = {"VM": 3.0, "Docker": 5.0, "Wasm": 3.0}
    assert rankings.claimed_relations("Docker", stars) == {"VM": 1, "Wasm": 1}
    assert rankings.claimed_relations("Wasm", stars) == {"VM": 0, "Docker": -1}
    assert rankings.claimed_relations("Wasm", stars, higher_first=False) == {"VM": 0,
                                                                           "Docker": 1}
    best = {"Wasm": rankings.BEST, "VM": rankings.BEST, "Docker": math.nan}
    assert rankings.claimed_relations("Wasm", {"Wasm": rankings.BEST, "VM": 1, "Docker": 1}) \
        == {"VM": 1, "Docker": 1}
    assert rankings.claimed_relations("VM", best)["Wasm"] == 0
    with pytest.raises(ValueError, match="no claimed rank"):
        rankings.claimed_relations("Edera", stars)


def test_pair_verdicts_same_order_differs_and_not_distinguishable():
    claimed = {"VM": 1, "Wasm": 1}
    assert rankings.pair_verdict("Docker", claimed, {"VM": 1, "Wasm": 1}).startswith(
        "same order (Docker before VM, Docker before Wasm)")
    differs = rankings.pair_verdict("Docker", claimed, {"VM": 1, "Wasm": -1})
    assert differs == "order differs: Wasm before Docker here (claimed Docker before Wasm)"
    tied = rankings.pair_verdict("Docker", claimed, {"VM": 1, "Wasm": 0})
    assert tied.startswith("not distinguishable: Docker vs Wasm") and "Docker before VM" in tied
    equal = rankings.pair_verdict("Wasm", {"VM": 0}, {"VM": 1})
    assert equal == "order differs: Wasm before VM here (claimed Wasm and VM equal)"
    assert rankings.pair_verdict("Wasm", {"VM": 0}, {"VM": 0}).startswith("same order")
    assert claims.verdict_class(differs) in claims.DECIDED
    assert claims.verdict_class(tied) not in claims.DECIDED


def test_measured_order_marks_ties():
    fams = [rankings.Family("VM", estimate=est(500, 480, 520)),
            rankings.Family("Docker", estimate=est(2000, 1900, 2100)),
            rankings.Family("Wasm", estimate=est(510, 490, 530)),
            rankings.Family("Edera", reason="not measured: x")]
    assert rankings.measured_order(fams, "higher") == "Docker > Wasm \u2248 VM"
    assert rankings.measured_order(fams, "lower") == "VM \u2248 Wasm > Docker"
    assert rankings.measured_order(fams[3:], "lower") == ""


# --- the check over hand-made rows --------------------------------------------------------------


def test_star_rows_get_the_order_of_family_medians(tmp_path, pub):
    cmf = load(tmp_path, pub, IO_STARS)
    ds = io_rows(docker__runc=(2000, 8), wasmtime_cli__jit=(1000, 8),
                 wasmtime_cli__aot=(1010, 8), qemu_kvm__pc=(500, 8))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    assert row_verdict(check, "Docker").startswith("same order")
    # the seed gives Wasm and VM 3 stars each: Wasm is measured before VM
    assert row_verdict(check, "Wasm") == ("order differs: Wasm before VM here (claimed Wasm "
                                          "and VM equal)")
    assert row_verdict(check, "VM").startswith("order differs: Wasm before VM here")
    assert "not measurable here: Edera" in row_verdict(check, "Edera")
    wasm = check[check["system"] == "Wasm"].iloc[0]
    assert wasm["n"] == 16 and wasm["variant"] == "wasmtime-cli/jit | wasmtime-cli/aot"
    assert "measured order: Docker > Wasm > VM" in wasm["method"]
    assert wasm["measured"].endswith("MB/s")
    verdicts = claims.claim_verdicts(check).set_index("family")
    assert verdicts.loc["docker", "verdict"] == "same order"
    assert verdicts.loc["docker", "tallied"] and verdicts.loc["wasm", "tallied"]
    assert verdicts.loc["wasm", "verdict"] == "order differs"


def test_emulated_vm_rows_do_not_stand_for_a_vm(tmp_path, pub):
    cmf = load(tmp_path, pub, IO_STARS)
    ds = io_rows(docker__runc=(2000, 8), wasmtime_cli__jit=(1000, 8), qemu_tcg__pc=(100, 8))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    vm = row_verdict(check, "VM")
    assert vm.startswith("not comparable") and "emulation: TCG" in vm
    assert row_verdict(check, "Docker") == "same order (Docker before Wasm)"
    assert "not ranked: VM: not comparable" in check.loc[check["system"] == "Docker",
                                                         "method"].iloc[0]
    assert not check.loc[check["system"] == "VM", "tallied"].any()


def test_too_few_repetitions_give_no_rank(tmp_path, pub):
    cmf = load(tmp_path, pub, IO_STARS)
    ds = io_rows(docker__runc=(2000, 4), wasmtime_cli__jit=(1000, 8), qemu_kvm__pc=(500, 8))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    assert row_verdict(check, "Docker").startswith("inconclusive (n = 4 < 6")
    assert row_verdict(check, "Wasm").startswith("order differs: Wasm before VM")
    alone = claims.check(io_rows(wasmtime_cli__jit=(1000, 8)), pub=pub, claim_map_file=cmf)
    assert row_verdict(alone, "Wasm").startswith("inconclusive (no other system")


def test_variants_short_of_repetitions_are_not_pooled_into_enough(tmp_path, pub):
    cmf = load(tmp_path, pub, IO_STARS)
    # two Docker variants of 4 repetitions each: 8 rows, but no variant has 6 of its own
    ds = io_rows(docker__runc=(2000, 4), docker__runc_host=(2000, 4),
                 wasmtime_cli__jit=(1000, 8), qemu_kvm__pc=(500, 8))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    assert row_verdict(check, "Docker").startswith("inconclusive (n = 4 < 6")


def test_overlapping_families_are_not_distinguishable(tmp_path, pub):
    cmf = load(tmp_path, pub, IO_STARS)
    ds = io_rows(docker__runc=(1000, 8), wasmtime_cli__jit=(1005, 8), qemu_kvm__pc=(500, 8))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    docker = row_verdict(check, "Docker")
    assert docker.startswith("not distinguishable: Docker vs Wasm")
    assert "same order: Docker before VM" in docker
    verdicts = claims.claim_verdicts(check).set_index("family")
    assert verdicts.loc["docker", "verdict"] == "not distinguishable"
    assert not verdicts.loc["docker", "tallied"]


@pytest.mark.parametrize("spec, needle", [
    ('spec = { among = ["VM"] }', "at least two systems"),
    ('spec = { among = ["VM", "Edera"] }', "'Edera' is not in [systems]"),
    ('spec = { among = ["VM", "Wasm"], order = 1 }', "unknown spec field 'order'"),
])
def test_bad_ranking_specs_are_errors_naming_the_line(tmp_path, pub, spec, needle):
    text = IO_STARS.replace('spec = { among = ["VM", "Docker", "Wasm"] }', spec)
    with pytest.raises(claims.ClaimMapError, match=needle.replace("[", r"\[").replace(
            "]", r"\]")):
        load(tmp_path, pub, text)
    with pytest.raises(claims.ClaimMapError, match="unknown kind 'rank'"):
        load(tmp_path, pub, IO_STARS.replace('kind = "ranking"', 'kind = "rank"'))


# --- the shipped map on the shipped reference ----------------------------------------------------


@pytest.fixture(scope="module")
def reference_check(pub) -> pd.DataFrame:
    ds = Dataset.load("reference", n_boot=199)
    return claims.check(ds, keys=["seed:core:ratings"], pub=pub)


def test_reference_io_and_isolation_star_rows_are_answered(reference_check):
    check = reference_check
    io = check[check["key"] == "seed:core:ratings:io"]
    for system in ("Docker", "Wasm"):
        lines = io[io["system"] == system]
        assert len(lines) == 6, system  # the seed's sequential/random split, disk and cache
        assert all(claims.verdict_class(v) in rankings.VERDICTS for v in lines["verdict"])
        assert (lines["n"] >= 6).all()
    isolation = check[check["key"] == "seed:core:ratings:isolation"]
    assert len(isolation[isolation["system"] == "Wasm"]) == 10  # 5 attacks x limits off/on
    # security and portability on their declared proxies; ecosystem maturity stays an opinion
    for key in ("seed:core:ratings:portability", "seed:core:ratings:security"):
        lines = check[(check["key"] == key) & (check["system"] != "Edera")]
        assert set(lines["system"]) == {"VM", "Docker", "Wasm"}, key
        assert all(claims.verdict_class(v) in rankings.VERDICTS for v in lines["verdict"]), key
        assert (lines["n"] >= 6).all(), key
    lines = check[check["key"] == "seed:core:ratings:ecosystem"]
    assert len(lines) and all(v.startswith("not measurable here") for v in lines["verdict"])
    assert not any("no measurement maps" in v for v in lines["verdict"])


def test_reference_vm_is_ranked_only_with_hardware_virtualization(reference_check):
    ds = Dataset.load("reference", n_boot=199)
    kvm = [v for v in ds.variants(["qemu-kvm"])
           if ds.measured(v, "seq_read", "io", conditions={"cache": "cold"}).size]
    vm = reference_check[(reference_check["key"] == "seed:core:ratings:io")
                         & (reference_check["system"] == "VM")]
    if not kvm:
        assert all(v.startswith("not comparable") and "TCG" in v for v in vm["verdict"])
    else:
        assert all(claims.verdict_class(v) in rankings.VERDICTS for v in vm["verdict"])


def test_a_best_at_row_ranks_its_system_before_every_other(pub):
    row = pub[(pub["source"] == "seed")
              & (pub["metric"] == "best choice: fastest startup")].iloc[0]
    ranks = rankings.claimed_ranks(row, pub, ["VM", "Docker", "Wasm"])
    assert ranks == {"VM": None, "Docker": None, "Wasm": rankings.BEST}
    assert rankings.claimed_relations("Wasm", ranks) == {"VM": 1, "Docker": 1}
    assert rankings.claimed_relations("VM", ranks) == {"Wasm": -1}
    stars = pub[(pub["source"] == "seed") & (pub["metric"] == "I/O performance (stars)")
                & (pub["system"] == "Docker")].iloc[0]
    assert rankings.claimed_ranks(stars, pub, ["VM", "Docker", "Wasm"]) == {
        "VM": 3.0, "Docker": 5.0, "Wasm": 3.0}


def test_pooled_bounds_stay_bounds():
    import numpy as np

    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5])
    bounds = np.array(["", "", "", "", "", "", "upper"], dtype=object)
    est = rankings.pooled_estimate(values, bounds, stats.POLICY)
    assert est.censored == 1 and est.bound == "upper" and est.n == 7
    exact = rankings.pooled_estimate(values[:6], bounds[:6], stats.POLICY)
    assert exact.value == 3.5 and exact.censored == 0
