"""In-process Wasmer runner (wasmer-sdk): ``python -P wasmer_worker.py SPEC_JSON``.

Speaks the protocol of ``worker.py`` (one ``VB-WORKER {json}`` line). The module is loaded
as a package from its bytes (offline), a sandbox is created for it, and the command runs
inside the sandbox; its stdout/stderr are captured by the SDK.

- ``cache`` (a directory) is Wasmer's compiled-module cache; without it a fresh empty
  cache is used, so the run really compiles. With a populated cache, load is a cache hit.
- Guard rails: the SDK's command timeout (``time_s``) and, since wasmer-sdk has no
  per-instance memory limit, the process's RLIMIT_DATA set to its data size at start +
  ``memory_bytes`` per instance + ``RUNTIME_SLACK`` for the runtime.
- Sandboxes have only an in-memory file system under ``/workspace``; no host directory can
  be preopened.
- ``serve``: ``count`` long-running commands (``args`` as given, e.g. ``mem 0 HOLD_MS``)
  in one sandbox of this process; once each has printed ``VB-READY``, the first such line
  is printed on this process's stdout, then the worker waits for the commands to end.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from wasmer_sdk import ExitReason, Wasmer, WasmerError

MARKER = "VB-WORKER"
RUNTIME_SLACK = 16 << 20  # the runtime's own allocations while the guest runs
READY = b"VB-READY"


class ModuleFailure(Exception):
    """The module could not be loaded."""


def limit_memory(spec: dict, instances: int = 1) -> None:
    data_kib = read_proc_status_data()
    limit = data_kib * 1024 + spec["memory_bytes"] * instances + RUNTIME_SLACK
    resource.setrlimit(resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))


def read_proc_status_data() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmData:"):
            return int(line.split()[1])
    return 0


async def load(client: Wasmer, spec: dict):
    t0 = time.perf_counter_ns()
    data = Path(spec["module"]).read_bytes()
    t1 = time.perf_counter_ns()
    try:
        package = await client.packages.load(data)
    except WasmerError as exc:
        raise ModuleFailure(f"{spec['module']}: cannot load: {exc}") from None
    return package, {"read_ns": t1 - t0, "load_ns": time.perf_counter_ns() - t1}


def describe(output) -> dict:
    interrupted = output.reason is ExitReason.TIMEOUT
    return {
        "exit_code": 0 if output.ok else (output.exit_code or -1),
        "trap": "wasmer-sdk command timeout" if interrupted else
        ("" if output.reason is ExitReason.EXITED else f"ended: {output.reason.value}"),
        "interrupted": interrupted,
        "stdout": output.stdout.bytes.decode(errors="replace"),
        "stderr": output.stderr.bytes.decode(errors="replace"),
    }


async def copy_in(sandbox, spec: dict) -> None:
    """A user's directories ([host, guest] pairs) copied into the sandbox's file system."""
    for host, guest in spec.get("preopens", []):
        await sandbox.fs.mkdir(guest, recursive=True)
        for path in sorted(Path(host).rglob("*")):
            inside = f"{guest.rstrip('/')}/{path.relative_to(host)}"
            if path.is_dir():
                await sandbox.fs.mkdir(inside, recursive=True)
            elif path.is_file():
                await sandbox.fs.write(inside, path.read_bytes())


async def run_command(sandbox, package, spec: dict, args: list[str] | None = None) -> dict:
    stdin = Path(spec["stdin"]).read_bytes() if spec.get("stdin") else None
    t0 = time.perf_counter_ns()
    output = await sandbox.command(package, spec.get("args", []) if args is None else args,
                                   env=spec.get("env") or None
                                   ).run(check=False, timeout=float(spec["time_s"]),
                                         stdin=stdin)
    return {**describe(output), "run_ns": time.perf_counter_ns() - t0}


async def hold(sandbox, package, spec: dict):
    """Spawn ``mem MIB HOLD`` in the sandbox and wait until it has touched its buffer."""
    proc = await sandbox.command(package, [*spec["args"], str(spec.get("hold_ms", 120000))]
                                 ).spawn(timeout=float(spec["time_s"]))
    seen = b""
    async for chunk in proc.stdout:
        seen += chunk
        if READY in seen:
            return proc, None
    output = await proc.wait()
    return None, describe(output)


async def spawn_ready(sandbox, package, spec: dict):
    """Spawn the command with ``args`` as given; (process, its VB-READY line) once ready, or
    (None, the outcome) if it ended before."""
    proc = await sandbox.command(package, spec["args"]).spawn(timeout=float(spec["time_s"]))
    if not spec.get("ready", True):
        return proc, ""
    seen = b""
    async for chunk in proc.stdout:
        seen += chunk
        if READY in seen:
            line = seen[seen.index(READY):].split(b"\n", 1)[0]
            return proc, line.decode(errors="replace")
    return None, describe(await proc.wait())


async def serve(sandbox, package, spec: dict) -> dict:
    procs, first = [], None
    for _ in range(int(spec.get("count", 1))):
        proc, got = await spawn_ready(sandbox, package, spec)
        if proc is None:  # ended before it was ready: its output says why
            print(got["stdout"], got["stderr"], sep="\n", flush=True)
            return {**got, "ready": len(procs)}
        procs.append(proc)
        first = got if first is None else first
    if first:
        count = len(procs)
        print(first + (f" instances={count}" if count > 1 else ""), flush=True)
    outputs = [describe(await proc.wait()) for proc in procs]
    return {**outputs[0], "instances": len(procs)}


async def main(spec: dict) -> dict:
    version = {"version": metadata.version("wasmer-sdk")}
    mode = spec["mode"]
    with tempfile.TemporaryDirectory(prefix="vb-wasmer-", dir=spec.get("scratch")) as fresh:
        t0 = time.perf_counter_ns()
        client = Wasmer(cache_root=spec.get("cache") or fresh)
        client_ns = time.perf_counter_ns() - t0
        try:
            if mode == "probe":
                return version
            limit_memory(spec, int(spec.get("instances", spec.get("count", 1))))
            package, phases = await load(client, spec)
            t1 = time.perf_counter_ns()
            sandbox = await client.sandboxes.create(packages=[package])
            phases["sandbox_ns"] = time.perf_counter_ns() - t1
            await copy_in(sandbox, spec)  # not timed: the copy stands for a preopen
            if mode == "run":
                return {**await run_command(sandbox, package, spec), **phases, **version,
                        "client_ns": client_ns}
            if mode == "warm":
                times = []  # the SDK sets up WASI and instantiates in one command call
                skip = int(spec.get("skip", 1))
                for i in range(skip + int(spec.get("reps", 5))):
                    result = await run_command(sandbox, package, spec)
                    if result["exit_code"] not in spec.get("ok_exit", [0]) or result["trap"]:
                        raise RuntimeError(f"warm run failed (exit {result['exit_code']}): "
                                           f"{result['trap']}")
                    if i >= skip:
                        times.append(result["run_ns"])
                return {**version, "warm": {"total": times}}
            if mode == "serve":
                return {**await serve(sandbox, package, spec), **version}
            raise ValueError(f"unknown mode {mode!r}")
        finally:
            await client.close()


if __name__ == "__main__":
    try:
        reply = asyncio.run(main(json.loads(sys.argv[1])))
    except ModuleFailure as exc:
        reply = {"error": str(exc), "kind": "module"}
    except Exception as exc:  # the parent turns this into an exception with the reason
        reply = {"error": f"{type(exc).__name__}: {exc}", "kind": "worker"}
    print(MARKER, json.dumps(reply), flush=True)
