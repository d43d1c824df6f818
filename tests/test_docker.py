"""The docker family: parsers over captured output, engine logic, and real containers."""

from __future__ import annotations

import http.client
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from virtbench.catalog import VALUES
from virtbench.cgroup import (
    cgroup_memory,
    parse_flat_keyed,
    parse_mountinfo_cgroups,
    parse_proc_cgroup,
)
from virtbench.experiments.base import Params
from virtbench.experiments.cpu import SMOKE_SIZES, measure_cpu
from virtbench.experiments.disk import disk_rows
from virtbench.experiments.memory import measure_memory
from virtbench.experiments.shared.mem_instance import measure_mem
from virtbench.experiments.startup import startup_rows
from virtbench.platforms.base import Workload
from virtbench.platforms.docker import daemonsetup, procfs
from virtbench.platforms.docker.daemonsetup import (
    EngineError,
    choose_iptables,
    dockerd_failure,
    explain_failure,
)
from virtbench.platforms.docker.engine import DockerEngine
from virtbench.platforms.docker.hybrid import DockerWasmtime
from virtbench.platforms.docker.images import (
    ImageSpec,
    busybox_spec,
    loaded_refs,
    parse_ldd,
    short_start_error,
)
from virtbench.platforms.docker.objects import LABEL, OWNER_LABEL
from virtbench.platforms.docker.procfs import find_processes, mount_points
from virtbench.platforms.docker.variants import DockerRunc, DockerRuncHost

DATA = Path(__file__).parent / "data" / "docker"
CONTAINER_ID = (DATA / "container-id.txt").read_text().strip()


# ---- parsers over captured output ---------------------------------------------------------

def test_proc_cgroup_v1_hybrid_gives_memory_and_unified_paths() -> None:
    groups = parse_proc_cgroup((DATA / "proc-cgroup-v1-hybrid.txt").read_text())
    assert groups["memory"] == f"/docker/{CONTAINER_ID}"
    assert groups[""] == f"/docker/{CONTAINER_ID}"  # the v2 (unified) line "0::/..."
    assert groups["name=systemd"] == f"/docker/{CONTAINER_ID}"
    assert {"cpu", "cpuacct", "pids", "blkio"} <= set(groups)


def test_mountinfo_finds_v1_memory_and_v2_mounts() -> None:
    mounts = parse_mountinfo_cgroups((DATA / "mountinfo-v1-hybrid.txt").read_text())
    assert mounts["memory"] == Path("/sys/fs/cgroup/memory")
    assert mounts[""] == Path("/sys/fs/cgroup/unified")
    assert mounts["cpu"] == Path("/sys/fs/cgroup/cpu")
    assert not any("=" in key for key in mounts)  # name=systemd is not a controller


def test_memory_stat_is_parsed_to_integers() -> None:
    stat = parse_flat_keyed((DATA / "memory-stat-v1.txt").read_text())
    assert stat["rss"] == 57344
    assert stat["cache"] == 606208
    assert stat["total_rss"] == stat["rss"]
    assert all(isinstance(v, int) for v in stat.values())


def test_ldd_lists_libraries_and_loader_without_vdso() -> None:
    paths = parse_ldd((DATA / "ldd-wasmtime.txt").read_text())
    names = [p.name for p in paths]
    assert names == ["libdl.so.2", "libgcc_s.so.1", "libpthread.so.0", "libm.so.6",
                     "libc.so.6", "ld-linux-x86-64.so.2"]
    assert Path("/lib64/ld-linux-x86-64.so.2") in paths
    assert parse_ldd((DATA / "ldd-static.txt").read_text()) == []


def test_mount_points_include_the_data_root_bind_of_a_dockerd() -> None:
    points = mount_points((DATA / "mountinfo-v1-hybrid.txt").read_text())
    assert "/tmp/vbd/data" in points and "/sys/fs/cgroup/memory" in points
    assert all(p.startswith("/") for p in points)
    assert mount_points("1 2 0:1 / /a\\040b rw - tmpfs tmpfs rw") == ["/a b"]


def test_dockerd_iptables_failure_is_explained() -> None:
    reason = dockerd_failure((DATA / "dockerd-iptables-failure.log").read_text())
    assert reason.startswith("failed to start daemon: Error initializing network controller")
    assert "failed to create NAT chain DOCKER" in reason
    assert reason.endswith("(exit status 4)")  # the continuation line is kept
    assert "iptables-legacy" in explain_failure(reason)


def test_a_failed_start_is_shortened_to_the_runtimes_reason() -> None:
    text = ('OCI runtime create failed: container_linux.go:380: starting container process '
            'caused: exec: "/vb/nope": stat /vb/nope: no such file or directory: unknown')
    assert short_start_error(text) == 'exec: "/vb/nope": stat /vb/nope: no such file or directory'
    assert short_start_error("  no exec here ") == "no exec here"


def test_a_load_response_names_the_loaded_images() -> None:
    messages = [{"stream": "Loaded image: user/app:1\n"},
                {"stream": "Loaded image ID: sha256:" + "ab" * 32 + "\n"}, {"status": "x"}]
    assert loaded_refs(messages) == ["user/app:1", "sha256:" + "ab" * 32]


def test_dockerd_pidfile_failure_is_explained() -> None:
    reason = dockerd_failure((DATA / "dockerd-pidfile-failure.log").read_text())
    assert reason.startswith("failed to start daemon: pid file found")
    assert "another dockerd" in explain_failure(reason)


# ---- cgroup reading over a fake tree (v1 from captured files, v2 by layout) ----------------

def _fake_proc(tmp_path: Path, cgroup_text: str, mountinfo: str) -> Path:
    proc = tmp_path / "proc"
    (proc / "42").mkdir(parents=True)
    (proc / "self").mkdir()
    (proc / "42" / "cgroup").write_text(cgroup_text)
    (proc / "self" / "mountinfo").write_text(mountinfo)
    return proc


def test_cgroup_memory_reads_v1_counters(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    group = root / "docker" / CONTAINER_ID
    group.mkdir(parents=True)
    (group / "memory.usage_in_bytes").write_text("651264\n")
    (group / "memory.max_usage_in_bytes").write_text("3829760\n")
    shutil.copy(DATA / "memory-stat-v1.txt", group / "memory.stat")
    mountinfo = f"35 31 0:32 / {root} rw,relatime - cgroup cgroup rw,memory\n"
    proc = _fake_proc(tmp_path, (DATA / "proc-cgroup-v1-hybrid.txt").read_text(), mountinfo)
    mem = cgroup_memory(42, proc)
    assert (mem.version, mem.usage, mem.peak, mem.anon, mem.file) == (1, 651264, 3829760,
                                                                      57344, 606208)
    assert mem.usage_name == "memory.usage_in_bytes"


def test_cgroup_memory_reads_v2_counters(tmp_path: Path) -> None:
    root = tmp_path / "unified"
    group = root / "system.slice" / "docker-abc.scope"
    group.mkdir(parents=True)
    (group / "memory.current").write_text("1048576\n")
    (group / "memory.stat").write_text("anon 65536\nfile 8192\nkernel 4096\n")
    mountinfo = f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n"
    proc = _fake_proc(tmp_path, "0::/system.slice/docker-abc.scope\n", mountinfo)
    mem = cgroup_memory(42, proc)
    assert (mem.version, mem.usage, mem.peak, mem.anon, mem.file) == (2, 1048576, None,
                                                                      65536, 8192)
    assert mem.usage_name == "memory.current"


# ---- images and engine logic (no daemon) --------------------------------------------------

def test_image_tag_follows_content_and_context_is_a_rootfs(tmp_path: Path) -> None:
    exe = tmp_path / "tool"
    exe.write_bytes(b"\x7fELF" + b"\0" * 60)
    data = tmp_path / "data.txt"
    data.write_text("hello")
    spec = ImageSpec("t", {"/tool": exe, "/share/data.txt": data})
    assert spec.tag == ImageSpec("t", {"/tool": exe, "/share/data.txt": data}).tag
    assert spec.tag.startswith("virtbench/t:")
    assert spec.content_size == 64 + 5
    with tarfile.open(fileobj=spec.context()) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert f"LABEL {LABEL}=1" in tar.extractfile("Dockerfile").read().decode()
    assert members["rootfs/tool"].mode == 0o755
    assert members["rootfs/share/data.txt"].mode == 0o644
    assert members["rootfs/work"].isdir()
    before = spec.tag
    data.write_text("changed")
    assert spec.tag != before


class _FakeApi:
    """Records removals; holds containers with given owner labels."""

    def __init__(self, owners: list[str]) -> None:
        self.owners = owners
        self.removed: list[str] = []

    def containers(self, all: bool, filters: dict) -> list[dict]:
        return [{"Id": f"c{i}", "Labels": {LABEL: "1", OWNER_LABEL: o}}
                for i, o in enumerate(self.owners)]

    def remove_container(self, cid: str, force: bool, v: bool) -> None:
        self.removed.append(cid)

    def networks(self, filters: dict) -> list[dict]:
        return []

    def images(self, filters: dict) -> list[dict]:
        return []


def test_leftover_cleanup_spares_containers_of_live_processes() -> None:
    dead = _dead_pid()
    engine = DockerEngine(Path("/nonexistent"))
    engine.client = type("C", (), {"api": _FakeApi([str(os.getpid()), "1", str(dead), ""])})()
    engine.remove_labelled(only_dead_owners=True)
    assert engine.client.api.removed == ["c0", "c2", "c3"]  # pid 1 is alive and not us
    engine.client.api.removed.clear()
    engine.remove_labelled(only_dead_owners=False)
    assert engine.client.api.removed == ["c0", "c1", "c2", "c3"]


def _dead_pid() -> int:
    pid = 4_000_000
    while procfs.pid_alive(pid):
        pid -= 1
    return pid


def test_last_live_user_is_the_one_that_cleans_up(tmp_path: Path) -> None:
    engine = DockerEngine(tmp_path)
    engine._register()
    for pid in ("1", str(_dead_pid()), "junk"):
        (engine.users_dir / pid).touch()
    assert engine.other_users() == [1]
    assert sorted(p.name for p in engine.users_dir.iterdir()) == sorted(["1", str(os.getpid())])
    assert engine._unregister() == [1]  # pid 1 still uses it: no image removal, no stop
    (engine.users_dir / "1").unlink()
    assert engine._unregister() == []


def test_preflight_names_missing_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(EngineError, match="needs root"):
        DockerEngine(Path("/nonexistent")).preflight()


def test_preflight_names_missing_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(daemonsetup, "SYSTEM_DIRS", ())
    with pytest.raises(EngineError, match="dockerd not found") as err:
        DockerEngine(Path("/nonexistent")).preflight()
    assert "docker.io" in err.value.fix


def _fake_tool(directory: Path, name: str, code: int, message: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit {code}\n")
    path.chmod(0o755)


def test_iptables_falls_back_to_legacy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    _fake_tool(tools, "iptables", 4, "Could not fetch rule set generation id")
    for name in ("iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore"):
        _fake_tool(tools, name, 0, "")
    monkeypatch.setenv("PATH", str(tools))
    monkeypatch.setattr(daemonsetup, "SYSTEM_DIRS", ())
    override, what = choose_iptables(tmp_path / "bin")
    assert override == tmp_path / "bin"
    assert os.path.realpath(override / "iptables") == str(tools / "iptables-legacy")
    assert what.startswith("iptables-legacy") and "generation id" in what


def test_iptables_failure_is_precise(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_tool(tmp_path, "iptables", 4, "nf_tables: Could not fetch rule set generation id")
    _fake_tool(tmp_path, "iptables-legacy", 3, "cannot initialize iptables table nat")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(daemonsetup, "SYSTEM_DIRS", ())
    with pytest.raises(EngineError) as err:
        choose_iptables(tmp_path / "bin")
    assert "generation id" in err.value.reason and "table nat" in err.value.reason
    assert "iptables-legacy" in err.value.fix


# ---- real engine and containers -----------------------------------------------------------

def _daemon_processes(root: Path) -> list[int]:
    pids = []
    for name in ("dockerd", "containerd", "containerd-shim-runc-v2"[:15]):
        for pid in find_processes(name):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if str(root) in cmdline:
                pids.append(pid)
    return pids


def _mounts_under(root: Path) -> list[str]:
    return [p for p in mount_points(Path("/proc/self/mountinfo").read_text())
            if p.startswith(str(root))]


@pytest.fixture
def engine_root():
    """A short private engine root (unix socket paths are limited to 108 bytes)."""
    if os.geteuid() != 0:
        pytest.skip("starting dockerd needs root")
    running = find_processes("dockerd")
    if running:
        pytest.skip(f"a dockerd is already running (pid {running[0]}); this test must start "
                    "from no running daemon")
    root = Path(tempfile.mkdtemp(prefix="vbd-", dir="/tmp"))
    try:
        yield root
    finally:
        leftover = _daemon_processes(root)
        for pid in leftover:
            procfs.terminate(pid)
        mounts = _mounts_under(root)
        DockerEngine(root)._unmount_leftovers()
        shutil.rmtree(root, ignore_errors=True)
        assert not leftover, f"daemon processes left running: {leftover}"
        assert not mounts, f"mounts left behind: {mounts}"


def _labelled(client) -> tuple[list, list, list]:
    api = client.api
    return (api.containers(all=True, filters={"label": LABEL}),
            api.images(filters={"label": LABEL}),
            api.networks(filters={"label": LABEL}))


def _get(port: int) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read()
    finally:
        conn.close()


def _native_checksum(millions: int) -> str:
    from virtbench.platforms.native.variants import NativeStatic

    return NativeStatic().run(Workload("cpu"), [str(millions)]).result["checksum"]


def _every_kernel_matches_native(plat) -> None:
    """Every cpu kernel, small, in the container: the experiment checks each checksum
    against native/static's and fails the kernel's rows when it differs."""
    ms = measure_cpu(plat, Workload("cpu"), Params(options=SMOKE_SIZES))
    assert [m.reason for m in ms if m.value is None] == []
    assert {m.conditions["kernel"] for m in ms} == set(VALUES["kernel"])


@pytest.mark.integration
def test_engine_starts_runs_a_container_and_leaves_nothing_behind(engine_root: Path) -> None:
    engine = DockerEngine(engine_root, use_existing=False)
    plat = DockerRunc(engine)
    try:
        avail = plat.availability
        assert avail.available, avail.reason
        dockerd = engine.dockerd_pid
        assert engine.private and dockerd and procfs.pid_alive(dockerd)
        assert "private dockerd started by virtbench" in avail.reason
        assert avail.version.startswith("Docker Engine ")

        out = plat.run(Workload("noop"))
        assert out.returncode == 0 and out.result["workload"] == "noop" and out.wall_ns > 0
        assert plat.run(Workload("cpu"), ["3"]).result["checksum"] == _native_checksum(3)
        _every_kernel_matches_native(plat)

        ms = {(m.metric, m.conditions["network"]): m for m in startup_rows(plat, Workload("noop"))}
        for net in ("bridge", "none"):
            for base in ("startup", "startup_create", "startup_start", "startup_warm",
                         "startup_cold", "startup_load", "startup_remove"):
                assert ms[base, net].value > 0 and ms[base, net].unit == "ms"
            assert ms["startup_create", net].value < ms["startup", net].value
            assert ms["startup_load", net].value < ms["startup_cold", net].value
        assert ms["startup", "bridge"].tags["network"] == "bridge"

        idle = {m.metric: m.value for m in measure_mem(plat, 0)}
        loaded = {m.metric: m.value for m in measure_mem(plat, 16)}
        assert loaded["cgroup_anon"] >= 16 > idle["cgroup_anon"]
        assert loaded["cgroup_usage"] > idle["cgroup_usage"] > 0
        assert idle["shim_rss"] > 0
        assert idle["total"] == pytest.approx(idle["cgroup_usage"] + idle["shim_rss"])
        assert idle["dockerd_rss"] > 0 and "rss" not in idle  # the cgroup, not the processes

        with plat.instance(Workload("http"), port=18931) as handle:
            assert _get(18931) == b"Hello, world\n"
            assert "docker-proxy" in handle.info["path"] and len(handle.pids) == 3
        assert int(handle.info["requests"]) >= 2  # readiness probe + our GET

        served = {(m.metric, m.conditions["state"]): m.value for m in measure_memory(
            plat, Workload("http"), Params(quick=True, options={"http_duration_s": 1}))}
        for state in ("idle", "loaded"):
            # the shim (about 13 MiB) and docker-proxy are host processes of the instance
            assert served["instance_rss", state] > 5
            assert served["instance_footprint", state] > served["instance_cgroup", state] > 0
        assert served["instance_rss", "loaded"] >= served["instance_rss", "idle"]

        shell = plat.run_timed(plat.ensure_image(busybox_spec()),
                               ["/bin/sh", "-c", "echo shell-ok"], "none")
        assert (shell.status, shell.stdout) == (0, "shell-ok\n")

        disk = [m for m in disk_rows(plat) if m.workload == "noop"]
        sizes = {m.metric: m.value for m in disk}
        assert sizes["artifact_size"] >= sizes["image_content_size"] > 0
        assert sizes["image_archive_size"] > sizes["image_content_size"]
    finally:
        plat.close()
    assert not engine.private and not procfs.pid_alive(dockerd)
    assert not engine.socket.exists()
    assert _daemon_processes(engine_root) == []
    assert _mounts_under(engine_root) == []

    # Start the same engine again, without cleaning: nothing labelled may remain.
    again = DockerEngine(engine_root, use_existing=False)
    client = again.acquire(remove_leftovers=False)
    try:
        assert _labelled(client) == ([], [], [])
    finally:
        again.release()
    assert _daemon_processes(engine_root) == []
    assert _mounts_under(engine_root) == []


@pytest.mark.integration
def test_host_network_bind_mount_and_wasm_in_container(engine_root: Path) -> None:
    engine = DockerEngine(engine_root, use_existing=False)
    host, hybrid = DockerRuncHost(engine), DockerWasmtime(engine)
    try:
        assert host.availability.available, host.availability.reason
        with host.instance(Workload("http"), port=18932) as handle:
            assert _get(18932) == b"Hello, world\n"
            assert handle.info["network"] == "host" and len(handle.pids) == 2
        io = host.run(Workload("fileio"), ["{workdir}", "2"])
        assert io.where.startswith("bind mount") and "where" not in io.result
        assert float(io.result["seq_read_mbps"]) > 0

        assert hybrid.availability.available, hybrid.availability.reason
        out = hybrid.run(Workload("cpu"), ["3"])
        assert out.result["checksum"] == _native_checksum(3)
        _every_kernel_matches_native(hybrid)
        mem = {m.metric: m.value for m in measure_mem(hybrid, 0)}
        assert mem["cgroup_usage"] > 0 and mem["shim_rss"] > 0
        with hybrid.instance(Workload("http"), port=18933) as handle:
            assert _get(18933) == b"Hello, world\n"
            assert handle.info["wasmtime"].startswith("wasmtime ")
    finally:
        host.close()
        hybrid.close()
    assert _daemon_processes(engine_root) == []


# ---- a user's own image archive -------------------------------------------------------------

def _rootfs_tar(path: Path, files: dict[str, Path]) -> Path:
    """A root file system tarball: static busybox (with /bin/sh) and ``files``."""
    with tarfile.open(path, "w") as tar:
        tar.add("/bin/busybox", arcname="bin/busybox")
        info = tarfile.TarInfo("bin/sh")
        info.type, info.linkname = tarfile.SYMTYPE, "busybox"
        tar.addfile(info)
        for dest, src in files.items():
            tar.add(src, arcname=dest.lstrip("/"))
    return path


def _users_archive(api, tmp_path: Path) -> Path:
    """What a user brings: an image made outside the suite (``docker import`` of busybox and
    the static cpu and mem workloads), written by ``docker save``, then removed from the
    engine. Another image of the user's, ``user/other:1``, stays in the engine."""
    from virtbench.workloads import build

    files = {f"/vb/{name}": build(name, "static") for name in ("cpu", "mem")}
    api.import_image(src=str(_rootfs_tar(tmp_path / "rootfs.tar", files)),
                     repository="user/app", tag="1")
    api.import_image(src=str(_rootfs_tar(tmp_path / "other.tar", {})),
                     repository="user/other", tag="1")
    archive = tmp_path / "app.tar"
    with open(archive, "wb") as fh:
        for chunk in api.get_image("user/app:1"):
            fh.write(chunk)
    api.remove_image("user/app:1")
    return archive


@pytest.mark.integration
def test_a_users_image_archive_runs_its_command_and_is_removed_after(engine_root: Path,
                                                                     tmp_path: Path) -> None:
    from docker.errors import ImageNotFound

    from virtbench.experiments.disk import measure_disk
    from virtbench.experiments.startup import measure_startup
    from virtbench.platforms.base import NotSupported
    from virtbench.spec import from_flags, from_toml

    engine = DockerEngine(engine_root, use_existing=False)
    plat = DockerRunc(engine)
    try:
        assert plat.availability.available, plat.availability.reason
        api = plat.api
        archive = _users_archive(api, tmp_path)
        spec_file = tmp_path / "app.toml"
        spec_file.write_text('name = "app"\nimage = "app.tar"\n'
                             'command = ["/bin/sh", "-c", "/vb/cpu \\"$@\\" && exit 3", "sh"]\n'
                             'args = ["hash", "2"]\nok_exit = [3]\nsuccess = "checksum="\n')
        wl = Workload.of(from_toml(spec_file))

        rows = measure_startup(plat, wl, Params(quick=True))
        got = {(m.metric, m.conditions.get("network")): m for m in rows if m.value is not None}
        for net in ("bridge", "none"):
            for metric in ("startup", "startup_warm", "startup_cold", "startup_load"):
                assert got[metric, net].value > 0, metric
        assert "from the user's image archive" in got["startup_cold", "bridge"].description
        cpu = measure_cpu(plat, wl, Params(quick=True))
        assert [m.metric for m in cpu] == ["wall_time"] and cpu[0].value > 0
        sizes = {m.metric: m.value for m in measure_disk(plat, wl, Params())}
        assert sizes["image_archive_size"] == archive.stat().st_size
        assert sizes["artifact_size"] > 0

        peaks = {}
        for mib in (8, 32):
            alloc = Workload.of(from_flags(command=f"/vb/mem {mib} 0", image=str(archive),
                                           name="alloc"))
            rows = measure_memory(plat, alloc, Params(quick=True))
            peaks[mib] = {m.metric: m for m in rows}
        assert peaks[32]["cgroup_peak"].value > peaks[8]["cgroup_peak"].value >= 8
        assert "parent cgroup that held only this container" in \
            peaks[8]["cgroup_peak"].description
        assert peaks[8]["peak_rss"].value is None and "no wait4" in peaks[8]["peak_rss"].reason
        assert "shim_peak" in peaks[8]
        assert not [d for d in Path("/sys/fs/cgroup").glob(f"*/virtbench-{os.getpid()}-*")]

        strict = Workload.of(from_flags(base=from_toml(spec_file), ok_exit=[0]))
        with pytest.raises(RuntimeError, match=r"exited 3 \(accepted: 0\)"):
            plat.run(strict)
        missing = Workload.of(from_flags(command="/vb/nope", image=str(archive)))
        with pytest.raises(RuntimeError, match=r'/vb/nope could not be started.*exec: "/vb/no'):
            plat.run(missing)
        with pytest.raises(NotSupported, match="a user's image runs on docker/runc"):
            DockerWasmtime(engine).image_spec(wl)

        # the suite removes what it loaded, never the user's other images
        image_id = plat.image(wl)[0]
        engine.remove_labelled(only_dead_owners=False, images=True)
        with pytest.raises(ImageNotFound):
            api.inspect_image(image_id)
        assert api.inspect_image("user/other:1")["Id"]
        # an image the user loaded is the user's: no cold start, and it stays
        with open(archive, "rb") as fh:
            list(api.load_image(fh))
        cold = [m for m in startup_rows(plat, wl) if m.metric == "startup_cold"]
        assert cold and all("the user's own" in m.reason for m in cold)
        engine.remove_labelled(only_dead_owners=False, images=True)
        assert api.inspect_image(image_id)["RepoTags"] == ["user/app:1"]
    finally:
        plat.close()
    assert _daemon_processes(engine_root) == []
