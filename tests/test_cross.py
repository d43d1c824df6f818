"""Cross-platform experiments (HTTP, idle CPU, density, isolation) really run on native."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from virtbench import experiments, platforms, runner
from virtbench.results import RunStore, measured
from virtbench.summary import summarize

pytestmark = pytest.mark.integration
FAST = {"http_duration_s": "1", "http_seed_duration_s": "0", "idle_window_s": "1",
        "density_max": "60", "victim_millions": "5", "attack_mem_mib": "64",
        "attack_procs": "50"}


def leftovers() -> str:
    """Workload processes of the suite still running (there must be none)."""
    out = subprocess.run(["pgrep", "-af", r"virtbench/build/.*/(http|mem|hog|cpu)( |$)"],
                         capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def run(tmp_path):
    def _run(name: str, variant: str = "native/static", quick: bool = True, **options):
        store = RunStore("x", root=tmp_path)
        exp = experiments.get(name)
        runner.run(exp, [variant], store, reps=1, quick=quick, progress=None,
                   options={**{k: v for k, v in FAST.items() if k in exp.options},
                            **options})
        assert leftovers() == "", f"{name} left processes running"
        return store.rows()
    return _run


def test_http_gives_throughput_latency_and_cpu_share(run):
    rows = run("http")
    df = measured(rows).set_index("metric")["value"]
    assert df["requests_per_s"] > 0
    assert 0 < df["latency_p50"] <= df["latency_p99"]
    assert df["errors"] == 0
    assert 0 < df["cpu_percent_load"] <= 100 * 2
    assert set(rows["conditions"]) == {'{"load": "light"}', '{"load": "seed"}'}
    seed = rows[rows["conditions"] == '{"load": "seed"}']
    assert seed["value"].isna().all()  # http_seed_duration_s=0 leaves the seed profile out
    assert seed["reason"].str.contains("http_seed_duration_s=0").all()


def test_http_seed_profile_holds_thousands_of_connections(run):
    """The seed load profile, shortened: 3,000 connections (above the 1,024 a select() or
    a fixed table of the old server held) for 3 s on native/static."""
    rows = run("http", http_seed_duration_s="3", http_seed_connections="3000")
    seed = rows[rows["conditions"] == '{"load": "seed"}'].set_index("metric")
    assert set(seed.index) == {"requests_per_s", "latency_p50", "latency_p99", "errors",
                               "cpu_percent_load"}
    assert seed.loc["requests_per_s", "value"] > 0
    assert seed.loc["latency_p50", "value"] <= seed.loc["latency_p99", "value"]
    tags = json.loads(seed.loc["requests_per_s", "tags"])
    assert (tags["load"], tags["connections"], tags["duration_s"]) == ("seed", "3000", "3")
    assert int(tags["threads"]) == os.cpu_count()
    assert int(tags["nofile_host_process"]) >= 3000 and int(tags["nofile_wrk"]) >= 3000
    assert int(tags["requests"]) > 0
    assert "load seed" in seed.loc["requests_per_s", "description"]


def test_idle_cpu_is_small_and_non_negative(run):
    value = measured(run("cpu_usage"))["value"].iloc[0]
    assert 0 <= value < 50


def test_density_fits_memory_per_instance(run):
    """Enough static processes for their summed PSS to give a positive slope with a CI."""
    df = run("density")
    assert (df["value"].dropna() > 0).all()  # a bound or a value, never a negative number
    got = measured(df).set_index("metric")
    tags = json.loads(got.loc["pss_per_instance", "tags"])
    assert tags["instances"] == "60" and int(tags["readings"]) >= 10
    assert 0 < float(tags["slope_ci_low"]) <= got.loc["pss_per_instance", "value"]
    assert got.loc["rss_per_instance", "value"] >= got.loc["pss_per_instance", "value"]
    assert (df["rep"] == 0).all() and df["metric"].is_unique  # one sample per repetition
    mem = df[df["metric"] == "memory_per_instance"].iloc[0]
    assert mem["value"] > 0 or "60 instances" in mem["reason"]  # noise: a bound or no figure


def test_isolation_reports_each_attack_without_and_with_limits(run):
    df = run("isolation", quick=False)  # --quick runs the cpu and mem attacks only
    got = measured(df).set_index(["metric", "conditions"])
    assert got.loc[("victim_alone", ""), "value"] > 0
    for kind in ("cpu", "mem", "io", "fd", "proc"):
        free = f'{{"attack": "{kind}", "limits": "off"}}'
        limited = got.loc[("slowdown", free.replace('"off"', '"on"'))]
        assert got.loc[("slowdown", free), "value"] > 0
        assert limited["value"] > 0 and "cgroup" in limited["tags"]
    # the limits stop the descriptor and fork attacks (pids 64, nofile 1024 vs 50 forks)
    fd_limited = ("slowdown", '{"attack": "fd", "limits": "on"}')
    assert '"attacker_limit_hit": "1"' in got.loc[fd_limited, "tags"]


def test_quick_isolation_runs_two_attacks_and_says_so_for_the_others(run):
    df = run("isolation")
    slow = df[df["metric"] == "slowdown"].set_index("conditions")
    assert len(slow) == 10
    for kind in ("io", "fd", "proc"):
        for limits in ("off", "on"):
            reason = slow.loc[f'{{"attack": "{kind}", "limits": "{limits}"}}', "reason"]
            assert reason.startswith("not measured with --quick")
    assert slow.loc['{"attack": "cpu", "limits": "off"}', "value"] > 0


def test_summary_of_cross_experiment_has_cis(run):
    s = summarize(run("http"))
    assert set(s["metric"]) >= {"requests_per_s", "latency_p50", "latency_p99"}
    light = s["conditions"] == '{"load": "light"}'
    assert (s.loc[light, "n"] == 1).all()
    assert (s.loc[~light, "n"] == 0).all()  # the seed profile left out: its reason, no sample
    assert s.loc[~light, "reason"].str.contains("http_seed_duration_s=0").all()


def test_every_family_has_a_variant_for_cross_experiments():
    assert {platforms.family_of(v) for v in platforms.VARIANTS} == set(platforms.FAMILIES)


def test_observability_probes_really_collect_on_native(run):
    df = run("observability")
    got = measured(df).set_index("metric")["value"]
    for probe in ("probe_logs", "probe_app_trace", "probe_otlp_spans", "probe_trace_context",
                  "probe_network_trace", "probe_resource_metrics", "probe_syscall_trace"):
        assert got[probe] == 1.0, probe
    network = df[df["metric"] == "probe_network_trace"].iloc[0]
    assert "loopback" in network["description"] and int(json.loads(network["tags"])[
        "packets"]) >= 3  # the handshake's last ACK, the request, the FIN at least
