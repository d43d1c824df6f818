"""The fault drill on real runs: damage a run of the native variant (really started
processes) in each way a user may meet, repair it, run it again, and check that every
repetition is there in full, no valid row was lost, nothing was left behind and the fault
was told in one clear line. Then a full file system (a small tmpfs), a killed
availability probe, and the suite's private dockerd killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from virtbench import catalog
from virtbench.cli import main
from virtbench.experiments.base import Experiment
from virtbench.platforms.base import Availability, Platform, Workload
from virtbench.platforms.docker import hostnet, procfs
from virtbench.results import CELLS_FILE, Measurement, load_runs, measured, scan

LIB = str(Path(__file__).resolve().parents[1] / "lib")
REPS = 4
NATIVE = ["startup", "--variant", "native/static", "--no-progress"]


def one_error_line(err: str) -> bool:
    return "Traceback" not in err and len([x for x in err.splitlines() if "error" in x]) == 1


def leftovers(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir()
                  if p.name == "writer.lock" or p.name.endswith(".tmp"))


def full_n(run_id: str, root: Path, reps: int) -> bool:
    """Every (variant, workload, metric, conditions) has ``reps`` measured current rows."""
    counts = measured(load_runs(run_id, root=root)).groupby(
        ["variant", "workload", "metric", "conditions"]).size()
    return len(counts) > 0 and (counts == reps).all()


def identities(rows: list[dict]) -> set[tuple[str, ...]]:
    return {(r["rep"], r["metric"], r["conditions"], r["timestamp"], r["value"]) for r in rows}


def garble_row(run_dir: Path, change) -> tuple[str, ...]:
    """Garble the fifth row of results.csv; return the identity of the row it was."""
    path = run_dir / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    victim = scan(path).rows[4]
    lines[5] = change(lines[5])
    path.write_text("".join(lines))
    return next(iter(identities([victim])))


DAMAGE = {
    "unmatched quote": lambda d: garble_row(d, lambda x: x.replace(",noop,", ',"noop,', 1)),
    "wrong column count": lambda d: garble_row(d, lambda x: x.replace(",noop,", ",noop,x,", 1)),
    "torn last row": lambda d: _append(d / "results.csv", 'drill,startup,native,"nat'),
    "garbled cells line": lambda d: _garble_cells(d / CELLS_FILE),
}


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def _garble_cells(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = lines[2][: len(lines[2]) // 2] + "\n"
    path.write_text("".join(lines))


@pytest.mark.integration
@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_native_run_is_repaired_and_completed(tmp_path, capsys, kind):
    root = tmp_path / "datasets"
    assert main(["run", *NATIVE, "--reps", str(REPS), "--run-id", "drill"]) == 0
    run_dir = root / "drill"
    before = identities(scan(run_dir / "results.csv").rows)
    lost = DAMAGE[kind](run_dir)
    capsys.readouterr()
    if kind != "torn last row":  # a torn tail is cut by the next run itself
        assert main(["run", *NATIVE, "--reps", str(REPS), "--run-id", "drill"]) == 2
        err = capsys.readouterr().err
        assert one_error_line(err) and "virtbench repair drill" in err
    assert main(["repair", "drill"]) == 0
    out = capsys.readouterr().out
    dropped = [x for x in out.splitlines() if x.startswith("dropped ")]
    assert len(dropped) == (1 if kind != "garbled cells line" else 0)
    assert main(["run", *NATIVE, "--reps", str(REPS), "--run-id", "drill"]) == 0
    assert full_n("drill", root, REPS)
    after = identities(scan(run_dir / "results.csv").rows)  # current and superseded rows
    assert before - after == ({lost} if isinstance(lost, tuple) else set())
    assert leftovers(run_dir) == []
    assert main(["repair", "drill"]) == 0
    assert "kept" in capsys.readouterr().out and leftovers(run_dir) == []


@pytest.mark.integration
def test_a_corrupt_host_json_of_a_native_run_has_one_way_back(tmp_path, capsys):
    root = tmp_path / "datasets"
    assert main(["run", *NATIVE, "--reps", "2", "--run-id", "drill"]) == 0
    host = root / "drill" / "host.json"
    host.write_text(host.read_text()[:100])
    capsys.readouterr()
    assert main(["run", *NATIVE, "--reps", str(REPS), "--run-id", "drill"]) == 3
    assert one_error_line(capsys.readouterr().err)
    assert main(["repair", "drill"]) == 0
    assert "rebuilt" in capsys.readouterr().out
    assert main(["run", *NATIVE, "--reps", str(REPS), "--run-id", "drill"]) == 0
    assert full_n("drill", root, REPS) and leftovers(root / "drill") == []


# ---- a full file system ----------------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 512 KiB tmpfs mounted for the test (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tmp_path / "small"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


def fill(where: Path) -> Path:
    """Take every free byte of ``where``'s file system."""
    filler = where / "filler"
    with filler.open("wb", buffering=0) as fh:
        try:
            while fh.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    return filler


@pytest.mark.integration
def test_a_disk_that_fills_mid_run_ends_in_one_line_and_resumes(small_fs, tmp_path):
    datasets = small_fs / "datasets"
    env = {**os.environ, "PYTHONPATH": LIB, "VIRTBENCH_DATASETS": str(datasets)}
    argv = [sys.executable, "-m", "virtbench.cli", "run", *NATIVE, "--reps", "300",
            "--run-id", "full"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    cells = datasets / "full" / CELLS_FILE
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if cells.exists() and cells.read_text().count("\n") >= 2:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the disk filled"
    filler = fill(small_fs)
    _out, err = proc.communicate(timeout=600)
    assert proc.returncode == 4, err
    assert one_error_line(err)
    line = next(x for x in err.splitlines() if "error" in x)
    assert str(datasets / "full") in line and "No space left on device" in line
    assert "MiB free of" in line and "rows written before are intact" in line
    run_dir = datasets / "full"
    assert leftovers(run_dir) == []
    kept = load_runs("full", root=datasets)  # what was written before loads as it is
    assert len(kept) > 0
    filler.unlink()
    done = subprocess.run([*argv[:-4], "--reps", "6", "--run-id", "full"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert leftovers(run_dir) == []
    df = load_runs("full", root=datasets)
    assert set(map(tuple, kept[["rep", "metric", "timestamp"]].values)) <= set(
        map(tuple, df[["rep", "metric", "timestamp"]].values))


@pytest.mark.integration
def test_a_full_disk_before_the_first_row_ends_in_one_line(small_fs):
    datasets = small_fs / "datasets"
    datasets.mkdir()
    filler = fill(small_fs)
    env = {**os.environ, "PYTHONPATH": LIB, "VIRTBENCH_DATASETS": str(datasets)}
    done = subprocess.run([sys.executable, "-m", "virtbench.cli", "run", *NATIVE, "--reps",
                           "2", "--run-id", "empty"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 4, done.stderr
    assert one_error_line(done.stderr) and "MiB free of" in done.stderr
    assert leftovers(datasets / "empty") == []
    filler.unlink()


# ---- an availability probe that dies ---------------------------------------------------------

PROBES = {"runs": 0, "kill": 0}


class Probed(Platform):
    """Its availability check starts a probe process; the first ones are killed."""

    family = "native"
    variant = "fakeprobe/probed"

    def check(self) -> Availability:
        PROBES["runs"] += 1
        script = "kill -9 $$" if PROBES["kill"] > 0 else "echo ok"
        PROBES["kill"] -= 1
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True,
                              timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"the probe exited {done.returncode} without an answer")
        return Availability(True, "probed", version="1")


def measure(plat: Platform, wl: Workload, params) -> list[Measurement]:
    return [Measurement("t", 1.0, "ms", "a value")]


PROBED = Experiment("fakeprobe", "a fake", measure, reps=3, warmup=0,
                    metrics=(catalog.Metric("t", "fakeprobe", "ms", "lower", "a test value"),),
                    primary=(("t", {}),))


@pytest.fixture
def probed(install_fakes):
    install_fakes(PROBED, Probed)
    PROBES.update(runs=0, kill=1)


def test_a_killed_probe_is_retried_on_the_next_repetition(probed, tmp_path, capsys):
    args = ["run", "fakeprobe", "--variant", "fakeprobe", "--run-id", "p", "--no-progress"]
    assert main(args) == 1  # repetition 0 failed: its probe was killed
    err = capsys.readouterr().err
    assert "1 cell(s) failed" in err and "availability check failed" in err
    root = tmp_path / "datasets"
    df = load_runs("p", root=root)
    assert sorted(df[df["value"].notna()]["rep"]) == [1, 2]  # checked again, measured
    assert df[df["rep"] == 0]["reason"].str.startswith("failed: availability check").all()
    assert main(args) == 0  # the next run measures repetition 0
    df = load_runs("p", root=root)
    assert sorted(df["rep"]) == [0, 1, 2] and df["value"].notna().all()
    assert PROBES["runs"] == 3


# ---- the suite's private dockerd killed mid-run -------------------------------------------

@pytest.mark.integration
@pytest.mark.slow
def test_a_killed_private_dockerd_is_named_and_cleaned_up(tmp_path):
    """Only a dockerd this test started (found by its own data-root) is killed."""
    from virtbench.platforms.docker.client import DEFAULT_SOCKET

    if os.geteuid() != 0:
        pytest.skip("starting dockerd needs root")
    running = procfs.find_processes("dockerd")
    if running or Path(DEFAULT_SOCKET).exists():
        pytest.skip(f"a Docker daemon already runs ({running}); the test starts its own")
    cache = tmp_path / "cache"
    root = cache / "docker"
    datasets = tmp_path / "datasets"
    veths = set(hostnet.host_veths())

    def mine(name: str) -> list[int]:
        return [p for p in procfs.find_processes(name)
                if str(root) in procfs.cmdline(p)]

    env = {**os.environ, "PYTHONPATH": LIB, "VIRTBENCH_DATASETS": str(datasets),
           "VIRTBENCH_CACHE": str(cache), "DOCKER_HOST": ""}
    # --quick: the minimal userland only (the Debian image would be built afresh in this
    # test's own cache); three repetitions still give cells before and after the kill
    argv = [sys.executable, "-m", "virtbench.cli", "run", "startup", "--variant",
            "docker/runc", "--quick", "--reps", "3", "--run-id", "dead", "--no-progress"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    cells = datasets / "dead" / CELLS_FILE
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            if cells.exists() and cells.read_text().count("\n") >= 2:
                break
            time.sleep(0.05)
        daemons = mine("dockerd")
        assert proc.poll() is None and len(daemons) == 1, "no private dockerd mid-run"
        os.kill(daemons[0], signal.SIGKILL)
        _out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    named = [x for x in err.splitlines()
             if x.startswith("virtbench: docker/runc: the suite's private dockerd")]
    assert len(named) == 1 and f"pid {daemons[0]}" in named[0]
    df = load_runs("dead", root=datasets)
    failed = df[df["reason"].str.startswith("failed:")]
    assert len(failed) and failed["reason"].str.contains("private dockerd").all()
    assert mine("dockerd") == [] and mine("containerd") == []
    assert set(hostnet.host_veths()) == veths
    assert leftovers(datasets / "dead") == []
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    assert full_n("dead", datasets, 3)




# ---- the same, without a daemon: what a dead dockerd and a failed cleanup come to ---------

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


class _Client:
    """A client whose daemon refuses every call, as after dockerd was killed."""

    closed = False

    def close(self) -> None:
        self.closed = True

    @property
    def api(self):
        raise ConnectionError("('Connection aborted.', ConnectionRefusedError(111, "
                              "'Connection refused'))")


def test_a_dead_private_dockerd_is_named_and_still_stopped(tmp_path, monkeypatch):
    from virtbench.platforms.docker import engine as docker_engine

    engine = docker_engine.DockerEngine(tmp_path / "docker", use_existing=False)
    stopped: list[bool] = []
    monkeypatch.setattr(docker_engine.DockerEngine, "stop_daemon",
                        lambda self: stopped.append(True))
    engine.private, engine.dockerd_pid, engine.client = True, _dead_pid(), _Client()
    engine._users = 1
    problem = engine.daemon_problem()
    assert problem.startswith(f"the suite's private dockerd (pid {engine.dockerd_pid}) is "
                              "not running any more") and "\n" not in problem
    client = engine.client
    engine.release()  # no call to the dead daemon, which is stopped all the same
    assert stopped == [True] and client.closed and engine.client is None


def test_a_cleanup_that_fails_is_one_line_and_the_daemon_is_still_stopped(tmp_path,
                                                                          monkeypatch):
    from virtbench.platforms.docker import engine as docker_engine
    from virtbench.platforms.docker.daemonsetup import EngineError

    engine = docker_engine.DockerEngine(tmp_path / "docker", use_existing=False)
    stopped: list[bool] = []
    monkeypatch.setattr(docker_engine.DockerEngine, "stop_daemon",
                        lambda self: stopped.append(True))
    engine.private, engine.dockerd_pid, engine.client = True, os.getpid(), _Client()
    engine._users = 1
    with pytest.raises(EngineError) as failed:
        engine.release()
    assert str(failed.value).startswith("removing the suite's containers failed: "
                                        "ConnectionError: ")
    assert "\n" not in str(failed.value) and stopped == [True]


class _Broken(Platform):
    family = "native"
    variant = "fakeclose/broken"

    def check(self) -> Availability:
        return Availability(True, "always")

    def close(self) -> None:
        raise RuntimeError("cannot remove veth0\nsecond line of a long story")


class _Fine(_Broken):
    variant = "fakeclose/fine"
    closed = False

    def close(self) -> None:
        type(self).closed = True


def test_close_all_reports_each_failed_cleanup_once_and_closes_the_rest(capsys):
    from virtbench.runner import close_all

    close_all([_Broken(), _Fine()])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cleanup of fakeclose/broken failed: RuntimeError: " \
        "cannot remove veth0 second line" in err
    assert _Fine.closed


@pytest.mark.integration
def test_a_killed_wasm_probe_is_retried_and_the_rerun_completes(tmp_path):
    """The embedded wasmtime variant's availability probe (a worker process of the run)
    killed: that repetition fails with the reason, the next ones are measured, the next run
    completes it. Only the probe of the run this test started is killed."""
    from virtbench.platforms.wasm.variants import Cranelift

    if not Cranelift().availability.available:
        pytest.skip(Cranelift().availability.reason)
    datasets = tmp_path / "datasets"
    env = {**os.environ, "PYTHONPATH": LIB, "VIRTBENCH_DATASETS": str(datasets)}
    argv = [sys.executable, "-m", "virtbench.cli", "run", "startup", "--variant",
            "wasmtime-embedded/cranelift", "--reps", "3", "--run-id", "probe", "--no-progress"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)

    def probe() -> int | None:
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit() or not _descends(entry, proc.pid):
                    continue
                if b'"mode": "probe"' in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
        return None

    try:
        deadline, victim = time.monotonic() + 120, None
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            victim = probe()
            time.sleep(0.002)
        assert victim is not None, "the probe was not seen"
        os.kill(victim, signal.SIGKILL)
        _out, err = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    assert "Traceback" not in err and "availability check failed" in err
    df = load_runs("probe", root=datasets)
    assert df[df["rep"] == 0]["reason"].str.startswith("failed: availability check").all()
    assert df[df["rep"] > 0]["value"].notna().any()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert full_n("probe", datasets, 3)


def _descends(entry: Path, ancestor: int) -> bool:
    """Whether the process of /proc ``entry`` is a descendant of ``ancestor`` (a worker
    is started through the launch helper)."""
    for _ in range(4):
        ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        if ppid == ancestor:
            return True
        if ppid <= 1:
            return False
        entry = Path("/proc") / str(ppid)
    return False


def test_leftover_veths_are_the_new_ones_on_the_bridge_or_with_both_ends_on_the_host():

    out = (
        "5: vethold@if4: <BROADCAST> mtu 1500 qdisc noqueue master docker0 state UP\n"
        "7: vethbr@if6: <BROADCAST> mtu 1500 qdisc noqueue master docker0 state UP\n"
        "8: vetha@vethb: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN\n"
        "9: vethb@vetha: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN\n"
        "11: vethother@if10: <BROADCAST> mtu 1500 qdisc noqueue master br-lab state UP\n")
    now = hostnet.parse_veths(out)
    assert now["vethbr"] == ("if6", "docker0") and now["vetha"] == ("vethb", "")
    # vethold was there before the daemon; vethother is another bridge's; a pair once
    assert hostnet.leftover_veths(now, {"vethold"}) == ["vetha", "vethbr"]
