"""notebook.open_report: the one call that opens a report's data (pure logic, fixture run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench import claims, notebook

DATA = Path(__file__).parent / "data"


def test_open_report_gives_the_run_the_figures_the_policy_and_the_claims_check():
    ds, pub, policy, check = notebook.open_report("01_startup", "fixture_run", str(DATA),
                                                  quick=True, min_n=4, margin=0.1, show=False)
    assert ds.run_id == "fixture_run" and ds.n_boot == notebook.N_BOOT_QUICK
    assert (policy.min_n, policy.margin) == (4, 0.1)
    assert len(pub) and set(check.columns) >= {"claim_id", "family", "median", "verdict"}
    mapped = {cm.key for cm in claims.CLAIMS if "01_startup" in cm.notebooks}
    assert set(check["key"]) <= mapped and len(check)


def test_open_report_keeps_only_the_variants_asked_for():
    report = notebook.open_report("01_startup", "fixture_run", str(DATA), ["native"],
                                  quick=True, show=False)
    assert report.ds.variants() and all(v.startswith("native/") for v in report.ds.variants())


def test_the_header_names_the_run_and_folds_the_variant_list():
    ds = notebook.open_report("03_http", "fixture_run", str(DATA), quick=True, show=False).ds
    html = notebook.header_html(ds)
    assert "<code>fixture_run</code>" in html and "<details" in html
    assert f"{len(ds.variants())} variants in this run" in html


def test_an_unknown_run_is_an_error_naming_it(tmp_path):
    with pytest.raises((FileNotFoundError, ValueError), match="no_such_run"):
        notebook.open_report("01_startup", "no_such_run", str(tmp_path), show=False)
