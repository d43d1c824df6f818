"""A Docker SDK client for a daemon's address, and whether a daemon answers there."""

from __future__ import annotations

DEFAULT_SOCKET = "/var/run/docker.sock"  # where the host's own daemon listens
CLIENT_TIMEOUT_S = 300
PROBE_TIMEOUT_S = 5


def client_for(url: str | None, timeout: int = CLIENT_TIMEOUT_S):
    """A ``docker.DockerClient`` for ``url``, or for the environment (DOCKER_HOST, TLS
    settings) if None."""
    import docker

    if url is None:
        return docker.from_env(version="auto", timeout=timeout)
    return docker.DockerClient(base_url=url, version="auto", timeout=timeout)


def answers(url: str | None) -> bool:
    """Whether a daemon answers a ping at ``url`` (None: the environment's) within
    :data:`PROBE_TIMEOUT_S`."""
    try:
        client = client_for(url, PROBE_TIMEOUT_S)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()
