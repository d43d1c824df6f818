"""The Docker family: runc containers (bridge or host network, work directory on the
overlay fs or bind-mounted), and a wasmtime CLI inside a container.

- :mod:`.platform`: the variants, their images, timed runs and instances (runc, and crun
  as another OCI runtime of the same engine)
- :mod:`.sandbox`: gVisor (``runsc``) as the engine's runtime: the sandboxed container
- :mod:`.engine`: the Docker daemon in use: an existing one, or a private ``dockerd``
  started (and stopped) by the suite
- :mod:`.images`: images built ``FROM scratch`` or by ``docker import``, cached by content
- a container's memory and CPU counters: :mod:`virtbench.cgroup` (every platform's cgroups)
"""
