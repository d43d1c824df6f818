"""Engine drift: installed engines whose version differs from those that measured a run.

A number depends on the engine that produced it. The project pins the engines of its shipped
reference in ``constraints.txt``; this module compares the versions a run recorded in its
``host.json`` (``versions``) with the ones installed now, for ``virtbench doctor`` and the
reports' provenance header.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The ``host.json`` version keys that name an engine or runtime behind a measurement.
ENGINES: tuple[str, ...] = ("wasmtime-py", "wasmtime-cli", "node", "qemu", "docker-engine",
                            "wrk")


def recorded(version: object) -> bool:
    """Whether a recorded version is one (not empty, not "unknown: why", not the first line
    of an error an older virtbench recorded instead of a version)."""
    text = str(version or "").strip()
    return bool(text) and not text.startswith(("unknown", "Traceback", "Error", "error"))


def differences(measured: Mapping[str, object], installed: Mapping[str, object]
                ) -> list[tuple[str, str, str]]:
    """(engine, version that measured the run, version installed) for every engine whose
    two versions differ; engines one side does not record are left out."""
    out = []
    for key in ENGINES:
        then, now = measured.get(key), installed.get(key)
        if not recorded(then) or not recorded(now):
            continue
        if str(then).strip() != str(now).strip():
            out.append((key, str(then).strip(), str(now).strip()))
    return out


def sentences(measured: Mapping[str, object], installed: Mapping[str, object],
              run_id: str) -> list[str]:
    """One line per engine that differs: "wasmtime-py 51.0.0 is installed; run reference was
    measured with 50.0.1"."""
    return [f"{key} {now} is installed; run {run_id} was measured with {then}"
            for key, then, now in differences(measured, installed)]
