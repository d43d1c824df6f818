"""The native platform, really run: the baseline every ratio divides by."""

from __future__ import annotations

import http.client
import socket

import pytest

from virtbench import platforms
from virtbench.experiments.basic import measure_cpu, measure_io, measure_memory
from virtbench.experiments.core import Params
from virtbench.platforms.base import Workload

pytestmark = pytest.mark.integration
QUICK = Params(quick=True, options={"cpu_millions": 5, "io_mib": 4, "mem_mib": 32})


@pytest.fixture(scope="module", params=["native/static", "native/dynamic"])
def native(request):
    with platforms.create(request.param) as plat:
        assert plat.availability.available, plat.availability.reason
        yield plat


def test_startup_gives_time_and_peak_rss(native):
    ms = {m.metric: m for m in native.startup(Workload("noop"))}
    assert ms["startup"].unit == "ms" and ms["startup"].value > 0
    assert "wait4" in ms["startup"].description
    assert 0 < ms["peak_rss"].value < 50


def test_cpu_checksums_agree_between_builds():
    sums = set()
    for name in ("native/static", "native/dynamic"):
        ms = measure_cpu(platforms.create(name), Workload("cpu"), QUICK)
        sums.add(ms[0].tags["checksum"])
        assert {m.metric for m in ms} == {"wall_time", "compute_time"}
        wall, compute = ms[0].value, ms[1].value
        assert 0 < compute <= wall
    assert len(sums) == 1


def test_memory_loaded_exceeds_idle_by_the_buffer(native):
    ms = {(m.metric, m.conditions["state"]): m.value
          for m in measure_memory(native, Workload("mem"), QUICK)}
    assert ms["rss", "loaded"] - ms["rss", "idle"] >= 30  # 32 MiB touched
    assert ms["pss", "idle"] <= ms["rss", "idle"]


def test_io_reports_four_positive_rates(native):
    ms = measure_io(native, Workload("fileio"), QUICK)
    assert [m.metric for m in ms] == ["seq_write", "seq_read", "rand_read", "rand_write"]
    assert all(m.value > 0 and m.unit == "MB/s" for m in ms)


def test_disk_sizes_are_positive(native):
    sizes = {m.workload: m.value for m in native.disk()}
    assert set(sizes) == {"noop", "cpu", "http"} and all(v > 0 for v in sizes.values())


def test_http_instance_serves_on_loopback(native):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with native.instance(Workload("http"), port=port) as handle:
        conn = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"Hello, world\n")
        conn.close()
        pid = handle.pids[0]
    import os

    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_user_command_runs_like_a_builtin(native):
    ms = {m.metric: m for m in native.startup(Workload("true", command=("/bin/true",)))}
    assert ms["startup"].value > 0


def test_http_instance_memory_idle_and_peak_under_load(native):
    params = Params(quick=True, options={"http_duration_s": 1})
    ms = {(m.metric, m.conditions["state"]): m for m in
          measure_memory(native, Workload("http"), params)}
    assert set(ms) == {(k, s) for k in ("instance_rss", "instance_pss")
                       for s in ("idle", "loaded")}
    idle, peak = ms["instance_rss", "idle"].value, ms["instance_rss", "loaded"].value
    assert 0 < idle <= peak < 64  # a small C server; the peak is VmHWM after the load
    assert 0 < ms["instance_pss", "idle"].value <= idle
    assert "wrk" in ms["instance_pss", "loaded"].description
