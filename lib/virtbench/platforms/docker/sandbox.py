"""gVisor as a Docker runtime: the docker/runc container run by ``runsc`` instead of runc.

The container's processes run on gVisor's Sentry, a user-space kernel in the host process
``runsc-sandbox`` that intercepts every system call (platform ptrace here: each one stops
the workload's thread and is served by the Sentry); files are served through a second host
process, the Gofer (``runsc-gofer``). Both are the sandbox's own cost: an instance's host
processes are its Sentry, its Gofer and the containerd shim, not only its init.
"""

from __future__ import annotations

from virtbench.platforms.docker.platform import DockerPlatform
from virtbench.process import children, descendants, program_name


class DockerRunsc(DockerPlatform):
    variant = "docker/runsc"
    runtime = "runsc"
    userlands = ("debian",)
    summary = ("the docker/runc container (same engine, image and bridge network) run by "
               "gVisor (runsc, platform ptrace): the workload's system calls are served by "
               "gVisor's user-space kernel (the Sentry), files through its Gofer")

    def runtime_processes(self, pid: int, shim: int | None) -> tuple[list[int], str]:
        """The Sentry's children (under ptrace, the stub processes whose address spaces
        hold the workload's memory) and the Gofer (the shim's ``runsc-gofer`` child);
        ``pid``, the container's init as the engine reports it, is the Sentry itself."""
        gofers = [p for p in children(shim) if program_name(p) == "runsc-gofer"] if shim else []
        return [*descendants(pid), *gofers], (
            " (gVisor's Sentry, runsc-sandbox), the Sentry's ptrace stub processes, "
            "its Gofer (runsc-gofer)")
