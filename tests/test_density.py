"""Density and instance memory from hand-made readings: bounds, never negative numbers."""

from __future__ import annotations

import numpy as np
import pytest

from virtbench import catalog
from virtbench.accounting import MemoryReading
from virtbench.experiments.density import checkpoints, slope_rows
from virtbench.experiments.memory import instance_memory_rows

COUNTS = [0, 1, 2, *range(10, 201, 10)]
TAGS = {"instances": "200"}


def _rows(available: list[float], pss_per: float = 0.05) -> dict:
    series = {"memory_per_instance": available,
              "pss_per_instance": [pss_per * n for n in COUNTS],
              "rss_per_instance": [0.7 * n for n in COUNTS]}
    out = slope_rows(COUNTS, series, TAGS, "test")
    for m in out:
        catalog.validate("density", m.metric, m.unit, m.conditions)
    return {m.metric: m for m in out}


def test_a_slope_indistinguishable_from_zero_is_an_upper_bound_not_a_negative_number():
    noise = np.random.default_rng(1).normal(0, 40, len(COUNTS))  # MemAvailable noise, MiB
    noise -= np.polyfit(COUNTS, noise, 1)[0] * np.array(COUNTS)  # fitted slope exactly 0 ...
    rows = _rows(list(noise - 0.01 * np.array(COUNTS)))  # ... then slightly negative
    mem = rows["memory_per_instance"]
    assert mem.value is None and mem.reason.startswith("below ")
    assert "MiB per instance at 200 instances" in mem.reason
    bound = rows["memory_per_instance_bound"].value
    assert bound > 0 and f"below {bound:.2f} MiB" in mem.reason
    per8 = rows["instances_per_8gib"]
    assert per8.value is None and "at least" in per8.reason
    # the bounds the verdicts read as censored samples
    assert float(mem.tags["upper_bound"]) == pytest.approx(bound, abs=1e-4)
    assert float(per8.tags["lower_bound"]) == pytest.approx(8192 / bound, abs=0.1)
    assert rows["pss_per_instance"].value == pytest.approx(0.05)
    assert all(m.value is None or m.value > 0 for m in rows.values())


def test_a_clearly_falling_memavailable_drop_gives_no_figure():
    rows = _rows([-3.85 * n for n in COUNTS])  # memory freed elsewhere while starting
    mem = rows["memory_per_instance"]
    assert mem.value is None and "fell" in mem.reason
    assert "memory_per_instance_bound" not in rows
    assert rows["instances_per_8gib"].value is None
    assert not {"upper_bound", "lower_bound"} & {*mem.tags, *rows["instances_per_8gib"].tags}


def test_a_resolved_slope_gives_instances_per_8gib():
    rows = _rows([1.1 * n + (n % 3) * 0.5 for n in COUNTS])
    assert rows["memory_per_instance"].value == pytest.approx(1.1, abs=0.02)
    assert float(rows["memory_per_instance"].tags["slope_ci_low"]) > 0
    assert rows["instances_per_8gib"].value == pytest.approx(8192 / 1.1, rel=0.02)


def test_too_few_readings_are_a_reason():
    out = slope_rows([0, 1], {"memory_per_instance": [0.0, 1.0]}, {}, "test")
    assert out[0].value is None and "only 1 instance" in out[0].reason


def test_checkpoints_cover_the_start_and_the_end():
    marks = checkpoints(200)
    assert {0, 1, 2, 200} <= marks and 10 <= len(marks) <= 14
    assert checkpoints(3) == {0, 1, 2, 3}


def test_instance_memory_of_a_container_adds_its_shim_and_takes_the_loaded_peak():
    idle = MemoryReading(rss=15.0, hwm=15.5, pss=4.0, cgroup=0.6, outside_rss=14.0)
    loaded = [MemoryReading(16.0, 17.0, 5.0, 1.5, 14.2), MemoryReading(16.5, 17.0, 6.0, 2.0, 14.0),
              MemoryReading(15.5, 17.0, 4.5, 1.0, 14.1)]
    out = instance_memory_rows(idle, loaded, 17.0, 3, "wrk", {}, {})
    for m in out:
        catalog.validate("memory", m.metric, m.unit, m.conditions)
    got = {(m.metric, m.conditions["state"]): m.value for m in out}
    assert got["instance_rss", "idle"] == 15.0 and got["instance_rss", "loaded"] == 17.0
    assert got["instance_pss", "loaded"] == 6.0  # the largest sample
    assert got["instance_cgroup", "idle"] == 0.6 and got["instance_cgroup", "loaded"] == 2.0
    assert got["instance_footprint", "idle"] == pytest.approx(14.6)
    assert got["instance_footprint", "loaded"] == pytest.approx(16.0)


def test_instance_memory_of_a_process_has_no_cgroup_rows_and_keeps_the_guest_size():
    r = MemoryReading(rss=240.0, hwm=250.0, pss=239.0)
    out = instance_memory_rows(r, [r], 250.0, 1, "wrk", {}, {"guest_memory_mib": "256"})
    assert {m.metric for m in out} == {"instance_rss", "instance_pss"}
    for m in out:
        catalog.validate("memory", m.metric, m.unit, m.conditions)
        assert m.conditions["guest_memory_mib"] == "256"


def test_a_platform_without_long_running_instances_gets_reason_rows():
    from virtbench.experiments.base import Params
    from virtbench.experiments.memory import measure_instance_memory
    from virtbench.platforms.base import Availability, Platform, Workload

    class NoInstances(Platform):
        family, variant = "wasm", "test/embedded"

        def check(self) -> Availability:
            return Availability(True)

    out = measure_instance_memory(NoInstances(), Workload("http"), Params(quick=True))
    assert {(m.metric, m.conditions["state"]) for m in out} == {
        (k, s) for k in ("instance_rss", "instance_pss") for s in ("idle", "loaded")}
    assert all(m.value is None and "Platform.instance" in m.reason for m in out)
