"""The cpu suite's pure logic: kernel options, checksum checking, per-kernel ratios and their
geometric mean, and the claims check holding the kernel equal against the baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from virtbench import catalog, claims, platforms, stats
from virtbench.conditions import DEFAULTS, wanted
from virtbench.dataset import GEOMEAN, Dataset
from virtbench.experiments import cpu as cpu_mod
from virtbench.experiments import get
from virtbench.experiments.base import Params, check_options
from virtbench.platforms.base import Availability, Platform, RunOutcome, Workload

KERNELS = catalog.VALUES["kernel"]


# -- options ------------------------------------------------------------------------------------

def test_every_kernel_has_a_declared_size_option():
    cpu = get("cpu")
    assert [k.name for k in cpu_mod.KERNELS] == list(KERNELS)
    for k in cpu_mod.KERNELS:
        opt = cpu.options[k.option]
        assert opt.type is int and opt.low == 1 and opt.high == k.high
        assert 1 <= k.quick < k.full <= k.high
    assert "cpu_chase_mib" in cpu.options
    assert set(cpu_mod.SMOKE_SIZES) <= set(cpu.options)


@pytest.mark.parametrize("options, problem", [
    ({"cpu_fib_n": 51}, "cpu_fib_n"),
    ({"cpu_fib_n": 0}, "cpu_fib_n"),
    ({"cpu_chase_mib": 0}, "cpu_chase_mib"),
    ({"cpu_chase_mib": 2048}, "cpu_chase_mib"),
    ({"cpu_nbody_ksteps": "1.5"}, "cpu_nbody_ksteps"),
    ({"cpu_sort_rounds": "many"}, "cpu_sort_rounds"),
    ({"cpu_kernel": "nbody"}, "unknown option 'cpu_kernel'"),
])
def test_bad_kernel_options_are_refused(options, problem):
    with pytest.raises(ValueError, match=problem) as info:
        check_options(get("cpu"), options)
    assert "cpu_syscall_kcalls" in str(info.value)  # the message lists the valid options


def test_kernel_arguments_and_sizes():
    quick, full = Params(quick=True), Params()
    opts = Params(options=check_options(get("cpu"), {"cpu_chase_ksteps": "7",
                                                      "cpu_chase_mib": "8"}))
    by = {k.name: k for k in cpu_mod.KERNELS}
    assert cpu_mod.kernel_args(by["hash"], quick) == ["hash", "5"]
    assert cpu_mod.kernel_args(by["fib"], full) == ["fib", "36"]
    assert cpu_mod.kernel_args(by["chase"], opts) == ["chase", "7", "8"]
    assert cpu_mod.kernel_args(by["chase"], full) == ["chase", "100", "64"]
    assert cpu_mod.kernel_args(by["syscall"], quick) == ["syscall", "20", "{workdir}"]
    assert cpu_mod.cpu_iterations(full) == 20


# -- the checksum check -------------------------------------------------------------------------

class Fake(Platform):
    family, variant = "wasm", "fake/engine"

    def __init__(self, wrong: str = "") -> None:
        self.wrong = wrong
        self.calls: list[list[str]] = []

    def check(self) -> Availability:
        return Availability(True)

    def run(self, workload, args=(), *, timeout=300.0) -> RunOutcome:
        self.calls.append(list(args))
        kernel = args[0]
        checksum = "0xbad" if kernel == self.wrong else f"0x{kernel}"
        return RunOutcome(2_000_000, "launch to exit", 0, "",
                          {"kernel": kernel, "checksum": checksum, "elapsed_ns": "1000000"})


@pytest.fixture
def native_sums(monkeypatch):
    monkeypatch.setattr(cpu_mod, "native_checksum", lambda args: f"0x{args[0]}")


def test_every_kernel_gives_two_rows_with_the_kernel_condition(native_sums):
    plat = Fake()
    ms = cpu_mod.measure_cpu(plat, Workload("cpu"), Params(options=cpu_mod.SMOKE_SIZES))
    assert [c[0] for c in plat.calls] == list(KERNELS)
    assert [(m.metric, m.conditions["kernel"]) for m in ms] == [
        (metric, k) for k in KERNELS for metric in ("wall_time", "compute_time")]
    assert all(m.value is not None and m.tags["checksum"] == f"0x{m.conditions['kernel']}"
               for m in ms)
    for m in ms:
        catalog.validate("cpu", m.metric, m.unit, m.conditions)


def test_a_checksum_that_differs_from_native_fails_that_kernel(native_sums):
    ms = cpu_mod.measure_cpu(Fake(wrong="nbody"), Workload("cpu"), Params(quick=True))
    bad = [m for m in ms if m.conditions["kernel"] == "nbody"]
    assert len(bad) == 2 and all(m.value is None for m in bad)
    assert bad[0].reason.startswith("failed:")
    assert "checksum 0xbad of kernel nbody (size 200) differs from native/static's 0xnbody" \
        in bad[0].reason
    assert all(m.value is not None for m in ms if m.conditions["kernel"] != "nbody")


# -- datasets: rows without a kernel, per-kernel ratios, geometric mean ---------------------------

def frame(*specs) -> Dataset:
    """Rows of (variant, kernel or None, [values]) of compute_time."""
    lines = []
    for variant, kernel, values in specs:
        for rep, value in enumerate(values):
            lines.append(dict(run_id="t", experiment="cpu", family=platforms.family_of(variant),
                              variant=variant, workload="cpu", metric="compute_time",
                              conditions=json.dumps({"kernel": kernel}) if kernel else "",
                              unit="ms", rep=rep,
                              value=math.nan if value is None else float(value),
                              reason="failed: boom" if value is None else "", warmup=False,
                              tags="", description="", timestamp="x"))
    return Dataset(pd.DataFrame(lines), {}, "t", n_boot=499)


def test_a_row_without_a_kernel_is_the_hash_kernel():
    assert DEFAULTS["kernel"] == "hash"
    assert wanted({}, {"kernel": "hash"}) and not wanted({}, {"kernel": "nbody"})
    # a request that names no kernel reads the hash kernel, as before there were others
    assert wanted({"kernel": "hash"}, None) and not wanted({"kernel": "nbody"}, None)


def test_geomean_of_ratios_on_hand_made_data():
    exact = stats.geomean_ratio_ci([([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]),
                                    ([8.0, 8.0], [1.0, 1.0, 1.0])])
    assert exact.value == pytest.approx(4.0) and exact.low == exact.high == exact.value
    assert exact.n == 2
    rng = np.random.default_rng(1)
    pairs = [(r * (1 + 0.01 * rng.standard_normal(8)), 1 + 0.01 * rng.standard_normal(8))
             for r in (1.0, 3.0, 9.0)]
    est = stats.geomean_ratio_ci(pairs, n_resamples=999)
    assert est.value == pytest.approx(3.0, rel=0.03)
    assert est.low < est.value < est.high and est.low > 2.7 and est.high < 3.3
    one = stats.geomean_ratio_ci([([5.0], [1.0])])
    assert one.value == pytest.approx(5.0) and not one.has_ci
    with pytest.raises(ValueError):
        stats.geomean_ratio_ci([])


def test_kernel_ratios_with_every_kernel_measured():
    factors = dict(zip(KERNELS, (1.0, 2.0, 4.0, 1.0, 2.0, 8.0), strict=True))
    specs = [("native/static", k, [10.0, 10.1, 9.9, 10.0]) for k in KERNELS]
    specs += [("qemu-tcg/microvm", k, [10.0 * f, 10.1 * f, 9.9 * f, 10.0 * f])
              for k, f in factors.items()]
    table = frame(*specs).kernel_ratios()
    assert list(table["kernel"]) == [*KERNELS, GEOMEAN]
    by = table.set_index("kernel")
    for k, f in factors.items():
        assert by.loc[k, "ratio"] == pytest.approx(f)
        assert by.loc[k, "ratio_low"] <= f <= by.loc[k, "ratio_high"]
    expected = math.prod(factors.values()) ** (1 / 6)
    assert by.loc[GEOMEAN, "ratio"] == pytest.approx(expected)
    assert by.loc[GEOMEAN, "ratio_low"] < expected < by.loc[GEOMEAN, "ratio_high"]
    assert by.loc[GEOMEAN, "pct_of_baseline"] == pytest.approx(100 / expected)


def test_kernel_ratios_of_an_old_dataset_say_not_measured():
    # the shipped reference rows carry no kernel: they are the hash kernel
    ds = frame(("native/static", None, [10.0, 10.0, 10.2]),
               ("docker/runc", None, [10.5, 10.4, 10.6]),
               ("qemu-tcg/pc", "nbody", [None]))
    table = ds.kernel_ratios().set_index(["variant", "kernel"])
    assert table.loc[("docker/runc", "hash"), "ratio"] == pytest.approx(1.05, rel=0.01)
    for k in KERNELS[1:]:
        assert math.isnan(table.loc[("docker/runc", k), "ratio"])
        assert table.loc[("docker/runc", k), "text"].startswith("not measured: ")
    assert table.loc[("docker/runc", GEOMEAN), "text"].startswith(
        "not measured: no samples of kernel nbody")
    assert "failed: boom" in table.loc[("qemu-tcg/pc", "nbody"), "text"]
    # a variant with cpu rows of other experiments' metrics only
    assert "not in this dataset" in frame(("native/static", None, [1.0])).kernel_reason(
        "docker/runc", "compute_time", "fib")


def test_claims_divide_each_kernel_by_the_same_kernel_on_the_baseline():
    """CPU performance is the geometric mean of the CPU-bound kernels' ratios, each kernel
    divided by the same kernel on the baseline; the syscall kernel does not enter."""
    noisy = [10.0, 10.05, 9.95, 10.02, 9.98, 10.0]
    bound = ("hash", "nbody", "chase", "sort", "fib")
    specs = [("native/static", k, noisy) for k in (*bound, "syscall")]
    other = noisy[::-1]
    specs += [("qemu-tcg/microvm", k, [4 * v for v in other] if k == "nbody" else other)
              for k in bound]
    specs += [("qemu-tcg/microvm", "syscall", [100 * v for v in other])]
    check = claims.check(frame(*specs), keys=["seed:core:cpu"])
    (vm,) = check[check["variant"] == "qemu-tcg/microvm"].itertuples()
    assert vm.median == pytest.approx(100 * 0.25 ** (1 / 5), rel=0.01)  # nbody 4x slower
    assert not vm.tallied and "emulation" in vm.reason  # a hardware-VM claim
