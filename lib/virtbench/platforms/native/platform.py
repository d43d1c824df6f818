"""The bare process: the baseline every other platform is compared with."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from virtbench.cgroup import Cgroup
from virtbench.platforms.base import (
    Artifact,
    Availability,
    Handle,
    NotSupported,
    Platform,
    Portable,
    RunOutcome,
    Timing,
    Workload,
    substitute_server,
    substitute_workdir,
)
from virtbench.platforms.readiness import wait_ready
from virtbench.process import (
    Completed,
    spawn_and_time,
    start_instance,
    tool_version,
)
from virtbench.spec import WorkloadSpec, stage_dirs
from virtbench.workloads import build, parse_result_line, toolchain_status

#: Untimed runs, then timed runs back to back, of a start-up measurement in one launch helper
#: (hyperfine's --warmup / --runs); measured on the reference machine: the first fork of a
#: fresh helper is ~2x the steady state, which is reached within 3 runs.
WARMUP_RUNS = 10
TIMED_RUNS = 20
SPAWN_INTERVAL = {
    "launch": "from fork() in the static launch helper to wait4() returning the exit status",
    "python": "from Popen (fork of the Python harness) to os.wait4 returning the exit status",
}


class Native(Platform):
    """A workload run as a plain child process of the harness."""

    family = "native"
    target = "static"

    def check(self) -> Availability:
        ok, why = toolchain_status()[self.target]
        version = tool_version(["clang", "--version"]) or ""
        if not ok:
            return Availability(False, why, "run `make setup` (installs clang)", version)
        return Availability(True, f"clang builds {self.target} binaries", version=version)

    def argv(self, workload: Workload) -> list[str]:
        """The command that runs ``workload`` as a native process."""
        spec = workload.user
        if spec is None:
            return [str(build(workload.name, self.target))]
        if spec.not_on_host():
            raise NotSupported(spec.not_on_host())
        return spec.native_argv()

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            if w.builtin:
                build(w.name, self.target)

    def portable_artifact(self, workload: Workload) -> Portable:
        if not workload.builtin:
            raise NotSupported("the artifact carried to another host is measured for the "
                               "built-in workloads")
        return Portable("program", build(workload.name, self.target),
                        what=f"the {self.target} executable")

    def run(self, workload: Workload, args: Sequence[str] = (), *,
            timeout: float = 300.0) -> RunOutcome:
        with tempfile.TemporaryDirectory(prefix="vb-native-") as workdir:
            spec = workload.user
            if spec is None:
                argv = self.argv(workload) + substitute_workdir(args, workdir)
                done = spawn_and_time(argv, timeout=timeout).check()
            else:
                if spec.not_on_host():
                    raise NotSupported(spec.not_on_host())
                done = self._run_user(spec, Path(workdir), args)
        result = parse_result_line(done.stdout) if workload.prints_result else {}
        return RunOutcome(done.wall_ns, SPAWN_INTERVAL[done.timed_by], done.returncode,
                          done.stdout, result, done.peak_rss_kib, rss_of="the workload process")

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """A built-in workload's start: the median of back-to-back runs in one launch helper
        after its warm-up (the reading verdicts use, the way hyperfine times it), and the
        first run of a fresh helper with no warm-up (condition ``warm_up: none``: the
        harness's cold helper included). A user's program is run once (no warm-up runs of
        a program with effects)."""
        if not workload.builtin:
            return []
        argv = self.argv(workload)
        first = spawn_and_time(argv, timeout=60).check()
        series = spawn_and_time(argv, timeout=60, warmup=WARMUP_RUNS, runs=TIMED_RUNS).check()
        how = SPAWN_INTERVAL[series.timed_by]
        samples = series.samples_ns or (series.wall_ns,)
        steady = (f"{how}; median of {len(samples)} runs back to back in one launch helper, "
                  f"after {WARMUP_RUNS} untimed runs")
        return [
            Timing("launch", None, steady, samples_ns=tuple(samples),
                   peak_rss_kib=series.peak_rss_kib, rss_of="the workload process",
                   tags={"runs": str(len(samples)), "warmup_runs": str(WARMUP_RUNS)}),
            Timing("launch", first.wall_ns, f"{SPAWN_INTERVAL[first.timed_by]}; the first run "
                   "of a freshly started launch helper, no warm-up",
                   conditions={"warm_up": "none"}),
        ]

    def _run_user(self, spec: WorkloadSpec, workdir: Path, args: Sequence[str]) -> Completed:
        """The user's program on fresh copies of its directories (guest paths in its
        arguments and environment rewritten to them: a process has no namespace of its own)."""
        scratch = workdir / "scratch"
        scratch.mkdir()
        rewrite = {guest: str(host) for guest, host in stage_dirs(spec, workdir).items()}
        argv = spec.native_argv(rewrite) + substitute_workdir(args, str(scratch))
        env = {**os.environ, **spec.environment(rewrite)}
        with ExitStack() as stack:
            stdin = subprocess.DEVNULL
            if spec.stdin is not None:
                stdin = stack.enter_context(open(spec.stdin, "rb")).fileno()
            done = spawn_and_time(argv, timeout=spec.time_limit_s, env=env, stdin=stdin)
        spec.check_outcome(done.returncode, done.stdout, Path(argv[0]).name, done.stderr)
        return done

    @contextmanager
    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0) -> Iterator[Handle]:
        """A native process; the ``http`` workload listens on 127.0.0.1:``port``.

        ``limits`` (memory_mib, cpus, pids, nofile) put the process in a fresh cgroup, as a
        service manager would; a bare process has no limits of its own. ``nofile`` alone is
        the process's RLIMIT_NOFILE, set before it execs (no cgroup).
        """
        args = list(args)
        if workload.name == "http" and workload.builtin:
            if port is None:
                raise ValueError("the http workload needs a port")
            args = ["--port", str(port), "--bind", "127.0.0.1", *args]
        elif port is not None:  # a user's server: it listens on 127.0.0.1:port itself
            args = substitute_server(args, "127.0.0.1", port)
        info = {"binary": self.target}
        with ExitStack() as stack:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vb-native-"))
            argv = self.argv(workload) + substitute_workdir(args, workdir)
            nofile = None
            if limits and set(limits) == {"nofile"}:  # an rlimit alone needs no cgroup
                nofile = int(limits["nofile"])
                info["limits"] = f"RLIMIT_NOFILE {nofile}"
            elif limits:
                group = stack.enter_context(Cgroup(limits))
                argv = group.wrap(argv)
                info["limits"] = group.describe()
            inst = stack.enter_context(start_instance(argv, nofile=nofile))
            ready = wait_ready(inst, timeout) if workload.prints_result else None
            if ready is not None:
                info["ready_line"] = inst.output[-1]
            yield Handle(pids=[inst.pid], port=port, ready_ns=ready, info=info,
                         who="the workload process")

    def collector_route(self) -> tuple[str, str]:
        """A host process reaches the host's loopback directly."""
        return "127.0.0.1", "127.0.0.1"

    def capture_traffic(self, port: int, address: str):
        """The workload's own connection on the host's loopback."""
        from virtbench.netcapture import tcpdump

        return tcpdump("lo", port, "the host's loopback (lo): the workload process's own "
                       "connection", f"dst host {address}")

    def artifacts(self) -> list[Artifact]:
        """The executable of each workload."""
        return [Artifact("workload", build(name, self.target).stat().st_size,
                         f"size of the {self.target} {name} executable", workload=name)
                for name in ("noop", "cpu", "http")]
