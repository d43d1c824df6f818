"""The cross-platform experiments on every family, and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
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
    """Live processes of the suite's kinds that this test process started: those marked with
    its pid by the suite's environment variable, and the engine's containerd shims and
    docker-proxies serving a container labelled with its pid (or whose container is gone).
    Another run's processes on the machine are not counted. Zombies are dead: they wait only
    to be reaped."""
    out = subprocess.run(["pgrep", "-af", LEFTOVER], capture_output=True, text=True)
    alive, engine_lines = set(), []
    for line in out.stdout.splitlines():
        pid = line.split()[0]
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            owner = owner_of(Path(f"/proc/{pid}/environ").read_bytes())
        except (OSError, IndexError):
            continue  # already gone
        if state == "Z" or "pgrep" in line:
            continue
        if owner == os.getpid():
            alive.add(line)
        elif owner is None and re.search(r"containerd-shim|docker-proxy", line):
            engine_lines.append(line)
    if not engine_lines:
        return alive
    owners = container_owners()
    return alive | {line for line in engine_lines if owner_of_line(line, owners) in
                    (None, os.getpid())}


def container_owners() -> dict[str, int | None]:
    """Every suite container's id and IP addresses -> the owner pid labelled on it (None:
    no label), read once from the engine that answers."""
    from virtbench.platforms.docker.client import DEFAULT_SOCKET, answers, client_for
    from virtbench.platforms.docker.engine import DockerEngine
    from virtbench.platforms.docker.objects import LABEL, OWNER_LABEL

    for url in (os.environ.get("DOCKER_HOST"), f"unix://{DEFAULT_SOCKET}",
                f"unix://{DockerEngine().socket}"):
        if not url or not answers(url):
            continue
        owners: dict[str, int | None] = {}
        for c in client_for(url, 30).api.containers(all=True, filters={"label": LABEL}):
            label = c.get("Labels", {}).get(OWNER_LABEL, "")
            owner = int(label) if label.isdigit() else None
            nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
            owners[c["Id"]] = owner
            owners.update({n["IPAddress"]: owner for n in nets.values() if n.get("IPAddress")})
        return owners
    return {}


def owner_of_line(line: str, owners: dict[str, int | None]) -> int | None:
    """The owner pid of the container a shim (``-id ID``) or a docker-proxy
    (``-container-ip IP``) serves; None when no engine knows that container (gone)."""
    ident = re.search(r"-id ([0-9a-f]{12,})", line)
    address = re.search(r"-container-ip (\S+)", line)
    key = ident[1] if ident else address[1] if address else ""
    return owners.get(key)


def left_running(before: set[str]) -> set[str]:
    """What this test started and is still running, looked at twice a second apart (an
    engine process of a container being removed is gone by then)."""
    left = running() - before
    if left:
        time.sleep(1)
        left &= running()
    return left


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
    assert left_running(before) == set(), f"{experiment} on {variant} left processes running"
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


def _rows_stored(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_a_run_beside_another_run_on_the_same_engine(tmp_path):
    """Another `virtbench run` uses the Docker engine while this test measures on it: this
    test's leak check does not count the other run's containers, its release of the engine
    neither stops the daemon nor removes the images the other run uses, and the other run
    keeps measuring afterwards with no failed cell."""
    import signal
    import sys

    from virtbench.platforms.docker.engine import DockerEngine
    from virtbench.results import load_runs

    available("docker/runc")
    other_root = tmp_path / "other"
    log = (tmp_path / "other.log").open("w")
    other = subprocess.Popen(
        [sys.executable, "-m", "virtbench", "run", "startup", "--variant", "docker/runc",
         "--quick", "--reps", "40", "--run-id", "other", "--datasets", str(other_root),
         "--no-progress"], stdout=log, stderr=subprocess.STDOUT)
    results = other_root / "other" / "results.csv"
    try:
        user = DockerEngine().users_dir / str(other.pid)
        for _ in range(600):  # until the other run measures on the engine
            if (user.exists() and _rows_stored(results) > 1) or other.poll() is not None:
                break
            time.sleep(0.5)
        assert other.poll() is None, (tmp_path / "other.log").read_text()[-2000:]
        rows = run(tmp_path, "startup", "docker/runc")  # with its own leak check
        assert not measured(rows).empty, rows["reason"].tolist()
        cold = rows[rows["metric"] == "startup_cold"]  # it would remove the other's image
        assert len(cold) and cold["reason"].str.contains("another virtbench process").all()
        assert other.poll() is None, "the other run ended while this one measured"
        stored = _rows_stored(results)
        for _ in range(600):  # the other run stores a cell after this run released the engine
            if _rows_stored(results) > stored or other.poll() is not None:
                break
            time.sleep(0.5)
        assert _rows_stored(results) > stored
    finally:
        if other.poll() is None:
            other.send_signal(signal.SIGINT)
        other.wait(timeout=300)
        log.close()
    theirs = load_runs("other", root=other_root)
    failed = theirs[theirs["reason"].str.startswith("failed")]
    assert failed.empty, failed["reason"].iloc[0] if len(failed) else ""
    assert not measured(theirs).empty
