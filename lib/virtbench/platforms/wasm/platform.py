"""The base of every WebAssembly variant: limits, module lookup, its artifacts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from virtbench.platforms.base import Artifact, NotSupported, Platform, Portable, Workload
from virtbench.workloads import NOT_FOR_WASI, build

from .common import DISK_WORKLOADS, Limits, module_for, size_artifacts


class WasmPlatform(Platform):
    """A way of running WASI preview-1 command modules, always under guard rails.

    ``limits`` (linear memory, wall time) apply to every instance; ``run(timeout=)``
    sets the time limit of that run.
    """

    family = "wasm"
    engine_process = True
    engine_label: ClassVar[str] = ""

    def __init__(self) -> None:
        self.limits = Limits()

    def module(self, workload: Workload) -> Path:
        """The .wasm file of ``workload`` (a clear error names a missing or malformed file)."""
        return module_for(workload)

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            self.module(w)

    def collector_route(self) -> tuple[str, str]:
        raise NotSupported(NOT_FOR_WASI["trace"])

    def portable_artifact(self, workload: Workload) -> Portable:
        return Portable("module", self.module(workload), what="the .wasm module")

    def artifacts(self) -> list[Artifact]:
        """The .wasm module of each workload."""
        wasm = {name: build(name, "wasm") for name in DISK_WORKLOADS}
        return size_artifacts(wasm, "workload", "size of the .wasm module")
