"""The Debian userland for real: debootstrap's root file system, the image Docker imports
and runs, the root disk a TCG guest boots; their rows in the startup, memory and disk
experiments. The first run builds the root file system from the Debian mirror (half a
minute here); later runs use the cache."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from virtbench import distro, platforms
from virtbench.experiments import get
from virtbench.experiments.base import Params
from virtbench.experiments.disk import measure_disk
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.startup import measure_startup, startup_rows
from virtbench.platforms.base import Workload
from virtbench.process import RUN_ENV

pytestmark = [pytest.mark.integration, pytest.mark.slow]
UNREACHABLE = ("Failed getting", "Couldn't download", "Temporary failure resolving",
               "could not resolve")


@pytest.fixture(scope="module")
def rootfs() -> distro.Rootfs:
    try:
        return distro.build_rootfs()
    except distro.DistroUnavailable as exc:
        if "needs root" in exc.reason or any(s in exc.reason for s in UNREACHABLE):
            pytest.skip(f"no Debian root file system: {exc.reason}")
        raise


def _usable(variant: str) -> platforms.Platform:
    plat = platforms.create(variant)
    if not plat.availability.available:
        plat.close()
        pytest.skip(f"{variant}: {plat.availability.reason}")
    return plat


def _qemus() -> set[str]:
    """The QEMU processes this test process started (marked by the suite's environment
    variable), not those of other runs on the machine."""
    out = subprocess.run(["pgrep", "-f", "qemu-system"], capture_output=True, text=True)
    mine = f"{RUN_ENV}={os.getpid()}".encode()
    found = set()
    for pid in out.stdout.split():
        try:
            if mine in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.add(pid)
        except OSError:
            continue  # gone
    return found


def _by_metric(ms) -> dict:
    return {m.metric: m for m in ms}


def test_the_root_file_system_is_debian_minbase(rootfs):
    assert (rootfs.path / "bin" / "sh").exists() and (rootfs.path / "usr" / "bin" / "apt").exists()
    assert {"dash", "libc6", "apt", "coreutils"} <= set(rootfs.manifest["packages"])
    assert "systemd" not in rootfs.manifest["packages"]  # minbase: no init system
    assert not list((rootfs.path / "var" / "cache" / "apt" / "archives").glob("*.deb"))
    assert 30e6 < rootfs.bytes_used < 500e6
    assert rootfs.label.startswith(f"Debian bookworm minbase ({rootfs.release}, debootstrap")
    assert rootfs.release.startswith("12.")
    assert distro.cached_rootfs() == rootfs


def test_a_tcg_guest_boots_the_root_disk(rootfs):
    before = _qemus()
    with _usable("qemu-tcg/microvm") as plat:
        debian = plat.with_userland("debian")
        boot = _by_metric(startup_rows(debian, Workload("noop")))
        assert 0 < boot["startup"].value < boot["startup_to_exit"].value
        assert 0 < boot["guest_uptime_at_init"].value < boot["startup"].value
        assert "Debian bookworm minbase on a read-only virtio ext4 root disk" in \
            boot["startup"].description
        assert "pause_resume" not in boot  # the snapshot guest serves http: minimal only
        idle = _by_metric(measure_mem(debian, 0))
        assert idle["rss"].conditions == {"guest_memory_mib": "256"}
        assert 0 < idle["rss"].value < 1024
        assert idle["guest_used"].conditions == {"guest_memory_mib": "256"}
        assert 0 < idle["guest_used"].value < 256  # read by Debian's dash inside the guest
        disk = measure_disk(plat, Workload("noop"), Params())
    assert _qemus() - before == set(), "a guest was left running"
    sizes = {(m.metric, m.workload): m.value for m in disk
             if m.conditions == {"userland": "debian"}}
    minimal = {(m.metric, m.workload): m.value for m in disk if not m.conditions}
    allocated = sizes["disk_image_allocated", "noop"]
    assert rootfs.bytes_used * 0.9 < allocated <= sizes["disk_image_size", "noop"]
    assert sizes["artifact_size", "http"] == (sizes["kernel_size", None]
                                              + sizes["initramfs_size", "noop"] + allocated)
    assert sizes["artifact_size", "http"] > 2 * minimal["artifact_size", "http"]


def test_docker_imports_and_runs_the_debian_image(rootfs):
    with _usable("docker/runc") as plat:
        with plat.with_userland("debian") as debian:
            debian.prepare([Workload("cpu")])
            tag, spec = debian.image(Workload("cpu"))
            assert len(debian.api.inspect_image(tag)["RootFS"]["Layers"]) == 1
            assert debian.argv(Workload("noop"), [])[:2] == ["/bin/sh", "-c"]
            out = debian.run(Workload("cpu"), ["hash", "2"])
            native = platforms.create("native/static").run(Workload("cpu"), ["hash", "2"])
            assert out.result["checksum"] == native.result["checksum"]
            idle = _by_metric(measure_mem(debian, 0))
            assert idle["cgroup_usage"].value > 0
        rows = measure_startup(plat, Workload("noop"), Params())
    debian_rows = [m for m in rows if m.conditions.get("userland") == "debian"]
    assert [m.reason for m in debian_rows if m.value is None] == []
    got = {(m.metric, m.conditions["network"]) for m in debian_rows}
    assert {("startup", "bridge"), ("startup", "none"), ("startup_cold", "bridge"),
            ("startup_load", "none")} <= got
    assert all("docker import of Debian bookworm minbase" in m.description
               for m in debian_rows)
    minimal = [m for m in rows if "userland" not in m.conditions]
    assert {m.metric for m in minimal} >= {"startup", "startup_cold"}
    assert spec.content_size > rootfs.bytes_used


@pytest.fixture(scope="module")
def systemd_rootfs() -> distro.Rootfs:
    try:
        return distro.build_rootfs(packages=distro.SYSTEMD_PACKAGES)
    except distro.DistroUnavailable as exc:
        if "needs root" in exc.reason or any(s in exc.reason for s in UNREACHABLE):
            pytest.skip(f"no Debian root file system: {exc.reason}")
        raise


def test_a_tcg_guest_boots_debian_with_systemd_to_the_service(systemd_rootfs):
    """One boot of the full-OS guest: systemd is PID 1, its service prints the readiness
    marker, and systemd's own startup-finished point is read from the console."""
    assert {"systemd", "systemd-sysv", "strace"} <= set(systemd_rootfs.manifest["packages"])
    before = _qemus()
    with _usable("qemu-tcg/microvm") as plat:
        with plat.with_userland("debian-systemd") as guest:
            guest.prepare([Workload("noop")])
            rows = _by_metric(startup_rows(guest, Workload("noop")))
    assert _qemus() - before == set(), "a guest was left running"
    assert rows["startup"].tags["pid1"] == "systemd"
    assert "systemd as PID 1" in rows["startup"].description
    assert 0 < rows["startup"].value < rows["startup_to_exit"].value
    assert 0 < rows["guest_uptime_at_init"].value < rows["startup"].value
    finished = rows["systemd_startup_finished"]
    assert finished.value is not None, finished.reason
    assert finished.tags["systemd_state"] in ("running", "degraded")
    assert 0 < int(finished.tags["userspace_start_us"]) / 1000 < finished.value
    assert "guest of 512 MiB" in rows["peak_rss"].description


class _NeverBooted:
    """Offers the full-OS guest but fails the test if it is ever started."""

    userlands = ("debian-systemd",)

    def with_userland(self, name: str):
        raise AssertionError(f"the left-out userland {name} was started")


def test_option_full_os_0_leaves_the_full_os_guest_out_with_its_reason():
    from virtbench.experiments.shared.userland import on_userlands

    ms = on_userlands(_NeverBooted(), get("startup"), [Workload("noop")], lambda p: [],
                      options={"full_os": 0})
    assert ms, "the left-out userland still gives its rows, with the reason"
    assert {m.conditions["userland"] for m in ms} == {"debian-systemd"}
    assert all(m.value is None and "option full_os=0" in m.reason for m in ms)


def test_the_full_os_option_is_declared_where_the_full_os_guest_is_measured():
    from virtbench import experiments

    for name in ("startup", "memory", "disk", "density", "observability"):
        assert "full_os" in experiments.EXPERIMENTS[name].options, name
