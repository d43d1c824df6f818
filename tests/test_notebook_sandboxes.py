"""11_sandboxes and the overview's sandboxed-container column, executed through the batch
``virtbench reproduce`` uses: on the shipped reference (whether or not it holds gVisor rows:
the expectation is read from its data) and on a quick run that has them (``data/sys1``, the
syscalls experiment measured here with docker/runsc, docker/crun refusing this host's
cgroups). They execute notebooks: minutes, not seconds; nothing is measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from virtbench import report
from virtbench.dataset import Dataset
from virtbench.paths import reference_dir

DATA = Path(__file__).parent / "data"
NAME = "11_sandboxes"


def _run(tmp_path_factory, run_id: str, root: Path, only: list[str]):
    out = tmp_path_factory.mktemp(f"reports-{run_id}")
    results = report.reproduce(run_id, out, quick=True, only=only, datasets=root,
                               progress=lambda _m: None)
    return {r.name: r for r in results}, out


@pytest.fixture(scope="module")
def on_reference(tmp_path_factory):
    return _run(tmp_path_factory, "reference", reference_dir().parent, [NAME])


@pytest.fixture(scope="module")
def on_sys1(tmp_path_factory):
    return _run(tmp_path_factory, "sys1", DATA, ["00_overview", NAME])


def _main(out: Path, name: str) -> str:
    html = (out / f"{name}.html").read_text()
    return html[html.index("<main"):]


def test_the_sandbox_report_runs_on_the_reference(on_reference):
    results, out = on_reference
    r = results[NAME]
    assert r.status == "ok", r.error
    assert r.headline.startswith("Sandboxes: ") and "claims:" in r.headline
    ds = Dataset.load("reference", reference_dir().parent)
    if "docker/runsc" not in ds.variants():
        assert ("docker/runsc not measured, because not in this dataset (no rows for "
                "docker/runsc)") in r.headline
    else:
        assert "docker/runsc costs" in r.headline or "docker/runsc vs docker/runc" in \
            r.headline
    main = _main(out, NAME)
    assert main.index("<img") < main.index("Verdicts at a glance")
    assert "cost relative to docker/runc" in main  # the finding figure's alt text
    assert "Edera&#x27;s criterion" in main or "Edera's criterion" in main
    assert "Traceback" not in main
    index = (out / "index.html").read_text()
    assert f'href="{NAME}.html"' in index and "Sandboxes: " in index


def test_the_sandbox_report_reads_gvisor_rows(on_sys1):
    results, out = on_sys1
    r = results[NAME]
    assert r.status == "ok", r.error
    assert r.headline.startswith("Sandboxes: docker/runsc vs docker/runc measured in 1 of ")
    assert "inconclusive (n = 1 < 6)" in r.headline
    main = _main(out, NAME)
    assert "sandboxed container" in main  # docker/runsc's class, in the folded costs table
    assert "crun refuses this host" in main  # docker/crun's reason, from its row


def test_the_overview_shows_gvisor_beside_edera_as_context(on_sys1):
    results, out = on_sys1
    r = results["00_overview"]
    assert r.status == "ok", r.error
    main = _main(out, "00_overview")
    assert "Edera&#x27;s column: gVisor here, not Edera (context)" in main or \
        "Edera's column: gVisor here, not Edera (context)" in main
    assert "gVisor here, not Edera (context, not tallied)" in main
