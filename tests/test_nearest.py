"""gVisor, the nearest class measured here, is never tallied against Edera's claims (nor
Docker's): the shipped claim map and the check decide it, and the overview's context lines
keep Edera's verdict.

Hand-made rows: fakes for unit tests of the rules, nothing measured.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from virtbench import claims, nearest, published
from virtbench.dataset import Dataset

SPREAD = [0.97, 1.0, 1.03, 0.99, 1.01, 0.98, 1.02, 1.0]  # 8 repetitions around 1
FAMILY = {"native/static": "native", "docker/runc": "docker", "docker/runsc": "docker"}
DOCKER_SYSTEMS = ("Docker", "Docker (containers)", "Docker (Alpine)", "Docker NAT",
                  "Docker (runc)")
BRIDGE = {"network": "bridge"}


def fake(*groups: tuple) -> Dataset:
    """A fake run from (variant, experiment, metric, unit, median, conditions)."""
    lines = []
    for variant, experiment, metric, unit, median, conditions in groups:
        for rep, factor in enumerate(SPREAD):
            lines.append(dict(run_id="fake", experiment=experiment, family=FAMILY[variant],
                              variant=variant, workload="noop", metric=metric, unit=unit,
                              rep=rep, value=median * factor, reason="", warmup=False,
                              tags="", description="", timestamp="x",
                              conditions=json.dumps(conditions) if conditions else ""))
    return Dataset(pd.DataFrame(lines), {}, "fake", n_boot=199)


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


@pytest.fixture(scope="module")
def sandboxed() -> Dataset:
    return fake(
        ("native/static", "startup", "startup", "ms", 1.0, None),
        ("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE),
        ("docker/runsc", "startup", "startup", "ms", 600.0, BRIDGE),
        ("native/static", "sysbench", "events_per_s", "events/s", 1010.0, None),
        ("docker/runc", "sysbench", "events_per_s", "events/s", 1000.0, None),
        ("docker/runsc", "sysbench", "events_per_s", "events/s", 870.0, None),
        ("docker/runc", "redis", "requests_per_s", "req/s", 50000.0,
         {"pipeline": "1", "command": "GET"}),
        ("docker/runsc", "redis", "requests_per_s", "req/s", 10000.0,
         {"pipeline": "1", "command": "GET"}))


@pytest.fixture(scope="module")
def checked(sandboxed, pub) -> pd.DataFrame:
    """Every claim of the shipped claim map."""
    return claims.check(sandboxed, pub=pub)


def test_edera_lines_are_never_measured_by_gvisor(checked):
    edera = checked[checked["system"] == "Edera"]
    assert len(edera) and not edera["tallied"].any()
    assert (edera["variant"] == "").all()
    assert edera["verdict"].str.startswith("not measurable here").all()


def test_gvisor_answers_only_gvisor_claims(checked):
    runsc = checked[checked["variant"] == "docker/runsc"]
    assert len(runsc)
    assert set(runsc["system"]) <= {"gVisor", "gVisor (runsc)"}
    docker = checked[checked["system"].isin(DOCKER_SYSTEMS)]
    assert len(docker) and "docker/runsc" not in set(docker["variant"])


def test_the_gvisor_cpu_claim_is_answered_from_the_measured_rows(checked):
    line = checked[(checked["key"] == "edera-blog:gvisor-cpu")
                   & (checked["variant"] == "docker/runsc")].iloc[0]
    assert line["n"] == 8 and line["median"] == pytest.approx(13.0, abs=0.5)
    assert line["metric"] == "events_per_s vs docker/runc"


def test_the_nearest_class_is_read_from_the_registry_and_the_claim_map():
    assert nearest.class_variants("sandboxed-container") == ["docker/runsc"]
    assert nearest.label("Edera") == "gVisor here, not Edera"
    with pytest.raises(ValueError, match="no nearest class for 'VM'"):
        nearest.context_lines(fake(), pd.DataFrame(columns=["system"]), "VM")


def test_context_lines_measure_gvisor_and_keep_ederas_verdict(sandboxed, pub):
    check = claims.check(sandboxed, notebook="00_overview", pub=pub)
    context = nearest.context_lines(sandboxed, check, "Edera", pub=pub)
    startup = context[context["key"] == "seed:core:startup"].iloc[0]
    assert startup["variant"] == "docker/runsc" and startup["n"] == 8
    assert startup["median"] == pytest.approx(600.0, rel=0.02)
    assert startup["reason"] == "context: gVisor here, not Edera"
    assert not context["tallied"].any()
    assert context["verdict"].str.startswith("not measurable here").all()
    assert set(context["claim_id"]) <= set(check.loc[check["system"] == "Edera", "claim_id"])
    # the context never changes what is tallied
    both = claims.claim_verdicts(pd.concat([check, context], ignore_index=True))
    alone = claims.claim_verdicts(check)
    assert both["tallied"].sum() == alone["tallied"].sum()
    edera_ids = set(context["claim_id"])
    assert not both[both["claim_id"].isin(edera_ids)]["tallied"].any()


def test_context_lines_say_why_when_the_class_was_not_measured(pub):
    ds = fake(("docker/runc", "startup", "startup", "ms", 200.0, BRIDGE))
    check = claims.check(ds, notebook="00_overview", pub=pub)
    context = nearest.context_lines(ds, check, "Edera", pub=pub)
    assert len(context) and (context["n"] == 0).all()
    assert (context["reason"] ==
            "not in this dataset (no variant matching docker/runsc)").all()


def test_the_matrix_cell_names_the_stand_in_and_keeps_the_verdict(sandboxed, pub):
    check = claims.check(sandboxed, notebook="00_overview", pub=pub)
    context = nearest.context_lines(sandboxed, check, "Edera", pub=pub)
    aspects = {"startup": lambda c: c["key"].str.startswith("seed:core:startup"),
               "CPU": lambda c: c["key"] == "seed:core:cpu"}
    cells = claims.aspect_verdicts(check, aspects, ["Docker", "Edera"])
    shown = nearest.matrix_cells(cells, context, aspects, "Edera", "Edera (sandboxed)")
    edera = shown[shown["system"] == "Edera (sandboxed)"].set_index("aspect")
    assert edera.loc["startup", "measured"].startswith("gVisor here, not Edera:\n")
    assert "ms" in edera.loc["startup", "measured"]
    assert edera.loc["CPU", "measured"] == "gVisor here, not Edera:\nnot measured"
    assert (edera["verdict"] == "not measurable here").all()
    docker = shown[shown["system"] == "Docker"]
    assert list(docker["measured"]) == list(cells[cells["system"] == "Docker"]["measured"])
