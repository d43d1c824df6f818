"""The in-process runner for Node.js (``node:wasi`` on V8), written into the cache as an .mjs.

``node runner.mjs SPEC_JSON`` speaks the worker protocol of ``worker.py`` (modes probe, run,
warm, serve; one ``VB-WORKER {json}`` line). In ``serve`` mode one long-running
instance writes straight to this process's stdout (its ``VB-READY`` line reaches the
harness as it is printed) and blocks in WASI ``poll_oneoff`` on the main thread.
Times are ``process.hrtime.bigint()`` ns.
The guest's ``_start`` runs under ``vm.Script.runInThisContext({timeout})``: a watchdog
thread has V8 terminate the guest at its time limit, as wasmtime's epoch interruption does
(arming it costs about 30 us per run, inside the timed run phase: warm mode with
``unbounded`` also times a series that calls ``_start`` directly); the parent's kill after
a margin is the backstop. The memory limit is the V8 flag
``--wasm-max-mem-pages``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from virtbench.paths import cache_dir

RUNNER_JS = r"""
import { WASI } from 'node:wasi';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';

const MARKER = 'VB-WORKER';
const spec = JSON.parse(process.argv[2]);
const now = () => process.hrtime.bigint();
const since = (t) => Number(now() - t);
let count = 0;
const limitMs = Math.max(1, Math.round((spec.time_s || 300) * 1000));
const startScript = new vm.Script('vbStart()');  // compiled once; each run only arms the watchdog

class ModuleFailure extends Error {}

function load() {
  const t0 = now();
  let bytes;
  try { bytes = fs.readFileSync(spec.module); } catch (e) {
    throw new ModuleFailure(`${spec.module}: cannot read: ${e.message}`);
  }
  const read_ns = since(t0);
  const t1 = now();
  let mod;
  try { mod = new WebAssembly.Module(bytes); } catch (e) {
    throw new ModuleFailure(`${spec.module}: cannot compile: ${e.message}`);
  }
  return [mod, { read_ns, compile_ns: since(t1) }];
}

function runOnce(mod, scratch, direct = false, bounded = true) {
  count += 1;
  const outPath = path.join(scratch, `out${count}`);
  const errPath = path.join(scratch, `err${count}`);
  const t0 = now();
  const out = direct ? 1 : fs.openSync(outPath, 'w');
  const err = direct ? 2 : fs.openSync(errPath, 'w');
  const input = spec.stdin ? fs.openSync(spec.stdin, 'r') : 0;
  const preopens = spec.preopen ? { [spec.guest || '/work']: spec.preopen } : {};
  for (const [host, guest] of spec.preopens || []) preopens[guest] = host;
  const wasi = new WASI({
    version: 'preview1', args: [spec.argv0 || 'module', ...(spec.args || [])],
    env: spec.env || {}, preopens, stdin: input, stdout: out, stderr: err,
    returnOnExit: true,
  });
  const imports = wasi.getImportObject();
  const setup_ns = since(t0);
  const ti = now();
  const instance = new WebAssembly.Instance(mod, imports);
  if (typeof instance.exports._start !== 'function') {
    throw new ModuleFailure(
      `${spec.module} exports no _start function (it is not a WASI command module)`);
  }
  const instantiate_ns = since(ti);
  const t1 = now();
  const result = { exit_code: 0, trap: '', interrupted: false };
  globalThis.vbStart = () => wasi.start(instance);
  try {
    result.exit_code = bounded ? startScript.runInThisContext({ timeout: limitMs })
      : wasi.start(instance);
  } catch (e) {
    result.exit_code = -1;
    result.trap = String((e && e.message) || e);
    result.interrupted = e && e.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT';
  }
  const run_ns = since(t1);
  const memory = instance.exports.memory;
  result.linear_memory_bytes = memory instanceof WebAssembly.Memory
    ? memory.buffer.byteLength : null;
  if (input) fs.closeSync(input);
  if (direct) {
    return [{ ...result, setup_ns, instantiate_ns, run_ns, stdout: '', stderr: '' }, instance];
  }
  fs.closeSync(out);
  fs.closeSync(err);
  Object.assign(result, {
    setup_ns, instantiate_ns, run_ns,
    stdout: fs.readFileSync(outPath, 'utf8'), stderr: fs.readFileSync(errPath, 'utf8'),
  });
  return [result, instance];
}

function main(scratch) {
  const version = { version: process.version, v8: process.versions.v8 };
  if (spec.mode === 'probe') {
    new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    return { ...version, wasi: typeof WASI === 'function' };
  }
  const [mod, phases] = load();
  if (spec.mode === 'run') {
    const [result] = runOnce(mod, scratch);
    return { ...result, ...phases, ...version };
  }
  if (spec.mode === 'warm') {
    const series = (bounded) => {
      const times = { setup: [], engine: [] };
      const skip = spec.skip === undefined ? 1 : spec.skip;
      for (let i = 0; i < skip + (spec.reps || 5); i++) {
        const [result] = runOnce(mod, scratch, false, bounded);
        if (!(spec.ok_exit || [0]).includes(result.exit_code) || result.trap) {
          throw new Error(`warm run failed (exit ${result.exit_code}): ` +
                          `${result.trap || result.stderr.slice(-300)}`);
        }
        if (i >= skip) {
          times.setup.push(result.setup_ns);
          times.engine.push(result.instantiate_ns + result.run_ns);
        }
      }
      return times;
    };
    const out = { ...version, warm: series(true) };
    // the time bound can only be set inside V8: the same series without it, for its cost
    if (spec.unbounded) out.warm_unbounded = series(false);
    return out;
  }
  if (spec.mode === 'serve') {
    if ((spec.count || 1) !== 1) throw new Error('serve holds one instance per node process');
    const [result] = runOnce(mod, scratch, true);
    return { ...result, ...version };
  }
  throw new Error(`unknown mode ${spec.mode}`);
}

const scratch = fs.mkdtempSync(path.join(spec.scratch || os.tmpdir(), 'vb-node-'));
let answer;
try {
  answer = main(scratch);
} catch (e) {
  answer = { error: e instanceof ModuleFailure ? e.message : `${e.name}: ${e.message}`,
             kind: e instanceof ModuleFailure ? 'module' : 'worker' };
} finally {
  fs.rmSync(scratch, { recursive: true, force: true });
}
console.log(`${MARKER} ${JSON.stringify(answer)}`);
"""


def runner_path() -> Path:
    """The runner script in the cache (named by its content, written once)."""
    digest = hashlib.sha256(RUNNER_JS.encode()).hexdigest()[:12]
    path = cache_dir() / "wasm" / "node" / f"runner-{digest}.mjs"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(RUNNER_JS)
        os.replace(tmp, path)
    return path
