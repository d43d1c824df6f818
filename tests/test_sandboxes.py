"""The sandbox comparison's logic (virtbench.sandboxes, plots.relative_costs).

Hand-made rows: fakes for unit tests of the arithmetic and of the reasons, nothing measured.
"""

from __future__ import annotations

import json
import math

import matplotlib
import pandas as pd
import pytest

from virtbench import plots, sandboxes, stats
from virtbench.dataset import Dataset

matplotlib.use("Agg")
SPREAD = [0.97, 1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0]  # 8 repetitions around 1
FAMILY = {"native/static": "native", "docker/runc": "docker", "docker/crun": "docker",
          "docker/runsc": "docker"}


def fake(*groups: tuple) -> Dataset:
    """A fake run from (variant, experiment, metric, unit, median, conditions[, n])."""
    lines = []
    for variant, experiment, metric, unit, median, conditions, *n in groups:
        for rep, factor in enumerate(SPREAD[: n[0] if n else len(SPREAD)]):
            lines.append(dict(run_id="fake", experiment=experiment, family=FAMILY[variant],
                              variant=variant, workload="noop", metric=metric, unit=unit,
                              rep=rep, value=median * factor, reason="", warmup=False,
                              tags="", description="", timestamp="x",
                              conditions=json.dumps(conditions) if conditions else ""))
    return Dataset(pd.DataFrame(lines), {}, "fake", n_boot=199)


STARTUP = sandboxes.ASPECTS[0]
BRIDGE = {"network": "bridge"}


def test_the_compared_variants_hold_every_sandboxed_container():
    assert sandboxes.COMPARED[:3] == ("native/static", "docker/runc", "docker/crun")
    assert "docker/runsc" in sandboxes.COMPARED


def test_a_time_costs_its_ratio_and_a_throughput_its_inverse():
    ds = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE),
              ("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE),
              ("docker/runc", "sysbench", "events_per_s", "events/s", 1000.0, None),
              ("docker/runsc", "sysbench", "events_per_s", "events/s", 800.0, None))
    est, why = sandboxes.cost(ds, "docker/runsc", STARTUP)
    assert not why and est.value == pytest.approx(3.0) and est.low <= 3.0 <= est.high
    cpu = next(a for a in sandboxes.ASPECTS if a.metric == "events_per_s")
    assert cpu.higher_is_better
    est, _ = sandboxes.cost(ds, "docker/runsc", cpu)
    assert est.value == pytest.approx(1000 / 800)


def test_the_kernels_give_the_geometric_mean_of_their_ratios():
    aspect = sandboxes.Aspect("kernels", "cpu", "compute_time", kernels=("hash", "nbody"))
    ds = fake(("docker/runc", "cpu", "compute_time", "ms", 10.0, {"kernel": "hash"}),
              ("docker/runc", "cpu", "compute_time", "ms", 10.0, {"kernel": "nbody"}),
              ("docker/runsc", "cpu", "compute_time", "ms", 20.0, {"kernel": "hash"}),
              ("docker/runsc", "cpu", "compute_time", "ms", 80.0, {"kernel": "nbody"}))
    est, _ = sandboxes.cost(ds, "docker/runsc", aspect)
    assert est.value == pytest.approx(4.0)  # sqrt(2 x 8)
    missing = sandboxes.Aspect("kernels", "cpu", "compute_time", kernels=("hash", "fib"))
    est, why = sandboxes.cost(ds, "docker/runsc", missing)
    assert est is None and why.startswith(sandboxes.NOT_MEASURED) and "fib" in why


def test_a_missing_variant_or_baseline_says_why_from_the_data():
    ds = fake(("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE),
              ("native/static", "startup", "startup", "ms", 1.0, None))
    costs = sandboxes.relative_costs(ds, [STARTUP])
    assert list(costs["variant"]) == ["native/static", "docker/crun", "docker/runsc"]
    assert (costs["n"] == 0).all() and costs["ratio"].isna().all()
    runsc = costs.set_index("variant").loc["docker/runsc", "text"]
    assert runsc.startswith("not measured: the baseline docker/runc: ")
    crun = costs.set_index("variant").loc["docker/crun", "text"]
    assert crun == "not measured: not in this dataset (no rows for docker/crun)"


def test_the_headline_quotes_only_what_the_policy_allows():
    ds = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE),
              ("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE),
              ("docker/runc", "syscalls", "host_syscalls_distinct", "syscalls", 8.0, None),
              ("docker/runsc", "syscalls", "host_syscalls_distinct", "syscalls", 18.0, None))
    aspects = [STARTUP, sandboxes.ASPECTS[-1]]
    lead = sandboxes.headline_lead(sandboxes.relative_costs(ds, aspects))
    assert lead.startswith("Sandboxes: docker/runsc costs 3x [")
    assert "docker/runc's startup (image present) and 2.2x [" in lead
    assert lead.endswith("its host system calls (distinct)")
    few = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE, 3),
               ("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE, 3))
    lead = sandboxes.headline_lead(sandboxes.relative_costs(few, [STARTUP]))
    assert lead == ("Sandboxes: docker/runsc vs docker/runc measured in 1 of 1 aspects, "
                    "inconclusive (n = 3 < 6)")
    none = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE))
    lead = sandboxes.headline_lead(sandboxes.relative_costs(none, [STARTUP]))
    assert lead == ("Sandboxes: docker/runsc not measured, because not in this dataset "
                    "(no rows for docker/runsc)")


def test_a_deviation_is_placed_against_a_stated_limit_never_judged():
    costs = pd.DataFrame([
        dict(aspect="a", variant="docker/runsc", n=8, ratio=1.02, ratio_low=1.01,
             ratio_high=1.04, text=""),
        dict(aspect="b", variant="docker/runsc", n=8, ratio=1.5, ratio_low=1.4,
             ratio_high=1.6, text=""),
        dict(aspect="c", variant="docker/runsc", n=8, ratio=1.05, ratio_low=0.98,
             ratio_high=1.12, text=""),
        dict(aspect="d", variant="docker/runsc", n=3, ratio=1.0, ratio_low=0.9,
             ratio_high=1.1, text=""),
        dict(aspect="e", variant="docker/runsc", n=0, ratio=math.nan, ratio_low=math.nan,
             ratio_high=math.nan, text="not measured: X")])
    near = sandboxes.beside_limit(costs, list("abcde"), 5, stats.Policy())
    assert list(near["beside +-5 %"]) == ["inside", "outside", "straddles",
                                          "inconclusive (n = 3 < 6)",
                                          "not measured: X"]
    assert near.loc[1, "deviation_pct"] == pytest.approx(50.0)


def test_the_summary_names_every_compared_variant_in_order():
    ds = fake(("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE),
              ("native/static", "startup", "startup", "ms", 1.0, None))
    summary = sandboxes.summary(ds, ["startup"], "startup", conditions=BRIDGE)
    assert list(summary["variant"]) == list(sandboxes.COMPARED)
    runc = summary[summary["variant"] == "docker/runc"].iloc[0]
    assert runc["n"] == 0
    assert runc["text"] == "not measured: not in this dataset (no rows for docker/runc)"
    assert summary[summary["variant"] == "docker/runsc"]["label"].iloc[0] == \
        "startup (network=bridge)"


def test_the_cost_figure_says_what_is_missing():
    ds = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE),
              ("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE))
    fig = plots.relative_costs(sandboxes.relative_costs(ds, [STARTUP]), "costs",
                               "docker/runc")
    said = plots.alt_text(fig)
    assert "cost relative to docker/runc" in said
    assert "docker/crun: not measured in 1 of 1 aspects" in said
    empty = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE))
    costs = sandboxes.relative_costs(empty, [STARTUP], ["docker/runsc"])
    said = plots.alt_text(plots.relative_costs(costs, "costs", "docker/runc"))
    assert "not measured, because not in this dataset (no rows for docker/runsc)" in said


def test_sandboxed_lines_get_a_column_of_their_own():
    check = pd.DataFrame(dict(variant=["docker/runsc", "docker/runc", ""],
                              family=["", "docker", ""]))
    assert list(sandboxes.by_class(check)["family"]) == ["sandboxed container", "docker", ""]
    assert list(check["family"]) == ["", "docker", ""]  # the input is left as it was


def test_the_verdict_matrix_clips_each_line_of_a_cell_alone():
    cells = pd.DataFrame([dict(aspect="startup", system="Edera", verdict="not measurable here",
                               claimed="claimed 1648 ms",
                               measured="gVisor here, not Edera:\n1.2\u20131.5 s")])
    fig = plots.verdict_matrix(cells, "matrix")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "claimed 1648 ms\ngVisor here, not Edera:\n1.2\u20131.5 s\nnot measurable here" \
        in texts
