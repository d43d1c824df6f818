"""Compile the benchmark workloads (``src/*.c``) for each target, with a content-addressed cache.

Targets:

- ``native``: ``clang -O2 FP_FLAGS -o OUT SRC`` (dynamically linked against the host libc)
- ``static``: ``clang -O2 FP_FLAGS -static -o OUT SRC``
- ``wasm``: ``clang --target=wasm32-wasi --sysroot=SYSROOT -O2 FP_FLAGS -o OUT SRC`` (a WASI
  preview-1 command module)

``FP_FLAGS`` (``-ffp-contract=off -fno-math-errno``) keep floating point bit-identical
across targets.

Artifacts go to ``<cache>/build/<target>/<key>/<workload>[.wasm]`` where ``key`` is the first 16
hex digits of the SHA-256 of the source bytes, the compiler command and ``clang --version``; any
change to one of them gives a fresh directory, and an existing artifact is reused as is.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from virtbench.paths import cache_dir

WORKLOADS = ("noop", "cpu", "mem", "fileio", "http", "hog", "trace", "contain")
#: Workloads that cannot be built for WASI preview 1, and why.
NOT_FOR_WASI = {
    "trace": ("a WASI preview-1 module has no sockets that connect (only sock_accept on a "
              "socket the engine preopened), so it cannot export spans over OTLP/HTTP "
              "itself: it needs an exporter in its host"),
}
#: Helper programs of the harness itself (native targets only), built like the workloads.
TOOLS = ("launch",)
TARGETS = ("native", "static", "wasm")
#: Built-in workloads built from sources the suite fetches (see their modules); each module
#: registers its builder (:func:`register_external`) and the package imports it.
EXTERNAL = ("speedtest1",)
Builder = Callable[[str, Path | None], Path]
_EXTERNAL_BUILDERS: dict[str, Builder] = {}


def register_external(name: str) -> Callable[[Builder], Builder]:
    """Register ``builder(target, cache) -> path`` as the way to build workload ``name``."""
    def add(builder: Builder) -> Builder:
        _EXTERNAL_BUILDERS[name] = builder
        return builder
    return add

SRC_DIR = Path(__file__).resolve().parent / "src"

#: Where WASI sysroots are looked for, in order (after ``$VIRTBENCH_WASI_SYSROOT``).
#: Debian's ``wasi-libc`` puts headers in /usr/include/wasm32-wasi and libraries in
#: /usr/lib/wasm32-wasi, so its sysroot is /usr; wasi-sdk uses share/wasi-sysroot.
WASI_SYSROOT_CANDIDATES = (
    Path("/usr"),
    Path("/usr/share/wasi-sysroot"),
    Path("/opt/wasi-sdk/share/wasi-sysroot"),
    Path("/usr/local/share/wasi-sysroot"),
)

COMPILE_TIMEOUT_S = 180.0
PROBE_TIMEOUT_S = 30.0

_SRC = "{src}"
_OUT = "{out}"


class BuildError(RuntimeError):
    """A workload could not be compiled; the message holds the command and the compiler output."""

    def __init__(self, message: str, command: list[str] | None = None, stderr: str = ""):
        self.command = command
        self.stderr = stderr
        parts = [message]
        if command:
            parts.append(f"command: {shlex.join(command)}")
        if stderr:
            parts.append(f"stderr:\n{stderr.rstrip()}")
        super().__init__("\n".join(parts))


def _check_names(workload: str, target: str) -> None:
    if workload in TOOLS and target != "wasm":
        return
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; valid workloads: {', '.join(WORKLOADS)}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    if target == "wasm" and workload in NOT_FOR_WASI:
        raise BuildError(f"{workload} is not built for wasm: {NOT_FOR_WASI[workload]}")


def source_path(workload: str) -> Path:
    """The C source of ``workload``."""
    _check_names(workload, TARGETS[0])
    return SRC_DIR / f"{workload}.c"


def _clang() -> str | None:
    return shutil.which(os.environ.get("VIRTBENCH_CLANG", "clang"))


def _run_probe(cmd: list[str]) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None


@functools.lru_cache(maxsize=8)
def _clang_version_cached(clang: str, mtime_ns: int) -> str:
    proc = _run_probe([clang, "--version"])
    if proc is None or proc.returncode != 0:
        raise BuildError(
            "cannot run the compiler", [clang, "--version"], proc.stderr if proc else ""
        )
    return proc.stdout


def _clang_version(clang: str) -> str:
    return _clang_version_cached(clang, os.stat(clang).st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _print_file(clang: str, *args: str) -> str:
    """What ``clang ARGS`` prints (``-print-file-name=...`` and the like), or ``""``."""
    proc = _run_probe([clang, *args])
    return proc.stdout.strip() if proc is not None and proc.returncode == 0 else ""


def _clang_major(version: str) -> str:
    """The major version in ``clang --version`` output (Debian packages are named after it)."""
    match = re.search(r"version (\d+)\.", version)
    return match.group(1) if match else "<N>"


def _is_wasi_sysroot(root: Path) -> bool:
    libc = root / "lib" / "wasm32-wasi" / "libc.a"
    headers = (root / "include" / "wasm32-wasi" / "stdio.h", root / "include" / "stdio.h")
    if root == Path("/usr"):
        # /usr/include/stdio.h is the host libc's; only the triple directory counts there.
        headers = headers[:1]
    return libc.is_file() and any(h.is_file() for h in headers)


def wasi_sysroot() -> Path | None:
    """The WASI sysroot: ``$VIRTBENCH_WASI_SYSROOT`` or the first usable candidate."""
    env = os.environ.get("VIRTBENCH_WASI_SYSROOT")
    candidates = [Path(env)] if env else []
    candidates += WASI_SYSROOT_CANDIDATES
    for root in candidates:
        if _is_wasi_sysroot(root):
            return root
    return None


#: Flags of every target: no fused multiply-add (a target with FMA would round differently)
#: and no errno from math functions (sqrt becomes one correctly rounded instruction), so
#: floating-point kernels give bit-identical results on every target.
FP_FLAGS = ["-ffp-contract=off", "-fno-math-errno"]


def _target_flags(target: str, sysroot: Path | None) -> list[str]:
    if target == "native":
        return ["-O2", *FP_FLAGS]
    if target == "static":
        return ["-O2", *FP_FLAGS, "-static"]
    return ["--target=wasm32-wasi", f"--sysroot={sysroot}", "-O2", *FP_FLAGS]


def toolchain_status() -> dict[str, tuple[bool, str]]:
    """For each target: whether it can be built here, and why (or why not)."""
    clang = _clang()
    if clang is None:
        reason = "clang not found on PATH; install the Debian package 'clang'"
        return {target: (False, reason) for target in TARGETS}
    try:
        version = _clang_version(clang).splitlines()[0]
    except (BuildError, OSError, IndexError) as exc:
        reason = f"{clang} does not run: {exc}"
        return {target: (False, reason) for target in TARGETS}

    status: dict[str, tuple[bool, str]] = {}
    crt1 = _print_file(clang, "-print-file-name=crt1.o")
    if not os.path.isabs(crt1):
        status["native"] = (False, "C runtime (crt1.o) not found; install 'libc6-dev'")
    else:
        status["native"] = (True, f"{clang}: {version}")

    libc_a = _print_file(clang, "-print-file-name=libc.a")
    if not status["native"][0]:
        status["static"] = status["native"]
    elif not os.path.isabs(libc_a):
        status["static"] = (False, "static libc (libc.a) not found; install 'libc6-dev'")
    else:
        status["static"] = (True, f"{clang}: {version}, static libc {libc_a}")

    sysroot = wasi_sysroot()
    builtins = _print_file(clang, "--target=wasm32-wasi", "-print-libgcc-file-name")
    linker = _print_file(clang, "--target=wasm32-wasi", "-print-prog-name=wasm-ld")
    if sysroot is None:
        status["wasm"] = (
            False,
            "WASI sysroot not found (no lib/wasm32-wasi/libc.a under "
            + ", ".join(str(p) for p in WASI_SYSROOT_CANDIDATES)
            + "); install 'wasi-libc' or set VIRTBENCH_WASI_SYSROOT",
        )
    elif not builtins or not os.path.isfile(builtins):
        status["wasm"] = (
            False,
            f"wasm32 compiler runtime not found ({builtins or 'libclang_rt.builtins-wasm32.a'});"
            f" install 'libclang-rt-{_clang_major(version)}-dev-wasm32'",
        )
    elif not (os.path.isabs(linker) and os.access(linker, os.X_OK)) and not shutil.which("wasm-ld"):
        status["wasm"] = (False, "wasm-ld not found; install 'lld'")
    else:
        status["wasm"] = (True, f"{clang}: {version}, WASI sysroot {sysroot}")
    return status


def artifact_name(workload: str, target: str) -> str:
    """File name of a built workload: ``<workload>`` or ``<workload>.wasm``."""
    return f"{workload}.wasm" if target == "wasm" else workload


def _cache_key(source: bytes, template: list[str], version: str) -> str:
    digest = hashlib.sha256()
    digest.update(source)
    digest.update(b"\0")
    digest.update("\x1f".join(template).encode())
    digest.update(b"\0")
    digest.update(version.encode())
    return digest.hexdigest()[:16]


#: Extra flags of one workload on one target. The http server's poll() on WASI (wasi-libc)
#: builds its poll_oneoff subscriptions and events on the stack, 80 bytes per descriptor and
#: direction: 10,000 connections need 1.6 MB, more than wasm-ld's default 64 KiB stack (a
#: wasm stack has no guard page: an overflow silently overwrites the module's data).
WORKLOAD_FLAGS: dict[tuple[str, str], tuple[str, ...]] = {
    ("http", "wasm"): ("-Wl,-z,stack-size=12582912",),  # 12 MiB: up to MAX_CONNS = 65536
}


def build(workload: str, target: str, cache: Path | None = None) -> Path:
    """Compile ``workload`` for ``target`` (or reuse the cached artifact) and return its path."""
    if workload in EXTERNAL:
        return _EXTERNAL_BUILDERS[workload](target, cache)
    _check_names(workload, target)
    return compile_c(workload, [source_path(workload)], target, cache=cache,
                     flags=WORKLOAD_FLAGS.get((workload, target), ()))


def compile_c(name: str, sources: list[Path], target: str, *, flags: Iterable[str] = (),
              libs: Iterable[str] = (), cache: Path | None = None,
              timeout: float = COMPILE_TIMEOUT_S) -> Path:
    """Compile C ``sources`` into the program ``name`` for ``target`` with extra ``flags``
    (before the sources) and ``libs`` (after them), cached by the sources' bytes, the
    command and the compiler version; the suite's own workloads and any other C program."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    ok, why = toolchain_status()[target]
    clang = _clang()
    sysroot = wasi_sysroot() if target == "wasm" else None
    if not ok or clang is None:
        raise BuildError(f"cannot build {name} for {target}: {why}")

    source = b"\0".join(Path(src).read_bytes() for src in sources)
    template = [clang, *_target_flags(target, sysroot), *flags, "-o", _OUT,
                *(_SRC if i == 0 else f"{{src{i}}}" for i in range(len(sources))), *libs]
    key = _cache_key(source, template, _clang_version(clang))
    root = Path(cache) if cache is not None else cache_dir()
    out_dir = root / "build" / target / key
    out = out_dir / artifact_name(name, target)
    if out.is_file() and out.stat().st_size > 0:
        return out

    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    names = {_OUT: str(tmp), _SRC: str(sources[0]),
             **{f"{{src{i}}}": str(src) for i, src in enumerate(sources) if i}}
    cmd = [names.get(arg, arg) for arg in template]
    try:
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            raise BuildError(
                f"compiling {name} for {target} timed out after {timeout:.0f} s",
                cmd,
                stderr,
            ) from exc
        except OSError as exc:
            raise BuildError(f"cannot run the compiler: {exc}", cmd) from exc
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
            raise BuildError(
                f"compiling {name} for {target} failed (exit {proc.returncode})",
                cmd,
                proc.stderr,
            )
        tmp.chmod(0o755)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def build_all(
    targets: Iterable[str] = TARGETS,
    cache: Path | None = None,
    *,
    skip_unavailable: bool = False,
) -> dict[tuple[str, str], Path]:
    """Build every workload for each of ``targets``; keys are ``(workload, target)``.

    With ``skip_unavailable``, targets whose toolchain is missing (see
    :func:`toolchain_status`) are left out instead of raising :class:`BuildError`.
    """
    targets = tuple(targets)
    for target in targets:
        _check_names(WORKLOADS[0], target)
    if skip_unavailable:
        status = toolchain_status()
        targets = tuple(t for t in targets if status[t][0])
    return {(w, t): build(w, t, cache) for t in targets for w in WORKLOADS
            if not (t == "wasm" and w in NOT_FOR_WASI)}
