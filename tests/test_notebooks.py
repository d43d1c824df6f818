"""Every notebook executes in quick mode on the checked-in fixture run, and on a run that
holds almost nothing, through the same batch that ``virtbench reproduce`` uses."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from virtbench import report

DATA = Path(__file__).parent / "data"
NOTEBOOKS = report.notebooks()
EXPECTED = ["00_overview", "01_startup", "02_memory_density", "03_http", "04_resources",
            "05_observability", "06_cost", "07_edera", "08_lumos", "09_isolation", "10_felter",
            "11_sandboxes"]


def test_the_notebooks_are_the_expected_twelve():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_shipped_notebooks_have_no_outputs_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for name in ("run_id", "datasets", "quick", "variants", "min_n", "margin"):
        assert re.search(rf"^{name}(: \w+)? = ", params[0].source, re.M), name
    for name in ("rerun", "reps"):  # measuring happens through `reproduce --rerun` only
        assert not re.search(rf"^{name}\b", params[0].source, re.M), name
    assert any(report.HEADLINE_TAG in c.metadata.get("tags", []) for c in code)
    assert any(c.cell_type == "markdown" and "Statistics" in c.source for c in nb.cells)
    assert "claims_chart" in "".join(c.source for c in code) or path.stem in (
        "05_observability", "06_cost", "09_isolation")


# fixture_reports and sparse_reports: built in the background (conftest.py, reportbuild.py)


def test_every_notebook_runs_on_the_fixture(fixture_reports):
    results, _ = fixture_reports
    failed = {r.name: r.error for r in results if r.status != "ok"}
    assert not failed
    assert [r.name for r in results] == EXPECTED


def test_every_notebook_has_a_headline_and_an_html_report(fixture_reports):
    results, out = fixture_reports
    index = (out / "index.html").read_text()
    for r in results:
        assert r.headline and "claims:" in r.headline, r.name
        html = (out / f"{r.name}.html").read_text()
        assert "data:image/png;base64," in html, f"{r.name} has no embedded figure"
        assert "verdict" in html and "Traceback" not in html
        assert f'href="{r.name}.html"' in index


def test_figures_have_units_on_their_axes(fixture_reports):
    results, _ = fixture_reports
    nb = nbformat.read(next(r.ipynb for r in results if r.name == "01_startup"), as_version=4)
    assert sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", [])
               ) >= 3
    # axis labels are made by plots.label("quantity", "unit")
    from virtbench import plots
    assert plots.label("startup", "ms") == "startup (ms)"


def test_the_seed_checks_are_computed_in_the_reports(fixture_reports):
    results, out = fixture_reports
    text = {r.name: (out / f"{r.name}.html").read_text() for r in results}
    assert "the chart value is the simulated sleep" in text["01_startup"]
    assert "66.7" in text["03_http"]  # Little's law: 10000 / 150000 s
    assert "133.3" in text["02_memory_density"] and "143.2" in text["02_memory_density"]
    assert "6073.6" in text["06_cost"]  # 200 x 0.0416 x 730
    assert "1000 + 648 = 1648" in text["07_edera"]
    assert "at most 10% of native" in text["04_resources"]


def test_notebooks_run_when_almost_nothing_was_measured(sparse_reports):
    failed = {r.name: r.error for r in sparse_reports if r.status != "ok"}
    assert not failed
    assert all("not measured" in r.headline or "claims:" in r.headline for r in sparse_reports)


class _Layout(HTMLParser):
    """The order of figures and tables in a report's main part, every table's body rows,
    cells and whether it sits in a folded <details>."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.tables: list[dict] = []
        self._details = 0
        self._open: list[dict] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag == "details":
            self._details += 1
        elif tag == "img":
            self.order.append("img")
        elif tag == "table":
            self.order.append("table")
            self._open.append({"rows": 0, "cells": [], "folded": self._details > 0})
        elif tag == "tr" and self._open and self._cell is None:
            self._open[-1]["rows"] += 1
        elif tag == "td" and self._open:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._details -= 1
        elif tag == "td" and self._cell is not None:
            self._open[-1]["cells"].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table" and self._open:
            self.tables.append(self._open.pop())

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _layout(out: Path, name: str) -> _Layout:
    html = (out / f"{name}.html").read_text()
    parser = _Layout()
    parser.feed(html[html.index("<main"):])
    return parser


@pytest.mark.parametrize("name", EXPECTED)
def test_reports_open_with_their_finding_figure_then_the_verdicts(fixture_reports, name):
    """Issue 24: a report leads with its finding (a figure, before any table), and the
    verdict counts follow; 00_overview's finding is its verdict matrix."""
    _, out = fixture_reports
    html = (out / f"{name}.html").read_text()
    order = _layout(out, name).order
    assert order[0] == "img" and order.count("img") >= 2, (name, order[:6])
    main = html[html.index("<main"):]
    assert main.index("<img") < main.index("Verdicts at a glance"), name


def test_long_tables_are_folded_and_cells_are_in_human_units(fixture_reports):
    from virtbench import tables

    results, out = fixture_reports
    for r in results:
        layout = _layout(out, r.name)
        for table in layout.tables:
            body = table["rows"] - 1  # the header row
            assert body <= tables.FOLD_ROWS or table["folded"], (r.name, body)
            for cell in table["cells"]:
                assert not re.search(r"\de\+\d", cell), (r.name, cell)
            reasons = [c for c in table["cells"] if re.match(
                r"(not measured|not available|not measurable here): .{40}", c)]
            assert len(reasons) == len(set(reasons)), (r.name, "a reason repeated per row")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_open_their_data_with_one_call_and_measure_nothing(path):
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert code.count("open_report(") == 1 and f'open_report("{path.stem}"' in code
    for leftover in ("Dataset.load", "report.measure", "published.load()", "check = check",
                     "stats.Policy(", "n_boot =", ".split()[0])", 'columns={"text"'):
        assert leftover not in code, f"{path.stem}: {leftover}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_leave_the_analysis_to_the_library(path):
    """Issue 23: a notebook defines no function of its own (a verdict rule, a selection),
    names no claim key (it selects claims by notebook, aspect or source from the claim map)
    and parses no raw tags or conditions (the dataset gives them parsed)."""
    from virtbench import claims

    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"^\s*def ", code, re.M), path.stem
    assert "json.loads" not in code, path.stem
    prefixes = sorted({cm.key.split(":")[0] for cm in claims.CLAIMS})
    named = re.findall(rf"[\"']((?:{'|'.join(map(re.escape, prefixes))}):[^\s\"']*)[\"']", code)
    assert not named, (path.stem, named)


def test_the_key_check_sees_a_key_in_a_notebook():
    """The pattern above finds keys and key prefixes, not words followed by a colon."""
    text = 'check(keys=["seed:core:ratings"]); x = "edera:"; label = "seed: " + system'
    found = re.findall(r"[\"']((?:edera|seed):[^\s\"']*)[\"']", text)
    assert found == ["seed:core:ratings", "edera:"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_read_what_the_host_ran_and_what_the_claims_pick(path):
    """What the host can run comes from host.json (Dataset.virtualization), which CPU kernel
    a claim reads from the claim map: neither is typed into a notebook's prose (issue 20)."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    for said in ("cannot run here", "cannot run on this host", "no hardware virtualization",
                 "our integer kernel"):
        assert said not in text, f"{path.stem}: {said!r}"
