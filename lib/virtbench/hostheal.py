"""A damaged ``host.json`` rebuilt from the run's rows and a fresh reading of this host.

What only the damaged file held (each invocation's parameters, start, end, load and
outcome, the accelerator versions, selfcheck and campaign records) cannot come back: the
warning names it, and the unreadable file is kept beside the new one as
``host.json.damaged``. A campaign's host.json is an index of its hosts: it is rebuilt as
one (``campaign`` and ``hosts``, from the rows and each ``hosts/<name>.json``), so the same
plan and run id go on measuring it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from virtbench.host import IDENTITY, collect
from virtbench.store.errors import DatasetError
from virtbench.store.hostfile import read_host_json, write_host_json_file
from virtbench.store.scan import scan
from virtbench.store.schema import HOST_FILE, HOSTS_DIR, RESULTS_FILE

DAMAGED_SUFFIX = ".damaged"
LOST = ("each invocation's parameters, start, end, load and outcome", "the accelerator "
        "versions", "any selfcheck and campaign records")


def host_json_damage(run_dir: Path) -> str:
    """Why the run's host.json cannot be read ("" when it can, or there is none)."""
    try:
        read_host_json(run_dir)
    except DatasetError as exc:
        return str(exc)
    return ""


def rows_summary(run_dir: Path) -> dict:
    """What the run's valid rows say about how it was measured: experiments, commits,
    hosts, and the first start and the last end."""
    rows = scan(run_dir / RESULTS_FILE, strict=False).rows
    starts = sorted(r["started"] or r["timestamp"] for r in rows)
    return {"rows": len(rows),
            "experiments": sorted({r["experiment"] for r in rows}),
            "commits": sorted({r["commit"] for r in rows if r["commit"]}),
            "campaign_hosts": sorted({r["host"] for r in rows if r["host"]}),
            "first_started": starts[0] if starts else None,
            "last_ended": max((r["timestamp"] for r in rows), default=None)}


def campaign_index(run_dir: Path, row_hosts: list[str]) -> dict:
    """The ``campaign`` and ``hosts`` entries of a campaign's host.json, rebuilt from the
    hosts its rows name and the readable ``hosts/<name>.json`` files ({} for a run measured
    on one host: no row names a host and there is no ``hosts/`` folder)."""
    files = sorted((run_dir / HOSTS_DIR).glob("*.json")) if (run_dir / HOSTS_DIR).is_dir() \
        else []
    if not row_hosts and not files:
        return {}
    entries = {}
    for path in files:
        try:
            facts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # a damaged host file: its identity stays unknown
        if isinstance(facts, dict):
            entries[path.stem] = {"file": f"{HOSTS_DIR}/{path.name}",
                                  **{k: facts.get(k) for k in IDENTITY}}
    hosts = sorted(set(row_hosts) | set(entries))
    return {"campaign": {"plan": None, "hosts": hosts}, "hosts": entries}


def heal_host_json(run_dir: Path, *, dry_run: bool = False) -> str:
    """Rebuild a damaged host.json; return the warning that says what was lost ("" when
    host.json is readable or absent: nothing to do). ``dry_run``: only the warning."""
    damage = host_json_damage(run_dir)
    if not damage:
        return ""
    path = run_dir / HOST_FILE
    facts = collect()
    data = {k: v for k, v in facts.items() if k != "collected_at"}
    summary = rows_summary(run_dir) if (run_dir / RESULTS_FILE).exists() else {}
    index = campaign_index(run_dir, summary.get("campaign_hosts", []))
    lost = [*LOST, "the campaign's plan path"] if index else list(LOST)
    data.update(index)  # the client's facts stay on top, as the campaign client writes them
    data.update({"invocations": [], "accelerators": {}, "rebuilt": {
        "at": facts["collected_at"], "why": damage,
        "from": "the valid rows of results.csv and a reading of this host at that time",
        "lost": lost, "rows": summary, "damaged_copy": path.name + DAMAGED_SUFFIX}})
    verb = "would rebuild" if dry_run else "rebuilt"
    kind = (f"as the index of a campaign on {len(index['campaign']['hosts'])} host(s) "
            if index else "")
    warning = (f"{verb} {path} ({damage}) {kind}from the rows and this host "
               f"({', '.join(f'{k} {facts[k]!r}' for k in IDENTITY)}); lost: "
               f"{'; '.join(lost)}; the unreadable file is kept as {path.name}{DAMAGED_SUFFIX}")
    if not dry_run:
        copy = path.with_name(path.name + DAMAGED_SUFFIX)
        copy.unlink(missing_ok=True)
        os.link(path, copy)  # the damaged bytes kept (a link needs no free space)
        write_host_json_file(run_dir, data)
    return warning
