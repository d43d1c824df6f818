"""The Docker family: runc containers (bridge or host network, work directory on the
overlay fs or bind-mounted), and a wasmtime CLI inside a container.

- :mod:`.platform`: a container of the engine: images, timed runs and instances
- :mod:`.variants`: runc (bridge or host network) and crun, another OCI runtime of the
  same engine
- :mod:`.sandbox`: gVisor (``runsc``) as the engine's runtime: the sandboxed container
- :mod:`.hybrid`: the wasmtime CLI running the .wasm workload inside a container
- :mod:`.engine`: the Docker daemon in use: an existing one, or a private ``dockerd``
  started (:mod:`.dockerd`) and stopped by its last user (:mod:`.users`)
- :mod:`.images`: images built ``FROM scratch`` or by ``docker import``, cached by content
- a container's memory and CPU counters: :mod:`virtbench.cgroup` (every platform's cgroups)
"""

#: The family's variants, in the order of reports: name -> "module:Class".
VARIANTS = {
    "docker/runc": "virtbench.platforms.docker.variants:DockerRunc",
    "docker/crun": "virtbench.platforms.docker.variants:DockerCrun",
    "docker/runsc": "virtbench.platforms.docker.sandbox:DockerRunsc",
    "docker/runc-host": "virtbench.platforms.docker.variants:DockerRuncHost",
    "docker+wasm/wasmtime-cli": "virtbench.platforms.docker.hybrid:DockerWasmtime",
}
