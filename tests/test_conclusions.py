"""What a notebook may conclude: only under the verdict policy, and what the host ran is read
from its facts (hand-made rows and host facts; no platform runs)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from virtbench import stats, tables
from virtbench.dataset import Dataset

TCG = "QEMU 7.2.22, accelerator TCG, -M microvm, guest kernel 6.1"
KVM = "QEMU 7.2.22, accelerator KVM, -M microvm, guest kernel 6.1"


def dataset(samples: dict[str, list[float | None]], host: dict | None = None,
            metric: str = "total_time", experiment: str = "speedtest1",
            reason: str = "not available: KVM not usable: test boot failed") -> Dataset:
    lines = []
    for variant, values in samples.items():
        for rep, v in enumerate(values):
            lines.append(dict(run_id="t", experiment=experiment,
                              family=variant.split("/")[0].replace("qemu-kvm", "vm")
                              .replace("qemu-tcg", "vm"), variant=variant, workload="w",
                              metric=metric, conditions="", unit="ms", rep=rep,
                              value=math.nan if v is None else float(v),
                              reason=reason if v is None else "", warmup=False, tags="",
                              description="", timestamp="x"))
    return Dataset(pd.DataFrame(lines), host or {}, "t", n_boot=199)


def test_policy_lets_a_sentence_quote_only_samples_of_min_n():
    policy = stats.Policy(min_n=6)
    assert policy.short_of(2) == "inconclusive (n = 2 < 6)"
    assert policy.short_of(6) == "" and policy.short_of(1, exact=True) == ""
    lines = pd.DataFrame({"variant": ["a", "b", "c"], "n": [2, 6, 10],
                          "median": [5.0, 1.0, 3.0], "ci_low": [4.0, 0.9, 2.9],
                          "ci_high": [6.0, 1.1, 3.1], "unit": ["x"] * 3})
    assert list(policy.conclusive(lines)["variant"]) == ["b", "c"]
    text = tables.span_text(lines, "slowdown", "none", policy)
    assert "(b)" in text and "(c)" in text and "(a)" not in text  # a has n = 2: not quoted
    few = tables.span_text(lines[lines["variant"] == "a"], "slowdown", "none", policy)
    assert few == "slowdown inconclusive (n = 2 < 6)"
    assert tables.span_text(lines.iloc[0:0], "slowdown", "none", policy) == "none"


def test_ratio_sample_pairs_repetitions_and_falls_back_to_the_baseline_median():
    native = [100.0, 110.0, 90.0, 100.0, 105.0, 95.0]
    ds = dataset({"native/static": native, "docker/runc": [1.2 * v for v in native],
                  "wasmtime-cli/jit": [150.0]})
    ratios, how = ds.ratio_sample("docker/runc", "total_time", "speedtest1")
    assert ratios == pytest.approx([1.2] * 6) and "pairs matched by rep" in how
    # six identical paired ratios: the interval [1.2, 1.2] and a verdict
    assert stats.check_claim(ratios, 1.0).verdict == "higher than claimed"
    one, how = ds.ratio_sample("wasmtime-cli/jit", "total_time", "speedtest1")
    assert one == pytest.approx([150.0 / np.median(native)]) and "median" in how
    assert stats.check_claim(one, 1.0).verdict == "inconclusive (n = 1 < 6)"
    empty, how = ds.ratio_sample("qemu-tcg/microvm", "total_time", "speedtest1")
    assert empty.size == 0 and how == ""


def test_what_the_vms_ran_under_is_read_from_the_host_facts():
    samples = {"qemu-tcg/microvm": [10.0], "qemu-kvm/microvm": [None]}
    host = {"accelerators": {"qemu-tcg/microvm": TCG}, "cpu_virtualization_flags": []}
    ds = dataset(samples, host, metric="startup", experiment="startup")
    assert ds.accelerator("qemu-tcg/microvm") == "TCG"
    assert ds.accelerator("qemu-kvm/microvm") == ""
    hardware, line = ds.virtualization()
    assert not hardware
    assert "TCG (software emulation): qemu-tcg/microvm" in line
    assert "qemu-kvm/microvm (not available: KVM not usable" in line
    assert "flags: none" in line
    host = {"accelerators": {"qemu-tcg/microvm": TCG, "qemu-kvm/microvm": KVM},
            "cpu_virtualization_flags": ["vmx"]}
    ds = dataset({"qemu-tcg/microvm": [10.0], "qemu-kvm/microvm": [5.0]}, host,
                 metric="startup", experiment="startup")
    hardware, line = ds.virtualization()
    assert hardware and "KVM (hardware virtualization): qemu-kvm/microvm" in line
    assert "did not run" not in line and "vmx" in line


def test_a_censored_interval_shows_its_open_end():
    assert tables.estimate_text(3.147, -math.inf, 4.928, "MiB", 7) == "3.1 [-\u221e, 4.9] MiB"
    assert tables.estimate_text(2603.0, 1662.0, math.inf, "instances", 7).endswith(
        ", \u221e] instances")
    line = pd.DataFrame([dict(median=3.147, ci_low=-math.inf, ci_high=4.928, unit="MiB", n=7,
                              measured="\u2264 3.147 [-inf, 4.928] (n=7, 3 upper bounds) MiB")])
    assert "\u2264 3.1 [-\u221e, 4.9] MiB" in tables.to_html(line)
