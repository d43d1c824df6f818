"""Notebook reports that tests read, built in the background from the start of the session.

Executing notebooks is the slowest thing the tests do that starts no platform. Each build
runs ``virtbench.report.reproduce`` in a process of its own, one build at a time, while the
other tests go on in the pytest process (two cores: one for each). ``conftest.py`` starts
the builds the collected tests need, in the order they are first needed; a fixture
then waits for its build (:func:`results`), starting it if it was not started.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from virtbench import report
from virtbench.paths import reference_dir

DATA = Path(__file__).parent / "data"

#: Builds the reports of one run and prints each result as one JSON line at the end.
_SCRIPT = """
import dataclasses, json, sys
from pathlib import Path
from virtbench import report
run_id, datasets, out, only = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
results = report.reproduce(run_id, out, quick=True, only=only, datasets=datasets,
                           progress=lambda _m: None)
print(json.dumps([{k: (str(v) if isinstance(v, Path) else v)
                   for k, v in dataclasses.asdict(r).items()} for r in results]))
"""


def _sparse(root: Path) -> Path:
    """A run with only the bare process's startup, made from the fixture run."""
    import pandas as pd

    (root / "sparse").mkdir(parents=True)
    rows = pd.read_csv(DATA / "fixture_run" / "results.csv", dtype=str, keep_default_na=False)
    rows = rows[(rows["variant"] == "native/static") & (rows["experiment"] == "startup")]
    rows.to_csv(root / "sparse" / "results.csv", index=False)
    shutil.copy(DATA / "fixture_run" / "host.json", root / "sparse" / "host.json")
    return root


HOSTS = {"kvm-box": "big", "laptop": "small"}


def two_hosts(root: Path, run_id: str = "camp") -> str:
    """The fixture's startup rows once per host (the second host's startup times doubled),
    stored through the store in a campaign's layout."""
    import pandas as pd

    from virtbench.results import Row, RunStore

    rows = pd.read_csv(DATA / "fixture_run" / "results.csv", dtype=str, keep_default_na=False)
    rows = rows[rows["experiment"] == "startup"]
    store = RunStore(run_id, root=root)
    facts = json.loads((DATA / "fixture_run" / "host.json").read_text())
    index = {"campaign": {"plan": "plan.toml", "hosts": list(HOSTS)}, "hosts": {},
             "invocations": [{"parameters": {"quick": True}}]}
    (store.dir / "hosts").mkdir(parents=True)  # the store makes its folder on first write
    for i, (host, hostname) in enumerate(HOSTS.items()):
        (store.dir / "hosts" / f"{host}.json").write_text(json.dumps({**facts,
                                                                       "hostname": hostname}))
        index["hosts"][host] = {"file": f"hosts/{host}.json", "hostname": hostname}
        for _key, cell in rows.groupby(["variant", "workload", "rep", "timestamp"], sort=False):
            recs = cell.to_dict("records")
            if i:
                for r in recs:
                    if r["metric"] == "startup" and r["value"]:
                        r["value"] = repr(2 * float(r["value"]))
            store.write_cell([Row.from_record({**r, "run_id": run_id, "host": host})
                              for r in recs])
    (store.dir / "host.json").write_text(json.dumps(index))
    return run_id


def _campaign(root: Path) -> Path:
    two_hosts(root)
    return root


@dataclass(frozen=True)
class Build:
    """A run's reports: its id, the folder of datasets (made under a scratch folder when a
    function), and the notebooks (all when empty)."""

    run_id: str
    datasets: Path | Callable[[Path], Path]
    only: tuple[str, ...] = ()


#: The builds, by the name of the fixture that reads them.
BUILDS = {
    "fixture_reports": Build("fixture_run", DATA),
    "sparse_reports": Build("sparse", _sparse),
    "sandbox_reports_reference": Build("reference", reference_dir().parent, ("11_sandboxes",)),
    "sandbox_reports_sys1": Build("sys1", DATA, ("00_overview", "11_sandboxes")),
    "campaign_reports": Build("camp", _campaign, ("01_startup",)),
}

#: The environment as the session began: a build starts while some test may have changed
#: the process's own (its datasets, cache or PATH).
_ENV = dict(os.environ)
_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-builds")
_started: dict[str, Future] = {}
_scratch: Path | None = None


def set_scratch(folder: Path) -> None:
    """Where builds write (a folder of the session's temporary directory)."""
    global _scratch
    _scratch = folder


def _run(name: str, build: Build) -> tuple[list[report.NotebookResult], Path]:
    assert _scratch is not None, "reportbuild.set_scratch was not called"
    out = _scratch / name / "reports"
    datasets = build.datasets
    if callable(datasets):
        datasets = datasets(_scratch / name / "datasets")
    env = {**_ENV, "PYTHONPATH": os.pathsep.join(
        [str(report.PACKAGE_DIR.parent), _ENV.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, build.run_id, str(datasets),
                           str(out), *build.only], capture_output=True, text=True, env=env,
                          timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"building the reports of {build.run_id} failed:\n"
                           f"{proc.stderr[-4000:]}")
    fields = {f.name for f in dataclasses.fields(report.NotebookResult)}
    results = []
    for record in json.loads(proc.stdout.splitlines()[-1]):
        record = {k: v for k, v in record.items() if k in fields}
        for key in ("ipynb", "html"):
            record[key] = Path(record[key]) if record.get(key) else None
        results.append(report.NotebookResult(**record))
    return results, out


def start(name: str) -> Future:
    """Start the build ``name`` (once); its future."""
    if name not in _started:
        _started[name] = _pool.submit(_run, name, BUILDS[name])
    return _started[name]


def results(name: str) -> tuple[list[report.NotebookResult], Path]:
    """The results and the reports folder of the build ``name``, once it is done."""
    return start(name).result()


def stop() -> None:
    """Cancel the builds not yet started and wait for the one running."""
    _pool.shutdown(wait=True, cancel_futures=True)
