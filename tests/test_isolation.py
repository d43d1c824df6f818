"""The isolation experiment's outcomes, decided by the type of what a platform raised."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from virtbench.experiments.base import Params
from virtbench.experiments.isolation import measure_isolation
from virtbench.platforms.base import (
    Availability,
    Handle,
    NotReady,
    NotSupported,
    Platform,
    RunOutcome,
    Workload,
    WorkloadUnsupported,
)
from virtbench.platforms.readiness import ended_before_ready

CONTAINER_KILLED = "container exited 137 before 'VB-READY': ''"
NO_FORK = ("python exited 0 before 'VB-READY'; output tail: 'VB-RESULT workload=hog "
           "kind=proc unsupported=1 why=wasi-has-no-process-creation'")


class Attacked(Platform):
    """Runs the victim at once; each attack ends its own way (by kind)."""

    family = "native"
    variant = "fake/attacked"

    def check(self) -> Availability:
        return Availability(True)

    def run(self, workload, args=(), *, timeout=300.0) -> RunOutcome:
        return RunOutcome(1, "", 0, "", {"elapsed_ns": "2000000"})

    @contextmanager
    def instance(self, workload, args=(), *, port=None, limits=None, timeout=120.0):
        kind = args[0]
        if kind == "mem" and limits:
            raise NotReady(CONTAINER_KILLED)
        if kind == "proc":
            raise WorkloadUnsupported(NO_FORK, "wasi has no process creation")
        if kind == "fd":
            raise NotSupported("no descriptors here")
        if kind == "io":
            raise RuntimeError("disk gone")
        yield Handle([], info={"ready_line": "VB-READY workload=hog taken=3 limit_hit=0"})


@pytest.fixture
def reasons() -> dict[tuple[str, str], str]:
    ms = measure_isolation(Attacked(), Workload("cpu"), Params(options={"victim_millions": 1}))
    return {(m.conditions["attack"], m.conditions["limits"]): m.reason
            for m in ms if m.metric == "slowdown"}


def test_each_way_an_attack_ends_has_its_reason(reasons):
    assert reasons["cpu", "off"] == "" and reasons["mem", "off"] == ""
    assert reasons["mem", "on"] == (
        "the attacker was stopped before it was ready (a limit, or the platform's own size, "
        f"ended it): RuntimeError: {CONTAINER_KILLED}")
    assert reasons["proc", "off"] == "attack not expressible: wasi has no process creation"
    assert reasons["fd", "on"] == "not supported: no descriptors here"
    assert reasons["io", "off"] == "victim or attacker failed: RuntimeError: disk gone"


def test_an_instance_that_ended_before_ready_is_typed_by_its_output():
    plain = ended_before_ready(CONTAINER_KILLED, "")
    assert type(plain) is NotReady and isinstance(plain, RuntimeError)
    assert str(plain) == CONTAINER_KILLED
    said = ended_before_ready(NO_FORK, "noise\nVB-RESULT workload=hog kind=proc unsupported=1 "
                                       "why=wasi-has-no-process-creation\n")
    assert isinstance(said, WorkloadUnsupported) and str(said) == NO_FORK
    assert said.why == "wasi has no process creation"
    assert ended_before_ready("x", "VB-RESULT workload=hog unsupported=1").why == ""
    assert type(ended_before_ready("x", "VB-RESULT workload=hog kind=mem taken=3")) is NotReady


@pytest.mark.integration
def test_a_process_that_exits_before_its_ready_line_raises_by_what_it_printed():
    from virtbench.platforms.readiness import wait_ready
    from virtbench.process import ProcessTimeout, start_instance

    with start_instance(["/bin/sh", "-c", "echo bye; exit 3"]) as inst:
        with pytest.raises(NotReady, match="exited 3 before 'VB-READY'") as caught:
            wait_ready(inst, 30)
    assert not isinstance(caught.value, WorkloadUnsupported)
    unsupported = "echo 'VB-RESULT workload=hog kind=proc unsupported=1 why=no-fork'; exit 4"
    with start_instance(["/bin/sh", "-c", unsupported]) as inst:
        with pytest.raises(WorkloadUnsupported, match="exited 4 before") as caught:
            wait_ready(inst, 30)
    assert caught.value.why == "no fork"
    with start_instance(["/bin/sleep", "30"]) as inst, pytest.raises(ProcessTimeout):
        wait_ready(inst, 0.3)
