"""The Debian userland: sources parsing, cache keys, the tar and disk builders, the guest's
init scripts, the userland condition in datasets and claims (pure logic, no platform runs);
the builds themselves are tested in test_userland.py."""

from __future__ import annotations

import json
import os
import tarfile

import pandas as pd
import pytest

from virtbench import catalog, claims, distro
from virtbench.distro import DistroUnavailable
from virtbench.experiments import get
from virtbench.experiments.disk import disk_rows
from virtbench.experiments.shared.userland import on_userlands
from virtbench.platforms.base import Artifact, Availability, NotSupported, Platform, Workload
from virtbench.platforms.vm.qemu import Boot, Machine, qemu_argv
from virtbench.platforms.vm.rootdisk import DISTRO_INIT, ROOT_INIT, disk_mib

# /etc/apt/sources.list.d/debian.sources of the development machine (Debian 12 image)
DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
SOURCE_ONLY = """Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main
"""


def test_sources_in_both_formats():
    assert distro.parse_sources(DEB822, deb822=True) == [
        ("http://deb.debian.org/debian", ["bookworm", "bookworm-updates"]),
        ("http://deb.debian.org/debian-security", ["bookworm-security"])]
    assert distro.parse_sources(SOURCE_ONLY, deb822=True) == []
    one_line = ("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://ftp.de.debian.org/debian "
                "bookworm main\ndeb-src http://x/debian bookworm main\n")
    assert distro.parse_sources(one_line, deb822=False) == [
        ("http://ftp.de.debian.org/debian", ["bookworm"])]


def test_mirror_is_the_first_source_of_the_suite(tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a-src.sources").write_text(SOURCE_ONLY)
    (tmp_path / "d" / "debian.sources").write_text(DEB822)
    monkeypatch.setattr(distro, "SOURCES", (tmp_path / "missing.list", tmp_path / "d"))
    assert distro.mirror("bookworm") == "http://deb.debian.org/debian"
    assert distro.mirror("bookworm-security") == "http://deb.debian.org/debian-security"
    assert distro.mirror("trixie") == distro.DEFAULT_MIRROR


def test_the_cache_key_follows_every_input():
    base = ("bookworm", "minbase", "http://deb.debian.org/debian", ())
    keys = {distro.rootfs_key(*base),
            distro.rootfs_key("trixie", *base[1:]),
            distro.rootfs_key(base[0], "buildd", *base[2:]),
            distro.rootfs_key(*base[:2], "http://other/debian", ()),
            distro.rootfs_key(*base[:3], ("iproute2",))}
    assert len(keys) == 5
    assert distro.rootfs_key(*base[:3], ("a", "b")) == distro.rootfs_key(*base[:3], ("b", "a"))


def test_debootstrap_error_line():
    out = ("I: Retrieving InRelease\nI: Retrieving Release\n"
           "E: Failed getting release file http://nowhere.invalid/debian/dists/bookworm/"
           "Release\n")
    assert distro.debootstrap_error(out).startswith("E: Failed getting release file")
    assert distro.debootstrap_error("a\nb\nc\nd\n") == "b | c | d"


def test_installed_packages_from_a_dpkg_status_file():
    status = ("Package: dash\nStatus: install ok installed\nVersion: 0.5.12-2\n\n"
              "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n"
              "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b13\n")
    assert distro.installed_packages(status) == {"bash": "5.2.15-2+b13", "dash": "0.5.12-2"}


def test_cached_rootfs_never_builds(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_CACHE", str(tmp_path))
    assert distro.cached_rootfs(mirror_url="http://nowhere.invalid/debian") is None


def test_build_needs_debootstrap(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(distro.shutil, "which", lambda name: None)
    with pytest.raises(DistroUnavailable, match="debootstrap is not installed"):
        distro.build_rootfs(mirror_url="http://nowhere.invalid/debian")


def test_tar_keeps_owners_links_and_adds_files(tmp_path):
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "usr" / "bin" / "a").write_bytes(b"x" * 10)
    os.link(root / "usr" / "bin" / "a", root / "usr" / "bin" / "b")
    os.symlink("usr/bin", root / "bin")
    os.chown(root / "usr" / "bin" / "a", 100, 101)
    extra = tmp_path / "noop"
    extra.write_bytes(b"\x7fELF" + b"0" * 6)
    out = tmp_path / "t.tar"
    total = distro.write_tar(root, out, {"/vb/noop": extra}, ("/work", "/vb"))
    assert total == 20  # the hard link counted once, plus the added file
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["usr/bin/a"].uid == 100 and members["usr/bin/a"].uname == ""
    assert members["usr/bin/b"].islnk() and members["bin"].issym()
    assert members["vb"].isdir() and members["work"].isdir()
    assert members["vb/noop"].mode == 0o755 and members["vb/noop"].uid == 0
    assert list(members).index("vb") < list(members).index("vb/noop")
    assert distro.tree_bytes(root) == 10


# ---- the VM's boot from the root disk ---------------------------------------------------------

def test_root_init_mounts_the_disk_and_switches_to_it():
    order = [ROOT_INIT.index(m) for m in ("insmod", "/dev/vda", "mount -t ext4 -o ro",
                                          "switch_root /newroot /vb/init")]
    assert order == sorted(order) and ROOT_INIT.startswith("#!/bin/sh\n")


def test_distro_init_prints_the_markers_of_the_minimal_guest_in_order():
    order = [DISTRO_INIT.index(m) for m in ("VB-BOOTED", "VB-START", "/vb/wl/$wl", "VB-EXIT",
                                            "/proc/sysrq-trigger")]
    assert order == sorted(order) and DISTRO_INIT.startswith("#!/bin/sh\n")
    assert DISTRO_INIT.index("mount -t proc") < DISTRO_INIT.index("VB-BOOTED")


def test_root_disk_leaves_room():
    assert disk_mib(100 << 20) >= 125 + 32 and disk_mib(100 << 20) % 4 == 0
    assert disk_mib(0) >= 64


def test_qemu_argv_attaches_the_root_disk_read_only_first(tmp_path):
    k, i = tmp_path / "vmlinux", tmp_path / "initrd"
    boot = Boot("noop", root=tmp_path / "root.img")
    for machine, device in (("microvm", "virtio-blk-device"), ("pc", "virtio-blk-pci")):
        argv = qemu_argv(Machine(machine, "tcg"), k, i, boot)
        drive = argv[argv.index("-drive") + 1]
        assert drive.startswith(f"file={tmp_path}/root.img,") and "readonly=on" in drive
        assert argv[argv.index("-device") + 1] == f"{device},drive=r0"


# ---- the condition in the catalog, datasets and claims ----------------------------------------

def test_userland_is_a_declared_condition():
    catalog.validate("disk", "artifact_size", "B", {"userland": "debian"})
    catalog.validate("startup", "startup", "ms", {"network": "none", "userland": "debian"})
    catalog.validate("memory", "rss", "MiB", {"state": "idle", "userland": "debian",
                                              "guest_memory_mib": "256"})
    with pytest.raises(ValueError, match="userland"):
        catalog.validate("disk", "artifact_size", "B", {"userland": "alpine"})


def _rows(*specs) -> claims.Dataset:
    lines = []
    for variant, family, workload, value, conditions in specs:
        lines.append(dict(run_id="t", experiment="disk", family=family, variant=variant,
                          workload=workload, metric="artifact_size",
                          conditions=json.dumps(conditions) if conditions else "", unit="B",
                          rep=0, value=float(value), reason="", warmup=False, tags="",
                          description="", timestamp="x"))
    return claims.Dataset(pd.DataFrame(lines), {}, "t", n_boot=199)


DISK = _rows(("docker/runc", "docker", "http", 785_320, None),
             ("docker/runc", "docker", "http", 120_499_821, {"userland": "debian"}),
             ("qemu-tcg/microvm", "vm", "http", 67_371_395, None),
             ("qemu-tcg/microvm", "vm", "http", 195_000_000, {"userland": "debian"}))


def test_debian_rows_are_read_only_when_asked_for():
    assert list(DISK.sample("docker/runc", "artifact_size", "disk")) == [785_320]
    assert list(DISK.sample("docker/runc", "artifact_size", "disk",
                            conditions={"userland": "minimal"})) == [785_320]
    assert list(DISK.sample("docker/runc", "artifact_size", "disk",
                            conditions={"userland": "debian"})) == [120_499_821]


def test_disk_claims_are_checked_on_the_debian_userland_and_minimal_is_a_lower_bound():
    check = claims.check(DISK, keys=["seed:core:disk"])
    debian = check[check["key"] == "seed:core:disk"].set_index("variant")
    assert debian.loc["docker/runc", "verdict"] == "consistent"  # 120 MB in 50-500 MB
    assert debian.loc["qemu-tcg/microvm", "verdict"] == "lower than claimed"  # not 1-20 GB
    assert debian.loc["docker/runc", "conditions"] == "userland=debian"
    assert debian.loc[["docker/runc", "qemu-tcg/microvm"], "tallied"].all()
    minimal = check[check["key"] == "seed:core:disk-minimal"]
    assert len(minimal) == 2 and not minimal["tallied"].any()
    assert minimal["reason"].str.contains("the lower bound").all()
    verdicts = claims.claim_verdicts(check).set_index("family")["verdict"]
    assert verdicts["docker"] == "consistent" and verdicts["vm"] == "lower than claimed"


# ---- the experiments' userland step -----------------------------------------------------------

class _Fake(Platform):
    family, variant = "vm", "qemu-tcg/microvm"
    userlands = ("debian",)

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.closed = 0

    def check(self) -> Availability:
        return Availability(True)

    def with_userland(self, name: str) -> _Fake:
        sibling = _Fake(self.fail)
        sibling.userland = name
        self.sibling = sibling
        return sibling

    def describe_userland(self) -> str:
        return "guest userland: debian"

    def artifacts(self) -> list[Artifact]:
        if self.fail:
            raise self.fail
        return [Artifact("workload", 1, "bytes", workload="noop")]

    def close(self) -> None:
        self.closed += 1


def test_userland_rows_carry_the_condition_and_the_sibling_is_closed():
    plat = _Fake()
    ms = on_userlands(plat, get("disk"), [Workload("noop")], disk_rows)
    assert [(m.metric, m.conditions) for m in ms] == [("artifact_size", {"userland": "debian"})]
    assert ms[0].description == "bytes; guest userland: debian"
    assert plat.sibling.closed == 1
    assert on_userlands(plat, get("disk"), [Workload("x", command=("true",))],
                        disk_rows) == []


@pytest.mark.parametrize("exc, prefix", [
    (DistroUnavailable("debootstrap exited 1: E: Failed getting release file"),
     "not available: the debian userland cannot be built here: debootstrap exited 1"),
    (NotSupported("no work disk"), "not supported: no work disk"),
    (RuntimeError("guest hung"), "failed: debian userland: RuntimeError: guest hung"),
])
def test_a_userland_that_cannot_be_measured_gives_reason_rows(exc, prefix):
    ms = on_userlands(_Fake(exc), get("startup"), [Workload("noop")], disk_rows)
    assert {m.metric for m in ms} == {"startup", "peak_rss"}
    assert all(m.value is None and m.reason.startswith(prefix) for m in ms)
    assert all(m.conditions == {"userland": "debian"} for m in ms)


def test_status_says_what_doctor_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("VIRTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(distro.shutil, "which", lambda name: None)
    assert distro.status() == ("userland debian: not available, debootstrap is not installed "
                               "(apt-get install debootstrap, or run `make setup`)")
    monkeypatch.setattr(distro.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(distro.os, "geteuid", lambda: 0)
    assert distro.status().startswith("userland debian: built on first use by debootstrap from")


def test_a_skipped_userland_gives_the_primary_rows_with_the_reason():
    from types import SimpleNamespace

    from virtbench.experiments.shared.userland import QUICK_SKIPS_USERLANDS, on_userlands

    def never(_plat):
        raise AssertionError("a skipped userland is not measured")

    plat = SimpleNamespace(userlands=("debian",))
    rows = on_userlands(plat, get("startup"), [Workload("noop")], never, skip=QUICK_SKIPS_USERLANDS)
    assert rows and all(m.value is None and m.reason == QUICK_SKIPS_USERLANDS for m in rows)
    assert {m.conditions["userland"] for m in rows} == {"debian"}


# ---- the full-OS guest (userland debian-systemd) ---------------------------------------------

def test_the_full_os_userland_is_a_declared_condition_with_its_guest_sizes():
    from virtbench.conditions import OPT_IN

    for size in ("512", "1024"):
        catalog.validate("memory", "guest_used", "MiB", {"state": "idle", "guest_memory_mib":
                                                        size, "userland": "debian-systemd"})
    catalog.validate("startup", "systemd_startup_finished", "ms",
                     {"userland": "debian-systemd"})
    catalog.validate("density", "memory_per_instance", "MiB",
                     {"userland": "debian-systemd", "guest_memory_mib": "512"})
    catalog.validate("observability", "probe_syscall_trace", "collected (1/0)",
                     {"userland": "debian-systemd"})
    assert "debian-systemd" in OPT_IN["userland"]  # read only when a reader asks for it
    with pytest.raises(ValueError, match="userland"):
        catalog.validate("memory", "rss", "MiB", {"userland": "systemd"})


def test_the_full_os_packages_add_systemd_to_minbase_and_change_the_cache_key():
    assert "systemd-sysv" in distro.SYSTEMD_PACKAGES and "strace" in distro.SYSTEMD_PACKAGES
    mirror = "http://deb.debian.org/debian"
    assert distro.rootfs_key("bookworm", "minbase", mirror, distro.SYSTEMD_PACKAGES) != \
        distro.rootfs_key("bookworm", "minbase", mirror, distro.PACKAGES)


def test_the_full_os_boots_systemd_from_a_writable_snapshot_of_the_root_disk(tmp_path):
    from virtbench.platforms.vm.fullos import (
        FULLOS_ROOT_INIT,
        SERVICE_SCRIPT,
        UNIT,
        UNIT_FILE,
        fullos_files,
        fullos_links,
    )

    order = [FULLOS_ROOT_INIT.index(m) for m in ("insmod", "mount -t ext4 -o rw /dev/vda",
                                                 "switch_root /newroot /sbin/init")]
    assert order == sorted(order)
    assert "ExecStart=/vb/service" in UNIT_FILE and "WantedBy=multi-user.target" in UNIT_FILE
    assert fullos_files()["vb/service"] == (SERVICE_SCRIPT, 0o755)
    links = fullos_links()
    assert links[f"etc/systemd/system/multi-user.target.wants/{UNIT}"].endswith(UNIT)
    assert links["etc/systemd/system/serial-getty@ttyS0.service"] == "/dev/null"
    order = [SERVICE_SCRIPT.index(m) for m in ("exec > /dev/console", "VB-BOOTED", "VB-START",
                                               "/vb/wl/$wl", "VB-EXIT", "wait \"$started\"",
                                               "/proc/sysrq-trigger")]
    assert order == sorted(order)
    argv = qemu_argv(Machine("microvm", "tcg"), tmp_path / "k", tmp_path / "i",
                     Boot("hog", root=tmp_path / "root.img", root_snapshot=True, trace_s=3))
    drive = argv[argv.index("-drive") + 1]
    assert "snapshot=on" in drive and "readonly=on" not in drive
    assert "vb.trace=3" in argv[argv.index("-append") + 1].split()


def test_quick_leaves_the_full_os_guest_to_a_full_run_with_the_reason_in_its_rows():
    from types import SimpleNamespace

    def measured(_plat):
        return [disk_rows(_Fake())[0]]

    plat = SimpleNamespace(userlands=("debian", "debian-systemd"),
                           with_userland=lambda name: _Fake())
    rows = on_userlands(plat, get("disk"), [Workload("noop")], measured, quick=True)
    skipped = [m for m in rows if m.conditions["userland"] == "debian-systemd"]
    assert skipped and all(m.value is None and m.reason.startswith(
        "not measured with --quick: the full-OS guest") for m in skipped)
    assert [m.value for m in rows if m.conditions["userland"] == "debian"] == [1]
    only = on_userlands(plat, get("disk"), [Workload("noop")], measured, quick=False,
                        names=("debian-systemd",))
    assert [(m.value, m.conditions) for m in only] == [(1, {"userland": "debian-systemd"})]


def test_full_os_rows_are_read_only_when_asked_for():
    data = _rows(("qemu-tcg/microvm", "vm", "noop", 10, None),
                 ("qemu-tcg/microvm", "vm", "noop", 20, {"userland": "debian"}),
                 ("qemu-tcg/microvm", "vm", "noop", 30, {"userland": "debian-systemd"}))
    assert list(data.sample("qemu-tcg/microvm", "artifact_size", "disk")) == [10]
    assert list(data.sample("qemu-tcg/microvm", "artifact_size", "disk",
                            conditions={"userland": "debian-systemd"})) == [30]


class _FakeGuests(Platform):
    """A VM-like variant whose instances are this test process (pure logic of density)."""

    family, variant = "vm", "qemu-tcg/microvm"
    userlands = ("debian", "debian-systemd")
    guest_memory_mib = 256

    def check(self) -> Availability:
        return Availability(True)

    def with_userland(self, name: str) -> _FakeGuests:
        sibling = _FakeGuests()
        sibling.userland, sibling.guest_memory_mib = name, 512
        return sibling

    def instance(self, workload, args=(), **kwargs):
        from contextlib import contextmanager

        from virtbench.platforms.base import Handle

        @contextmanager
        def one():
            yield Handle(pids=[os.getpid()], port=None, ready_ns=0, info={}, who="test")
        return one()


@pytest.mark.parametrize("quick", [False, True])
def test_density_of_the_full_os_guest_carries_its_userland_and_guest_size(quick):
    from virtbench.experiments.base import Params
    from virtbench.experiments.density import measure_density

    params = Params(quick=quick, options={"density_max": 3, "density_time_s": 30})
    rows = measure_density(_FakeGuests(), Workload("mem"), params)
    for m in rows:
        catalog.validate("density", m.metric, m.unit, m.conditions)
    minimal = [m for m in rows if not m.conditions]
    full = [m for m in rows if m.conditions]
    slopes = {"memory_per_instance", "pss_per_instance", "instances_per_8gib"}
    assert {m.metric for m in minimal} >= slopes
    assert {m.conditions.get("userland") for m in full} == {"debian-systemd"}  # not debian
    if quick:
        assert all(m.value is None and "--quick" in m.reason for m in full)
    else:  # the same slopes (values or bounds: the host's memory is noisy)
        assert {m.metric for m in full} >= slopes | {"rss_per_instance"}
        assert all(m.conditions["guest_memory_mib"] == "512" for m in full)


def test_the_in_guest_trace_row_says_it_was_traced_inside_the_guest():
    from virtbench.experiments.observability import guest_trace_row

    seen = guest_trace_row({"write": 40, "fsync": 40, "lseek": 10}, 3.0)
    catalog.validate("observability", seen.metric, seen.unit, seen.conditions)
    assert seen.value == 1.0 and seen.conditions == {"userland": "debian-systemd"}
    assert seen.tags["traced"] == "inside the guest" and seen.tags["fsync_calls"] == "40"
    assert "bpftrace" in seen.tags["ebpf"]
    assert guest_trace_row({"write": 40}, 3.0).value == 0.0  # traced, but no fsync seen
