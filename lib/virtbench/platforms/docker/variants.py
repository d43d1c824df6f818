"""The Docker variants that differ from :class:`~.platform.DockerPlatform` in settings only:
runc on the bridge network, crun, and runc with the host's network. gVisor is in
:mod:`.sandbox`, the wasmtime CLI in a container in :mod:`.hybrid`."""

from __future__ import annotations

from virtbench.cgroup import hybrid_v2_controllers
from virtbench.platforms.docker.platform import DockerPlatform


class DockerRunc(DockerPlatform):
    variant = "docker/runc"
    userlands = ("debian",)
    summary = ("Docker Engine + containerd + runc, FROM-scratch image with the static "
               "workload; default bridge network (port published on 127.0.0.1 through "
               "docker-proxy), work directory on the container's overlay fs")


class DockerCrun(DockerPlatform):
    variant = "docker/crun"
    runtime = "crun"
    userlands = ("debian",)
    summary = ("the docker/runc container (same engine, image and bridge network) started by "
               "crun, the OCI runtime written in C, instead of runc")

    def requirements(self) -> tuple[bool, str, str]:
        controllers = hybrid_v2_controllers()
        if controllers:
            return (False, f"crun refuses this host's cgroup hybrid mode (cgroup v1 "
                    f"controllers, and {', '.join(controllers)} on the v2 hierarchy at "
                    "/sys/fs/cgroup/unified): \"cgroups in hybrid mode not supported, drop all "
                    "controllers from cgroupv2\"", "boot the host with one cgroup version "
                    "(systemd.unified_cgroup_hierarchy=1 for v2), or mount those controllers "
                    "as v1 hierarchies")
        return super().requirements()


class DockerRuncHost(DockerPlatform):
    variant = "docker/runc-host"
    summary = ("the docker/runc container with the host's network namespace (--network host: "
               "no bridge, no docker-proxy) and its work directory bind-mounted from the host")
    networks = ("host",)
    bind_workdir = True
    userlands = ("debian",)
