"""The worker side of a campaign: measure one cell on this host, with the local runner's
steps, into this host's own run directory, and hand back the cell's rows and host.json.

Each benchmark host runs one Dask worker (one thread) holding the resources ``virtbench-host``
and ``virtbench-host-<name>`` = 1 (the name is the host's label in the campaign, whatever
the worker is called); every cell asks for its host's resource, so cells run only on their
host and never two at a time. Measurements run in one long-lived thread of
the worker process (children started with ``PR_SET_PDEATHSIG`` die with the thread that
forked them, so platforms kept open between cells must be started by a thread that stays).
The local store is ``<datasets>/.campaigns/<host>/<run_id>/``, the same resumable, locked run
directory as ``virtbench run`` writes: a cell already stored there is handed back without
measuring it again.
"""

from __future__ import annotations

import atexit
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from virtbench import platforms, sweep
from virtbench.campaign.plan import Cell
from virtbench.experiments import get
from virtbench.host import check_host, read_host_json, write_host_json
from virtbench.paths import datasets_dir
from virtbench.platforms.base import Platform, Workload
from virtbench.results import Row, RunStore
from virtbench.runner import measure_into, missing_rows, unavailable_reason
from virtbench.store.errors import write_atomic
from virtbench.store.scan import scan

#: Every virtbench worker holds one unit: it marks a benchmark host.
RESOURCE = "virtbench-host"


def host_resource(host: str) -> str:
    """The resource only the worker of ``host`` holds (one unit)."""
    return f"{RESOURCE}-{host}"


def host_of(resources: dict) -> str | None:
    """The host a worker serves: the name in its ``virtbench-host-<name>`` resource."""
    prefix = f"{RESOURCE}-"
    return next((k[len(prefix):] for k in resources if k.startswith(prefix)), None)


def local_root(host: str) -> Path:
    """Where ``host`` keeps its local run directories: ``<datasets>/.campaigns/<host>/``
    (on that host)."""
    return datasets_dir() / ".campaigns" / host


@dataclass(frozen=True)
class CellResult:
    """What a worker hands back for one cell."""

    host: str
    rows: list[Row]
    host_facts: dict
    status: str  # "measured", "stored" (already in the local store), "unavailable"
    reason: str = ""


@dataclass
class _State:
    """What one worker process keeps between cells: open platforms and their readiness."""

    platforms: dict[str, Platform] = field(default_factory=dict)
    ready: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    runs: set[str] = field(default_factory=set)


_STATE = _State()
_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="virtbench-measure")


def measure_cell(run_id: str, cell: Cell) -> CellResult:
    """Measure ``cell`` on this worker's host (run by Dask on the worker)."""
    from distributed import get_worker

    worker = get_worker()
    if host_resource(cell.host) not in worker.state.total_resources:
        raise RuntimeError(f"cell for host {cell.host!r} reached worker {worker.name!r}, which "
                           f"lacks the resource {host_resource(cell.host)}; start each worker "
                           "with `virtbench worker ADDRESS --name HOST`")
    return _THREAD.submit(_measure, run_id, cell).result()


def _platform(variant: str) -> Platform:
    if variant not in _STATE.platforms:
        _STATE.platforms[variant] = platforms.create(variant)
    return _STATE.platforms[variant]


def _measure(run_id: str, cell: Cell) -> CellResult:
    sweep.begin()
    experiment = get(cell.experiment)
    workloads = experiment.default_workloads()
    store = RunStore(run_id, root=local_root(cell.host))
    with store.locked():
        if run_id not in _STATE.runs:
            check_host(store.dir)
            write_host_json(store.dir, {"campaign": run_id, "host": cell.host,
                                        "quick": cell.params.quick})
            for (variant, _wls), why in _STATE.ready.items():
                if not why:
                    _note_accelerator(store.dir, _STATE.platforms[variant])
            _STATE.runs.add(run_id)
        plat = _platform(cell.variant)
        key = (cell.variant, tuple(experiment.workloads))
        reason = experiment.quick_skip(cell.variant, cell.params.quick) or _STATE.ready.get(key)
        if reason is None:
            reason = unavailable_reason(plat, workloads, lambda _m: None)
            if not reason:
                _note_accelerator(store.dir, plat)
            if plat.availability.retry:  # its check broke: checked again for the next cell
                plat.recheck_later()
            elif not reason.startswith("preparation failed"):  # a failure is tried again
                _STATE.ready[key] = reason
        wl = next((w for w in workloads if w.name == cell.workload), Workload(cell.workload))
        if store.done(*cell.key):
            rows, status = _stored(store, cell), "stored"
        elif reason:
            # every cell gets its reason (a campaign stores each cell it planned)
            rows = missing_rows(store, experiment, plat, wl, reason, host=cell.host,
                                rep=cell.rep, warmup=cell.rep < cell.params.warmup)
            status = "unavailable"
        else:
            rows = measure_into(store, experiment, plat, wl, cell.rep, cell.params,
                                host=cell.host)
            status = "measured"
        facts = read_host_json(store.dir)
    return CellResult(cell.host, rows, facts, status, reason)


def _stored(store: RunStore, cell: Cell) -> list[Row]:
    """The rows of a cell already in the local store (its last attempt)."""
    found = scan(store.path)
    last = found.last().get(cell.key)
    return [Row.from_record(r) for r, a in zip(found.rows, found.attempt, strict=True)
            if a == last]


def _note_accelerator(run_dir: Path, plat: Platform) -> None:
    """Record a prepared platform's engine version in the local host.json."""
    data = read_host_json(run_dir)
    data.setdefault("accelerators", {})[plat.variant] = plat.availability.version
    write_atomic(run_dir / "host.json", json.dumps(data, indent=2, sort_keys=True,
                                                   default=str) + "\n")


def close() -> None:
    """Close every platform this worker opened (at worker shutdown)."""
    for plat in _STATE.platforms.values():
        plat.close()
    _STATE.platforms.clear()


atexit.register(close)
