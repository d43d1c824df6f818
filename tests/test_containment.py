"""Containment and portability, the measured proxies of the security and portability ratings:
the pure judging and unpacking logic, and real runs on each family (marked integration)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import tarfile
from pathlib import Path

import pytest

from virtbench import foreignarch, platforms
from virtbench.experiments.base import Params
from virtbench.experiments.containment import Listener, judge, measure_containment, sentinels
from virtbench.experiments.portability import measure_portability
from virtbench.platforms.base import Portable, Workload
from virtbench.workloads import build

HOST = os.uname().release


def test_judge_counts_what_reached_the_host():
    report = {"file": "1", "process": "0", "loopback": "1", "kernel": HOST}
    got = judge(report, listened=False, host_kernel=HOST, supplied=None)
    # the listener is the judge of the loopback attempt, not the workload's own report
    assert got == {"file": True, "process": False, "loopback": False, "kernel": True,
                   "supplied_kernel": False}
    guest = judge({**report, "kernel": "6.1.0-9-amd64"}, True, HOST, "6.1.0-9-amd64")
    assert guest["kernel"] is False and guest["supplied_kernel"] is True and guest["loopback"]


def test_judge_refuses_a_report_without_an_attempt():
    with pytest.raises(RuntimeError, match="no kernel="):
        judge({"file": "0", "process": "0", "loopback": "0"}, False, HOST, None)


def test_the_listener_records_only_its_token():
    with Listener("tok-123") as listener:
        with socket.create_connection(("127.0.0.1", listener.port)) as conn:
            conn.sendall(b"something else")
    assert listener.received is False
    with Listener("tok-123") as listener:
        with socket.create_connection(("127.0.0.1", listener.port)) as conn:
            conn.sendall(b"tok-123")
    assert listener.received is True


@pytest.mark.integration
def test_the_contain_workload_reaches_everything_as_a_host_process():
    exe = build("contain", "static")
    with sentinels("f00dfeed") as (secret, pid), Listener("f00dfeed") as listener:
        assert Path(f"/proc/{pid}").exists()
        done = subprocess.run([str(exe), str(secret), str(listener.port), "deefd00f"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "file=1 process=1 loopback=1" in done.stdout and f"kernel={HOST}" in done.stdout
    assert listener.received
    assert not secret.exists()  # the sentinels are gone after the block
    bad = subprocess.run([str(exe), str(secret), "0", "x"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "PORT" in bad.stderr


def _measured(variant: str, measure, workload: str) -> list:
    """One quick cell of ``measure`` on ``variant`` (skipped where the variant is unusable)."""
    plat = platforms.create(variant)
    try:
        if not plat.availability.available:
            pytest.skip(f"{variant}: {plat.availability.reason}")
        return measure(plat, Workload(workload), Params(quick=True))
    finally:
        plat.close()


#: What each family leaves in reach, as measured on this kind of host.
EXPECTED_CLOSED = {"native/static": 0.0, "docker/runc": 3.0, "docker/runc-host": 2.0,
                   "wasmtime-cli/jit": 4.0, "qemu-tcg/microvm": 4.0}


@pytest.mark.integration
@pytest.mark.parametrize("variant", sorted(EXPECTED_CLOSED))
def test_containment_on_each_family(variant):
    closed, kernel = _measured(variant, measure_containment, "contain")
    assert closed.metric == "escapes_closed" and kernel.metric == "supplied_kernel_ran"
    assert closed.value == EXPECTED_CLOSED[variant], closed.description
    reached = [a for a in ("file", "process", "loopback", "kernel")
               if closed.tags[f"reached_{a}"] == "1"]
    assert closed.value == 4 - len(reached)
    if variant.startswith("qemu-tcg"):
        assert kernel.value == 1.0 and closed.tags["instance_kernel"] != HOST
    else:
        assert kernel.value == 0.0 and closed.tags["supplied_kernel"] == "none"
    if variant.startswith("wasmtime"):
        assert closed.tags["loopback_api"] == "none"


def _docker_save(tmp_path: Path) -> Path:
    """A ``docker save`` archive of two layers: the second replaces a file of the first."""
    def layer(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o755
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    members = {"l1/layer.tar": layer({"app": b"old", "etc/x": b"1"}),
               "l2/layer.tar": layer({"app": b"new"}),
               "cfg.json": json.dumps({"architecture": "amd64",
                                       "config": {"Entrypoint": ["/app"]}}).encode(),
               "manifest.json": json.dumps([{"Config": "cfg.json",
                                             "Layers": ["l1/layer.tar", "l2/layer.tar"]}])
               .encode()}
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_an_image_archive_unpacks_layer_over_layer(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    config = foreignarch.unpack_image(_docker_save(tmp_path), root)
    assert config["architecture"] == "amd64"
    assert (root / "app").read_bytes() == b"new" and (root / "etc" / "x").read_bytes() == b"1"


def test_an_unknown_artifact_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="valid: program, module, precompiled, image, guest"):
        foreignarch.run_portable(Portable("tarball", tmp_path))


@pytest.mark.integration
def test_an_x86_64_program_does_not_run_on_aarch64_and_says_why():
    if foreignarch.shutil.which(foreignarch.EMULATOR) is None:
        pytest.skip("qemu-user is not installed")
    attempt = foreignarch.run_portable(Portable("program", build("noop", "static")))
    assert attempt.ran is False and "qemu-aarch64" in attempt.command
    assert "ELF" in attempt.seen, attempt.seen


#: Whether each family's artifact of the noop workload runs unchanged on aarch64.
EXPECTED_PORTABLE = {"native/static": 0.0, "docker/runc": 0.0, "wasmtime-cli/jit": 1.0,
                     "qemu-tcg/microvm": 0.0}


@pytest.mark.integration
@pytest.mark.parametrize("variant", sorted(EXPECTED_PORTABLE))
def test_portability_on_each_family(variant):
    missing = [t for t in (foreignarch.EMULATOR, foreignarch.SYSTEM_EMULATOR)
               if foreignarch.shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {missing} (make setup installs them)")
    [row] = _measured(variant, measure_portability, "noop")
    assert row.metric == "runs_on_other_arch"
    assert row.value == EXPECTED_PORTABLE[variant], row.description
    assert row.tags["arch"] == "aarch64" and row.tags["seen"]


@pytest.mark.integration
def test_an_ahead_of_time_variant_is_judged_on_its_module_and_on_the_code_it_deploys():
    if foreignarch.shutil.which(foreignarch.EMULATOR) is None:
        pytest.skip("qemu-user is not installed (make setup installs it)")
    module, compiled = _measured("wasmtime-cli/aot", measure_portability, "noop")
    assert (module.conditions, module.value, module.tags["artifact"]) == ({}, 1.0, "module")
    assert compiled.conditions == {"module": "precompiled"}
    assert compiled.tags["artifact"] == "precompiled" and compiled.value == 0.0
    assert "compiled for architecture" in compiled.tags["seen"], compiled.tags["seen"]


def test_the_embedded_ahead_of_time_code_is_not_run_and_says_why():
    module, compiled = _measured("wasmtime-embedded/aot", measure_portability, "noop")
    assert module.value == 1.0 and compiled.value is None
    assert compiled.conditions == {"module": "precompiled"}
    assert "wasmtime-py" in compiled.reason and "none runs here" in compiled.reason
