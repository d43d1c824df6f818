"""The base of every WebAssembly variant: limits, module lookup, the cpu rule, memory, disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.results import Measurement
from virtbench.workloads import build

from .common import DENSITY_INSTANCES, DISK_WORKLOADS, Limits, module_for, size_measurements


class WasmPlatform(Platform):
    """A way of running WASI preview-1 command modules, always under guard rails.

    ``limits`` (linear memory, wall time) apply to every instance; ``run(timeout=)``
    sets the time limit of that run.
    """

    family = "wasm"
    engine_label: ClassVar[str] = ""

    def __init__(self) -> None:
        self.limits = Limits()

    def module(self, workload: Workload) -> Path:
        """The .wasm file of ``workload`` (a clear error names a missing or malformed file)."""
        return module_for(workload)

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            self.module(w)

    def memory(self, mib: int) -> list[Measurement]:
        return self.instances_memory(mib, DENSITY_INSTANCES)

    def instances_memory(self, mib: int, count: int) -> list[Measurement]:
        """Memory of ``count`` instances each running ``mem mib``: one, and the marginal."""
        raise NotSupported(f"memory is not implemented for {self.variant}")

    def disk(self) -> list[Measurement]:
        wasm = {name: build(name, "wasm") for name in DISK_WORKLOADS}
        return size_measurements(wasm, "artifact_size", "size of the .wasm module")
