"""A workload's ready line: waiting for it in a host process's output, and the typed error
for an instance that ended before it (:class:`~virtbench.platforms.base.NotReady`, or
:class:`~virtbench.platforms.base.WorkloadUnsupported` when the workload said why)."""

from __future__ import annotations

from virtbench.platforms.base import NotReady, WorkloadUnsupported
from virtbench.process import Instance, ProcessTimeout
from virtbench.workloads import READY, parse_result_line


def ended_before_ready(message: str, output: str | bytes) -> NotReady:
    """The error for an instance that ended before its ready line, saying ``message``: a
    WorkloadUnsupported when the result line of its ``output`` says ``unsupported=1``."""
    try:
        fields = parse_result_line(output)
    except ValueError:
        return NotReady(message)
    if fields.get("unsupported") != "1":
        return NotReady(message)
    return WorkloadUnsupported(message, fields.get("why", "").replace("-", " "))


def wait_ready(inst: Instance, timeout: float) -> int:
    """perf_counter_ns when the process's output reached its ready line. Raises
    ProcessTimeout when it does not come within ``timeout`` seconds, and NotReady (or
    WorkloadUnsupported) when the process exits first."""
    try:
        return inst.wait_for(READY, timeout=timeout)
    except ProcessTimeout:
        raise
    except RuntimeError as exc:  # the process exited first
        raise ended_before_ready(str(exc), "\n".join(inst.output)) from exc
