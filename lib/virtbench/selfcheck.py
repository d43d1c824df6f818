"""``virtbench selfcheck``: the harness's share of a measurement, beside the best standalone tool.

In one invocation, round after round (the checks in a seeded shuffled order per round, the
suite and its reference alternating which goes first), it takes the suite's reading and
the reference's of the same thing on the same binary or module:

- ``native_start``: native/static's start of the no-op (the steady-state reading verdicts
  use, and the first run of a fresh launch helper) / ``hyperfine -N`` on the same file;
- ``warm_wasm``: wasmtime-embedded/cranelift's warm start (and its engine part) / a plain
  wasmtime-py loop with the same WASI configuration, default and pooling allocators;
- ``http``: native/static's requests/s under the suite's http experiment / ``wrk`` run
  directly, with the same parameters, against the same server binary started directly;
- ``wasm_cpu``: a CPU-bound Wasm program (the cpu workload's hash kernel) through
  wasmtime-cli/jit's run / the bare ``wasmtime run`` (each guard rail the suite can add
  is also timed alone: ``-W timeout``, no ``-W max-memory-size``).

Each ratio is computed per round (a round is the statistical unit) and reported as the
median of the rounds with its order-statistic interval. The result goes into the run's
``host.json`` (section ``selfcheck``). It is not a timed test: nothing is asserted here.
"""

from __future__ import annotations

import json
import math
import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from virtbench import hyperfine, platforms
from virtbench.accounting import free_port
from virtbench.experiments.base import Params
from virtbench.experiments.http import WARM_UP_S, measure_http
from virtbench.experiments.shared.serving import wrk_settings
from virtbench.experiments.startup import reading_ns
from virtbench.loadgen import parse_wrk, wait_http
from virtbench.platforms.base import Platform, Workload
from virtbench.platforms.wasm.common import memory_dir, python_worker, worker_env
from virtbench.process import child_env, die_with_parent, spawn_and_time
from virtbench.stats import median_ci
from virtbench.workloads import build


@dataclass(frozen=True)
class Settings:
    """Sizes of one selfcheck: rounds and the work of each reading."""

    rounds: int = 5
    quick: bool = False
    seed: int = 0

    @property
    def hyperfine_runs(self) -> int:
        return 50 if self.quick else 200

    @property
    def loop_reps(self) -> int:
        return 200 if self.quick else 1000

    @property
    def cpu_args(self) -> list[str]:
        return ["hash", "10" if self.quick else "40"]


@dataclass(frozen=True)
class Ratio:
    """numerator / denominator of one round's readings."""

    name: str
    numerator: str
    denominator: str


@dataclass(frozen=True)
class Check:
    """One side-by-side comparison: what it reads per round and the ratios it reports."""

    name: str
    what: str
    unit: str
    readings: dict[str, str]  # reading key -> what it is
    ratios: tuple[Ratio, ...]
    measure: Callable[[Settings, int], dict[str, float]]
    missing: Callable[[], str] = lambda: ""  # why it cannot run here ("" = it can)


class Unavailable(RuntimeError):
    """A check cannot run on this machine; the message says why."""


@contextmanager
def _platform(variant: str) -> Iterator[Platform]:
    with platforms.create(variant) as plat:
        if not plat.availability.available:
            raise Unavailable(f"{variant}: {plat.availability.reason}")
        yield plat


def _ordered(first_suite: bool, suite: Callable[[], dict], reference: Callable[[], dict]
             ) -> dict[str, float]:
    """Both sides' readings, the suite first on even rounds and the reference first on odd."""
    steps = (suite, reference) if first_suite else (reference, suite)
    out: dict[str, float] = {}
    for step in steps:
        out.update(step())
    return out


# -- native start vs hyperfine ------------------------------------------------------------

def _native_start(s: Settings, rnd: int) -> dict[str, float]:
    noop = build("noop", "static")

    def suite() -> dict[str, float]:
        with _platform("native/static") as plat:
            steady, fresh = plat.timed_starts(Workload("noop"))
        return {"suite": reading_ns(steady) / 1e6, "suite_fresh_helper": reading_ns(fresh) / 1e6}

    def reference() -> dict[str, float]:
        done = hyperfine.run_hyperfine([noop], runs=s.hyperfine_runs, warmup=20)
        return {"hyperfine": done.median_s * 1e3}

    return _ordered(rnd % 2 == 0, suite, reference)


def _no_hyperfine() -> str:
    return "" if hyperfine.available() else ("hyperfine is not installed (Debian package "
                                             "hyperfine; run `make setup`)")


# -- warm Wasm start vs a plain wasmtime-py loop ------------------------------------------

def _plain_loop(module: str, pooling: bool, reps: int, memory_bytes: int) -> float:
    """Median ms of the plain loop (``plain_loop.py``) in a fresh Python process."""
    with tempfile.TemporaryDirectory(prefix="vb-plain-", dir=memory_dir()) as scratch:
        spec = {"module": module, "argv0": "noop", "scratch": scratch, "reps": reps,
                "skip": 1, "pooling": pooling, "memory_bytes": memory_bytes}
        proc = subprocess.run(python_worker("plain_loop.py", spec), capture_output=True,
                              text=True, timeout=300, env=worker_env(),
                              preexec_fn=die_with_parent())
    if proc.returncode != 0:
        raise RuntimeError(f"the plain wasmtime-py loop exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-500:]}")
    return statistics.median(json.loads(proc.stdout.strip().splitlines()[-1])["times_ns"]) / 1e6


def _warm_wasm(s: Settings, rnd: int) -> dict[str, float]:
    with _platform("wasmtime-embedded/cranelift") as plat:
        module = plat.loaded(Workload("noop"))

        def suite() -> dict[str, float]:
            out = {}
            for t in plat.warm_starts(module):
                if reading_ns(t) is None or "memory_limit" in t.conditions:
                    continue
                pooled = "_pooling" if t.conditions.get("allocator") == "pooling" else ""
                key = {"warm": "suite", "warm_engine": "suite_engine"}.get(t.kind)
                if key:
                    out[key + pooled] = reading_ns(t) / 1e6
            return out

        def reference() -> dict[str, float]:
            return {f"plain_loop{tag}": _plain_loop(str(module), pooling, s.loop_reps,
                                                    plat.limits.memory_bytes)
                    for tag, pooling in (("", False), ("_pooling", True))}

        return _ordered(rnd % 2 == 0, suite, reference)


def _no_wasmtime_py() -> str:
    from virtbench.platforms.wasm.engines import package_version

    return "" if package_version("wasmtime") else "the wasmtime Python package is not installed"


# -- HTTP: the suite's http experiment vs wrk run directly ---------------------------------

def _wrk_direct(binary: str, cfg: dict) -> float:
    """Requests/s of wrk run directly (after the same warm-up) against the http binary
    started directly on a free loopback port."""
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True, env=child_env(),
                              preexec_fn=die_with_parent())
    try:
        wait_http(port, 10.0, alive=lambda: server.poll() is None)
        url = f"http://127.0.0.1:{port}/"
        common = [f"-t{cfg['threads']}", f"-c{cfg['connections']}", "--latency",
                  "--timeout", "5s", url]
        subprocess.run(["wrk", f"-d{WARM_UP_S}s", *common], capture_output=True,
                       timeout=WARM_UP_S + 60, check=True)
        proc = subprocess.run(["wrk", f"-d{cfg['duration_s']}s", *common], capture_output=True,
                              text=True, timeout=cfg["duration_s"] + 60)
        return parse_wrk(proc.stdout + proc.stderr).requests_per_s
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _http(s: Settings, rnd: int) -> dict[str, float]:
    # the light profile only: the seed profile's 10,000 connections for minutes is not what
    # wrk is set beside here (http_seed_duration_s=0 leaves it out)
    params = Params(quick=s.quick, options={"http_seed_duration_s": 0})
    cfg = wrk_settings(params)

    def suite() -> dict[str, float]:
        with _platform("native/static") as plat:
            rows = measure_http(plat, Workload("http"), params)
        return {"suite": next(m.value for m in rows if m.metric == "requests_per_s"
                              and m.value is not None
                              and m.conditions.get("load", "light") == "light")}

    def reference() -> dict[str, float]:
        return {"wrk_direct": _wrk_direct(str(build("http", "static")), cfg)}

    return _ordered(rnd % 2 == 0, suite, reference)


def _no_wrk() -> str:
    import shutil

    return "" if shutil.which("wrk") else "wrk is not installed (Debian package wrk)"


# -- a CPU-bound Wasm program: through the suite vs the bare engine command ----------------

def _wasm_cpu(s: Settings, rnd: int) -> dict[str, float]:
    with _platform("wasmtime-cli/jit") as plat:
        workload = Workload("cpu")
        module = plat.loaded(workload)
        bare = [str(plat.binary()), "run", "-C", "cache=n", str(module), *s.cpu_args]

        def suite() -> dict[str, float]:
            out = {"suite": plat.run(workload, s.cpu_args).wall_ns / 1e6}
            for key, flags in (("suite_epoch", {"epoch": True}),
                               ("suite_no_memory_limit", {"memory_limit": False})):
                done = plat.launch(workload, module, plat.limits, s.cpu_args, **flags)
                out[key] = done.wall_ns / 1e6
            return out

        def reference() -> dict[str, float]:
            if hyperfine.available():
                done = hyperfine.run_hyperfine(bare, runs=1, warmup=0)
                return {"bare": done.median_s * 1e3}
            return {"bare": spawn_and_time(bare, timeout=300).check().wall_ns / 1e6}

        return _ordered(rnd % 2 == 0, suite, reference)


def _no_wasmtime_cli() -> str:
    from virtbench.platforms.wasm.engines import EngineUnavailable, installed_wasmtime_cli

    try:
        installed_wasmtime_cli()
    except EngineUnavailable as exc:
        return str(exc)
    return ""


CHECKS: tuple[Check, ...] = (
    Check("native_start", "start of the no-op static binary, fork to exit status", "ms",
          {"suite": "native/static startup: median of back-to-back runs in one launch helper "
                    "after 10 untimed (the reading verdicts use)",
           "suite_fresh_helper": "native/static startup, warm_up=none: the first run of a "
                                 "freshly started launch helper",
           "hyperfine": "hyperfine -N --warmup 20 on the same file: median of its runs"},
          (Ratio("suite / hyperfine", "suite", "hyperfine"),
           Ratio("fresh helper / hyperfine", "suite_fresh_helper", "hyperfine")),
          _native_start, _no_hyperfine),
    Check("warm_wasm", "warm start of the no-op module, wasmtime-py, module already compiled",
          "ms",
          {"suite": "wasmtime-embedded/cranelift startup_warm (set-up + instantiate + _start)",
           "suite_engine": "wasmtime-embedded/cranelift startup_warm_engine (instantiate + "
                           "_start)",
           "suite_pooling": "startup_warm, allocator=pooling",
           "suite_engine_pooling": "startup_warm_engine, allocator=pooling",
           "plain_loop": "a plain wasmtime-py loop: new Store + WasiConfig (same argv and "
                         "output files), Linker.instantiate, _start; median after 1 untimed",
           "plain_loop_pooling": "the same loop on an engine with the pooling allocator"},
          (Ratio("suite / plain loop", "suite", "plain_loop"),
           Ratio("suite / plain loop (pooling)", "suite_pooling", "plain_loop_pooling"),
           Ratio("engine part / plain loop", "suite_engine", "plain_loop"),
           Ratio("engine part / plain loop (pooling)", "suite_engine_pooling",
                 "plain_loop_pooling")),
          _warm_wasm, _no_wasmtime_py),
    Check("http", "requests/s of the static http server on loopback (higher is better: a "
          "ratio below 1 is throughput the harness loses)", "req/s",
          {"suite": "native/static requests_per_s (the http experiment)",
           "wrk_direct": "wrk run directly, same -t/-c/-d and warm-up, against the same binary "
                         "started directly"},
          (Ratio("suite / wrk direct", "suite", "wrk_direct"),), _http, _no_wrk),
    Check("wasm_cpu", "run time of the cpu workload's hash kernel under the wasmtime CLI, "
          "spawn to exit (compilation included, -C cache=n on both sides)", "ms",
          {"suite": "wasmtime-cli/jit run, as the cpu experiment runs it",
           "suite_epoch": "the same with -W timeout (epoch interruption compiled in)",
           "suite_no_memory_limit": "the same without -W max-memory-size",
           "bare": "`wasmtime run -C cache=n MODULE hash N` timed by hyperfine (one run per "
                   "round; the suite's launch helper when hyperfine is missing)"},
          (Ratio("suite / bare", "suite", "bare"),
           Ratio("with -W timeout / suite", "suite_epoch", "suite"),
           Ratio("without memory limit / suite", "suite_no_memory_limit", "suite")),
          _wasm_cpu, _no_wasmtime_cli),
)


def check_names(names: Sequence[str]) -> list[Check]:
    """The checks called ``names`` (all when empty); the error lists the valid names."""
    known = {c.name: c for c in CHECKS}
    bad = [n for n in names if n not in known]
    if bad:
        raise ValueError(f"unknown selfcheck {bad[0]!r}; valid: {', '.join(known)}")
    return [known[n] for n in names] if names else list(CHECKS)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def summarize(check: Check, rounds: list[dict[str, float]], reason: str = "") -> dict:
    """One check's section: its readings per round and each ratio's median over the rounds
    with its interval (rounds where a side is missing are left out of that ratio)."""
    out: dict = {"what": check.what, "unit": check.unit, "reason": reason,
                 "readings": {k: {"what": w, "values": [r.get(k) for r in rounds]}
                              for k, w in check.readings.items()},
                 "ratios": {}}
    for ratio in check.ratios:
        per_round = [r[ratio.numerator] / r[ratio.denominator] for r in rounds
                     if r.get(ratio.numerator) and r.get(ratio.denominator)]
        entry: dict = {"numerator": ratio.numerator, "denominator": ratio.denominator,
                       "per_round": per_round, "n": len(per_round)}
        if per_round:
            est = median_ci(per_round)
            entry.update(value=est.value, low=_finite(est.low), high=_finite(est.high),
                         coverage=_finite(est.coverage), text=str(est))
        out["ratios"][ratio.name] = entry
    return out


def run(settings: Settings, names: Sequence[str] = (),
        progress: Callable[[str], None] = lambda _m: None) -> dict:
    """Every chosen check, interleaved over ``settings.rounds`` rounds; the selfcheck
    section (see module docstring). A check that cannot run has a reason and no readings."""
    checks = check_names(names)
    rng = random.Random(settings.seed)
    rounds: dict[str, list[dict[str, float]]] = {c.name: [] for c in checks}
    reasons = {c.name: c.missing() for c in checks}
    started = time.monotonic()
    for rnd in range(settings.rounds):
        order = [c for c in checks if not reasons[c.name]]
        rng.shuffle(order)
        for check in order:
            progress(f"selfcheck round {rnd + 1}/{settings.rounds}: {check.name}")
            try:
                rounds[check.name].append(check.measure(settings, rnd))
            except Unavailable as exc:
                reasons[check.name] = str(exc)
            except Exception as exc:  # noqa: BLE001 - recorded: a failed check is a reason
                reasons[check.name] = f"failed: {type(exc).__name__}: {exc}"
    return {"rounds": settings.rounds, "quick": settings.quick, "seed": settings.seed,
            "duration_s": round(time.monotonic() - started, 1),
            "checks": {c.name: summarize(c, rounds[c.name], reasons[c.name]) for c in checks}}


def format_section(section: dict) -> str:
    """The ratios as text, one line each, with the check's reason where it did not run."""
    lines = [f"selfcheck: {section['rounds']} round(s){' (quick)' if section['quick'] else ''}"
             f", {section['duration_s']} s"]
    for name, check in section["checks"].items():
        if check["reason"]:
            lines.append(f"  {name}: not measured: {check['reason']}")
        for label, ratio in check["ratios"].items():
            shown = ratio.get("text", "no rounds")
            lines.append(f"  {name}: {label} = {shown}")
    return "\n".join(lines)
