"""Engines embedded in a language runtime, measured through a fresh worker process each time.

A subclass says how to start its worker (``worker_argv``) and describes its phases; the
worker speaks the protocol of ``worker.py`` (modes run, warm, serve). Times inside
the worker are monotonic-clock intervals in ns; the worker process itself is timed from
spawn to exit by :func:`virtbench.process.spawn_and_time`.

Long-running instances (:meth:`InProcess.instance`, for memory, idle CPU, density and isolation)
are a worker in ``serve`` mode started like every child of the suite (own process group,
``PDEATHSIG``, the run marker): the guest runs in it (``mem 0 HOLD_MS`` blocks in WASI
``poll_oneoff``), so the worker is the instance's host process. Variants that can hold
several instances in one engine process take ``count``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import ClassVar

from virtbench.platforms.base import (
    Handle,
    NotSupported,
    RunOutcome,
    Timing,
    Workload,
    substitute_workdir,
)
from virtbench.process import Completed

from .common import (
    GUEST_DIR,
    WARM_REPS,
    WARM_SKIP,
    WORKER_MARGIN_S,
    Limits,
    call_worker,
    check_guest,
    memory_dir,
    outcome,
    staged,
    start_held,
    time_limit,
    worker_env,
)
from .platform import WasmPlatform

SERVE_TIME_S = 3600.0  # time limit of a long-running instance unless limits say otherwise
PHASES = ("read_ns", "compile_ns", "deserialize_ns", "load_ns", "sandbox_ns", "setup_ns",
          "instantiate_ns", "run_ns")
COLD = ("in a fresh {process}, from reading the .wasm file to _start returning: read + "
        "compile ({engine}) + instantiate ({inst}) + run; {excluded} excluded")
AOT = ("in a fresh {process}, from loading the precompiled code ({aot}) to _start returning: "
       "load + instantiate ({inst}) + run; {excluded} excluded")
PROCESS = ("from spawn of a fresh {process} to its exit (wait4): runtime start, {what}, "
           "instantiate, run _start, exit")
WARM = ("median of {n} consecutive instances in one {process}, each from creating the "
        "instance ({inst}) to _start returning, with the module already compiled ({engine}) "
        "and {skip} untimed instances before (the steady state){allocator}")
WARM_ENGINE = ("the engine's part of a warm start: median of {n} consecutive instances in one "
               "{process}, each {engine_part}, after {skip} untimed instances{allocator}")
WARM_SETUP = ("the suite's part of a warm start: median of {n} consecutive instances in one "
              "{process}, each {setup_part}, after {skip} untimed instances{allocator}")
#: The variants' warm-start series: (answer key, interval suffix, conditions).
WARM_SERIES = (
    ("warm", "", {}),
    ("warm_no_limit", "; no Store.set_limits (the engine's default memory limit)",
     {"memory_limit": "off"}),
    ("warm_pooling", "; pooling instance allocator (enabled through the C API "
     "wasmtime_pooling_allocation_strategy_set: the Python wrapper has no setter)",
     {"allocator": "pooling"}),
    ("warm_unbounded", "; _start called directly, without the in-engine time bound",
     {"time_bound": "none"}),
)


def in_process_ns(answer: dict) -> int:
    """Sum of the worker's timed phases (read + compile or load, instantiate, run)."""
    return sum(int(answer[k]) for k in PHASES if k in answer)


def phase_tags(answer: dict) -> dict[str, str]:
    """The worker's phases in ms, as row tags (e.g. ``compile_ms``)."""
    return {k.removesuffix("_ns") + "_ms": f"{int(answer[k]) / 1e6:.4f}"
            for k in PHASES if k in answer}


class InProcess(WasmPlatform):
    """A variant whose engine runs inside a worker process (Python or Node.js)."""

    precompiled: ClassVar[bool] = False
    process: ClassVar[str] = "worker process"  # what the worker process holds
    excluded: ClassVar[str] = "runtime start"  # what the in-process intervals leave out
    inst: ClassVar[str] = ""  # what "instantiate" covers
    aot: ClassVar[str] = ""  # how precompiled code is loaded
    stopper: ClassVar[str] = ""  # what enforces the time limit
    worker_margin_s: ClassVar[float] = WORKER_MARGIN_S
    warm_pooling: ClassVar[bool] = False
    warm_no_limit: ClassVar[bool] = False  # also a warm series without the memory limit
    #: also a warm series without the time bound (an engine bounded only from inside)
    warm_unbounded: ClassVar[bool] = False
    warm_skip: ClassVar[int] = WARM_SKIP
    warm_reps: ClassVar[int] = WARM_REPS
    #: what the engine's and the suite's parts of a warm start cover ("" = not separable)
    engine_part: ClassVar[str] = ""
    setup_part: ClassVar[str] = ""
    no_split: ClassVar[str] = ""  # why the parts cannot be timed apart
    #: why this variant cannot serve the http workload (its guest cannot get a listening socket)
    no_listen: ClassVar[str] = ""
    #: why ``instance(count=n > 1)`` is not offered ("" = n instances in one worker process)
    no_count: ClassVar[str] = ""
    #: where ``{workdir}`` is in the guest; None: a host directory is preopened at GUEST_DIR
    sandbox_dir: ClassVar[str | None] = None
    instances_per_process = True  # unless no_count says why not

    def worker_argv(self, spec: dict, limits: Limits) -> list[str]:
        raise NotImplementedError

    def engine_spec(self) -> dict:
        return {}

    def loaded(self, workload: Workload) -> Path:
        """The file the worker loads for ``workload``."""
        return self.module(workload)

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            self.loaded(w)

    def spec(self, mode: str, module: Path, args: Sequence[str], limits: Limits,
             **extra) -> dict:
        return {"mode": mode, "engine": self.engine_spec(), "module": str(module),
                "argv0": module.stem, "args": list(args), "memory_bytes": limits.memory_bytes,
                "time_s": limits.time_s, "precompiled": self.precompiled, **extra}

    def call(self, spec: dict, limits: Limits) -> tuple[dict, Completed]:
        """Run the worker with a scratch directory that is removed even if it is killed
        (in memory where the host has /dev/shm: the guest's output files are the suite's
        plumbing, and creating them on a busy disk's journal costs up to milliseconds)."""
        with tempfile.TemporaryDirectory(prefix="vb-wasm-scratch-",
                                         dir=memory_dir()) as scratch:
            return call_worker(self.worker_argv({**spec, "scratch": scratch}, limits),
                               self.variant, limits.time_s + self.worker_margin_s)

    def interval(self) -> str:
        template = AOT if self.precompiled else COLD
        return template.format(process=self.process, engine=self.engine_label, inst=self.inst,
                               aot=self.aot, excluded=self.excluded)

    def run(self, workload: Workload, args: Sequence[str] = (), *,
                timeout: float = 300.0) -> RunOutcome:
        module = self.loaded(workload)
        limits = self.limits.merged(time_s=time_limit(workload, timeout))
        with staged(workload, args, self.sandbox_dir or GUEST_DIR,
                    under=self.sandbox_dir or "") as (guest_args, extra):
            spec = self.spec("run", module, guest_args, limits, **extra)
            answer, done = self.call(spec, limits)
        return outcome(answer, module, limits, workload=workload,
                       wall_ns=in_process_ns(answer), interval=self.interval(), done=done,
                       rss_of=self.process, stopper=self.stopper)

    def first_start(self, module: Path, kind: str,
                    workload: Workload | None = None) -> list[Timing]:
        """One run in a fresh worker: its in-process start, the whole process, peak RSS."""
        workload = workload or Workload(module.stem)
        limits = self.limits.merged(time_s=time_limit(workload, self.limits.time_s))
        with staged(workload, [], self.sandbox_dir or GUEST_DIR, workdir=False,
                    under=self.sandbox_dir or "") as (
                guest_args, extra):
            answer, done = self.call(self.spec("run", module, guest_args, limits, **extra),
                                     limits)
        check_guest(answer, module, limits, self.stopper, workload)
        what = "load the precompiled code" if self.precompiled else "read + compile the .wasm"
        return [
            Timing(kind, in_process_ns(answer), self.interval(), tags=phase_tags(answer)),
            Timing("process", done.wall_ns, PROCESS.format(process=self.process, what=what),
                   peak_rss_kib=done.peak_rss_kib, rss_of=self.process),
        ]

    def warm_starts(self, module: Path, workload: Workload | None = None) -> list[Timing]:
        """Warm starts: instantiate an already compiled module and run it, in the steady
        state (median of ``warm_reps`` after ``warm_skip`` untimed); with the engine's part
        (``warm_engine``) and the suite's set-up (``warm_setup``) where they are timed apart.

        A user's workload runs every instance on the same copies of its directories."""
        workload = workload or Workload(module.stem)
        limits = self.limits.merged(time_s=time_limit(workload, self.limits.time_s))
        with staged(workload, [], self.sandbox_dir or GUEST_DIR, workdir=False,
                    under=self.sandbox_dir or "") as (
                guest_args, extra):
            spec = self.spec("warm", module, guest_args, limits, reps=self.warm_reps,
                             skip=self.warm_skip, pooling=self.warm_pooling,
                             no_limit=self.warm_no_limit, unbounded=self.warm_unbounded,
                             **extra)
            answer, _ = self.call(spec, limits)
        return [t for key, suffix, cond in WARM_SERIES if key in answer
                for t in self.warm_timings(answer[key], suffix, cond)]

    def warm_timings(self, series: dict[str, list[int]], suffix: str,
                     conditions: dict[str, str]) -> list[Timing]:
        """The warm, warm_engine and warm_setup timings of one series of the worker's
        answer: ``{"setup": [...], "engine": [...]}`` or, not separable, ``{"total": [...]}``."""
        fmt = {"process": self.process, "skip": self.warm_skip, "allocator": suffix,
               "inst": self.inst, "engine": self.engine_label,
               "engine_part": self.engine_part, "setup_part": self.setup_part}
        if "total" in series:
            total = series["total"]
            parts = [Timing(kind, None, "", conditions=dict(conditions), reason=self.no_split)
                     for kind in ("warm_engine", "warm_setup")]
        else:
            total = [a + b for a, b in zip(series["setup"], series["engine"], strict=True)]
            parts = [Timing("warm_engine", None,
                            WARM_ENGINE.format(n=len(series["engine"]), **fmt),
                            conditions=dict(conditions), samples_ns=tuple(series["engine"])),
                     Timing("warm_setup", None,
                            WARM_SETUP.format(n=len(series["setup"]), **fmt),
                            conditions=dict(conditions), samples_ns=tuple(series["setup"]))]
        return [Timing("warm", None, WARM.format(n=len(total), **fmt),
                       conditions=dict(conditions), samples_ns=tuple(total)), *parts]

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """Cold (or AOT) start in a fresh worker, the whole worker process, warm starts."""
        module = self.loaded(workload)
        if self.precompiled:
            return self.first_start(module, "aot", workload)
        return (self.first_start(module, "cold", workload)
                + self.warm_starts(module, workload))

    @contextmanager
    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0, count: int = 1) -> Iterator[Handle]:
        """A long-running worker process running ``count`` instances of ``workload`` (mode
        ``serve``): an idle ``mem 0 HOLD_MS`` blocks in WASI ``poll_oneoff``. The worker is
        the instance's host process; host limits (cpus, pids, nofile) put it in a cgroup."""
        if workload.builtin and workload.name == "http":
            raise NotSupported(f"{self.variant} cannot serve http: {self.no_listen}")
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        if count > 1 and not self.instances_per_process:
            raise NotSupported(f"{self.variant} holds one instance per process: "
                               f"{self.no_count}")
        lim = Limits(self.limits.memory_mib, SERVE_TIME_S).merged(limits)
        module = self.loaded(workload)
        info = {"engine": self.engine_label, "host_process": self.process,
                "instances_in_process": str(count)}
        with ExitStack() as stack:
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="vb-wasm-scratch-"))
            extra = {"scratch": scratch, "count": count, "ready": workload.prints_result}
            if self.sandbox_dir is None:
                extra["preopen"] = stack.enter_context(
                    tempfile.TemporaryDirectory(prefix="vb-wasm-"))
                extra["guest"] = GUEST_DIR
            guest_args = substitute_workdir(args, self.sandbox_dir or GUEST_DIR)
            argv = self.worker_argv(self.spec("serve", module, guest_args, lim, **extra), lim)
            if limits:
                info["limits"] = (f"{self.variant} memory {lim.memory_mib} MiB per instance, "
                                  f"time {lim.time_s:g} s ({self.stopper})")
            yield start_held(stack, argv, worker_env(), workload, limits, info, timeout, port,
                             who=f"the {self.process} ({self.engine_label})")
