"""The Docker engine the docker variants talk to: which daemon answers, and what it is.

Order of preference: the daemon ``$DOCKER_HOST`` answers on, then the default socket
(``/var/run/docker.sock``), then the suite's private ``dockerd`` under ``<cache>/docker/``:
one already running is joined, else a new one is started. A private daemon is started only
when no other answers.

:class:`DockerEngine` is put together from its parts by job: who uses it and the last
user's clean-up (:mod:`.users`), the private daemon's files, start and stop
(:mod:`.dockerd`), its OCI runtimes (:mod:`.runtimes`) and the suite's labelled objects in it
(:mod:`.objects`).
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.docker.client import DEFAULT_SOCKET, answers, client_for
from virtbench.platforms.docker.dockerd import PrivateDaemon
from virtbench.platforms.docker.objects import SuiteObjects
from virtbench.platforms.docker.procfs import find_processes, parent_pid, pid_alive
from virtbench.platforms.docker.runtimes import EngineRuntimes
from virtbench.platforms.docker.users import EngineUsers


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


class DockerEngine(EngineUsers, PrivateDaemon, EngineRuntimes, SuiteObjects):
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

    # ---- which daemon answers ------------------------------------------------------------
    def _connect(self) -> None:
        self.notes.clear()
        private_url = f"unix://{self.socket}"
        if self.use_existing:
            env_host = os.environ.get("DOCKER_HOST", "")
            if env_host and env_host != private_url:
                if answers(None):
                    self._open(None, f"existing daemon at DOCKER_HOST={env_host}")
                    return
                self.notes.append(f"DOCKER_HOST={env_host} does not answer")
            default = f"unix://{DEFAULT_SOCKET}"
            if Path(DEFAULT_SOCKET).exists() and answers(default):
                self._open(default, f"existing daemon at {default}")
                return
        self._private()

    def _private(self) -> None:
        """Use the private daemon: join a running one, else start a new one."""
        url = f"unix://{self.socket}"
        self.private = True
        if self.socket.exists() and answers(url):
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

    def _open(self, url: str | None, origin: str) -> None:
        self.client = client_for(url)
        self.base_url = url or os.environ.get("DOCKER_HOST", "")
        self._origin = origin

    # ---- what it is ----------------------------------------------------------------------
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


_SHARED: dict[Path, DockerEngine] = {}


def shared_engine(root: Path | None = None) -> DockerEngine:
    """The one engine object of this process for ``root`` (default ``<cache>/docker``)."""
    key = Path(root) if root is not None else cache_dir() / "docker"
    if key not in _SHARED:
        _SHARED[key] = DockerEngine(key)
    return _SHARED[key]
