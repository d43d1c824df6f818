"""pyproject.toml and environment.yml name the same dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# PyPI name -> conda-forge name, where they differ
CONDA_NAMES = {"docker": "docker-py", "jupyter-client": "jupyter_client"}


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower()


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["dev"]}
    listed, section = set(), ""
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^[a-z]", line):
            section = line.split(":")[0]
        m = re.match(r"^\s+- ([A-Za-z0-9_.-]+)", line)
        if section == "dependencies" and m and m.group(1) not in ("pip", "python", "-e"):
            listed.add(m.group(1).lower())
    expected = {CONDA_NAMES.get(n, n) for n in wanted}
    assert listed == expected


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make reproduce" in readme


def test_license_is_an_spdx_string_with_its_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]
    assert project["license-files"] == ["LICENSE"]


def _imported_top_level() -> set[str]:
    """Top-level modules imported anywhere in lib/, tests/ and the notebooks' code cells,
    imports inside functions included."""
    import ast
    import json

    sources = [p.read_text() for p in (ROOT / "lib").rglob("*.py")]
    sources += [p.read_text() for p in (ROOT / "tests").rglob("*.py")]
    for nb in (ROOT / "notebooks").rglob("*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        sources += ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    names: set[str] = set()
    for text in sources:
        lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_imported_package_is_declared():
    import sys
    from importlib import metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(d).replace("_", "-") for d in project["dependencies"]
                + project["optional-dependencies"]["dev"]}
    owners = metadata.packages_distributions()
    undeclared = {}
    own = {"virtbench", *(p.stem for p in (ROOT / "tests").glob("*.py"))}  # test helpers
    for module in _imported_top_level() - set(sys.stdlib_module_names) - own:
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not dists & declared:
            undeclared[module] = sorted(dists)
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
