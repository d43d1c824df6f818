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
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.process import raise_nofile

LABEL = "virtbench"
OWNER_LABEL = "virtbench.pid"
DEFAULT_SOCKET = "/var/run/docker.sock"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
CLIENT_TIMEOUT_S = 300
PROBE_TIMEOUT_S = 5
MAX_UNIX_PATH = 100  # sun_path holds 108 bytes; leave room for containerd's own files
SYSTEM_DIRS = ("/usr/sbin", "/usr/bin", "/sbin", "/bin")  # searched after PATH for the daemons
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
#: RLIMIT_NOFILE of a private dockerd, inherited by the docker-proxy of a published port,
#: which holds two descriptors per proxied connection (the seed's 10,000 connections)
DOCKERD_NOFILE = 1 << 20
#: OCI runtimes registered with a private dockerd besides runc: name -> (executable, its
#: arguments, Debian package). gVisor runs on its ptrace platform: its kvm platform needs a
#: usable /dev/kvm (on this host's nested KVM, ``runsc --platform=kvm do`` hangs at boot).
#: Its network is ``host`` (the Sentry's sockets are host sockets in the container's network
#: namespace): Debian's runsc 20221219 refuses its own netstack ("cannot run with network
#: enabled in root network namespace") on kernels that show net.core.rmem_default in every
#: network namespace, the file it takes as the mark of the root one.
RUNTIMES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "runsc": ("runsc", ("--platform=ptrace", "--network=host"), "runsc"),
    "crun": ("crun", (), "crun"),
}
DOCKER0 = "/sys/class/net/docker0"


class EngineError(RuntimeError):
    """The engine cannot be used; ``reason`` says exactly why and ``fix`` what to do."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.fix = fix


def labels(**extra: str) -> dict[str, str]:
    """Labels for a container the suite creates: ``virtbench=1`` and the owning process."""
    return {LABEL: "1", OWNER_LABEL: str(os.getpid()), **extra}


def mount_points(mountinfo: str) -> list[str]:
    """The mount points listed in ``/proc/self/mountinfo`` (octal escapes decoded)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)),
                                 fields[4]))
    return points


def search_path() -> str:
    """``$PATH`` followed by the system directories where Debian puts the daemons."""
    return os.pathsep.join([os.environ.get("PATH", ""), *SYSTEM_DIRS])


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def find_processes(name: str) -> list[int]:
    """Pids of processes whose command name (``/proc/<pid>/comm``) is ``name``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm == name[:15]:
            pids.append(int(entry.name))
    return sorted(pids)


def dockerd_failure(log_text: str) -> str:
    """Why a dockerd could not start, from its log.

    dockerd ends a failed start with a plain ``failed to start daemon: ...`` line (which may
    wrap onto a continuation line); otherwise the last ``level=fatal`` or ``level=error``
    message is the best account; failing that, the last line.
    """
    lines = [line.rstrip() for line in log_text.splitlines() if line.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("failed to start daemon"):
            rest = [x.strip() for x in lines[i + 1:] if not x.startswith("time=")]
            return " ".join([lines[i], *rest])
    for level in ("fatal", "error"):
        for line in reversed(lines):
            if f"level={level}" in line:
                msg = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
                return msg.group(1).replace('\\"', '"') if msg else line
    return lines[-1] if lines else "(empty log)"


def explain_failure(reason: str) -> str:
    """The fix that goes with a dockerd start-up failure message."""
    low = reason.lower()
    if "iptables" in low or "nat chain" in low:
        return ("iptables does not work for dockerd; on Debian 12 try "
                "`update-alternatives --set iptables /usr/sbin/iptables-legacy`, or load the "
                "nf_tables/ip_tables modules")
    if "cgroup" in low:
        return "mount the cgroup hierarchies (memory controller) before starting dockerd"
    if "graphdriver" in low or "overlay" in low or "storage-driver" in low:
        return ("the data-root's file system must support overlayfs (ext4/xfs); "
                "check `modprobe overlay`")
    if "pid file" in low or "is still running" in low:
        return "another dockerd uses the same data-root; stop it first"
    if "containerd" in low:
        return "apt-get install containerd"
    return "see the daemon log for details"


def cgroup_memory_status() -> tuple[bool, str]:
    """Whether the memory cgroup controller is mounted (v1 or v2), and which."""
    v2 = Path("/sys/fs/cgroup/cgroup.controllers")
    if v2.exists():
        ok = "memory" in v2.read_text().split()
        return ok, "cgroup v2 (unified)" + ("" if ok else ": no memory controller enabled")
    if Path("/sys/fs/cgroup/memory/memory.usage_in_bytes").exists():
        return True, "cgroup v1 (memory controller at /sys/fs/cgroup/memory)"
    return False, "no memory cgroup controller mounted under /sys/fs/cgroup"


def _probe(argv: list[str]) -> tuple[bool, str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    return proc.returncode == 0, (proc.stderr or proc.stdout).strip()[-300:]


def choose_iptables(bin_dir: Path) -> tuple[Path | None, str]:
    """Which iptables dockerd can use: the default one (None) or a legacy override directory.

    Returns (directory to put first on dockerd's PATH or None, description). Raises
    EngineError when neither the default nor the legacy iptables can list the nat table.
    """
    search = search_path()
    default = shutil.which("iptables", path=search)
    if default is None:
        raise EngineError("iptables not found (dockerd needs it for the default bridge)",
                          "apt-get install iptables")
    ok, why = _probe([default, "-t", "nat", "-L", "-n"])
    if ok:
        return None, f"iptables ({Path(os.path.realpath(default)).name})"
    legacy = shutil.which("iptables-legacy", path=search)
    if legacy:
        ok_legacy, why_legacy = _probe([legacy, "-t", "nat", "-L", "-n"])
        if ok_legacy:
            bin_dir.mkdir(parents=True, exist_ok=True)
            for tool in ("iptables", "iptables-save", "iptables-restore"):
                target = shutil.which(tool.replace("iptables", "iptables-legacy"), path=search)
                link = bin_dir / tool
                if target and not link.is_symlink():
                    link.symlink_to(target)
            return bin_dir, f"iptables-legacy (the default iptables failed: {why})"
        why = f"{why}; iptables-legacy: {why_legacy}"
    raise EngineError(f"iptables cannot list the nat table: {why}", explain_failure("iptables"))


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
            if pid_alive(pid) and name == "dockerd" and str(self.root / "data") in _cmdline(pid):
                self.notes.append(f"stopped an unresponsive private dockerd (pid {pid})")
                self._terminate(pid)
            if not pid_alive(pid) or name == "dockerd":
                pidfile.unlink(missing_ok=True)
        self._unmount_leftovers()
        self.restore_host_network()

    # ---- runtimes ------------------------------------------------------------------------
    def write_config(self) -> None:
        """Write the private daemon's ``daemon.json``: the installed :data:`RUNTIMES`."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(runtime_config(search_path()), indent=2, sort_keys=True) + "\n"
        if _read(str(self.config_file)) == text.strip():
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
        if pid is None or f"--config-file {self.config_file}" not in _cmdline(pid):
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
        """Record iptables (filter and nat), ip_forward and whether docker0 exists.

        An existing record (of a daemon that was never stopped cleanly) is kept: it holds the
        state from before that daemon.
        """
        if self.network_file.is_file():
            return
        save = shutil.which("iptables-save", path=path)
        restore = shutil.which("iptables-restore", path=path)
        iptables = shutil.which("iptables", path=path)
        if not (save and restore and iptables):
            return
        for table in ("filter", "nat"):  # present in the dump, so the restore resets them
            _probe([iptables, "-t", table, "-S"])
        dump = subprocess.run([save], capture_output=True, text=True, timeout=30)
        if dump.returncode != 0:
            return
        state = {"iptables_restore": restore, "iptables": dump.stdout,
                 "ip_forward": _read(IP_FORWARD), "docker0": Path(DOCKER0).exists(),
                 "veths": sorted(host_veths())}
        tmp = self.network_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, self.network_file)

    def restore_host_network(self) -> list[str]:
        """Put back the state :meth:`save_host_network` recorded; return what was done."""
        try:
            state = json.loads(self.network_file.read_text())
        except (OSError, ValueError):
            return []
        done = []
        proc = subprocess.run([state["iptables_restore"]], input=state["iptables"],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            done.append("iptables restored")
        if not state["docker0"]:
            left = leftover_veths(host_veths(), set(state.get("veths", ())))
            for name in left:  # deleting one end of a pair deletes its peer
                subprocess.run(["ip", "link", "delete", name], capture_output=True, timeout=30)
            if left:
                done.append(f"{len(left)} veth(s) deleted")
        if not state["docker0"] and Path(DOCKER0).exists():
            subprocess.run(["ip", "link", "delete", "docker0"], capture_output=True, timeout=30)
            done.append("docker0 deleted")
        if state["ip_forward"] and _read(IP_FORWARD) != state["ip_forward"]:
            Path(IP_FORWARD).write_text(state["ip_forward"])
            done.append(f"ip_forward reset to {state['ip_forward']}")
        self.network_file.unlink(missing_ok=True)
        return done

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
            found = {p for p in find_processes(name) if str(mark) in _cmdline(p)}
            if name == "dockerd" and pid is not None:
                found.add(pid)
            for each in sorted(found):
                if pid_alive(each):
                    self._terminate(each)
        if self._proc is not None:
            self._proc.poll()  # reaped by _terminate; keeps Popen from warning
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
                 if str(self.run_dir / "exec") in _cmdline(p)
                 or any(i in _cmdline(p) for i in ids)]
        for cid in ids:
            for group in (Path("/sys/fs/cgroup/system.slice") / f"docker-{cid}.scope",
                          Path("/sys/fs/cgroup/docker") / cid):
                _kill_cgroup(group)
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

    @staticmethod
    def _terminate(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return
            except ChildProcessError:
                if not pid_alive(pid):
                    return
            time.sleep(0.05)
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    # ---- the suite's objects -------------------------------------------------------------
    def remove_labelled(self, *, only_dead_owners: bool, images: bool = True) -> list[str]:
        """Remove containers (and with ``images`` networks and images) labelled ``virtbench``.

        With ``only_dead_owners`` the containers of other live virtbench processes stay;
        images still used by a container stay in any case. Returns what was removed.
        """
        from docker.errors import APIError, NotFound

        api = self.client.api
        removed: list[str] = []
        for c in api.containers(all=True, filters={"label": LABEL}):
            owner = c.get("Labels", {}).get(OWNER_LABEL, "")
            mine = owner == str(os.getpid())
            if only_dead_owners and owner.isdigit() and pid_alive(int(owner)) and not mine:
                continue
            try:
                api.remove_container(c["Id"], force=True, v=True)
                removed.append(f"container {c['Id'][:12]}")
            except NotFound:
                pass
        if not images:
            return removed
        for n in api.networks(filters={"label": LABEL}):
            try:
                api.remove_network(n["Id"])
                removed.append(f"network {n['Name']}")
            except (NotFound, APIError):
                pass
        for img in api.images(filters={"label": LABEL}):
            for ref in (img.get("RepoTags") or []) + [img["Id"]]:
                if ref == "<none>:<none>":
                    continue
                try:
                    api.remove_image(ref, force=False)
                    removed.append(f"image {ref}")
                except NotFound:
                    break
                except APIError:
                    pass  # in use by a live container, or still tagged elsewhere
        return removed + self._remove_loaded()

    def _remove_loaded(self) -> list[str]:
        """Remove the images the suite loaded from users' archives (tags, then the image)."""
        from docker.errors import APIError, NotFound

        api = self.client.api
        removed = []
        for record in sorted(self.loaded_dir.glob("*")) if self.loaded_dir.is_dir() else []:
            image_id = f"sha256:{record.name}"
            try:
                refs = api.inspect_image(image_id).get("RepoTags") or []
                for ref in refs:
                    api.remove_image(ref, force=False, noprune=False)
                if not refs:
                    api.remove_image(image_id, force=False)
                removed.append(f"image {', '.join(refs) or image_id[:19]} (loaded from a "
                               "user's archive)")
            except NotFound:
                pass
            except APIError:
                continue  # in use by a live container: kept, and so is its record
            record.unlink(missing_ok=True)
        return removed

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


def parse_veths(ip_output: str) -> dict[str, tuple[str, str]]:
    """``ip -o link show type veth`` as name -> (peer name or "ifN", master bridge or "")."""
    out = {}
    for line in ip_output.splitlines():
        parts = line.split(": ", 2)
        if len(parts) < 3:
            continue
        name, _, peer = parts[1].strip().partition("@")
        words = parts[2].split()
        master = words[words.index("master") + 1] if "master" in words[:-1] else ""
        out[name] = (peer, master)
    return out


def host_veths() -> dict[str, tuple[str, str]]:
    """The host's veth links (:func:`parse_veths`); empty when ``ip`` cannot say."""
    try:
        proc = subprocess.run(["ip", "-o", "link", "show", "type", "veth"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_veths(proc.stdout) if proc.returncode == 0 else {}


def leftover_veths(now: dict[str, tuple[str, str]], before: set[str]) -> list[str]:
    """The veths a private daemon that created docker0 left: new since it started, and on
    its bridge or with both ends still on the host (a pair made for a container the daemon
    died before starting); one name per pair."""
    left: list[str] = []
    for name, (peer, master) in sorted(now.items()):
        if name in before or peer in left:
            continue
        if master == "docker0" or peer in now:
            left.append(name)
    return left


def _kill_cgroup(group: Path) -> None:
    """Kill every process of a cgroup (v2 ``cgroup.kill``, else each pid in it)."""
    try:
        if (group / "cgroup.kill").exists():
            (group / "cgroup.kill").write_text("1")
            return
        pids = (group / "cgroup.procs").read_text().split()
    except OSError:
        return
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:300] + (" ..." if len(text) > 300 else "")


def runtime_config(path: str) -> dict:
    """``daemon.json`` content registering the :data:`RUNTIMES` found on ``path``."""
    runtimes = {}
    for name, (exe, args, _) in RUNTIMES.items():
        found = shutil.which(exe, path=path)
        if found:
            runtimes[name] = {"path": found, **({"runtimeArgs": list(args)} if args else {})}
    return {"runtimes": runtimes}


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


def parent_pid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


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
