"""Docker containers: runc running the static workloads, and the Docker + Wasm hybrid.

Images are built offline (no registry here): ``FROM scratch`` with the static workload
binary (``docker/runc``), or with the wasmtime CLI, the shared libraries it needs and the
``.wasm`` workload (``docker+wasm/wasmtime-cli``). A user's own ``docker save`` archive
(spec key ``image``) is loaded as it is and runs the spec's command inside it (runc
variants only). Every timed interval is taken with
``time.perf_counter_ns`` around Docker SDK calls (``docker.APIClient``), from the call to
its return; each measurement's description names the calls it spans.

A running container's handle names its init (whose cgroup is the container's: the memory
experiment reads it there, not from the docker client, whose rusage describes the client)
and the host processes outside that cgroup (its ``containerd-shim-runc-v2``, docker-proxy);
dockerd and containerd are the shared processes behind every container.

This module holds the variant's availability, its engine and one container run; the images
(:mod:`.imagestore`), the timed start sequences (:mod:`.starts`) and long-running containers
(:mod:`.serving`) are mixed in from their own modules.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from virtbench import distro
from virtbench.cgroup import (
    group_peak,
    peak_group_name,
    remove_group,
)
from virtbench.platforms.base import (
    Availability,
    NotSupported,
    Peak,
    Platform,
    RunOutcome,
    Workload,
    substitute_workdir,
)
from virtbench.platforms.docker.daemonsetup import RUNTIMES, EngineError, search_path
from virtbench.platforms.docker.engine import DockerEngine, shared_engine
from virtbench.platforms.docker.images import (
    WORKDIR_IN_CONTAINER,
    short_start_error,
    version_of,
)
from virtbench.platforms.docker.imagestore import DISTRO_WORKLOAD_DIR, ImageStore
from virtbench.platforms.docker.objects import labels
from virtbench.platforms.docker.procfs import cmdline, find_processes
from virtbench.platforms.docker.serving import Serving
from virtbench.platforms.docker.starts import StartSequences, Timed
from virtbench.process import program_name, read_proc_status
from virtbench.spec import WorkloadSpec, stage_dirs
from virtbench.workloads import parse_result_line, toolchain_status

#: How the debian userland starts a workload: through the image's own shell, which execs it.
SHELL_EXEC = ("/bin/sh", "-c", 'exec "$0" "$@"')
RUN_INTERVAL = ("from the SDK call APIClient.create_container to APIClient.wait returning "
                "the exit status (create, start, the workload's run and exit; network {net}; "
                "removal not included)")


# ---- timed container runs -------------------------------------------------------------------

# ---- the platform ---------------------------------------------------------------------------

class DockerPlatform(ImageStore, StartSequences, Serving, Platform):
    """What the docker variants share: the engine, images, timed runs and measurements."""

    family = "docker"
    networks: ClassVar[tuple[str, ...]] = ("bridge", "none")  # the first is the default

    @property
    def own_network_namespace(self) -> bool:  # type: ignore[override]
        return self.networks[0] != "host"
    bind_workdir: ClassVar[bool] = False
    image_kind: ClassVar[str] = "runc"
    #: The engine's OCI runtime for this variant's containers (None: the engine's default,
    #: runc); another one is registered with the engine (:meth:`DockerEngine.ensure_runtime`).
    runtime: ClassVar[str | None] = None

    def __init__(self, engine: DockerEngine | None = None, *, drop_caches: bool = False) -> None:
        self.engine = engine or shared_engine()
        self.drop_caches = drop_caches
        self._client = None

    def with_userland(self, name: str) -> DockerPlatform:
        """The same variant on the same engine, its images made from the ``name`` userland."""
        if name not in self.userlands:
            return super().with_userland(name)  # type: ignore[return-value]
        sibling = type(self)(self.engine, drop_caches=self.drop_caches)
        sibling.userland = name
        return sibling

    # -- availability and engine --
    def requirements(self) -> tuple[bool, str, str]:
        """What this variant needs besides the engine: (ok, reason, fix)."""
        ok, why = toolchain_status()["static"]
        return ok, why, "install clang and libc6-dev"

    def check(self) -> Availability:
        try:
            import docker  # noqa: F401
        except ImportError as exc:
            return Availability(False, f"the Docker SDK is not installed: {exc}",
                                "pip install 'docker>=7'")
        ok, why, fix = self.requirements()
        if not ok:
            return Availability(False, why, fix)
        try:
            if self._client is None:
                self._client = self.engine.acquire()
            facts = self.engine.facts()
            runtime = self.engine.ensure_runtime(self.runtime) if self.runtime else ""
        except EngineError as exc:
            return Availability(False, exc.reason, exc.fix)
        notes = "; ".join([facts.origin, *self.engine.notes, self.describe_mode(),
                           *([distro.status()] if self.userlands else [])])
        version = facts.summary()
        if runtime:
            version = f"{version}; {runtime}: {self.runtime_version()}"
        return Availability(True, notes, version=version)

    def runtime_version(self) -> str:
        """The OCI runtime's own version line (``<runtime> --version``, first line)."""
        exe = RUNTIMES[self.runtime][0] if self.runtime else "runc"
        return version_of(Path(shutil.which(exe, path=search_path()) or exe))

    def describe_mode(self) -> str:
        return (f"networks {', '.join(self.networks)}; work directory "
                f"{'bind-mounted from the host' if self.bind_workdir else 'on the overlay fs'}")

    @property
    def api(self):
        if self._client is None:
            avail = self.availability
            if not avail.available:
                raise NotSupported(avail.reason)
            if self._client is None:  # closed earlier: take the engine again
                self._client = self.engine.acquire()
        return self._client.api

    def close(self) -> None:
        if self._client is not None:
            self._client = None
            self.engine.release()

    def health(self) -> str:
        return self.engine.daemon_problem()

    def collector_route(self) -> tuple[str, str]:
        """On the host network, the host's loopback; on the bridge, the bridge's gateway (an
        address of the host on the engine's own bridge), where the collector listens."""
        if self.networks[0] == "host":
            return "127.0.0.1", "127.0.0.1"
        try:
            gateway = self.api.inspect_network(self.networks[0])["IPAM"]["Config"][0]["Gateway"]
        except (KeyError, IndexError, TypeError) as exc:
            raise NotSupported(f"the engine's {self.networks[0]} network has no gateway "
                               f"address: {exc!r}") from None
        return gateway, gateway

    def capture_traffic(self, port: int, address: str):
        """On the bridge, at the engine's bridge interface: packets from the container's own
        address (not docker-proxy's); on the host network, the host's loopback."""
        from virtbench.netcapture import tcpdump

        if self.networks[0] == "host":
            return tcpdump("lo", port, "the host's loopback (lo): the container shares the "
                           "host's network namespace", f"dst host {address}")
        options = self.api.inspect_network(self.networks[0]).get("Options") or {}
        bridge = options.get("com.docker.network.bridge.name", "docker0")
        return tcpdump(bridge, port, f"the engine's bridge {bridge}: packets from the "
                       "container's own address", f"dst host {address} and not src host "
                       f"{address}")

    def describe_userland(self) -> str:
        if self.userland != "debian":
            return ""
        return (f"userland debian: one image made by docker import of {distro.build_rootfs().label}"
                f" with the static workloads under {DISTRO_WORKLOAD_DIR}; each workload started "
                "by the image's /bin/sh (dash): sh -c 'exec \"$0\" \"$@\"' WORKLOAD ARGS")

    # -- images --
    def argv(self, workload: Workload, args: Sequence[str]) -> list[str]:
        """The container's command for ``workload`` with ``args`` (after a user's own); on the
        debian userland, the image's shell (Debian's dash) starts it:
        ``/bin/sh -c 'exec "$0" "$@"' ...``."""
        user = workload.user
        if self.userland == "debian" and user is None:
            return [*SHELL_EXEC, f"{DISTRO_WORKLOAD_DIR}/{workload.name}", *args]
        if user is None:
            return [f"/{workload.name}", *args]
        if user.image is not None:  # the command inside the user's image, as it is
            return [*user.command, *user.args, *args]
        return [f"/app/{Path(user.command[0]).name}", *user.command[1:], *user.args, *args]

    # -- one container run --
    def host_config(self, network: str, *, binds: dict | None = None,
                    ports: dict | None = None, limits: dict | None = None,
                    cgroup_parent: str | None = None):
        extra: dict = {"cgroup_parent": cgroup_parent} if cgroup_parent else {}
        for key, value in (limits or {}).items():
            if key == "memory_mib":
                extra["mem_limit"] = f"{int(value)}m"
                extra["memswap_limit"] = f"{int(value)}m"
            elif key == "cpus":
                extra["nano_cpus"] = int(float(value) * 1e9)
            elif key == "pids":
                extra["pids_limit"] = int(value)
            elif key == "nofile":
                from docker.types import Ulimit

                extra["ulimits"] = [Ulimit(name="nofile", soft=int(value), hard=int(value))]
            elif key == "somaxconn" and network != "host":
                extra["sysctls"] = {"net.core.somaxconn": str(int(value))}
            else:
                raise NotSupported(f"unknown limit {key!r}; valid: memory_mib, cpus, pids, "
                                   "nofile, somaxconn (not on the host network)")
        if self.runtime:
            extra["runtime"] = self.runtime
        return self.api.create_host_config(network_mode=network, binds=binds,
                                           port_bindings=ports, **extra)

    @contextmanager
    def user_mounts(self, user: WorkloadSpec | None) -> Iterator[tuple[dict, dict]]:
        """Bind mounts of fresh copies of a user's directories, and its environment."""
        if user is None:
            yield {}, {}
            return
        with tempfile.TemporaryDirectory(prefix="vb-docker-user-") as tmp:
            binds = {str(host): {"bind": guest, "mode": "rw"}
                     for guest, host in stage_dirs(user, Path(tmp)).items()}
            yield binds, dict(user.env)

    def run_timed(self, tag: str, argv: Sequence[str], network: str, *,
                  binds: dict | None = None, timeout: float = 300.0,
                  user: WorkloadSpec | None = None, peaks: bool = False) -> Timed:
        """create, start, wait, logs, remove one container, with perf_counter_ns stamps;
        a user's directories are bind-mounted from fresh copies and its environment set.
        ``peaks``: the container gets a parent cgroup of its own, whose peak is its peak."""
        stdin = user.stdin.read_bytes() if user is not None and user.stdin else None
        with self.user_mounts(user) as (mounts, env):
            if not peaks:
                return self._run_timed(tag, argv, network, {**(binds or {}), **mounts}, env,
                                       timeout, stdin)
            group = peak_group_name()
            try:
                return self._run_timed(tag, argv, network, {**(binds or {}), **mounts}, env,
                                       timeout, stdin, group)
            finally:
                remove_group(group)

    def peak_support(self) -> str:
        """Why a container's peak cannot be read from a parent cgroup ("" when it can)."""
        driver = self.engine.facts().cgroup_driver
        if driver != "cgroupfs":
            return (f"the engine's {driver} cgroup driver: the suite gives a container a "
                    "parent cgroup of its own with the cgroupfs driver only")
        return ""

    def _run_timed(self, tag: str, argv: Sequence[str], network: str, binds: dict,
                   env: dict, timeout: float, stdin: bytes | None = None,
                   group: str = "") -> Timed:
        """One timed container; ``stdin`` is written to its attached standard input (after
        start, inside the timed interval) and closed. In a parent cgroup ``group``, its
        peak and its shim's are read after it exited (outside the timed interval)."""
        api = self.api
        hc = self.host_config(network, binds=binds or None,
                              cgroup_parent=f"/{group}" if group else None)
        t = Timed()
        t.create = time.perf_counter_ns()
        cid = api.create_container(tag, list(argv), labels=labels(), host_config=hc,
                                   environment=env or None,
                                   stdin_open=stdin is not None)["Id"]  # and StdinOnce
        t.created = time.perf_counter_ns()
        try:
            attached = (api.attach_socket(cid, params={"stdin": 1, "stream": 1})
                        if stdin is not None else None)
            self._start(cid, tag, argv)
            t.started = time.perf_counter_ns()
            if attached is not None:
                raw = getattr(attached, "_sock", attached)
                raw.sendall(stdin)
                raw.shutdown(socket.SHUT_WR)
                attached.close()
            t.status = self._wait(cid, timeout)
            t.exited = time.perf_counter_ns()
            if group:
                t.peaks = self._peaks(cid, group)
            t.stdout = api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
            t.stderr = api.logs(cid, stdout=False, stderr=True).decode(errors="replace")
        finally:
            t.remove = time.perf_counter_ns()
            self.remove(cid)
            t.removed = time.perf_counter_ns()
        return t

    def _start(self, cid: str, tag: str, argv: Sequence[str]) -> None:
        """``APIClient.start``; a runtime that cannot start the command says why, briefly."""
        from docker.errors import APIError

        try:
            self.api.start(cid)
        except APIError as exc:
            raise RuntimeError(f"{argv[0]} could not be started in image {tag[:19]}: "
                               f"{short_start_error(str(exc.explanation or exc))}") from None

    def _peaks(self, cid: str, group: str) -> tuple[Peak, ...]:
        """The exited container's peak from its parent cgroup, and its shim's VmHWM."""
        try:
            used, counter = group_peak(group)
            cgroup = Peak("cgroup", used, f"{counter} of a parent cgroup that held only "
                          f"this container (/{group}), read after it exited; page cache and "
                          "kernel memory charged to it included")
        except NotSupported as exc:
            cgroup = Peak("cgroup", None, str(exc))
        shim = next((pid for pid in find_processes("containerd-shim")
                     if cid in cmdline(pid)), None)
        hwm = read_proc_status(shim).get("VmHWM") if shim else None
        if hwm is None:
            return (cgroup, Peak("shim", None, "the container's containerd shim had "
                                 "exited when its exit was reported"))
        return (cgroup, Peak("shim", hwm * 1024, f"VmHWM of the container's "
                             f"{program_name(shim)} (outside its cgroup), read after the "
                             "container exited"))

    def remove(self, cid: str) -> None:
        """Force-remove a container; one already gone (or being removed) is not an error."""
        from docker.errors import APIError, NotFound

        try:
            self.api.remove_container(cid, force=True)
        except NotFound:
            pass
        except APIError as exc:
            if "already in progress" not in str(exc):
                raise

    def _wait(self, cid: str, timeout: float) -> int:
        import requests

        try:
            return int(self.api.wait(cid, timeout=timeout)["StatusCode"])
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            raise TimeoutError(f"container {cid[:12]} did not exit within {timeout:g} s") from exc

    @contextmanager
    def workdir(self) -> Iterator[dict | None]:
        """Bind mounts for the work directory (None when it lives on the overlay fs)."""
        if not self.bind_workdir:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="vb-docker-") as host_dir:
            yield {host_dir: {"bind": WORKDIR_IN_CONTAINER, "mode": "rw"}}

    def run(self, workload: Workload, args: Sequence[str] = (), *,
            timeout: float = 300.0) -> RunOutcome:
        tag, _ = self.image(workload)
        net = self.networks[0]
        with self.workdir() as binds:
            argv = self.argv(workload, substitute_workdir(args, WORKDIR_IN_CONTAINER))
            user = workload.user
            why_not = self.peak_support() if user is not None else ""
            t = self.run_timed(tag, argv, net, binds=binds,
                               timeout=user.time_limit_s if user else timeout, user=user,
                               peaks=user is not None and not why_not)
        self._check_status(t, f"container {' '.join(argv)}", user)
        result = parse_result_line(t.stdout) if workload.prints_result else {}
        peaks = t.peaks or ((Peak("cgroup", None, why_not),) if why_not else ())
        if user is not None:
            peaks += (Peak("process_rss", None, "the container's processes are children of "
                           "its shim, not of the harness (no wait4 rusage): see cgroup_peak"),)
        return RunOutcome(t.exited - t.create, RUN_INTERVAL.format(net=net), t.status, t.stdout,
                          result, None, "", peaks, where=self.workdir_kind())

    def workdir_kind(self) -> str:
        return "bind mount (host ext4 dir)" if self.bind_workdir else "container overlay fs"

    # -- shared processes --
    def shared_processes(self) -> dict[str, int]:
        """dockerd and containerd, which every container relies on (none for a remote
        engine)."""
        return self.engine.daemon_pids()
