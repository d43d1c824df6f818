"""11_sandboxes and the overview's sandboxed-container column, executed through the batch
``virtbench reproduce`` uses: on the shipped reference (whether or not it holds gVisor rows:
the expectation is read from its data) and on a quick run that has them (``data/sys1``, the
syscalls experiment measured here with docker/runsc, docker/crun refusing this host's
cgroups). The reports are built in the background from the start of the session
(conftest.py, reportbuild.py); nothing is measured.
"""

from __future__ import annotations

from pathlib import Path

from virtbench.dataset import Dataset
from virtbench.paths import reference_dir

DATA = Path(__file__).parent / "data"
NAME = "11_sandboxes"


def _main(out: Path, name: str) -> str:
    html = (out / f"{name}.html").read_text()
    return html[html.index("<main"):]


def test_the_sandbox_report_runs_on_the_reference(sandbox_reports_reference):
    results, out = sandbox_reports_reference
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


def test_the_sandbox_report_reads_gvisor_rows(sandbox_reports_sys1):
    results, out = sandbox_reports_sys1
    r = results[NAME]
    assert r.status == "ok", r.error
    assert r.headline.startswith("Sandboxes: docker/runsc vs docker/runc measured in 1 of ")
    assert "inconclusive (n = 1 < 6)" in r.headline
    main = _main(out, NAME)
    assert "sandboxed container" in main  # docker/runsc's class, in the folded costs table
    assert "crun refuses this host" in main  # docker/crun's reason, from its row


def test_the_overview_shows_gvisor_beside_edera_as_context(sandbox_reports_sys1):
    results, out = sandbox_reports_sys1
    r = results["00_overview"]
    assert r.status == "ok", r.error
    main = _main(out, "00_overview")
    assert "Edera&#x27;s column: gVisor here, not Edera (context)" in main or \
        "Edera's column: gVisor here, not Edera (context)" in main
    assert "gVisor here, not Edera (context, not tallied)" in main
