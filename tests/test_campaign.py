"""A campaign on a real Dask scheduler with two worker processes on loopback (``--local 2``):
rows from both hosts, a worker SIGKILLed mid-campaign, resume, no overlap on a host, and a
variant a host cannot run (KVM, where it does not work) reported as not available."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from virtbench.results import load_runs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LIB = str(Path(__file__).resolve().parents[1] / "lib")
VARIANTS = ("native/static", "wasmtime-embedded/cranelift")
KVM = "qemu-kvm/microvm"  # measured where KVM works, else "not available: ..." rows
PLAN = """\
hosts = "all"
wait_s = 60
reconnect_s = 2

[[experiment]]
name = "startup"
variants = ["native/static", "wasmtime-embedded/cranelift", "qemu-kvm/microvm"]
reps = 2
quick = true
"""


def start(plan: Path, root: Path, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "VIRTBENCH_DATASETS": str(root),
           "PYTHONPATH": os.pathsep.join([LIB, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "virtbench", "campaign", str(plan),
                             "--local", "2", "--run-id", run_id],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> str:
    """The campaign's stderr once it ended (killed, with its workers, after 180 s)."""
    try:
        return proc.communicate(timeout=180)[1]
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def cells(run_dir: Path) -> list[dict]:
    path = run_dir / "cells.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def worker_pid(parent: int, name: str) -> int:
    """The pid of the worker process of host ``name`` started by the campaign ``parent``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == parent and b"--name" in argv and argv[argv.index(b"--name") + 1] == \
                name.encode():
            return int(entry.name)
    raise AssertionError(f"no worker process of {name} under {parent}")


def key(cell: dict) -> tuple:
    return (cell["host"], cell["experiment"], cell["variant"], cell["workload"], cell["rep"])


def test_campaign_two_hosts_survives_a_killed_worker_and_resumes(tmp_path):
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    root, run_id = tmp_path / "datasets", "camp"
    run_dir = root / run_id

    # 1. kill local-2's worker once it has stored a cell
    proc = start(plan, root, run_id)
    deadline = time.monotonic() + 120
    while not any(c["host"] == "local-2" for c in cells(run_dir)):
        assert proc.poll() is None, proc.communicate()
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"local-2 stored no cell within 120 s: {finish(proc)}")
        time.sleep(0.02)
    os.kill(worker_pid(proc.pid, "local-2"), signal.SIGKILL)
    err = finish(proc)
    assert proc.returncode == 1, err
    assert "host local-2 has had no worker" in err

    first = cells(run_dir)
    df = load_runs(run_id, root=root)
    assert set(df["host"]) == {"local-1", "local-2"}
    one = df[df["host"] == "local-1"]
    assert set(one["variant"]) == {*VARIANTS, KVM}
    assert one.loc[one["variant"].isin(VARIANTS), "value"].notna().all()
    kvm = one[one["variant"] == KVM]
    assert kvm["value"].notna().all() or kvm["reason"].str.startswith("not available:").all()
    lost = df[(df["host"] == "local-2") & df["reason"].str.contains("had no worker connected")]
    assert len(lost), "the killed host's remaining cells are recorded with the reason"
    assert lost["reason"].str.startswith("failed:").all()
    stored_two = {key(c) for c in first if c["host"] == "local-2"} - {
        (h, "startup", v, w, r) for h, v, w, r in
        lost[["host", "variant", "workload", "rep"]].itertuples(index=False)}
    assert stored_two, "the cells local-2 finished before the kill are kept"

    # 2. the same plan and run id measures only what is missing
    proc = start(plan, root, run_id)
    err = finish(proc)
    assert proc.returncode == 0, err
    second = cells(run_dir)[len(first):]
    assert second and all(c["host"] == "local-2" for c in second)
    assert not {key(c) for c in second} & stored_two
    assert not {key(c) for c in second} & {key(c) for c in first if c["host"] == "local-1"}

    df = load_runs(run_id, root=root)
    assert not df["reason"].str.startswith("failed:").any()
    for host in ("local-1", "local-2"):
        rows = df[(df["host"] == host) & df["variant"].isin(VARIANTS)]
        assert set(rows["variant"]) == set(VARIANTS)
        assert sorted(set(rows["rep"])) == [0, 1, 2]  # one warm-up and two repetitions
        assert rows["value"].notna().all()
        assert len(df[(df["host"] == host) & (df["variant"] == KVM)])
    # every host's host.json is kept, with an index in the run's host.json
    index = json.loads((run_dir / "host.json").read_text())
    assert set(index["hosts"]) == {"local-1", "local-2"}
    for host in index["hosts"].values():
        assert json.loads((run_dir / host["file"]).read_text())["hostname"]

    # no two cells overlapped on one host: each cell began after the previous one ended
    df = df[df["value"].notna()]
    spans = df.groupby(["host", "variant", "workload", "rep"]).agg(
        started=("started", "first"), ended=("timestamp", "first")).reset_index()
    for _host, group in spans.groupby("host"):
        times = sorted((datetime.fromisoformat(s), datetime.fromisoformat(e))
                       for s, e in zip(group["started"], group["ended"], strict=True))
        assert all(s <= e for s, e in times)
        assert all(later[0] >= earlier[1] for earlier, later in pairwise(times))
