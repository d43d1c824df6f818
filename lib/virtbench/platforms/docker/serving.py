"""Long-running containers of a docker variant: a server started with its port published on
the host's loopback (or on the host network), its readiness, its host processes (the
container's own, its shim, the docker-proxy) and its stop. Mixed into
:class:`virtbench.platforms.docker.platform.DockerPlatform`."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from virtbench.loadgen import wait_http
from virtbench.platforms.base import (
    Handle,
    NotSupported,
    Workload,
    substitute_server,
    substitute_workdir,
)
from virtbench.platforms.docker.images import (
    WORKDIR_IN_CONTAINER,
)
from virtbench.platforms.docker.objects import labels
from virtbench.platforms.docker.procfs import find_processes, parent_pid
from virtbench.platforms.readiness import READY, ended_before_ready
from virtbench.workloads import parse_result_line

HTTP_CONTAINER_PORT = 8080
READY_LINE_WORKLOADS = ("mem", "hog")  # built-ins that print VB-READY once they are running


def _wait_ready_line(api, cid: str, timeout: float) -> int:
    """Poll the container's stdout until it holds the workload's ready line; perf_counter_ns
    when seen. NotReady (or WorkloadUnsupported) when the container exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if READY in api.logs(cid, stdout=True, stderr=False).decode(errors="replace"):
            return time.perf_counter_ns()
        state = api.inspect_container(cid)["State"]
        if not state.get("Running"):
            logs = api.logs(cid, stdout=True, stderr=True).decode(errors="replace")
            raise ended_before_ready(f"container exited {state.get('ExitCode')} before "
                                     f"{READY!r}: {logs[-600:]!r}", logs)
        time.sleep(0.005)
    raise TimeoutError(f"no {READY!r} from container {cid[:12]} within {timeout:g} s")


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


class Serving:
    """Long-running instances of a docker variant (needs ``api``, ``image``, ``argv``...)."""

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
                    _wait_ready_line(api, cid, timeout)
                    ready = wait_http(port, timeout)
                elif workload.builtin and workload.name in READY_LINE_WORKLOADS:
                    ready = _wait_ready_line(api, cid, timeout)
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
