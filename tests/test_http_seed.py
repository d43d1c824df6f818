"""The http experiment's seed load profile: options, profiles, conditions, descriptor limits."""

from __future__ import annotations

import os
import resource
import subprocess
from pathlib import Path

import pytest

from virtbench import catalog
from virtbench.conditions import wanted
from virtbench.experiments import get
from virtbench.experiments.base import Params, check_options
from virtbench.experiments.http import (
    SEED_CONNECTIONS,
    LoadProfile,
    check_proxy_descriptors,
    load_profiles,
    seed_limits,
    seed_missing,
)
from virtbench.platforms.base import Handle
from virtbench.platforms.vm.init import INIT_SCRIPT
from virtbench.platforms.vm.qemu import Boot, kernel_cmdline
from virtbench.process import nofile_granted, nofile_limit, start_instance


def test_seed_options_are_checked():
    http = get("http")
    assert check_options(http, {"http_seed_duration_s": "0"}) == {"http_seed_duration_s": 0}
    assert check_options(http, {"http_seed_connections": "10000"})["http_seed_connections"] \
        == 10_000
    for bad in ({"http_seed_duration_s": "-1"}, {"http_seed_duration_s": "3601"},
                {"http_seed_duration_s": "2.5"}, {"http_seed_connections": "0"}):
        with pytest.raises(ValueError, match="is invalid: expected http_seed_"):
            check_options(http, bad)
    with pytest.raises(ValueError, match="unknown option 'http_seed_duration'.*"
                                         "http_seed_duration_s"):
        check_options(http, {"http_seed_duration": "3"})


def test_profiles_light_then_seed_with_the_seeds_conditions():
    light, seed = load_profiles(Params(quick=False))
    assert (light.name, light.connections, light.threads, light.duration_s) == ("light", 10, 1, 2)
    assert light.nofile is None
    assert (seed.name, seed.connections, seed.duration_s) == ("seed", SEED_CONNECTIONS, 300)
    assert seed.threads == os.cpu_count()
    assert seed.nofile > seed.connections
    quick = load_profiles(Params(quick=True))[1]
    assert quick.duration_s < 300 and quick.connections == SEED_CONNECTIONS
    chosen = load_profiles(Params(options={"http_seed_duration_s": 7,
                                           "http_seed_connections": 2000}))[1]
    assert (chosen.duration_s, chosen.connections) == (7, 2000)
    assert [p.name for p in load_profiles(Params(options={"http_seed_duration_s": 0}))] \
        == ["light"]


def test_seed_rows_say_why_when_left_out():
    rows = seed_missing()
    assert {m.metric for m in rows} == {"requests_per_s", "latency_p50", "latency_p99"}
    assert all(m.value is None and m.conditions == {"load": "seed"} for m in rows)
    assert all("http_seed_duration_s=0" in m.reason for m in rows)


def test_load_condition_is_declared_on_every_http_metric():
    for metric in ("requests_per_s", "latency_p50", "latency_p99", "errors",
                   "cpu_percent_load"):
        unit = catalog.get("http", metric).unit
        for load in ("light", "seed"):
            catalog.validate("http", metric, unit, {"load": load})
        with pytest.raises(ValueError, match="light | seed"):
            catalog.validate("http", metric, unit, {"load": "heavy"})
    with pytest.raises(ValueError, match="not declared for startup/startup"):
        catalog.validate("startup", "startup", "ms", {"load": "seed"})
    primary = [(m.name, c) for m, c in catalog.primary("http")]
    assert ("requests_per_s", {"load": "seed"}) in primary
    assert ("latency_p99", {"load": "light"}) in primary


def test_seed_rows_are_read_only_when_asked_for():
    """A row without the key is light; seed rows never join a sample that did not ask."""
    assert wanted({}, {"load": "light"}) and wanted({}, None)
    assert not wanted({"load": "seed"}, None)
    assert not wanted({"load": "seed"}, {"load": "light"})
    assert wanted({"load": "seed"}, {"load": "seed"}) and not wanted({}, {"load": "seed"})


class _Plat:
    def __init__(self, own: bool) -> None:
        self.own_network_namespace = own


def test_seed_limits_raise_descriptors_and_the_backlog_only_in_an_own_namespace():
    light, seed = load_profiles(Params())
    assert seed_limits(_Plat(True), light) == {}
    assert seed_limits(_Plat(False), seed) == {"nofile": seed.nofile}
    assert seed_limits(_Plat(True), seed) == {"nofile": seed.nofile, "somaxconn": 65535}


def test_a_proxy_short_of_descriptors_is_a_reason_before_any_load():
    """This process stands in for a docker-proxy: its real limit is read from /proc."""
    limit = nofile_limit(os.getpid())
    assert limit == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    handle = Handle([os.getpid()], info={"docker_proxy_pid": str(os.getpid())})
    fits = LoadProfile("seed", 1, 1, limit // 6 - 100, nofile=limit)
    check_proxy_descriptors(handle, fits)
    too_many = LoadProfile("seed", 1, 1, limit // 6 + 1, nofile=limit)
    with pytest.raises(Exception, match=f"descriptors per connection.*is {limit}"):
        check_proxy_descriptors(handle, too_many)
    check_proxy_descriptors(Handle([os.getpid()]), too_many)  # no proxy: nothing to check


def test_a_child_gets_the_descriptor_limit_it_asks_for():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4321) if hard != resource.RLIM_INFINITY else 4321
    with start_instance(["sleep", "10"], nofile=want) as inst:
        assert nofile_limit(inst.pid) == want
        line = Path(f"/proc/{inst.pid}/limits").read_text().split("Max open files")[1]
        assert int(line.split()[1]) == want  # hard as well, as `ulimit -n` sets it
    assert nofile_granted(want) == want
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)  # ours is untouched


def test_guest_init_raises_the_servers_descriptors_and_backlog():
    line = kernel_cmdline(Boot("http", hostfwd_port=8080, nofile=11024, somaxconn=65535))
    assert "vb.nofile=11024" in line.split() and "vb.somaxconn=65535" in line.split()
    assert "vb.nofile" not in kernel_cmdline(Boot("http", hostfwd_port=8080))
    if not Path("/bin/busybox").is_file():
        pytest.skip("busybox is not installed")
    ulimit = next(x for x in INIT_SCRIPT.splitlines() if "ulimit -n" in x)
    out = subprocess.run(["/bin/busybox", "sh", "-c", f"nofile=1000\n{ulimit}\nulimit -n"],
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "1000"
