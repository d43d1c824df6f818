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


# --- the cost report: the seed's lines recomputed, a cost rebuilt per variant ---------------


def test_the_seed_cost_lines_recomputed_from_their_own_inputs(pub):
    assert costs.seed_figure(pub, "unit price", "VM (t3.medium)") == (0.0416, 135)
    with pytest.raises(KeyError, match="no published seed row with metric='unit price', "
                                       "system='Kubernetes'"):
        costs.seed_figure(pub, "unit price", "Kubernetes")
    table = costs.seed_arithmetic(pub).set_index("claim")
    assert len(table) == 10 and list(table.columns) == ["source", "formula", "claimed",
                                                        "recomputed", "verdict"]
    vm = table.loc["VM monthly cost"]
    assert (vm["source"], vm["formula"], vm["claimed"], vm["recomputed"]) == (
        "seed L136", "200 x 0.0416 x 730", 6073.0, 6073.6)
    assert table.loc["saving Wasm vs Docker", "recomputed"] == -70.46
    assert table.loc["VM total staffing", "formula"] == "0.5 + 30 h / 160"
    assert table.loc["VM total staffing", "recomputed"] == 0.688
    assert table["verdict"].str.startswith("consistent").all()
    # with a 100-hour person-month the VM staffing no longer adds up: 0.5 + 30 / 100
    vm_staff = costs.seed_arithmetic(pub, 100.0).set_index("claim").loc["VM total staffing"]
    assert vm_staff["verdict"] == "off by +0.10 person-months"


def test_arithmetic_verdicts():
    assert costs.arithmetic_verdict(6073.6, 6073) == "consistent (arithmetic)"  # 0.01% off
    assert costs.arithmetic_verdict(5.9, 5) == "consistent (arithmetic)"  # rounded down
    assert costs.arithmetic_verdict(4.6, 5) == "consistent (arithmetic)"  # rounded
    assert costs.arithmetic_verdict(100.0, 89) == "arithmetic off by +12.4%"
    assert costs.arithmetic_verdict(-70.46, -70, tolerance=0.02) == "consistent (arithmetic)"
    assert costs.arithmetic_verdict(-74.0, -70, tolerance=0.02) == "arithmetic off by +5.7%"
    assert costs.staffing_verdict(0.25, 0.2) == "consistent (arithmetic, ~)"
    assert costs.staffing_verdict(0.3, 0.2) == "off by +0.10 person-months"


def test_packing_instances_on_hosts_by_memory():
    assert costs.usable_mib(8.0, 0.10) == pytest.approx(7372.8)
    assert costs.instances_per_host(60.0, 7372.8) == 122
    assert costs.instances_per_host(9000.0, 8192.0) == 1  # a host of its own
    # ceil(1000 / 122) = 9 hosts x $0.0464 x 730 h
    assert costs.packed_monthly_cost(60.0, 7372.8, 1000, 0.0464, 730) == pytest.approx(
        9 * 0.0464 * 730)
    for memory in (0.0, -3.0, math.nan, math.inf):
        assert math.isnan(costs.packed_monthly_cost(memory, 7372.8, 1000, 0.0464, 730))


def memory_rows(variant: str, family: str, metric: str, experiment: str, workload: str,
                values: list[float], **cond: str) -> list[dict]:
    return [dict(run_id="t", experiment=experiment, family=family, variant=variant,
                 workload=workload, metric=metric, unit="MiB", rep=r, value=v,
                 conditions=json.dumps(cond, sort_keys=True) if cond else "", reason="",
                 warmup=False, tags="", description="", timestamp="x")
            for r, v in enumerate(values)]


def test_a_cost_rebuilt_per_variant_from_the_first_counter_above_zero():
    idle = {"state": "idle", "guest_memory_mib": "256"}
    frame = pd.DataFrame([
        *density_rows("docker/runc", "docker", 160.0),
        # density below the noise: the memory of a running idle http instance is used
        *memory_rows("wasmtime/jit", "wasm", "memory_per_instance", "density", "http",
                     [-1.0, -2.0, 0.0]),
        *memory_rows("wasmtime/jit", "wasm", "instance_rss", "memory", "http",
                     [40.0, 42.0, 44.0], **idle),
        # only a counter whose median is 0
        *memory_rows("native/static", "native", "rss", "memory", "mem", [0.0, 0.0], **idle)])
    ds = Dataset(frame, {}, "t", n_boot=199)
    metric, cond, sample = costs.memory_sample(ds, "wasmtime/jit")
    assert (metric, cond, list(sample)) == ("instance_rss", costs.IDLE, [40.0, 42.0, 44.0])
    table = costs.rebuilt_costs(ds, services=1000, host_memory_gib=8.0, memory_reserve=0.1,
                                price_per_hour=0.0464, hours=730.0).set_index("variant")
    docker = table.loc["docker/runc"]
    assert docker["counter"] == "memory_per_instance" and docker["n"] == 8
    assert docker["per_host"] == math.floor(7372.8 / docker["median"])
    hosts_needed = math.ceil(1000 / docker["per_host"])
    assert docker["monthly_usd"] == pytest.approx(hosts_needed * 0.0464 * 730)
    assert docker["low_usd"] <= docker["monthly_usd"] <= docker["high_usd"]
    wasm = table.loc["wasmtime/jit"]
    assert (wasm["counter"], wasm["median"], wasm["per_host"]) == (
        "instance_rss, idle", 42.0, 175)
    native = table.loc["native/static"]
    assert native["counter"] == "rss" and native["text"].startswith(
        "not measured: the median is <= 0")
    assert math.isnan(native["monthly_usd"])
