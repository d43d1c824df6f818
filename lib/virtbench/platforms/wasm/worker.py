"""In-process wasmtime runner: ``python -P worker.py SPEC_JSON`` prints one VB-WORKER line.

It runs in a fresh process per measurement so that a cold start is really cold and memory
belongs to one process. Only the standard library and ``wasmtime`` are imported before
the timed work.

Modes (``spec["mode"]``):

- ``probe``: build the engine, compile an empty module; report version and mode.
- ``compile``: compile ``module`` and write ``Module.serialize()`` to ``output``.
- ``run``: read + compile (or deserialize a ``precompiled`` file) + instantiate + run
  ``_start`` once; per-phase times in ns, the guest's stdout/stderr and exit status.
- ``warm``: compile once, then instantiate + run ``skip`` untimed and ``reps`` timed
  instances; each is timed in two phases: ``setup`` (the suite's part: new Store, its
  limits, the WASI config with output files and preopens) and ``engine``
  (``Linker.instantiate`` + ``_start``). With ``pooling`` the same again on an engine using
  the pooling instance allocator; with ``no_limit`` again without ``Store.set_limits``.
- ``serve``: a long-running instance (or ``count`` instances, each its own Store on its
  own thread, all in this one process and engine): the guest's ``_start`` runs (e.g.
  ``mem 0 HOLD_MS``, blocking in WASI ``poll_oneoff``) and once every instance has printed
  its ``VB-READY`` line, the first such line is printed on this process's stdout. The
  process exits when every instance has returned (or when it is signalled).

Guard rails: ``Store.set_limits(memory_size=...)`` caps each instance's linear memory; a
watchdog thread ends this process after ``time_s`` (it prints the answer with
``interrupted`` and exits): the bound is outside the engine, so the module's code carries
no interruption checks. With ``epoch`` (to measure what in-engine bounding costs) the
engine instead compiles epoch-interruption checks and a timer thread bumps the epoch.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import wasmtime
from wasmtime import _ffi as ffi

MARKER = "VB-WORKER"
# wasmtime_strategy_t values of the C API (wasmtime/config.h); the Python wrapper only
# offers "auto" and "cranelift", so Winch is selected through the raw FFI.
STRATEGIES = {"auto": 0, "cranelift": 1, "winch": 2}
EMPTY_MODULE = b"\0asm\x01\x00\x00\x00"


def answer(payload: dict) -> None:
    print(MARKER, json.dumps(payload), flush=True)


WATCHDOG_EXIT = 124  # the exit status of a worker ended by its watchdog
POOL_SLOTS = 8  # instances, memories and tables of the pooling allocator (one live at a time)


def make_engine(spec: dict, pooling: bool = False) -> wasmtime.Engine:
    """The engine of ``spec["engine"]`` (strategy, target); epoch interruption only with
    ``spec["epoch"]``."""
    cfg = wasmtime.Config()
    cfg.epoch_interruption = bool(spec.get("epoch"))
    engine = spec.get("engine", {})
    strategy = engine.get("strategy", "auto")
    if strategy != "auto":
        ffi.wasmtime_config_strategy_set(cfg.ptr(), STRATEGIES[strategy])
    if engine.get("target"):
        cfg.target = engine["target"]
    if pooling:
        slots = POOL_SLOTS
        pool = ffi.wasmtime_pooling_allocation_config_new()
        ffi.wasmtime_pooling_allocation_config_total_core_instances_set(pool, slots)
        ffi.wasmtime_pooling_allocation_config_total_memories_set(pool, slots)
        ffi.wasmtime_pooling_allocation_config_total_tables_set(pool, slots)
        ffi.wasmtime_pooling_allocation_config_max_memory_size_set(pool, spec["memory_bytes"])
        ffi.wasmtime_pooling_allocation_strategy_set(cfg.ptr(), pool)
        ffi.wasmtime_pooling_allocation_config_delete(pool)
    return wasmtime.Engine(cfg)


def arm_time_limit(engine: wasmtime.Engine, spec: dict) -> threading.Timer:
    """After ``spec["time_s"]``: bump the epoch of ``engine`` (with ``spec["epoch"]``: every
    store's deadline is 1), else end this process from the watchdog thread."""
    seconds = float(spec["time_s"])
    timer = threading.Timer(seconds, engine.increment_epoch if spec.get("epoch")
                            else lambda: watchdog_exit(seconds))
    timer.daemon = True
    timer.start()
    return timer


def watchdog_exit(seconds: float) -> None:
    """Report the guest stopped at its time limit and end the process (the engine is not
    asked: its thread may be deep in the guest's code)."""
    answer({"exit_code": -1, "interrupted": True, "stdout": "", "stderr": "",
            "trap": f"watchdog: the worker process was ended at the time limit of "
                    f"{seconds:g} s"})
    os._exit(WATCHDOG_EXIT)


def load(engine: wasmtime.Engine, spec: dict) -> tuple[wasmtime.Module, dict]:
    """Read + compile, or deserialize, the module; the phase times in ns."""
    path = spec["module"]
    try:
        if spec.get("precompiled"):
            t0 = time.perf_counter_ns()
            module = wasmtime.Module.deserialize_file(engine, path)
            return module, {"deserialize_ns": time.perf_counter_ns() - t0}
        t0 = time.perf_counter_ns()
        data = Path(path).read_bytes()
        t1 = time.perf_counter_ns()
        module = wasmtime.Module(engine, data)
        return module, {"read_ns": t1 - t0, "compile_ns": time.perf_counter_ns() - t1}
    except wasmtime.WasmtimeError as exc:
        what = "deserialize" if spec.get("precompiled") else "compile"
        raise ModuleFailure(f"{path}: cannot {what}: {exc}") from None


class ModuleFailure(Exception):
    """The module could not be compiled or deserialized."""


class Runner:
    """Instantiates and runs the module's ``_start`` with WASI, capturing stdout/stderr."""

    def __init__(self, engine: wasmtime.Engine, spec: dict, scratch: str) -> None:
        self.engine = engine
        self.spec = spec
        self.scratch = scratch
        self.linker = wasmtime.Linker(engine)
        self.linker.define_wasi()
        self.count = 0
        self.memory_limit = True  # Store.set_limits(memory_size=...) on every store
        # one pair of output files, truncated per instance (instances one after the other):
        # creating two files per instance costs 0.05-1 ms on ext4, more than the engine
        self.reuse_files = False

    def run(self, module: wasmtime.Module, args: list[str] | None = None) -> tuple[dict, object]:
        """One instance: (result with setup_ns/instantiate_ns/run_ns, the live store)."""
        spec = self.spec
        self.count += 1
        name = "warm" if self.reuse_files else str(self.count)
        out = os.path.join(self.scratch, f"out{name}")
        err = os.path.join(self.scratch, f"err{name}")
        argv = [spec.get("argv0", "module"), *(spec.get("args", []) if args is None else args)]
        t0 = time.perf_counter_ns()
        store = wasmtime.Store(self.engine)
        if self.memory_limit:
            store.set_limits(memory_size=spec["memory_bytes"])
        if spec.get("epoch"):
            store.set_epoch_deadline(1)
        wasi = wasmtime.WasiConfig()
        wasi.argv = argv
        wasi.stdout_file = out
        wasi.stderr_file = err
        if spec.get("preopen"):
            wasi.preopen_dir(spec["preopen"], spec.get("guest", "/work"))
        for host, guest in spec.get("preopens", []):
            wasi.preopen_dir(host, guest)
        if spec.get("env"):
            wasi.env = list(spec["env"].items())
        if spec.get("stdin"):
            wasi.stdin_file = spec["stdin"]
        store.set_wasi(wasi)
        ts = time.perf_counter_ns()
        instance = self.linker.instantiate(store, module)
        t1 = time.perf_counter_ns()
        result = {"exit_code": 0, "trap": "", "interrupted": False}
        try:
            start = instance.exports(store)["_start"]
        except KeyError:
            raise ModuleFailure(f"{spec['module']} exports no _start function (it is not a "
                                "WASI command module)") from None
        try:
            start(store)
        except wasmtime.ExitTrap as exc:
            result["exit_code"] = exc.code
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            message = str(exc)
            result["trap"] = message.strip().splitlines()[-1].strip() if message else "trap"
            result["interrupted"] = isinstance(exc, wasmtime.Trap) and \
                exc.trap_code == wasmtime.TrapCode.INTERRUPT
            result["exit_code"] = -1
        t2 = time.perf_counter_ns()
        result.update(setup_ns=ts - t0, instantiate_ns=t1 - ts, run_ns=t2 - t1,
                      stdout=read_text(out), stderr=read_text(err),
                      linear_memory_bytes=linear_memory_bytes(instance, store))
        return result, store


def linear_memory_bytes(instance: wasmtime.Instance, store: wasmtime.Store) -> int | None:
    """Size of the instance's exported ``memory`` now (None if it exports none)."""
    try:
        memory = instance.exports(store)["memory"]
    except KeyError:
        return None
    return memory.data_len(store) if isinstance(memory, wasmtime.Memory) else None


def read_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def version() -> str:
    return metadata.version("wasmtime")


def main(spec: dict) -> dict:
    mode = spec["mode"]
    engine = make_engine(spec)
    if mode == "probe":
        wasmtime.Module(engine, EMPTY_MODULE)
        return {"version": version(), "is_pulley": engine.is_pulley()}
    if mode == "compile":
        module, _ = load(engine, spec)
        data = module.serialize()
        tmp = spec["output"] + f".{os.getpid()}.tmp"
        Path(tmp).write_bytes(data)
        os.replace(tmp, spec["output"])
        return {"version": version(), "size": len(data)}
    arm_time_limit(engine, spec)
    with tempfile.TemporaryDirectory(prefix="vb-wasmtime-", dir=spec.get("scratch")) as scratch:
        runner = Runner(engine, spec, scratch)
        module, phases = load(engine, spec)
        if mode == "run":
            result, store = runner.run(module)
            result.update(phases, version=version())
            del store
            return result
        if mode == "warm":
            out = {"version": version(), "warm": warm(runner, module)}
            if spec.get("no_limit"):
                unlimited = Runner(engine, spec, scratch)
                unlimited.memory_limit = False
                out["warm_no_limit"] = warm(unlimited, module)
            if spec.get("pooling"):
                pooled = make_engine(spec, pooling=True)
                if spec.get("epoch"):
                    arm_time_limit(pooled, spec)
                pooled_module, _ = load(pooled, spec)
                out["warm_pooling"] = warm(Runner(pooled, spec, scratch), pooled_module)
            return out
        if mode == "serve":
            return serve(runner, module, int(spec.get("count", 1)))
    raise ValueError(f"unknown mode {mode!r}")


READY = "VB-READY"


def serve(runner: Runner, module: wasmtime.Module, count: int) -> dict:
    """Run ``count`` instances of ``module`` on their own threads; echo the first ready line
    once all are ready; wait for them to return."""
    results: list[dict | None] = [None] * count
    firsts = [runner.count + i + 1 for i in range(count)]  # their stdout files out<N>
    # opened before the guests run: a guest that exhausts the process's descriptors (the
    # fd attack) must not keep this thread from reading its ready line
    outs = []
    for n in firsts:
        path = os.path.join(runner.scratch, f"out{n}")
        Path(path).touch()
        outs.append(open(path, "rb"))  # noqa: SIM115 (read while the guest writes)

    def one(i: int) -> None:
        try:
            results[i] = runner.run(module)[0]
        except Exception as exc:  # reported through the answer, never a silent thread death
            results[i] = {"exit_code": -1, "trap": f"{type(exc).__name__}: {exc}",
                          "interrupted": False, "stdout": "", "stderr": ""}

    threads = []
    for i in range(count):
        thread = threading.Thread(target=one, args=(i,), daemon=True)
        thread.start()
        threads.append(thread)
        while runner.count < firsts[i]:  # Runner.run numbers its files in start order
            time.sleep(0.001)
    ready: list[str | None] = [None] * count
    while runner.spec.get("ready", True) and not all(ready):
        for i, out in enumerate(outs):
            if ready[i] is None:
                out.seek(0)
                text = out.read().decode(errors="replace")
                line = next((x for x in text.splitlines() if x.startswith(READY)), None)
                if line is not None:
                    ready[i] = line
                elif results[i] is not None:  # returned before it was ready: say why
                    print(results[i]["stdout"], results[i]["stderr"], sep="\n", flush=True)
                    return {**results[i], "ready": sum(1 for r in ready if r)}
        time.sleep(0.01)
    if ready[0] is not None:
        print(ready[0] + (f" instances={count}" if count > 1 else ""), flush=True)
    for thread in threads:
        thread.join()
    return {"version": version(), "exit_code": 0, "instances": count,
            "stdout": results[0]["stdout"] if results[0] else ""}


def warm(runner: Runner, module: wasmtime.Module) -> dict[str, list[int]]:
    """Per-phase times of ``reps`` instances after ``skip`` untimed ones: ``setup`` (Store,
    limits, WASI config) and ``engine`` (instantiate + _start), in ns."""
    times: dict[str, list[int]] = {"setup": [], "engine": []}
    runner.reuse_files = True
    skip = int(runner.spec.get("skip", 1))
    for i in range(skip + int(runner.spec.get("reps", 5))):
        result, store = runner.run(module)
        del store
        if result["exit_code"] not in runner.spec.get("ok_exit", [0]) or result["trap"]:
            raise RuntimeError(f"warm run failed (exit {result['exit_code']}): "
                               f"{result['trap'] or result['stderr'][-300:]}")
        if i >= skip:
            times["setup"].append(result["setup_ns"])
            times["engine"].append(result["instantiate_ns"] + result["run_ns"])
    return times


if __name__ == "__main__":
    try:
        answer(main(json.loads(sys.argv[1])))
    except ModuleFailure as exc:
        answer({"error": str(exc), "kind": "module"})
    except Exception as exc:  # the parent turns this into an exception with the reason
        answer({"error": f"{type(exc).__name__}: {exc}", "kind": "worker"})
