"""The WebAssembly family: wasmtime embedded (Cranelift, Winch, Pulley, AOT), the wasmtime
CLI (JIT, AOT, and an older CLI that can serve HTTP on a preopened socket), Node's WASI on
V8, and Wasmer through wasmer-sdk.

Every variant runs WASI preview-1 command modules (the built-in workloads built for
wasm32-wasi, or a user's ``.wasm``) under a memory limit and a time limit; the work
directory of an instance is preopened as ``/work``.

- :mod:`.platform`: what every Wasm variant shares; :mod:`.variants`: the variants that
  differ from their engine's base class in settings only
- :mod:`.embedded`, :mod:`.cli`, :mod:`.node`, :mod:`.wasmer`: one module per engine
  (:mod:`.inprocess` and the worker modules run an engine in a process of its own)
"""

#: The family's variants, in the order of reports: name -> "module:Class".
VARIANTS = {
    "wasmtime-embedded/cranelift": "virtbench.platforms.wasm.variants:Cranelift",
    "wasmtime-embedded/winch": "virtbench.platforms.wasm.variants:Winch",
    "wasmtime-embedded/pulley": "virtbench.platforms.wasm.variants:Pulley",
    "wasmtime-embedded/aot": "virtbench.platforms.wasm.variants:EmbeddedAot",
    "wasmtime-cli/jit": "virtbench.platforms.wasm.variants:Jit",
    "wasmtime-cli/aot": "virtbench.platforms.wasm.variants:CliAot",
    "wasmtime-cli-36/tcplisten": "virtbench.platforms.wasm.cli:Tcplisten36",
    "node-wasi/v8": "virtbench.platforms.wasm.node:NodeWasi",
    "wasmer/cranelift": "virtbench.platforms.wasm.wasmer:Wasmer",
}
