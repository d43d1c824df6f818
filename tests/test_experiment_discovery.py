"""Experiments are found by themselves: one file in virtbench/experiments/ is one experiment,
its metrics declared beside its code and collected by the catalog."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from virtbench import catalog, experiments
from virtbench.experiments import scan

LIB = Path(__file__).resolve().parents[1] / "lib"
PACKAGE = LIB / "virtbench" / "experiments"

TOY = textwrap.dedent('''
    """{name}: a toy experiment, one file and nothing else."""

    from virtbench.experiments.base import Experiment
    from virtbench.metric import Metric
    from virtbench.store.schema import Measurement

    NAME = "{name}"
    METRICS = (Metric("ticks", NAME, "count", "higher", "ticks of the toy"),)


    def measure(plat, wl, params):
        return [Measurement("ticks", 1.0, "count", "one tick")]


    EXPERIMENT = Experiment(NAME, "counts one tick", measure, metrics=METRICS,
                            primary=(("ticks", {{}}),))
''')


def _cli(*argv: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(LIB)}
    proc = subprocess.run([sys.executable, "-m", "virtbench", *argv], capture_output=True,
                          text=True, env=env, timeout=300, check=True)
    return proc.stdout


def test_a_new_file_is_a_new_experiment_in_list_experiments_and_list_metrics():
    name = f"toy_{uuid.uuid4().hex[:8]}"
    path = PACKAGE / f"{name}.py"
    path.write_text(TOY.format(name=name))
    try:
        listed = {e["name"]: e for e in json.loads(_cli("list", "experiments", "--json"))}
        metrics = json.loads(_cli("list", "metrics", "--experiment", name, "--json"))
    finally:
        path.unlink()
        for cached in (PACKAGE / "__pycache__").glob(f"{name}.*"):
            cached.unlink()
    assert name in listed and "counts one tick" in listed[name]["description"]
    assert [(m["experiment"], m["name"], m["unit"]) for m in metrics] == [
        (name, "ticks", "count")]
    assert name not in {e["name"] for e in json.loads(_cli("list", "experiments", "--json"))}


@pytest.fixture
def toy_package(tmp_path, monkeypatch):
    """An empty package ``toyexp_*`` on sys.path, removed from sys.modules afterwards."""
    name = f"toyexp_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / name
    for module in [m for m in sys.modules if m == name or m.startswith(f"{name}.")]:
        del sys.modules[module]
    shutil.rmtree(tmp_path / name)


def _scan(package: Path) -> dict:
    return scan([str(package)], package.name)


def test_the_scan_finds_each_module_by_its_experiment_and_skips_shared_code(toy_package):
    (toy_package / "ticks.py").write_text(TOY.format(name="ticks"))
    (toy_package / "shared").mkdir()
    (toy_package / "shared" / "__init__.py").write_text("raise AssertionError('entered')\n")
    (toy_package / "base.py").write_text("")
    found = _scan(toy_package)
    assert list(found) == ["ticks"]
    assert found["ticks"].missing("not measured") and found["ticks"].metrics[0].unit == "count"


def test_a_module_without_an_experiment_is_an_error_naming_it(toy_package):
    (toy_package / "utils.py").write_text("X = 1\n")
    with pytest.raises(ImportError, match=r"utils\.py defines no EXPERIMENT.*shared/"):
        _scan(toy_package)


def test_an_experiment_is_named_after_its_module(toy_package):
    (toy_package / "other.py").write_text(TOY.format(name="ticks"))
    with pytest.raises(ImportError, match=r"other\.py declares the experiment 'ticks'"):
        _scan(toy_package)


def test_every_experiment_module_declares_the_metrics_the_catalog_holds():
    declared = {(m.experiment, m.name) for e in experiments.EXPERIMENTS.values()
                for m in e.metrics}
    assert declared == set(catalog.CATALOG)
    assert set(experiments.EXPERIMENTS) == {p.stem for p in PACKAGE.glob("*.py")} - {
        "__init__", "base"}


def test_a_primary_row_must_name_a_declared_metric():
    from virtbench.experiments.base import Experiment
    from virtbench.metric import Metric

    with pytest.raises(ValueError, match=r"primary rows name undeclared metrics \['tock'\]"):
        Experiment("toy", "x", lambda *a: [], primary=(("tock", {}),),
                   metrics=(Metric("tick", "toy", "count", "higher", "ticks"),))
    with pytest.raises(ValueError, match="declares metrics of another experiment"):
        Experiment("toy", "x", lambda *a: [],
                   metrics=(Metric("tick", "other", "count", "higher", "ticks"),))
