"""The experiment runner's logic, with fake platforms (the real ones have integration tests)."""

from __future__ import annotations

import pytest

from virtbench import experiments, platforms, runner
from virtbench.experiments.base import Experiment
from virtbench.metric import Metric
from virtbench.platforms.base import Availability, NotSupported, Platform, Workload
from virtbench.results import Measurement, RunStore

CALLS: list[tuple[str, int]] = []


class Counting(Platform):
    family = "native"
    variant = "fake/counting"

    def check(self) -> Availability:
        return Availability(True, "always", version="1.0")


class Counting2(Counting):
    variant = "fake/counting2"


class Absent(Platform):
    family = "vm"
    variant = "fake/absent"

    def check(self) -> Availability:
        return Availability(False, "no such engine here", "install it")


class Refusing(Counting):
    variant = "fake/refusing"


def measure(plat: Platform, wl: Workload, params) -> list[Measurement]:
    if isinstance(plat, Refusing):
        raise NotSupported("cannot do this")
    CALLS.append((plat.variant, len(CALLS)))
    return [Measurement("t", float(len(CALLS)), "ms", "a counter")]


FAKE = Experiment("fake", "counts calls", measure, reps=3, warmup=1,
                  metrics=(Metric("t", "fake", "ms", "lower", "a counter"),),
                  primary=(("t", {}),))


@pytest.fixture
def fakes(install_fakes):
    install_fakes(FAKE, Counting, Counting2, Absent, Refusing)
    CALLS.clear()
    yield


def test_every_cell_is_measured_once_and_interleaved(fakes, tmp_path):
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/counting", "fake/counting2"], store, progress=None)
    df = store.rows()
    assert len(df) == 2 * (3 + 1)
    assert df["warmup"].sum() == 2
    order = [v for v, _ in CALLS]
    # each repetition measures both variants before the next repetition starts
    for i in range(0, len(order), 2):
        assert set(order[i:i + 2]) == {"fake/counting", "fake/counting2"}


def test_rerun_with_same_store_measures_nothing_again(fakes, tmp_path):
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/counting"], store, progress=None)
    n = len(CALLS)
    runner.run(FAKE, ["fake/counting"], RunStore("r", root=tmp_path), progress=None)
    assert len(CALLS) == n
    assert len(RunStore("r", root=tmp_path).rows()) == 4


def test_unavailable_variant_is_a_reason_row(fakes, tmp_path):
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/absent"], store, progress=None)
    df = store.rows()
    assert len(df) == 1
    assert df["value"].isna().all()
    assert "no such engine here" in df["reason"].iloc[0]


def test_unsupported_measurement_is_a_reason_row_per_rep(fakes, tmp_path):
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/refusing"], store, reps=2, progress=None)
    df = store.rows()
    assert df["value"].isna().all()
    assert set(df["reason"]) == {"not supported: cannot do this"}


def test_host_json_records_parameters(fakes, tmp_path):
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/counting"], store, reps=2, quick=True, progress=None)
    import json

    host = json.loads((store.dir / "host.json").read_text())
    assert host["invocations"][0]["parameters"]["reps"] == 2
    assert host["invocations"][0]["parameters"]["quick"] is True
    assert host["cpu_count"] >= 1 and host["kernel"]
    assert host["accelerators"] == {"fake/counting": "1.0"}


def _boom(plat: Platform, wl: Workload, params) -> list[Measurement]:
    raise KeyboardInterrupt


def test_host_json_records_duration_outcome_and_load_before_and_after(fakes, tmp_path):
    import json

    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/counting"], store, reps=2, progress=None)
    with pytest.raises(KeyboardInterrupt):
        runner.run(Experiment("fake", "stops", _boom, reps=1, warmup=0),
                   ["fake/counting2"], store, progress=None)
    done, stopped = json.loads((store.dir / "host.json").read_text())["invocations"]
    assert done["outcome"] == "completed" and stopped["outcome"] == "interrupted"
    for inv in (done, stopped):
        assert inv["duration_s"] >= 0 and inv["finished_at"] >= inv["started_at"]
        for key in ("load_before", "load_after"):
            load = inv[key]
            assert len(load["loadavg_1_5_15"]) == 3
            assert 0 <= load["cpu_busy_share"] <= 1 and load["mem_available_mib"] > 0


@pytest.mark.parametrize("reps", [0, -1])
def test_non_positive_reps_are_refused(fakes, tmp_path, reps):
    with pytest.raises(ValueError, match="positive"):
        runner.run(FAKE, ["fake/counting"], RunStore("r", root=tmp_path), reps=reps,
                   progress=None)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid: .*startup"):
        experiments.get("startp")
    with pytest.raises(ValueError, match="no variant matches 'wasmtme'.*native/static"):
        platforms.select(variants=["wasmtme"])
    with pytest.raises(ValueError, match="valid: native, docker, wasm, vm"):
        platforms.select(families=["vms"])


def test_select_by_family_and_by_prefix():
    assert platforms.select(variants=["native"]) == ["native/static", "native/dynamic"]
    vm = platforms.select(families=["vm"])
    assert vm and all(v.startswith("qemu-") for v in vm)
    assert platforms.select() == list(platforms.VARIANTS)


def test_progress_has_elapsed_time_an_estimate_and_a_final_count(fakes, tmp_path):
    said: list[str] = []
    store = RunStore("p", root=tmp_path)
    runner.run(FAKE, ["fake/counting", "fake/refusing", "fake/absent"], store,
               progress=said.append)
    cells = [m for m in said if m.startswith("[")]
    assert cells and all(" elapsed" in m for m in cells)
    assert any("left" in m for m in cells[1:])
    assert said[-1].startswith("fake: 4 cells measured, 4 not supported, 0 failed, "
                               "0 already stored, 1 variant(s) not available, in ")
    again: list[str] = []
    runner.run(FAKE, ["fake/counting"], store, progress=again.append)
    assert again[-1].startswith("fake: 0 cells measured, 0 not supported, 0 failed, "
                                "4 already stored")


def test_durations_read_as_people_say_them():
    from virtbench.durations import duration_text as _duration

    assert [_duration(s) for s in (4.4, 75, 3 * 3600 + 120)] == ["4 s", "1 min 15 s",
                                                                 "3 h 02 min"]


def test_quick_leaves_out_the_experiments_quick_skips_with_their_reason(fakes, tmp_path):
    from dataclasses import replace

    skipping = replace(FAKE, quick_skips={"fake/counting2": "a full run measures it"})
    quick = RunStore("q", root=tmp_path)
    runner.run(skipping, ["fake/counting", "fake/counting2"], quick, quick=True,
               progress=None)
    rows = quick.rows()
    left_out = rows[rows["variant"] == "fake/counting2"]
    assert left_out["value"].isna().all() and len(left_out) == 1
    assert left_out["reason"].iloc[0] == "not measured with --quick: a full run measures it"
    assert {v for v, _ in CALLS} == {"fake/counting"}
    CALLS.clear()
    runner.run(skipping, ["fake/counting2"], RunStore("full", root=tmp_path), reps=1,
               progress=None)
    assert {v for v, _ in CALLS} == {"fake/counting2"}


def test_quick_leaves_tcg_pc_to_a_full_run_only_where_the_machine_type_is_not_the_point():
    skipping = {name for name, e in experiments.EXPERIMENTS.items() if e.quick_skips}
    assert {"startup", "memory", "density", "disk"}.isdisjoint(skipping)
    assert {"cpu", "http", "isolation"} <= skipping
    assert all(set(experiments.EXPERIMENTS[n].quick_skips) == {"qemu-tcg/pc"} for n in skipping)


def test_remeasure_measures_stored_cells_again_and_the_new_rows_are_read(fakes, tmp_path):
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, ["fake/counting"], store, reps=2, progress=None)
    first = sorted(store.rows()["value"])
    runner.run(FAKE, ["fake/counting"], store, reps=2, progress=None)
    assert len(CALLS) == 3  # resumed: nothing measured again
    runner.run(FAKE, ["fake/counting"], store, reps=2, progress=None, remeasure=True)
    assert len(CALLS) == 6
    again = store.rows()
    assert len(again) == 3 and sorted(again["value"]) == [4.0, 5.0, 6.0] != first
    lines = (store.dir / "results.csv").read_text().splitlines()
    assert len(lines) == 1 + 6  # the earlier attempt stays on disk


class Closing(Counting):
    """A fake that counts how often it is closed."""

    variant = "fake/closing"
    closed = 0

    def close(self) -> None:
        type(self).closed += 1


class Closing2(Closing):
    variant = "fake/closing2"


def test_variants_are_also_given_as_platform_classes_and_objects(install_fakes, tmp_path):
    """Neither needs a registry entry; the runner closes what it created and leaves the
    object it was given to its owner."""
    import json

    install_fakes(FAKE)  # the experiment only: no variant is registered
    CALLS.clear()
    Closing.closed = Closing2.closed = 0
    mine = Closing2()
    store = RunStore("r", root=tmp_path)
    runner.run(FAKE, [Closing, mine], store, reps=1, progress=None)
    rows = store.rows()
    assert sorted(set(rows["variant"])) == ["fake/closing", "fake/closing2"]
    assert rows["value"].notna().all() and set(rows["family"]) == {"native"}
    assert {v for v, _ in CALLS} == {"fake/closing", "fake/closing2"}
    assert Closing.closed == 1 and Closing2.closed == 0
    host = json.loads((store.dir / "host.json").read_text())
    assert host["invocations"][0]["parameters"]["variants"] == ["fake/closing",
                                                               "fake/closing2"]
    assert platforms.create(mine) is mine and isinstance(platforms.create(Closing), Closing)
