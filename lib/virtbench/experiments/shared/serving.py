"""Long-running instances: how idle ones are held, how long a fresh one settles before it is
read, and the light wrk load a server gets (the http, memory and cpu_usage experiments)."""

from __future__ import annotations

from virtbench.experiments.base import Params

IDLE_HOLD_MS = "3600000"  # idle instances hold until they are stopped
SETTLE_S = 0.5  # after an instance is ready, before its idle reading: start-up work ends


def wrk_settings(params: Params) -> dict:
    """wrk duration, threads and connections of the light load profile, scaled to a 2-core
    machine (options http_duration_s, http_threads, http_connections override them)."""
    o = params.options
    return {"duration_s": int(o.get("http_duration_s", 1 if params.quick else 2)),
            "threads": int(o.get("http_threads", 1)),
            "connections": int(o.get("http_connections", 10))}
