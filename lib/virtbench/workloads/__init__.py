"""The suite's benchmark workloads: C sources, a cached builder and the result-line parser.

Every workload prints one ``VB-RESULT workload=<name> key=value ...`` line on stdout (and
long-running ones a ``VB-READY workload=<name> ...`` line first); see ``src/*.c``.
"""

from virtbench.workloads import speedtest1  # noqa: F401 - registers its builder
from virtbench.workloads.build import (
    NOT_FOR_WASI,
    SRC_DIR,
    TARGETS,
    WORKLOADS,
    BuildError,
    artifact_name,
    build,
    build_all,
    source_path,
    toolchain_status,
    wasi_sysroot,
)
from virtbench.workloads.result_line import READY, RESULT, as_number, parse_result_line

__all__ = [
    "NOT_FOR_WASI",
    "READY",
    "RESULT",
    "SRC_DIR",
    "TARGETS",
    "WORKLOADS",
    "BuildError",
    "artifact_name",
    "as_number",
    "build",
    "build_all",
    "parse_result_line",
    "source_path",
    "toolchain_status",
    "wasi_sysroot",
]
