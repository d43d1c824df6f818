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
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from virtbench import distro
from virtbench.cgroup import (
    group_peak,
    peak_group_name,
    remove_group,
)
from virtbench.loadgen import wait_http
from virtbench.paths import cache_dir
from virtbench.platforms.base import (
    Artifact,
    Availability,
    Handle,
    NotSupported,
    Peak,
    Platform,
    Portable,
    RunOutcome,
    Timing,
    Workload,
    substitute_server,
    substitute_workdir,
)
from virtbench.platforms.docker.engine import (
    RUNTIMES,
    DockerEngine,
    EngineError,
    find_processes,
    parent_pid,
    search_path,
    shared_engine,
)
from virtbench.platforms.docker.images import (
    WORKDIR_IN_CONTAINER,
    ImageSpec,
    ImportSpec,
    UserImage,
    busybox_spec,
    is_static_executable,
    loaded_refs,
    read_saved_image,
    short_start_error,
    version_of,
    with_libraries,
)
from virtbench.platforms.docker.objects import LABEL, labels
from virtbench.platforms.docker.procfs import cmdline
from virtbench.process import program_name, read_proc_status
from virtbench.spec import WorkloadSpec, stage_dirs
from virtbench.workloads import build, parse_result_line, toolchain_status

HTTP_CONTAINER_PORT = 8080
READY_LINE_WORKLOADS = ("mem", "hog")  # built-ins that print VB-READY once they are running
DISTRO_WORKLOAD_DIR = "/vb"
#: How the debian userland starts a workload: through the image's own shell, which execs it.
SHELL_EXEC = ("/bin/sh", "-c", 'exec "$0" "$@"')
RUN_INTERVAL = ("from the SDK call APIClient.create_container to APIClient.wait returning "
                "the exit status (create, start, the workload's run and exit; network {net}; "
                "removal not included)")


# ---- timed container runs -------------------------------------------------------------------

@dataclass
class Timed:
    """perf_counter_ns stamps around the SDK calls of one container run."""

    create: int = 0
    created: int = 0
    started: int = 0
    exited: int = 0
    remove: int = 0
    removed: int = 0
    status: int = -1
    stdout: str = ""
    stderr: str = ""
    peaks: tuple[Peak, ...] = ()


def _wait_in_logs(api, cid: str, marker: str, timeout: float) -> int:
    """Poll the container's stdout until it contains ``marker``; perf_counter_ns when seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker in api.logs(cid, stdout=True, stderr=False).decode(errors="replace"):
            return time.perf_counter_ns()
        state = api.inspect_container(cid)["State"]
        if not state.get("Running"):
            logs = api.logs(cid, stdout=True, stderr=True).decode(errors="replace")
            raise RuntimeError(f"container exited {state.get('ExitCode')} before {marker!r}: "
                               f"{logs[-600:]!r}")
        time.sleep(0.005)
    raise TimeoutError(f"no {marker!r} from container {cid[:12]} within {timeout:g} s")


def _proxy_pid(port: int) -> int | None:
    """The docker-proxy process that publishes host port ``port``, if any."""
    for pid in find_processes("docker-proxy"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-host-port" in argv and argv[argv.index(b"-host-port") + 1] == str(port).encode():
            return pid
    return None


def distro_image_spec() -> ImportSpec:
    """The debian userland's image: the cached Debian root file system (built on first use,
    :func:`virtbench.distro.build_rootfs`) plus the static workloads under /vb."""
    files = {f"{DISTRO_WORKLOAD_DIR}/{name}": build(name, "static")
             for name in distro.USERLAND_WORKLOADS}
    return ImportSpec("debian", distro.build_rootfs(), files,
                      (WORKDIR_IN_CONTAINER, DISTRO_WORKLOAD_DIR))


# ---- the platform ---------------------------------------------------------------------------

class DockerPlatform(Platform):
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
    def image_spec(self, workload: Workload) -> ImageSpec | ImportSpec | UserImage:
        """FROM scratch with the static workload at /<name> (or a user's static program, or
        the user's own image archive); on the debian userland, the Debian root file system
        with every built-in static workload under /vb (one image for all of them)."""
        if self.userland == "debian":
            if not workload.builtin:
                raise NotSupported("the debian userland runs the built-in workloads only")
            return distro_image_spec()
        if workload.builtin:
            return ImageSpec(f"runc-{workload.name}",
                             {f"/{workload.name}": build(workload.name, "static")})
        if workload.user.image is not None:
            return read_saved_image(workload.user.image, workload.name)
        if not workload.command:
            raise NotSupported(f"{self.variant} runs native programs; {workload.name!r} has none")
        exe = workload.user.program
        name = Path(workload.command[0]).name  # the invoked name (a symlink's, not its target's)
        if is_static_executable(exe):
            return ImageSpec(f"runc-user-{name}", {f"/app/{name}": exe})
        libraries = with_libraries(exe)  # FROM scratch: the program and what ldd names
        if not libraries:
            raise NotSupported(f"{exe} is neither a static executable nor one whose shared "
                               "libraries ldd can name; images here are FROM scratch")
        return ImageSpec(f"runc-user-{name}", {f"/app/{name}": exe, **libraries})

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

    def image(self, workload: Workload) -> tuple[str, ImageSpec]:
        """The image of ``workload``, built or loaded if the engine lacks it; tag and spec."""
        spec = self.image_spec(workload)
        return self.ensure_image(spec), spec

    def ensure_image(self, spec: ImageSpec) -> str:
        """Make sure image ``spec.tag`` is in the engine: load its saved archive or build it.

        Checked on every use (an inspect, outside any timed interval): another virtbench
        process sharing the engine may have removed it.
        """
        from docker.errors import ImageNotFound

        if isinstance(spec, UserImage):
            return self._ensure_user_image(spec)
        tag = spec.tag
        try:
            self.api.inspect_image(tag)
        except ImageNotFound:
            archive = self.archive_path(tag)
            if archive.exists():
                self._load(archive)
            elif isinstance(spec, ImportSpec):
                self._import(spec)
            else:
                self._client.images.build(fileobj=spec.context(), custom_context=True, tag=tag,
                                          rm=True, forcerm=True, labels={LABEL: "1"},
                                          timeout=600)
        return tag

    def _ensure_user_image(self, spec: UserImage) -> str:
        """The image ID of a user's archive, loaded unless the engine has it: recorded as
        the suite's (removed with its images) only when the suite loads it."""
        from docker.errors import ImageNotFound

        try:
            return self.api.inspect_image(spec.image_id)["Id"]
        except ImageNotFound:
            pass
        for tag in spec.repo_tags:  # a load moves a tag: never take one from a user's image
            try:
                other = self.api.inspect_image(tag)["Id"]
            except ImageNotFound:
                continue
            raise NotSupported(f"the engine's tag {tag} names another image ({other[:19]}); "
                               f"loading {spec.archive} would move it to the archive's image: "
                               "remove or rename that tag first")
        self.engine.record_loaded(spec.image_id)
        refs = self._load(spec.archive)
        if not refs:
            raise RuntimeError(f"docker load {spec.archive}: the engine named no loaded image")
        image_id = self.api.inspect_image(refs[0])["Id"]
        if image_id != spec.image_id:  # an engine whose IDs are not the config's digest
            self.engine.record_loaded(image_id)
        return image_id

    def user_image_owned(self, tag: str) -> bool:
        """Whether image ``tag`` of a user's archive was loaded by the suite (the suite may
        remove it); False for an image that was in the engine already (the user's)."""
        return self.engine.loaded_by_suite(tag)

    def _import(self, spec: ImportSpec) -> None:
        """``docker import`` of the spec's tree (written to a temporary tar in the cache)."""
        repository, _, tag = spec.tag.partition(":")
        where = cache_dir() / "docker"
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="vb-import-", dir=where) as tmp:
            tarball = spec.tarball(Path(tmp) / "rootfs.tar")
            self.api.import_image(src=str(tarball), repository=repository, tag=tag,
                                  changes=spec.changes)
        self.api.inspect_image(spec.tag)  # raises if the import did not produce the tag

    def portable_artifact(self, workload: Workload) -> Portable:
        tag, _ = self.image(workload)
        return Portable("image", self.save_archive(tag), tuple(self.argv(workload, [])),
                        what=f"the image {tag} (docker save)")

    def archive_path(self, tag: str) -> Path:
        return cache_dir() / "docker" / "archives" / (tag.replace("/", "_").replace(":", "_")
                                                      + ".tar")

    def save_archive(self, tag: str) -> Path:
        """``docker save`` of ``tag`` into the cache (once)."""
        path = self.archive_path(tag)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_suffix(".part")
            with open(part, "wb") as fh:
                for chunk in self.api.get_image(tag):
                    fh.write(chunk)
            os.replace(part, path)
        return path

    def _load(self, archive: Path) -> list[str]:
        """``docker load`` of ``archive``; the image references the engine says it loaded."""
        with open(archive, "rb") as fh:
            messages = list(self.api.load_image(fh, quiet=True))
        for msg in messages:
            if isinstance(msg, dict) and msg.get("error"):
                raise RuntimeError(f"docker load {archive}: {msg['error']}")
        return loaded_refs(messages)

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            self.image(w)

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
            cgroup = Peak("cgroup_peak", used, f"{counter} of a parent cgroup that held only "
                          f"this container (/{group}), read after it exited; page cache and "
                          "kernel memory charged to it included")
        except NotSupported as exc:
            cgroup = Peak("cgroup_peak", None, str(exc))
        shim = next((pid for pid in find_processes("containerd-shim")
                     if cid in cmdline(pid)), None)
        hwm = read_proc_status(shim).get("VmHWM") if shim else None
        if hwm is None:
            return (cgroup, Peak("shim_peak", None, "the container's containerd shim had "
                                 "exited when its exit was reported"))
        return (cgroup, Peak("shim_peak", hwm * 1024, f"VmHWM of the container's "
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
        if result and workload.name == "fileio":
            result["where"] = self.workdir_kind()
        peaks = t.peaks or ((Peak("cgroup_peak", None, why_not),) if why_not else ())
        if user is not None:
            peaks += (Peak("peak_rss", None, "the container's processes are children of "
                           "its shim, not of the harness (no wait4 rusage): see cgroup_peak"),)
        return RunOutcome(t.exited - t.create, RUN_INTERVAL.format(net=net), t.status, t.stdout,
                          result, None, "", peaks)

    def workdir_kind(self) -> str:
        return "bind mount (host ext4 dir)" if self.bind_workdir else "container overlay fs"

    # -- startup --
    def timed_starts(self, workload: Workload) -> list[Timing]:
        """Existing-image, warm and cold starts, and the create/start/remove split, per network.

        Every interval carries its network as the condition ``network``.
        """
        tag, spec = self.image(workload)
        argv = self.argv(workload, [])
        user = workload.user
        out: list[Timing] = []
        for net in self.networks:
            out += self._startup_existing(tag, argv, net, user)
        for net in self.networks:
            out += self._startup_warm(tag, argv, net, user)
        if isinstance(spec, UserImage) and not self.user_image_owned(tag):
            why = (f"not measured: image {tag[:19]} of {spec.archive.name} was in the engine "
                   "before the suite loaded it (the user's own), and a cold start removes it")
            return out + [Timing(kind, None, "", conditions={"network": net},
                                 tags={"network": net}, reason=why)
                          for net in self.networks for kind in ("cold", "load")]
        archive = spec.archive if isinstance(spec, UserImage) else self.save_archive(tag)
        for net in self.networks:
            out += self._startup_cold(tag, archive, argv, net, user)
        return out

    def _timing(self, kind: str, net: str, ns: int, interval: str, **tags: str) -> Timing:
        return Timing(kind, ns, f"{interval}; network {net}", conditions={"network": net},
                      tags={"network": net, **tags})

    def _check_status(self, t: Timed, what: str, user: WorkloadSpec | None = None) -> None:
        """RuntimeError unless the container exited 0 (a user's workload: an accepted code
        and its success pattern)."""
        if user is not None:
            user.check_outcome(t.status, t.stdout, f"{what}: container", t.stderr)
        elif t.status != 0:
            raise RuntimeError(f"{what}: container exited {t.status}: "
                               f"{(t.stderr or t.stdout).strip()[-600:]}")

    def _startup_existing(self, tag: str, argv: list[str], net: str,
                          user: WorkloadSpec | None = None) -> list[Timing]:
        t = self.run_timed(tag, argv, net, user=user)
        self._check_status(t, "existing-image start", user)
        return [
            self._timing("launch", net, t.exited - t.create,
                     "image present: from the SDK call APIClient.create_container to "
                     "APIClient.wait returning the exit status (create, start, run, exit)"),
            self._timing("create", net, t.created - t.create,
                     "APIClient.create_container, from the call to its return"),
            self._timing("start", net, t.started - t.created,
                     "APIClient.start of the created container, from the call to its return "
                     "(runc has started the container's process)"),
            self._timing("remove", net, t.removed - t.remove,
                     "APIClient.remove_container of the exited container, from the call to "
                     "its return (teardown, not part of startup)"),
        ]

    def _startup_warm(self, tag: str, argv: list[str], net: str,
                      user: WorkloadSpec | None = None) -> list[Timing]:
        api = self.api
        limit = user.time_limit_s if user else 60
        if user is not None and user.stdin is not None:
            return [Timing("warm", None, "", reason="not supported: a restarted container "
                           "gets no new standard input to read", tags={"network": net},
                           conditions={"network": net})]
        with self.user_mounts(user) as (binds, env):
            cid = api.create_container(tag, argv, labels=labels(), environment=env or None,
                                       host_config=self.host_config(net, binds=binds or None)
                                       )["Id"]
            try:
                api.start(cid)
                self._wait(cid, limit)
                t0 = time.perf_counter_ns()
                api.start(cid)
                status = self._wait(cid, limit)
                t1 = time.perf_counter_ns()
                logs = api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
            finally:
                self.remove(cid)
        self._check_status(Timed(status=status, stdout=logs), "warm start", user)
        return [self._timing("warm", net, t1 - t0,
                         "warm: restart of a stopped container (created, run and exited once "
                         "before): from the SDK call APIClient.start to APIClient.wait "
                         "returning the exit status")]

    def _startup_cold(self, tag: str, archive: Path, argv: list[str],
                      net: str, user: WorkloadSpec | None = None) -> list[Timing]:
        api = self.api
        api.remove_image(tag, force=tag.startswith("sha256:"))  # a user's image: every tag
        dropped = self._drop_caches()
        t0 = time.perf_counter_ns()
        self._load(archive)
        t1 = time.perf_counter_ns()
        t = self.run_timed(tag, argv, net, user=user)
        self._check_status(t, "cold start", user)
        size = archive.stat().st_size
        where = ("page cache dropped before the load (sync; drop_caches=3)" if dropped else
                 "page cache not dropped: the tarball and the engine's files may be in memory")
        source = ("the user's image archive" if user is not None and user.image is not None
                  else "the cache")
        return [
            self._timing("cold", net, t.exited - t0,
                     f"cold: image absent from the engine; from the SDK call APIClient."
                     f"load_image (streaming the {size} B saved image tarball from {source}) "
                     f"to APIClient.wait returning the exit status (load, create, start, run, "
                     f"exit); {where}", page_cache_dropped=str(dropped).lower()),
            self._timing("load", net, t1 - t0,
                     f"APIClient.load_image of the {size} B saved image tarball, from the call "
                     f"to the end of the engine's response; {where}",
                     page_cache_dropped=str(dropped).lower()),
        ]

    def _drop_caches(self) -> bool:
        if not self.drop_caches:
            return False
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            return True
        except OSError:
            return False

    # -- shared processes --
    def shared_processes(self) -> dict[str, int]:
        """dockerd and containerd, which every container relies on (none for a remote
        engine)."""
        return self.engine.daemon_pids()

    # -- long-running instances --
    def server_argv(self, workload: Workload, args: Sequence[str], listen: str,
                    port: int) -> list[str]:
        """The container command of the http server listening on ``listen``:``port``."""
        return self.argv(workload, ["--port", str(port), "--bind", listen, *args])

    @contextmanager
    def instance(self, workload: Workload, args: Sequence[str] = (), *,
                 port: int | None = None, limits: dict | None = None,
                 timeout: float = 120.0) -> Iterator[Handle]:
        """A detached container; the http workload is reached at 127.0.0.1:``port``.

        On the bridge network the port is published on 127.0.0.1 only, so loopback traffic
        goes through the userland docker-proxy (Docker's nat rule skips 127.0.0.0/8); with
        the host network the server binds 127.0.0.1:``port`` itself (no proxy, no NAT).
        ``limits``: ``memory_mib`` (--memory and --memory-swap), ``cpus`` (--cpus), ``pids``
        (--pids-limit), ``nofile`` (--ulimit nofile), ``somaxconn`` (--sysctl
        net.core.somaxconn, bridge only). ``pids`` are the container's init
        process, its containerd shim and, on the bridge, the docker-proxy of the port.
        """
        tag, _ = self.image(workload)
        api = self.api
        net = self.networks[0]
        is_http = workload.builtin and workload.name == "http"
        ports = None
        if is_http:
            if port is None:
                raise ValueError("the http workload needs a port")
            if net == "host":
                argv = self.server_argv(workload, args, "127.0.0.1", port)
                path = "host network: the server listens on 127.0.0.1 itself (no proxy, no NAT)"
            elif net == "bridge":
                argv = self.server_argv(workload, args, "0.0.0.0", HTTP_CONTAINER_PORT)
                ports = {HTTP_CONTAINER_PORT: ("127.0.0.1", port)}
                path = (f"bridge network, -p 127.0.0.1:{port}:{HTTP_CONTAINER_PORT}: loopback "
                        "traffic goes through the userland docker-proxy")
            else:
                raise NotSupported(f"network {net} cannot serve http to the host")
        elif port is not None:  # a user's server ({bind}/{port} in its arguments)
            server_args = substitute_server(args, "0.0.0.0", HTTP_CONTAINER_PORT)
            argv = self.argv(workload, substitute_workdir(server_args, WORKDIR_IN_CONTAINER))
            if net == "bridge":
                ports = {HTTP_CONTAINER_PORT: ("127.0.0.1", port)}
                path = (f"bridge network, -p 127.0.0.1:{port}:{HTTP_CONTAINER_PORT}: loopback "
                        "traffic goes through the userland docker-proxy")
            elif net == "host":
                argv = self.argv(workload, substitute_workdir(
                    substitute_server(args, "127.0.0.1", port), WORKDIR_IN_CONTAINER))
                path = "host network: the server listens on 127.0.0.1 itself (no proxy, no NAT)"
            else:
                raise NotSupported(f"network {net} cannot serve the host")
        else:
            argv = self.argv(workload, substitute_workdir(args, WORKDIR_IN_CONTAINER))
            path = f"network {net}"
        with self.workdir() as binds:
            hc = self.host_config(net, binds=binds, ports=ports, limits=limits)
            cid = api.create_container(tag, argv, labels=labels(), host_config=hc,
                                       ports=list(ports) if ports else None)["Id"]
            try:
                api.start(cid)
                ready = None
                if is_http:
                    _wait_in_logs(api, cid, "VB-READY", timeout)
                    ready = wait_http(port, timeout)
                elif workload.builtin and workload.name in READY_LINE_WORKLOADS:
                    ready = _wait_in_logs(api, cid, "VB-READY", timeout)
                pid = int(api.inspect_container(cid)["State"]["Pid"])
                pids = [pid]
                shim = parent_pid(pid)
                runtime_pids, runtime_who = self.runtime_processes(pid, shim)
                pids += runtime_pids
                if shim:
                    pids.append(shim)
                info = {"container": cid[:12], "image": tag, "network": net,
                        "path": path, **self.instance_info(workload)}
                if limits:
                    info["limits"] = ", ".join(f"{k}={v}" for k, v in sorted(limits.items()))
                if limits and "somaxconn" in limits:
                    info["somaxconn"] = f"{int(limits['somaxconn'])} (the container's)"
                proxy = _proxy_pid(port) if ports else None
                if proxy:
                    pids.append(proxy)
                    info["docker_proxy_pid"] = str(proxy)
                handle = Handle(pids=pids, port=port, ready_ns=ready, info=info,
                                cgroup_pid=pid, who=f"the container's init{runtime_who}, its "
                                "containerd shim" + (" and the docker-proxy of its port"
                                                     if proxy else ""))
                yield handle
                if is_http:
                    self._stop_server(cid, handle)
            finally:
                self.remove(cid)

    def instance_info(self, workload: Workload) -> dict[str, str]:
        return {}

    def runtime_processes(self, pid: int, shim: int | None) -> tuple[list[int], str]:
        """Host processes the OCI runtime keeps for the container besides its init
        (``pid``) and shim, and their words for descriptions (" and its ..."): none for
        runc and crun."""
        return [], ""

    def _stop_server(self, cid: str, handle: Handle) -> None:
        """SIGTERM (the static http server then prints its request count), then remove."""
        api = self.api
        api.stop(cid, timeout=5)
        try:
            result = parse_result_line(api.logs(cid, stdout=True, stderr=False))
            if "requests" in result:
                handle.info["requests"] = result["requests"]
        except ValueError:
            pass

    # -- disk --
    @staticmethod
    def _content_of(spec: ImageSpec | ImportSpec) -> str:
        files = ", ".join(sorted(spec.files))
        if isinstance(spec, ImportSpec):
            return (f"the regular files of {spec.rootfs.label}, each hard-linked file once, "
                    f"and {files}")
        return files

    def user_artifacts(self, workload: Workload) -> list[Artifact]:
        """A user's image: its size as the engine reports it and its archive's bytes."""
        tag, spec = self.image(workload)
        if not isinstance(spec, UserImage):
            return super().user_artifacts(workload)
        size = int(self.api.inspect_image(tag)["Size"])
        return [
            Artifact("workload", size, f"size of the user's image {tag[:19]} "
                     f"({spec.archive.name}) as the engine reports it (image inspect .Size: "
                     "uncompressed layers)"),
            Artifact("image_archive", spec.archive_size,
                     f"size of the user's `docker save` archive {spec.archive.name}"),
        ]

    def disk_workloads(self) -> tuple[str, ...]:
        return ("noop", "cpu", "http")

    def artifacts(self) -> list[Artifact]:
        """Each image as the engine reports it, the bytes put into it, and its saved archive."""
        out = []
        specs = [(name, self.image_spec(Workload(name))) for name in self.disk_workloads()]
        if self.image_kind == "runc" and self.userland == "minimal":
            try:
                specs.append(("busybox", busybox_spec()))
            except NotSupported:
                pass
        for name, spec in specs:
            tag = self.ensure_image(spec)
            size = int(self.api.inspect_image(tag)["Size"])
            archive = self.save_archive(tag)
            out += [
                Artifact("workload", size, f"size of image {tag} as the engine reports it "
                         "(image inspect .Size: uncompressed layers)", workload=name),
                Artifact("image_content", spec.content_size, f"bytes of the files put into "
                         f"image {tag} ({self._content_of(spec)})", workload=name),
                Artifact("image_archive", archive.stat().st_size,
                         f"size of the `docker save` tarball of {tag}", workload=name),
            ]
        return out
