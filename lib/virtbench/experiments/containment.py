"""Containment: what a program inside an instance reaches of the host beside it.

The harness puts three things on the host, each holding a fresh secret token: a file in a
private temporary folder, a process whose command line holds the token, and a TCP listener
on the host's 127.0.0.1. The built-in ``contain`` workload, run in the instance with the
token reversed (so its own command line does not hold it), tries to read the file, to find
the process in ``/proc`` and to send the token to the listener; and it asks ``uname(2)``
which kernel serves it. Each attempt is judged on the host side where it can be (the
listener says whether the token arrived; the host's own release is compared with the one
the instance reported).

It is the measured side of the "security" ratings, declared as a proxy: of four ways a
program could reach its host (its files, its processes, its loopback services, its kernel),
how many the platform's boundary closes. It does not measure how hard a boundary is to break
(a kernel or hypervisor exploit), only what the boundary leaves in reach. The kernel answer
also feeds the "any OS" reading of compatibility: whether the instance runs the kernel the
harness handed it (:meth:`Platform.supplied_kernel`).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Params
from virtbench.metric import Metric
from virtbench.platforms.base import Platform, Workload
from virtbench.process import die_with_parent, interrupt
from virtbench.store.schema import Measurement

NAME = "containment"
ATTEMPTS = ("file", "process", "loopback", "kernel")
UNIT = "attempts closed (of 4)"
KERNEL_UNIT = "ran (1/0)"

METRICS = (
    Metric("escapes_closed", NAME, UNIT, "higher",
           "of four attempts a program in the instance made to reach its host, how many "
           "found nothing: reading a file the harness wrote in a private host folder, finding "
           "the harness's sentinel process in /proc, sending a token to a listener on the "
           "host's 127.0.0.1 (judged by the listener), and being served by the host's own "
           "kernel (uname(2) release compared with the host's)", exact=True),
    Metric("supplied_kernel_ran", NAME, KERNEL_UNIT, "higher",
           "1 when uname(2) inside the instance answered the release of the kernel the "
           "harness handed the platform to boot (a VM's guest kernel); 0 when it answered "
           "another kernel (the host's, gVisor's Sentry) or the platform takes no kernel",
           exact=True),
)

LISTEN_S = 0.2
RUN_TIMEOUT_S = 180.0


@dataclass
class Listener:
    """A TCP listener on the host's 127.0.0.1 that records whether ``token`` arrived."""

    token: str
    port: int = 0
    received: bool = False
    _sock: socket.socket | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Listener:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(LISTEN_S)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(2.0)
                data = b""
                try:
                    while len(data) < 256 and (chunk := conn.recv(256)):
                        data += chunk
                except OSError:
                    pass
            if self.token.encode() in data:
                self.received = True

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._sock is not None:
            self._sock.close()


@contextmanager
def sentinels(token: str) -> Iterator[tuple[Path, int]]:
    """A file holding ``token`` in a private host folder and a host process whose command line
    holds it, for as long as the block lasts: (file, process id)."""
    with tempfile.TemporaryDirectory(prefix="vb-contain-") as tmp:
        secret = Path(tmp) / "secret"
        secret.write_text(token + "\n")
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)",
                                 f"vb-sentinel-{token}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=die_with_parent())
        try:
            yield secret, proc.pid
        finally:
            interrupt(proc, timeout=5)


def judge(result: dict[str, str], listened: bool, host_kernel: str,
          supplied: str | None) -> dict[str, bool]:
    """Which attempts reached the host, from the workload's report and the host's side."""
    for key in ("file", "process", "loopback", "kernel"):
        if key not in result:
            raise RuntimeError(f"the contain workload reported no {key}= (got {result})")
    return {"file": result["file"] == "1", "process": result["process"] == "1",
            "loopback": listened, "kernel": result["kernel"] == host_kernel,
            "supplied_kernel": supplied is not None and result["kernel"] == supplied}


def measure_containment(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    token = secrets.token_hex(16)
    host_kernel = os.uname().release
    supplied = plat.supplied_kernel()
    with sentinels(token) as (secret, pid), Listener(token) as listener:
        outcome = plat.run(Workload("contain"), [str(secret), str(listener.port), token[::-1]],
                           timeout=RUN_TIMEOUT_S)
        reached = judge(outcome.result, listener.received, host_kernel, supplied)
    closed = sum(not reached[a] for a in ATTEMPTS)
    tags = {**{f"reached_{a}": str(int(reached[a])) for a in ATTEMPTS},
            "instance_kernel": outcome.result["kernel"], "host_kernel": host_kernel,
            "loopback_api": "none" if outcome.result["loopback"] == "noapi" else "sockets",
            "supplied_kernel": supplied or "none"}
    what = ("the contain workload in the instance tried to read a host file "
            f"({secret.parent.name}/secret), to find the host process {pid} in /proc, to send "
            f"a token to the host's 127.0.0.1:{listener.port}, and reported its kernel "
            f"{outcome.result['kernel']!r} (the host's: {host_kernel!r})")
    out = [Measurement("escapes_closed", float(closed), UNIT,
                       f"attempts that found nothing of the host: {what}; reached: "
                       + (", ".join(a for a in ATTEMPTS if reached[a]) or "none"), tags=tags)]
    if supplied is None:
        out.append(Measurement("supplied_kernel_ran", 0.0, KERNEL_UNIT,
                               f"{plat.variant} takes no kernel to boot: its instance reported "
                               f"the kernel {outcome.result['kernel']!r}", tags=tags))
    else:
        out.append(Measurement("supplied_kernel_ran", float(reached["supplied_kernel"]),
                               KERNEL_UNIT, f"the platform was handed the kernel {supplied!r} "
                               f"to boot; its instance reported {outcome.result['kernel']!r}",
                               tags=tags))
    return out


EXPERIMENT = Experiment(
    NAME, "containment: what a program in the instance reaches of its host (a file, a "
    "process, a loopback listener, the kernel), and whether a kernel handed to the platform "
    "is the one that ran", measure_containment, workloads=("contain",), reps=3,
    quick_reps=1, warmup=0, quick_skips=QUICK_SKIPS_TCG_PC, metrics=METRICS,
    primary=(("escapes_closed", {}), ("supplied_kernel_ran", {})))
