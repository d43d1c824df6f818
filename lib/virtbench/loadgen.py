"""HTTP on loopback: load with Debian's ``wrk`` (and parse its report), readiness checks."""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from virtbench.process import child_env, nofile_preexec

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_COUNT_UNITS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}
SOCKET_ERRORS = ("connect", "read", "write", "timeout")  # the kinds wrk counts


@dataclass(frozen=True)
class WrkReport:
    """What one wrk run measured; latencies in ms, as wrk's ``--latency`` percentiles."""

    requests: int
    duration_s: float
    requests_per_s: float
    latency_mean_ms: float
    latency_max_ms: float
    percentiles_ms: dict[int, float]
    #: wrk's "Socket errors" line: connect, read, write and timeout counts (all 0 if absent)
    socket_errors: dict[str, int]
    non_2xx: int          # wrk's "Non-2xx or 3xx responses" (0 if absent)

    @property
    def errors(self) -> int:
        """Socket errors of every kind plus non-2xx/3xx responses."""
        return sum(self.socket_errors.values()) + self.non_2xx

    @property
    def ok_per_s(self) -> float:
        """wrk's Requests/sec without its non-2xx/3xx responses (wrk counts every complete
        response, whatever its status)."""
        if not self.requests:
            return 0.0
        return self.requests_per_s * (self.requests - self.non_2xx) / self.requests

    @property
    def p50_ms(self) -> float | None:
        """None when no request completed (wrk then prints zeros: no latency was measured)."""
        return self.percentiles_ms[50] if self.requests else None

    @property
    def p99_ms(self) -> float | None:
        """None when no request completed."""
        return self.percentiles_ms[99] if self.requests else None


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _TIME_UNITS[m.group(2)]


def parse_wrk(output: str) -> WrkReport:
    """Parse ``wrk --latency`` output; raise ValueError naming what is missing."""
    if "unable to connect" in output:
        raise ValueError(f"wrk could not connect: {output.strip()[:200]}")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", output)
    if not (done and rps and latency):
        raise ValueError(f"not a wrk report (no 'requests in' / 'Requests/sec'): "
                         f"{output.strip()[-300:]!r}")
    percentiles = {int(p): _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)}
    if 50 not in percentiles or 99 not in percentiles:
        raise ValueError("wrk output has no latency distribution; run it with --latency")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    socket_errors = dict(zip(SOCKET_ERRORS, (int(x) for x in sock.groups()) if sock
                             else (0,) * len(SOCKET_ERRORS), strict=True))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkReport(
        requests=int(done.group(1)),
        duration_s=_ms(done.group(2) + done.group(3)) / 1e3,
        requests_per_s=float(rps.group(1)),
        latency_mean_ms=_ms(latency.group(1)),
        latency_max_ms=_ms(latency.group(3)),
        percentiles_ms=percentiles,
        socket_errors=socket_errors,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
    )


def run_wrk(port: int, *, duration_s: float, threads: int = 1, connections: int = 10,
            host: str = "127.0.0.1", nofile: int | None = None) -> WrkReport:
    """Load ``http://host:port/`` for ``duration_s`` seconds; loopback addresses only.

    ``nofile``: wrk's RLIMIT_NOFILE (it needs one descriptor per connection); None: the
    inherited limit."""
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise ValueError(f"load is only ever sent to loopback addresses, not {host!r}")
    if shutil.which("wrk") is None:
        raise FileNotFoundError("wrk is not installed (Debian package wrk; run `make setup`)")
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s:g}s", "--latency",
            "--timeout", "5s", f"http://{host}:{port}/"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 60,
                          env=child_env(), preexec_fn=nofile_preexec(nofile))
    return parse_wrk(proc.stdout + proc.stderr)


#: TCP states of a connection that still holds the server's descriptor (not LISTEN,
#: TIME_WAIT or CLOSE), as /proc/net/tcp writes them
_HELD_STATES = {"01", "02", "03", "04", "05", "08", "09", "0B"}


def connections_on(port: int, proc_net: tuple[str, ...] = ("/proc/net/tcp",
                                                             "/proc/net/tcp6")) -> int:
    """Connections whose local end is ``port`` in this network namespace and that are not
    closed yet: the server's side (or a docker-proxy's or QEMU's forwarder's) of each."""
    want = f":{port:04X}"
    held = 0
    for path in proc_net:
        try:
            with open(path) as fh:
                next(fh, None)
                for line in fh:
                    fields = line.split(None, 4)
                    if (len(fields) > 3 and fields[1].endswith(want)
                            and fields[3] in _HELD_STATES):
                        held += 1
        except OSError:
            continue
    return held


def wait_closed(port: int, timeout: float, stall: float = 3.0) -> int:
    """Wait until no connection on ``port`` is held open (see :func:`connections_on`), at
    most ``timeout`` seconds and no longer than ``stall`` seconds without one closing;
    return how many were still open."""
    now = time.monotonic()
    deadline, progress, least = now + timeout, now, None
    while held := connections_on(port):
        now = time.monotonic()
        if least is None or held < least:
            least, progress = held, now
        if now >= deadline or now - progress >= stall:
            break
        time.sleep(0.1)
    return held


def http_ok(port: int, timeout: float = 1.0) -> bool:
    """One ``GET /`` to 127.0.0.1:``port``; True on a 200 answer, False on anything else."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_http(port: int, timeout: float, *, alive: Callable[[], bool] = lambda: True,
              context: Callable[[], str] = lambda: "") -> int:
    """Poll ``GET /`` on 127.0.0.1:``port`` until a 200; return perf_counter_ns of that answer.

    RuntimeError if ``alive()`` turns false first (the server's process exited), TimeoutError
    after ``timeout`` seconds; both carry ``context()`` (e.g. the server's output tail).
    """
    deadline = time.monotonic() + timeout
    while True:
        if http_ok(port, timeout=min(1.0, max(0.05, deadline - time.monotonic()))):
            return time.perf_counter_ns()
        if not alive():
            raise RuntimeError(f"the server behind 127.0.0.1:{port} exited before answering "
                               f"HTTP; {context()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"127.0.0.1:{port} gave no HTTP 200 within {timeout:g} s; "
                               f"{context()}")
        time.sleep(0.002)
