"""The Docker engine the docker variants talk to: find a running daemon or start a private one.

Order of preference: the daemon ``$DOCKER_HOST`` answers on, then the default socket
(``/var/run/docker.sock``), then a private ``dockerd`` whose data-root, exec-root, pid file,
log and socket live under ``<cache>/docker/``. A private daemon is started only when no other
answers. Every virtbench process using the engine registers itself under
``<cache>/docker/users/<pid>``; the last live user to release it removes the suite's images
and stops a private daemon (also one left running by a crashed run).

A private dockerd reads ``<cache>/docker/daemon.json``, which registers the extra OCI runtimes
installed on the host (:data:`RUNTIMES`: gVisor's ``runsc``, ``crun``); a daemon already running
reloads that file on SIGHUP when a runtime is missing from it (:meth:`DockerEngine.ensure_runtime`).

A private dockerd changes the host's network (iptables chains and policies, ``docker0``,
``ip_forward``): before starting it the suite saves that state to ``<cache>/docker/
host-network.json`` and puts it back whenever the daemon stops (also after an interrupted
start, and on the next run after a crash). Published ports are bound to 127.0.0.1.

Every container, image and network the suite makes carries the label ``virtbench=1`` (and
containers ``virtbench.pid=<owner pid>``). Containers of dead owners are removed when the
engine is acquired; a process removes its own containers when it releases the engine, and
the last user removes the images. A user's own ``docker save`` archive keeps its own
configuration (no label can be added): the image IDs the suite loads from such archives are
recorded under ``<root>/loaded-images/`` before the load, and removed with the suite's
images; an image that was in the engine before (the user's) is never recorded.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.docker import hostnet, objects
from virtbench.platforms.docker.daemonsetup import (
    RUNTIMES,
    EngineError,
    cgroup_memory_status,
    choose_iptables,
    dockerd_failure,
    explain_failure,
    runtime_config,
    search_path,
)
from virtbench.platforms.docker.procfs import (
    cmdline,
    find_processes,
    kill_cgroup,
    mount_points,
    parent_pid,
    pid_alive,
    read_value,
    terminate,
)
from virtbench.process import raise_nofile

DEFAULT_SOCKET = "/var/run/docker.sock"
READY_TIMEOUT_S = 60.0
CLIENT_TIMEOUT_S = 300
PROBE_TIMEOUT_S = 5
MAX_UNIX_PATH = 100  # sun_path holds 108 bytes; leave room for containerd's own files
#: RLIMIT_NOFILE of a private dockerd, inherited by the docker-proxy of a published port,
#: which holds two descriptors per proxied connection (the seed's 10,000 connections)
DOCKERD_NOFILE = 1 << 20


@dataclass(frozen=True)
class EngineFacts:
    """What the engine is, for availability messages and row tags."""

    server_version: str
    api_version: str
    components: dict[str, str]
    storage_driver: str
    cgroup_driver: str
    cgroup_version: str
    origin: str  # "private dockerd started by virtbench at ..." or "existing daemon at ..."

    def summary(self) -> str:
        parts = [f"Docker Engine {self.server_version} (API {self.api_version})"]
        parts += [f"{k} {v}" for k, v in self.components.items() if k != "Engine"]
        parts.append(f"{self.storage_driver}, cgroup v{self.cgroup_version} "
                     f"{self.cgroup_driver}")
        return ", ".join(parts)


class DockerEngine:
    """One Docker daemon used by the docker variants of this process (reference counted)."""

    def __init__(self, root: Path | None = None, *, use_existing: bool = True) -> None:
        self.root = Path(root) if root is not None else cache_dir() / "docker"
        self.use_existing = use_existing
        self.client = None
        self.base_url = ""
        self.dockerd_pid: int | None = None
        self.notes: list[str] = []
        self.leftovers: list[str] = []
        self.private = False  # the private dockerd under root (stopped by its last user)
        self._users = 0
        self._lock = threading.Lock()
        self._facts: EngineFacts | None = None
        self._proc: subprocess.Popen | None = None
        self._origin = ""

    # ---- file layout of a private daemon -------------------------------------------------
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
    def users_dir(self) -> Path:
        return self.root / "users"

    @property
    def network_file(self) -> Path:
        return self.root / "host-network.json"

    @property
    def loaded_dir(self) -> Path:
        return self.root / "loaded-images"

    def record_loaded(self, image_id: str) -> None:
        """Note that the suite loads image ``image_id`` (``sha256:...``) from a user's
        archive, so that it is removed like the suite's own images."""
        self.loaded_dir.mkdir(parents=True, exist_ok=True)
        (self.loaded_dir / image_id.removeprefix("sha256:")).touch()

    def loaded_by_suite(self, image_id: str) -> bool:
        """Whether the suite loaded ``image_id`` (rather than finding it in the engine)."""
        return (self.loaded_dir / image_id.removeprefix("sha256:")).exists()

    # ---- acquire / release ---------------------------------------------------------------
    def acquire(self, *, remove_leftovers: bool = True):
        """A connected ``docker.DockerClient``; starts a private daemon if none answers.

        The first acquisition in this process removes the containers of dead virtbench
        processes (``remove_leftovers``).
        """
        with self._lock:
            if self.client is None:
                self._register()
                try:
                    self._connect()
                except BaseException:
                    self._unregister()
                    raise
                _ACTIVE.append(self)
                if remove_leftovers:
                    alone = not self._live_users()
                    self.leftovers = self.remove_labelled(only_dead_owners=True, images=alone)
            self._users += 1
            return self.client

    def release(self) -> None:
        """Drop one user; the last one in this process calls :meth:`shutdown`."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                self.shutdown()

    def shutdown(self) -> None:
        """Remove this process's containers; the last live user also removes the suite's
        images and networks and stops a private daemon (also when removing failed, or the
        daemon died: then its containers are killed with it). A failure is one EngineError
        line, raised once all of this is done."""
        self._users = 0
        others = self._unregister()
        dead = self.daemon_problem()
        problem = ""
        if self.client is not None:
            try:
                if not dead:
                    self.remove_labelled(only_dead_owners=True, images=not others)
            except Exception as exc:
                problem = f"removing the suite's containers failed: {_one_line(exc)}"
            finally:
                self.client.close()
                self.client = None
        if self.private and (not others or dead):
            self.stop_daemon()
        self.private = False
        self._facts = None
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        if problem:
            raise EngineError(problem)

    def daemon_problem(self) -> str:
        """"" unless this process's private dockerd has died: then say so in one line."""
        pid = self.dockerd_pid
        if not self.private or pid is None or pid_alive(pid):
            return ""
        return (f"the suite's private dockerd (pid {pid}) is not running any more: it was "
                f"killed or crashed (its log: {self.logfile})")

    def _register(self) -> None:
        self.users_dir.mkdir(parents=True, exist_ok=True)
        (self.users_dir / str(os.getpid())).touch()

    def _live_users(self) -> list[int]:
        """The other live virtbench processes using this engine (files of dead ones pruned)."""
        others = []
        if self.users_dir.is_dir():
            for entry in self.users_dir.iterdir():
                pid = int(entry.name) if entry.name.isdigit() else -1
                if pid == os.getpid():
                    continue
                if pid < 0 or not pid_alive(pid):
                    entry.unlink(missing_ok=True)
                else:
                    others.append(pid)
        return sorted(others)

    def _unregister(self) -> list[int]:
        """Remove this process from the users; return the other live users."""
        (self.users_dir / str(os.getpid())).unlink(missing_ok=True)
        return self._live_users()

    # ---- connecting ----------------------------------------------------------------------
    def _connect(self) -> None:
        self.notes.clear()
        private_url = f"unix://{self.socket}"
        if self.use_existing:
            env_host = os.environ.get("DOCKER_HOST", "")
            if env_host and env_host != private_url:
                if self._ping(None):
                    self._open(None, f"existing daemon at DOCKER_HOST={env_host}")
                    return
                self.notes.append(f"DOCKER_HOST={env_host} does not answer")
            default = f"unix://{DEFAULT_SOCKET}"
            if Path(DEFAULT_SOCKET).exists() and self._ping(default):
                self._open(default, f"existing daemon at {default}")
                return
        self._private()

    @staticmethod
    def _client(url: str | None, timeout: int):
        """A client for ``url``, or for the environment (DOCKER_HOST, TLS settings) if None."""
        import docker

        if url is None:
            return docker.from_env(version="auto", timeout=timeout)
        return docker.DockerClient(base_url=url, version="auto", timeout=timeout)

    def _ping(self, url: str | None) -> bool:
        try:
            client = self._client(url, PROBE_TIMEOUT_S)
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def _open(self, url: str | None, origin: str) -> None:
        self.client = self._client(url, CLIENT_TIMEOUT_S)
        self.base_url = url or os.environ.get("DOCKER_HOST", "")
        self._origin = origin

    def _private(self) -> None:
        """Use the private daemon: join a running one, else start a new one."""
        url = f"unix://{self.socket}"
        self.private = True
        if self.socket.exists() and self._ping(url):
            try:
                pid = int(self.pidfile.read_text().strip())
                self.dockerd_pid = pid if pid_alive(pid) else None
            except (OSError, ValueError):
                self.dockerd_pid = None
            self._open(url, f"private dockerd at {self.socket} (already running; stopped by "
                            f"its last virtbench user)")
            return
        self._kill_stale()
        try:
            self._start()
        except BaseException:
            self.private = False
            raise
        self._open(url, f"private dockerd started by virtbench (socket {self.socket}, "
                        f"data-root {self.root / 'data'})")

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

    # ---- runtimes ------------------------------------------------------------------------
    def write_config(self) -> None:
        """Write the private daemon's ``daemon.json``: the installed :data:`RUNTIMES`."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(runtime_config(search_path()), indent=2, sort_keys=True) + "\n"
        if read_value(str(self.config_file)) == text.strip():
            return
        tmp = self.config_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_file)

    def runtimes(self) -> dict[str, str]:
        """The engine's OCI runtimes: name -> its command line (``docker info`` .Runtimes)."""
        found = self.client.info().get("Runtimes") or {}
        return {name: " ".join([str((conf or {}).get("path", "")),
                                *((conf or {}).get("runtimeArgs") or [])])
                for name, conf in found.items()}

    def ensure_runtime(self, name: str) -> str:
        """Make sure the engine offers OCI runtime ``name``; return how it is registered.

        A private daemon started with the suite's ``daemon.json`` reloads it (SIGHUP) when
        the runtime was installed after it started; other engines are never reconfigured.
        Raises EngineError saying why the runtime is not there and what to do.
        """
        if name not in RUNTIMES:
            raise ValueError(f"unknown runtime {name!r}; valid: {', '.join(RUNTIMES)}")
        exe, args, package = RUNTIMES[name]
        path = shutil.which(exe, path=search_path())
        if path is None:
            raise EngineError(f"{exe} not found (Debian package {package})",
                              f"apt-get install {package}")
        have = self.runtimes()
        if name in have:
            return f"runtime {name} ({have[name]})"
        if not self.private:
            raise EngineError(f"the engine in use ({self._origin}) has no runtime {name!r} "
                              "and virtbench does not reconfigure a daemon it did not start",
                              "register it (e.g. `runsc install` or a \"runtimes\" entry in "
                              "the daemon's daemon.json, then reload it), or unset "
                              "DOCKER_HOST and stop that daemon so the suite starts its own")
        pid = self.dockerd_pid
        if pid is None or f"--config-file {self.config_file}" not in cmdline(pid):
            raise EngineError(f"the running private dockerd (pid {pid}) was started without "
                              f"{self.config_file}, so it cannot gain runtime {name!r}",
                              "rerun when no other virtbench run uses the engine (its last "
                              "user stops it; the next start registers the runtimes)")
        self.write_config()
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            have = self.runtimes()
            if name in have:
                self.notes.append(f"runtime {name} added to the running dockerd (SIGHUP)")
                return f"runtime {name} ({have[name]})"
            time.sleep(0.1)
        raise EngineError(f"dockerd (pid {pid}) did not register runtime {name!r} after "
                          f"reloading {self.config_file}", f"see {self.logfile}")

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
            if self.socket.exists() and self._ping(url):
                return
            time.sleep(0.1)
        reason = dockerd_failure(self._log_text())
        raise EngineError(f"dockerd did not answer on {self.socket} within {READY_TIMEOUT_S:g} s;"
                          f" last log message: {reason}", explain_failure(reason))

    # ---- the host's network state around a private daemon -------------------------------
    def save_host_network(self, path: str) -> None:
        """Record the host's network state before a private daemon starts
        (:func:`hostnet.save`; an existing record, of a daemon never stopped cleanly, is kept)."""
        hostnet.save(self.network_file, path)

    def restore_host_network(self) -> list[str]:
        """Put back what :meth:`save_host_network` recorded; return what was done."""
        return hostnet.restore(self.network_file)

    def _log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

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

    # ---- the suite's objects -------------------------------------------------------------
    def remove_labelled(self, *, only_dead_owners: bool, images: bool = True) -> list[str]:
        """Remove the suite's objects from the engine (:func:`objects.remove_labelled`)."""
        return objects.remove_labelled(self.client.api, self.loaded_dir,
                                       only_dead_owners=only_dead_owners, images=images)

    # ---- facts ---------------------------------------------------------------------------
    def facts(self) -> EngineFacts:
        """Versions and modes of the engine (cached)."""
        if self._facts is None:
            version = self.client.version()
            info = self.client.info()
            comps = {c["Name"]: c.get("Version", "") for c in version.get("Components", [])}
            self._facts = EngineFacts(
                server_version=version.get("Version", "?"),
                api_version=self.client.api.api_version,
                components=comps,
                storage_driver=info.get("Driver", "?"),
                cgroup_driver=info.get("CgroupDriver", "?"),
                cgroup_version=str(info.get("CgroupVersion", "1")),
                origin=self._origin,
            )
        return self._facts

    def daemon_pids(self) -> dict[str, int]:
        """Pids of dockerd and containerd on this host (empty for a remote daemon)."""
        out = {}
        if self.dockerd_pid and pid_alive(self.dockerd_pid):
            out["dockerd"] = self.dockerd_pid
        else:
            found = find_processes("dockerd")
            if len(found) == 1:
                out["dockerd"] = found[0]
        containerd = [p for p in find_processes("containerd")
                      if "dockerd" not in out or parent_pid(p) == out["dockerd"]]
        if not containerd:
            containerd = find_processes("containerd")
        if len(containerd) == 1:
            out["containerd"] = containerd[0]
        return out


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:300] + (" ..." if len(text) > 300 else "")


_SHARED: dict[Path, DockerEngine] = {}
_ACTIVE: list[DockerEngine] = []


def shared_engine(root: Path | None = None) -> DockerEngine:
    """The one engine object of this process for ``root`` (default ``<cache>/docker``)."""
    key = Path(root) if root is not None else cache_dir() / "docker"
    if key not in _SHARED:
        _SHARED[key] = DockerEngine(key)
    return _SHARED[key]


@atexit.register
def _release_active() -> None:
    """Safety net: release engines still held when the interpreter exits."""
    for engine in list(_ACTIVE):
        try:
            engine.shutdown()
        except Exception:
            if engine.private and not engine._unregister():
                engine.stop_daemon()
