"""The client side of a campaign: submit every cell pinned to its host, write each finished
cell into ``datasets/<run_id>/`` as it arrives, and report the cells of a host whose worker
left.

The run directory is an ordinary run (``results.csv``, ``cells.jsonl``, locked by this
process) whose rows and cell records carry the host that measured them; ``host.json`` is an
index of the hosts (``hosts``: name -> file and identity) and ``hosts/<name>.json`` is each
host's own host.json. A cell already stored for its host is not submitted again; a cell
that failed, or whose host's worker died or disconnected for longer than the plan's
``reconnect_s``, is written as a ``failed: ...`` row, so the same plan and run id measures
it again.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from virtbench import platforms
from virtbench.campaign.plan import Cell, Plan
from virtbench.campaign.worker import (
    CellResult,
    host_of,
    host_resource,
    measure_cell,
)
from virtbench.durations import duration_text
from virtbench.experiments import get
from virtbench.host import IDENTITY, collect, read_host_json
from virtbench.results import RunRefused, RunStore, make_rows, now, write_atomic
from virtbench.store.schema import HOSTS_DIR

#: How long to wait for a finished cell's rows; a worker that died holding them never sends
#: them, and the host check decides what happens to that cell.
FETCH_S = 5.0
Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    """What the cells of one campaign invocation came to."""

    hosts: list[str]
    counts: Counter = field(default_factory=Counter)  # measured, stored, unavailable, failed...
    lost: dict[str, int] = field(default_factory=dict)  # host -> cells not measured

    @property
    def complete(self) -> bool:
        return not self.counts["failed"] and not self.lost

    def summary(self) -> str:
        words = {"measured": "measured", "stored": "handed back from a host's own store",
                 "unavailable": "not available on their host", "failed": "failed",
                 "skipped": "already in the run"}
        parts = [f"{self.counts[k]} {w}" for k, w in words.items() if self.counts[k]]
        lost = "; ".join(f"{h}: {n} cell(s) not measured (its worker left)"
                         for h, n in self.lost.items())
        return (f"campaign on {len(self.hosts)} host(s) ({', '.join(self.hosts)}): cells "
                f"{', '.join(parts) or 'none'}" + (f"; {lost}" if lost else ""))


def workers(client) -> list[tuple[str, str]]:
    """(host, worker address) of every benchmark worker connected to the scheduler; the
    host is the name in its ``virtbench-host-<name>`` resource."""
    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:  # older distributed lists every worker without the argument
        info = client.scheduler_info()
    found = []
    for addr, w in info.get("workers", {}).items():
        host = host_of(w.get("resources") or {})
        if host:  # a worker without it cannot take a host's cells
            found.append((host, addr))
    return found


def connected(client) -> dict[str, str]:
    """Benchmark hosts connected to the scheduler: host -> worker address."""
    return dict(workers(client))


def wait_for_hosts(client, plan: Plan, expect: int, say: Say) -> list[str]:
    """The hosts the campaign runs on: the plan's named hosts, or every benchmark worker
    (and the hosts its experiments name); waits up to ``plan.wait_s`` for them (for
    ``expect`` workers when the plan takes all). Two workers serving one host are refused."""
    named = plan.named_hosts()
    deadline = time.monotonic() + plan.wait_s
    while True:
        present = connected(client)
        ready = all(h in present for h in named) and (
            plan.hosts is not None or len(present) >= max(expect, 1))
        if ready or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    seen: dict[str, str] = {}
    for host, addr in workers(client):
        if host in seen:
            raise RunRefused(f"two workers serve host {host} ({seen[host]} and {addr}); "
                             "start one worker per host")
        seen[host] = addr
    absent = [h for h in named if h not in present]
    if absent:
        say(f"campaign: no worker for host(s) {', '.join(absent)} after {plan.wait_s:g} s "
            f"(connected: {', '.join(sorted(present)) or 'none'})")
    if plan.hosts is not None:
        return named
    if not present:
        raise RunRefused(f"no virtbench worker connected within {plan.wait_s:g} s; start one "
                         "per host with `virtbench worker SCHEDULER_ADDRESS --name HOST`")
    return sorted(set(present) | set(named))


def run(plan: Plan, client, run_id: str, *, expect: int = 0, force: bool = False,
        say: Say = _stderr, poll_s: float = 0.2) -> Outcome:
    """Measure the plan's cells on their hosts into ``datasets/<run_id>/``."""
    store = RunStore(run_id, force=force)
    with store.locked():
        _check_run(store.dir)
        hosts = wait_for_hosts(client, plan, expect, say)
        outcome = Outcome(hosts)
        cells = plan.cells(hosts)
        _write_index(store.dir, plan, hosts)
        todo = [c for c in cells if not store.done(*c.key)]
        outcome.counts["skipped"] = len(cells) - len(todo)
        say(f"campaign {run_id}: {len(cells)} cells on {len(hosts)} host(s), {len(todo)} to "
            f"measure, {len(cells) - len(todo)} already stored; writing {store.path}")
        pending = {}
        for i, cell in enumerate(todo):
            future = client.submit(
                measure_cell, run_id, cell, pure=False, retries=0, priority=len(todo) - i,
                resources={host_resource(cell.host): 1},
                key=f"virtbench-{cell.host}-{cell.experiment}-{cell.variant}-{cell.workload}-"
                    f"{cell.rep}-{uuid.uuid4().hex[:8]}")
            pending[future] = cell
        _collect(pending, client, store, plan, outcome, say, poll_s)
    say(outcome.summary())
    return outcome


def _collect(pending: dict, client, store: RunStore, plan: Plan, outcome: Outcome, say: Say,
             poll_s: float) -> None:
    """Write each cell as it finishes; give up on a host gone longer than reconnect_s."""
    total, done, start = len(pending), 0, time.monotonic()
    gone: dict[str, float] = {}
    while pending:
        for future in [f for f in pending if f.done()]:
            cell = pending[future]
            try:
                status = _finish(future, cell, store, outcome)
            except TimeoutError:  # its worker left with the rows (they stay in its store)
                continue
            del pending[future]
            done += 1
            elapsed = time.monotonic() - start
            say(f"[{done}/{total}] {cell.label()} · {status} · {duration_text(elapsed)} "
                f"elapsed, about {duration_text(elapsed / done * (total - done))} left")
        present = connected(client)
        for host in sorted({c.host for c in pending.values()}):
            if host in present:
                gone.pop(host, None)
                continue
            since = gone.setdefault(host, time.monotonic())
            if time.monotonic() - since < plan.reconnect_s:
                continue
            lost = [f for f, c in pending.items() if c.host == host]
            client.cancel(lost)
            reason = (f"failed: host {host} had no worker connected (it died, disconnected "
                      "or never joined) before this cell was stored; run the same plan and "
                      "run id again to measure it")
            for f in lost:
                _write_missing(store, pending.pop(f), reason)
            outcome.lost[host] = len(lost)
            done += len(lost)
            say(f"campaign: host {host} has had no worker for {plan.reconnect_s:g} s; its "
                f"{len(lost)} remaining cell(s) are recorded as not measured")
        if pending:
            time.sleep(poll_s)


def _finish(future, cell: Cell, store: RunStore, outcome: Outcome) -> str:
    """Store one finished cell; return what it came to (TimeoutError: its rows did not
    arrive within :data:`FETCH_S`)."""
    if future.status == "finished":
        result: CellResult = future.result(timeout=FETCH_S)
        if result.rows:
            store.write_cell(result.rows, cell=cell.key)
        _write_host(store.dir, cell.host, result.host_facts)
        failed = any(r.reason.startswith("failed") for r in result.rows)
        status = "failed" if failed else result.status
        outcome.counts[status] += 1
        return status + (f": {result.reason}" if result.reason else "")
    if future.status == "cancelled":
        outcome.counts["cancelled"] += 1
        return "cancelled"
    exc = future.exception()
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())
    reason = f"failed: on host {cell.host}: {detail}"
    _write_missing(store, cell, reason)
    outcome.counts["failed"] += 1
    return reason


def _write_missing(store: RunStore, cell: Cell, reason: str) -> None:
    """A cell that was not measured, as reason rows (measured again on the next run)."""
    experiment = get(cell.experiment)
    rows = make_rows(experiment.missing(reason), run_id=store.run_id,
                     experiment=cell.experiment, family=platforms.family_of(cell.variant),
                     variant=cell.variant, workload=cell.workload, rep=cell.rep,
                     warmup=cell.rep < cell.params.warmup, host=cell.host, started=now())
    store.write_cell(rows, cell=cell.key)


def _check_run(run_dir: Path) -> None:
    """Refuse a run id that holds a single-host run."""
    data = read_host_json(run_dir)
    if data and "campaign" not in data:
        raise RunRefused(f"run {run_dir.name!r} was measured by `virtbench run` on one host "
                         "(its host.json has no campaign); choose another --run-id")


def _write_index(run_dir: Path, plan: Plan, hosts: list[str]) -> None:
    """host.json of a campaign: the plan, one invocation entry per call, and the hosts."""
    data = read_host_json(run_dir) or {"invocations": []}
    facts = collect()
    quick = all(s.params.quick for s in plan.steps)
    data["campaign"] = {"plan": str(plan.path.resolve()), "hosts": sorted(set(
        data.get("campaign", {}).get("hosts", [])) | set(hosts))}
    data.setdefault("hosts", {})
    data["git_commit"] = facts["git_commit"]
    data["invocations"].append({
        "parameters": {"campaign": str(plan.path.resolve()), "hosts": hosts, "quick": quick,
                       "experiments": [s.experiment for s in plan.steps], "seed": plan.seed},
        "started_at": facts["collected_at"], "git_commit": facts["git_commit"],
        "client": {k: facts[k] for k in IDENTITY}})
    write_atomic(run_dir / "host.json", json.dumps(data, indent=2, sort_keys=True,
                                                   default=str) + "\n")


def _write_host(run_dir: Path, host: str, facts: dict) -> None:
    """Keep ``hosts/<host>.json`` and its entry in the index up to date."""
    if not facts:
        return
    path = run_dir / HOSTS_DIR / f"{host}.json"
    text = json.dumps(facts, indent=2, sort_keys=True, default=str) + "\n"
    if path.exists() and path.read_text() == text:
        return
    path.parent.mkdir(exist_ok=True)
    write_atomic(path, text)
    data = read_host_json(run_dir)
    data.setdefault("hosts", {})[host] = {"file": f"{HOSTS_DIR}/{host}.json",
                                          **{k: facts.get(k) for k in IDENTITY}}
    write_atomic(run_dir / "host.json", json.dumps(data, indent=2, sort_keys=True,
                                                   default=str) + "\n")
