"""Long-running instances of the in-process Wasm variants (embedded wasmtime, node:wasi,
Wasmer): an idle ``mem 0 HOLD_MS`` blocks in WASI ``poll_oneoff`` inside the worker process,
uses next to no CPU, and nothing is left running once the instance is stopped."""

from __future__ import annotations

import os
import time

import pytest

from virtbench import platforms, runner
from virtbench.accounting import cpu_ns, free_port
from virtbench.experiments import get
from virtbench.experiments.shared.serving import IDLE_HOLD_MS
from virtbench.platforms.base import (
    WORKDIR,
    NotReady,
    NotSupported,
    Workload,
    WorkloadUnsupported,
)
from virtbench.platforms.wasm import node, variants, wasmer
from virtbench.results import RunStore, measured
from virtbench.workloads import parse_result_line, toolchain_status

CLASSES = [variants.Cranelift, variants.Winch, variants.Pulley, variants.EmbeddedAot, node.NodeWasi,
           wasmer.Wasmer]
IDLE_CPU_NS = 20_000_000  # at most 20 ms of CPU over a 1 s idle window (2%)

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not toolchain_status()["wasm"][0],
                                 reason="the wasm32-wasi toolchain is missing")]


@pytest.fixture(scope="module", params=CLASSES, ids=[c.variant for c in CLASSES])
def plat(request):
    with request.param() as p:
        if not p.availability.available:
            pytest.skip(f"{p.variant}: {p.availability.reason}")
        yield p


def group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` still runs (zombies are reaped by then)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def held_idle(plat, **kw) -> tuple[list[int], dict[str, str]]:
    """Start an idle instance, check it is alive and idle, stop it; (its pids, its info)."""
    with plat.instance(Workload("mem"), ["0", IDLE_HOLD_MS], **kw) as handle:
        assert handle.pids and handle.ready_ns
        assert handle.info["ready_line"].startswith("VB-READY workload=mem mib=0")
        for pid in handle.pids:
            assert group_alive(pid)
        time.sleep(0.5)  # start-up work (compilation, tier-up) has finished
        before = cpu_ns(handle.pids)
        assert before > 0  # the accounting really reads the worker's threads
        time.sleep(1.0)
        used = cpu_ns(handle.pids) - before
        assert used < IDLE_CPU_NS, f"an idle instance used {used / 1e6:.1f} ms of CPU in 1 s"
        pids, info = list(handle.pids), dict(handle.info)
    return pids, info


def test_idle_instance_blocks_and_leaves_nothing(plat):
    pids, info = held_idle(plat)
    assert info["instances_in_process"] == "1" and info["host_process"] == plat.process
    for pid in pids:
        assert not group_alive(pid), f"{plat.variant}: the worker's group still runs"


def test_many_instances_in_one_worker(plat):
    if not plat.instances_per_process:
        with pytest.raises(NotSupported, match="one instance per process"):
            with plat.instance(Workload("mem"), ["0", IDLE_HOLD_MS], count=2):
                pass
        return
    pids, info = held_idle(plat, count=3)
    assert len(pids) == 1 and info["instances_in_process"] == "3"
    assert info["ready_line"].endswith("instances=3")
    assert not group_alive(pids[0])


def test_http_is_not_supported_with_the_reason(plat):
    with pytest.raises(NotSupported, match="cannot serve http: .*socket"):
        with plat.instance(Workload("http"), port=free_port()):
            pass


def test_instance_that_fails_before_ready_says_why(plat):
    with pytest.raises(NotReady, match="before 'VB-READY'"):
        with plat.instance(Workload("mem"), ["not-a-number"], timeout=60):
            pass


def test_idle_cpu_falls_back_to_an_idle_mem_instance(tmp_path):
    """cpu_usage on a variant that cannot serve http measures an idle `mem 0` instance."""
    variant = "wasmtime-embedded/cranelift"
    with platforms.create(variant) as p:
        if not p.availability.available:
            pytest.skip(f"{variant}: {p.availability.reason}")
    store = RunStore("x", root=tmp_path)
    runner.run(get("cpu_usage"), [variant], store, reps=1, quick=True, progress=None,
               options={"idle_window_s": "1"})
    row = measured(store.rows()).iloc[0]
    assert row["workload"] == "mem" and 0 <= row["value"] < 2
    assert "cannot serve http" in row["description"]


def test_density_fits_the_marginal_pss_in_one_process(tmp_path):
    """density on a variant that packs instances: the per-process fit under packing."""
    variant = "wasmtime-embedded/cranelift"
    with platforms.create(variant) as p:
        if not p.availability.available:
            pytest.skip(f"{variant}: {p.availability.reason}")
    store = RunStore("x", root=tmp_path)
    runner.run(get("density"), [variant], store, reps=1, quick=True, progress=None,
               options={"density_max": "3"})
    got = measured(store.rows()).set_index(["metric", "conditions"])["value"]
    assert got["pss_per_instance", ""] > 0
    packed = got["pss_per_instance", '{"packing": "one_process"}']
    assert 0 < packed < got["pss_per_instance", ""]  # one more store is cheaper than a worker


def test_fd_attacker_that_exhausts_descriptors_still_reports_ready(plat):
    """The ready line is read even when the guest has taken every descriptor it can."""
    with plat.instance(Workload("hog"), ["fd", "60", "1000000", WORKDIR], timeout=90) as h:
        fields = parse_result_line(h.info["ready_line"], marker="VB-READY")
        assert fields["kind"] == "fd" and int(fields["taken"]) > 0


def test_unexpressible_attack_names_why_in_plain_text(plat):
    with pytest.raises(WorkloadUnsupported) as caught:  # what isolation turns into a reason
        with plat.instance(Workload("hog"), ["proc", "60", "10", WORKDIR], timeout=60):
            pass
    assert caught.value.why == "wasi has no process creation"
    assert "unsupported=1" in str(caught.value)  # the message keeps the output's tail
