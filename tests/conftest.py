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
    and ``family``) and a fake experiment with its metrics, as the runner finds real ones."""
    import sys
    import types

    from virtbench import catalog, experiments, platforms

    def install(experiment=None, *classes) -> None:
        module = types.ModuleType("vb_test_fakes")
        for cls in classes:
            setattr(module, cls.__name__, cls)
            monkeypatch.setitem(platforms.VARIANTS, cls.variant,
                                (cls.family, f"vb_test_fakes:{cls.__name__}"))
        monkeypatch.setitem(sys.modules, "vb_test_fakes", module)
        if experiment is not None:
            monkeypatch.setitem(experiments.EXPERIMENTS, experiment.name, experiment)
            for metric in experiment.metrics:
                monkeypatch.setitem(catalog.CATALOG, (experiment.name, metric.name), metric)

    return install


@pytest.fixture(scope="session")
def fixture_reports(tmp_path_factory):
    """Every notebook executed once per session on the checked-in fixture run, through the
    batch ``virtbench reproduce`` uses: (results, the reports folder). The notebook tests and
    the browser tests read the same reports."""
    from pathlib import Path

    from virtbench import report

    out = tmp_path_factory.mktemp("fixture-reports")
    results = report.reproduce("fixture_run", out, quick=True,
                               datasets=Path(__file__).parent / "data",
                               progress=lambda _m: None)
    return results, out
