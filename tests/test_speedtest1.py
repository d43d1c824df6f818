"""speedtest1: the output parser over captured real output, the fetched sources' checks, and
the experiment on native, Docker, Wasm and the TCG VM with equal verified row counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench import platforms
from virtbench.experiments import get
from virtbench.results import RunStore, decode_conditions, decode_tags
from virtbench.runner import run
from virtbench.workloads import speedtest1
from virtbench.workloads.speedtest1 import _dsc_sha256, parse_speedtest1

DATA = Path(__file__).parent / "data" / "speedtest1"


def test_parse_native_output():
    got = parse_speedtest1((DATA / "native-static-size5.txt").read_text())
    assert got.sqlite == "3.54.1"
    assert len(got.cases) == 32
    assert got.cases[0] == ("100", "2500 INSERTs into table with no index", 0.004)
    assert got.total_s == 0.208
    assert (got.results, got.hash) == (826556, "2ef302098d252181c4cb98b84a8a332a8e98506910393697")


def test_parse_a_serial_console():
    """A VM's console: CRLF line ends and kernel messages between the lines."""
    text = (DATA / "native-static-size5.txt").read_text().replace("\n", "\r\n")
    lines = text.split("\r\n")
    lines.insert(5, "[    1.234567] random: crng init done")
    got = parse_speedtest1("\r\n".join(lines))
    assert len(got.cases) == 32 and got.results == 826556


def test_parse_refuses_output_without_a_total():
    with pytest.raises(ValueError, match="no speedtest1 test cases and TOTAL"):
        parse_speedtest1("Error: cannot open database\n")


def test_dsc_checksums():
    dsc = ("Format: 3.0 (quilt)\nSource: sqlite3\nChecksums-Sha256:\n"
           " aa 10 sqlite3_3.40.1.orig.tar.xz\n bb 20 sqlite3_3.40.1-2.debian.tar.xz\n"
           "Files:\n cc 10 sqlite3_3.40.1.orig.tar.xz\n")
    assert _dsc_sha256(dsc) == {"sqlite3_3.40.1.orig.tar.xz": "aa",
                                "sqlite3_3.40.1-2.debian.tar.xz": "bb"}


def test_a_tampered_source_is_refetched_and_checked(tmp_path, monkeypatch):
    """A cached speedtest1.c whose hash is not the pinned one is not used as is."""
    cached = tmp_path / "sources" / "sqlite3-speedtest1" / "speedtest1.c"
    cached.parent.mkdir(parents=True)
    cached.write_text("int main(void) { return 0; }\n")
    monkeypatch.setattr(speedtest1.shutil, "which", lambda name: None)
    with pytest.raises(speedtest1.BuildError, match="no apt-get"):
        speedtest1.speedtest1_source(tmp_path)


VARIANTS = ("native/static", "native/dynamic", "docker/runc", "docker/runc-host",
            "wasmtime-cli/jit", "wasmer/cranelift", "qemu-tcg/microvm")


@pytest.mark.integration
def test_speedtest1_on_every_family_computes_the_same_rows(tmp_path):
    try:
        speedtest1.build_speedtest1("static")
    except speedtest1.BuildError as exc:
        pytest.skip(f"speedtest1 cannot be built here: {str(exc).splitlines()[0]}")
    store = RunStore("st1", root=tmp_path)
    run(get("speedtest1"), VARIANTS, store, reps=1, quick=True, progress=None,
        options={"speedtest1_size": 2})
    rows = store.rows()
    failed = rows[rows["reason"].fillna("").str.startswith(("failed", "preparation"))]
    assert failed.empty, failed[["variant", "reason"]].drop_duplicates().to_string()
    measured = rows[rows["value"].notna() & ~rows["warmup"]]
    ran = [v for v in VARIANTS if platforms.create(v).availability.available]
    assert set(measured["variant"]) == set(ran)
    totals = measured[measured["metric"] == "total_time"]
    assert totals["tags"].map(lambda t: decode_tags(t)["results"]).nunique() == 1
    cases = measured[measured["metric"] == "case_time"]
    per_variant = cases.groupby("variant")["conditions"].apply(
        lambda c: frozenset(decode_conditions(x)["case"] for x in c))
    assert per_variant.nunique() == 1 and len(per_variant.iloc[0]) > 20
    assert (totals["value"] > 0).all()
    wasmer = measured[measured["variant"] == "wasmer/cranelift"]
    assert (wasmer["conditions"].map(lambda c: decode_conditions(c).get("fs")) == "memory"
            ).all()
