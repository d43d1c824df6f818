"""Node.js's built-in WASI (``node:wasi``, preview 1) on V8: a second engine.

V8 compiles with Liftoff (baseline) and tiers hot code up to TurboFan. Node has no
interpreter mode for WebAssembly (``--jitless`` disables WebAssembly). Guard rails:
``--wasm-max-mem-pages`` caps linear memory; ``_start`` runs under a ``vm`` timeout (V8
terminates the guest at its time limit), and the harness kills the node process after a
margin as a backstop.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from virtbench.platforms.base import (
    Artifact,
    Availability,
    RunOutcome,
    Timing,
    Workload,
    which,
)

from .common import Limits, call_worker
from .inprocess import InProcess
from .node_runner import runner_path

KILL_MARGIN_S = 5.0  # node start + compile on top of the guest's time limit
PAGE_BYTES = 65536
# Node 20.20 aborts (uv_mutex_destroy in uvwasi_fd_table_free, from a GC started inside the
# fast-API fd_write) when a second WASI instance with some MiB of memory writes to stdout,
# and segfaults at exit (status 139, after the result line) when a single instance has grown
# its memory to 64 MiB (the cpu workload's chase kernel). Modes that create several instances
# and single runs therefore turn the fast API calls off.
SEVERAL_INSTANCES = ("warm",)
SLOW_API_MODES = (*SEVERAL_INSTANCES, "run")
SLOW_API_FLAG = "--no-turbo-fast-api-calls"


class NodeWasi(InProcess):
    variant = "node-wasi/v8"
    summary = "Node.js node:wasi (preview 1) on V8: Liftoff baseline, TurboFan tier-up"
    engine_label = "V8 Liftoff + TurboFan"
    process = "node process (Node.js, V8 and node:wasi)"
    excluded = "Node.js start"
    inst = "new WASI, new WebAssembly.Instance"
    stopper = "node:vm timeout: V8 terminates the guest"
    engine_part = "new WebAssembly.Instance + wasi.start (_start, under the node:vm timeout)"
    setup_part = ("opening the stdout/stderr files and new WASI (arguments, preopened "
                  "directories) with its import object")
    worker_margin_s = KILL_MARGIN_S
    warm_unbounded = True  # the vm timeout is inside V8: its cost is measured (time_bound=none)
    no_listen = ("node:wasi preopens directories only, so the preview-1 http workload "
                 "cannot be handed a listening socket")
    instances_per_process = False
    no_count = ("a guest blocked in poll_oneoff holds node's only JavaScript thread, so a "
                "second instance could not start (worker_threads are not used)")

    def node(self) -> str | None:
        return which("node")

    def worker_argv(self, spec: dict, limits: Limits) -> list[str]:
        node = self.node()
        if node is None:
            raise RuntimeError("node is not installed")
        pages = max(1, limits.memory_bytes // PAGE_BYTES)
        flags = [SLOW_API_FLAG] if spec.get("mode") in SLOW_API_MODES else []
        return [node, "--no-warnings", f"--wasm-max-mem-pages={pages}", *flags,
                str(runner_path()), json.dumps(spec)]

    def run(self, workload: Workload, args: Sequence[str] = (), *,
            timeout: float = 300.0) -> RunOutcome:
        out = super().run(workload, args, timeout=timeout)
        return replace(out, interval=f"{out.interval}; node runs with {SLOW_API_FLAG} (Node "
                       "20 crashes at exit after a WASI instance grew its memory)")

    def warm_starts(self, module: Path, workload: Workload | None = None) -> list[Timing]:
        return [replace(t, interval=f"{t.interval}; node runs with {SLOW_API_FLAG} (Node 20 "
                        "aborts in uvwasi when several WASI instances run with the fast API "
                        "calls)") for t in super().warm_starts(module, workload)]

    def check(self) -> Availability:
        if self.node() is None:
            return Availability(False, "Node.js is not installed on this machine (no `node` "
                                "on PATH)", "install Node.js 20 or newer (Debian: nodejs)")
        answer, _ = call_worker(self.worker_argv({"mode": "probe"}, self.limits), self.variant,
                                60.0)
        if not answer.get("wasi"):
            return Availability(False, f"node {answer.get('version')} has no node:wasi",
                                "install Node.js 20 or newer")
        label = f"node {answer['version']} (V8 {answer['v8']}, node:wasi preview1)"
        return Availability(True, f"runs {self.node()}", version=label)

    def artifacts(self) -> list[Artifact]:
        """The .wasm modules and the node executable."""
        out = super().artifacts()
        node = self.node()
        if node is not None:
            real = Path(os.path.realpath(node))
            out.append(Artifact("engine", real.stat().st_size, f"size of the node executable "
                                f"{real} (V8 and node:wasi linked in)"))
        return out
