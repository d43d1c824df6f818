"""Like for like: a claim's requirements and readings decide which lines are tallied.

Small claim maps written here (not the shipped one) and hand-made rows: fakes for unit
tests of the rules, nothing measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from virtbench import claims, platforms, published
from virtbench.platforms import classes

HEADER = """
[systems]
"VM" = ["vm"]
"VM (Ubuntu)" = ["vm"]
"Docker" = ["docker/*"]
"Wasm" = ["wasm"]
"Wasm (WasmEdge)" = ["wasm"]
"Bare metal" = ["native/static"]
"""
SPREAD = [0.97, 1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0]  # 8 repetitions around 1


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


def load(tmp_path: Path, pub: pd.DataFrame, text: str) -> claims.ClaimMapFile:
    path = tmp_path / "claims.toml"
    path.write_text(HEADER + text)
    return claims.load_map(path, pub)


def dataset(*groups: tuple) -> claims.Dataset:
    """Rows from (variant, family, experiment, metric, unit, values, conditions[, code])."""
    lines = []
    for group in groups:
        variant, family, experiment, metric, unit, values, conditions = group[:7]
        code = group[7] if len(group) > 7 else None
        for rep, value in enumerate(values):
            row = dict(run_id="t", experiment=experiment, family=family, variant=variant,
                       workload="noop", metric=metric, unit=unit, rep=rep,
                       conditions=json.dumps(conditions, sort_keys=True) if conditions else "",
                       value=float(value), reason="", warmup=False, tags="",
                       description="", timestamp="x")
            if code is not None:
                row["code"] = code
            lines.append(row)
    return claims.Dataset(pd.DataFrame(lines), {}, "t", n_boot=199)


def scaled(median: float, spread: list[float] = SPREAD) -> list[float]:
    return [median * f for f in spread]


def verdict_of(check: pd.DataFrame, family: str) -> pd.Series:
    verdicts = claims.claim_verdicts(check)
    return verdicts[verdicts["family"] == family].iloc[0]


# --- requirements ------------------------------------------------------------------------------

DISK = """
[[claim]]
key = "t:disk"
notebooks = ["04_resources"]
source = "seed"
table = "(disk I/O)"
metrics = ["disk I/O throughput (% of native)"]
condition = "sequential read/write"
systems = ["VM"]
requires = { accel = "hardware", cache = "cold" }
""" + ('picks = [{ metric = "seq_read", experiment = "io", transform = "pct_of_baseline", '
       'conditions = { fs = "host" } }]\n')


def _disk_rows(*vms: str) -> claims.Dataset:
    cold, warm = {"cache": "cold"}, {"cache": "warm"}
    groups = [("native/static", "native", "io", "seq_read", "MB/s", scaled(100.0), cold),
              ("native/static", "native", "io", "seq_read", "MB/s", scaled(1000.0), warm)]
    for vm in vms:  # 85 % of native on cold reads (the seed claims 80-90 %), 50 % warm
        groups += [(vm, "vm", "io", "seq_read", "MB/s", scaled(85.0, SPREAD[::-1]), cold),
                   (vm, "vm", "io", "seq_read", "MB/s", scaled(500.0, SPREAD[::-1]), warm)]
    return dataset(*groups)


def test_an_emulated_vm_is_never_tallied_against_a_hardware_claim(tmp_path, pub):
    cmf = load(tmp_path, pub, DISK)
    check = claims.check(_disk_rows("qemu-tcg/pc", "qemu-kvm/pc"), pub=pub,
                         claim_map_file=cmf)
    tcg = check[check["variant"] == "qemu-tcg/pc"]
    assert len(tcg) and not tcg["tallied"].any()
    assert all("emulation: TCG" in r for r in tcg["reason"])
    kvm = check[(check["variant"] == "qemu-kvm/pc") & check["tallied"]]
    assert list(kvm["conditions"]) == ["cache=cold"]
    assert verdict_of(check, "vm")["verdict"] == "consistent"
    only_tcg = claims.check(_disk_rows("qemu-tcg/pc"), pub=pub, claim_map_file=cmf)
    assert not only_tcg["tallied"].any()
    assert not verdict_of(only_tcg, "vm")["tallied"]


def test_disk_reads_pair_cold_with_cold_and_show_page_cache_reads_as_context(tmp_path, pub):
    cmf = load(tmp_path, pub, DISK)
    check = claims.check(_disk_rows("qemu-kvm/pc"), pub=pub, claim_map_file=cmf)
    kvm = check[check["variant"] == "qemu-kvm/pc"].set_index("conditions")
    assert kvm.loc["cache=cold", "median"] == pytest.approx(85.0, rel=0.02)  # native cold
    assert kvm.loc["cache=cold", "tallied"]
    assert kvm.loc["cache=warm", "median"] == pytest.approx(50.0, rel=0.02)  # native warm
    assert not kvm.loc["cache=warm", "tallied"]
    assert "page cache" in kvm.loc["cache=warm", "reason"]


def test_a_full_os_claim_reads_only_the_full_os_guest_of_its_size(tmp_path, pub):
    cmf = load(tmp_path, pub, """
[[claim]]
key = "t:vm-idle"
notebooks = ["02_memory_density"]
source = "seed"
table = "Memory footprint comparison"
metrics = ["idle memory"]
systems = ["VM (Ubuntu)"]
requires = { userland = "debian-systemd", guest_memory_mib = ">=512" }
picks = [{ metric = "rss", experiment = "memory", conditions = { state = "idle" } }]
""")
    ds = dataset(
        ("qemu-kvm/pc", "vm", "memory", "rss", "MiB", scaled(60.0),
         {"state": "idle", "guest_memory_mib": "256"}),
        ("qemu-kvm/pc", "vm", "memory", "rss", "MiB", scaled(200.0),
         {"state": "idle", "guest_memory_mib": "256", "userland": "debian-systemd"}),
        ("qemu-kvm/pc", "vm", "memory", "rss", "MiB", scaled(500.0),
         {"state": "idle", "guest_memory_mib": "1024", "userland": "debian-systemd"}))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    tallied = check[check["tallied"]]
    assert list(tallied["conditions"]) == [
        "guest_memory_mib=1024, state=idle, userland=debian-systemd"]
    context = check[~check["tallied"]]
    assert len(context) == 2
    assert any("busybox" in r for r in context["reason"])
    assert any("guest_memory_mib=256" in r for r in context["reason"])


def test_wasm_memory_is_the_engines_own_never_its_host_process(tmp_path, pub):
    cmf = load(tmp_path, pub, """
[[claim]]
key = "t:wasm-idle"
notebooks = ["02_memory_density"]
source = "seed"
table = "Memory footprint comparison"
metrics = ["idle memory"]
systems = ["Wasm (WasmEdge)"]
stands_in = "WasmEdge"
requires = { memory = "engine" }
picks = [
  { metric = "rss", experiment = "memory", conditions = { state = "idle" } },
  { metric = "rss_per_instance", experiment = "memory", conditions = { state = "idle" } },
]
""")
    idle = {"state": "idle"}
    ds = dataset(
        ("wasmtime-embedded/cranelift", "wasm", "memory", "rss", "MiB", scaled(40.0), idle),
        ("wasmtime-embedded/cranelift", "wasm", "memory", "rss_per_instance", "MiB",
         scaled(1.9), idle),
        ("wasmtime-cli/jit", "wasm", "memory", "rss", "MiB", scaled(1.9), idle))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    embedded = check[check["variant"] == "wasmtime-embedded/cranelift"].set_index("metric")
    assert not embedded.loc["rss", "tallied"]
    assert "Python worker" in embedded.loc["rss", "reason"]
    assert embedded.loc["rss_per_instance", "tallied"]
    cli = check[check["variant"] == "wasmtime-cli/jit"].iloc[0]
    assert cli["tallied"] and cli["stands_in"] == "wasmtime-cli/jit stands in for WasmEdge"


# --- readings ----------------------------------------------------------------------------------

READINGS = """
[[claim]]
key = "t:startup"
notebooks = ["01_startup"]
source = "seed"
table = "Core feature comparison"
metrics = ["startup time"]
systems = ["Docker"]

[[claim.reading]]
name = "image present"
means = "the container is created and started from an image already loaded"
picks = [{ metric = "startup", experiment = "startup" }]

[[claim.reading]]
name = "cold"
means = "the image is loaded first"
picks = [{ metric = "startup_cold", experiment = "startup" }]
"""


def test_readings_that_disagree_give_depends_on_the_reading(tmp_path, pub):
    cmf = load(tmp_path, pub, READINGS)
    ds = dataset(("docker/runc", "docker", "startup", "startup", "ms", scaled(300.0), {}),
                 ("docker/runc", "docker", "startup", "startup_cold", "ms", scaled(3000.0),
                  {}))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    assert set(check["reading"]) == {"image present", "cold"}
    docker = verdict_of(check, "docker")
    assert docker["verdict"] == "depends on the reading" and not docker["tallied"]
    assert "image present: consistent" in docker["detail"]
    assert "cold: higher than claimed" in docker["detail"]
    assert claims.tally(check).get("depends on the reading") == 1


def test_readings_that_agree_give_their_verdict(tmp_path, pub):
    cmf = load(tmp_path, pub, READINGS)
    ds = dataset(("docker/runc", "docker", "startup", "startup", "ms", scaled(300.0), {}),
                 ("docker/runc", "docker", "startup", "startup_cold", "ms", scaled(600.0),
                  {}))
    docker = verdict_of(claims.check(ds, pub=pub, claim_map_file=cmf), "docker")
    assert docker["verdict"] == "consistent" and docker["tallied"]


def test_a_reading_can_be_limited_to_some_variants(tmp_path, pub):
    text = READINGS.replace('name = "cold"', 'name = "cold"\nvariants = ["docker/runc-host"]')
    cmf = load(tmp_path, pub, text)
    ds = dataset(("docker/runc", "docker", "startup", "startup", "ms", scaled(300.0), {}),
                 ("docker/runc", "docker", "startup", "startup_cold", "ms", scaled(3000.0),
                  {}))
    check = claims.check(ds, pub=pub, claim_map_file=cmf)
    assert list(check["reading"]) == ["image present"]


# --- what "mixed" means ------------------------------------------------------------------------


def _table(*lines: tuple[str, str, str, bool]) -> pd.DataFrame:
    """A check table from (variant, conditions, verdict, tallied) lines of one claim."""
    return pd.DataFrame([dict(claim_id="seed:43", source="seed", line=43, claim="c",
                              claimed="99-100 %", family="docker", reading="", variant=v,
                              workload="cpu", metric="compute_time", conditions=c,
                              verdict=verdict, tallied=t, reason="" if t else "x", code="")
                         for v, c, verdict, t in lines])


def test_kernels_of_one_variant_that_disagree_are_not_mixed():
    one = _table(("docker/runc", "kernel=hash", "consistent", True),
                 ("docker/runc", "kernel=syscall", "lower than claimed", True))
    docker = claims.claim_verdicts(one).iloc[0]
    assert docker["verdict"] != "mixed" and not docker["tallied"]
    assert "docker/runc lines disagree" in docker["detail"]
    two = _table(("docker/runc", "kernel=hash", "consistent", True),
                 ("docker/runc-host", "kernel=hash", "lower than claimed", True))
    assert claims.claim_verdicts(two).iloc[0]["verdict"] == "mixed"


def test_cpu_performance_is_the_geometric_mean_of_cpu_bound_kernels(tmp_path, pub):
    cmf = load(tmp_path, pub, """
[[claim]]
key = "t:cpu"
notebooks = ["04_resources"]
source = "seed"
table = "Core feature comparison"
metrics = ["CPU performance (% of native)"]
systems = ["Docker"]
""" + ('picks = [{ metric = "compute_time", experiment = "cpu", '
       'transform = "geomean_pct_of_baseline_time", '
       'conditions = { kernel = ["hash", "nbody", "chase", "sort", "fib"] } }]\n'))
    groups = []
    for kernel in ("hash", "nbody", "chase", "sort", "fib", "syscall"):
        native = scaled(100.0)
        slower = 10.0 if kernel == "syscall" else 1.0  # the syscall kernel must not count
        groups += [("native/static", "native", "cpu", "compute_time", "ms", native,
                    {"kernel": kernel}),
                   ("docker/runc", "docker", "cpu", "compute_time", "ms",
                    [v * slower for v in native], {"kernel": kernel})]
    check = claims.check(dataset(*groups), pub=pub, claim_map_file=cmf)
    line = check[check["variant"] == "docker/runc"].iloc[0]
    assert len(check[check["variant"] == "docker/runc"]) == 1
    assert line["median"] == pytest.approx(100.0)
    assert line["ci_low"] <= 100.0 <= line["ci_high"]
    assert "syscall" not in line["conditions"]
    assert line["tallied"] and line["verdict"] == "consistent"


# --- measuring-code versions -------------------------------------------------------------------


def test_rows_from_two_measuring_code_versions_are_flagged(tmp_path, pub):
    cmf = load(tmp_path, pub, READINGS.split("[[claim.reading]]")[0]
               + 'picks = [{ metric = "startup", experiment = "startup" }]\n')

    def rows(code_a: str | None, code_b: str | None) -> claims.Dataset:
        return dataset(
            ("docker/runc", "docker", "startup", "startup", "ms", scaled(300.0), {}, code_a),
            ("docker/runc-host", "docker", "startup", "startup", "ms", scaled(310.0), {},
             code_b))

    flagged = verdict_of(claims.check(rows("aaa", "bbb"), pub=pub, claim_map_file=cmf),
                         "docker")
    assert flagged["verdict"] == "several code versions" and not flagged["tallied"]
    assert "rows from 2 measuring-code versions" in flagged["detail"]
    same = verdict_of(claims.check(rows("aaa", "aaa"), pub=pub, claim_map_file=cmf), "docker")
    assert same["verdict"] == "consistent" and same["tallied"]
    unknown = verdict_of(claims.check(rows(None, None), pub=pub, claim_map_file=cmf),
                         "docker")  # no code column: one unknown version
    assert unknown["verdict"] == "consistent" and unknown["tallied"]
    empty = verdict_of(claims.check(rows("", ""), pub=pub, claim_map_file=cmf), "docker")
    assert empty["verdict"] == "consistent"


# --- the map is validated ----------------------------------------------------------------------


@pytest.mark.parametrize("requires, needle", [
    ('{ colour = "red" }', "unknown requirement 'colour'"),
    ('{ accel = "quantum" }', "accel='quantum' is not valid"),
    ('{ platform = "mainframe" }', "platform='mainframe' is not valid"),
    ('{ userland = "gentoo" }', "userland='gentoo' is not valid"),
    ('{ guest_memory_mib = "big" }', "guest_memory_mib='big' is not valid"),
    ('{ cache = "cold" }', "no metric of these picks takes"),
])
def test_bad_requirements_are_errors_naming_the_line(tmp_path, pub, requires, needle):
    text = READINGS.split("[[claim.reading]]")[0] + f"requires = {requires}\n" + \
        'picks = [{ metric = "startup", experiment = "startup" }]\n'
    with pytest.raises(claims.ClaimMapError, match="claims.toml:") as err:
        load(tmp_path, pub, text)
    assert needle in str(err.value)


def test_a_reading_needs_a_name_and_a_meaning(tmp_path, pub):
    with pytest.raises(claims.ClaimMapError, match="a reading needs 'means'"):
        load(tmp_path, pub, READINGS.replace('means = "the image is loaded first"\n', ""))


def test_every_variant_has_a_platform_class_from_the_registry():
    for variant in platforms.VARIANTS:
        assert classes.platform_class(variant) in classes.PLATFORM_CLASSES
    assert classes.platform_class("qemu-tcg/microvm") == "emulated-vm"
    assert classes.platform_class("qemu-kvm/pc") == "hardware-vm"
    assert classes.platform_class("docker+wasm/wasmtime-cli") == "wasm-in-container"
    assert classes.engine_host("wasmtime-cli/jit") == "engine"
    assert classes.engine_host("wasmtime-embedded/winch") == "python"
    assert classes.engine_host("docker/runc") == ""
    with pytest.raises(ValueError, match="unknown variant"):
        classes.platform_class("vmware/esx")


def test_the_shipped_map_answers_like_for_like():
    """Hardware-VM requirements on the seed's VM performance claims, cold reads on disk-read
    claims, no syscall kernel in CPU performance, readings on seed:8, seed:63, seed:74."""
    cmf = claims.claim_map()
    by_key = {cm.key: cm for cm in cmf.claims}
    for key in ("seed:core:cpu", "seed:disk-io:seq_read", "seed:disk-io:rand_write",
                "seed:http:loss"):
        assert by_key[key].requires.get("accel") == "hardware", key
    for key in ("seed:disk-io:seq_read", "seed:disk-io:rand_read", "felter:seq-read:docker"):
        assert by_key[key].requires.get("cache") == "cold", key
    for cm in cmf.claims:
        if "CPU performance (% of native)" in cm.metrics:
            for pick in cm.picks:
                assert "syscall" not in pick.conditions.get("kernel", ()), cm.key
    for key in ("seed:timeline:startup-magnitude:wasm", "seed:mem:idle",
                "seed:mem:density:wasm", "seed:http:loss:docker"):
        assert len(by_key[key].readings) == 2, key
