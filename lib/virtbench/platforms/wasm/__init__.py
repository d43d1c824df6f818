"""The WebAssembly family: wasmtime embedded (Cranelift, Winch, Pulley, AOT), the wasmtime
CLI (JIT, AOT, and an older CLI that can serve HTTP on a preopened socket), Node's WASI on
V8, and Wasmer through wasmer-sdk.

Every variant runs WASI preview-1 command modules (the built-in workloads built for
wasm32-wasi, or a user's ``.wasm``) under a memory limit and a time limit; the work
directory of an instance is preopened as ``/work``.
"""
