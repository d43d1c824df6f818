"""Dask plumbing: a benchmark worker (``virtbench worker``) and a scheduler with N worker
processes on loopback (``virtbench campaign --local N``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from virtbench.campaign.plan import HOST_PATTERN
from virtbench.campaign.worker import RESOURCE, host_resource, local_root
from virtbench.process import die_with_parent


def worker_argv(address: str, name: str) -> list[str]:
    """``dask worker`` for one benchmark host: one thread, no nanny (a worker that dies
    stays gone, and the campaign reports its cells), and the host's exclusive resources."""
    if not HOST_PATTERN.match(name):
        raise ValueError(f"invalid host name {name!r}; use 1-63 letters, digits, '.', '_' or "
                         "'-', starting with a letter or digit")
    return [sys.executable, "-m", "distributed.cli.dask_worker", address, "--name", name,
            "--nthreads", "1", "--nworkers", "1", "--no-nanny",
            "--resources", f"{RESOURCE}=1 {host_resource(name)}=1"]


def exec_worker(address: str, name: str) -> None:
    """Replace this process with the benchmark worker of ``name``."""
    argv = worker_argv(address, name)
    os.execv(argv[0], argv)


@contextmanager
def local(n: int) -> Iterator[str]:
    """A scheduler on loopback and ``n`` worker processes labelled ``local-1`` ...
    ``local-N``; yields the scheduler's address. Worker logs go to
    ``<datasets>/.campaigns/<host>/worker.log``."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=0, host="127.0.0.1", scheduler_port=0,
                           dashboard_address=None, processes=True)
    procs: list[subprocess.Popen] = []
    try:
        for i in range(1, n + 1):
            name = f"local-{i}"
            log_dir = local_root(name)
            log_dir.mkdir(parents=True, exist_ok=True)
            with (log_dir / "worker.log").open("ab") as log:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "virtbench", "worker", cluster.scheduler_address,
                     "--name", name], stdout=log, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, preexec_fn=die_with_parent()))
        yield cluster.scheduler_address
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        cluster.close()
