"""The native platform, really run: the baseline every ratio divides by."""

from __future__ import annotations

import http.client
import socket

import pytest

from virtbench import catalog, platforms
from virtbench.catalog import VALUES
from virtbench.experiments.base import Params
from virtbench.experiments.cpu import SMOKE_SIZES, measure_cpu
from virtbench.experiments.disk import disk_rows
from virtbench.experiments.io import measure_io
from virtbench.experiments.memory import measure_memory
from virtbench.experiments.startup import startup_rows
from virtbench.platforms.base import Workload

pytestmark = pytest.mark.integration
QUICK = Params(quick=True, options={"cpu_millions": 5, "io_mib": 4, "mem_mib": 32})
KERNELS = VALUES["kernel"]


@pytest.fixture(scope="module", params=["native/static", "native/dynamic"])
def native(request):
    with platforms.create(request.param) as plat:
        assert plat.availability.available, plat.availability.reason
        yield plat


def test_startup_gives_time_and_peak_rss(native):
    ms = {m.metric: m for m in startup_rows(native, Workload("noop"))}
    assert ms["startup"].unit == "ms" and ms["startup"].value > 0
    assert "wait4" in ms["startup"].description
    assert 0 < ms["peak_rss"].value < 50


def test_cpu_checksums_agree_between_builds():
    sums: dict[str, set[str]] = {}
    for name in ("native/static", "native/dynamic"):
        ms = measure_cpu(platforms.create(name), Workload("cpu"), Params(options=SMOKE_SIZES))
        assert all(m.value is not None for m in ms), [m.reason for m in ms if m.reason]
        assert {m.metric for m in ms} == {"wall_time", "compute_time"}
        for wall, compute in zip(ms[::2], ms[1::2], strict=True):
            assert wall.conditions == compute.conditions
            assert 0 < compute.value <= wall.value
            sums.setdefault(wall.conditions["kernel"], set()).add(wall.tags["checksum"])
    assert set(sums) == set(KERNELS) and all(len(s) == 1 for s in sums.values())


def test_memory_loaded_exceeds_idle_by_the_buffer(native):
    ms = {(m.metric, m.conditions["state"]): m.value
          for m in measure_memory(native, Workload("mem"), QUICK)}
    assert ms["rss", "loaded"] - ms["rss", "idle"] >= 30  # 32 MiB touched
    assert ms["pss", "idle"] <= ms["rss", "idle"]


def test_io_reports_writes_and_warm_and_cold_reads(native):
    ms = measure_io(native, Workload("fileio"), QUICK)
    assert [(m.metric, m.conditions) for m in ms] == [
        ("seq_write", {}), ("seq_read", {"cache": "warm"}), ("rand_read", {"cache": "warm"}),
        ("rand_write", {}), ("seq_read", {"cache": "cold"}), ("rand_read", {"cache": "cold"})]
    assert all(m.value > 0 and m.unit == "MB/s" for m in ms)
    for m in ms:
        catalog.validate("io", m.metric, m.unit, m.conditions)
    cold = {m.metric: m for m in ms if m.conditions.get("cache") == "cold"}
    # the drop is checked with mincore: (almost) nothing of the file was left in the cache
    assert "posix_fadvise(POSIX_FADV_DONTNEED)" in cold["seq_read"].description
    resident = float(cold["seq_read"].description.split("mincore saw ")[1].split("%")[0])
    assert resident <= 5.0


def test_io_cold_reads_without_a_drop_are_reason_rows(native):
    from virtbench.experiments.io import io_rows
    from virtbench.platforms.base import RunOutcome

    base = {"seq_write_mbps": "1", "seq_read_mbps": "2", "rand_read_mbps": "3",
            "rand_write_mbps": "4", "cold_seq_read_mbps": "0", "cold_rand_read_mbps": "0"}
    for extra, disk_cache, why in (
            ({"cold_drop": "ENOSYS", "cold_resident_pct": "na"}, "", "ENOSYS"),
            ({"cold_drop": "ok", "cold_resident_pct": "80.0"}, "", "80.0%"),
            ({"cold_drop": "ok", "cold_resident_pct": "na"}, "writeback", "host's page cache"),
            ({}, "", "no cold read rates")):
        out = RunOutcome(0, "", 0, "", {**base, **extra}, disk_cache=disk_cache)
        cold = [m for m in io_rows(native, out, 4) if m.conditions.get("cache") == "cold"]
        assert len(cold) == 2
        assert all(m.value is None and why in m.reason for m in cold), why


def test_disk_sizes_are_positive(native):
    sizes = {m.workload: m.value for m in disk_rows(native)}
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
    ms = {m.metric: m for m in startup_rows(native, Workload("true", command=("/bin/true",)))}
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
