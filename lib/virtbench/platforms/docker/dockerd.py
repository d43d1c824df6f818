"""The suite's private ``dockerd``: its files, its start and its stop, and what a crashed one
left behind. Mixed into :class:`virtbench.platforms.docker.engine.DockerEngine`.

Its data-root, exec-root, pid file, log and socket live under ``<cache>/docker/`` (the socket
and exec-root under ``/run`` when that path is too long for a unix socket). It reads
``<cache>/docker/daemon.json`` (:mod:`.runtimes`) and publishes ports without an address on
127.0.0.1 only.

A private dockerd changes the host's network (iptables chains and policies, ``docker0``,
``ip_forward``): before starting it the suite saves that state to ``<cache>/docker/
host-network.json`` and puts it back whenever the daemon stops (also after an interrupted
start, and on the next run after a crash).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from virtbench.platforms.docker import hostnet
from virtbench.platforms.docker.client import DEFAULT_SOCKET, answers
from virtbench.platforms.docker.daemonsetup import (
    EngineError,
    cgroup_memory_status,
    choose_iptables,
    dockerd_failure,
    explain_failure,
    search_path,
)
from virtbench.platforms.docker.procfs import (
    cmdline,
    find_processes,
    kill_cgroup,
    mount_points,
    pid_alive,
    terminate,
)
from virtbench.process import raise_nofile

READY_TIMEOUT_S = 60.0
MAX_UNIX_PATH = 100  # sun_path holds 108 bytes; leave room for containerd's own files
#: RLIMIT_NOFILE of a private dockerd, inherited by the docker-proxy of a published port,
#: which holds two descriptors per proxied connection (the seed's 10,000 connections)
DOCKERD_NOFILE = 1 << 20


class PrivateDaemon:
    """The private dockerd under ``root`` (needs ``root``, ``notes``, ``private``,
    ``dockerd_pid``, ``_proc`` and :meth:`write_config`)."""

    # ---- file layout ---------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        """Where the socket and exec-root go: under root, or a short path if root is long."""
        long_path = self.root / "exec" / "containerd" / "containerd.sock"
        if len(str(long_path)) <= MAX_UNIX_PATH:
            return self.root
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        return Path("/run") / f"virtbench-docker-{digest}"

    @property
    def socket(self) -> Path:
        return self.run_dir / "docker.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def logfile(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def config_file(self) -> Path:
        return self.root / "daemon.json"

    @property
    def network_file(self) -> Path:
        return self.root / "host-network.json"

    def daemon_problem(self) -> str:
        """"" unless this process's private dockerd has died: then say so in one line."""
        pid = self.dockerd_pid
        if not self.private or pid is None or pid_alive(pid):
            return ""
        return (f"the suite's private dockerd (pid {pid}) is not running any more: it was "
                f"killed or crashed (its log: {self.logfile})")

    # ---- starting ------------------------------------------------------------------------
    def _kill_stale(self) -> None:
        """Clear what a crashed run left: a dockerd that no longer answers, dead pid files.

        dockerd refuses to start while its pid file names a live process, and waits for the
        containerd named in ``<exec-root>/containerd/containerd.pid`` if that one exists (a
        zombie counts as existing), so pid files of dead or zombie processes are removed.
        """
        for pidfile, name in ((self.pidfile, "dockerd"),
                              (self.run_dir / "exec" / "containerd" / "containerd.pid",
                               "containerd")):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            if pid_alive(pid) and name == "dockerd" and str(self.root / "data") in cmdline(pid):
                self.notes.append(f"stopped an unresponsive private dockerd (pid {pid})")
                terminate(pid)
            if not pid_alive(pid) or name == "dockerd":
                pidfile.unlink(missing_ok=True)
        self._unmount_leftovers()
        self.restore_host_network()

    def preflight(self) -> dict[str, str]:
        """Check what a private dockerd needs; return the executables; raise EngineError."""
        if os.geteuid() != 0:
            raise EngineError(
                f"no Docker daemon answers (DOCKER_HOST unset or silent, no {DEFAULT_SOCKET}) "
                f"and starting dockerd needs root (running as uid {os.geteuid()})",
                "run as root, or set DOCKER_HOST to a daemon this user may use")
        tools = {}
        search = search_path()
        for tool, package in (("dockerd", "docker.io"), ("containerd", "containerd"),
                              ("containerd-shim-runc-v2", "containerd"), ("runc", "runc")):
            path = shutil.which(tool, path=search)
            if path is None:
                raise EngineError(f"{tool} not found (Debian package {package})",
                                  f"apt-get install {package}")
            tools[tool] = path
        ok, why = cgroup_memory_status()
        if not ok:
            raise EngineError(f"cgroup problem: {why}", explain_failure("cgroup"))
        return tools

    def _start(self) -> None:
        tools = self.preflight()
        path_dir, iptables = choose_iptables(self.root / "bin")
        self.notes.append(f"dockerd uses {iptables}")
        for d in (self.root / "data", self.run_dir / "exec"):
            d.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        env = dict(os.environ)
        env.pop("DOCKER_HOST", None)
        env.pop("VIRTBENCH_RUN", None)  # shared by later runs: not one run's leftover
        env["PATH"] = search_path() if path_dir is None else f"{path_dir}:{search_path()}"
        argv = [tools["dockerd"], "--data-root", str(self.root / "data"),
                "--exec-root", str(self.run_dir / "exec"), "--pidfile", str(self.pidfile),
                "-H", f"unix://{self.socket}", "--config-file", str(self.config_file)]
        self.write_config()
        argv += ["--ip", "127.0.0.1"]  # ports published without an address stay on loopback
        self.save_host_network(env["PATH"])
        try:
            with open(self.logfile, "wb") as log:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                        preexec_fn=raise_nofile(DOCKERD_NOFILE))
            self._proc = proc
            self.dockerd_pid = proc.pid
            self._wait_ready(proc)
        except BaseException:  # a failed or interrupted start leaves nothing running
            self.stop_daemon()
            raise

    def _wait_ready(self, proc: subprocess.Popen) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        url = f"unix://{self.socket}"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                reason = dockerd_failure(self._log_text())
                raise EngineError(f"dockerd exited {proc.returncode} at start-up: {reason} "
                                  f"(log: {self.logfile})", explain_failure(reason))
            if self.socket.exists() and answers(url):
                return
            time.sleep(0.1)
        reason = dockerd_failure(self._log_text())
        raise EngineError(f"dockerd did not answer on {self.socket} within {READY_TIMEOUT_S:g} s;"
                          f" last log message: {reason}", explain_failure(reason))

    def _log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    # ---- the host's network state around it ----------------------------------------------
    def save_host_network(self, path: str) -> None:
        """Record the host's network state before a private daemon starts
        (:func:`hostnet.save`; an existing record, of a daemon never stopped cleanly, is kept)."""
        hostnet.save(self.network_file, path)

    def restore_host_network(self) -> list[str]:
        """Put back what :meth:`save_host_network` recorded; return what was done."""
        return hostnet.restore(self.network_file)

    # ---- stopping ------------------------------------------------------------------------
    def stop_daemon(self) -> None:
        """SIGTERM the private dockerd (it stops its containerd), then SIGKILL if it hangs.

        The daemon is also found by its data-root on the command line (an interrupted start
        may leave neither a pid file nor a Popen object), and a containerd it left behind
        by its exec-root.
        """
        pid = self.dockerd_pid
        if pid is None:
            try:
                pid = int(self.pidfile.read_text().strip())
            except (OSError, ValueError):
                pid = None
        for name, mark in (("dockerd", self.root / "data"), ("containerd", self.run_dir / "exec")):
            found = {p for p in find_processes(name) if str(mark) in cmdline(p)}
            if name == "dockerd" and pid is not None:
                found.add(pid)
            for each in sorted(found):
                if pid_alive(each):
                    terminate(each)
        if self._proc is not None:
            self._proc.poll()  # reaped by terminate(); keeps Popen from warning
            self._proc = None
        self._kill_containers()
        self._unmount_leftovers()
        self.dockerd_pid = None
        self.socket.unlink(missing_ok=True)
        self.restore_host_network()

    def _kill_containers(self) -> None:
        """Kill what the containers of this daemon left running once it is gone (a daemon
        killed with SIGKILL leaves its shims and containers, and their network namespaces
        keep a veth pair on the host): their shims, by the exec-root on the command line,
        and their processes, by the cgroups named after their ids."""
        containers = self.root / "data" / "containers"
        try:
            ids = [d.name for d in containers.iterdir() if len(d.name) == 64]
        except OSError:
            ids = []
        shims = [p for p in find_processes("containerd-shim-runc-v2")
                 if str(self.run_dir / "exec") in cmdline(p)
                 or any(i in cmdline(p) for i in ids)]
        for cid in ids:
            for group in (Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope",
                          Path("/sys/fs/cgroup/docker") / cid):
                kill_cgroup(group)
        for pid in shims:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _unmount_leftovers(self) -> None:
        """Unmount what a stopped dockerd leaves mounted: its data-root bind, netns handles."""
        prefixes = (f"{self.root / 'data'}", f"{self.run_dir / 'exec'}")
        try:
            points = mount_points(Path("/proc/self/mountinfo").read_text())
        except OSError:
            return
        for point in sorted((p for p in points if p.startswith(prefixes)), key=len,
                            reverse=True):
            try:
                subprocess.run(["umount", point], capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
