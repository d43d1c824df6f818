"""SQLite's own benchmark, ``speedtest1``, built by the suite from sources it fetches.

- ``test/speedtest1.c`` from Debian's ``sqlite3`` source package (``apt-get source
  --download-only sqlite3``; ``make setup`` adds the ``deb-src`` entry it needs). apt checks
  the ``.dsc`` against Debian's signed index; here the upstream tarball is checked against
  the ``.dsc`` and the extracted file against its pinned SHA-256.
- the SQLite amalgamation ``deps/sqlite3/sqlite3.c`` of the npm package ``better-sqlite3``
  (SQLite 3.40, Debian 12's, does not build for WASI; 3.41 and later do), fetched from
  registry.npmjs.org and checked against its pinned integrity hash.

Both are cached under ``<cache>/sources`` and the programs under ``<cache>/build`` like the
suite's own workloads. Every target gets the same SQLite options; wasm32-wasi adds the WASI
emulation of mmap, getpid and process clocks.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.workloads.build import BuildError, compile_c, register_external

#: speedtest1.c of SQLite 3.40.1 (Debian 12's sqlite3 source package, any revision)
SPEEDTEST1_SHA256 = "3bcf072c8766ca7aa7a6ef28d8976b85f7353071744058f4b132056e747349b1"
NPM_PACKAGE = "better-sqlite3"
NPM_VERSION = "13.2.0"
NPM_INTEGRITY = ("sha512-Z8Q/9x/uNyKxA1v4FNodyItRVRw1TeKBrmj32JhxhR0ceNcBY+wMobt/Bv7M7Tzw"
                 "PAXjnZRtNaEsATnUZSKWZQ==")
NPM_URL = f"https://registry.npmjs.org/{NPM_PACKAGE}/-/{NPM_PACKAGE}-{NPM_VERSION}.tgz"
#: the same on every target: no threads, no extensions, temporary tables in memory
SQLITE_FLAGS = ("-DSQLITE_THREADSAFE=0", "-DSQLITE_OMIT_LOAD_EXTENSION", "-DSQLITE_TEMP_STORE=3")
WASI_FLAGS = ("-D_WASI_EMULATED_MMAN", "-D_WASI_EMULATED_GETPID",
              "-D_WASI_EMULATED_PROCESS_CLOCKS")
WASI_LIBS = ("-lwasi-emulated-mman", "-lwasi-emulated-getpid",
             "-lwasi-emulated-process-clocks")
FETCH_TIMEOUT_S = 300.0
BUILD_TIMEOUT_S = 1200.0


def _sources(cache: Path | None) -> Path:
    return (Path(cache) if cache is not None else cache_dir()) / "sources"


def amalgamation(cache: Path | None = None) -> Path:
    """The directory holding ``sqlite3.c`` and ``sqlite3.h`` (fetched once, verified)."""
    out = _sources(cache) / f"{NPM_PACKAGE}-{NPM_VERSION}"
    if (out / "sqlite3.c").is_file() and (out / "sqlite3.h").is_file():
        return out
    try:
        with urllib.request.urlopen(NPM_URL, timeout=FETCH_TIMEOUT_S) as response:
            data = response.read()
    except OSError as exc:
        raise BuildError(f"cannot fetch {NPM_URL}: {exc}") from None
    algorithm, _, want = NPM_INTEGRITY.partition("-")
    got = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if got != want:
        raise BuildError(f"{NPM_URL}: integrity {algorithm}-{got} is not the pinned "
                         f"{NPM_INTEGRITY}; refusing to build from it")
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=_ensure(out.parent)))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for name in ("sqlite3.c", "sqlite3.h"):
                member = tar.extractfile(f"package/deps/sqlite3/{name}")
                if member is None:
                    raise BuildError(f"{NPM_URL} holds no deps/sqlite3/{name}")
                (tmp / name).write_bytes(member.read())
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dsc_sha256(dsc: str) -> dict[str, str]:
    """File name -> SHA-256 from a ``.dsc``'s Checksums-Sha256 field."""
    field = re.search(r"^Checksums-Sha256:\n((?: .*\n?)+)", dsc, re.M)
    if not field:
        return {}
    return {name: digest for digest, _size, name in
            (line.split() for line in field.group(1).splitlines() if line.strip())}


def speedtest1_source(cache: Path | None = None) -> Path:
    """``speedtest1.c`` (fetched once with ``apt-get source``, verified)."""
    out = _sources(cache) / "sqlite3-speedtest1" / "speedtest1.c"
    if out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == SPEEDTEST1_SHA256:
        return out
    if shutil.which("apt-get") is None:
        raise BuildError("speedtest1.c comes from Debian's sqlite3 source package; this "
                         "machine has no apt-get")
    with tempfile.TemporaryDirectory(prefix="vb-sqlite3-src-") as tmp:
        proc = subprocess.run(["apt-get", "source", "--download-only", "sqlite3"], cwd=tmp,
                              capture_output=True, text=True, timeout=FETCH_TIMEOUT_S)
        if proc.returncode != 0:
            raise BuildError("`apt-get source --download-only sqlite3` failed; it needs a "
                             "deb-src entry (`make setup` adds one) and `apt-get update`",
                             ["apt-get", "source", "--download-only", "sqlite3"],
                             proc.stderr)
        dscs = sorted(Path(tmp).glob("sqlite3_*.dsc"))
        origs = sorted(Path(tmp).glob("sqlite3_*.orig.tar.*"))
        orig = next((o for o in origs if "-www" not in o.name), None)
        if not dscs or orig is None:
            raise BuildError(f"apt-get source sqlite3 gave no .dsc and .orig tarball: "
                             f"{sorted(p.name for p in Path(tmp).iterdir())}")
        want = _dsc_sha256(dscs[-1].read_text()).get(orig.name)
        got = hashlib.sha256(orig.read_bytes()).hexdigest()
        if want != got:
            raise BuildError(f"{orig.name}: SHA-256 {got} does not match its .dsc ({want})")
        with tarfile.open(orig) as tar:
            member = next((m for m in tar.getmembers()
                           if m.name.endswith("/test/speedtest1.c")), None)
            data = tar.extractfile(member).read() if member else b""
    digest = hashlib.sha256(data).hexdigest()
    if digest != SPEEDTEST1_SHA256:
        raise BuildError(f"speedtest1.c from {orig.name} has SHA-256 {digest}, not the "
                         f"pinned {SPEEDTEST1_SHA256} (SQLite 3.40.1's)")
    _ensure(out.parent)
    tmp_file = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp_file.write_bytes(data)
    os.replace(tmp_file, out)
    return out


@register_external("speedtest1")
def build_speedtest1(target: str, cache: Path | None = None) -> Path:
    """``speedtest1`` for ``target`` (native, static or wasm), built once and cached."""
    source = speedtest1_source(cache)
    sqlite = amalgamation(cache)
    flags = [f"-I{sqlite}", *SQLITE_FLAGS, *(WASI_FLAGS if target == "wasm" else ())]
    libs = list(WASI_LIBS) if target == "wasm" else ["-lm"]
    return compile_c("speedtest1", [source, sqlite / "sqlite3.c"], target, flags=flags,
                     libs=libs, cache=cache, timeout=BUILD_TIMEOUT_S)


_CASE = re.compile(r"^\s*(\d+) - (.+?)\.{2,}\s+(\d+\.\d+)s\s*$")
_TOTAL = re.compile(r"^\s*TOTAL\.{2,}\s+(\d+\.\d+)s\s*$")
_VERIFY = re.compile(r"^Verification Hash:\s+(\d+)\s+([0-9a-fA-F]+)\s*$")
_HEAD = re.compile(r"^-- Speedtest1 for SQLite (\S+)")


@dataclass(frozen=True)
class Speedtest1:
    """What one speedtest1 run printed: its test cases, the total, the verification."""

    sqlite: str
    cases: tuple[tuple[str, str, float], ...]  # (number, what it does, seconds)
    total_s: float
    results: int | None  # result values hashed by --verify (the row count check)
    hash: str


def parse_speedtest1(text: str) -> Speedtest1:
    """The cases, total and verification hash of speedtest1's output (a VM console's
    ``\\r\\n`` and interleaved kernel lines are tolerated); ValueError if no TOTAL line."""
    sqlite, cases, total, results, digest = "", [], None, None, ""
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if m := _HEAD.match(line.strip()):
            sqlite = m.group(1)
        elif m := _CASE.match(line):
            cases.append((m.group(1), m.group(2).strip(), float(m.group(3))))
        elif m := _TOTAL.match(line):
            total = float(m.group(1))
        elif m := _VERIFY.match(line.strip()):
            results, digest = int(m.group(1)), m.group(2).lower()
    if total is None or not cases:
        tail = "\n".join(text.strip().splitlines()[-8:])
        raise ValueError(f"no speedtest1 test cases and TOTAL line in the output; it ends "
                         f"with:\n{tail}")
    return Speedtest1(sqlite, tuple(cases), total, results, digest)
