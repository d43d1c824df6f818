"""What every WebAssembly variant shares: module lookup, guard rails and the worker protocol.

An engine that runs inside a language runtime (wasmtime-py, wasmer-sdk, Node's WASI) is
measured in a fresh *worker* process per measurement, so that a cold start is really cold
and memory belongs to one process. A worker prints exactly one ``VB-WORKER {json}`` line;
:func:`parse_worker_line` reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from virtbench.cgroup import Cgroup
from virtbench.formats import (  # noqa: F401 - re-exported
    WasmModuleError,
    check_module,
    exported_functions,
)
from virtbench.platforms.base import (
    Artifact,
    Handle,
    NotSupported,
    Peak,
    RunOutcome,
    Workload,
    substitute_workdir,
)
from virtbench.platforms.readiness import wait_ready
from virtbench.process import Completed, ProcessTimeout, spawn_and_time, start_instance
from virtbench.spec import rewrite_paths, stage_dirs
from virtbench.workloads import build, parse_result_line

GUEST_DIR = "/work"  # where the instance's work directory is preopened
WORKER_MARKER = "VB-WORKER"
DEFAULT_MEMORY_MIB = 1024
DEFAULT_TIME_S = 300.0
WORKER_MARGIN_S = 30.0  # worker start-up and compilation on top of the guest's time limit
#: Untimed, then timed, warm instances per worker. Measured (wasmtime-py 51, noop): the
#: first instance takes ~1-2 ms, instances 1-5 ~1.4x the steady state, which holds from
#: about the 20th on; the median of the next 100 is the reading.
WARM_SKIP = 20
WARM_REPS = 100
DISK_WORKLOADS = ("noop", "cpu", "http")
PACKAGE_DIR = Path(__file__).resolve().parent
LIB_DIR = PACKAGE_DIR.parents[2]


#: Limits a Wasm engine has no notion of; applied to its host process through a cgroup.
HOST_LIMITS = ("cpus", "pids", "nofile")


class GuardRailError(RuntimeError):
    """The module was stopped by its time or memory limit."""


@dataclass(frozen=True)
class Limits:
    """The guard rails every instance runs under: linear memory and wall time."""

    memory_mib: int = DEFAULT_MEMORY_MIB
    time_s: float = DEFAULT_TIME_S

    @property
    def memory_bytes(self) -> int:
        return self.memory_mib << 20

    def merged(self, limits: dict | None = None, time_s: float | None = None) -> Limits:
        """These limits with ``{"memory_mib": .., "time_s": ..}`` and a time limit applied.

        Host limits (see :data:`HOST_LIMITS`) are not the engine's: callers apply them to
        the host process with a cgroup and pass them here only to have them ignored.
        """
        out = self
        if time_s is not None:
            out = replace(out, time_s=float(time_s))
        for key, value in (limits or {}).items():
            if key in HOST_LIMITS:
                continue
            if key not in ("memory_mib", "time_s"):
                raise NotSupported(f"wasm variants take the limits memory_mib and time_s, "
                                   f"not {key!r}")
            out = replace(out, **{key: type(getattr(out, key))(value)})
        return out


def module_for(workload: Workload) -> Path:
    """The .wasm file of a built-in workload (built on demand) or of a user's workload."""
    if workload.builtin:
        return build(workload.name, "wasm")
    if workload.wasm is None:
        raise NotSupported(f"workload {workload.name!r} has no .wasm module")
    return check_module(workload.wasm)


def parse_worker_line(text: str) -> dict:
    """The JSON object of the last ``VB-WORKER {...}`` line in a worker's stdout."""
    for line in reversed(text.splitlines()):
        marker, _, payload = line.strip().partition(" ")
        if marker == WORKER_MARKER:
            try:
                value = json.loads(payload)
            except json.JSONDecodeError as exc:
                raise ValueError(f"malformed {WORKER_MARKER} line: {exc}: {line[:200]!r}") from None
            if not isinstance(value, dict):
                raise ValueError(f"{WORKER_MARKER} line holds no JSON object: {line[:200]!r}")
            return value
    raise ValueError(f"no {WORKER_MARKER} line in the worker output; it ends with: "
                     f"{text.strip()[-500:]!r}")


def memory_dir() -> str | None:
    """/dev/shm when it is a writable directory (a memory file system), else None (the
    system's temporary directory)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def worker_env() -> dict[str, str]:
    """Environment of worker processes: virtbench importable, short Rust error messages."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(LIB_DIR), env.get("PYTHONPATH")) if p)
    env["RUST_BACKTRACE"] = "0"
    return env


def call_worker(argv: Sequence[str], label: str, timeout: float) -> tuple[dict, Completed]:
    """Run a worker to completion; return its JSON answer and the timed process."""
    try:
        done = spawn_and_time(argv, timeout=timeout, env=worker_env())
    except ProcessTimeout:
        raise GuardRailError(f"the {label} worker process did not finish within {timeout:g} s "
                             "and was killed") from None
    try:
        answer = parse_worker_line(done.stdout)
    except ValueError:
        tail = (done.stderr or done.stdout).strip()[-800:]
        raise RuntimeError(f"{label} worker exited {done.returncode} without an answer: "
                           f"{tail}") from None
    if answer.get("error"):
        kind = answer.get("kind", "")
        error = WasmModuleError if kind == "module" else RuntimeError
        raise error(answer["error"])
    return answer, done


def python_worker(script: str, spec: dict) -> list[str]:
    """argv of a Python worker script of this package (``-P``: no script dir on sys.path)."""
    return [sys.executable, "-P", str(PACKAGE_DIR / script), json.dumps(spec)]


def outcome(answer: dict, module: Path, limits: Limits, *, workload: Workload, wall_ns: int,
            interval: str, done: Completed, rss_of: str, stopper: str) -> RunOutcome:
    """A worker's run as a RunOutcome; guard-rail stops and failures raise with the reason."""
    check_guest(answer, module, limits, stopper, workload)
    stdout = answer.get("stdout", "")
    result = parse_result_line(stdout) if workload.prints_result else {}
    return RunOutcome(wall_ns, interval, int(answer.get("exit_code", 0)), stdout, result,
                      done.peak_rss_kib, rss_of, (linear_memory(answer, rss_of),))


def linear_memory(answer: dict, runtime: str) -> Peak:
    """The ``wasm_memory`` peak of a worker's answer: its instance's linear memory after
    ``_start`` returned, or why the runtime did not report it."""
    size = answer.get("linear_memory_bytes")
    if isinstance(size, int):
        return Peak("linear_memory", size, "size of the instance's exported linear memory "
                    "after _start returned (its 64 KiB pages; a linear memory never shrinks, so "
                    "this is its peak), the program's own heap and data as the runtime sees it")
    if "linear_memory_bytes" in answer:
        return Peak("linear_memory", None, "the module exports no linear memory")
    return Peak("linear_memory", None, f"the {runtime} does not report the instance's linear "
                "memory")


def check_guest(answer: dict, module: Path, limits: Limits, stopper: str,
                workload: Workload | None = None) -> None:
    """Raise GuardRailError / RuntimeError unless the guest ran to an accepted exit (0, or
    a user's ``ok_exit``) and its stdout matches the user's success pattern."""
    if answer.get("interrupted"):
        raise GuardRailError(f"{module.name} was stopped at its time limit of "
                             f"{limits.time_s:g} s ({stopper}): {answer.get('trap', '')}".strip())
    if answer.get("trap"):
        raise RuntimeError(f"{module.name} trapped: {answer['trap']}")
    code = int(answer.get("exit_code", 0))
    user = workload.user if workload is not None else None
    if user is not None:
        user.check_outcome(code, answer.get("stdout", ""), module.name,
                           answer.get("stderr", ""))
    elif code != 0:
        tail = (answer.get("stderr") or answer.get("stdout") or "").strip()[-600:]
        raise RuntimeError(f"{module.name} exited {code} (memory limit {limits.memory_mib} MiB)"
                           f": {tail}")


def time_limit(workload: Workload, timeout: float) -> float:
    """The time limit of a user's spec, else ``timeout`` (the caller's, also for a bare
    ``--wasm`` module)."""
    return workload.spec.time_limit_s if workload.spec is not None else timeout


@contextmanager
def staged(workload: Workload, args: Sequence[str], guest_dir: str = GUEST_DIR,
           workdir: bool = True, under: str = "") -> Iterator[tuple[list[str], dict]]:
    """The guest's arguments and what the engine must set up for one run: ``preopen`` (a
    fresh work directory for ``{workdir}``, unless ``workdir`` is false) and, for a user's
    workload, ``preopens`` (fresh copies of its directories: [host, guest] pairs), ``env``,
    ``stdin`` and ``ok_exit``. With ``under`` (a sandbox whose files must all live below
    one directory) a directory's guest path G becomes ``under``/G, and the arguments and
    environment values that start with G are rewritten to it."""
    with tempfile.TemporaryDirectory(prefix="vb-wasm-") as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        extra: dict = {"preopen": str(work), "guest": GUEST_DIR} if workdir else {}
        guest_args = substitute_workdir(args, guest_dir)
        user = workload.user
        if user is not None:
            copies = stage_dirs(user, root)
            moved = {g: under.rstrip("/") + g for g in copies} if under else {}
            extra["preopens"] = [[str(h), moved.get(g, g)] for g, h in copies.items()]
            extra["env"] = user.environment(moved)
            extra["ok_exit"] = list(user.ok_exit)
            if user.stdin is not None:
                extra["stdin"] = str(user.stdin)
            guest_args = [*rewrite_paths(user.args, moved), *guest_args]
        yield guest_args, extra


def size_artifacts(paths: dict[str, Path], kind: str, what: str) -> list[Artifact]:
    """One artifact per workload, with the native static binary's size beside it in a tag."""
    out = []
    for name, path in paths.items():
        native = build(name, "static").stat().st_size
        out.append(Artifact(kind, path.stat().st_size, f"{what} of {name}", workload=name,
                            tags={"native_static_b": str(native)}))
    return out


def tree_size(path: Path) -> int:
    """Bytes of a file, or of every regular file under a directory (no __pycache__)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _sidecar(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def artifact_record(artifact: Path, source: Path, engine: str) -> dict[str, str]:
    """What the sidecar of a compiled artifact must say: its source, engine and own hash."""
    return {"source_sha256": file_sha256(source), "engine": engine,
            "artifact_sha256": file_sha256(artifact)}


def cached_artifact(out: Path, source: Path, engine: str, build: Callable[[Path], None]) -> Path:
    """``out``, compiled from ``source`` by ``engine``; checked before every use and rebuilt
    (``build(path)`` writes it) when missing, altered, or made from another source or engine.

    The sidecar ``<out>.json`` records the SHA-256 of the source module and of the artifact,
    and the engine version: precompiled code is loaded without validation, so it is only
    loaded when all three match.
    """
    try:
        if json.loads(_sidecar(out).read_text()) == artifact_record(out, source, engine):
            return out
    except (OSError, ValueError):
        pass
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        build(tmp)
        record = artifact_record(tmp, source, engine)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    side = _sidecar(out).with_name(f".{_sidecar(out).name}.{os.getpid()}.tmp")
    side.write_text(json.dumps(record))
    os.replace(side, _sidecar(out))
    return out


def start_held(stack: ExitStack, argv: list[str], env: dict[str, str], workload: Workload,
               limits: dict | None, info: dict[str, str], timeout: float,
               port: int | None = None, who: str = "the engine's process") -> Handle:
    """Start a long-running engine process (in a host cgroup when ``limits`` ask for one),
    wait for a built-in workload's ready line, and return its handle; ``stack`` stops it."""
    host = {k: v for k, v in (limits or {}).items() if k in HOST_LIMITS}
    nofile = None
    if set(host) == {"nofile"}:  # an rlimit alone needs no cgroup
        nofile = int(host["nofile"])
        info["limits"] = f"{info.get('limits', '')}; host process RLIMIT_NOFILE {nofile}"
    elif host:
        group = stack.enter_context(Cgroup(host))
        argv = group.wrap(argv)
        info["limits"] = f"{info.get('limits', '')}; host process in {group.describe()}"
    inst = stack.enter_context(start_instance(argv, env=env, nofile=nofile))
    ready = wait_ready(inst, timeout) if workload.prints_result else None
    if ready is not None:
        info["ready_line"] = inst.output[-1]
    return Handle([inst.pid], port=port, ready_ns=ready, info=info, who=who)
