"""The seed's cost table rebuilt from measured memory per instance: the arithmetic, the
claim lines over hand-made rows (fakes, nothing measured), and the shipped reference run."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from virtbench import claims, costs, published
from virtbench.dataset import Dataset

SPREAD = [0.97, 1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0]


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


def test_the_seed_arithmetic_from_its_own_memory_figure():
    # the seed's Docker: 60 MB per container on an 8 GiB host -> its '50 per host' is lower
    memory = costs.Interval(60.0, 55.0, 65.0, 8)
    per = costs.per_host(memory, 8 * 1024)
    assert (per.value, per.low, per.high) == (136.0, 126.0, 148.0)
    count = costs.hosts(per, 1000)
    assert (count.value, count.low, count.high) == (8.0, 7.0, 8.0)
    cost = costs.monthly_cost(count, 0.0464, 730)
    assert cost.value == pytest.approx(8 * 0.0464 * 730)
    saving = costs.savings(costs.Interval(100, 90, 110, 8), costs.Interval(1000, 900, 1100, 6))
    assert saving.value == pytest.approx(-90) and saving.n == 6
    assert saving.low == pytest.approx(100 * (90 / 1100 - 1))
    assert saving.high == pytest.approx(100 * (110 / 900 - 1))


def test_bounds_and_degenerate_memory():
    unbounded = costs.per_host(costs.Interval(2.0, -math.inf, 4.0, 8), 8192)
    assert (unbounded.value, unbounded.low, unbounded.high) == (4096.0, 2048.0, math.inf)
    assert costs.hosts(unbounded, 1000).low == 1.0
    too_big = costs.per_host(costs.Interval(9000.0, 8500.0, 9500.0, 8), 8192)
    assert too_big.value == 0 and costs.hosts(too_big, 1000).value == math.inf
    assert "inf" in str(unbounded)


def density_rows(variant: str, family: str, mib: float, reps: int = 8, **cond) -> list[dict]:
    return [dict(run_id="t", experiment="density", family=family, variant=variant,
                 workload="http", metric="memory_per_instance", unit="MiB", rep=r,
                 value=mib * SPREAD[r % 8], conditions=json.dumps(cond) if cond else "",
                 reason="", warmup=False, tags="", description="", timestamp="x")
            for r in range(reps)]


def check(pub: pd.DataFrame, *groups: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([r for g in groups for r in g])
    ds = Dataset(frame, {}, "t", n_boot=199)
    return claims.check(ds, keys=["seed:cost:"], pub=pub)


def line(table: pd.DataFrame, metric: str, system: str) -> pd.Series:
    rows = table[(table["claim"].str.contains(metric, regex=False))
                 & (table["system"] == system)]
    return rows.iloc[0]


def test_docker_lines_are_rebuilt_and_judged(pub):
    table = check(pub, density_rows("docker/runc", "docker", 160.0))
    per = line(table, "containers per instance", "Docker on ECS (t3.large)")
    assert per["median"] == math.floor(8192 / 160.0) == 51
    assert per["verdict"] == "consistent" and per["tallied"]  # the seed says 50
    hosts = line(table, "instances", "Docker on ECS (t3.large)")
    assert hosts["median"] == 20 and hosts["verdict"] == "consistent"
    cost = line(table, "monthly cost", "Docker on ECS (t3.large)")
    assert cost["median"] == pytest.approx(20 * 0.0464 * 730)
    assert cost["verdict"] == "consistent"
    small = check(pub, density_rows("docker/runc", "docker", 4.0))
    assert line(small, "containers per instance", "Docker on ECS (t3.large)")[
        "verdict"] == "higher than claimed"
    assert line(small, "monthly cost", "Docker on ECS (t3.large)")[
        "verdict"] == "lower than claimed"


def test_vm_lines_need_a_hardware_full_os_guest_and_lambda_is_not_rebuilt(pub):
    vm = {"userland": "debian-systemd", "guest_memory_mib": "1024"}
    table = check(pub, density_rows("docker/runc", "docker", 160.0),
                  density_rows("qemu-tcg/pc", "vm", 700.0, **vm))
    assert line(table, "services per instance", "VM (t3.medium)")["verdict"].startswith(
        "not comparable")
    assert line(table, "monthly cost change", "Docker vs VM")["verdict"].startswith(
        "not comparable: the VM (t3.medium) side")
    kvm = check(pub, density_rows("docker/runc", "docker", 160.0),
                density_rows("qemu-kvm/pc", "vm", 700.0, **vm))
    per_vm = line(kvm, "services per instance", "VM (t3.medium)")
    assert per_vm["median"] == 5 and per_vm["verdict"] == "consistent"
    saving = line(kvm, "monthly cost change", "Docker vs VM")
    # 20 hosts x 0.0464 against 200 VMs x 0.0416: -88.8 %, the seed says -89 %
    assert saving["median"] == pytest.approx(100 * (20 * 0.0464 / (200 * 0.0416) - 1))
    assert saving["verdict"] == "consistent"
    for system in ("Wasm on Lambda", "Wasm vs Docker"):
        rows = table[(table["system"] == system) & (table["key"] == "seed:cost:rebuilt")]
        assert len(rows)
        assert all(v.startswith("not measurable here: Lambda") for v in rows["verdict"])


def test_inputs_and_staffing_keep_their_own_reason(pub):
    table = check(pub, density_rows("docker/runc", "docker", 160.0))
    price = line(table, "unit price", "VM (t3.medium)")
    assert "an input of the seed's cost model" in price["verdict"]
    staffing = line(table, "total staffing", "Docker")
    assert "a staffing estimate" in staffing["verdict"]


def test_bad_cost_specs_are_errors(tmp_path, pub):
    text = """
[systems]
"Docker on ECS (t3.large)" = ["docker/*"]

[[claim]]
key = "t:cost"
kind = "cost"
notebooks = ["06_cost"]
source = "seed"
table = "Cost analysis > 1. Resource cost"
metrics = ["instances"]
spec = SPEC
picks = [{ metric = "memory_per_instance", experiment = "density" }]
"""
    path = tmp_path / "claims.toml"
    for spec, needle in (("{}", "needs spec.hosts"),
                         ('{ hosts = { "VM" = { memory_gib = 4 } } }', "not in [systems]"),
                         ('{ hosts = { "Docker on ECS (t3.large)" = { memory_gib = 0 } } }',
                          "positive number"),
                         ('{ hosts = { "Docker on ECS (t3.large)" = { memory_gib = 8 } }, '
                          'x = 1 }', "unknown spec field 'x'")):
        path.write_text(text.replace("SPEC", spec))
        with pytest.raises(claims.ClaimMapError, match=needle.replace("[", r"\[").replace(
                "]", r"\]")):
            claims.load_map(path, pub)


def test_reference_cost_figures_have_verdicts_or_their_reason(pub):
    ds = Dataset.load("reference", n_boot=199)
    table = claims.check(ds, keys=["seed:cost:"], pub=pub)
    docker = table[table["system"] == "Docker on ECS (t3.large)"]
    judged = docker[docker["n"] > 0]
    assert len(judged) == 3  # containers per host, hosts, monthly cost
    for row in judged.itertuples():
        assert claims.verdict_class(row.verdict) in claims.DECIDED + ("inconclusive",)
        assert row.ci_low <= row.median <= row.ci_high
    verdicts = claims.claim_verdicts(table)
    unanswered = verdicts[verdicts["verdict"] == "not measurable here"]
    assert not any("no measurement maps" in d for d in unanswered["detail"])
