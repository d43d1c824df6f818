"""Wasmer through the ``wasmer-sdk`` wheel (Wasmer runtime with Cranelift): a third engine.

Local modules run offline: the .wasm bytes are loaded as a package, a sandbox is created
for it and the command runs there. Wasmer caches compiled modules on disk, so a cold run
uses a fresh empty cache and ``startup_aot`` a cache primed by an earlier run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.base import Artifact, Availability, RunOutcome, Timing, Workload

from .common import (
    Limits,
    call_worker,
    file_sha256,
    outcome,
    python_worker,
    staged,
    time_limit,
    tree_size,
)
from .engines import package_dir, package_version
from .inprocess import PROCESS, InProcess, in_process_ns, phase_tags

WORKER = "wasmer_worker.py"
SANDBOX_DIR = "/workspace"  # the only file system a wasmer-sdk sandbox offers (in memory)
WHERE = "wasmer-sdk sandbox /workspace (in-memory file system; no host directory preopened)"
COLD = ("in a fresh {process}, with the Wasmer client already created: from reading the "
        ".wasm file to the command's exit: read + packages.load + sandboxes.create + "
        "command run (compilation with an {cache} compiled-module cache happens in load or "
        "at the first run, inside this interval); {excluded} excluded")


class Wasmer(InProcess):
    variant = "wasmer/cranelift"
    summary = "Wasmer runtime (Cranelift) through the wasmer-sdk wheel, local modules offline"
    engine_label = "Wasmer, Cranelift"
    process = "Python worker process (wasmer-sdk)"
    excluded = "Python start, `import wasmer_sdk` and creating the Wasmer client"
    inst = "a new command (WASIX process) in the existing sandbox"
    stopper = "wasmer-sdk command timeout"
    no_split = ("wasmer-sdk sets up the command's WASI and instantiates it in one call "
                "(sandbox.command(...).run): the suite's part cannot be timed apart")
    warm_skip = 5  # each instance is a command run of several ms
    warm_reps = 30
    max_instances_per_process = (128, "wasmer-sdk 0.5 held 130 commands in one sandbox here, "
                                      "and 250 did not all become ready within 120 s")
    #: wasmer-sdk 0.5 sandboxes cannot map a host directory: a user's directories are
    #: copied into the sandbox's in-memory file system before the command runs
    file_system = "memory"
    no_listen = ("a wasmer-sdk sandbox cannot hand the preview-1 http workload a listening "
                 "socket on a host port")
    sandbox_dir = SANDBOX_DIR

    def check(self) -> Availability:
        version = package_version("wasmer-sdk")
        if version is None:
            return Availability(False, "wasmer-sdk is not installed (a manylinux_2_35 x86_64 "
                                "wheel: it needs glibc >= 2.35)", "pip install wasmer-sdk")
        try:
            call_worker(python_worker(WORKER, {"mode": "probe"}), self.variant, 60.0)
        except (RuntimeError, ValueError) as exc:
            return Availability(False, f"wasmer-sdk {version} does not run here: {exc}",
                                "pip install --force-reinstall wasmer-sdk")
        label = f"wasmer-sdk {version} (Wasmer runtime, Cranelift)"
        return Availability(True, f"runs in-process through {label}", version=label)

    def worker_argv(self, spec: dict, limits: Limits) -> list[str]:
        return python_worker(WORKER, spec)

    def interval(self, cache: str = "empty") -> str:
        return COLD.format(process=self.process, cache=cache, excluded=self.excluded)

    def primed_cache(self, module: Path) -> Path:
        """Wasmer's compiled-module cache holding ``module`` (compiled once, then reused).

        Its record holds the source module's SHA-256, the engine version and a SHA-256 over
        every cached file; a cache that does not match is emptied and primed again.
        """
        version = package_version("wasmer-sdk")
        root = cache_dir() / "wasm" / f"wasmer-sdk-{version}" / \
            hashlib.sha256(module.read_bytes()).hexdigest()[:16]
        record = root.with_name(root.name + ".json")
        want = {"source_sha256": file_sha256(module), "engine": f"wasmer-sdk {version}"}
        try:
            if json.loads(record.read_text()) == {**want, "cache_sha256": _tree_sha256(root)}:
                return root
        except (OSError, ValueError):
            pass
        record.unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        self.call(self.spec("run", module, [], self.limits, cache=str(root)), self.limits)
        record.write_text(json.dumps({**want, "cache_sha256": _tree_sha256(root)}))
        return root

    def run(self, workload: Workload, args: Sequence[str] = (), *,
                timeout: float = 300.0) -> RunOutcome:
        module = self.loaded(workload)
        limits = self.limits.merged(time_s=time_limit(workload, timeout))
        with staged(workload, args, SANDBOX_DIR, under=SANDBOX_DIR) as (guest_args, extra):
            spec = self.spec("run", module, guest_args, limits, **extra)
            answer, done = self.call(spec, limits)
        out = outcome(answer, module, limits, workload=workload,
                      wall_ns=in_process_ns(answer), interval=self.interval(), done=done,
                      rss_of=self.process, stopper=self.stopper)
        return replace(out, where=WHERE)

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """Cold start (empty cache), warm starts, and a start from a primed cache."""
        module = self.loaded(workload)
        out = (self.first_start(module, "cold", workload)
               + self.warm_starts(module, workload))
        limits = self.limits.merged(time_s=time_limit(workload, self.limits.time_s))
        cached = self.primed_cache(module)
        with staged(workload, [], SANDBOX_DIR, under=SANDBOX_DIR) as (guest_args, extra):
            answer, done = self.call(self.spec("run", module, guest_args, limits,
                                               cache=str(cached), **extra), limits)
        outcome(answer, module, limits, workload=workload, wall_ns=0, interval="", done=done,
                rss_of="", stopper=self.stopper)
        out.append(Timing("aot", in_process_ns(answer),
                          self.interval(cache="already populated (cache hit: the compiled "
                                              "artifact is loaded, not compiled)"),
                          tags=phase_tags(answer)))
        out.append(Timing("process", done.wall_ns,
                          PROCESS.format(process=self.process, what="load the compiled module "
                                         "from the primed Wasmer cache"),
                          conditions={"module": "precompiled"}))
        return out

    def artifacts(self) -> list[Artifact]:
        """The .wasm modules and the wasmer_sdk package."""
        out = super().artifacts()
        where = package_dir("wasmer_sdk")
        if where is not None:
            out.append(Artifact("engine", tree_size(where), "all files of the installed "
                                "wasmer_sdk Python package (bindings and "
                                "libwasmer_sdk_uniffi.so)"))
        return out


def _tree_sha256(root: Path) -> str:
    """A SHA-256 over the relative paths and contents of every file under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()
