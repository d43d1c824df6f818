"""The cross-platform experiments on every family, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from virtbench import experiments, platforms, runner
from virtbench.results import RunStore, measured
from virtbench.sweep import owner_of

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FAST = {"http_duration_s": "1", "http_seed_duration_s": "2", "http_seed_connections": "2000",
        "idle_window_s": "1", "density_max": "3",
        "density_packed_max": "20", "density_budget_mib": "2048", "victim_millions": "5",
        "attack_mem_mib": "64", "attack_procs": "50"}
LEFTOVER = r"qemu-system|(^|/)wrk |wasmtime|containerd-shim|docker-proxy|virtbench/build/"


def running() -> set[str]:
    """Live processes of the suite's kinds: those this test process started (marked with its
    pid by the suite's environment variable; another run on the machine is not counted),
    and the engine's containerd shims and docker-proxies, which carry no mark (the engine is
    shared by runs). Zombies are dead: they wait only to be reaped."""
    out = subprocess.run(["pgrep", "-af", LEFTOVER], capture_output=True, text=True)
    alive = set()
    for line in out.stdout.splitlines():
        pid = line.split()[0]
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            owner = owner_of(Path(f"/proc/{pid}/environ").read_bytes())
        except (OSError, IndexError):
            continue  # already gone
        engine = owner is None and re.search(r"containerd-shim|docker-proxy", line)
        if state != "Z" and "pgrep" not in line and (owner == os.getpid() or engine):
            alive.add(line)
    return alive


def available(variant: str) -> None:
    plat = platforms.create(variant)
    try:
        if not plat.availability.available:
            pytest.skip(f"{variant}: {plat.availability.reason}")
    finally:
        plat.close()


def run(tmp_path, experiment: str, variant: str, quick: bool = True):
    available(variant)
    before = running()
    store = RunStore("x", root=tmp_path)
    exp = experiments.get(experiment)
    runner.run(exp, [variant], store, reps=1, quick=quick, progress=None,
               options={k: v for k, v in FAST.items() if k in exp.options})
    assert running() - before == set(), f"{experiment} on {variant} left processes running"
    return store.rows()


@pytest.mark.parametrize("variant", ["docker/runc", "docker/runc-host",
                                     "wasmtime-cli-36/tcplisten", "qemu-tcg/microvm"])
def test_http_on_each_family(tmp_path, variant):
    """The light load, and the seed profile shortened (2,000 connections for 2 s): the
    server holds the connections on each family (the WASI one with its poll set on a stack
    large enough, the guest with its ulimit raised by init)."""
    df = run(tmp_path, "http", variant)
    light = measured(df[df["conditions"] == '{"load": "light"}']).set_index("metric")["value"]
    assert light["requests_per_s"] > 0 and light["latency_p50"] <= light["latency_p99"]
    assert light["errors"] == 0
    seed = measured(df[df["conditions"] == '{"load": "seed"}']).set_index("metric")
    assert seed.loc["requests_per_s", "value"] > 0
    assert json.loads(seed.loc["requests_per_s", "tags"])["connections"] == "2000"


@pytest.mark.parametrize("variant", ["docker/runc", "wasmtime-cli/jit", "qemu-tcg/microvm"])
def test_idle_cpu_and_density_on_each_family(tmp_path, variant):
    idle = measured(run(tmp_path / "idle", "cpu_usage", variant))
    assert idle["value"].iloc[0] >= 0  # the 49.x CLI cannot serve http: an idle mem instance
    rows = run(tmp_path / "density", "density", variant)
    rows = rows[rows["conditions"] == ""]  # one host process per instance (not packed)
    assert (rows["value"].dropna() > 0).all()  # a value or a bound, never a negative number
    # at 3 instances the summed RSS rises linearly; PSS (shared pages of the containerd
    # shims split anew with each one) may still be only bounded
    assert measured(rows).set_index("metric").loc["rss_per_instance", "value"] > 0
    pss = rows.set_index("metric").loc["pss_per_instance"]
    assert pss["value"] > 0 or pss["reason"].startswith("below ")


@pytest.mark.parametrize("variant", ["docker/runc", "wasmtime-cli/jit", "qemu-tcg/microvm"])
def test_isolation_on_each_family(tmp_path, variant):
    df = run(tmp_path, "isolation", variant, quick=False)  # --quick runs 2 of the 5 attacks
    got = measured(df).set_index(["metric", "conditions"])["value"]
    assert got["victim_alone", ""] > 0
    assert got["slowdown", '{"attack": "cpu", "limits": "off"}'] > 0
    assert got["slowdown", '{"attack": "cpu", "limits": "on"}'] > 0
    assert len(df) == 11  # victim alone + 5 attacks x (without, with limits): a value or a reason
