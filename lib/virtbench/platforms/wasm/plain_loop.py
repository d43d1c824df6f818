"""A plain wasmtime-py loop: the reference for the suite's warm Wasm start (``selfcheck``).

``python -P plain_loop.py SPEC_JSON`` prints one JSON line: ``{"times_ns": [...], "version"}``.
It is what a user of the engine writes to time instantiation, with the same WASI
configuration as the suite's worker (the module's name as argv[0], stdout and stderr to
files in ``scratch``): the module is compiled once; each instance is a new Store and
WasiConfig, ``Linker.instantiate`` and ``_start``; ``skip`` untimed instances first. With
``pooling`` the engine uses the pooling instance allocator (through the C API, as the
wrapper has no setter). Nothing of the suite is imported.
"""

from __future__ import annotations

import json
import os
import sys
import time
from importlib import metadata

import wasmtime
from wasmtime import _ffi as ffi

SLOTS = 8


def make_engine(pooling: bool, memory_bytes: int) -> wasmtime.Engine:
    cfg = wasmtime.Config()
    if pooling:
        pool = ffi.wasmtime_pooling_allocation_config_new()
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, SLOTS)
        ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, SLOTS)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, SLOTS)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, memory_bytes)
        ffi.wasmtime_pooling_allocation_strategy_set(cfg.ptr(), pool)
        ffi.wasmtime_pooling_allocation_config_delete(pool)
    return wasmtime.Engine(cfg)


def main(spec: dict) -> dict:
    engine = make_engine(bool(spec.get("pooling")), int(spec["memory_bytes"]))
    module = wasmtime.Module.from_file(engine, spec["module"])
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    out = os.path.join(spec["scratch"], "out")
    err = os.path.join(spec["scratch"], "err")
    skip = int(spec.get("skip", 1))
    times = []
    for i in range(skip + int(spec["reps"])):
        t0 = time.perf_counter_ns()
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = [spec["argv0"]]
        wasi.stdout_file = out
        wasi.stderr_file = err
        store.set_wasi(wasi)
        instance = linker.instantiate(store, module)
        try:
            instance.exports(store)["_start"](store)
        except wasmtime.ExitTrap as exc:
            if exc.code != 0:
                raise
        t1 = time.perf_counter_ns()
        if i >= skip:
            times.append(t1 - t0)
        del instance, store
    return {"times_ns": times, "version": metadata.version("wasmtime")}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))), flush=True)
