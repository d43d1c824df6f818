"""The one spawn-and-time helper: start a process, wait with ``wait4``, keep its rusage.

The timed interval runs from just before ``fork()`` to the moment ``wait4`` returns with the
child's exit status: it includes process creation, the program's own start-up, its work and
its exit. ``peak_rss_kib`` is the child's ``ru_maxrss``.

A start-up measurement asks for ``warmup`` untimed runs and ``runs`` timed runs back to back
in one helper (as hyperfine's ``--warmup``/``--runs``): the first fork of a freshly exec'd
helper pays for the helper's own cold page tables and caches, which are the harness's, not
the program's (about 1 ms against 0.5 ms warm on the reference machine).

The fork happens in ``launch``, a tiny static helper built with the workloads: a child
forked from the (large) Python harness would carry the harness's resident memory into its
``ru_maxrss`` until ``exec``, and Python's fork of a big process costs milliseconds that are
not the measured program's. Without a C compiler the helper falls back to ``Popen`` +
``os.wait4`` and says so in ``Completed.timed_by``.

Every child starts in its own process group, carries ``VIRTBENCH_RUN=<harness pid>`` in its
environment (see :mod:`virtbench.sweep`) and gets ``PR_SET_PDEATHSIG`` = SIGKILL, so it dies
with the harness even when the harness is killed with SIGKILL; on any exception (Ctrl-C
included) its whole group is killed.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import resource
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

RUN_ENV = "VIRTBENCH_RUN"  # marker of every process the suite starts: the owner's pid
PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this environment) with the suite's marker naming this process."""
    return {**(os.environ if env is None else env), RUN_ENV: str(os.getpid())}


def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that has the child SIGKILLed when the calling harness dies."""
    parent = os.getpid()

    def preexec() -> None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the harness died before prctl took effect
            os._exit(137)

    return preexec


def nofile_preexec(nofile: int | None) -> Callable[[], None]:
    """:func:`die_with_parent`, and RLIMIT_NOFILE raised to ``nofile`` descriptors (a hard
    limit below it is raised only with CAP_SYS_RESOURCE, else the soft limit stops at the
    hard one: :func:`nofile_granted`). ``None``: the inherited limit."""
    dies = die_with_parent()
    if nofile is None:
        return dies
    raise_it = raise_nofile(nofile)

    def preexec() -> None:
        dies()
        raise_it()

    return preexec


CAP_SYS_RESOURCE = 24  # the capability that lets a process raise a hard rlimit


def can_raise_hard_limits() -> bool:
    """Whether this process holds CAP_SYS_RESOURCE (root alone may not: a container)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    found = re.search(r"^CapEff:\s+([0-9a-f]+)", status, re.M)
    return bool(found and int(found.group(1), 16) >> CAP_SYS_RESOURCE & 1)


def nofile_granted(nofile: int) -> int:
    """The RLIMIT_NOFILE a child asking for ``nofile`` gets: ``nofile``, or this process's
    hard limit when that is lower and cannot be raised here."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= nofile or can_raise_hard_limits():
        return nofile
    return hard


def raise_nofile(nofile: int) -> Callable[[], None]:
    """A ``preexec_fn`` that sets RLIMIT_NOFILE, soft and hard as ``ulimit -n`` does, to
    :func:`nofile_granted`."""
    granted = nofile_granted(nofile)
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (granted, granted))


def nofile_limit(pid: int | str = "self") -> int | None:
    """The soft RLIMIT_NOFILE of process ``pid`` from ``/proc/<pid>/limits`` (None if it is
    unreadable or unlimited)."""
    try:
        text = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    found = re.search(r"^Max open files\s+(\d+)", text, re.M)
    return int(found.group(1)) if found else None


class ProcessTimeout(RuntimeError):
    """A process exceeded its time limit and was killed."""


@dataclass(frozen=True)
class Completed:
    """A finished process: how long it ran, how it ended and what it printed."""

    argv: tuple[str, ...]
    wall_ns: int
    returncode: int
    stdout: str
    stderr: str
    peak_rss_kib: int
    user_s: float
    system_s: float
    timed_by: str = "launch"
    #: every timed run's fork-to-exit time when ``runs`` > 1 (``wall_ns`` is the first)
    samples_ns: tuple[int, ...] = ()

    def check(self) -> Completed:
        """Raise RuntimeError with the process's stderr tail unless it exited 0."""
        if self.returncode != 0:
            tail = (self.stderr or self.stdout).strip()[-800:]
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.returncode}: {tail}")
        return self


def spawn_and_time(
    argv: Sequence[str | os.PathLike],
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    stdin: int | None = subprocess.DEVNULL,
    pass_fds: Sequence[int] = (),
    warmup: int = 0,
    runs: int = 1,
) -> Completed:
    """Run ``argv`` to completion and time it from fork to exit (see module docstring);
    with ``warmup``/``runs``, untimed runs first and several timed runs in one helper
    (``samples_ns``; ``timeout`` bounds them all together)."""
    if warmup < 0 or runs < 1:
        raise ValueError(f"warmup must be >= 0 and runs >= 1, not {warmup} and {runs}")
    args = tuple(str(a) for a in argv)
    helper = launcher()
    if helper is None:
        return _python_series(args, warmup, runs, timeout=timeout, env=env, cwd=cwd,
                              stdin=stdin, pass_fds=pass_fds)
    counts = (("-w", str(warmup)) if warmup else ()) + (("-n", str(runs)) if runs > 1 else ())
    with tempfile.NamedTemporaryFile(prefix="vb-launch-", suffix=".txt") as report:
        done = _spawn_with_python((helper, *counts, report.name, *args), timeout=timeout,
                                  env=env, cwd=cwd, stdin=stdin, pass_fds=pass_fds)
        lines = Path(report.name).read_text().splitlines()
    if not lines or not lines[0].startswith("VB-LAUNCH"):
        raise RuntimeError(f"launch helper failed for {' '.join(args)}: {done.stderr[-500:]}")
    fields = [parse_launch_line(line) for line in lines]
    last = fields[-1]
    return Completed(
        argv=args, wall_ns=fields[0]["wall_ns"], returncode=last["status"], stdout=done.stdout,
        stderr=done.stderr, peak_rss_kib=last["maxrss_kib"], user_s=last["utime_us"] / 1e6,
        system_s=last["stime_us"] / 1e6, timed_by="launch",
        samples_ns=tuple(f["wall_ns"] for f in fields) if runs > 1 else (),
    )


def _python_series(args: tuple[str, ...], warmup: int, runs: int, **kw) -> Completed:
    """The fallback's warm-up and timed runs, one Popen each."""
    for _ in range(warmup):
        _spawn_with_python(args, **kw)
    done = [_spawn_with_python(args, **kw) for _ in range(runs)]
    samples = tuple(d.wall_ns for d in done) if runs > 1 else ()
    return replace(done[-1], wall_ns=done[0].wall_ns, samples_ns=samples)


def parse_launch_line(line: str) -> dict[str, int]:
    """Fields of the launch helper's ``VB-LAUNCH key=value ...`` report line."""
    words = line.split()
    if not words or words[0] != "VB-LAUNCH":
        raise ValueError(f"not a VB-LAUNCH line: {line!r}")
    return {k: int(v) for k, _, v in (w.partition("=") for w in words[1:])}


@functools.cache
def launcher() -> str | None:
    """Path of the static ``launch`` helper, built once; None when it cannot be built."""
    from virtbench.workloads import build

    try:
        return str(build("launch", "static"))
    except Exception:
        return None


def _spawn_with_python(
    args: tuple[str, ...],
    *,
    timeout: float,
    env: Mapping[str, str] | None,
    cwd: str | os.PathLike | None,
    stdin: int | None,
    pass_fds: Sequence[int],
) -> Completed:
    """Popen + os.wait4 from this process (the fallback, and the launcher's own carrier)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        status: dict = {}
        start = time.perf_counter_ns()
        proc = subprocess.Popen(
            args, stdin=stdin, stdout=out, stderr=err, env=child_env(env), cwd=cwd,
            pass_fds=tuple(pass_fds), start_new_session=True, preexec_fn=die_with_parent(),
        )

        def reap() -> None:
            _, code, usage = os.wait4(proc.pid, 0)
            status["end"] = time.perf_counter_ns()
            status["code"] = code
            status["usage"] = usage

        waiter = threading.Thread(target=reap, daemon=True)
        waiter.start()
        try:
            waiter.join(timeout)
        except BaseException:  # Ctrl-C, SIGTERM turned into an exception: take the group along
            kill_group(proc.pid)
            waiter.join(5)
            raise
        if waiter.is_alive():
            kill_group(proc.pid)
            waiter.join(5)
            proc.returncode = -9
            raise ProcessTimeout(f"{' '.join(args)} did not finish within {timeout:g} s; killed")
        proc.returncode = os.waitstatus_to_exitcode(status["code"])
        out.seek(0)
        err.seek(0)
        usage = status["usage"]
        return Completed(
            argv=args,
            wall_ns=status["end"] - start,
            returncode=proc.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
            peak_rss_kib=int(usage.ru_maxrss),
            user_s=usage.ru_utime,
            system_s=usage.ru_stime,
            timed_by="python",
        )


def kill_group(pid: int) -> None:
    """SIGKILL a process group started with ``start_new_session``; ignore if gone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def interrupt(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """End a tracer or capture the way Ctrl-C does (SIGINT: it writes what it has), and
    SIGKILL it if it has not ended within ``timeout`` seconds; its pipes are drained."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def run_tool(argv: Sequence[str | os.PathLike], timeout: float = 30.0, **kw) -> str:
    """Run a helper tool (not a measurement) and return stdout; raise with stderr on failure."""
    proc = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, **kw
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: "
                           f"{proc.stderr.strip()[-800:]}")
    return proc.stdout


def tool_version(argv: Sequence[str], timeout: float = 10.0) -> str | None:
    """The first line of a tool's version output that holds a version number (such as 1.2);
    None when it is not installed or prints none (a crash's traceback is not a version)."""
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (out.stdout + "\n" + out.stderr).splitlines():
        if re.search(r"\d+\.\d+", line) and not line.startswith(("Traceback", "  File")):
            return line.strip()
    return None


def program_name(pid: int) -> str:
    """Base name of a process's argv[0] ("" if it is gone)."""
    try:
        return Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()).name
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (from /proc/<pid>/task/*/children; [] if it is gone)."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                out += [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
    except OSError:
        return []
    return sorted(set(out))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` in the process tree, parents before their children."""
    out, todo = [], children(pid)
    while todo:
        child = todo.pop(0)
        out.append(child)
        todo += children(child)
    return out


def status_value(pid: int, key: str) -> int | None:
    """The first number of the ``key:`` line of /proc/<pid>/status (None: gone or absent)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name == key:
                return int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (KiB) from /proc/<pid>/status and Pss (KiB) from smaps_rollup."""
    values: dict[str, int] = {}
    for name, keys in (("status", ("VmRSS", "VmHWM")), ("smaps_rollup", ("Pss",))):
        try:
            text = Path(f"/proc/{pid}/{name}").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in keys:
                values[key] = int(rest.split()[0])
    return values


class Instance:
    """A long-running process started by :func:`start_instance` (a server, an idle guest)."""

    def __init__(self, proc: subprocess.Popen, argv: tuple[str, ...], started_ns: int) -> None:
        self.proc = proc
        self.argv = argv
        self.started_ns = started_ns
        self.output: list[str] = []
        self._pending = b""  # read but not yet split into lines

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_for(self, marker: str, timeout: float) -> int:
        """Read stdout lines until one contains ``marker``; return perf_counter_ns at that line.

        Raises ProcessTimeout (with the output so far) if the marker does not come in time,
        RuntimeError if the process exits first.
        """
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, False)

        while True:
            while b"\n" in self._pending:
                raw, self._pending = self._pending.split(b"\n", 1)
                line = raw.decode(errors="replace")
                self.output.append(line)
                if marker in line:
                    return time.perf_counter_ns()
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProcessTimeout(f"{self.argv[0]}: no {marker!r} within {timeout:g} s; "
                                     f"output tail: {self.tail()!r}")
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.argv[0]} exited {self.proc.returncode} before "
                                       f"{marker!r}; output tail: {self.tail()!r}")
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self.proc.wait(timeout=5)
                raise RuntimeError(f"{self.argv[0]} exited {self.proc.returncode} before "
                                   f"{marker!r}; output tail: {self.tail()!r}")
            self._pending += chunk

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.output[-n:])[-1500:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Signal the process (group), wait, then SIGKILL if needed; returns the exit code."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid)
                self.proc.wait(timeout=10)
        kill_group(self.proc.pid)  # what the process forked and left behind in its group
        rest = self.proc.stdout.read() if self.proc.stdout else b""
        if rest:
            self.output.extend(rest.decode(errors="replace").splitlines())
        return self.proc.returncode


@contextmanager
def start_instance(argv: Sequence[str | os.PathLike], *, env: Mapping[str, str] | None = None,
                   cwd: str | os.PathLike | None = None, pass_fds: Sequence[int] = (),
                   stdin: int | None = subprocess.DEVNULL,
                   nofile: int | None = None) -> Iterator[Instance]:
    """Start ``argv`` with stdout piped (stderr merged) and stop it, always, on exit;
    ``nofile``: its RLIMIT_NOFILE (:func:`nofile_preexec`)."""
    args = tuple(str(a) for a in argv)
    started = time.perf_counter_ns()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, stdin=stdin, cwd=cwd, pass_fds=tuple(pass_fds),
                            env=child_env(env), preexec_fn=nofile_preexec(nofile))
    instance = Instance(proc, args, started)
    try:
        yield instance
    finally:
        instance.stop()
        proc.stdout.close()
