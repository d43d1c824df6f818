"""Shared fixtures: every test writes datasets into its own temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_datasets(tmp_path, monkeypatch):
    """Runs made by tests never land in the project's datasets/ folder."""
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path / "datasets"))


@pytest.fixture
def install_fakes(monkeypatch):
    """Register, for one test, fake platform classes as variants (each by its ``variant``
    and ``family``, for callers that name them, such as the command line) and a fake
    experiment with its metrics, as the runner finds real ones."""
    from virtbench import catalog, experiments, platforms

    def install(experiment=None, *classes) -> None:
        for cls in classes:
            monkeypatch.setitem(platforms.VARIANTS, cls.variant, (cls.family, cls))
        if experiment is not None:
            monkeypatch.setitem(experiments.EXPERIMENTS, experiment.name, experiment)
            for metric in experiment.metrics:
                monkeypatch.setitem(catalog.CATALOG, (experiment.name, metric.name), metric)

    return install


def pytest_configure(config) -> None:
    """A suite started in the background of a script (``cmd &``, nohup) inherits SIGINT
    ignored, and so would every run the tests start and interrupt: give the session (and so
    its children) the default SIGINT handling, however it was started."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session) -> None:
    """Start, in the background, the notebook builds the collected tests read, in the order
    they are first needed (see reportbuild.py)."""
    import reportbuild

    if session.config.option.collectonly:
        return
    needed = [f for item in session.items for f in getattr(item, "fixturenames", ())
              if f in reportbuild.BUILDS]
    if needed:
        reportbuild.set_scratch(session.config._tmp_path_factory.mktemp("report-builds"))
    for name in dict.fromkeys(needed):
        reportbuild.start(name)


def pytest_sessionfinish(session, exitstatus) -> None:
    import reportbuild

    reportbuild.stop()


def _built(name: str):
    import reportbuild

    return reportbuild.results(name)


@pytest.fixture(scope="session")
def fixture_reports():
    """Every notebook executed on the checked-in fixture run, through the batch
    ``virtbench reproduce`` uses: (results, the reports folder); built once per session."""
    return _built("fixture_reports")


@pytest.fixture(scope="session")
def sparse_reports():
    """Every notebook on a run that holds only the bare process's startup."""
    return _built("sparse_reports")[0]


@pytest.fixture(scope="session")
def sandbox_reports_reference():
    """11_sandboxes on the shipped reference: ({name: result}, the reports folder)."""
    results, out = _built("sandbox_reports_reference")
    return {r.name: r for r in results}, out


@pytest.fixture(scope="session")
def sandbox_reports_sys1():
    """00_overview and 11_sandboxes on data/sys1 (gVisor rows): ({name: result}, folder)."""
    results, out = _built("sandbox_reports_sys1")
    return {r.name: r for r in results}, out


@pytest.fixture(scope="session")
def campaign_reports():
    """01_startup on a run of two hosts (reportbuild.two_hosts): (results, folder)."""
    return _built("campaign_reports")
