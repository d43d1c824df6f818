"""`virtbench recommend`: which platform classes meet a start, memory and isolation budget,
from hand-made rows (fakes, nothing measured) and from the shipped reference run."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from virtbench import cli, recommend, stats
from virtbench.dataset import Dataset
from virtbench.rankings import Family

SPREAD = [0.97, 1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0]


def est(value: float, low: float, high: float) -> stats.Estimate:
    return stats.Estimate(value, low, high, 8)


def test_a_budget_is_met_only_by_the_whole_interval():
    assert recommend.meets(Family("x", estimate=est(5, 4, 6)), 10) == "meets"
    assert recommend.meets(Family("x", estimate=est(15, 12, 18)), 10) == "misses"
    assert recommend.meets(Family("x", estimate=est(9, 8, 11)), 10).startswith("undecided")
    assert recommend.meets(Family("x", reason="inconclusive (n = 4 < 6)"), 10) == \
        "inconclusive (n = 4 < 6)"
    assert recommend.meets(Family("x", reason="not measured: no rows"), 10) == \
        "not measured here: no rows"


@pytest.mark.parametrize("kwargs, needle", [
    (dict(max_start_ms=-1), "max-start-ms must be a positive number"),
    (dict(max_mem_mib=float("nan")), "max-mem-mib must be a positive number"),
    (dict(isolation="vm"), "unknown isolation level 'vm'; valid: process, namespace"),
    ({}, "give at least one budget"),
])
def test_bad_budgets_are_clear_errors(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        recommend.Budget(**kwargs)


def rows() -> Dataset:
    lines = []
    for variant, family, metric, experiment, median in (
            ("native/static", "native", "startup", "startup", 0.6),
            ("wasmtime-cli/jit", "wasm", "startup_process", "startup", 12.0),
            ("wasmtime-cli/aot", "wasm", "startup_process", "startup", 4.0),
            ("qemu-tcg/pc", "vm", "startup", "startup", 2500.0),
            ("native/static", "native", "memory_per_instance", "density", 0.1),
            ("wasmtime-cli/jit", "wasm", "memory_per_instance", "density", 5.0),
            ("wasmtime-cli/aot", "wasm", "memory_per_instance", "density", 1.0),
            ("qemu-tcg/pc", "vm", "memory_per_instance", "density", 150.0)):
        for rep, f in enumerate(SPREAD):
            lines.append(dict(run_id="t", experiment=experiment, family=family,
                              variant=variant, workload="noop", metric=metric,
                              unit="ms" if experiment == "startup" else "MiB", rep=rep,
                              value=median * f, conditions="", reason="", warmup=False,
                              tags="", description="", timestamp="x"))
    return Dataset(pd.DataFrame(lines), {}, "t", n_boot=199)


def test_classes_answer_variant_by_variant_and_say_what_is_missing():
    budget = recommend.Budget(max_start_ms=10, max_mem_mib=64, isolation="kernel")
    by_class = {r["platform_class"]: r for r in recommend.recommend(rows(), budget)}
    process = by_class["process"]
    assert process["by_variant"]["native/static"]["start"]["outcome"] == "meets"
    assert process["isolation"]["outcome"] == "misses"
    assert process["answer"] == "misses"
    wasm = by_class["wasm"]["by_variant"]
    assert wasm["wasmtime-cli/jit"]["start"]["outcome"] == "misses"
    assert wasm["wasmtime-cli/aot"]["start"]["outcome"] == "meets"
    vm = by_class["emulated-vm"]
    assert vm["by_variant"]["qemu-tcg/pc"]["start"]["outcome"] == "misses"
    assert vm["isolation"]["level"] == "kernel" and vm["answer"] == "misses"
    assert by_class["hardware-vm"]["answer"] == "not measured here"
    text = recommend.text(list(by_class.values()), budget, "t")
    assert "hardware-vm: NOT MEASURED HERE" in text and "declared by the class" in text


def test_a_class_meets_when_one_variant_meets_every_part():
    budget = recommend.Budget(max_start_ms=10, max_mem_mib=64)
    wasm = {r["platform_class"]: r for r in recommend.recommend(rows(), budget)}["wasm"]
    # jit misses the start budget, aot meets both: the class meets, with aot named
    assert wasm["answer"] == "meets" and wasm["meeting"] == ["wasmtime-cli/aot"]
    assert wasm["by_variant"]["wasmtime-cli/jit"]["answer"] == "misses"


def test_variants_are_not_pooled_into_enough_repetitions():
    # each variant has 4 repetitions: 8 rows in the class, but no variant has 6 of its own
    four = rows().rows()
    four = four[~((four["variant"].str.startswith("wasmtime-cli")) & (four["rep"] >= 4))]
    ds = Dataset(four.reset_index(drop=True), {}, "t", n_boot=199)
    wasm = {r["platform_class"]: r for r in recommend.recommend(
        ds, recommend.Budget(max_start_ms=100))}["wasm"]
    assert wasm["answer"] == "inconclusive"
    assert all(p["start"]["outcome"].startswith("inconclusive (n = 4 < 6")
               for p in wasm["by_variant"].values())


def test_cli_recommend_on_the_reference(capsys):
    assert cli.main(["recommend", "--max-start-ms", "10", "--max-mem-mib", "64",
                     "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    by_class = {r["platform_class"]: r for r in out["classes"]}
    process = by_class["process"]["by_variant"]["native/static"]["start"]
    assert process["n"] >= 6 and process["ci_low"] <= process["median"] <= process["ci_high"]
    assert process["outcome"] == "meets"  # a process starts in well under 10 ms
    for record in out["classes"]:
        for parts in record["by_variant"].values():
            assert parts["start"]["outcome"] and parts["memory"]["outcome"]
            assert parts["answer"] in ("meets", "misses", "undecided", "inconclusive",
                                       "not measured here")


def test_the_budget_flags_have_the_names_of_the_decision_tree(capsys):
    assert cli.main(["recommend", "--start-budget-ms", "10", "--memory-budget-mib", "64",
                     "--json"]) == 0
    spelled = json.loads(capsys.readouterr().out)
    assert cli.main(["recommend", "--max-start-ms", "10", "--max-mem-mib", "64",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == spelled


def test_cli_recommend_bad_input_is_a_clear_error(capsys):
    assert cli.main(["recommend", "--max-start-ms", "0"]) == 2
    assert "max-start-ms must be a positive number" in capsys.readouterr().err
    assert cli.main(["recommend"]) == 2
    assert "give at least one budget" in capsys.readouterr().err
    assert cli.main(["recommend", "--isolation", "strong"]) == 2
    assert "valid: process, namespace, kernel, hardware" in capsys.readouterr().err
    assert cli.main(["recommend", "--max-mem-mib", "5", "--run-id", "no-such-run"]) == 2
    assert "no-such-run" in capsys.readouterr().err
