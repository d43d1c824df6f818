"""Claims selected by what they are about (the claim map's ``aspect``, notebook, source), and
what the reports build from the selected lines: verdict-matrix and capability-matrix cells,
evidence shares. Hand-made rows (fakes, nothing measured) and the shipped claim map."""

from __future__ import annotations

import pandas as pd
import pytest
from test_claims import GOOD_CLAIM, _map_with, reps, rows

from virtbench import claims, published
from virtbench.claims.model import ClaimMapError

FAST = [200.0, 201.0, 202.0, 203.0, 204.0, 205.0]


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return published.load()


# --- selecting claims ----------------------------------------------------------------------


def test_keys_for_selects_by_aspect_notebook_source_and_measurable():
    assert claims.keys_for(aspect="startup") == ("seed:core:startup", "seed:core:startup:vm")
    assert claims.keys_for(aspect=["isolation level", "security"]) == (
        "seed:core:ratings:isolation", "seed:core:ratings:security")
    assert claims.keys_for(notebook="05_observability", measurable=False) == ("seed:obs:otlp",)
    assert claims.keys_for(source="edera") == ("edera:docker-startup", "edera:edera")
    # every filter at once, in the map's order
    assert claims.keys_for(notebook="00_overview", aspect="I/O") == (
        "seed:core:ratings:io", "seed:core:io-overhead:seq_read",
        "seed:core:io-overhead:rand_read")
    assert [cm.key for cm in claims.claims_for(aspect="density")] == [
        "seed:mem:density", "seed:mem:density:vm", "seed:mem:density:wasm"]


@pytest.mark.parametrize("asked, said", [
    ({"aspect": "startpu"}, "no claim has aspect 'startpu'; valid: .*startup"),
    ({"aspect": ["startup", "disk"]}, "no claim has aspect 'disk'; valid: .*disk footprint"),
    ({"notebook": "99_nothing"}, "no claim has notebook '99_nothing'; valid: 00_overview"),
    ({"source": "folklore"}, "no claim has source 'folklore'; valid: .*seed"),
])
def test_keys_for_names_what_no_claim_has_and_what_is_valid(asked, said):
    with pytest.raises(ValueError, match=said):
        claims.keys_for(**asked)


def test_the_overview_aspects_are_the_core_table_rows_the_notebook_selected_by_key():
    """The aspects hold the claims 00_overview and 07_edera once selected by key prefix."""
    keys = [cm.key for cm in claims.CLAIMS]

    def prefixed(*prefixes: str) -> tuple[str, ...]:
        return tuple(k for k in keys if k.startswith(prefixes))

    assert claims.keys_for(aspect="startup") == prefixed("seed:core:startup")
    assert claims.keys_for(aspect="memory footprint") == prefixed("seed:core:memory")
    assert claims.keys_for(aspect="disk footprint") == prefixed("seed:core:disk")
    assert claims.keys_for(aspect="CPU (% of native)") == ("seed:core:cpu",)
    assert set(claims.keys_for(aspect="I/O")) == {
        *prefixed("seed:core:io-overhead"), "seed:core:ratings:io"}
    assert claims.keys_for(aspect="startup order of magnitude") == prefixed(
        "seed:timeline:startup-magnitude")
    assert claims.keys_for(aspect="density") == prefixed("seed:mem:density")
    assert claims.keys_for(aspect="CPU (Linpack)") == prefixed("felter:linpack")


@pytest.mark.parametrize("aspect", ['""', '"  "', '["startup"]', "3"])
def test_an_aspect_must_be_a_short_text(tmp_path, pub, aspect):
    path = _map_with(tmp_path, GOOD_CLAIM + f"aspect = {aspect}\n"
                     'picks = [{ metric = "startup", experiment = "startup" }]\n')
    with pytest.raises(ClaimMapError, match="aspect .* is not valid") as info:
        claims.load_map(path, pub)
    assert str(info.value).startswith(f"{path}:11:")


def test_a_map_with_an_aspect_selects_by_it(tmp_path, pub):
    path = _map_with(tmp_path, GOOD_CLAIM + 'aspect = "start"\n'
                     'picks = [{ metric = "startup", experiment = "startup" }]\n')
    cmf = claims.load_map(path, pub)
    assert cmf.claims[0].aspect == "start"
    assert claims.keys_for(aspect="start", cmf=cmf) == ("t:startup",)
    assert claims.keys_for(notebook="01_startup", cmf=cmf) == ("t:startup",)


def test_lines_for_and_aspect_selectors_pick_the_lines_of_those_claims(pub):
    ds = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", FAST))
    check = claims.check(ds, keys=["seed:core:startup", "seed:core:cpu"], pub=pub)
    startup = claims.lines_for(check, aspect="startup")
    assert set(startup["key"]) == {"seed:core:startup", "seed:core:startup:vm"}
    assert len(startup) == (check["key"] != "seed:core:cpu").sum()
    selectors = claims.aspect_selectors(["CPU (% of native)", "startup"])
    assert list(selectors) == ["CPU (% of native)", "startup"]
    assert set(check[selectors["CPU (% of native)"](check)]["key"]) == {"seed:core:cpu"}
    with pytest.raises(ValueError, match="no claim has aspect 'speed'"):
        claims.aspect_selectors(["speed"])


# --- the verdict matrix --------------------------------------------------------------------


def _io_check(pub: pd.DataFrame) -> pd.DataFrame:
    host = {"fs": "host"}
    ds = rows(*reps("docker/runc", "docker", "startup", "startup", "ms", FAST),
              *reps("wasmtime-cli/jit", "wasm", "io", "seq_read", "MB/s", [50.0] * 6, host),
              *reps("wasmtime-cli/jit", "wasm", "io", "rand_read", "MB/s", [20.0] * 6, host),
              *reps("native/static", "native", "io", "seq_read", "MB/s", [100.0] * 6, host),
              *reps("native/static", "native", "io", "rand_read", "MB/s", [100.0] * 6, host))
    return claims.check(ds, pub=pub, keys=["seed:core:startup", "seed:core:io-overhead:seq_read",
                                           "seed:core:io-overhead:rand_read"])


def test_a_matrix_cell_names_the_metric_only_where_the_mappings_differ(pub):
    check = _io_check(pub)
    docker = check[(check["key"] == "seed:core:startup") & (check["system"] == "Docker")]
    assert claims.matrix_cell_text(docker) == (
        "claimed: 100\u20131000 ms\n  docker/runc: 202 [200, 205] ms -> consistent")
    wasm_io = check[check["key"].str.startswith("seed:core:io") & (check["system"] == "Wasm")]
    assert claims.matrix_cell_text(wasm_io) == (
        "claimed: 10 x\n"
        "  wasmtime-cli/jit: seq_read vs native/static: 2.00 [2.00, 2.00] x -> lower than claimed\n"
        "  wasmtime-cli/jit: rand_read vs native/static: 5.00 [5.00, 5.00] x -> lower than "
        "claimed")
    assert claims.matrix_cell_text(check.iloc[0:0]) == "no claim in the seed"


def test_a_stand_in_line_is_context_without_a_verdict(pub):
    check = _io_check(pub)
    line = check[(check["key"] == "seed:core:startup") & (check["system"] == "Docker")]
    stand_in = line.assign(nearest="gVisor here, not Edera", verdict="not measurable here: x")
    assert claims.matrix_cell_text(stand_in) == (
        "claimed: 100\u20131000 ms\n"
        "  gVisor here, not Edera (context, not tallied): docker/runc: 202 [200, 205] ms")


def test_the_matrix_table_has_a_row_per_aspect_and_a_column_per_system(pub):
    check = _io_check(pub)
    table = claims.matrix_table(check, claims.aspect_selectors(["startup", "I/O"]),
                                ["Docker", "Wasm", "VM"])
    assert list(table.columns) == ["aspect", "Docker", "Wasm", "VM"]
    assert list(table["aspect"]) == ["startup", "I/O"]
    assert table.loc[0, "Docker"].endswith("202 [200, 205] ms -> consistent")
    assert table.loc[1, "Docker"] == "no claim in the seed"  # no Docker line of the 10x
    assert "rand_read vs native/static: 5.00" in table.loc[1, "Wasm"]


# --- the capability matrix -----------------------------------------------------------------


def _logs_check(pub: pd.DataFrame) -> pd.DataFrame:
    ds = rows(("wasmtime-cli/jit", "wasm", "cpu", "compute_time", "ms", 0, 10.0, ""),
              ("wasmtime/jit", "wasm", "cpu", "compute_time", "ms", 0, 0.0, ""),
              ("docker/runc", "docker", "cpu", "compute_time", "ms", 0, 12.0, ""))
    return claims.check(ds, keys=["seed:obs:logs"], pub=pub)


def test_evidence_is_what_the_check_collected(pub):
    check = _logs_check(pub).set_index("variant")
    assert claims.evidence_found(check.loc["wasmtime-cli/jit"])
    assert not claims.evidence_found(check.loc["wasmtime/jit"])  # a median of 0
    assert not claims.evidence_found(check.loc["vm"])  # no variant of VM in the rows
    assert not claims.evidence_found(check.loc["docker/runc"].to_dict() | {"n": 0})


def test_evidence_shares_count_variants_with_an_exact_interval(pub):
    shares = claims.evidence_shares(_logs_check(pub)).set_index("system")
    assert list(shares.index) == ["VM", "Docker", "Wasm"]
    wasm = shares.loc["Wasm"]
    assert wasm["capability"] == "Wasm log collection capability"
    assert (wasm["variants"], wasm["with_evidence"], wasm["share (%)"]) == (2, 1, 50.0)
    # Clopper-Pearson for 1 of 2: [1.26%, 98.74%]
    assert wasm["low (%)"] == pytest.approx(1.2579, abs=1e-3)
    assert wasm["high (%)"] == pytest.approx(98.7421, abs=1e-3)
    assert shares.loc["Docker", "low (%)"] == pytest.approx(2.5)  # 1 of 1
    assert (shares.loc["VM", "with_evidence"], shares.loc["VM", "high (%)"]) == (
        0, pytest.approx(97.5))


def test_the_capability_matrix_has_a_cell_per_capability_and_system(pub):
    matrix = claims.capability_matrix(_logs_check(pub)).set_index("capability")
    assert list(matrix.index) == ["log collection capability"]
    assert sorted(matrix.columns) == ["Docker", "VM", "Wasm"]
    assert matrix.loc["log collection capability", "Wasm"] == (
        "seed: limited\n"
        "wasmtime-cli/jit: compute_time collected (n=1) -> more than claimed (collected here)\n"
        "wasmtime/jit: compute_time not collected -> consistent")
    assert matrix.loc["log collection capability", "VM"] == (
        "seed: full\nvm: not measured: not in this dataset (no variant matching vm)")
