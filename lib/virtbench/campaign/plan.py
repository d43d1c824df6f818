"""A campaign plan (TOML): which experiments, variants, repetitions and options, on which
hosts; parsed and checked before anything is submitted, and expanded into cells.

Example::

    hosts = "all"              # every connected worker, or a list of worker names
    seed = 0                   # interleaving order (as `virtbench run --seed`)
    wait_s = 60                # how long to wait for the hosts at the start
    reconnect_s = 60           # how long a host's worker may be gone before its cells are
                               # reported as not measured

    [[experiment]]
    name = "startup"
    variants = ["native/static", "wasmtime-embedded/cranelift"]   # patterns, as --variant
    reps = 3                   # optional: the experiment's default (quick: its quick default)
    quick = true
    options = {}               # as --option key=value
    hosts = ["kvm-box"]        # optional: only these hosts

An error names the file, the line and the key, and says what is valid.
"""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from virtbench import platforms
from virtbench.experiments import get
from virtbench.experiments.base import Params, check_options, resolve_params

ALL = "all"
HOST_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
TOP_KEYS = {"run_id": "a run id", "hosts": '"all" or a list of worker names',
            "seed": "an integer", "wait_s": "seconds (number)",
            "reconnect_s": "seconds (number)", "experiment": "[[experiment]] tables"}
EXPERIMENT_KEYS = {"name": "an experiment name", "variants": "a list of variant patterns",
                   "reps": "a positive integer", "quick": "true or false",
                   "options": "a table of option = value", "hosts": "a list of worker names"}


class PlanError(ValueError):
    """A plan that cannot be used; the message names file, line and key."""


@dataclass(frozen=True)
class Step:
    """One experiment of a plan, resolved: its variants, parameters and hosts."""

    experiment: str
    variants: tuple[str, ...]
    params: Params
    workloads: tuple[str, ...]
    hosts: tuple[str, ...] | None  # None: every host of the campaign


@dataclass(frozen=True)
class Cell:
    """One cell to measure on one host."""

    host: str
    experiment: str
    variant: str
    workload: str
    rep: int
    params: Params

    @property
    def key(self) -> tuple[str, str, str, int, str]:
        return (self.experiment, self.variant, self.workload, self.rep, self.host)

    def label(self) -> str:
        rep = (f"warm-up {self.rep + 1}" if self.rep < self.params.warmup
               else f"rep {self.rep - self.params.warmup + 1}/{self.params.reps}")
        return f"{self.host}: {self.experiment} {self.variant} {self.workload} {rep}"


@dataclass(frozen=True)
class Plan:
    """A parsed, checked plan."""

    path: Path
    steps: tuple[Step, ...]
    hosts: tuple[str, ...] | None  # None: every connected worker
    seed: int = 0
    wait_s: float = 60.0
    reconnect_s: float = 60.0
    run_id: str | None = None

    def named_hosts(self) -> list[str]:
        """Every host the plan names (top level and per experiment), in order."""
        names = list(self.hosts or [])
        for step in self.steps:
            names += list(step.hosts or [])
        return list(dict.fromkeys(names))

    def cells(self, hosts: list[str]) -> list[Cell]:
        """Every cell on every host, interleaved as the local runner does (repetitions
        outside, variants in a seeded shuffled order inside), host by host."""
        out = []
        for step in self.steps:
            on = [h for h in hosts if step.hosts is None or h in step.hosts]
            order = random.Random(self.seed)
            for rep in range(step.params.warmup + step.params.reps):
                shuffled = list(step.variants)
                order.shuffle(shuffled)
                for variant in shuffled:
                    for wl in step.workloads:
                        out += [Cell(h, step.experiment, variant, wl, rep, step.params)
                                for h in on]
        return out


def _line(text: str, key: str, table: int | None = None) -> int:
    """The line of ``key`` (in the ``table``-th [[experiment]], or at the top), else 1."""
    lines = text.splitlines()
    heads = [i for i, line in enumerate(lines) if re.match(r"^\s*\[\[\s*experiment\s*\]\]", line)]
    if table is None:
        start, stop = 0, heads[0] if heads else len(lines)
    else:
        start = heads[table] if table < len(heads) else 0
        stop = heads[table + 1] if table + 1 < len(heads) else len(lines)
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for i in range(start, stop):
        if pattern.match(lines[i]):
            return i + 1
    return start + 1


def _hosts(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(h, str) for h in value):
        raise ValueError(f"{where}: expected {EXPERIMENT_KEYS['hosts']}, got {value!r}")
    bad = [h for h in value if not HOST_PATTERN.match(h)]
    if bad:
        raise ValueError(f"{where}: invalid host name {bad[0]!r}; use 1-63 letters, digits, "
                         "'.', '_' or '-', starting with a letter or digit")
    return tuple(dict.fromkeys(value))


def _number(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key}: expected {TOP_KEYS[key]} >= 0, got {value!r}")
    return float(value)


def load(path: str | Path) -> Plan:
    """Read and check a plan file (PlanError naming file, line and key)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"{path}: not valid TOML: {exc}") from None
    return parse(data, text, path)


def parse(data: dict, text: str = "", path: Path = Path("<plan>")) -> Plan:
    """Check a parsed plan; ``text`` locates the lines of errors."""
    def fail(key: str, message: str, table: int | None = None) -> PlanError:
        return PlanError(f"{path}:{_line(text, key, table)}: {message}")

    for key in data:
        if key not in TOP_KEYS:
            valid = ", ".join(f"{k} ({v})" for k, v in TOP_KEYS.items())
            raise fail(key, f"unknown key {key!r}; valid: {valid}")
    top: dict = {}
    for key, convert in (("seed", int), ("wait_s", None), ("reconnect_s", None)):
        if key not in data:
            continue
        value = data[key]
        try:
            if convert is int:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"seed: expected an integer, got {value!r}")
                top[key] = value
            else:
                top[key] = _number(value, key)
        except ValueError as exc:
            raise fail(key, str(exc)) from None
    hosts = data.get("hosts", ALL)
    if hosts != ALL:
        try:
            top["hosts"] = _hosts(hosts, "hosts")
        except ValueError as exc:
            raise fail("hosts", f"{exc} (or \"all\")") from None
    run_id = data.get("run_id")
    if run_id is not None:
        from virtbench.results import check_run_id

        try:
            top["run_id"] = check_run_id(run_id) if isinstance(run_id, str) else check_run_id("")
        except ValueError as exc:
            raise fail("run_id", f"run_id: {exc}") from None
    tables = data.get("experiment")
    if not isinstance(tables, list) or not tables:
        raise PlanError(f"{path}: no [[experiment]] table; a plan needs at least one, with "
                        f"keys {', '.join(EXPERIMENT_KEYS)}")
    steps = tuple(_step(t, i, fail, top.get("seed", 0)) for i, t in enumerate(tables))
    for i, step in enumerate(steps):
        extra = [h for h in step.hosts or () if "hosts" in top and h not in top["hosts"]]
        if extra:
            raise fail("hosts", f"experiment #{i + 1} key 'hosts': {extra[0]!r} is not among "
                       f"the plan's hosts ({', '.join(top['hosts'])})", i)
    return Plan(path=path, steps=steps, hosts=top.get("hosts"), seed=top.get("seed", 0),
                wait_s=top.get("wait_s", 60.0), reconnect_s=top.get("reconnect_s", 60.0),
                run_id=top.get("run_id"))


def _step(table: dict, i: int, fail, seed: int) -> Step:
    """One [[experiment]] table, checked."""
    where = f"experiment #{i + 1}"
    for key in table:
        if key not in EXPERIMENT_KEYS:
            valid = ", ".join(f"{k} ({v})" for k, v in EXPERIMENT_KEYS.items())
            raise fail(key, f"{where}: unknown key {key!r}; valid: {valid}", i)
    if "name" not in table:
        raise fail("name", f"{where}: missing key 'name' ({EXPERIMENT_KEYS['name']})", i)
    try:
        experiment = get(str(table["name"]))
    except ValueError as exc:
        raise fail("name", f"{where} key 'name': {exc}", i) from None
    patterns = table.get("variants", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise fail("variants", f"{where} key 'variants': expected "
                   f"{EXPERIMENT_KEYS['variants']}, got {patterns!r}", i)
    try:
        variants = platforms.select((), patterns)
    except ValueError as exc:
        raise fail("variants", f"{where} key 'variants': {exc}", i) from None
    quick = table.get("quick", False)
    if not isinstance(quick, bool):
        raise fail("quick", f"{where} key 'quick': expected true or false, got {quick!r}", i)
    reps = table.get("reps")
    if reps is not None and (isinstance(reps, bool) or not isinstance(reps, int) or reps < 1):
        raise fail("reps", f"{where} key 'reps': expected a positive integer, got {reps!r}", i)
    options = table.get("options", {})
    if not isinstance(options, dict):
        raise fail("options", f"{where} key 'options': expected a table, got {options!r}", i)
    try:
        checked = check_options(experiment, options)
    except ValueError as exc:
        raise fail("options", f"{where} key 'options': {exc}", i) from None
    hosts = None
    if "hosts" in table:
        try:
            hosts = _hosts(table["hosts"], f"{where} key 'hosts'")
        except ValueError as exc:
            raise fail("hosts", str(exc), i) from None
    params = resolve_params(experiment, reps=reps, quick=quick, seed=seed, options=checked)
    return Step(experiment.name, tuple(variants), params, tuple(experiment.workloads), hosts)
